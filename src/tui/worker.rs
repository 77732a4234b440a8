//! The background task that owns the chain file, its follower and the
//! verification engine. The view receives compact [`Update`]s and never
//! waits on disk or verification.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc::UnboundedSender;

use crate::chain::entry::SealMode;
use crate::chain::finding::FindingKind;
use crate::chain::json::{Scan, Scanner};
use crate::chain::line::{LineAnalyzer, LineClass};
use crate::chain::reader::split_lines;
use crate::chain::report::Report;
use crate::chain::verify::{Engine, VerifyKeys};
use crate::tail::{spawn_follower, FollowerConfig, FollowerHandle, TailEvent, TailEventKind};
use crate::verify_file::{verify_file, FileSource};

use super::rows::{decode_row, Row};

/// What the background task sends to the view.
#[derive(Debug, Clone)]
pub enum Update {
    /// Verification from scratch started; everything shown before is stale.
    Reverifying { generation: u64 },
    /// Bytes verified so far out of the file size when verification began.
    Progress {
        generation: u64,
        done: u64,
        total: u64,
    },
    /// Entries and findings as they stand. `offsets` contains the record
    /// offsets of entries from index `base` on.
    Verified {
        generation: u64,
        base: u64,
        offsets: Vec<u64>,
        report: Arc<Report>,
        seal_modes: String,
        /// The last line has no newline yet (a write in progress).
        partial_tail: bool,
    },
    /// A change of the file, in words, with the time it was seen. `change` is
    /// set for changes that can remove entries already shown.
    FileEvent {
        at: SystemTime,
        text: String,
        change: Option<FileChange>,
    },
    /// Bytes after the last newline: a line being written.
    PendingTail { len: u64 },
    /// The last lines of the file, decoded but not verified, sent before
    /// verification ends so that the view has rows to show at once. At most
    /// [`PROVISIONAL_LINES`]; the next `Verified` of the generation replaces them.
    Provisional { generation: u64, rows: Vec<Row> },
    /// Verification could not run at all.
    Failed { message: String },
}

/// Lines read from the end of the file and shown before verification ends.
pub const PROVISIONAL_LINES: usize = 200;

/// Bytes read back from the end at most for the provisional rows, so that a few
/// huge lines cannot make the first read large.
const PROVISIONAL_BYTES: u64 = 4 * 1024 * 1024;

/// Block size of the backward read.
const TAIL_BLOCK: u64 = 64 * 1024;

/// A change of the file that can remove or alter entries already read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    Truncated { old_size: u64, new_size: u64 },
    Replaced,
    Modified { offset: u64 },
    Deleted,
    Created,
}

impl FileChange {
    fn from_kind(kind: &TailEventKind) -> Option<FileChange> {
        Some(match kind {
            TailEventKind::Truncated { old_size, new_size } => FileChange::Truncated {
                old_size: *old_size,
                new_size: *new_size,
            },
            TailEventKind::Replaced { .. } => FileChange::Replaced,
            TailEventKind::Modified {
                first_changed_offset_hint,
            } => FileChange::Modified {
                offset: *first_changed_offset_hint,
            },
            TailEventKind::Deleted => FileChange::Deleted,
            TailEventKind::Created { .. } => FileChange::Created,
            _ => return None,
        })
    }
}

/// Starts the task on the current runtime.
pub fn spawn(
    path: PathBuf,
    keys: VerifyKeys,
    updates: UnboundedSender<Update>,
) -> tokio::task::JoinHandle<()> {
    spawn_after(path, keys, updates, 0)
}

/// Starts the task like [`spawn`], numbering its generations after `generation`, so that
/// updates still queued from a replaced task are told apart by their older generation.
pub fn spawn_after(
    path: PathBuf,
    keys: VerifyKeys,
    updates: UnboundedSender<Update>,
    generation: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut worker = Worker {
            path,
            keys,
            updates,
            generation,
            engine: None,
            modes: Vec::new(),
            consumed: 0,
            partial_tail: false,
        };
        worker.run().await;
    })
}

struct Worker {
    path: PathBuf,
    keys: VerifyKeys,
    updates: UnboundedSender<Update>,
    generation: u64,
    engine: Option<Engine>,
    modes: Vec<String>,
    /// Bytes of complete lines fed to the engine.
    consumed: u64,
    /// The engine was fed a last line without newline, so appending needs a fresh pass.
    partial_tail: bool,
}

