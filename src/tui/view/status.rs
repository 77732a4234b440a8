//! The verdict line at the top and the status line at the bottom.

use std::time::SystemTime;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph};
use ratatui::Frame;

use crate::chain::finding::Severity;
use crate::chain::report::Report;
use crate::tui::app::{App, PromptKind, Verification};
use crate::tui::sanitize::{cell, display_width, plain};

use super::theme::Theme;

/// The local wall-clock time of `at`, `HH:MM:SS`.
pub fn clock(at: SystemTime) -> String {
    let utc: chrono::DateTime<chrono::Utc> = at.into();
    utc.with_timezone(&chrono::Local)
        .format("%H:%M:%S")
        .to_string()
}

fn filter_text(app: &App) -> Option<String> {
    if app.query.is_empty() {
        return None;
    }
    let q = &app.query;
    let mut parts = Vec::new();
    if !q.text.is_empty() {
        parts.push(format!("search \"{}\"", plain(&q.text)));
    }
    if let Some(s) = q.severity {
        parts.push(format!("severity ≥ {}", s.as_str()));
    }
    if let Some(d) = &q.decision {
        parts.push(format!("decision {}", plain(d)));
    }
    if let Some(a) = &q.action {
        parts.push(format!("action ~{}", plain(a)));
    }
    if let Some(o) = &q.operator {
        parts.push(format!("operator ~{}", plain(o)));
    }
    let total = app.offsets.len();
    let counts = if app.query_running {
        "searching…".to_owned()
    } else {
        let shown = app.shown_len();
        format!(
            "{shown} of {total} shown, {} filtered out",
            total.saturating_sub(shown)
        )
    };
    Some(format!("{}: {counts} (Esc clears)", parts.join(", ")))
}

/// `n` and the noun, singular for one: `1 entry`, `2 entries`.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn severity_counts(report: &Report) -> String {
    let errors = report.count(Severity::Error) as u64;
    let warnings = report.count(Severity::Warning) as u64;
    let infos = report.count(Severity::Info) as u64;
    let errors = if errors == 0 {
        "no errors".to_owned()
    } else {
        count(errors, "error", "errors")
    };
    format!(
        "{errors}, {}, {}",
        count(warnings, "warning", "warnings"),
        count(infos, "note", "notes")
    )
}

/// The verdict in words and its style. A deleted file or entries removed while
/// watching override the chain's own verdict.
fn verdict_text(app: &App, theme: &Theme) -> (String, ratatui::style::Style) {
    if app.file_deleted {
        let shown = app.offsets.len() as u64;
        return (
            format!(
                "✗ FILE DELETED · {} shown before were read from it",
                count(shown, "entry", "entries")
            ),
            theme.bad(),
        );
    }
    let chain = match (&app.verification, &app.report) {
        (Verification::Failed(message), _) => {
            return (format!("✗ cannot verify: {}", plain(message)), theme.bad())
        }
        (_, None) => return ("no report".to_owned(), theme.dim()),
        (_, Some(report)) => report,
    };
    if let Some(removed) = app.removed {
        let itself = if chain.valid {
            "chain itself verifies"
        } else {
            "chain itself is INVALID"
        };
        return (
            format!(
                "✗ ENTRIES REMOVED WHILE WATCHING ({} at {}) · {itself}",
                removed.entries,
                clock(removed.at)
            ),
            theme.bad(),
        );
    }
    if chain.valid {
        return (
            format!(
                "✓ VALID · {} · {}",
                count(chain.entries, "entry", "entries"),
                severity_counts(chain)
            ),
            theme.good(),
        );
    }
    let first = chain
        .findings
        .iter()
        .find(|f| f.severity == Severity::Error);
    let at = first.map_or(String::new(), |f| match f.index {
        Some(i) => format!(" · first: {} at entry {i}", f.kind.as_str()),
        None => format!(" · first: {}", f.kind.as_str()),
    });
    (
        format!("✗ INVALID · {}{at}", severity_counts(chain)),
        theme.bad(),
    )
}

pub fn render_verdict(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    if let Verification::Running { done, total, again } = app.verification {
        let ratio = if total == 0 {
            0.0
        } else {
            (done as f64 / total as f64).clamp(0.0, 1.0)
        };
        let label = if again {
            "re-verifying…"
        } else {
            "verifying…"
        };
        let gauge = LineGauge::default()
            .ratio(ratio)
            .label(Span::styled(
                format!("{label} {:>3}% ", (ratio * 100.0) as u32),
                theme.busy(),
            ))
            .filled_style(theme.busy())
            .unfilled_style(theme.dim());
        frame.render_widget(gauge, area);
        return;
    }
    let (text, style) = verdict_text(app, theme);
    let text = if width > 0 && app.removed.is_some() && display_width(&text) + 17 <= width {
        format!("{text} · A acknowledges")
    } else {
        text
    };
    let mut spans = cell(&text, width.min(display_width(&text)), style, style);
    if let Some(filter) = filter_text(app) {
        spans.push(Span::raw("  "));
        spans.extend(cell(
            &filter,
            width.saturating_sub(display_width(&text) + 2),
            theme.busy(),
            theme.escape(),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn render_status(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    if let Some((kind, text)) = &app.prompt {
        let label = match kind {
            PromptKind::Search => "/",
            PromptKind::GoTo => "go to entry (or l<line>): ",
            PromptKind::Action => "action contains: ",
            PromptKind::Operator => "operator contains: ",
            PromptKind::ExportDir => "export the quote files into directory: ",
        };
        let line = format!("{label}{text}▏");
        frame.render_widget(
            Paragraph::new(Line::from(cell(&line, width, theme.text(), theme.escape()))),
            area,
        );
        return;
    }
    let file = app.path.file_name().map_or_else(
        || app.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut parts = vec![plain(&file)];
    // The latest change of the file comes early, so that it stays visible at 80 columns.
    if let Some((at, text)) = &app.last_event {
        let text = match app.watch_events.last() {
            Some(event) if event.at == *at => event.summary(),
            _ => text.clone(),
        };
        parts.push(format!("{} {}", clock(*at), plain(&text)));
    }
    parts.extend([
        count(app.offsets.len() as u64, "entry", "entries"),
        format!("next seal: {}", app.sealing_mode()),
    ]);
    if let Verification::Running { done, total, .. } = app.verification {
        parts.push(format!("verified {done}/{total} bytes"));
    }
    if let Some(report) = &app.report {
        parts.push(format!(
            "✗{} !{} i{}",
            report.count(Severity::Error),
            report.count(Severity::Warning),
            report.count(Severity::Info)
        ));
    }
    parts.push(if app.follow {
        "following".to_owned()
    } else {
        "paused (F follows)".to_owned()
    });
    if app.pending_tail > 0 || app.partial_tail {
        parts.push("a line is being written".to_owned());
    }
    if !app.seal_modes.is_empty() {
        parts.push(format!("chain sealed: {}", app.seal_modes));
    }
    if let Some(notice) = &app.notice {
        parts.insert(0, plain(notice));
    }
    parts.push("? help".to_owned());
    let line = parts.join(" · ");
    frame.render_widget(
        Paragraph::new(Line::from(cell(&line, width, theme.dim(), theme.escape()))),
        area,
    );
}
