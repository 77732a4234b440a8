//! Secrets and TPM public keys for verification, from the environment and files.

use std::path::{Path, PathBuf};

use crate::attest::keys::{fingerprint, load_keys_pem, TrustedKeys};
use crate::chain::verify::{TpmKey, VerifyKeys};
use crate::cli::KeyArgs;

/// Name of the PEM file beside the chain that contains the TPM signing key(s) used to seal it.
pub const SIGNING_KEY_FILE: &str = "sealdesk-signing-key.pem";
/// Name of the PEM file beside the chain that contains the TPM attestation key.
pub const AK_FILE: &str = "sealdesk-ak.pem";

/// The secret from SEALDESK_HMAC_SECRET or --secret-file; `None` means the development key.
pub fn load_secret(args: &KeyArgs) -> Result<Option<Vec<u8>>, String> {
    if let Some(path) = &args.secret_file {
        let mut bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read --secret-file {}: {e}", path.display()))?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(format!("--secret-file {} is empty", path.display()));
        }
        return Ok(Some(bytes));
    }
    match std::env::var_os("SEALDESK_HMAC_SECRET") {
        Some(v) if !v.is_empty() => Ok(Some(
            std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec(),
        )),
        _ => Ok(None),
    }
}

fn is_inside(dir: &Path, file: &Path) -> bool {
    match (dir.canonicalize(), file.canonicalize()) {
        (Ok(d), Ok(f)) => f.starts_with(d),
        _ => false,
    }
}

/// Builds the verification keys for the chain at `chain_file`.
pub fn load_keys(args: &KeyArgs, chain_file: &Path) -> Result<VerifyKeys, String> {
    let secret = load_secret(args)?;
    let chain_dir: PathBuf = chain_file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut tpm: Vec<TpmKey> = Vec::new();
    let mut pins: Vec<String> = Vec::new();

    let trusted = match &args.trusted_keys {
        Some(path) => {
            if is_inside(&chain_dir, path) {
                return Err(format!(
                    "--trusted-keys {} is inside the chain's directory, where whoever can write the chain can replace it; keep it elsewhere",
                    path.display()
                ));
            }
            let t = TrustedKeys::load(path)
                .map_err(|e| format!("cannot read --trusted-keys {}: {e}", path.display()))?;
            for k in t.keys() {
                push_key(&mut tpm, *k, format!("--trusted-keys {}", path.display()));
            }
            Some(t)
        }
        None => None,
    };
    for path in &args.tpm_pubkey {
        let keys = load_keys_pem(path)
            .map_err(|e| format!("cannot read --tpm-pubkey {}: {e}", path.display()))?;
        for k in keys {
            push_key(&mut tpm, k, format!("--tpm-pubkey {}", path.display()));
        }
    }
    let beside = chain_dir.join(SIGNING_KEY_FILE);
    if beside.exists() {
        let keys =
            load_keys_pem(&beside).map_err(|e| format!("cannot read {}: {e}", beside.display()))?;
        for k in keys {
            push_key(&mut tpm, k, beside.display().to_string());
        }
    }
    if let Some(t) = &trusted {
        for key in &mut tpm {
            key.pinned = t.contains(&key.key);
        }
        pins = t.fingerprints().iter().map(|f| f.to_string()).collect();
    }
    Ok(VerifyKeys::new(secret.as_deref()).with_tpm_keys(tpm, pins))
}

fn push_key(list: &mut Vec<TpmKey>, key: p256::ecdsa::VerifyingKey, source: String) {
    let fp = fingerprint(&key);
    if list.iter().any(|k| k.fingerprint == fp) {
        return;
    }
    list.push(TpmKey {
        key,
        fingerprint: fp,
        pinned: false,
        source,
    });
}
