//! The TPM worker: one OS thread owns the tss-esapi `Context` and serves requests from a channel.
//!
//! Every `Context` call takes `&mut self`, so one thread serves all callers in order.
//! Callers hold a cloneable [`TpmHandle`] and wait for replies either blocking
//! (CLI code) or with `.await` (TUI code).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Once};
use std::thread;
use std::time::Duration;

use p256::ecdsa::VerifyingKey;
use tokio::sync::oneshot;
use tracing::{debug, error, warn};

use super::connection::{Connection, PinnedKeys};
use super::error::{KeyKind, TpmError};
use super::tcti::TctiSelection;
use super::TpmInfo;

/// Reply channel of one request: a std channel for blocking callers, a tokio oneshot for async ones.
enum ReplySender<T> {
    Blocking(mpsc::SyncSender<Result<T, TpmError>>),
    Async(oneshot::Sender<Result<T, TpmError>>),
}

impl<T> ReplySender<T> {
    /// Sends the result; a caller that stopped waiting is not an error.
    fn send(self, result: Result<T, TpmError>) {
        let delivered = match self {
            ReplySender::Blocking(sender) => sender.send(result).is_ok(),
            ReplySender::Async(sender) => sender.send(result).is_ok(),
        };
        if !delivered {
            debug!("TPM request finished after its caller stopped waiting");
        }
    }
}

/// Output of a quote: the marshalled TPMS_ATTEST, the marshalled TPMT_SIGNATURE
/// and the SHA-256 values of the quoted PCRs in selection order.
pub type QuoteParts = (Vec<u8>, Vec<u8>, Vec<[u8; 32]>);

enum Request {
    Info(ReplySender<TpmInfo>),
    ReadPcr {
        index: u8,
        reply: ReplySender<[u8; 32]>,
    },
    ExtendPcr {
        index: u8,
        digest: [u8; 32],
        reply: ReplySender<()>,
    },
    ResetPcr {
        index: u8,
        reply: ReplySender<()>,
    },
    PublicKey {
        key: KeyKind,
        reply: ReplySender<VerifyingKey>,
    },
    Sign {
        digest: [u8; 32],
        reply: ReplySender<Vec<u8>>,
    },
    Quote {
        index: u8,
        nonce: [u8; 32],
        reply: ReplySender<QuoteParts>,
    },
}

/// A cloneable handle to the TPM worker thread.
///
/// Dropping the last handle ends the worker thread and waits until it has flushed its keys
/// and closed the connection.
/// Blocking methods must not run on an async runtime thread: call them through
/// `tokio::task::spawn_blocking`, or use the `_async` variants.
#[derive(Clone)]
pub struct TpmHandle {
    // Declared before `_worker_thread`, so the last handle closes the channel before it joins.
    requests: mpsc::Sender<Request>,
    tcti: TctiSelection,
    /// Only dropped: the last handle's drop joins the worker thread.
    _worker_thread: Arc<WorkerThread>,
}

/// Joins the worker thread when the last handle is dropped, so the keys are flushed
/// and the connection is closed once the drop returns.
struct WorkerThread {
    thread: Option<thread::JoinHandle<()>>,
    /// Set when a request timed out: the worker may be blocked inside libtss2
    /// for good, so it is left to end on its own instead of being joined.
    stalled: AtomicBool,
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if self.stalled.load(Ordering::Relaxed) {
            warn!("leaving the stalled TPM worker thread behind instead of waiting for it");
            return;
        }
        if thread.join().is_err() {
            error!("the TPM worker thread panicked");
        }
    }
}

/// How long a caller waits for the TPM: `SEALDESK_TPM_TIMEOUT` seconds, else 30 s.
/// Calls on swtpm take milliseconds and on hardware TPMs well under a second,
/// so only a stalled TPM or connection reaches this.
fn reply_timeout() -> Duration {
    std::env::var("SEALDESK_TPM_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&seconds| seconds > 0)
        .map_or(Duration::from_secs(30), Duration::from_secs)
}

impl std::fmt::Debug for TpmHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmHandle")
            .field("tcti", &self.tcti)
            .finish_non_exhaustive()
    }
}

