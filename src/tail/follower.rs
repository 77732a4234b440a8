//! The follower thread: one check turns the path's current state into events.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::Sender;

use super::event::{TailEvent, TailEventKind, WatchMode};
use super::fingerprint::Fingerprint;
use super::read::read_lines;
use super::watch::{start_watcher, Wake};
use super::FollowerConfig;

/// How long the follower waits before it takes a change of times at the same
/// size for an in-place change: long enough for a write in progress to move
/// the size too.
const APPEND_SETTLE: Duration = Duration::from_millis(5);

/// The consumer dropped its receiver, so the follower stops.
struct ReceiverGone;

type Sent = Result<(), ReceiverGone>;

/// Seconds and nanoseconds of a file timestamp.
type Timestamp = (i64, i64);

/// The file the follower has open and what it has delivered from it.
struct Tracked {
    file: File,
    dev: u64,
    inode: u64,
    /// Bytes delivered so far; always just after a `\n` (or 0, or the start offset).
    offset: u64,
    /// Size at the last check, in bytes.
    size: u64,
    mtime: Timestamp,
    ctime: Timestamp,
    fingerprint: Fingerprint,
    /// Bytes after `offset` at the last check (the partial last line).
    pending_len: u64,
    pending_since: Instant,
    tail_complete_sent: bool,
}

impl Tracked {
    fn open(file: File, offset: u64) -> io::Result<Self> {
        let meta = file.metadata()?;
        let fingerprint = Fingerprint::from_file_in_background(&file, offset)?;
        Ok(Self {
            dev: meta.dev(),
            inode: meta.ino(),
            offset,
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            fingerprint,
            pending_len: 0,
            pending_since: Instant::now(),
            tail_complete_sent: false,
            file,
        })
    }

    /// Forgets everything delivered, so reading restarts at offset 0.
    fn restart(&mut self) {
        self.offset = 0;
        self.fingerprint = Fingerprint::new();
        self.pending_len = 0;
        self.pending_since = Instant::now();
        self.tail_complete_sent = false;
    }

    /// Returns whether size, mtime or ctime differ from the last check.
    fn stat_changed(&self, meta: &Metadata) -> bool {
        meta.len() != self.size
            || (meta.mtime(), meta.mtime_nsec()) != self.mtime
            || (meta.ctime(), meta.ctime_nsec()) != self.ctime
    }
}

pub(crate) struct Follower {
    config: FollowerConfig,
    events: Sender<TailEvent>,
    generation: u64,
    current: Option<Tracked>,
    /// False until the first check ran; a file present then is not `Created`.
    checked_once: bool,
    /// When the followed file's path was first seen missing, for the grace period.
    missing_since: Option<Instant>,
    deleted_sent: bool,
    last_error: Option<String>,
}

impl Follower {
    pub(crate) fn new(config: FollowerConfig, events: Sender<TailEvent>) -> Self {
        Self {
            config,
            events,
            generation: 0,
            current: None,
            checked_once: false,
            missing_since: None,
            deleted_sent: false,
            last_error: None,
        }
    }

