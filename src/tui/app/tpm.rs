//! The operator and auditor part of the state: the seal form, the PCR pane, the quote
//! pane and the TPM jobs they queue.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent};

use crate::chain::finding::Severity;
use crate::tui::form::{Field, FormContext, FormOutcome, SealModeChoice};
use crate::tui::tpm_panel::{
    default_export_dir, PcrVerdict, Probe, SealFailure, SealedInfo, TpmJob, TpmSettings, TpmStatus,
    TpmView, VerifiedChain,
};

use super::{App, Overlay, Popup, PromptKind, Verification};

impl App {
    /// Sets where the TPM is and which keys verify, and queues the first probe.
    pub fn with_tpm(mut self, settings: TpmSettings) -> App {
        self.tpm = TpmView::new(settings);
        self.request_probe();
        self
    }

    /// Takes the TPM jobs queued by updates.
    pub fn take_tpm_jobs(&mut self) -> Vec<TpmJob> {
        std::mem::take(&mut self.tpm_jobs)
    }

    /// Queues a probe of the TPM and the chain, or marks one due after the running one.
    ///
    /// The probe compares the TPM with the chain as the worker verified it.
    /// While the worker verifies, nothing is queued, because the finished
    /// verification requests the probe, so the chain is not verified twice.
    pub fn request_probe(&mut self) {
        if matches!(self.verification, Verification::Running { .. }) {
            return;
        }
        if self.tpm.probe_running {
            self.tpm.probe_pending = true;
        } else {
            self.tpm.probe_running = true;
            let verified = self.report.as_ref().map(|report| VerifiedChain {
                report: Arc::clone(report),
                offsets: Arc::clone(&self.offsets),
            });
            self.tpm_jobs.push(TpmJob::Probe(verified));
        }
    }

