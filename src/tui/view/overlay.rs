//! Pop-ups: the help screen (from the key table) and the findings list.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::keys::BINDINGS;
use crate::tui::sanitize::cell;

use super::mark;
use super::theme::Theme;

pub fn render_help(theme: &Theme, frame: &mut Frame, area: Rect) {
    let inner_width = usize::from(area.width.saturating_sub(2));
    let mut lines = Vec::new();
    for b in BINDINGS {
        let mut spans = cell(b.label, 11, theme.header(), theme.escape());
        spans.push(Span::raw(" "));
        spans.extend(cell(
            b.help,
            inner_width.saturating_sub(12),
            theme.text(),
            theme.escape(),
        ));
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(Span::styled(
        "In the findings list: j/k move, Enter jumps, Esc closes. Mouse wheel scrolls.",
        theme.dim(),
    )));
    let block = Block::default()
        .borders(Borders::ALL)
        .title("keys (Esc closes)");
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

pub fn render_findings(app: &App, theme: &Theme, frame: &mut Frame, area: Rect, selected: usize) {
    let inner_width = usize::from(area.width.saturating_sub(2));
    let rows = usize::from(area.height.saturating_sub(2)).max(1);
    let findings = app
        .report
        .as_ref()
        .map(|r| r.findings.as_slice())
        .unwrap_or_default();
    let top = selected.saturating_sub(rows - 1);
    let mut lines = Vec::new();
    for (i, f) in findings.iter().enumerate().skip(top).take(rows) {
        let place = match (f.index, f.line) {
            (Some(index), Some(line)) => format!("entry {index}, line {line}"),
            (None, Some(line)) => format!("line {line}"),
            _ => "chain".to_owned(),
        };
        let mut spans = cell(
            mark(Some(f.severity)),
            1,
            theme.severity(f.severity),
            theme.escape(),
        );
        spans.push(Span::raw(" "));
        spans.extend(cell(
            f.kind.as_str(),
            22,
            theme.severity(f.severity),
            theme.escape(),
        ));
        spans.push(Span::raw(" "));
        spans.extend(cell(&place, 20, theme.text(), theme.escape()));
        spans.push(Span::raw(" "));
        spans.extend(cell(
            &f.message,
            inner_width.saturating_sub(46),
            theme.text(),
            theme.escape(),
        ));
        let mut line = Line::from(spans);
        if i == selected {
            line = line.patch_style(theme.selected());
        }
        lines.push(line);
    }
    if findings.is_empty() {
        lines.push(Line::from(Span::styled("no findings", theme.dim())));
    }
    let title = format!("findings ({}) · Enter jumps · Esc closes", findings.len());
    let block = Block::default().borders(Borders::ALL).title(title);
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
