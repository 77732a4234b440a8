//! Following one file: turns every way a file can change into [`TailEvent`]s.
//!
//! The follower deals in bytes and byte offsets only; it does not parse
//! JSON or verify entries. It watches the parent directory of the path with
//! notify, so rename-based saves, rotation and re-creation are seen, and
//! re-checks on a slow timer in case an event is dropped. When the watcher
//! cannot start (inotify limits, unsupported file system) it polls instead and
//! reports the reason in [`TailEventKind::Started`].
//!
//! # What is tracked
//! Device and inode of the open file, its size, mtime and ctime, and the read
//! offset (bytes delivered so far). A fingerprint of the delivered bytes
//! keeps a copy of the first and last 4 KiB before the offset and a SHA-256
//! digest per 256 KiB block.
//!
//! # Limits
//! - In-place changes are found for certain only inside the first and last
//!   4 KiB of the delivered bytes (checked on every wake-up). Elsewhere, a
//!   change is found by the block digests, which are compared only when the
//!   size stayed the same but mtime or ctime moved. So a change in the middle
//!   made together with an append (size grows), or one that leaves mtime and
//!   ctime unchanged (a timestamp too coarse to move, or reset with
//!   `utimensat` and no ctime change), is missed.
//! - The block check re-reads all delivered bytes, so on a large file a
//!   `touch` or `chmod` costs one full read. Starting at a nonzero
//!   `start_offset` also reads `[0, start_offset)` once to build the
//!   fingerprint, on a background thread so appends are delivered meanwhile;
//!   a block check waits for it. A change made to those bytes before that
//!   thread reads them is not seen.
//! - A truncation that removes only the partial last line (bytes never
//!   delivered) is not `Truncated`; only `PendingTail` changes.
//! - When a file is replaced or deleted, a partial last line of the old file
//!   is dropped; only its complete lines are drained.
//! - The watcher watches the parent directory by its path. If that directory
//!   is itself removed or renamed, changes are seen only by the slow re-check.
//! - A path that briefly disappears (rename away, then create) is reported
//!   as `Deleted` only after `delete_grace`, so a rotation reads as one
//!   `Replaced`; a slower rotation reads as `Deleted`, then `Replaced`.

mod event;
mod fingerprint;
mod follower;
mod read;
mod watch;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

pub use event::{TailEvent, TailEventKind, WatchMode};
pub use read::read_complete_lines;

use follower::{try_watcher, Follower};
use watch::Wake;

/// Settings of one follower: the path, the start offset, intervals and limits.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// The file to follow; it may not exist yet.
    pub path: PathBuf,
    /// Bytes the consumer already holds; reading starts here. It must be 0 or
    /// just after a `\n`. When the file is shorter, the follower sends
    /// `Truncated` and starts at 0.
    pub start_offset: u64,
    /// Interval between checks in polling mode.
    pub poll_interval: Duration,
    /// Interval between safety re-checks in watcher mode, in case an event is dropped.
    pub recheck_interval: Duration,
    /// Poll even when a watcher could start.
    pub force_polling: bool,
    /// Maximum bytes per `Appended` event, except for a single longer line (sent whole).
    pub max_chunk: usize,
    /// How long a partial last line must keep its length before `TailComplete`.
    pub tail_complete_after: Duration,
    /// How long the path must stay missing before `Deleted` is sent.
    pub delete_grace: Duration,
    /// Capacity of the event channel; the follower waits when it is full.
    pub channel_capacity: usize,
}

impl FollowerConfig {
    /// Returns a configuration for `path` from offset 0 with the default intervals:
    /// polling every 250 ms, re-checking every 1 s, chunks of 4 MiB,
    /// `TailComplete` after 2 s and `Deleted` after 500 ms.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            start_offset: 0,
            poll_interval: Duration::from_millis(250),
            recheck_interval: Duration::from_secs(1),
            force_polling: false,
            max_chunk: 4 * 1024 * 1024,
            tail_complete_after: Duration::from_secs(2),
            delete_grace: Duration::from_millis(500),
            channel_capacity: 256,
        }
    }
}

/// Stops the follower thread when dropped.
#[derive(Debug)]
pub struct FollowerHandle {
    wake: mpsc::Sender<Wake>,
}

impl Drop for FollowerHandle {
    fn drop(&mut self) {
        // A send error means the thread has already stopped.
        let _ = self.wake.send(Wake::Stop);
    }
}

/// Starts following `config.path` on a dedicated thread and returns the event
/// receiver and the handle that stops it.
///
/// The first event is always [`TailEventKind::Started`], unless the thread
/// could not be spawned: then the only event is an [`TailEventKind::Error`].
/// The follower also stops when the receiver is dropped. File reads are
/// blocking, which is why the work runs on its own thread and not on the runtime.
pub fn spawn_follower(
    config: FollowerConfig,
) -> (tokio::sync::mpsc::Receiver<TailEvent>, FollowerHandle) {
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(config.channel_capacity.max(1));
    let (wake_tx, wake_rx) = mpsc::channel();
    let handle = FollowerHandle {
        wake: wake_tx.clone(),
    };

    let thread_events = events_tx.clone();
    let spawned = std::thread::Builder::new()
        .name("sealdesk-tail".into())
        .spawn(move || {
            let watcher = try_watcher(&config, wake_tx);
            Follower::new(config, thread_events).run(wake_rx, watcher);
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "spawning the file follower thread failed");
        let event = TailEvent {
            detected_at: SystemTime::now(),
            generation: 0,
            kind: TailEventKind::Error {
                message: format!("spawning the file follower thread failed: {error}"),
            },
        };
        // The channel was just created with a capacity of at least 1 and is empty, so the send succeeds.
        let _ = events_tx.try_send(event);
    }
    (events_rx, handle)
}
