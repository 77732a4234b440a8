//! Changes of the file seen while watching it, and the alarm raised when
//! entries that had been shown are gone afterwards.

use std::sync::Arc;
use std::time::SystemTime;

use super::App;
use crate::tui::worker::FileChange;

/// One change of the file seen while watching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub at: SystemTime,
    pub change: FileChange,
    /// The change in words, as the follower described it.
    pub text: String,
    /// Entries read before the change.
    pub entries_before: u64,
    /// Entries read before the change that are gone after it; `None` until the
    /// file was verified again.
    pub lost: Option<u64>,
}

impl WatchEvent {
    /// The event in a few words, with the entries lost once they are known.
    pub fn summary(&self) -> String {
        match self.lost {
            Some(0) => format!("{}, no entry lost", self.text),
            Some(1) => format!("{}, 1 entry lost", self.text),
            Some(n) => format!("{}, {n} entries lost", self.text),
            None => self.text.clone(),
        }
    }
}

/// Entries that had been shown and were removed while watching, until the
/// user acknowledges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovedAlarm {
    pub entries: u64,
    /// Time of the latest change that removed entries.
    pub at: SystemTime,
}

/// A change waiting for the verification after it, with the entry offsets
/// read before it.
#[derive(Debug, Clone)]
pub(super) struct PendingChange {
    event: usize,
    old_offsets: Arc<Vec<u64>>,
    old_head_hash: Option<String>,
}

impl App {
    pub(super) fn on_file_change(&mut self, at: SystemTime, text: String, change: FileChange) {
        let entries_before = self.offsets.len() as u64;
        let mut event = WatchEvent {
            at,
            change,
            text,
            entries_before,
            lost: None,
        };
        match change {
            FileChange::Deleted => {
                event.lost = Some(entries_before);
                self.file_deleted = true;
                self.pending_change = None;
                self.raise_removed(entries_before, at);
            }
            FileChange::Created => {
                // A new file: nothing in it had been shown, so nothing is compared.
                event.lost = Some(0);
                event.entries_before = 0;
                self.file_deleted = false;
                self.pending_change = None;
            }
            FileChange::Truncated { .. } | FileChange::Replaced | FileChange::Modified { .. } => {
                // A file is at the path again (a rotation after the delete
                // grace period reads as deleted, then replaced).
                self.file_deleted = false;
                // Several changes before one verification are compared with the
                // entries read before the first of them.
                if self.pending_change.is_none() {
                    self.pending_change = Some(PendingChange {
                        event: self.watch_events.len(),
                        old_offsets: Arc::clone(&self.offsets),
                        old_head_hash: self
                            .report
                            .as_ref()
                            .and_then(|r| r.head.as_ref())
                            .map(|h| h.hash.clone()),
                    });
                } else {
                    event.lost = Some(0);
                }
            }
        }
        self.watch_events.push(event);
    }

    /// Compares the entries verified after a change with those read before it.
    pub(super) fn settle_change(&mut self) {
        let Some(pending) = self.pending_change.take() else {
            return;
        };
        let old = &pending.old_offsets;
        // Entries still at an offset where one was read before; both lists
        // are in file order. An entry that became unreadable in the middle
        // counts once, not with every entry after it.
        let new = &self.offsets;
        let mut at = 0;
        let mut still_present = 0;
        for &offset in old.iter() {
            while new.get(at).is_some_and(|&o| o < offset) {
                at += 1;
            }
            if new.get(at) == Some(&offset) {
                still_present += 1;
            }
        }
        // Equal offsets with another head hash mean the entries were rewritten
        // with the same lengths, so the old head is not among them.
        let new_head = self.report.as_ref().and_then(|r| r.head.as_ref());
        if let (Some(old_hash), Some(head)) = (&pending.old_head_hash, new_head) {
            if head.index + 1 == old.len() as u64 && !head.hash.eq_ignore_ascii_case(old_hash) {
                still_present = still_present.min(old.len().saturating_sub(1));
            }
        }
        // NOTE: an entry rewritten with the same length before the old head is
        // found by the hash and link checks, not counted here.
        let lost = (old.len() - still_present.min(old.len())) as u64;
        let Some(event) = self.watch_events.get_mut(pending.event) else {
            return;
        };
        event.lost = Some(lost);
        let at = event.at;
        if lost > 0 {
            self.raise_removed(lost, at);
        }
    }

    fn raise_removed(&mut self, entries: u64, at: SystemTime) {
        if entries == 0 {
            return;
        }
        let total = self.removed.map_or(0, |r| r.entries) + entries;
        self.removed = Some(RemovedAlarm { entries: total, at });
    }

    /// Clears the alarm about removed entries; the events stay listed.
    pub(super) fn acknowledge_removed(&mut self) {
        self.notice = Some(match self.removed.take() {
            Some(_) => "removed entries acknowledged; f still lists the events".to_owned(),
            None => "no removed entries to acknowledge".to_owned(),
        });
    }
}
