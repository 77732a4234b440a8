//! The quote pane: the last quote, its checks and verdict, the export, and the history.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
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

/// Word-wraps `line` to `width` columns as [`wrap_words`] does, keeping the style of
/// each character, so that the pane can count its rows before it scrolls.
fn wrap_styled(line: &Line, width: usize) -> Vec<Line<'static>> {
    let styled: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|span| {
            let style = line.style.patch(span.style);
            span.content.chars().map(move |c| (c, style))
        })
        .collect();

    // wrap_words drops leading spaces, so an indented line keeps its indent on
    // every row it wraps to.
    let indent = styled.iter().take_while(|(c, _)| *c == ' ').count();
    let indent = if indent < width / 2 { indent } else { 0 };
    let (head, styled) = styled.split_at(indent);
    let text: String = styled.iter().map(|(c, _)| *c).collect();
    let rows = wrap_words(&text, width - indent);

    let kept: usize = rows.iter().map(|r| r.chars().count()).sum();
    // wrap_words drops spaces at row breaks only, so these are skipped at row starts.
    let mut dropped = styled.len().saturating_sub(kept);
    let mut pos = 0;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let first = row.chars().next();
        while dropped > 0 && styled.get(pos).map(|(c, _)| *c) == Some(' ') && first != Some(' ') {
            pos += 1;
            dropped -= 1;
        }
        let mut spans: Vec<Span<'static>> = Vec::new();
        if let Some((_, style)) = head.first() {
            spans.push(Span::styled(" ".repeat(indent), *style));
        }
        let mut run = String::new();
        let mut run_style = None;
        for c in row.chars() {
            let style = styled.get(pos).map_or(Style::default(), |(_, s)| *s);
            pos += 1;
            if run_style.is_some_and(|s| s != style) {
                spans.push(Span::styled(
                    std::mem::take(&mut run),
                    run_style.unwrap_or(style),
                ));
            }
            run_style = Some(style);
            run.push(c);
        }
        if let Some(style) = run_style {
            spans.push(Span::styled(run, style));
        }
        out.push(Line::from(spans));
    }
    out
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
/// older quote shows once the chain has grown, so it gets the neutral ·. A quote
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

/// Lines of the history, newest first.
// NOTE: every quote of the log is formatted and wrapped on each frame, so the
// drawing time grows with the length of the log.
fn history_lines(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    let history = &app.tpm.history;
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "history (sealdesk-quotes.jsonl, {}, newest first)",
            count(history.len(), "quote")
        ),
        theme.header(),
    ))];
    for line in history.iter().rev() {
        let r = &line.record;
        let pcr_short: String = r.pcr_value.chars().take(16).collect();
        let (mark_text, style) = history_mark(line, theme);
        lines.push(Line::from(Span::styled(
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
        TpmStatus::Unreachable(e) => {
            lines.push(row(
                "TPM",
                format!("not reachable, so no quote can be taken: {}", plain(e)),
                theme,
                theme.bad(),
            ));
            lines.extend(super::pcr::simulator_rows(row, theme));
        }
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
                plain(&format!(
                    "sh {}/checkquote.sh  (the same command, for copying)",
                    export.dir.display()
                )),
                theme,
                theme.text(),
            ));
            lines.push(row(
                "which runs",
                plain(&export.command),
                theme,
                theme.text(),
            ));
        }
        Some(Err(e)) => lines.push(row("export failed", plain(e), theme, theme.bad())),
        None => {}
    }
    lines.push(Line::from(""));
    lines.extend(history_lines(app, theme));

    let width = usize::from(area.width.saturating_sub(2));
    let rows: Vec<Line<'static>> = lines.iter().flat_map(|l| wrap_styled(l, width)).collect();
    let visible = usize::from(area.height.saturating_sub(2));
    let max_scroll = rows.len().saturating_sub(visible);
    pane.max_scroll
        .set(u16::try_from(max_scroll).unwrap_or(u16::MAX));
    let top = usize::from(pane.scroll).min(max_scroll);
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title("quote · t takes a quote · e exports for tpm2_checkquote · Esc closes");
    if max_scroll > 0 {
        let last = (top + visible).min(rows.len());
        block = block.title_bottom(format!(
            "j/k PgUp/PgDn scroll · rows {}-{last} of {}",
            top + 1,
            rows.len()
        ));
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(rows.into_iter().skip(top).take(visible).collect::<Vec<_>>()).block(block),
        area,
    );
}
