//! Pop-ups: the help screen (from the key table) and the findings list.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::chain::finding::Severity;
use crate::tui::app::{App, Popup};
use crate::tui::keys::BINDINGS;
use crate::tui::sanitize::{cell, plain};
use crate::tui::worker::FileChange;

use super::mark;
use super::status::clock;
use super::theme::Theme;

/// Spans of one binding in `width` columns.
fn binding_spans(b: &crate::tui::keys::Binding, width: usize, theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = cell(b.label, 11, theme.header(), theme.escape());
    spans.push(Span::raw(" "));
    spans.extend(cell(
        b.help,
        width.saturating_sub(12),
        theme.text(),
        theme.escape(),
    ));
    spans
}

pub fn render_help(theme: &Theme, frame: &mut Frame, area: Rect) {
    let inner_width = usize::from(area.width.saturating_sub(2));
    let inner_height = usize::from(area.height.saturating_sub(2));
    let notes = [
        "In the findings list: j/k move, Enter jumps, Esc closes. Mouse wheel scrolls.",
        "In the seal form: Tab moves, Space and arrows change, Enter in the reason is a line break, Enter elsewhere previews.",
    ];
    let mut lines = Vec::new();
    if BINDINGS.len() + notes.len() <= inner_height {
        for b in BINDINGS {
            lines.push(Line::from(binding_spans(b, inner_width, theme)));
        }
    } else {
        // Two columns when one does not fit the height.
        let half = BINDINGS.len().div_ceil(2);
        let column = inner_width / 2;
        for (i, left) in BINDINGS.iter().enumerate().take(half) {
            let mut spans = binding_spans(left, column, theme);
            if let Some(b) = BINDINGS.get(i + half) {
                spans.push(Span::raw(" "));
                spans.extend(binding_spans(b, inner_width - column - 1, theme));
            }
            lines.push(Line::from(spans));
        }
    }
    for note in notes {
        lines.push(Line::from(cell(
            note,
            inner_width,
            theme.dim(),
            theme.escape(),
        )));
    }
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
    let events = app.watch_events.len();
    for (i, event) in app.watch_events.iter().enumerate().skip(top).take(rows) {
        let lost = event.lost.unwrap_or(0);
        let severity = if lost > 0 || event.change == FileChange::Deleted {
            Severity::Error
        } else {
            Severity::Warning
        };
        let mut spans = cell(
            mark(Some(severity)),
            1,
            theme.severity(severity),
            theme.escape(),
        );
        spans.push(Span::raw(" "));
        let kind = if lost > 0 {
            "entries_removed"
        } else {
            "file_changed"
        };
        spans.extend(cell(kind, 22, theme.severity(severity), theme.escape()));
        spans.push(Span::raw(" "));
        let place = format!("view, at {}", clock(event.at));
        spans.extend(cell(&place, 20, theme.text(), theme.escape()));
        spans.push(Span::raw(" "));
        spans.extend(cell(
            &event.summary(),
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
    let skip = top.saturating_sub(events);
    let take = rows.saturating_sub(lines.len());
    for (i, f) in findings.iter().enumerate().skip(skip).take(take) {
        let i = i + events;
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
    if findings.is_empty() && events == 0 {
        lines.push(Line::from(Span::styled("no findings", theme.dim())));
    }
    let title = if events == 0 {
        format!("findings ({}) · Enter jumps · Esc closes", findings.len())
    } else {
        format!(
            "findings ({}) and changes while watching ({events}) · Enter jumps · Esc closes",
            findings.len()
        )
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

pub fn render_popup(popup: &Popup, theme: &Theme, frame: &mut Frame, area: Rect) {
    let lines = vec![
        Line::from(Span::styled(plain(&popup.message), theme.bad())),
        Line::from(""),
        Line::from(Span::styled(
            format!("What to do: {}", plain(&popup.advice)),
            theme.text(),
        )),
        Line::from(""),
        Line::from(Span::styled("Esc or Enter closes", theme.dim())),
    ];
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!("{} (Esc closes)", plain(&popup.title)))
        .border_style(theme.bad());
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
