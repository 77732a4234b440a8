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
}

/// Returns the lock file for `chain_file`: the same name with `.lock` appended.
pub fn lock_path(chain_file: &Path) -> PathBuf {
    let mut name = chain_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
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
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.clone(),
                source,
            })?;
        let start = Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            // SAFETY: flock(2) on a descriptor owned by `file`, which outlives the call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(ChainLock { _file: file, path });
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => {}
                _ => {
                    return Err(LockError::Lock {
                        path,
                        source: error,
                    })
                }
            }
            if let Some(notify) = on_wait.take() {
                notify(&path);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(LockError::TimedOut { path, waited });
            }
            thread::sleep(RETRY_INTERVAL);
        }
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
                "sealdesk: waiting up to {} s for the lock {} (a seal is in progress)",
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
        let mut waited = false;
        let second = ChainLock::acquire(&chain, Duration::from_millis(50), |_| waited = true);
        assert!(matches!(second, Err(LockError::TimedOut { .. })));
        assert!(waited);
        drop(first);
        let third = ChainLock::acquire(&chain, Duration::from_millis(50), |_| {});
        assert!(third.is_ok());
    }

    #[test]
    fn lock_path_appends_suffix() {
        assert_eq!(
            lock_path(Path::new("/d/decisions_sealed.jsonl")),
            PathBuf::from("/d/decisions_sealed.jsonl.lock")
        );
    }
}
