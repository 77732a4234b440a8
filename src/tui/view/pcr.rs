//! The PCR pane: the TPM's PCR beside the chain head's pcr_value, and the verdict.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::chain::entry::hex32;
use crate::tui::app::App;
use crate::tui::sanitize::plain;
use crate::tui::tpm_panel::{PcrVerdict, TpmStatus, SWTPM_HINT};

use super::seal_form::SPINNER;
use super::theme::Theme;

/// Builds the rows that say how to start a TPM simulator, laid out by the
/// pane's own `row`.
pub(super) fn simulator_rows(
    row: fn(&str, String, &Theme, ratatui::style::Style) -> Line<'static>,
    theme: &Theme,
) -> [Line<'static>; 2] {
    [
        row(
            "simulator",
            format!("start one with: {SWTPM_HINT}"),
            theme,
            theme.dim(),
        ),
        row(
            "",
            "then open the view with --tcti swtpm:host=127.0.0.1,port=2321".to_owned(),
            theme,
            theme.dim(),
        ),
    ]
}

fn row(label: &str, value: String, theme: &Theme, style: ratatui::style::Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<12}"), theme.header()),
        Span::styled(value, style),
    ])
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let tpm = &app.tpm;
    let pcr = tpm.settings.pcr;
    let tcti = plain(&tpm.settings.tcti_text());
    let mut lines = Vec::new();
    match &tpm.status {
        TpmStatus::Checking => {
            lines.push(row("TPM", "being checked…".to_owned(), theme, theme.busy()));
            lines.push(row("TCTI", tcti, theme, theme.text()));
        }
        TpmStatus::NotBuilt => {
            lines.push(row(
                "TPM",
                "none: this sealdesk was built without TPM support (the `tpm` cargo feature); browsing, verification and software sealing work".to_owned(),
                theme,
                theme.bad(),
            ));
        }
        TpmStatus::Unreachable(error) => {
            lines.push(row("TPM", "not reachable".to_owned(), theme, theme.bad()));
            lines.push(row("TCTI", tcti.clone(), theme, theme.text()));
            lines.push(row("error", plain(error), theme, theme.bad()));
            if let Some(missing) = &tpm.settings.missing_tpm {
                lines.push(row("why", plain(missing), theme, theme.bad()));
            }
            lines.extend(simulator_rows(row, theme));
        }
        TpmStatus::Ready(facts) => {
            lines.push(row(
                "TPM",
                format!(
                    "reachable · manufacturer {} · firmware {}",
                    plain(&facts.manufacturer),
                    facts.firmware
                ),
                theme,
                theme.good(),
            ));
            lines.push(row("TCTI", tcti, theme, theme.text()));
        }
    }
    lines.push(row(
        "PCR",
        format!("{pcr}, SHA-256 bank"),
        theme,
        theme.text(),
    ));
    if let TpmStatus::Ready(facts) = &tpm.status {
        lines.push(row(
            "TPM value",
            hex32(&facts.pcr_value),
            theme,
            theme.text(),
        ));
    }
    match &tpm.head {
        Some(head) => lines.push(row(
            "head",
            format!(
                "entry {} pcr_value {}",
                head.index,
                head.pcr_value
                    .map_or_else(|| "(unreadable)".to_owned(), |p| hex32(&p))
            ),
            theme,
            theme.text(),
        )),
        None => lines.push(row("head", "no entries".to_owned(), theme, theme.dim())),
    }
    if let TpmStatus::Ready(facts) = &tpm.status {
        let style = match facts.verdict {
            PcrVerdict::Anchored { .. } => theme.good(),
            PcrVerdict::Behind { .. } => theme.busy(),
            PcrVerdict::Reset | PcrVerdict::Unrelated => theme.bad(),
        };
        lines.push(row("verdict", facts.verdict.describe(pcr), theme, style));
        if facts.verdict.needs_new_segment() {
            lines.push(row(
                "sealing",
                "a TPM seal needs the new-segment confirmation in the seal form (S)".to_owned(),
                theme,
                theme.dim(),
            ));
        }
    }
    if let Some(e) = &tpm.chain_error {
        lines.push(row("chain", plain(e), theme, theme.bad()));
    }
    let checked = match (&tpm.checked_at, tpm.probe_running) {
        (_, true) => format!("{} checking…", SPINNER[app.spinner % SPINNER.len()]),
        (Some(at), false) => format!("checked at {at}"),
        (None, false) => "not checked yet".to_owned(),
    };
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(checked, theme.dim())));
    let block = Block::default()
        .borders(Borders::ALL)
        .title("PCR · r refreshes · Esc closes");
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
