//! The TPM side of sealing: key export, PCR reconciliation with the head, extend and read-back.

use std::path::Path;

use p256::ecdsa::VerifyingKey;

use crate::attest::signature::verify_entry_signature;
use crate::chain::crypto::{pcr_extend, ZERO32};
use crate::chain::entry::SealMode;
use crate::tpm::{TpmError, TpmHandle};

use super::anchor::{self, Anchor};
use super::keyfile::{ensure_key_file, KeyFileError, KeyFileOutcome};
use super::snapshot::{ChainSnapshot, EntryInfo};
use super::{pcr_text, SealError, SealOptions};
use crate::commands::keys::{AK_FILE, SIGNING_KEY_FILE};

/// The public keys the TPM re-created from its fixed templates.
pub(super) struct TpmKeys {
    pub signing: VerifyingKey,
    pub ak: VerifyingKey,
}

/// Wraps a TPM result with the step and the TCTI for the error message.
pub(super) fn step<T>(
    tpm: &TpmHandle,
    step: &'static str,
    result: Result<T, TpmError>,
) -> Result<T, SealError> {
    result.map_err(|source| SealError::Tpm {
        step,
        tcti: tpm.tcti().tcti.clone(),
        source,
    })
}

pub(super) fn public_keys(tpm: &TpmHandle) -> Result<TpmKeys, SealError> {
    Ok(TpmKeys {
        signing: step(tpm, "signing key creation", tpm.signing_public())?,
        ak: step(tpm, "attestation key creation", tpm.ak_public())?,
    })
}

/// Writes or checks the signing key and AK files beside the chain.
pub(super) fn export_keys(
    chain_file: &Path,
    keys: &TpmKeys,
    force: bool,
    notes: &mut Vec<String>,
) -> Result<(), SealError> {
    let dir = match chain_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    for (name, role, key) in [
        (SIGNING_KEY_FILE, "signing", &keys.signing),
        (AK_FILE, "attestation", &keys.ak),
    ] {
        match ensure_key_file(dir, name, role, key, force) {
            Ok(KeyFileOutcome::Created) => {
                notes.push(format!("exported the TPM {role} public key to {}", dir.join(name).display()));
            }
            Ok(KeyFileOutcome::Present) => {}
            Ok(KeyFileOutcome::Appended { previous }) => notes.push(format!(
                "added the new TPM {role} public key to {} after {} (--force); entries signed by the new key are reported as key_changed",
                dir.join(name).display(),
                previous.join(", ")
            )),
            Err(error @ KeyFileError::KeyChanged { .. }) => {
                return Err(SealError::Rejected(error.to_string()))
            }
            Err(error) => return Err(SealError::Keys(error.to_string())),
        }
    }
    Ok(())
}

/// Returns true when the head's seal was interrupted after the append and before the PCR
/// extension. That is the case when `current` is the `pcr_value` of the entry before the
/// head, and the head is a tpm entry signed by `signing` whose `pcr_value` is `current`
/// extended by its hash.
///
/// A head with no entry before it never qualifies, so a TPM restart (PCR zero) under a
/// one-entry chain is treated as divergence, not as an interrupted first seal.
fn is_interrupted_seal(
    head: &EntryInfo,
    before: Option<&EntryInfo>,
    current: &[u8; 32],
    signing: &VerifyingKey,
) -> bool {
    let (Some(hash), Some(pcr)) = (head.hash, head.pcr) else {
        return false;
    };
    if before.and_then(|b| b.pcr).as_ref() != Some(current) {
        return false;
    }
    if head.mode != Some(SealMode::Tpm) || pcr_extend(current, &hash) != pcr {
        return false;
    }
    let Ok(signature) = hex::decode(&head.signature) else {
        return false;
    };
    verify_entry_signature(signing, &hash, &signature).is_ok()
}