    /// Returns the mode a seal would use now, in a word or two for the status line.
    /// Software mode is returned only when chosen in the form, never as a fallback.
    pub fn sealing_mode(&self) -> &'static str {
        if self.form.mode == SealModeChoice::Software {
            return "software";
        }
        match &self.tpm.status {
            TpmStatus::Checking => "TPM?",
            TpmStatus::Ready(_) => "TPM",
            TpmStatus::Unreachable(_) | TpmStatus::NotBuilt => "no TPM",
        }
    }

    /// Returns the facts from the view's state that validation of the seal form needs.
    pub fn form_context(&self) -> FormContext {
        let pcr = self.tpm.settings.pcr;
        let tpm_unavailable = match &self.tpm.status {
            TpmStatus::Unreachable(e) => Some(e.clone()),
            TpmStatus::NotBuilt => Some("this sealdesk was built without TPM support".to_owned()),
            _ => None,
        };
        let new_segment_needed = match &self.tpm.status {
            TpmStatus::Ready(facts) if facts.verdict.needs_new_segment() => {
                let state = match &facts.verdict {
                    PcrVerdict::Reset => "is all zeros, not the head's pcr_value".to_owned(),
                    PcrVerdict::Behind { index, .. } => {
                        format!("equals the pcr_value of entry {index}, not of the head")
                    }
                    _ => "matches no entry's pcr_value".to_owned(),
                };
                Some(format!(
                    "needed: the TPM's PCR {pcr} {state}, for example because software entries were never extended into this TPM, so a TPM seal resets PCR {pcr} and starts a new segment"
                ))
            }
            _ => None,
        };
        let head_broken = self.offsets.len().checked_sub(1).and_then(|head| {
            (self.worst.get(&(head as u64)) == Some(&Severity::Error))
                .then(|| format!("needed: the head (entry {head}) has error findings"))
        });
        FormContext {
            tpm_unavailable,
            new_segment_needed,
            head_broken,
        }
    }

    pub(super) fn on_probe(&mut self, probe: Probe) {
        self.tpm.probe_running = false;
        self.tpm.apply(probe);
        // Update the message beside the mode once the TPM answers (or still does not).
        if self.form_open && self.form.error(Field::Mode).is_some() {
            let context = self.form_context();
            self.form.validate(&context);
        }
        if self.tpm.probe_pending {
            self.tpm.probe_pending = false;
            self.request_probe();
        }
    }

    pub(super) fn on_sealed(&mut self, result: Result<SealedInfo, SealFailure>) {
        self.form.sealing = false;
        match result {
            Ok(info) => {
                let mut text = format!(
                    "sealed entry {} ({}) in {} mode",
                    info.index,
                    info.id,
                    info.mode.as_str()
                );
                for note in &info.notes {
                    text.push_str("; ");
                    text.push_str(note);
                }
                self.notice = Some(text);
                self.form.clear_after_seal();
                self.form_open = false;
                self.select_after_seal = Some(info.index);
                if info.keys_changed {
                    self.reload_keys = true;
                    self.awaiting_reverify = true;
                } else {
                    self.select_sealed();
                }
            }
            Err(failure) => {
                if failure.stale_preview {
                    self.rebuild_preview(failure.current_head.as_deref());
                } else {
                    self.form.preview = None;
                }
                self.popup = Some(Popup {
                    title: failure.title,
                    message: failure.message,
                    advice: failure.advice,
                });
            }
        }
        self.request_probe();
    }

    /// Reports a failed key reload and selects the sealed entry without waiting for it.
    pub fn keys_reload_failed(&mut self, error: &str) {
        self.notice = Some(format!(
            "reloading the keys failed, so the sealed entry is verified with the old keys: {error}"
        ));
        self.awaiting_reverify = false;
        self.select_sealed();
    }

    /// Selects the entry just sealed once the view has it.
    pub(super) fn select_sealed(&mut self) {
        if self.awaiting_reverify {
            return;
        }
        if let Some(index) = self.select_after_seal {
            if index < self.offsets.len() as u64 {
                self.select_after_seal = None;
                self.jump_to(index);
            }
        }
    }

    /// Validates the form and builds the preview; on failure the messages stay beside the fields.
    pub(super) fn preview_form(&mut self) {
        let context = self.form_context();
        if !self.form.validate(&context) {
            self.form.preview = None;
            if self.form.error(Field::Mode).is_some() {
                // The TPM was unreachable at the last probe: check again, so that
                // the next Enter sees whether it is back.
                self.request_probe();
                self.form.notice = Some("checking the TPM again".to_owned());
            }
            return;
        }
        if !matches!(self.verification, Verification::Done) {
            self.form.notice =
                Some("the chain is still being verified; preview again when it is done".to_owned());
            return;
        }
        let head = self.offsets.len().checked_sub(1);
        let previous = match (head, self.report.as_ref().and_then(|r| r.head.as_ref())) {
            (None, _) => None,
            (Some(index), Some(h)) if h.index == index as u64 => Some(h.hash.clone()),
            (Some(index), _) => {
                self.form.notice = Some(format!(
                    "the hash of the head (entry {index}) is unknown; sealing is not possible until verification reads it"
                ));
                return;
            }
        };
        self.build_preview_on(previous.as_deref());
    }

    /// Builds a new preview linked to `head_hash`, the file's head as a seal that found
    /// the old preview stale read it. The view's report is not used here, because the
    /// worker may not have verified the appended entries yet, and a preview linked to
    /// its older head would be stale again.
    pub(super) fn rebuild_preview(&mut self, head_hash: Option<&str>) {
        let context = self.form_context();
        if !self.form.validate(&context) {
            self.form.preview = None;
            return;
        }
        self.build_preview_on(head_hash);
    }

    fn build_preview_on(&mut self, previous: Option<&str>) {
        match self
            .form
            .build_preview(previous, crate::chain::gotime::GoTime::now_local())
        {
            Ok(preview) => self.form.preview = Some(preview),
            Err(e) => {
                self.form.preview = None;
                self.form.notice = Some(e);
            }
        }
    }

    pub(super) fn on_form_key(&mut self, key: KeyEvent) {
        match self.form.on_key(key) {
            FormOutcome::Stay => {}
            FormOutcome::Close => self.form_open = false,
            FormOutcome::Preview => self.preview_form(),
            FormOutcome::Seal => {
                if let Some(preview) = self.form.preview.clone() {
                    self.form.sealing = true;
                    self.tpm_jobs.push(TpmJob::Seal {
                        options: crate::seal::SealOptions {
                            pcr: self.tpm.settings.pcr,
                            new_segment: preview.new_segment,
                            force: preview.force,
                            lock_timeout: std::time::Duration::from_secs(10),
                        },
                        preview: Box::new(preview),
                    });
                }
            }
        }
    }

    /// Rows that PgUp and PgDn scroll the quote pane: its inner height less one row
    /// of overlap.
    fn quote_page(&self) -> i32 {
        i32::from(self.height.saturating_sub(7)).max(1)
    }

    fn scroll_quote(&mut self, delta: i32) {
        let max = i32::from(self.tpm.quote.max_scroll.get());
        let scroll = (i32::from(self.tpm.quote.scroll) + delta).clamp(0, max);
        // The clamp keeps the value within 0..=u16::MAX.
        self.tpm.quote.scroll = u16::try_from(scroll).unwrap_or(0);
    }

    pub(super) fn on_pane_key(&mut self, key: KeyEvent, pane: Overlay) {
        match (pane, key.code) {
            (_, KeyCode::Esc | KeyCode::Char('q')) => self.overlay = Overlay::None,
            (Overlay::Pcr, KeyCode::Char('P')) | (Overlay::Quote, KeyCode::Char('Q')) => {
                self.overlay = Overlay::None
            }
            (Overlay::Pcr, KeyCode::Char('r')) => self.request_probe(),
            (Overlay::Quote, KeyCode::Char('t') | KeyCode::Enter) if !self.tpm.quote.running => {
                self.tpm.quote.running = true;
                self.tpm_jobs.push(TpmJob::Quote);
            }
            (Overlay::Quote, KeyCode::Char('j') | KeyCode::Down) => self.scroll_quote(1),
            (Overlay::Quote, KeyCode::Char('k') | KeyCode::Up) => self.scroll_quote(-1),
            (Overlay::Quote, KeyCode::PageDown) => self.scroll_quote(self.quote_page()),
            (Overlay::Quote, KeyCode::PageUp) => self.scroll_quote(-self.quote_page()),
            (Overlay::Quote, KeyCode::Char('g') | KeyCode::Home) => self.tpm.quote.scroll = 0,
            (Overlay::Quote, KeyCode::Char('G') | KeyCode::End) => {
                self.tpm.quote.scroll = self.tpm.quote.max_scroll.get()
            }
            (Overlay::Quote, KeyCode::Char('e')) => {
                if self.tpm.quote.last.is_some() {
                    let dir = default_export_dir(&self.path);
                    self.prompt = Some((PromptKind::ExportDir, dir.display().to_string()));
                } else {
                    self.notice = Some("take a quote first (t)".to_owned());
                }
            }
            _ => {}
        }
    }
}
