//! The detail pane of the selected entry: findings, every field, seal values, raw line.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::chain::finding::{Finding, FindingKind};
use crate::tui::app::{App, Item, LineRow, Verification};
use crate::tui::rows::LINE_TEXT_LIMIT;
use crate::tui::sanitize::{has_hidden, spans};

use super::mark;
use super::theme::Theme;

fn labelled(label: &str, value: &str, theme: &Theme) -> Line<'static> {
    let mut out = vec![Span::styled(format!("{label}: "), theme.dim())];
    out.extend(spans(value, theme.text(), theme.escape()));
    // Line breaks and tabs are shown as `\n` and `\t` too, but they are ordinary text.
    if has_hidden(value.replace(['\n', '\t'], "").as_str()) {
        out.push(Span::styled(
            " [hidden characters shown escaped]",
            theme.escape(),
        ));
    }
    Line::from(out)
}

fn finding_lines(f: &Finding, theme: &Theme, out: &mut Vec<Line<'static>>) {
    let mut head = vec![
        Span::styled(
            format!("{} {} ", mark(Some(f.severity)), f.severity.as_str()),
            theme.severity(f.severity),
        ),
        Span::styled(format!("{}: ", f.kind.as_str()), theme.severity(f.severity)),
    ];
    head.extend(spans(&f.message, theme.text(), theme.escape()));
    out.push(Line::from(head));
    out.push(Line::from(Span::styled(
        format!("    {}", f.kind.meaning()),
        theme.dim(),
    )));
    if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
        out.push(labelled("    expected", e, theme));
        out.push(labelled("    actual  ", a, theme));
    }
}

/// Draws the detail of a line that holds no entry: its findings and its bytes, escaped.
fn render_line_row(app: &App, row: &LineRow, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line<'static>> = Vec::new();
    let findings = app.report.iter().flat_map(|r| r.findings.iter());
    for f in findings.filter(|f| f.index.is_none() && f.offset == Some(row.offset)) {
        finding_lines(f, theme, &mut lines);
    }
    match app.line_texts.get(&row.offset) {
        None => lines.push(Line::from(Span::styled("reading the line…", theme.dim()))),
        Some(text) => {
            let label = if text.len > LINE_TEXT_LIMIT as u64 {
                format!("raw line (first {} of {} bytes)", LINE_TEXT_LIMIT, text.len)
            } else {
                format!("raw line ({} bytes)", text.len)
            };
            lines.push(labelled(&label, &text.text, theme));
        }
    }
    let title = format!("line {} · offset {} · no entry", row.line, row.offset);
    let block = Block::default().borders(Borders::TOP).title(title);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    if area.height == 0 {
        return;
    }
    if let Some(Item::Line(k)) = app.selected_item() {
        if let Some(row) = app.line_rows.get(k) {
            render_line_row(app, row, theme, frame, area);
            return;
        }
    }
    let Some(index) = app.selected_index() else {
        let text = match &app.verification {
            Verification::Running { .. } => "entries appear as verification reaches them",
            Verification::Failed(_) => "the chain could not be read",
            Verification::Done if app.filtered.is_some() => {
                "no entry matches the search and filters"
            }
            Verification::Done => "the file holds no entry",
        };
        let block = Block::default().borders(Borders::TOP).title("entry");
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(text, theme.dim()))).block(block),
            area,
        );
        return;
    };
    let findings: Vec<&Finding> = app
        .report
        .as_ref()
        .map(|r| {
            r.findings
                .iter()
                .filter(|f| f.index == Some(index))
                .collect()
        })
        .unwrap_or_default();
    let mut lines: Vec<Line<'static>> = Vec::new();
    for f in &findings {
        finding_lines(f, theme, &mut lines);
    }
    if findings.is_empty() && app.verification == Verification::Done {
        lines.push(Line::from(Span::styled(
            "✓ no finding for this entry",
            theme.good(),
        )));
    }
    let mut title = format!("entry {index}");
    match app.rows.get(&index) {
        None => lines.push(Line::from(Span::styled("reading the line…", theme.dim()))),
        Some(row) => {
            title = format!("entry {index} · offset {}", row.offset);
            if let Some(err) = &row.error {
                lines.push(labelled("decoding", err, theme));
            }
            for (key, value) in &row.fields {
                lines.push(labelled(
                    &format!("  {}", crate::tui::sanitize::plain(key)),
                    value,
                    theme,
                ));
            }
            lines.push(labelled("hash (stored)", &row.hash, theme));
            let same = row.hash.eq_ignore_ascii_case(&row.computed_hash);
            let note = if same {
                "the entry bytes hash to the stored hash"
            } else if findings.iter().any(|f| f.kind == FindingKind::HashMismatch) {
                "differs: the sealed content was changed"
            } else {
                "differs from the raw bytes; see the findings for the re-encoding"
            };
            lines.push(labelled(
                "hash (computed over the entry bytes)",
                &format!("{} ({note})", row.computed_hash),
                theme,
            ));
            let sig = findings.iter().find(|f| {
                matches!(
                    f.kind,
                    FindingKind::SignatureInvalid
                        | FindingKind::SignatureUnverifiable
                        | FindingKind::KeyChanged
                )
            });
            let sig_status = match sig {
                Some(f) => format!("{} ({})", row.signature, f.kind.as_str()),
                None if app.verification == Verification::Done => {
                    format!("{} (verifies)", row.signature)
                }
                None => row.signature.clone(),
            };
            lines.push(labelled("signature", &sig_status, theme));
            lines.push(labelled("pcr_value (stored)", &row.pcr_value, theme));
            if let Some(f) = findings.iter().find(|f| f.kind == FindingKind::PcrMismatch) {
                if let Some(e) = &f.expected {
                    lines.push(labelled("pcr_value (expected)", e, theme));
                }
            }
            lines.push(labelled("seal_mode", &row.seal_mode, theme));
            lines.push(labelled("chain_idx", &row.chain_idx, theme));
            let raw_label = if row.raw_cut {
                "raw line (first 16 KiB)"
            } else {
                "raw line"
            };
            lines.push(labelled(raw_label, &row.raw, theme));
        }
    }
    let block = Block::default().borders(Borders::TOP).title(title);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