fn describe(kind: &TailEventKind) -> Option<String> {
    Some(match kind {
        TailEventKind::Started { mode } => match mode {
            crate::tail::WatchMode::Watcher => "following the file".to_owned(),
            crate::tail::WatchMode::Polling { reason } => {
                format!("following the file by polling ({reason})")
            }
        },
        TailEventKind::Appended { .. } | TailEventKind::PendingTail { .. } => return None,
        TailEventKind::TailComplete { len, pending_for } => format!(
            "last line ({len} B) without newline for {}s",
            pending_for.as_secs()
        ),
        TailEventKind::Truncated { old_size, new_size } => {
            format!("file truncated {old_size}→{new_size} B")
        }
        TailEventKind::Replaced { .. } => "file replaced".to_owned(),
        TailEventKind::Created { .. } => "file created".to_owned(),
        TailEventKind::Modified {
            first_changed_offset_hint,
        } => {
            format!("file changed in place near offset {first_changed_offset_hint}")
        }
        TailEventKind::Deleted => "file deleted".to_owned(),
        TailEventKind::Error { message } => format!("reading the file failed: {message}"),
    })
}

/// Reads the last complete lines of the file, at most `max` of them and at most
/// [`PROVISIONAL_BYTES`] read back from the end: (line offset, line without its
/// newline). Bytes after the last newline (a line being written) are left out, and
/// so are blank lines. Reads nothing but the end, whatever the file size.
pub fn last_lines(path: &Path, max: usize) -> Vec<(u64, Vec<u8>)> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(size) = file.metadata().map(|m| m.len()) else {
        return Vec::new();
    };
    // Blocks read backwards, the last block of the file first.
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut start = size;
    let mut newlines = 0usize;
    // One newline more than lines wanted marks the start of the first line.
    while start > 0 && newlines <= max && size - start < PROVISIONAL_BYTES {
        let from = start.saturating_sub(TAIL_BLOCK);
        // At most TAIL_BLOCK bytes, so the length fits in usize.
        let mut block = vec![0u8; (start - from) as usize];
        if file.read_exact_at(&mut block, from).is_err() {
            // The file shrank while being read; verification will tell.
            return Vec::new();
        }
        newlines += memchr::memchr_iter(b'\n', &block).count();
        blocks.push(block);
        start = from;
    }
    let mut data = Vec::with_capacity(blocks.iter().map(Vec::len).sum());
    for block in blocks.iter().rev() {
        data.extend_from_slice(block);
    }
    drop(blocks);
    let Some(end) = memchr::memrchr(b'\n', &data) else {
        return Vec::new();
    };
    // Unless the read reached the start of the file, the first bytes are the end of
    // a line that began earlier.
    let mut pos = if start == 0 {
        0
    } else {
        match memchr::memchr(b'\n', &data[..end]) {
            Some(nl) => nl + 1,
            None => return Vec::new(),
        }
    };
    let mut lines = std::collections::VecDeque::with_capacity(max.min(1024));
    while pos <= end {
        let nl = memchr::memchr(b'\n', &data[pos..=end]).map_or(end, |n| pos + n);
        let line = &data[pos..nl];
        if !line.iter().all(u8::is_ascii_whitespace) {
            if lines.len() == max {
                lines.pop_front();
            }
            lines.push_back((start + pos as u64, line.to_vec()));
        }
        pos = nl + 1;
    }
    lines.into()
}

/// The last lines of the file decoded as rows, not verified. Their index is 0:
/// it is not known before verification ends.
pub fn provisional_rows(path: &Path, max: usize) -> Vec<Row> {
    let mut scanner = Scanner::new();
    let mut scan = Scan::default();
    last_lines(path, max)
        .into_iter()
        .map(|(offset, line)| decode_row(0, offset, &line, &mut scanner, &mut scan))
        .collect()
}