/// Reads the PCR and brings it to the head's `pcr_value`, completing an interrupted
/// seal or (with `--new-segment`) resetting it. Returns the PCR value the new entry extends.
pub(super) fn reconcile_pcr(
    tpm: &TpmHandle,
    signing: &VerifyingKey,
    chain: &ChainSnapshot,
    options: &SealOptions,
    notes: &mut Vec<String>,
) -> Result<[u8; 32], SealError> {
    let index = options.pcr;
    let current = step(tpm, "PCR read", tpm.read_pcr(index))?;
    let head = chain.head();
    let before = head
        .as_ref()
        .and_then(|h| h.index.checked_sub(1))
        .and_then(|index| chain.entry(index));
    let head_pcr = head.as_ref().and_then(|h| h.pcr);
    match &head {
        None if current == ZERO32 => return Ok(ZERO32),
        Some(_) if head_pcr == Some(current) => return Ok(current),
        Some(h) if is_interrupted_seal(h, before.as_ref(), &current, signing) => {
            if let (Some(hash), Some(expected)) = (h.hash, h.pcr) {
                step(tpm, "PCR extend", tpm.extend_pcr(index, hash))?;
                let after = step(tpm, "PCR read", tpm.read_pcr(index))?;
                if after != expected {
                    return Err(SealError::Rejected(format!(
                        "completing the interrupted seal of entry {} left PCR {index} at {}, not the entry's pcr_value {}: another program extended the PCR at the same time",
                        h.index,
                        pcr_text(&after),
                        pcr_text(&expected)
                    )));
                }
                notes.push(format!(
                    "completed the interrupted seal of entry {}: it was written but PCR {index} was not extended; extended PCR {index} with its hash",
                    h.index
                ));
                return Ok(expected);
            }
        }
        _ => {}
    }

    let explanation = divergence_text(&current, index, chain);
    if !options.new_segment {
        return Err(SealError::Rejected(format!(
            "{explanation}. Sealing now would break the PCR link. If this is expected (software entries were appended, the machine rebooted), run again with --new-segment: it resets PCR {index} and starts a new segment, which verification reports as pcr_reset"
        )));
    }
    step(tpm, "PCR reset", tpm.reset_pcr(index))?;
    let after = step(tpm, "PCR read", tpm.read_pcr(index))?;
    if after != ZERO32 {
        return Err(SealError::Rejected(format!(
            "PCR {index} reads {} right after the reset, not zero: another program extended it at the same time",
            pcr_text(&after)
        )));
    }
    notes.push(format!(
        "started a new segment: {explanation}; PCR {index} was reset (--new-segment)"
    ));
    Ok(ZERO32)
}

/// Explains how the PCR differs from the head.
fn divergence_text(current: &[u8; 32], index: u8, chain: &ChainSnapshot) -> String {
    let Some(head) = chain.head() else {
        return format!(
            "the chain is empty but PCR {index} is {}, not zero: another program extended it, or it holds an earlier chain's value",
            pcr_text(current)
        );
    };
    let head_pcr = head.pcr.map_or_else(
        || format!("an invalid pcr_value {:?}", head.hash_text),
        |p| pcr_text(&p),
    );
    let relation = match anchor::compare(current, chain) {
        Anchor::Behind { index: at, only_software_after: true, .. } => format!(
            "it equals the pcr_value of entry {at}; the entries after it are software entries, which never extend the TPM"
        ),
        Anchor::Behind { index: at, .. } => format!(
            "it equals the pcr_value of entry {at}: the entries after it were not extended into this TPM (sealed elsewhere, or the PCR was reset and replayed)"
        ),
        _ if *current == ZERO32 => {
            "it is zero: the TPM restarted (reboot) or the PCR was reset since the last seal".to_owned()
        }
        _ => "it equals no entry's pcr_value: another program extended it, or the chain was sealed with another TPM".to_owned(),
    };
    format!(
        "PCR {index} is {} but the head (entry {}) has pcr_value {head_pcr}; {relation}",
        pcr_text(current),
        head.index
    )
}

/// Extends the PCR with the new entry's hash and checks the read-back value.
pub(super) fn extend_and_check(
    tpm: &TpmHandle,
    index: u8,
    hash: &[u8; 32],
    expected: &[u8; 32],
) -> Result<(), SealError> {
    step(tpm, "PCR extend", tpm.extend_pcr(index, *hash))?;
    let after = step(tpm, "PCR read-back", tpm.read_pcr(index))?;
    if after != *expected {
        return Err(SealError::Rejected(format!(
            "the entry was sealed and written, but PCR {index} reads {} after the extension instead of its pcr_value {}: another program extended the PCR at the same time",
            pcr_text(&after),
            pcr_text(expected)
        )));
    }
    Ok(())
}
