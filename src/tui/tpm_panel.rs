//! TPM state of the view (PCR pane, quote pane, the mode sealing would use) and the
//! blocking jobs that talk to the TPM. Each job takes the chain's lock, connects, works,
//! drops the TPM handle (which waits until the worker flushed its keys) and releases the lock,
//! so the view never flushes the keys of a `sealdesk seal` running in another process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use p256::ecdsa::VerifyingKey;

use crate::attest::fingerprint;
use crate::chain::crypto::{HmacKey, ZERO32};
use crate::chain::entry::{hex32, parse_hex32, SealMode, DEV_KEY};
use crate::chain::finding::Severity;
use crate::cli::KeyArgs;
use crate::commands::keys::{load_keys, load_secret, SIGNING_KEY_FILE};
use crate::commands::quote::{
    chain_dir, read_quote_log, rollback_findings, take_quote, write_out_files, QuoteRecord,
    QUOTES_FILE,
};
use crate::seal::anchor::{self, Anchor};
use crate::seal::{
    seal, ChainLock, ChainSnapshot, LockError, NewEntry, SealError, SealOptions, Signer,
};
use crate::tpm::{TctiSelection, TpmError, TpmHandle};

use super::form::{Preview, SealModeChoice};

/// Maximum wait for another process's lock before a job gives up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start the simulator when no TPM is reachable.
pub const SWTPM_HINT: &str = "swtpm socket --tpm2 --tpmstate dir=/tmp/sealdesk-swtpm --server type=tcp,port=2321,bindaddr=127.0.0.1 --ctrl type=tcp,port=2322,bindaddr=127.0.0.1 --flags not-need-init,startup-clear";

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
    /// Why the program that opened the view has no TPM to offer, e.g. the demo without swtpm.
    pub missing_tpm: Option<String>,
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
                    "behind: PCR {pcr} equals the pcr_value of entry {index}, not of the head (entry {head}); entries {}..={head}: {why}",
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
}