/// Returns the end of the last complete line at or before `end`.
fn complete_end(path: &Path, end: u64) -> u64 {
    let Ok(file) = File::open(path) else { return 0 };
    let mut at = end;
    let mut block = [0u8; 4096];
    while at > 0 {
        let start = at.saturating_sub(block.len() as u64);
        // The block length is at most 4096, so it fits in usize.
        let len = (at - start) as usize;
        if file.read_at(&mut block[..len], start).is_err() {
            return 0;
        }
        if let Some(nl) = memchr::memrchr(b'\n', &block[..len]) {
            return start + nl as u64 + 1;
        }
        at = start;
    }
    0
}

impl Worker {
    fn send(&self, update: Update) {
        // The view has quit when the channel is closed; the task ends with it.
        let _ = self.updates.send(update);
    }

    async fn run(&mut self) {
        loop {
            if !self.verify_from_scratch().await {
                return;
            }
            let mut config = FollowerConfig::new(self.path.clone());
            config.start_offset = self.consumed;
            let (mut events, handle) = spawn_follower(config);
            if !self.follow(&mut events, handle).await {
                return;
            }
        }
    }

    /// Runs the parallel verification over the whole file, again while the
    /// file was changed in place during it; false when the view is gone.
    async fn verify_from_scratch(&mut self) -> bool {
        loop {
            let before = FileStamp::of(&self.path);
            if !self.verify_once().await {
                return false;
            }
            if self.engine.is_none() {
                return true;
            }
            let after = FileStamp::of(&self.path);
            match (before, after) {
                (Some(before), Some(after)) if before.changed_in_place(&after) => {
                    let text = "changed in place while it was being verified; verifying again";
                    tracing::info!(path = %self.path.display(), event = text, "file event");
                    self.send(Update::FileEvent {
                        at: SystemTime::now(),
                        text: text.to_owned(),
                        change: Some(FileChange::Modified { offset: 0 }),
                    });
                }
                _ => return true,
            }
        }
    }

    /// Runs the parallel verification over the whole file once; false when the view is gone.
    async fn verify_once(&mut self) -> bool {
        self.generation += 1;
        let generation = self.generation;
        self.send(Update::Reverifying { generation });
        let path = self.path.clone();
        let keys = self.keys.clone();
        let updates = self.updates.clone();
        let total = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let started = std::time::Instant::now();
        let job = tokio::task::spawn_blocking(move || {
            let rows = provisional_rows(&path, PROVISIONAL_LINES);
            if !rows.is_empty() {
                let _ = updates.send(Update::Provisional { generation, rows });
            }
            let mut done_bytes = 0u64;
            let result = verify_file(&path, keys, &mut |done| {
                done_bytes = done;
                let _ = updates.send(Update::Progress {
                    generation,
                    done,
                    total,
                });
            });
            result.map(|engine| (engine, done_bytes))
        });
        match job.await {
            Ok(Ok((engine, done))) => {
                let verified_in = started.elapsed();
                let end = complete_end(&self.path, done);
                self.partial_tail = end < done;
                self.consumed = end;
                self.modes = initial_modes(&self.path, &engine);
                self.engine = Some(engine);
                self.publish(0);
                tracing::info!(
                    path = %self.path.display(),
                    bytes = done,
                    verify_ms = verified_in.as_millis(),
                    published_ms = started.elapsed().as_millis(),
                    "verified the whole file"
                );
                !self.updates.is_closed()
            }
            Ok(Err(e)) => {
                tracing::warn!(path = %self.path.display(), error = %e, "verification failed");
                self.engine = None;
                self.consumed = 0;
                self.partial_tail = false;
                self.send(Update::Failed {
                    message: e.to_string(),
                });
                !self.updates.is_closed()
            }
            Err(e) => {
                tracing::error!(error = %e, "verification task stopped");
                self.send(Update::Failed {
                    message: format!("verification stopped: {e}"),
                });
                false
            }
        }
    }

    fn publish(&self, base: u64) {
        let Some(engine) = &self.engine else { return };
        let offsets = (base..engine.entries())
            .filter_map(|i| engine.entry_offset(i))
            .collect();
        let report = engine.report(&self.path.display().to_string());
        self.send(Update::Verified {
            generation: self.generation,
            base,
            offsets,
            seal_modes: seal_modes(&self.modes, &report),
            report: Arc::new(report),
            partial_tail: self.partial_tail,
        });
    }

