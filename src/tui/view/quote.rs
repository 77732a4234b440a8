//! The quote pane: the last quote, its checks and verdict, the export, and the history.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::sanitize::plain;
use crate::tui::tpm_panel::{HistoryLine, PcrVerdict, TpmStatus, QUOTE_LIMIT};

use super::mark;
use super::seal_form::{wrap_words, SPINNER};
use super::theme::Theme;

fn row(label: &str, value: String, theme: &Theme, style: ratatui::style::Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<14}"), theme.header()),
        Span::styled(value, style),
    ])
}

/// Rows that `line` takes when word-wrapped to `width` columns.
fn rows_of(line: &Line, width: usize) -> usize {
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    wrap_words(&text, width).len()
}

/// Returns `n` and `noun`, with an `s` unless `n` is 1.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Returns the mark and style of a history line. Only a quote of the current head
/// without rollback findings gets ✓. A quote equal to an earlier entry is what an
/// older quote shows once the chain has grown, so it gets the neutral ·; a quote
/// equal to no entry, an all-zero PCR or a rollback gets ✗.
fn history_mark(line: &HistoryLine, theme: &Theme) -> (&'static str, ratatui::style::Style) {
    if !line.rollback.is_empty() {
        return ("✗", theme.bad());
    }
    match line.verdict {
        PcrVerdict::Anchored { .. } => ("✓", theme.text()),
        PcrVerdict::Behind { .. } => ("·", theme.dim()),
        PcrVerdict::Reset | PcrVerdict::Unrelated => ("✗", theme.bad()),
    }
}

/// Lines of the history, newest first, that fit in `room` rows of `width` columns.
/// When older quotes do not fit, the last line says how many are left out.
fn history_lines(app: &App, theme: &Theme, room: usize, width: usize) -> Vec<Line<'static>> {
    let history = &app.tpm.history;
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "history (sealdesk-quotes.jsonl, {}, newest first)",
            count(history.len(), "quote")
        ),
        theme.header(),
    ))];
    let mut used = 1;
    for (shown, line) in history.iter().rev().enumerate() {
        let r = &line.record;
        let pcr_short: String = r.pcr_value.chars().take(16).collect();
        let (mark_text, style) = history_mark(line, theme);
        let mut quote = vec![Line::from(Span::styled(
            format!(
                "{mark_text} {}: {} PCR {}={pcr_short}… AK {}… resetCount {} restartCount {}",
                line.verdict.short(),
                plain(&r.time),
                r.pcr,
                plain(&r.ak_fingerprint)
                    .chars()
                    .take(19)
                    .collect::<String>(),
                r.reset_count,
                r.restart_count,
            ),
            style,
        ))];
        for finding in &line.rollback {
            quote.push(Line::from(Span::styled(
                format!("    quote_rollback: {}", plain(finding)),
                theme.bad(),
            )));
        }
        let rows: usize = quote.iter().map(|l| rows_of(l, width)).sum();
        let left = history.len() - shown;
        // The last quote needs no row for the hint after it.
        let hint_row = usize::from(left > 1);
        if used + rows + hint_row > room {
            lines.push(Line::from(Span::styled(
                format!(
                    "… {} not shown; make the terminal taller",
                    count(left, "more quote")
                ),
                theme.busy(),
            )));
            break;
        }
        used += rows;
        lines.extend(quote);
    }
    if history.is_empty() {
        lines.push(Line::from(Span::styled(
            "no quotes recorded yet",
            theme.dim(),
        )));
    }
    lines
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let pane = &app.tpm.quote;
    let mut lines = vec![Line::from(Span::styled(
        format!("limit: {QUOTE_LIMIT}"),
        theme.busy(),
    ))];
    match &app.tpm.status {
        TpmStatus::Unreachable(e) => lines.push(row(
            "TPM",
            format!("not reachable, so no quote can be taken: {}", plain(e)),
            theme,
            theme.bad(),
        )),
        TpmStatus::NotBuilt => lines.push(row(
            "TPM",
            "none: this sealdesk was built without TPM support".to_owned(),
            theme,
            theme.bad(),
        )),
        _ => {}
    }
    if pane.running {
        lines.push(Line::from(Span::styled(
            format!("{} taking a quote…", SPINNER[app.spinner % SPINNER.len()]),
            theme.busy(),
        )));
    }
    if let Some(e) = &pane.error {
        lines.push(row("quote failed", plain(e), theme, theme.bad()));
    }
    match &pane.last {
        None => lines.push(Line::from(Span::styled(
            "no quote taken in this session; t takes one with a fresh nonce",
            theme.dim(),
        ))),
        Some(q) => {
            lines.push(row("time", plain(&q.time), theme, theme.text()));
            lines.push(row("nonce", plain(&q.nonce), theme, theme.text()));
            lines.push(row("AK", plain(&q.ak_fingerprint), theme, theme.text()));
            lines.push(row("PCR value", plain(&q.pcr_value), theme, theme.text()));
            for (name, passed, text) in &q.checks {
                let style = if *passed { theme.good() } else { theme.bad() };
                lines.push(row(name, plain(text), theme, style));
            }
            let style = if q.anchored {
                theme.good()
            } else {
                theme.bad()
            };
            lines.push(row("anchor", plain(&q.verdict), theme, style));
            for (severity, text) in &q.findings {
                lines.push(Line::from(Span::styled(
                    format!("{} {}", mark(Some(*severity)), plain(text)),
                    theme.severity(*severity),
                )));
            }
        }
    }
    match &pane.export {
        Some(Ok(export)) => {
            lines.push(row(
                "exported to",
                plain(&export.dir.display().to_string()),
                theme,
                theme.good(),
            ));
            lines.push(row(
                "check with",
                plain(&export.command),
                theme,
                theme.text(),
            ));
        }
        Some(Err(e)) => lines.push(row("export failed", plain(e), theme, theme.bad())),
        None => {}
    }
    lines.push(Line::from(""));
    let width = usize::from(area.width.saturating_sub(2));
    let used: usize = lines.iter().map(|l| rows_of(l, width)).sum();
    let room = usize::from(area.height.saturating_sub(2)).saturating_sub(used);
    lines.extend(history_lines(app, theme, room.max(2), width));
    let block = Block::default()
        .borders(Borders::ALL)
        .title("quote · t takes a quote · e exports for tpm2_checkquote · Esc closes");
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
