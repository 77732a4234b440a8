//! The TPM public keys exported beside the chain, so that verification needs no TPM.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use p256::ecdsa::VerifyingKey;

use crate::attest::keys::{fingerprint, load_keys_pem, to_pem};

/// The result of checking a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileOutcome {
    /// The file did not exist and now contains the key.
    Created,
    /// The file already contains the key.
    Present,
    /// The file held other keys only; the key was appended after them (with `--force`).
    Appended { previous: Vec<String> },
}

/// Failure to check or write a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path} contains the {role} key(s) {previous}, but the TPM's {role} key is now {current}: the TPM was cleared, or this is another machine (key_changed); check why, then run again with --force to add the new key after the old one")]
    KeyChanged {
        path: PathBuf,
        role: &'static str,
        previous: String,
        current: String,
    },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// Makes sure `dir/file_name` contains `key`, creating the file on first use.
///
/// `role` names the key in messages ("signing", "attestation"). A file that
/// contains only other keys is an error unless `force`, which appends `key` and
/// keeps the earlier keys, so entries signed before still verify.
pub fn ensure_key_file(
    dir: &Path,
    file_name: &str,
    role: &'static str,
    key: &VerifyingKey,
    force: bool,
) -> Result<KeyFileOutcome, KeyFileError> {
    let path = dir.join(file_name);
    let pem = to_pem(key).map_err(|e| KeyFileError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let write_error = |e: std::io::Error| KeyFileError::Write {
        path: path.clone(),
        message: e.to_string(),
    };

    if !path.exists() {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(write_error)?;
        file.write_all(pem.as_bytes()).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        return Ok(KeyFileOutcome::Created);
    }
    let keys = load_keys_pem(&path).map_err(|e| KeyFileError::Read {
        path: path.clone(),
        message: e.to_string(),
    })?;

    let current = fingerprint(key);
    let previous: Vec<String> = keys.iter().map(fingerprint).collect();
    if previous.contains(&current) {
        return Ok(KeyFileOutcome::Present);
    }
    if !force {
        return Err(KeyFileError::KeyChanged {
            path,
            role,
            previous: previous.join(", "),
            current,
        });
    }

    let mut file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(write_error)?;
    let existing = std::fs::read(&path).map_err(write_error)?;
    if existing.last().is_some_and(|&b| b != b'\n') {
        file.write_all(b"\n").map_err(write_error)?;
    }
    file.write_all(pem.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(KeyFileOutcome::Appended { previous })
}
