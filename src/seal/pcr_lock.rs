//! The PCR lock: an exclusive `flock` keyed by the TPM (its TCTI string) and the PCR index.
//!
//! A PCR belongs to the TPM, not to one chain, so two chains sealed at the same time
//! through one TPM would interleave their extensions of the same PCR. TPM-mode sealing
//! therefore takes this lock as well as the chain's lock, always after the chain's lock
//! (one fixed order, so two sealers cannot deadlock), and holds it from before the PCR
//! read until after the read-back.
//!
//! The lock files live in a per-user directory: `$XDG_RUNTIME_DIR/sealdesk` when that
//! variable names a writable directory, else `/tmp/sealdesk-<uid>`, created with mode 0700.
//! A file is named `pcr<index>-<hex>.lock`, where `<hex>` is the first 8 bytes of
//! SHA-256 over the TCTI string, a zero byte and the PCR index.
//!
//! NOTE: the key is the TCTI string as given, so two spellings of one TPM
//! (`device:/dev/tpmrm0` and `device:/dev/tpm0`, or swtpm options in another order)
//! take different locks, and sealers run by different users never share a lock.

use std::ffi::CString;
use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::lock::{lock_file, LockError};

/// An exclusive lock on one PCR of one TPM, released when dropped.
#[derive(Debug)]
pub struct PcrLock {
    _file: File,
    path: PathBuf,
}

impl PcrLock {
    /// Takes the lock of PCR `pcr` on the TPM at `tcti`, waiting up to `timeout`.
    ///
    /// `on_wait` runs once, with the lock file's path, when another process holds it.
    pub fn acquire(
        tcti: &str,
        pcr: u8,
        timeout: Duration,
        on_wait: impl FnOnce(&Path),
    ) -> Result<PcrLock, LockError> {
        PcrLock::acquire_in(&runtime_lock_dir()?, tcti, pcr, timeout, on_wait)
    }

    /// Takes the lock like [`PcrLock::acquire`], with its file in `dir` instead of the
    /// per-user directory.
    pub fn acquire_in(
        dir: &Path,
        tcti: &str,
        pcr: u8,
        timeout: Duration,
        on_wait: impl FnOnce(&Path),
    ) -> Result<PcrLock, LockError> {
        let path = dir.join(pcr_lock_name(tcti, pcr));
        match lock_file(&path, timeout, on_wait) {
            Ok(file) => Ok(PcrLock { _file: file, path }),
            Err(LockError::TimedOut { path, waited }) => Err(LockError::PcrTimedOut {
                path,
                tcti: tcti.to_owned(),
                pcr,
                waited,
            }),
            Err(error) => Err(error),
        }
    }

    /// Returns the path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Returns the file name of the lock of PCR `pcr` on the TPM at `tcti`.
pub fn pcr_lock_name(tcti: &str, pcr: u8) -> String {
    let mut hasher = Sha256::new();
    hasher.update(tcti.as_bytes());
    hasher.update([0, pcr]);
    let digest = hasher.finalize();
    format!("pcr{pcr}-{}.lock", hex::encode(&digest[..8]))
}

/// Returns the directory of the PCR locks, creating it (mode 0700) when missing.
///
/// `$XDG_RUNTIME_DIR/sealdesk` is used when `XDG_RUNTIME_DIR` is an absolute path to a
/// directory this process can write, else `/tmp/sealdesk-<uid>`. The directory must be
/// owned by this user and closed to others, so that no other user can hold or replace
/// the lock files.
pub fn runtime_lock_dir() -> Result<PathBuf, LockError> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        if runtime.is_absolute() && is_writable_dir(&runtime) {
            let dir = runtime.join("sealdesk");
            if create_private_dir(&dir, uid).is_ok() {
                return Ok(dir);
            }
        }
    }
    let dir = PathBuf::from(format!("/tmp/sealdesk-{uid}"));
    create_private_dir(&dir, uid)?;
    Ok(dir)
}

fn is_writable_dir(path: &Path) -> bool {
    if !path.is_dir() {
        return false;
    }
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) with a NUL-terminated path that lives until the call returns.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Creates `dir` with mode 0700 when missing and checks that it is a real directory
/// (not a symlink) owned by `uid` with no permissions for group or others.
fn create_private_dir(dir: &Path, uid: libc::uid_t) -> Result<(), LockError> {
    let fail = |reason: String| LockError::LockDir {
        path: dir.to_path_buf(),
        reason,
    };
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(fail(format!("cannot create it: {error}"))),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| fail(format!("cannot stat it: {e}")))?;
    if !meta.file_type().is_dir() {
        return Err(fail(
            "it is not a directory (a symlink or a file); remove it".to_owned(),
        ));
    }
    if meta.uid() != uid {
        return Err(fail(format!(
            "it is owned by uid {}, not by this user (uid {uid}); remove it",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(fail(format!(
            "its mode is {:o}, open to other users; run chmod 700 on it",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_depends_on_tcti_and_pcr() {
        let a = pcr_lock_name("swtpm:host=127.0.0.1,port=2321", 23);
        assert!(a.starts_with("pcr23-"), "{a}");
        assert!(a.ends_with(".lock"), "{a}");
        assert_eq!(a.len(), "pcr23-".len() + 16 + ".lock".len());
        assert_ne!(a, pcr_lock_name("swtpm:host=127.0.0.1,port=2323", 23));
        assert_ne!(a, pcr_lock_name("swtpm:host=127.0.0.1,port=2321", 16));
        assert_eq!(a, pcr_lock_name("swtpm:host=127.0.0.1,port=2321", 23));
    }

    #[test]
    fn open_directory_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        // SAFETY: geteuid(2) has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let error = create_private_dir(&open, uid).unwrap_err();
        assert!(error.to_string().contains("chmod 700"), "{error}");
        let private = dir.path().join("private");
        create_private_dir(&private, uid).unwrap();
        let mode = std::fs::metadata(&private).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn second_holder_times_out() {
        let tcti = format!("test:pcr-lock-{}", std::process::id());
        let first = PcrLock::acquire(&tcti, 23, Duration::from_secs(1), |_| {}).unwrap();
        let second = PcrLock::acquire(&tcti, 23, Duration::from_millis(30), |_| {});
        match second {
            Err(LockError::PcrTimedOut { path, pcr, .. }) => {
                assert_eq!(path, first.path());
                assert_eq!(pcr, 23);
            }
            other => panic!("expected PcrTimedOut, got {other:?}"),
        }
        assert!(PcrLock::acquire(&tcti, 22, Duration::from_millis(30), |_| {}).is_ok());
        let path = first.path().to_path_buf();
        drop(first);
        assert!(PcrLock::acquire(&tcti, 23, Duration::from_millis(30), |_| {}).is_ok());
        let _ = std::fs::remove_file(path);
    }
}
