//! Appending an entry to a chain: the lock, the order of operations, and the
//! software and TPM signing modes.
//!
//! Order in TPM mode: take the chain's lock, take the PCR lock (see
//! [`pcr_lock`]), read the PCR, compute the new value, sign, append and fsync
//! the line, extend the PCR, read it back, release both locks. A crash
//! therefore leaves the chain at most one entry ahead of the PCR, never behind
//! it, and the next seal completes that entry.

pub mod anchor;
mod input;
pub mod keyfile;
pub mod lock;
pub mod pcr_lock;
pub mod snapshot;
mod tpm_mode;
pub mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::chain::crypto::{pcr_extend, sha256, HmacKey, ZERO32};
use crate::chain::entry::{
    append_sealed_line, hex32, DecisionEntry, SealMode, CHAIN_FILE, DEV_KEY, GENESIS,
};
use crate::chain::finding::Finding;
use crate::chain::gotime::GoTime;
use crate::chain::verify::VerifyKeys;
use crate::tpm::{TpmError, TpmHandle};
use crate::verify_file::OpenError;

pub use input::{DECISIONS, KNOWN_ACTIONS};
pub use lock::{ChainLock, LockError};
pub use pcr_lock::PcrLock;
pub use snapshot::{ChainSnapshot, EntryInfo};

/// The decision to seal, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    /// `id`; `DEC-<unix nanoseconds>` when `None`, as the reference logger names entries.
    pub id: Option<String>,
    /// `timestamp`; the time of sealing when `None`. A caller that showed the entry
    /// before sealing passes the time it showed.
    pub timestamp: Option<GoTime>,
    pub action: String,
    pub decision: String,
    pub reason: String,
    pub event_id: String,
    pub incident_id: String,
    pub operator: String,
}

/// Options that apply to both modes.
#[derive(Debug, Clone)]
pub struct SealOptions {
    /// PCR of the SHA-256 bank that TPM mode extends.
    pub pcr: u8,
    /// Reset the PCR and start a new segment when it diverges from the head.
    pub new_segment: bool,
    /// Seal even onto a head with error findings, and add a changed TPM key to the key file.
    pub force: bool,
    /// Maximum wait for another process's lock.
    pub lock_timeout: Duration,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            pcr: 23,
            new_segment: false,
            force: false,
            lock_timeout: Duration::from_secs(30),
        }
    }
}

/// The signing mode and its key or TPM.
pub enum Signer<'a> {
    /// HMAC-SHA256 with the chain's secret; the PCR is simulated from the head's `pcr_value`.
    Software(HmacKey),
    /// The TPM signing key; the TPM's PCR is extended.
    Tpm(&'a TpmHandle),
}

impl Signer<'_> {
    fn mode(&self) -> SealMode {
        match self {
            Signer::Software(_) => SealMode::Software,
            Signer::Tpm(_) => SealMode::Tpm,
        }
    }
}

/// A sealed entry.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub path: PathBuf,
    pub index: u64,
    pub chain_idx: i64,
    pub id: String,
    pub hash: [u8; 32],
    pub pcr: [u8; 32],
    pub mode: SealMode,
    /// Things the operator should know: an interrupted seal completed, a new segment,
    /// a key file created, a `\n` written after a fragment.
    pub notes: Vec<String>,
}

/// Failure to seal an entry.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Keys(String),
    /// The TPM failed; nothing falls back to software signing.
    #[error("TPM {step} failed on TCTI `{tcti}`: {source}")]
    Tpm {
        step: &'static str,
        tcti: String,
        source: TpmError,
    },
    /// Sealing was rejected: divergence, a broken head or a changed key.
    #[error("{0}")]
    Rejected(String),
}

impl SealError {
    /// Returns the exit code: 1 when sealing was rejected (divergence, broken head,
    /// changed key, mode downgrade, chain or PCR lock timeout, PCR read-back mismatch), 2 for bad arguments, files that
    /// cannot be opened or written, and TPM failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            SealError::Rejected(_)
            | SealError::Lock(LockError::TimedOut { .. } | LockError::PcrTimedOut { .. }) => 1,
            _ => 2,
        }
    }
}

