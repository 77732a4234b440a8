//! TPM state of the view (PCR pane, quote pane, the mode sealing would use) and, in
//! [`jobs`], the blocking jobs that talk to the TPM. Each job takes the chain's lock,
//! connects, works, drops the TPM handle (which waits until the worker flushed its keys)
//! and releases the lock, so the view never flushes the keys of a `sealdesk seal`
//! running in another process.

use std::path::PathBuf;
use std::sync::Arc;

use p256::ecdsa::VerifyingKey;

use crate::chain::entry::SealMode;
use crate::chain::finding::Severity;
use crate::chain::report::Report;
use crate::cli::KeyArgs;
use crate::commands::quote::QuoteRecord;
use crate::seal::SealOptions;
use crate::tpm::TctiSelection;

use super::form::Preview;

pub mod jobs;

pub use jobs::{checkquote_command, default_export_dir, export, probe, quote, seal_entry};

/// How to start the simulator when no TPM is reachable.
pub const SWTPM_HINT: &str = "mkdir -p /tmp/sealdesk-swtpm && swtpm socket --tpm2 --tpmstate dir=/tmp/sealdesk-swtpm --server type=tcp,port=2321,bindaddr=127.0.0.1 --ctrl type=tcp,port=2322,bindaddr=127.0.0.1 --flags not-need-init,startup-clear";

/// The limit of every quote, shown wherever a quote is.
pub const QUOTE_LIMIT: &str = "a quote of PCR 23 shows the TPM agrees with the head, not that nobody with root reset and replayed the PCR";

/// Source of the HMAC secret for software sealing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Environment,
    File(PathBuf),
    /// No secret was given, so the public development key signs.
    DevelopmentKey,
}

impl SecretSource {
    /// Names the key in words, for the form's preview.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Environment => "HMAC secret from SEALDESK_HMAC_SECRET".to_owned(),
            SecretSource::File(path) => format!("HMAC secret from {}", path.display()),
            SecretSource::DevelopmentKey => {
                "public development key (no SEALDESK_HMAC_SECRET; anyone can forge these entries)"
                    .to_owned()
            }
        }
    }
}

/// Settings of the view's TPM work: the TPM, the PCR and the verification keys.
#[derive(Debug, Clone)]
pub struct TpmSettings {
    pub tcti: TctiSelection,
    pub pcr: u8,
    pub key_args: KeyArgs,
    pub secret: SecretSource,
    /// Reason the program that opened the view has no TPM to offer, e.g. the demo without swtpm.
    pub missing_tpm: Option<String>,
    /// Program that chose the TCTI when the operator did not, e.g. "the demo", which
    /// passes the TCTI of the swtpm it starts as if it were a `--tcti` value.
    pub tcti_set_by: Option<String>,
}

impl TpmSettings {
    /// Settings from the command line: `tcti` is the `--tcti` value, if any.
    pub fn new(tcti: Option<&str>, key_args: &KeyArgs) -> TpmSettings {
        let secret = if let Some(path) = &key_args.secret_file {
            SecretSource::File(path.clone())
        } else if std::env::var_os("SEALDESK_HMAC_SECRET").is_some_and(|v| !v.is_empty()) {
            SecretSource::Environment
        } else {
            SecretSource::DevelopmentKey
        };
        TpmSettings {
            tcti: crate::tpm::resolve_tcti(tcti),
            pcr: 23,
            key_args: key_args.clone(),
            secret,
            missing_tpm: None,
            tcti_set_by: None,
        }
    }

    /// Names the TCTI and where it came from, e.g. "swtpm:port=2321 (set by the demo)".
    pub fn tcti_text(&self) -> String {
        match &self.tcti_set_by {
            Some(by) => format!("{} (set by {by})", self.tcti.tcti),
            None => self.tcti.to_string(),
        }
    }
}

