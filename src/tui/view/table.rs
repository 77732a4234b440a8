//! The entry table.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use fuzzy_matcher::skim::SkimMatcherV2;
use fuzzy_matcher::FuzzyMatcher;

use crate::tui::app::{App, Item, LineRow, TimeMode};
use crate::tui::rows::Row;
use crate::tui::sanitize::{cell, cell_marked};

use super::mark;
use super::theme::Theme;

/// Column widths: mark, index, time, action, decision, operator, incident, reason.
fn widths(total: u16, index_digits: usize) -> [usize; 8] {
    let total = usize::from(total);
    let time = if total >= 110 { 30 } else { 19 };
    let (action, operator, incident) = if total >= 110 {
        (10, 12, 10)
    } else {
        (8, 9, 8)
    };
    let fixed = 1 + index_digits + time + action + 8 + operator + incident + 7;
    let reason = total.saturating_sub(fixed);
    [1, index_digits, time, action, 8, operator, incident, reason]
}

/// The timestamp as the chosen time mode shows it.
pub fn time_text(row: &Row, mode: TimeMode) -> String {
    let Some(nanos) = row.unix_nanos else {
        return row.timestamp.clone();
    };
    let secs = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    let Some(utc) = i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, sub))
    else {
        return row.timestamp.clone();
    };
    match mode {
        TimeMode::Written => row.timestamp.clone(),
        TimeMode::Utc => utc.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string(),
        TimeMode::Local => utc
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S%.3f%:z")
            .to_string(),
    }
}

/// Drops the year from a timestamp too wide for its column, so a narrow
/// terminal still shows the time of day. The detail pane keeps the whole text.
fn fit_time(text: String, width: usize) -> String {
    let b = text.as_bytes();
    let dated = b.len() > 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    if text.chars().count() > width && dated {
        text[5..].to_owned()
    } else {
        text
    }
}

fn marks_for(text: &str, query: &str, matcher: &SkimMatcherV2) -> Vec<usize> {
    if query.is_empty() {
        return Vec::new();
    }
    matcher
        .fuzzy_indices(text, query)
        .map(|(_, m)| m)
        .unwrap_or_default()
}

/// Spans of a row for a line that holds no entry: the mark of its worst finding, the
/// line number and finding kind, then the start of the line, escaped.
fn line_row_spans(
    app: &App,
    row: &LineRow,
    theme: &Theme,
    w: &[usize; 8],
    total: u16,
) -> Vec<Span<'static>> {
    let style = theme.row(Some(row.worst));
    let mut spans = cell(
        mark(Some(row.worst)),
        w[0],
        theme.severity(row.worst),
        theme.escape(),
    );
    spans.push(Span::raw(" "));
    let head = format!("line {}: {}", row.line, row.kind.as_str());
    let head_width = crate::tui::sanitize::display_width(&head);
    spans.extend(cell(&head, head_width, style, theme.escape()));
    spans.push(Span::raw("  "));
    let rest = usize::from(total).saturating_sub(w[0] + 3 + head_width);
    match app.line_texts.get(&row.offset) {
        Some(text) => spans.extend(cell(&text.text, rest, theme.dim(), theme.escape())),
        None => spans.extend(cell("…", rest.min(1), theme.dim(), theme.dim())),
    }
    spans
}

/// Mark of a row read before verification ended: neither good nor bad yet.
pub const PENDING_MARK: &str = "…";

