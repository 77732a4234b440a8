//! Events the follower sends to its consumer.

use std::time::{Duration, SystemTime};

/// Change detection method of a follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMode {
    /// A notify watcher on the parent directory, plus a slow re-check timer.
    Watcher,
    /// Periodic `stat` calls only, because the watcher could not start or polling was forced.
    Polling {
        /// Reason the watcher is not in use.
        reason: String,
    },
}

/// One change the follower detected, with the time and the generation it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailEvent {
    /// Wall-clock time at which the follower detected the change.
    pub detected_at: SystemTime,
    /// Generation of the data this event belongs to. It increments on
    /// [`TailEventKind::Truncated`], [`TailEventKind::Replaced`] and
    /// [`TailEventKind::Modified`]; those events carry the new value, so every
    /// event that follows them belongs to the new generation.
    pub generation: u64,
    /// What changed.
    pub kind: TailEventKind,
}

/// The kinds of change a follower reports.
///
/// After `Truncated`, `Replaced` or `Modified` the follower delivers the file
/// again from offset 0 as `Appended` events of the new generation, and the
/// consumer discards everything it received in older generations. Those three
/// events, and `Deleted`, also clear any pending partial line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEventKind {
    /// The follower is running; always the first event.
    Started {
        /// Change detection method.
        mode: WatchMode,
    },
    /// Complete lines (each ending in `\n`) that start at byte `offset` of the file.
    Appended {
        /// Byte offset of `bytes[0]` in the file.
        offset: u64,
        /// One or more whole lines, the last byte is always `\n`.
        bytes: Vec<u8>,
    },
    /// The number of bytes after the last `\n` changed. `len` is 0 when the
    /// partial line was completed (its bytes then arrived in an `Appended`).
    PendingTail {
        /// Bytes after the last delivered `\n`.
        len: u64,
    },
    /// A partial last line has kept the same length for the configured
    /// `tail_complete_after`. Sent once per pending length; the bytes stay
    /// held back and the consumer decides whether to treat them as a line.
    TailComplete {
        /// Bytes after the last delivered `\n`.
        len: u64,
        /// Time since the partial line last changed length.
        pending_for: Duration,
    },
    /// The file shrank below the bytes already delivered (same inode).
    Truncated {
        /// Size last seen before the truncation, in bytes.
        old_size: u64,
        /// Size now, in bytes.
        new_size: u64,
    },
    /// The path now names a different file (rename-based save, rotation, or
    /// re-creation after `Deleted`). Lines appended to the old file after the
    /// last delivery were sent before this event, tagged with the old generation.
    Replaced {
        /// Inode number of the file followed until now.
        old_inode: u64,
        /// Inode number of the file now at the path.
        new_inode: u64,
    },
    /// A regular file appeared at a path that had none (or an unreadable one)
    /// when the follower started. It is read from offset 0.
    Created {
        /// Inode number of the new file.
        inode: u64,
    },
    /// Bytes already delivered changed in place (same inode, size the same or larger).
    Modified {
        /// Lowest offset known to differ; the first change may be earlier when
        /// the change was found through a block digest (see the module docs).
        first_changed_offset_hint: u64,
    },
    /// The path does not exist. The follower keeps watching; a later file at
    /// the path is reported as `Replaced` (or `Created` if no file was followed yet).
    Deleted,
    /// The path could not be read; the follower keeps retrying and sends a new
    /// `Error` only when the message changes.
    Error {
        /// Description of the failure, with the path and the OS error.
        message: String,
    },
}