/// Relation of the TPM's PCR to the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcrVerdict {
    /// The PCR equals the head's `pcr_value` (or is zero on an empty chain).
    Anchored { head: Option<u64> },
    /// The PCR equals the `pcr_value` of entry `index`, an earlier entry than `head`.
    Behind {
        index: u64,
        head: u64,
        only_software_after: bool,
        /// The head is a TPM entry one past `index`: a seal was interrupted after the
        /// append, and the next seal completes it without a new segment.
        interrupted: bool,
    },
    /// The PCR is all zeros and the chain is not empty: a reboot or a reset.
    Reset,
    /// The PCR equals no entry's `pcr_value`.
    Unrelated,
}

impl PcrVerdict {
    /// Returns whether sealing in TPM mode needs the new-segment confirmation.
    pub fn needs_new_segment(&self) -> bool {
        match self {
            PcrVerdict::Anchored { .. } => false,
            PcrVerdict::Behind { interrupted, .. } => !interrupted,
            PcrVerdict::Reset | PcrVerdict::Unrelated => true,
        }
    }

    /// Names the verdict in a few words.
    pub fn short(&self) -> String {
        match self {
            PcrVerdict::Anchored { .. } => "anchored".to_owned(),
            PcrVerdict::Behind { index, .. } => format!("equal to entry {index}"),
            PcrVerdict::Reset => "all zeros".to_owned(),
            PcrVerdict::Unrelated => "matches no entry".to_owned(),
        }
    }

    /// Explains the verdict in words.
    pub fn describe(&self, pcr: u8) -> String {
        match self {
            PcrVerdict::Anchored { head: Some(head) } => format!(
                "anchored: PCR {pcr} equals the pcr_value of the head (entry {head})"
            ),
            PcrVerdict::Anchored { head: None } => {
                format!("anchored: the chain is empty and PCR {pcr} is zero")
            }
            PcrVerdict::Behind {
                index,
                head,
                only_software_after,
                interrupted,
            } => {
                let why = if *interrupted {
                    "the last TPM seal was interrupted after its append; the next seal completes it"
                } else if *only_software_after {
                    "they are software entries, which never extend the TPM"
                } else {
                    "entries after it were never extended into the TPM"
                };
                format!(
                    "behind: PCR {pcr} equals the pcr_value of entry {index}, not of the head (entry {head}); entries {} to {head}: {why}",
                    index + 1
                )
            }
            PcrVerdict::Reset => format!(
                "reset: PCR {pcr} is all zeros: the TPM restarted, the PCR was reset, or the chain was never extended into this TPM (software entries never are); the next TPM seal starts a new segment"
            ),
            PcrVerdict::Unrelated => format!(
                "diverged: PCR {pcr} matches no entry's pcr_value: entries were cut from the end of the chain, or PCR {pcr} was extended by another program"
            ),
        }
    }
}

/// The TPM as the last probe found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmFacts {
    pub manufacturer: String,
    pub firmware: String,
    pub pcr_value: [u8; 32],
    pub signing_key: String,
    pub verdict: PcrVerdict,
}

/// Whether the TPM can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmStatus {
    /// No probe has finished yet.
    Checking,
    Ready(TpmFacts),
    /// The TPM is not reachable. The text contains the response code when there is one.
    Unreachable(String),
    /// The binary has no TPM support.
    NotBuilt,
}

/// The chain head as the last probe read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadFacts {
    pub index: u64,
    pub pcr_value: Option<[u8; 32]>,
}

/// One line of the quote history with the rollback findings against the lines before it.
#[derive(Debug, Clone)]
pub struct HistoryLine {
    pub record: QuoteRecord,
    /// The quoted PCR compared with the chain as it is now, not as it was when quoted.
    pub verdict: PcrVerdict,
    pub rollback: Vec<String>,
}

/// Output of a probe job.
#[derive(Debug, Clone)]
pub struct Probe {
    pub status: TpmStatus,
    pub head: Option<HeadFacts>,
    pub history: Vec<HistoryLine>,
    /// The time of the probe, `HH:MM:SS` local.
    pub at: String,
    /// A failure reading the chain or the quote log.
    pub chain_error: Option<String>,
}

