//! `sealdesk seal`: append one sealed decision to a chain.

use std::mem::ManuallyDrop;
use std::time::Duration;

use crate::chain::crypto::HmacKey;
use crate::chain::entry::{hex32, DEV_KEY};
use crate::chain::line::printable;
use crate::cli::{Format, KeyArgs, SealArgs, SealModeArg};
use crate::seal::{
    resolve_seal_path, seal, ChainLock, NewEntry, SealError, SealOptions, Sealed, Signer,
};
use crate::tpm::{resolve_tcti, TpmHandle};

use super::keys::{load_keys, load_secret};

pub fn run(args: &SealArgs, key_args: &KeyArgs) -> u8 {
    let chain_file = match resolve_seal_path(&args.path) {
        Ok(path) => path,
        Err(error) => return fail(&error.to_string(), error.exit_code()),
    };
    let entry = NewEntry {
        id: args.id.clone(),
        timestamp: None,
        action: args.action.clone(),
        decision: args.decision.clone(),
        reason: args.reason.clone(),
        event_id: args.event_id.clone(),
        incident_id: args.incident_id.clone(),
        operator: args.operator.clone(),
    };
    match entry.validate() {
        Ok(warnings) => {
            for warning in warnings {
                eprintln!("sealdesk seal: {}", printable(&warning));
            }
        }
        Err(error) => return fail(&error.to_string(), error.exit_code()),
    }
    let options = SealOptions {
        pcr: args.tpm.pcr,
        new_segment: args.new_segment,
        force: args.force,
        lock_timeout: Duration::from_secs(args.lock_timeout),
    };
    let keys_for = |path: &std::path::Path| load_keys(key_args, path);
    let lock = match ChainLock::acquire(&chain_file, options.lock_timeout, |lock| {
        eprintln!(
            "sealdesk seal: waiting up to {} s for the lock {} (another sealdesk process is sealing, quoting or checking the TPM)",
            args.lock_timeout,
            lock.display()
        );
    }) {
        Ok(lock) => lock,
        Err(error) => {
            let error = SealError::from(error);
            return fail(&error.to_string(), error.exit_code());
        }
    };
    // The TPM worker thread flushes its keys after its handle is dropped, at a time this
    // process cannot observe. Holding the lock until the process exits (the kernel then
    // releases the flock) keeps that flush from reaching keys of the next sealer on a
    // direct simulator connection, where transient handles are shared.
    let lock = ManuallyDrop::new(lock);

    let result = match args.mode {
        SealModeArg::Software => {
            let secret = match load_secret(key_args) {
                Ok(secret) => secret,
                Err(message) => return fail(&message, 2),
            };
            let key = match &secret {
                Some(secret) => HmacKey::new(secret),
                None => {
                    eprintln!("sealdesk seal: warning: no SEALDESK_HMAC_SECRET or --secret-file; signing with the public development key, so anyone can forge these entries");
                    HmacKey::new(DEV_KEY.as_bytes())
                }
            };
            seal(
                &chain_file,
                &lock,
                &entry,
                &Signer::Software(key),
                &options,
                &keys_for,
            )
        }
        SealModeArg::Tpm => {
            let tcti = resolve_tcti(args.tpm.tcti.as_deref());
            let tpm = match TpmHandle::connect(tcti.clone()) {
                Ok(tpm) => tpm,
                Err(error) => {
                    return fail(
                        &format!("{error}; nothing was sealed (software mode is used only with --mode software)"),
                        2,
                    )
                }
            };
            seal(
                &chain_file,
                &lock,
                &entry,
                &Signer::Tpm(&tpm),
                &options,
                &keys_for,
            )
        }
    };

    match result {
        Ok(sealed) => {
            for note in &sealed.notes {
                eprintln!("sealdesk seal: {}", printable(note));
            }
            print_sealed(&sealed, args.format, args.tpm.pcr);
            0
        }
        Err(error) => fail(&error.to_string(), error.exit_code()),
    }
}

fn fail(message: &str, code: u8) -> u8 {
    eprintln!("sealdesk seal: {}", printable(message));
    code
}

fn print_sealed(sealed: &Sealed, format: Format, pcr_index: u8) {
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "file": sealed.path.display().to_string(),
                "index": sealed.index,
                "chain_idx": sealed.chain_idx,
                "id": sealed.id,
                "hash": hex32(&sealed.hash),
                "pcr_value": hex32(&sealed.pcr),
                "seal_mode": sealed.mode.as_str(),
                "pcr": pcr_index,
                "notes": sealed.notes,
            });
            println!("{value}");
        }
        Format::Text => println!(
            "sealed entry {} (chain_idx {}, id {}) in {}: hash {} pcr_value {} mode {}",
            sealed.index,
            sealed.chain_idx,
            printable(&sealed.id),
            printable(&sealed.path.display().to_string()),
            hex32(&sealed.hash),
            hex32(&sealed.pcr),
            sealed.mode
        ),
    }
}
