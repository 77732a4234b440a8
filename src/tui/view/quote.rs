//! The quote pane: the last quote, its checks and verdict, the export, and the history.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::sanitize::plain;
use crate::tui::tpm_panel::{TpmStatus, QUOTE_LIMIT};

use super::mark;
use super::seal_form::SPINNER;
use super::theme::Theme;

fn row(label: &str, value: String, theme: &Theme, style: ratatui::style::Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<14}"), theme.header()),
        Span::styled(value, style),
    ])
}

/// Lines of the history, newest first, at most `limit`.
fn history_lines(app: &App, theme: &Theme, limit: usize) -> Vec<Line<'static>> {
    let history = &app.tpm.history;
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "history (sealdesk-quotes.jsonl, {} quotes, newest first)",
            history.len()
        ),
        theme.header(),
    ))];
    for line in history.iter().rev().take(limit) {
        let r = &line.record;
        let pcr_short: String = r.pcr_value.chars().take(16).collect();
        let mark_text = if line.rollback.is_empty() {
            "✓"
        } else {
            "✗"
        };
        let style = if line.rollback.is_empty() {
            theme.text()
        } else {
            theme.bad()
        };
        lines.push(Line::from(Span::styled(
            format!(
                "{mark_text} {} PCR {}={pcr_short}… AK {}… resetCount {} restartCount {}",
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
        )));
        for finding in &line.rollback {
            lines.push(Line::from(Span::styled(
                format!("    quote_rollback: {}", plain(finding)),
                theme.bad(),
            )));
        }
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
    let room = usize::from(area.height.saturating_sub(2)).saturating_sub(lines.len() + 1);
    lines.extend(history_lines(app, theme, room.max(1)));
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