/// A verified quote as the quote pane shows it.
#[derive(Debug, Clone)]
pub struct QuoteView {
    pub time: String,
    pub nonce: String,
    pub ak_fingerprint: String,
    pub pcr_value: String,
    /// Check name, passed, text.
    pub checks: Vec<(String, bool, String)>,
    pub verdict: String,
    pub anchored: bool,
    pub findings: Vec<(Severity, String)>,
    pub files: Arc<QuoteFiles>,
}

/// Quote parts that `tpm2_checkquote` reads, kept for an export.
#[derive(Debug, Clone)]
pub struct QuoteFiles {
    pub attest: Vec<u8>,
    pub signature: Vec<u8>,
    pub pcrs: Vec<[u8; 32]>,
    pub nonce: [u8; 32],
    pub ak: VerifyingKey,
}

/// A finished export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub dir: PathBuf,
    pub command: String,
}

/// A sealed entry as the view reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInfo {
    pub index: u64,
    pub id: String,
    pub mode: SealMode,
    pub notes: Vec<String>,
    /// The signing key file beside the chain changed, so verification needs its keys again.
    pub keys_changed: bool,
}

/// A failed seal: what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealFailure {
    pub title: String,
    pub message: String,
    pub advice: String,
    /// The chain's head moved since the preview, so a new preview is due.
    pub stale_preview: bool,
    /// With `stale_preview`: the hash of the file's head as the seal read it under
    /// the chain's lock, `None` for an empty chain. The new preview links to it,
    /// because the view's own report may not have caught up with the file yet.
    pub current_head: Option<String>,
}

/// State of the quote pane.
#[derive(Debug, Clone, Default)]
pub struct QuotePane {
    /// Rows scrolled off the top of the pane.
    pub scroll: u16,
    /// The largest useful `scroll`, set by the last draw, which alone knows the
    /// pane's size and how its text wraps.
    pub max_scroll: std::cell::Cell<u16>,
    pub running: bool,
    pub last: Option<QuoteView>,
    pub error: Option<String>,
    pub export: Option<Result<Export, String>>,
}

/// TPM state of the view: settings, the last probe, the quote pane.
#[derive(Debug, Clone)]
pub struct TpmView {
    pub settings: TpmSettings,
    pub status: TpmStatus,
    pub head: Option<HeadFacts>,
    pub history: Vec<HistoryLine>,
    /// Time of the last finished probe, `HH:MM:SS`.
    pub checked_at: Option<String>,
    pub chain_error: Option<String>,
    pub quote: QuotePane,
    pub probe_running: bool,
    pub probe_pending: bool,
}

impl TpmView {
    pub fn new(settings: TpmSettings) -> TpmView {
        TpmView {
            settings,
            status: TpmStatus::Checking,
            head: None,
            history: Vec::new(),
            checked_at: None,
            chain_error: None,
            quote: QuotePane::default(),
            probe_running: false,
            probe_pending: false,
        }
    }

    /// Takes over what a probe found. A probe that could not take the lock keeps the
    /// TPM state shown before.
    pub fn apply(&mut self, probe: Probe) {
        if probe.status != TpmStatus::Checking {
            self.status = probe.status;
            self.head = probe.head;
            self.history = probe.history;
        }
        self.checked_at = Some(probe.at);
        self.chain_error = probe.chain_error;
    }
}

/// The chain as the view's worker verified it, for a probe to reuse.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    pub report: Arc<Report>,
    pub offsets: Arc<Vec<u64>>,
}

/// Work on the TPM or the chain's lock; the event loop runs it on a blocking thread.
#[derive(Debug, Clone)]
pub enum TpmJob {
    /// Reads the TPM and compares it with the chain: the one the worker
    /// verified when given, else the probe verifies the file itself.
    Probe(Option<VerifiedChain>),
    Seal {
        preview: Box<Preview>,
        options: SealOptions,
    },
    Quote,
    Export {
        dir: PathBuf,
        files: Arc<QuoteFiles>,
    },
}