    /// Runs until the handle sends [`Wake::Stop`] or the receiver is dropped.
    pub(crate) fn run(
        mut self,
        wake_rx: Receiver<Wake>,
        watcher_result: Option<Result<notify::RecommendedWatcher, String>>,
    ) {
        // The watcher must stay alive for the whole loop, so it is bound here.
        let (mode, interval, _watcher) = match watcher_result {
            Some(Ok(watcher)) => (
                WatchMode::Watcher,
                self.config.recheck_interval,
                Some(watcher),
            ),
            Some(Err(reason)) => {
                tracing::warn!(path = %self.config.path.display(), %reason, "file watcher unavailable; polling");
                (
                    WatchMode::Polling { reason },
                    self.config.poll_interval,
                    None,
                )
            }
            None => {
                let reason = String::from("polling was forced by the configuration");
                (
                    WatchMode::Polling { reason },
                    self.config.poll_interval,
                    None,
                )
            }
        };
        tracing::info!(path = %self.config.path.display(), ?mode, "following file");

        if self.emit(TailEventKind::Started { mode }).is_err() || self.check().is_err() {
            return;
        }
        loop {
            match wake_rx.recv_timeout(self.next_timeout(interval)) {
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Wake::Changed) | Err(RecvTimeoutError::Timeout) => {}
            }
            // Coalesce a burst of watcher events into one check.
            while let Ok(wake) = wake_rx.try_recv() {
                if wake == Wake::Stop {
                    return;
                }
            }
            if self.check().is_err() {
                break;
            }
        }
        tracing::info!(path = %self.config.path.display(), "stopped following file");
    }

    /// Returns how long to wait: the base interval, shortened when a
    /// `TailComplete` or `Deleted` falls due sooner.
    fn next_timeout(&self, interval: Duration) -> Duration {
        let now = Instant::now();
        let mut deadlines = Vec::new();
        if let Some(tracked) = &self.current {
            if tracked.pending_len > 0 && !tracked.tail_complete_sent {
                deadlines.push(tracked.pending_since + self.config.tail_complete_after);
            }
        }
        if let (Some(since), false) = (self.missing_since, self.deleted_sent) {
            deadlines.push(since + self.config.delete_grace);
        }
        deadlines
            .into_iter()
            .map(|deadline| deadline.saturating_duration_since(now))
            .fold(interval, Duration::min)
            .max(Duration::from_millis(1))
    }

    fn emit(&mut self, kind: TailEventKind) -> Sent {
        let path = self.config.path.display();
        match &kind {
            // Only the size of appended bytes is logged, because a chunk can be megabytes long.
            TailEventKind::Appended { offset, bytes } => {
                tracing::debug!(%path, generation = self.generation, offset, len = bytes.len(), "lines appended");
            }
            other => {
                tracing::debug!(%path, generation = self.generation, event = ?other, "file change")
            }
        }
        let event = TailEvent {
            detected_at: SystemTime::now(),
            generation: self.generation,
            kind,
        };
        self.events.blocking_send(event).map_err(|_| ReceiverGone)
    }

    /// Sends an `Error` unless the same message was the last one sent.
    fn report_error(&mut self, message: String) -> Sent {
        if self.last_error.as_deref() == Some(message.as_str()) {
            return Ok(());
        }
        tracing::warn!(path = %self.config.path.display(), %message, "cannot follow file");
        self.last_error = Some(message.clone());
        self.emit(TailEventKind::Error { message })
    }

    /// Compares the path with the tracked file and sends the events for every difference.
    fn check(&mut self) -> Sent {
        let first = !self.checked_once;
        self.checked_once = true;
        let path = self.config.path.clone();

        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return self.on_missing(first),
            Err(error) => {
                return self.report_error(format!(
                    "reading metadata of {} failed: {error}",
                    path.display()
                ))
            }
        };
        self.missing_since = None;
        if !meta.is_file() {
            // Opening a FIFO or device could block or have side effects, so only regular files are opened.
            return self.report_error(format!("{} is not a regular file", path.display()));
        }

        let same_file = self
            .current
            .as_ref()
            .is_some_and(|tracked| (tracked.dev, tracked.inode) == (meta.dev(), meta.ino()));
        if same_file {
            self.deleted_sent = false;
            return self.on_same_file(&meta);
        }
        self.open_new(first)
    }

    /// Handles a path that does not exist.
    fn on_missing(&mut self, first: bool) -> Sent {
        if self.current.is_none() {
            if first {
                self.deleted_sent = true;
                return self.emit(TailEventKind::Deleted);
            }
            return Ok(());
        }
        if self.deleted_sent {
            return Ok(());
        }
        // The old file is still open, so lines written to it before it went
        // away are delivered first.
        self.read_appended()?;
        let since = *self.missing_since.get_or_insert_with(Instant::now);
        if since.elapsed() < self.config.delete_grace {
            return Ok(());
        }
        self.deleted_sent = true;
        if let Some(tracked) = &mut self.current {
            tracked.pending_len = 0;
        }
        self.emit(TailEventKind::Deleted)
    }

    /// Opens the file now at the path: the first file, or one that replaced the tracked file.
    fn open_new(&mut self, first: bool) -> Sent {
        if !self.deleted_sent {
            self.read_appended()?;
        }
        let path = self.config.path.clone();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) => {
                return self.report_error(format!("opening {} failed: {error}", path.display()))
            }
        };

        let start_offset = if first { self.config.start_offset } else { 0 };
        let size = match file.metadata() {
            Ok(meta) => meta.len(),
            Err(error) => {
                return self.report_error(format!(
                    "reading metadata of {} failed: {error}",
                    path.display()
                ))
            }
        };
        let truncated_at_start = start_offset > size;
        let offset = if truncated_at_start { 0 } else { start_offset };
        let tracked = match Tracked::open(file, offset) {
            Ok(tracked) => tracked,
            Err(error) => {
                return self.report_error(format!("reading {} failed: {error}", path.display()))
            }
        };
        self.last_error = None;
        self.deleted_sent = false;

        let new_inode = tracked.inode;
        let previous = self.current.replace(tracked);
        if let Some(old) = previous {
            self.generation += 1;
            self.emit(TailEventKind::Replaced {
                old_inode: old.inode,
                new_inode,
            })?;
        } else if truncated_at_start {
            self.generation += 1;
            self.emit(TailEventKind::Truncated {
                old_size: start_offset,
                new_size: size,
            })?;
        } else if !first {
            self.emit(TailEventKind::Created { inode: new_inode })?;
        }
        self.read_appended()
    }

    /// Checks the tracked file for truncation and in-place changes, then reads what was appended.
    fn on_same_file(&mut self, meta: &Metadata) -> Sent {
        let Some(tracked) = self.current.as_mut() else {
            return Ok(());
        };
        let size = meta.len();

        if size < tracked.offset {
            return self.restart_truncated(size);
        }

        // The windows are cheap and checked every time. The block digests
        // re-read every delivered byte, so they are checked only when mtime
        // or ctime moved without the size changing (appends change the size).
        let stat_changed = tracked.stat_changed(meta);
        let mut changed_at = tracked.fingerprint.check_windows(&tracked.file);
        if matches!(changed_at, Ok(None)) && stat_changed && size == tracked.size {
            // A write moves the change times before the size, so an append
            // caught half done looks like an in-place change. Looking again a
            // moment later spares a re-read of the whole file for it.
            std::thread::sleep(APPEND_SETTLE);
            let grown = tracked.file.metadata().is_ok_and(|m| m.len() > size);
            if !grown {
                changed_at = tracked.fingerprint.check_blocks(&tracked.file);
            }
        }
        match changed_at {
            Ok(None) => {}
            Ok(Some(first_changed_offset_hint)) => {
                // A truncation after the stat above also reads as a mismatch
                // (a short read), so the size is checked again.
                if let Ok(now) = tracked.file.metadata() {
                    if now.len() < tracked.offset {
                        return self.restart_truncated(now.len());
                    }
                }
                tracked.restart();
                self.generation += 1;
                self.emit(TailEventKind::Modified {
                    first_changed_offset_hint,
                })?;
                return self.read_appended();
            }
            Err(error) => {
                let message = format!("reading {} failed: {error}", self.config.path.display());
                return self.report_error(message);
            }
        }

        if stat_changed {
            self.read_appended()
        } else {
            self.update_pending(size)
        }
    }

    /// Sends `Truncated` and delivers the file again from offset 0.
    fn restart_truncated(&mut self, new_size: u64) -> Sent {
        let Some(tracked) = self.current.as_mut() else {
            return Ok(());
        };
        let old_size = tracked.size;
        tracked.restart();
        self.generation += 1;
        self.emit(TailEventKind::Truncated { old_size, new_size })?;
        self.read_appended()
    }

    /// Delivers the complete lines after the read offset, then updates the pending tail.
    fn read_appended(&mut self) -> Sent {
        // The stat is taken before reading, so a change made while reading or
        // right after an event was sent still differs from it at the next check.
        let Some(before) = self.stat_current()? else {
            return Ok(());
        };
        let max_chunk = self.config.max_chunk;
        let unterminated = loop {
            let Some(tracked) = self.current.as_mut() else {
                return Ok(());
            };
            let offset = tracked.offset;
            let lines = match read_lines(&tracked.file, offset, max_chunk) {
                Ok(lines) => lines,
                Err(error) => {
                    let message = format!("reading {} failed: {error}", self.config.path.display());
                    return self.report_error(message);
                }
            };
            if lines.bytes.is_empty() {
                break lines.unterminated;
            }
            tracked.fingerprint.extend(&lines.bytes);
            tracked.offset = lines.next;
            self.emit(TailEventKind::Appended {
                offset,
                bytes: lines.bytes,
            })?;
        };

        let Some(tracked) = self.current.as_mut() else {
            return Ok(());
        };
        let end = tracked.offset + unterminated;
        // More bytes than the stat counted: an append raced the stat, and
        // its change times would look like an in-place change at the next
        // check, which re-reads the whole file. A stat that counts exactly
        // the bytes read is taken as the baseline instead (an in-place change
        // made together with an append is missed either way).
        let after = if end > before.len() {
            tracked.file.metadata().ok().filter(|m| m.len() == end)
        } else {
            None
        };
        let baseline = after.as_ref().unwrap_or(&before);
        tracked.size = baseline.len().max(tracked.offset);
        tracked.mtime = (baseline.mtime(), baseline.mtime_nsec());
        tracked.ctime = (baseline.ctime(), baseline.ctime_nsec());
        self.update_pending(end)
    }

    /// Returns the metadata of the open file (`fstat`), or `None` after reporting an error.
    fn stat_current(&mut self) -> Result<Option<Metadata>, ReceiverGone> {
        let Some(tracked) = self.current.as_ref() else {
            return Ok(None);
        };
        match tracked.file.metadata() {
            Ok(meta) => Ok(Some(meta)),
            Err(error) => {
                let message = format!(
                    "reading metadata of {} failed: {error}",
                    self.config.path.display()
                );
                self.report_error(message)?;
                Ok(None)
            }
        }
    }

    /// Sends `PendingTail` when the partial line's length changed, and
    /// `TailComplete` once it has kept its length for `tail_complete_after`.
    fn update_pending(&mut self, size: u64) -> Sent {
        if self.deleted_sent {
            return Ok(());
        }
        let tail_complete_after = self.config.tail_complete_after;
        let Some(tracked) = self.current.as_mut() else {
            return Ok(());
        };
        let len = size.saturating_sub(tracked.offset);
        if len != tracked.pending_len {
            tracked.pending_len = len;
            tracked.pending_since = Instant::now();
            tracked.tail_complete_sent = false;
            return self.emit(TailEventKind::PendingTail { len });
        }
        let pending_for = tracked.pending_since.elapsed();
        if len > 0 && !tracked.tail_complete_sent && pending_for >= tail_complete_after {
            tracked.tail_complete_sent = true;
            return self.emit(TailEventKind::TailComplete { len, pending_for });
        }
        Ok(())
    }
}

/// Starts the watcher unless polling is forced; `None` means forced polling.
pub(crate) fn try_watcher(
    config: &FollowerConfig,
    wake: std::sync::mpsc::Sender<Wake>,
) -> Option<Result<notify::RecommendedWatcher, String>> {
    (!config.force_polling).then(|| start_watcher(&config.path, wake))
}