/// Resolves PATH for sealing. A directory means its chain file, which is created when missing.
/// A missing path is accepted only as a new `.jsonl` file in an existing directory.
pub fn resolve_seal_path(path: &Path) -> Result<PathBuf, SealError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(path.join(CHAIN_FILE)),
        Ok(meta) if meta.is_file() => Ok(path.to_path_buf()),
        Ok(_) => Err(SealError::InvalidArgument(format!(
            "{}: not a regular file or directory",
            path.display()
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
            if is_jsonl && parent.is_dir() {
                Ok(path.to_path_buf())
            } else {
                Err(SealError::InvalidArgument(format!(
                    "{}: no such file or directory; give an existing directory (the chain file {CHAIN_FILE} is created in it) or a chain file",
                    path.display()
                )))
            }
        }
        Err(source) => Err(SealError::Open(OpenError::Io {
            path: path.to_path_buf(),
            source,
        })),
    }
}

/// Seals `entry` onto the chain at `chain_file` (from [`resolve_seal_path`]).
///
/// The entry's fields are checked first ([`NewEntry::validate`]). In TPM mode the PCR
/// lock is taken after the chain's lock. A software entry after a tpm head is rejected
/// unless `options.force`.
///
/// The caller takes `lock` first and, in TPM mode, connects to the TPM after taking it:
/// on a direct simulator connection, connecting flushes the objects other processes
/// left loaded, which must not hit another sealer's keys. `load_keys` builds the
/// verification keys for the chain; it runs after the TPM's public keys were
/// exported beside the chain.
pub fn seal(
    chain_file: &Path,
    lock: &ChainLock,
    entry: &NewEntry,
    signer: &Signer<'_>,
    options: &SealOptions,
    load_keys: &dyn Fn(&Path) -> Result<VerifyKeys, String>,
) -> Result<Sealed, SealError> {
    if lock.path() != lock::lock_path(chain_file) {
        return Err(SealError::InvalidArgument(format!(
            "the lock {} does not belong to {}",
            lock.path().display(),
            chain_file.display()
        )));
    }
    entry.validate()?;
    let mut notes = Vec::new();
    // Taken after the chain's lock and held until this function returns, so it covers
    // the PCR read, the extension and the read-back.
    let _pcr_lock = match signer {
        Signer::Tpm(tpm) => Some(acquire_pcr_lock(tpm, options, &mut notes)?),
        Signer::Software(_) => None,
    };
    let tpm_keys = match signer {
        Signer::Tpm(tpm) => Some(tpm_mode::public_keys(tpm)?),
        Signer::Software(_) => None,
    };

    let write_error = |source| SealError::Write {
        path: chain_file.to_path_buf(),
        source,
    };
    if write::create_chain_file(chain_file).map_err(write_error)? {
        notes.push(format!("created {}", chain_file.display()));
    }
    if let Some(keys) = &tpm_keys {
        tpm_mode::export_keys(chain_file, keys, options.force, &mut notes)?;
    }
    let verify_keys = load_keys(chain_file).map_err(SealError::Keys)?;
    let chain = ChainSnapshot::load(chain_file, verify_keys)?;
    check_head(&chain, options.force, &mut notes)?;
    let head = chain.head();
    if let (Signer::Software(key), Some(h)) = (signer, &head) {
        if h.mode == Some(SealMode::Tpm) {
            check_downgrade(h.index, key, options.force, &mut notes)?;
        }
    }

    let base_pcr = match (signer, &tpm_keys) {
        (Signer::Tpm(tpm), Some(keys)) => {
            tpm_mode::reconcile_pcr(tpm, &keys.signing, &chain, options, &mut notes)?
        }
        _ => head.as_ref().and_then(|h| h.pcr).unwrap_or(ZERO32),
    };

    let timestamp = entry.timestamp.unwrap_or_else(GoTime::now_local);
    let id = entry
        .id
        .clone()
        .unwrap_or_else(|| format!("DEC-{}", timestamp.unix_nanos()));
    let previous_hash = head
        .as_ref()
        .map_or_else(|| GENESIS.to_owned(), |h| h.hash_text.clone());
    let chain_idx = head
        .as_ref()
        .map_or(0, |h| h.chain_idx.unwrap_or(h.index as i64) + 1);
    let decision = DecisionEntry {
        id: id.clone(),
        timestamp,
        action: entry.action.clone(),
        decision: entry.decision.clone(),
        reason: entry.reason.clone(),
        event_id: entry.event_id.clone(),
        incident_id: entry.incident_id.clone(),
        operator: entry.operator.clone(),
        previous_hash,
    };
    let entry_json = decision.to_go_json().map_err(|e| {
        SealError::InvalidArgument(format!("cannot encode the entry's timestamp: {e}"))
    })?;
    let hash = sha256(&entry_json);
    let pcr = pcr_extend(&base_pcr, &hash);
    let signature = match signer {
        Signer::Software(key) => hex::encode(key.sign(&hash)),
        Signer::Tpm(tpm) => hex::encode(tpm_mode::step(tpm, "sign", tpm.sign(hash))?),
    };

    let mut line = Vec::with_capacity(entry_json.len() + 400);
    append_sealed_line(
        &mut line,
        &entry_json,
        &hash,
        &signature,
        &pcr,
        signer.mode(),
        chain_idx,
    );
    if write::append_line(chain_file, &line).map_err(write_error)? {
        notes.push(
            "the file ended in a fragment (crash residue); the entry starts on a new line"
                .to_owned(),
        );
    }

    if let Signer::Tpm(tpm) = signer {
        tpm_mode::extend_and_check(tpm, options.pcr, &hash, &pcr)?;
    }
    Ok(Sealed {
        path: chain_file.to_path_buf(),
        index: chain.entries(),
        chain_idx,
        id,
        hash,
        pcr,
        mode: signer.mode(),
        notes,
    })
}

