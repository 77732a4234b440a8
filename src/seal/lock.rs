//! The chain's write lock: an exclusive `flock` on a `.lock` file beside the chain.
//!
//! A separate file is locked, not the chain itself, so the chain file can be
//! created while the lock is held. Only sealdesk takes this lock; the Go
//! reference logger does not, so it must not write the same chain at the same time.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// Time between attempts while another process holds the lock.
const RETRY_INTERVAL: Duration = Duration::from_millis(5);

/// Failure to take the chain's lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open the lock file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("timed out after {waited:?} waiting for the lock {path}, which another sealdesk process holds; retry when it has finished, or raise --lock-timeout")]
    TimedOut { path: PathBuf, waited: Duration },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error("timed out after {waited:?} waiting for the PCR lock {path} (PCR {pcr} on TCTI `{tcti}`), which another sealdesk process holds while it seals a chain through the same TPM PCR; retry when it has finished, or raise --lock-timeout")]
    PcrTimedOut {
        path: PathBuf,
        tcti: String,
        pcr: u8,
        waited: Duration,
    },
    #[error("cannot use {path} for the PCR locks: {reason}")]
    LockDir { path: PathBuf, reason: String },
}

/// Returns the lock file for `chain_file`: its canonical path with `.lock` appended.
///
/// The path is canonicalized first (symlinks, `.` and `..` resolved), so that every path
/// that reaches one chain file takes the same lock. When the file does not exist yet, its
/// directory is canonicalized and the file name appended. When neither resolves (a missing
/// directory), the path is used as given, because no chain can be written there anyway.
///
/// NOTE: a chain file that is a dangling symlink is locked under the symlink's own name,
/// not under its target's.
pub fn lock_path(chain_file: &Path) -> PathBuf {
    let mut name = canonical_chain_path(chain_file).into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

fn canonical_chain_path(chain_file: &Path) -> PathBuf {
    if let Ok(path) = std::fs::canonicalize(chain_file) {
        return path;
    }
    let Some(file_name) = chain_file.file_name() else {
        return chain_file.to_path_buf();
    };
    let dir = match chain_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::canonicalize(dir) {
        Ok(dir) => dir.join(file_name),
        Err(_) => chain_file.to_path_buf(),
    }
}

/// How long a wait for the lock goes unreported.
const QUIET_WAIT: Duration = Duration::from_millis(500);

/// Opens (creating with mode 0600) and exclusively `flock`s `path`, waiting up to `timeout`.
///
/// `on_wait` runs once, with `path`, when another process has held the lock for
/// `QUIET_WAIT` while this one waits.
pub(super) fn lock_file(
    path: &Path,
    timeout: Duration,
    on_wait: impl FnOnce(&Path),
) -> Result<File, LockError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let start = Instant::now();
    let mut on_wait = Some(on_wait);
    loop {
        // SAFETY: flock(2) on a descriptor owned by `file`, which outlives the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(file);
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => {}
            _ => {
                return Err(LockError::Lock {
                    path: path.to_path_buf(),
                    source: error,
                })
            }
        }
        let waited = start.elapsed();
        // Other holders (the view's TPM checks, another seal) usually finish
        // within milliseconds, so a wait that short is not reported.
        if waited >= QUIET_WAIT {
            if let Some(notify) = on_wait.take() {
                notify(path);
            }
        }
        if waited >= timeout {
            return Err(LockError::TimedOut {
                path: path.to_path_buf(),
                waited,
            });
        }
        thread::sleep(RETRY_INTERVAL);
    }
}

/// An exclusive lock on a chain, released when dropped (closing the file releases the `flock`).
#[derive(Debug)]
pub struct ChainLock {
    _file: File,
    path: PathBuf,
}

impl ChainLock {
    /// Takes the lock of `chain_file`, waiting up to `timeout` for another holder.
    ///
    /// `on_wait` runs once, with the lock file's path, when the lock is busy.
    pub fn acquire(
        chain_file: &Path,
        timeout: Duration,
        on_wait: impl FnOnce(&Path),
    ) -> Result<ChainLock, LockError> {
        let path = lock_path(chain_file);
        let file = lock_file(&path, timeout, on_wait)?;
        Ok(ChainLock { _file: file, path })
    }

    /// Takes the lock for a reader that compares the TPM with the chain (quote, anchor),
    /// so that no seal runs between the PCR read and the chain read.
    ///
    /// The lock is kept until the process exits, for the reason given in `sealdesk seal`.
    /// Returns `Ok(None)` when the lock file cannot be created (a read-only directory);
    /// the comparison then runs unlocked.
    pub fn acquire_for_reading(
        chain_file: &Path,
        timeout: Duration,
    ) -> Result<Option<std::mem::ManuallyDrop<ChainLock>>, LockError> {
        match ChainLock::acquire(chain_file, timeout, |path| {
            eprintln!(
                "sealdesk: waiting up to {} s for the lock {} (another sealdesk process is sealing, quoting or checking the TPM)",
                timeout.as_secs(),
                path.display()
            );
        }) {
            Ok(lock) => Ok(Some(std::mem::ManuallyDrop::new(lock))),
            Err(LockError::Open { path, source }) => {
                eprintln!(
                    "sealdesk: cannot open the lock file {} ({source}); comparing without the lock, so a seal running now can make the PCR and the head differ",
                    path.display()
                );
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Returns the path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let chain = dir.path().join("chain.jsonl");
        let first = ChainLock::acquire(&chain, Duration::from_secs(1), |_| {}).unwrap();
        let mut reported = false;
        let short = ChainLock::acquire(&chain, Duration::from_millis(50), |_| reported = true);
        assert!(matches!(short, Err(LockError::TimedOut { .. })));
        assert!(!reported, "a wait shorter than QUIET_WAIT is not reported");
        let long = ChainLock::acquire(&chain, QUIET_WAIT * 2, |_| reported = true);
        assert!(matches!(long, Err(LockError::TimedOut { .. })));
        assert!(reported, "a longer wait is reported");
        drop(first);
        let third = ChainLock::acquire(&chain, Duration::from_millis(50), |_| {});
        assert!(third.is_ok());
    }

    #[test]
    fn lock_path_resolves_other_paths() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let direct = lock_path(&real.join("chain.jsonl"));
        assert_eq!(direct.file_name().unwrap(), "chain.jsonl.lock");
        // The chain file does not exist yet, so its directory is resolved.
        assert_eq!(lock_path(&link.join("chain.jsonl")), direct);
        assert_eq!(lock_path(&real.join("../real/./chain.jsonl")), direct);

        std::fs::write(real.join("chain.jsonl"), b"").unwrap();
        std::os::unix::fs::symlink(real.join("chain.jsonl"), dir.path().join("alias.jsonl"))
            .unwrap();
        assert_eq!(lock_path(&link.join("chain.jsonl")), direct);
        assert_eq!(lock_path(&dir.path().join("alias.jsonl")), direct);
    }

    #[test]
    fn lock_path_appends_suffix() {
        assert_eq!(
            lock_path(Path::new("/d/decisions_sealed.jsonl")),
            PathBuf::from("/d/decisions_sealed.jsonl.lock")
        );
    }
}