    /// Follows the file until the bytes already verified change; false when the view is gone.
    async fn follow(
        &mut self,
        events: &mut tokio::sync::mpsc::Receiver<TailEvent>,
        handle: FollowerHandle,
    ) -> bool {
        let _handle = handle;
        let mut analyzer = LineAnalyzer::new();
        while let Some(event) = events.recv().await {
            if self.updates.is_closed() {
                return false;
            }
            if let Some(text) = describe(&event.kind) {
                tracing::info!(path = %self.path.display(), event = %text, "file event");
                // A follower start is not a change of the file; it would hide the
                // change that made the view verify again.
                if !matches!(event.kind, TailEventKind::Started { .. }) {
                    self.send(Update::FileEvent {
                        at: event.detected_at,
                        text,
                        change: FileChange::from_kind(&event.kind),
                    });
                }
            }
            match event.kind {
                TailEventKind::Appended { offset, bytes } => {
                    if self.partial_tail || offset != self.consumed || self.engine.is_none() {
                        return true;
                    }
                    self.append(&mut analyzer, offset, &bytes);
                }
                TailEventKind::PendingTail { len } => self.send(Update::PendingTail { len }),
                TailEventKind::Truncated { .. }
                | TailEventKind::Replaced { .. }
                | TailEventKind::Modified { .. }
                | TailEventKind::Created { .. } => return true,
                _ => {}
            }
        }
        // The follower stopped; verify again and start a new one.
        !self.updates.is_closed()
    }

    fn append(&mut self, analyzer: &mut LineAnalyzer, offset: u64, bytes: &[u8]) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let base = engine.entries();
        let source = FileSource::open(&self.path).ok();
        let (lines, _) = split_lines(bytes, offset, 0, false);
        for line in &lines {
            let facts = analyzer.analyze(line.bytes, engine.keys());
            if let LineClass::Entry { facts: entry, .. } = &facts.class {
                let mode = entry
                    .seal_mode
                    .map_or_else(|| "unknown".to_owned(), |m| m.as_str().to_owned());
                if !self.modes.contains(&mode) {
                    self.modes.push(mode);
                }
            }
            match &source {
                Some(s) => engine.push_line(facts, line.offset, line.has_newline, s),
                None => engine.push_line(
                    facts,
                    line.offset,
                    line.has_newline,
                    &crate::chain::verify::NoSource,
                ),
            }
        }
        self.consumed = offset + bytes.len() as u64;
        self.publish(base);
    }
}

/// Identity, size and change times of the file, taken around a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    inode: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: meta.dev(),
            inode: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// True when the bytes verified may differ from the file now: another
    /// file at the path, a shorter file, or the same size with a new change
    /// time. A file that only grew was appended to, which the follower reads.
    // NOTE: an in-place change made together with an append during the
    // verification is not distinguished from the append, as with the follower.
    fn changed_in_place(&self, now: &FileStamp) -> bool {
        (self.dev, self.inode) != (now.dev, now.inode)
            || now.size < self.size
            || (now.size == self.size && (self.mtime, self.ctime) != (now.mtime, now.ctime))
    }
}

/// Seal modes of the first and last entries, read back from the file.
fn initial_modes(path: &Path, engine: &Engine) -> Vec<String> {
    let mut modes = Vec::new();
    let n = engine.entries();
    let wanted: Vec<(u64, u64)> = [0, n.saturating_sub(1)]
        .iter()
        .filter(|&&i| i < n)
        .filter_map(|&i| engine.entry_offset(i).map(|o| (i, o)))
        .collect();
    for row in super::rows::read_rows(path, &wanted) {
        if !modes.contains(&row.seal_mode) {
            modes.push(row.seal_mode);
        }
    }
    modes
}

/// The seal modes of the chain in words, e.g. `software` or `software, tpm (changes)`.
fn seal_modes(modes: &[String], report: &Report) -> String {
    let changed = report
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::SealModeChanged);
    let mut list: Vec<String> = modes
        .iter()
        .map(|m| match SealMode::parse(m) {
            Some(mode) => mode.as_str().to_owned(),
            None => "unknown".to_owned(),
        })
        .collect();
    list.dedup();
    if list.is_empty() {
        return "none".to_owned();
    }
    let mut text = list.join(", ");
    if changed {
        text.push_str(" (changes along the chain)");
    }
    text
}