/// Sets `TSS2_LOG=all+none` unless the user set `TSS2_LOG`, so libtss2 writes nothing to stderr.
fn silence_libtss2_logging() {
    static SILENCE: Once = Once::new();
    SILENCE.call_once(|| {
        if std::env::var_os("TSS2_LOG").is_none() {
            // NOTE: setting a variable races with other threads reading the environment;
            // this runs once, before the first libtss2 call of the process.
            std::env::set_var("TSS2_LOG", "all+none");
        }
    });
}

impl TpmHandle {
    /// Starts the worker thread, opens the TPM at `tcti` and returns once the TPM responded.
    ///
    /// Blocks for the connection (a few milliseconds on swtpm).
    pub fn connect(tcti: TctiSelection) -> Result<TpmHandle, TpmError> {
        silence_libtss2_logging();

        let (requests, request_receiver) = mpsc::channel();
        let (ready_sender, ready_receiver) = mpsc::sync_channel(1);
        let worker_tcti = tcti.clone();
        let thread = thread::Builder::new()
            .name("tpm-worker".into())
            .spawn(move || run_worker(worker_tcti, request_receiver, ready_sender))
            .map_err(|error| TpmError::WorkerStart {
                message: error.to_string(),
            })?;
        let thread = Arc::new(WorkerThread {
            thread: Some(thread),
            stalled: AtomicBool::new(false),
        });

        // On failure the worker thread has already returned, so dropping `thread` joins at once.
        let timeout = reply_timeout();
        match ready_receiver.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(TpmHandle {
                requests,
                tcti,
                _worker_thread: thread,
            }),
            Ok(Err(error)) => Err(error),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                thread.stalled.store(true, Ordering::Relaxed);
                Err(TpmError::TimedOut {
                    tcti: tcti.tcti.clone(),
                    seconds: timeout.as_secs(),
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(TpmError::WorkerStopped),
        }
    }

    /// Returns the TCTI this handle's worker connects to.
    pub fn tcti(&self) -> &TctiSelection {
        &self.tcti
    }

    fn call_blocking<T>(
        &self,
        make: impl FnOnce(ReplySender<T>) -> Request,
    ) -> Result<T, TpmError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.requests
            .send(make(ReplySender::Blocking(sender)))
            .map_err(|_| TpmError::WorkerStopped)?;
        let timeout = reply_timeout();
        match receiver.recv_timeout(timeout) {
            Ok(reply) => reply,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(self.timed_out(timeout)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(TpmError::WorkerStopped),
        }
    }

    /// Marks the worker as stalled and builds the error for a request that got no reply.
    fn timed_out(&self, timeout: Duration) -> TpmError {
        self._worker_thread.stalled.store(true, Ordering::Relaxed);
        TpmError::TimedOut {
            tcti: self.tcti.tcti.clone(),
            seconds: timeout.as_secs(),
        }
    }

    async fn call_async<T>(
        &self,
        make: impl FnOnce(ReplySender<T>) -> Request,
    ) -> Result<T, TpmError> {
        let (sender, receiver) = oneshot::channel();
        self.requests
            .send(make(ReplySender::Async(sender)))
            .map_err(|_| TpmError::WorkerStopped)?;
        let timeout = reply_timeout();
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(TpmError::WorkerStopped),
            Err(_) => Err(self.timed_out(timeout)),
        }
    }

    /// Reads the manufacturer and firmware version.
    pub fn info(&self) -> Result<TpmInfo, TpmError> {
        self.call_blocking(Request::Info)
    }

    /// Reads PCR `index` of the SHA-256 bank.
    pub fn read_pcr(&self, index: u8) -> Result<[u8; 32], TpmError> {
        self.call_blocking(|reply| Request::ReadPcr { index, reply })
    }

