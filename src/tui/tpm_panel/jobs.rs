//! The blocking jobs: probe, seal, quote and export. Each one that talks to the TPM
//! takes the chain's lock first and releases it after the TPM handle is dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::attest::fingerprint;
use crate::chain::crypto::{HmacKey, ZERO32};
use crate::chain::entry::{hex32, parse_hex32, SealMode, DEV_KEY};
use crate::commands::keys::{load_keys, load_secret, SIGNING_KEY_FILE};
use crate::commands::quote::{
    chain_dir, read_quote_log, rollback_findings, take_quote, write_out_files, QUOTES_FILE,
};
use crate::seal::anchor::{self, Anchor};
use crate::seal::{
    seal, ChainLock, ChainSnapshot, LockError, NewEntry, SealError, SealOptions, Signer,
};
use crate::tpm::{TctiSelection, TpmError, TpmHandle};
use crate::tui::form::{Preview, SealModeChoice};

use super::{
    Export, HeadFacts, HistoryLine, PcrVerdict, Probe, QuoteFiles, QuoteView, SealFailure,
    SealedInfo, TpmFacts, TpmSettings, TpmStatus, VerifiedChain,
};

/// Maximum wait for another process's lock before a job gives up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

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
            verdict: verdict_for(&pcr, chain),
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
/// When `verified` is given, the probe uses that chain and reads an entry's
/// stored fields with one read of its line.
pub fn probe(chain_file: &Path, settings: &TpmSettings, verified: Option<VerifiedChain>) -> Probe {
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
    let chain = match verified {
        Some(v) => {
            ChainSnapshot::from_verified(chain_file, v.report, v.offsets).map_err(|e| e.to_string())
        }
        None => load_keys(&settings.key_args, chain_file)
            .and_then(|keys| ChainSnapshot::load(chain_file, keys).map_err(|e| e.to_string())),
    };
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
    // The pane wraps the command inside its border, which a mouse copy picks
    // up; the same command in a file can be copied or run as it is.
    let command = checkquote_command(dir, pcr);
    let script = dir.join("checkquote.sh");
    std::fs::write(&script, format!("#!/bin/sh\n{command}\n"))
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    Ok(Export {
        dir: dir.to_path_buf(),
        command,
    })
}

fn failure(title: &str, message: String, advice: &str) -> SealFailure {
    SealFailure {
        title: title.to_owned(),
        message,
        advice: advice.to_owned(),
        stale_preview: false,
        current_head: None,
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
        SealError::Rejected(text) if text.contains("run again with --new-segment") => failure(
            "PCR diverged from the head",
            message,
            "tick \"start a new PCR segment\" in the form to reset the PCR and seal, or find out first who changed the PCR (P shows it)",
        ),
        SealError::Rejected(text) if text.contains("--force") => failure(
            "sealing rejected",
            message,
            "in this form --force is the \"force\" box: read the reason above (f lists the findings), then tick it to seal anyway",
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
            current_head: head_hash,
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