/// State of the quote pane.
#[derive(Debug, Clone, Default)]
pub struct QuotePane {
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

/// Work on the TPM or the chain's lock; the event loop runs it on a blocking thread.
#[derive(Debug, Clone)]
pub enum TpmJob {
    Probe,
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

/// Returns the default export directory: `quote-<UTC time>` beside the chain.
pub fn default_export_dir(chain_file: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    chain_dir(chain_file).join(format!("quote-{stamp}"))
}

/// Returns the `tpm2_checkquote` command for files exported into `dir`.
pub fn checkquote_command(dir: &Path, pcr: u8) -> String {
    let d = dir.display();
    format!(
        "tpm2_checkquote -u {d}/ak.pub.pem -m {d}/quote.msg -s {d}/quote.sig -f {d}/quote.pcrs -l sha256:{pcr} -q \"$(cat {d}/quote.nonce)\" -g sha256"
    )
}

fn now_clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// Takes the chain's lock for a job. A lock file that cannot be created (a read-only
/// directory) gives `Ok(None)`, and the job runs unlocked.
fn lock(path: &Path) -> Result<Option<ChainLock>, String> {
    match ChainLock::acquire(path, LOCK_TIMEOUT, |_| {}) {
        Ok(lock) => Ok(Some(lock)),
        Err(LockError::Open { path, source }) => {
            tracing::warn!(lock = %path.display(), error = %source, "running without the chain's lock");
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn verdict_for(pcr: &[u8; 32], chain: &ChainSnapshot) -> PcrVerdict {
    if *pcr == ZERO32 && chain.entries() > 0 {
        return PcrVerdict::Reset;
    }
    match anchor::compare(pcr, chain) {
        Anchor::Anchored { head } => PcrVerdict::Anchored { head },
        Anchor::Behind {
            index,
            head,
            only_software_after,
        } => {
            let head_is_tpm = chain.head().and_then(|e| e.mode) == Some(SealMode::Tpm);
            PcrVerdict::Behind {
                index,
                head,
                only_software_after,
                interrupted: index + 1 == head && head_is_tpm,
            }
        }
        Anchor::Unrelated => PcrVerdict::Unrelated,
    }
}

/// Reads the quote log and flags each record that rolled back against the earlier ones.
fn history(chain_file: &Path, chain: &ChainSnapshot) -> Result<Vec<HistoryLine>, String> {
    let records = read_quote_log(&chain_dir(chain_file).join(QUOTES_FILE))?;
    let mut lines = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let pcr = parse_hex32(&record.pcr_value).map_or(ZERO32, |p| p.0);
        let relation = anchor::compare(&pcr, chain);
        let rollback = rollback_findings(&records[..i], record, &relation, chain)
            .into_iter()
            .map(|f| f.message)
            .collect();
        lines.push(HistoryLine {
            record: record.clone(),
            rollback,
        });
    }
    Ok(lines)
}

fn tpm_status(tcti: &TctiSelection, pcr: u8, chain: Option<&ChainSnapshot>) -> TpmStatus {
    let unreachable = |e: TpmError| match e {
        TpmError::NotBuilt => TpmStatus::NotBuilt,
        e => TpmStatus::Unreachable(e.to_string()),
    };
    let tpm = match TpmHandle::connect(tcti.clone()) {
        Ok(tpm) => tpm,
        Err(e) => return unreachable(e),
    };
    let facts = (|| {
        let info = tpm.info()?;
        let pcr_value = tpm.read_pcr(pcr)?;
        let signing = tpm.signing_public()?;
        Ok::<_, TpmError>((info, pcr_value, signing))
    })();
    drop(tpm);
    match facts {
        Ok((info, pcr_value, signing)) => TpmStatus::Ready(TpmFacts {
            firmware: info.firmware_version_text(),
            manufacturer: info.manufacturer,
            pcr_value,
            signing_key: fingerprint(&signing),
            verdict: match chain {
                Some(chain) => verdict_for(&pcr_value, chain),
                None => PcrVerdict::Unrelated,
            },
        }),
        Err(e) => unreachable(e),
    }
}

/// Reads the chain, the quote log and the TPM's PCR under the chain's lock.
// NOTE: this verifies the whole chain on every probe (after each append), which is
// noticeable only on chains of many megabytes.
pub fn probe(chain_file: &Path, settings: &TpmSettings) -> Probe {
    let _lock = match lock(chain_file) {
        Ok(lock) => lock,
        Err(e) => {
            return Probe {
                status: TpmStatus::Checking,
                head: None,
                history: Vec::new(),
                at: now_clock(),
                chain_error: Some(e),
            }
        }
    };
    let mut chain_error = None;
    let chain = load_keys(&settings.key_args, chain_file)
        .and_then(|keys| ChainSnapshot::load(chain_file, keys).map_err(|e| e.to_string()));
    let chain = match chain {
        Ok(chain) => Some(chain),
        Err(e) => {
            chain_error = Some(e);
            None
        }
    };
    let status = tpm_status(&settings.tcti, settings.pcr, chain.as_ref());
    let head = chain.as_ref().and_then(|c| c.head()).map(|h| HeadFacts {
        index: h.index,
        pcr_value: h.pcr,
    });
    let history = match &chain {
        Some(chain) => history(chain_file, chain).unwrap_or_else(|e| {
            chain_error = Some(e);
            Vec::new()
        }),
        None => Vec::new(),
    };
    Probe {
        status,
        head,
        history,
        at: now_clock(),
        chain_error,
    }
}

/// Takes a quote under the chain's lock and returns it with the refreshed history.
pub fn quote(
    chain_file: &Path,
    settings: &TpmSettings,
) -> Result<(QuoteView, Vec<HistoryLine>), String> {
    let _lock = lock(chain_file)?;
    let keys = load_keys(&settings.key_args, chain_file)?;
    let outcome = take_quote(chain_file, keys, settings.tcti.clone(), settings.pcr)?;
    let verdict = verdict_for(
        &outcome.pcrs.first().copied().unwrap_or(ZERO32),
        &outcome.chain,
    );
    let view = QuoteView {
        time: outcome.record.time.clone(),
        nonce: outcome.record.nonce.clone(),
        ak_fingerprint: outcome.record.ak_fingerprint.clone(),
        pcr_value: outcome.record.pcr_value.clone(),
        checks: outcome
            .check
            .checks()
            .iter()
            .map(|(name, c)| ((*name).to_owned(), c.is_passed(), c.to_string()))
            .collect(),
        verdict: verdict.describe(settings.pcr),
        anchored: matches!(verdict, PcrVerdict::Anchored { .. }),
        findings: outcome
            .findings
            .iter()
            .map(|f| (f.severity, format!("{}: {}", f.kind.as_str(), f.message)))
            .collect(),
        files: Arc::new(QuoteFiles {
            attest: outcome.attest.clone(),
            signature: outcome.signature.clone(),
            pcrs: outcome.pcrs.clone(),
            nonce: outcome.nonce,
            ak: outcome.ak,
        }),
    };
    let lines = history(chain_file, &outcome.chain)?;
    Ok((view, lines))
}

/// Writes the quote files into `dir`.
pub fn export(dir: &Path, files: &QuoteFiles, pcr: u8) -> Result<Export, String> {
    write_out_files(
        dir,
        &files.attest,
        &files.signature,
        &files.pcrs,
        &files.nonce,
        &files.ak,
    )?;
    Ok(Export {
        dir: dir.to_path_buf(),
        command: checkquote_command(dir, pcr),
    })
}

fn failure(title: &str, message: String, advice: &str) -> SealFailure {
    SealFailure {
        title: title.to_owned(),
        message,
        advice: advice.to_owned(),
        stale_preview: false,
    }
}

/// Explains a seal error and the next step in this form.
fn explain(error: &SealError) -> SealFailure {
    let message = error.to_string();
    match error {
        SealError::Tpm { .. } => failure(
            "TPM failed",
            message,
            "nothing was sealed. Check the TPM (P shows its state), or switch the form to software mode",
        ),
        SealError::Lock(LockError::TimedOut { .. }) => failure(
            "chain locked",
            message,
            "another sealdesk process is sealing; wait until it finishes and seal again",
        ),
        SealError::Rejected(text) if text.contains("--new-segment") => failure(
            "PCR diverged from the head",
            message,
            "tick \"start a new PCR segment\" in the form to reset the PCR and seal, or find out first who changed the PCR (P shows it)",
        ),
        SealError::Rejected(text) if text.contains("--force") => failure(
            "head is broken",
            message,
            "inspect the findings (f); to seal anyway, tick \"seal onto a broken head\" in the form",
        ),
        _ => failure("seal failed", message, "nothing was sealed unless the message says otherwise; fix the cause and seal again"),
    }
}

/// Seals the previewed entry under the chain's lock.
pub fn seal_entry(
    chain_file: &Path,
    settings: &TpmSettings,
    preview: &Preview,
    options: &SealOptions,
) -> Result<SealedInfo, SealFailure> {
    let lock = ChainLock::acquire(chain_file, options.lock_timeout, |_| {})
        .map_err(|e| explain(&SealError::Lock(e)))?;
    let keys_for = |path: &Path| load_keys(&settings.key_args, path);
    let keys = keys_for(chain_file)
        .map_err(|e| failure("keys", e, "fix the key options and open the view again"))?;
    let chain = ChainSnapshot::load(chain_file, keys)
        .map_err(|e| failure("cannot read the chain", e.to_string(), "check the file"))?;
    let head_hash = chain.head().map(|h| h.hash_text);
    if head_hash.as_deref() != preview.previous_hash() {
        return Err(SealFailure {
            title: "chain changed".to_owned(),
            message: "an entry was appended after the preview, so the entry would link to another head than the one shown".to_owned(),
            advice: "nothing was sealed; review the new preview and seal again".to_owned(),
            stale_preview: true,
        });
    }
    let entry = NewEntry {
        id: Some(preview.entry.id.clone()),
        timestamp: Some(preview.entry.timestamp),
        action: preview.entry.action.clone(),
        decision: preview.entry.decision.clone(),
        reason: preview.entry.reason.clone(),
        event_id: preview.entry.event_id.clone(),
        incident_id: preview.entry.incident_id.clone(),
        operator: preview.entry.operator.clone(),
    };
    let key_file = chain_dir(chain_file).join(SIGNING_KEY_FILE);
    let key_file_before = std::fs::read(&key_file).ok();
    let result = match preview.mode {
        SealModeChoice::Software => {
            let secret = load_secret(&settings.key_args).map_err(|e| {
                failure(
                    "HMAC secret",
                    e,
                    "fix SEALDESK_HMAC_SECRET or --secret-file",
                )
            })?;
            let key = HmacKey::new(secret.as_deref().unwrap_or(DEV_KEY.as_bytes()));
            seal(
                chain_file,
                &lock,
                &entry,
                &Signer::Software(key),
                options,
                &keys_for,
            )
        }
        SealModeChoice::Tpm => {
            let tpm = TpmHandle::connect(settings.tcti.clone()).map_err(|e| {
                failure(
                    "TPM unreachable",
                    e.to_string(),
                    "nothing was sealed. Start the TPM or swtpm (P shows how), or switch the form to software mode",
                )
            })?;
            let result = seal(
                chain_file,
                &lock,
                &entry,
                &Signer::Tpm(&tpm),
                options,
                &keys_for,
            );
            // Dropping the handle waits until the worker flushed its keys, before the lock goes.
            drop(tpm);
            result
        }
    };
    drop(lock);
    let sealed = result.map_err(|e| explain(&e))?;
    let mut notes = sealed.notes;
    if sealed.hash != preview.hash {
        notes.push(format!(
            "the sealed hash {} differs from the preview's {}",
            hex32(&sealed.hash),
            hex32(&preview.hash)
        ));
    }
    Ok(SealedInfo {
        index: sealed.index,
        id: sealed.id,
        mode: sealed.mode,
        notes,
        keys_changed: std::fs::read(&key_file).ok() != key_file_before,
    })
}