    /// Extends PCR `index` of the SHA-256 bank: new value = SHA-256(old value || digest).
    pub fn extend_pcr(&self, index: u8, digest: [u8; 32]) -> Result<(), TpmError> {
        self.call_blocking(|reply| Request::ExtendPcr {
            index,
            digest,
            reply,
        })
    }

    /// Resets PCR `index` to zeros; at locality 0 only PCR 16 and 23 allow it.
    pub fn reset_pcr(&self, index: u8) -> Result<(), TpmError> {
        self.call_blocking(|reply| Request::ResetPcr { index, reply })
    }

    /// Returns the public key of the signing key.
    pub fn signing_public(&self) -> Result<VerifyingKey, TpmError> {
        self.call_blocking(|reply| Request::PublicKey {
            key: KeyKind::Signing,
            reply,
        })
    }

    /// Returns the public key of the attestation key (AK).
    pub fn ak_public(&self) -> Result<VerifyingKey, TpmError> {
        self.call_blocking(|reply| Request::PublicKey {
            key: KeyKind::Attestation,
            reply,
        })
    }

    /// Signs a SHA-256 digest with the signing key and returns the marshalled TPMT_SIGNATURE
    /// (ECDSA, SHA-256, r and s as TPM2B).
    pub fn sign(&self, digest: [u8; 32]) -> Result<Vec<u8>, TpmError> {
        self.call_blocking(|reply| Request::Sign { digest, reply })
    }

    /// Quotes PCR `index` of the SHA-256 bank with the AK and `nonce` as qualifying data.
    ///
    /// Returns the marshalled TPMS_ATTEST (the signed bytes), the marshalled TPMT_SIGNATURE
    /// and the PCR values read right after the quote on the same connection.
    pub fn quote(&self, index: u8, nonce: [u8; 32]) -> Result<QuoteParts, TpmError> {
        self.call_blocking(|reply| Request::Quote {
            index,
            nonce,
            reply,
        })
    }

    /// Async form of [`TpmHandle::info`].
    pub async fn info_async(&self) -> Result<TpmInfo, TpmError> {
        self.call_async(Request::Info).await
    }

    /// Async form of [`TpmHandle::read_pcr`].
    pub async fn read_pcr_async(&self, index: u8) -> Result<[u8; 32], TpmError> {
        self.call_async(|reply| Request::ReadPcr { index, reply })
            .await
    }

    /// Async form of [`TpmHandle::extend_pcr`].
    pub async fn extend_pcr_async(&self, index: u8, digest: [u8; 32]) -> Result<(), TpmError> {
        self.call_async(|reply| Request::ExtendPcr {
            index,
            digest,
            reply,
        })
        .await
    }

    /// Async form of [`TpmHandle::reset_pcr`].
    pub async fn reset_pcr_async(&self, index: u8) -> Result<(), TpmError> {
        self.call_async(|reply| Request::ResetPcr { index, reply })
            .await
    }

    /// Async form of [`TpmHandle::signing_public`].
    pub async fn signing_public_async(&self) -> Result<VerifyingKey, TpmError> {
        self.call_async(|reply| Request::PublicKey {
            key: KeyKind::Signing,
            reply,
        })
        .await
    }

    /// Async form of [`TpmHandle::ak_public`].
    pub async fn ak_public_async(&self) -> Result<VerifyingKey, TpmError> {
        self.call_async(|reply| Request::PublicKey {
            key: KeyKind::Attestation,
            reply,
        })
        .await
    }

    /// Async form of [`TpmHandle::sign`].
    pub async fn sign_async(&self, digest: [u8; 32]) -> Result<Vec<u8>, TpmError> {
        self.call_async(|reply| Request::Sign { digest, reply })
            .await
    }