/// Takes the lock of the PCR that `tpm` extends (see [`pcr_lock`]), noting a wait.
fn acquire_pcr_lock(
    tpm: &TpmHandle,
    options: &SealOptions,
    notes: &mut Vec<String>,
) -> Result<PcrLock, SealError> {
    let tcti = &tpm.tcti().tcti;
    let lock = PcrLock::acquire(tcti, options.pcr, options.lock_timeout, |path| {
        tracing::info!(lock = %path.display(), pcr = options.pcr, "waiting for the PCR lock");
        notes.push(format!(
            "waited for the PCR lock {}: another chain was being sealed through PCR {} of this TPM",
            path.display(),
            options.pcr
        ));
    })?;
    Ok(lock)
}

/// Rejects a software entry after the tpm entry `head` unless `force`.
///
/// Such an entry changes the seal mode, which verification reports as
/// `seal_mode_changed`: an error when the entry verifies only under the development key
/// (anyone can forge it), a warning otherwise. It also leaves the TPM's PCR behind.
fn check_downgrade(
    head: u64,
    key: &HmacKey,
    force: bool,
    notes: &mut Vec<String>,
) -> Result<(), SealError> {
    let probe = [0u8; 32];
    let dev_key = key.sign(&probe) == HmacKey::new(DEV_KEY.as_bytes()).sign(&probe);
    if !force {
        let key_text = if dev_key {
            "with the public development key, which verification reports as an error because anyone can forge such an entry"
        } else {
            "which verification reports as a warning"
        };
        return Err(SealError::Rejected(format!(
            "the head (entry {head}) is a tpm entry, so a software entry now changes the seal mode (seal_mode_changed) {key_text}; it is also not extended into the TPM, so quotes no longer match the head and the next TPM seal needs --new-segment. Seal in TPM mode, or pass --force to seal in software mode anyway"
        )));
    }
    if dev_key {
        notes.push(format!(
            "WARNING: sealed a software entry with the public development key after the tpm entry {head} (--force); `sealdesk verify` will report seal_mode_changed as an error, because anyone could have forged this entry"
        ));
    } else {
        notes.push(format!(
            "warning: sealed a software entry after the tpm entry {head} (--force); verification reports seal_mode_changed, and the next TPM seal needs --new-segment"
        ));
    }
    Ok(())
}

/// Rejects a head with error findings unless `force`.
fn check_head(
    chain: &ChainSnapshot,
    force: bool,
    notes: &mut Vec<String>,
) -> Result<(), SealError> {
    let errors: Vec<&Finding> = chain.head_errors();
    if errors.is_empty() {
        let elsewhere = chain.error_count();
        if elsewhere > 0 {
            notes.push(format!(
                "the chain has {elsewhere} error finding(s) before the head; run `sealdesk verify` for details"
            ));
        }
        return Ok(());
    }
    let list: Vec<String> = errors
        .iter()
        .map(|f| format!("{} ({})", f.kind.as_str(), f.message))
        .collect();
    if force {
        notes.push(format!(
            "sealed onto a head with error findings because of --force: {}",
            list.join("; ")
        ));
        return Ok(());
    }
    let index = chain.entries().saturating_sub(1);
    Err(SealError::Rejected(format!(
        "the head (entry {index}) has error findings, so a new entry would vouch for a broken chain: {}; run `sealdesk verify` to inspect, or seal with --force",
        list.join("; ")
    )))
}

/// Formats a PCR value for messages.
pub(crate) fn pcr_text(pcr: &[u8; 32]) -> String {
    hex32(pcr)
}