/// Lines of the rows read from the end of the file before verification ended, the
/// newest at the bottom: a pending mark, `?` for the index, then the entry's cells.
fn provisional_lines(
    app: &App,
    theme: &Theme,
    w: &[usize; 8],
    capacity: usize,
) -> Vec<Line<'static>> {
    let skip = app.provisional.len().saturating_sub(capacity);
    let last = app.provisional.len().saturating_sub(1);
    let style = theme.dim();
    let mut lines = Vec::new();
    for (k, row) in app.provisional.iter().enumerate().skip(skip) {
        let mut spans = cell(PENDING_MARK, w[0], theme.busy(), theme.escape());
        spans.push(Span::raw(" "));
        spans.extend(cell("?", w[1], style, theme.escape()));
        let e = &row.entry;
        let cells: [(String, usize, Style); 6] = [
            (fit_time(time_text(row, app.time_mode), w[2]), w[2], style),
            (e.action.clone(), w[3], style),
            (e.decision.clone(), w[4], theme.decision(&e.decision)),
            (e.operator.clone(), w[5], style),
            (e.incident_id.clone(), w[6], style),
            (e.reason.clone(), w[7], style),
        ];
        for (text, width, style) in cells {
            spans.push(Span::raw(" "));
            spans.extend(cell(&text, width, style, theme.escape()));
        }
        let mut line = Line::from(spans);
        if app.follow && k == last {
            line = line.patch_style(theme.selected());
        }
        lines.push(line);
    }
    lines
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if area.height == 0 {
        return;
    }
    // Wide enough for the last index, and for at least three digits.
    let digits = app
        .offsets
        .len()
        .saturating_sub(1)
        .max(999)
        .to_string()
        .len();
    let w = widths(area.width, digits);
    let mut lines: Vec<Line> = Vec::new();
    let time_title = match app.time_mode {
        TimeMode::Written => "time (as written)",
        TimeMode::Utc => "time (UTC)",
        TimeMode::Local => "time (local)",
    };
    let titles = [
        "", "#", time_title, "action", "decision", "operator", "incident", "reason",
    ];
    let mut header = Vec::new();
    for (title, width) in titles.iter().zip(w) {
        header.extend(cell(title, width, theme.header(), theme.header()));
        header.push(Span::raw(" "));
    }
    header.pop();
    lines.push(Line::from(header));

    let capacity = usize::from(area.height - 1);
    if app.offsets.is_empty() && app.filtered.is_none() && !app.provisional.is_empty() {
        lines.extend(provisional_lines(app, theme, &w, capacity));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    let matcher = SkimMatcherV2::default();
    let mut pos = app.top;
    while lines.len() <= capacity {
        let index = match app.shown_item(pos) {
            None => break,
            Some(Item::Entry(index)) => index,
            Some(Item::Line(k)) => {
                if let Some(row) = app.line_rows.get(k) {
                    let mut line = Line::from(line_row_spans(app, row, theme, &w, area.width));
                    if pos == app.selected {
                        line = line.patch_style(theme.selected());
                    }
                    lines.push(line);
                }
                pos += 1;
                continue;
            }
        };
        if app.breaks.contains(&index) {
            let text = match app.links.get(&index) {
                Some(Some(parent)) => format!(
                    "  ↳ entry {index} links to entry {parent}, not to the entry above "
                ),
                _ => format!(
                    "── link broken before entry {index}: previous_hash does not name the entry above "
                ),
            };
            let spans = cell(
                &text,
                usize::from(area.width),
                theme.break_row(),
                theme.break_row(),
            );
            lines.push(Line::from(spans));
            if lines.len() > capacity {
                break;
            }
        }
        let severity = app.worst.get(&index).copied();
        let row_style = theme.row(severity);
        let mut spans = Vec::new();
        spans.extend(cell(
            mark(severity),
            w[0],
            theme.severity(severity.unwrap_or(crate::chain::finding::Severity::Info)),
            theme.escape(),
        ));
        if severity.is_none() {
            if let Some(first) = spans.first_mut() {
                first.style = theme.good();
            }
        }
        spans.push(Span::raw(" "));
        spans.extend(cell(&index.to_string(), w[1], row_style, theme.escape()));
        match app.rows.get(&index) {
            Some(row) => {
                let q = &app.query.text;
                let styles = |s: Style| [s, theme.escape(), theme.matched()];
                let e = &row.entry;
                let cells: [(String, usize, Style, bool); 6] = [
                    (
                        fit_time(time_text(row, app.time_mode), w[2]),
                        w[2],
                        row_style,
                        false,
                    ),
                    (e.action.clone(), w[3], row_style, false),
                    (e.decision.clone(), w[4], theme.decision(&e.decision), false),
                    (e.operator.clone(), w[5], row_style, true),
                    (e.incident_id.clone(), w[6], row_style, true),
                    (e.reason.clone(), w[7], row_style, true),
                ];
                for (text, width, style, searched) in cells {
                    spans.push(Span::raw(" "));
                    let marked = if searched {
                        marks_for(&text, q, &matcher)
                    } else {
                        Vec::new()
                    };
                    spans.extend(cell_marked(&text, width, styles(style), &marked));
                }
            }
            None => {
                spans.push(Span::raw(" "));
                spans.extend(cell("…", w[2], theme.dim(), theme.dim()));
            }
        }
        let mut line = Line::from(spans);
        if pos == app.selected {
            line = line.patch_style(theme.selected());
        }
        lines.push(line);
        pos += 1;
    }
    frame.render_widget(Paragraph::new(lines), area);
}