    /// Async form of [`TpmHandle::quote`].
    pub async fn quote_async(&self, index: u8, nonce: [u8; 32]) -> Result<QuoteParts, TpmError> {
        self.call_async(|reply| Request::Quote {
            index,
            nonce,
            reply,
        })
        .await
    }
}

/// State of the worker thread.
struct Worker {
    tcti: TctiSelection,
    connection: Option<Connection>,
    /// Public keys first created in this worker's life; a re-created key must match them.
    pinned: PinnedKeys,
}

fn run_worker(
    tcti: TctiSelection,
    requests: mpsc::Receiver<Request>,
    ready: mpsc::SyncSender<Result<(), TpmError>>,
) {
    let mut worker = Worker {
        tcti,
        connection: None,
        pinned: [None, None],
    };

    let opened = Connection::open(&worker.tcti).map(|connection| {
        worker.connection = Some(connection);
    });
    let failed = opened.is_err();
    if ready.send(opened).is_err() || failed {
        return;
    }

    while let Ok(request) = requests.recv() {
        let served = catch_unwind(AssertUnwindSafe(|| worker.serve(request)));
        if served.is_err() {
            // The caller's reply channel was dropped during the unwind, so the caller gets
            // WorkerStopped. The connection state is unknown, so open a new one next time.
            error!(tcti = %worker.tcti, "TPM request panicked; dropping the connection");
            worker.connection = None;
        }
    }

    if let Some(connection) = worker.connection.take() {
        connection.close();
    }
}

impl Worker {
    fn serve(&mut self, request: Request) {
        match request {
            Request::Info(reply) => {
                let tcti = self.tcti.clone();
                reply.send(self.with_retry("read TPM properties", |connection, _| {
                    connection.info(&tcti)
                }));
            }
            Request::ReadPcr { index, reply } => {
                reply.send(self.with_retry("PCR read", |connection, _| connection.read_pcr(index)));
            }
            Request::ExtendPcr {
                index,
                digest,
                reply,
            } => {
                reply.send(self.with_retry("PCR extend", |connection, _| {
                    connection.extend_pcr(index, digest)
                }));
            }
            Request::ResetPcr { index, reply } => {
                reply.send(
                    self.with_retry("PCR reset", |connection, _| connection.reset_pcr(index)),
                );
            }
            Request::PublicKey { key, reply } => {
                reply.send(self.with_retry("key creation", |connection, pinned| {
                    connection.public_key(key, pinned)
                }));
            }
            Request::Sign { digest, reply } => {
                reply.send(
                    self.with_retry("sign", |connection, pinned| connection.sign(digest, pinned)),
                );
            }
            Request::Quote {
                index,
                nonce,
                reply,
            } => {
                reply.send(self.with_retry("quote", |connection, pinned| {
                    connection.quote(index, nonce, pinned)
                }));
            }
        }
    }

    /// Runs `operation` on the connection, opening it first if needed. When the
    /// connection turns out dead, opens a new one (keys are re-created on use) and
    /// runs `operation` once more.
    fn with_retry<T>(
        &mut self,
        name: &'static str,
        mut operation: impl FnMut(&mut Connection, &mut PinnedKeys) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let reconnected = self.connection.is_none();
        let result = self.run_once(&mut operation);

        match result {
            Err(error) if error.is_connection_failure() && !reconnected => {
                warn!(tcti = %self.tcti, operation = name, %error, "TPM connection lost; reconnecting once");
                self.connection = None;
                let retried = self.run_once(&mut operation);
                if let Err(error) = &retried {
                    warn!(tcti = %self.tcti, operation = name, %error, "TPM request failed after reconnecting");
                }
                retried
            }
            other => other,
        }
    }

    fn run_once<T>(
        &mut self,
        operation: &mut impl FnMut(&mut Connection, &mut PinnedKeys) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(Connection::open(&self.tcti)?),
        };
        let result = operation(connection, &mut self.pinned);
        if matches!(&result, Err(error) if error.is_connection_failure()) {
            self.connection = None;
        }
        result
    }
}
