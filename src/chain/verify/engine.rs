//! The engine's state, linking, duplicates and crash residue. Derived-value
//! replay, signature findings, and forks with the report are in the submodules.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::chain::crypto::{Hash32, ZERO32};
use crate::chain::entry::SealMode;
use crate::chain::finding::{Finding, FindingKind, Severity};
use crate::chain::line::{
    self, rewrite, EntryFacts, HashMatch, LineAnalyzer, LineClass, LineFacts, Previous,
    ResidueKind, StoredIndex,
};

use super::keys::VerifyKeys;

mod derived;
mod forks;
mod names;
mod signatures;

use names::NameIndex;

/// Re-reads an earlier record when the engine needs more of it than it keeps.
pub trait LineSource {
    /// Returns the record starting at `offset`, up to (not including) its `\n`.
    fn record_at(&self, offset: u64) -> Option<Vec<u8>>;
}

/// A source over bytes in memory.
pub struct MemorySource<'a>(pub &'a [u8]);

impl LineSource for MemorySource<'_> {
    fn record_at(&self, offset: u64) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let rest = self.0.get(start..)?;
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        Some(rest[..end].to_vec())
    }
}

/// A source that has nothing: lookups beyond the previous entry fall back to
/// what the engine keeps in memory.
pub struct NoSource;

impl LineSource for NoSource {
    fn record_at(&self, _offset: u64) -> Option<Vec<u8>> {
        None
    }
}

const HAS_CHILD: u8 = 1 << 0;
const HAS_ERROR: u8 = 1 << 1;
const DUPLICATE: u8 = 1 << 2;
const PCR_DIFFERS: u8 = 1 << 3;
const IDX_DIFFERS: u8 = 1 << 4;
const ROOT: u8 = 1 << 5;

/// The state the engine keeps of an entry it links to or replays from.
#[derive(Debug, Clone)]
struct EntryState {
    index: u32,
    name: Hash32,
    stored_pcr: Option<Hash32>,
    expected_pcr: Hash32,
    stored_idx: Option<i64>,
    expected_idx: i64,
    mode: Option<SealMode>,
}

/// The last entry, kept as bytes: its texts are formatted only for a report.
#[derive(Debug, Clone)]
struct HeadState {
    index: u64,
    name: Hash32,
    pcr: Option<Hash32>,
    /// Set only when the stored hash is not 64 lower-case hex digits.
    hash_text: String,
    /// Set only when `pcr_value` is not 64 lower-case hex digits.
    pcr_text: String,
}

/// A line of residue waiting for the next line to decide what it is.
#[derive(Debug, Clone)]
struct PendingResidue {
    kind: ResidueKind,
    line: u64,
    offset: u64,
    /// The entry before the residue, by name.
    before: Option<Hash32>,
}

#[derive(Debug, Clone)]
struct Fork {
    finding: usize,
    children: Vec<u32>,
}

/// The verification state of one chain file.
pub struct Engine {
    keys: VerifyKeys,
    analyzer: LineAnalyzer,
    /// Keyed hash of each entry's name (see `name_hash`).
    name_hashes: Vec<u64>,
    /// Random keys of the name hash, new for each engine.
    name_hasher: RandomState,
    offsets: Vec<u64>,
    flags: Vec<u8>,
    names: NameIndex,
    /// Parents that are not the entry before in the file (index to parent).
    parents: HashMap<u32, u32>,
    expected_pcrs: HashMap<u32, Hash32>,
    expected_idxs: HashMap<u32, i64>,
    findings: Vec<Finding>,
    /// Findings about unresolved `previous_hash` names, by that name.
    unresolved: HashMap<Hash32, Vec<usize>>,
    forks: BTreeMap<u32, Fork>,
    segment_starts: Vec<u32>,
    prev: Option<EntryState>,
    pending: Option<PendingResidue>,
    lines: u64,
    head: Option<HeadState>,
    chain_key: Option<usize>,
    dev_key_reported: bool,
    unpinned_reported: bool,
    /// True once `finish` has run.
    finished: bool,
    /// Lines so far that are malformed or residue: a missing parent may be one of them.
    unreadable_lines: u64,
}

impl Engine {
    pub fn new(keys: VerifyKeys) -> Self {
        Engine {
            keys,
            analyzer: LineAnalyzer::new(),
            name_hashes: Vec::new(),
            name_hasher: RandomState::new(),
            offsets: Vec::new(),
            flags: Vec::new(),
            names: NameIndex::default(),
            parents: HashMap::new(),
            expected_pcrs: HashMap::new(),
            expected_idxs: HashMap::new(),
            findings: Vec::new(),
            unresolved: HashMap::new(),
            forks: BTreeMap::new(),
            segment_starts: Vec::new(),
            prev: None,
            pending: None,
            lines: 0,
            head: None,
            chain_key: None,
            dev_key_reported: false,
            unpinned_reported: false,
            finished: false,
            unreadable_lines: 0,
        }
    }

    /// Asks the CPU to start loading the part of the name index that pushing
    /// `line` will read first. Verifying a large file calls this a few lines
    /// ahead, which hides most of the cache misses of the look-ups.
    pub fn prefetch(&self, line: &LineFacts) {
        if let LineClass::Entry { facts, .. } = &line.class {
            self.names.prefetch(self.name_hash(&facts.name));
        }
    }

    /// Reserves room for about `entries` more entries, so that a large file
    /// does not rehash the name table as it grows.
    pub fn reserve(&mut self, entries: usize) {
        self.name_hashes.reserve(entries);
        self.offsets.reserve(entries);
        self.flags.reserve(entries);
        let hashes = &self.name_hashes;
        self.names.reserve(entries, |i| hashes[i as usize]);
    }

    pub fn keys(&self) -> &VerifyKeys {
        &self.keys
    }

    /// Number of entries so far.
    pub fn entries(&self) -> u64 {
        self.name_hashes.len() as u64
    }

    /// Number of lines so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Byte offset of each entry's record, by index.
    pub fn entry_offset(&self, index: u64) -> Option<u64> {
        self.offsets.get(usize::try_from(index).ok()?).copied()
    }

    /// Analyses and pushes one line (given without its `\n`).
    pub fn push_raw(
        &mut self,
        bytes: &[u8],
        offset: u64,
        has_newline: bool,
        source: &dyn LineSource,
    ) {
        let facts = self.analyzer.analyze(bytes, &self.keys);
        self.push_line(facts, offset, has_newline, source);
    }

    /// Pushes one analysed line. `offset` is where the line starts in the
    /// file; `has_newline` is false only for a last line without `\n`.
    pub fn push_line(
        &mut self,
        facts: LineFacts,
        offset: u64,
        has_newline: bool,
        source: &dyn LineSource,
    ) {
        self.lines += 1;
        let line_no = self.lines;
        let LineFacts { class, rewrites } = facts;

        // A residue line is decided by the line after it.
        let pending = self.pending.take();

        match class {
            LineClass::Blank => {
                self.resolve_pending_as_malformed(pending);
                let message = if has_newline {
                    format!(
                        "line rewritten after sealing: {}",
                        rewrite::describe(rewrites)
                    )
                } else {
                    format!("line rewritten after sealing: {}; it is also the last line, without a newline", rewrite::describe(rewrites))
                };
                self.push_finding(
                    Finding::new(FindingKind::Rewritten, message).at(None, line_no, offset),
                );
            }
            LineClass::Malformed(reason) => {
                self.unreadable_lines += 1;
                self.resolve_pending_as_malformed(pending);
                self.push_finding(
                    Finding::new(
                        FindingKind::MalformedLine,
                        format!("not a sealed entry: {}", line::printable(&reason)),
                    )
                    .at(None, line_no, offset),
                );
                if !has_newline {
                    self.torn_tail(None, line_no, offset, "the last line has no newline");
                }
            }
            LineClass::Residue(kind) => {
                self.unreadable_lines += 1;
                self.resolve_pending_as_malformed(pending);
                if has_newline {
                    self.pending = Some(PendingResidue {
                        kind,
                        line: line_no,
                        offset,
                        before: self.prev.as_ref().map(|p| p.name),
                    });
                } else {
                    self.torn_tail(
                        None,
                        line_no,
                        offset,
                        &format!("the last line is {} with no newline: a write in progress or a crash mid-write", kind.describe()),
                    );
                }
            }
            LineClass::Entry { residue, facts } => {
                let record_offset = offset + facts.record_start as u64;
                // Residue on the line before, or on this line before the record.
                if let Some(p) = pending {
                    let links = self.links_to(p.before, &facts.previous);
                    self.residue_finding(p.kind, p.line, p.offset, links);
                }
                if let Some(kind) = residue {
                    let before = self.prev.as_ref().map(|p| p.name);
                    let links = self.links_to(before, &facts.previous);
                    self.residue_finding(kind, line_no, offset, links);
                }
                // Findings sit at the line's start, or at the record's when
                // residue precedes it on the same line.
                let finding_offset = if residue.is_some() {
                    record_offset
                } else {
                    offset
                };
                self.push_entry(
                    facts,
                    rewrites,
                    line_no,
                    (record_offset, finding_offset),
                    source,
                );
                if !has_newline {
                    let index = self.name_hashes.len() as u64 - 1;
                    self.torn_tail(
                        Some(index),
                        line_no,
                        finding_offset,
                        "the last line is a complete record without a newline: a write in progress or a crash mid-write",
                    );
                }
            }
        }
    }

    /// Closes the file: residue still waiting for a record is malformed.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let pending = self.pending.take();
        self.resolve_pending_as_malformed(pending);
    }

    fn links_to(&self, before: Option<Hash32>, previous: &Previous) -> bool {
        match (before, previous) {
            (None, Previous::Genesis) => true,
            (Some(name), Previous::Name(p)) => name == *p,
            _ => false,
        }
    }

    fn residue_finding(&mut self, kind: ResidueKind, line_no: u64, offset: u64, links: bool) {
        let finding = if links {
            Finding::new(
                FindingKind::CrashResidue,
                format!(
                    "{} left by a crash; the record after it links to the entry before, so no entry is lost",
                    kind.describe()
                ),
            )
        } else {
            Finding::new(
                FindingKind::MalformedLine,
                format!(
                    "{} that is not crash residue: the record after it does not link to the entry before it",
                    kind.describe()
                ),
            )
        };
        self.push_finding(finding.at(None, line_no, offset));
    }

    fn resolve_pending_as_malformed(&mut self, pending: Option<PendingResidue>) {
        if let Some(p) = pending {
            let finding = Finding::new(
                FindingKind::MalformedLine,
                format!(
                    "{} with no complete record after it that keeps the chain linked",
                    p.kind.describe()
                ),
            )
            .at(None, p.line, p.offset);
            self.push_finding(finding);
        }
    }

    fn torn_tail(&mut self, index: Option<u64>, line_no: u64, offset: u64, message: &str) {
        self.push_finding(
            Finding::new(FindingKind::TornTail, message.to_owned()).at(index, line_no, offset),
        );
    }

    fn push_finding(&mut self, finding: Finding) -> usize {
        if finding.severity == Severity::Error && finding.kind != FindingKind::Fork {
            if let Some(i) = finding.index.and_then(|i| usize::try_from(i).ok()) {
                if let Some(f) = self.flags.get_mut(i) {
                    *f |= HAS_ERROR;
                }
            }
        }
        self.findings.push(finding);
        self.findings.len() - 1
    }

    /// Hashes a name with keys chosen at random for this engine. Stored names
    /// come from the file's writer, so a hash of their bytes alone
    /// (their first eight bytes, say) lets a file make every name collide and
    /// each look-up walk all earlier entries.
    fn name_hash(&self, name: &Hash32) -> u64 {
        self.name_hasher.hash_one(name)
    }

    /// Finds an earlier entry by name (whose `name_hash` is `p`), confirming
    /// hash matches by the full name.
    fn lookup(&self, name: &Hash32, p: u64, source: &dyn LineSource) -> Option<u32> {
        let prev_match = self
            .prev
            .as_ref()
            .filter(|s| s.name == *name)
            .map(|s| s.index);
        let mut found = None;
        for i in self.names.candidates(p) {
            if self.name_hashes[i as usize] != p {
                continue;
            }
            if prev_match == Some(i) {
                return Some(i);
            }
            match self.reload(i, source) {
                Some(state) if state.name == *name => {
                    found = Some(i);
                    break;
                }
                Some(_) => {}
                // Without a source, equal keyed 64-bit hashes are taken as a match.
                None => {
                    found = Some(i);
                    break;
                }
            }
        }
        found
    }

    /// Re-reads an earlier entry's state.
    fn reload(&self, index: u32, source: &dyn LineSource) -> Option<EntryState> {
        if let Some(prev) = self.prev.as_ref().filter(|p| p.index == index) {
            return Some(prev.clone());
        }
        let offset = *self.offsets.get(index as usize)?;
        let bytes = source.record_at(offset)?;
        let mut analyzer = LineAnalyzer::new();
        let facts = analyzer.analyze(&bytes, &self.keys);
        let LineClass::Entry { facts, .. } = facts.class else {
            return None;
        };
        let flags = self.flags[index as usize];
        let stored_idx = match facts.chain_idx {
            StoredIndex::Value(v) => Some(v),
            StoredIndex::Invalid => None,
        };
        let expected_pcr = if flags & PCR_DIFFERS != 0 {
            self.expected_pcrs.get(&index).copied().unwrap_or(ZERO32)
        } else {
            facts.pcr.unwrap_or(ZERO32)
        };
        let expected_idx = if flags & IDX_DIFFERS != 0 {
            self.expected_idxs.get(&index).copied().unwrap_or(0)
        } else {
            stored_idx.unwrap_or(0)
        };
        Some(EntryState {
            index,
            name: facts.name,
            stored_pcr: facts.pcr,
            expected_pcr,
            stored_idx,
            expected_idx,
            mode: facts.seal_mode,
        })
    }

    fn push_entry(
        &mut self,
        mut facts: EntryFacts,
        line_rewrites: u32,
        line_no: u64,
        (record_offset, offset): (u64, u64),
        source: &dyn LineSource,
    ) {
        let index = self.name_hashes.len() as u32;
        let index64 = u64::from(index);
        let p = self.name_hash(&facts.name);
        self.name_hashes.push(p);
        self.offsets.push(record_offset);
        self.flags.push(0);
        let at = |f: Finding| f.at(Some(index64), line_no, offset);

        // Findings the line alone establishes.
        for local in &facts.findings {
            let mut f = Finding::new(local.kind, local.message.clone()).severity(local.severity);
            f.expected = local.expected.clone();
            f.actual = local.actual.clone();
            self.push_finding(at(f));
        }
        let rewrites = line_rewrites | facts.rewrites;
        if rewrites != 0 && facts.hash_match != HashMatch::Mismatch {
            self.push_finding(at(Finding::new(
                FindingKind::Rewritten,
                format!(
                    "line rewritten after sealing ({}); the sealed content verifies",
                    rewrite::describe(rewrites)
                ),
            )));
        }

        // A replayed line takes no part in links.
        if let Some(original) = self.lookup(&facts.name, p, source) {
            self.flags[index as usize] |= DUPLICATE;
            self.push_finding(at(Finding::new(
                FindingKind::DuplicateEntry,
                format!("entry repeats entry {original} (same hash): a replayed line; it takes no part in links"),
            )));
            self.signature_findings(&facts, None, index64, line_no, offset);
            self.set_head(index64, &mut facts);
            return;
        }
        let hashes = &self.name_hashes;
        self.names.insert(p, index, |i| hashes[i as usize]);
        let waiting = if self.unresolved.is_empty() {
            None
        } else {
            self.unresolved.remove(&facts.name)
        };
        if let Some(waiting) = waiting {
            for fi in waiting {
                if let Some(f) = self.findings.get_mut(fi) {
                    f.message = format!(
                        "previous_hash names entry {index}, which comes later in the file: entries are out of order"
                    );
                }
            }
        }

        // Parent: the entry previous_hash names, if it is earlier in the file.
        let prev = self.prev.clone();
        let parent: Option<EntryState> = match facts.previous {
            Previous::Genesis => {
                if index > 0 {
                    self.push_finding(at(Finding::new(
                        FindingKind::GenesisInvalid,
                        "previous_hash is \"genesis\" but this is not the first entry: a second chain starts here".to_owned(),
                    )));
                }
                None
            }
            Previous::Name(name) if index == 0 => {
                let _ = name;
                self.push_finding(at(Finding::new(
                    FindingKind::GenesisInvalid,
                    "the first entry's previous_hash is not \"genesis\": entries before it are missing".to_owned(),
                )
                .values("genesis", line::printable(&facts.previous_display()))));
                None
            }
            Previous::Name(name) => match prev.as_ref().filter(|p| p.name == name) {
                Some(p) => Some(p.clone()),
                None => match self.lookup(&name, self.name_hash(&name), source) {
                    Some(pi) => self.reload(pi, source),
                    None => {
                        let fi = self.push_finding(at(Finding::new(
                            FindingKind::LinkBroken,
                            if self.unreadable_lines > 0 {
                                "previous_hash names no entry in the file: entries are missing or altered, or the parent is one of the lines above that is not a readable entry (see malformed_line)".to_owned()
                            } else {
                                "previous_hash names no entry in the file: entries are missing or altered".to_owned()
                            },
                        )
                        .values("the hash of an earlier entry", line::printable(&facts.previous_display()))));
                        self.unresolved.entry(name).or_default().push(fi);
                        None
                    }
                },
            },
        };

        if let Some(parent) = &parent {
            let pi = parent.index as usize;
            let had_child = self.flags[pi] & HAS_CHILD != 0;
            self.flags[pi] |= HAS_CHILD;
            if prev.as_ref().map(|p| p.index) != Some(parent.index) {
                self.parents.insert(index, parent.index);
            }
            if had_child {
                self.fork(parent.index, index, line_no, offset);
            }
        } else {
            self.flags[index as usize] |= ROOT;
        }

        // Derived values against the parent, else the entry before.
        let base = parent.as_ref().or(prev.as_ref());
        let (expected_pcr, expected_idx) = self.derived(&facts, base, index64, line_no, offset);

        self.signature_findings(&facts, base.and_then(|b| b.mode), index64, line_no, offset);

        let stored_idx = match facts.chain_idx {
            StoredIndex::Value(v) => Some(v),
            StoredIndex::Invalid => None,
        };
        self.prev = Some(EntryState {
            index,
            name: facts.name,
            stored_pcr: facts.pcr,
            expected_pcr,
            stored_idx,
            expected_idx,
            mode: facts.seal_mode,
        });
        self.set_head(index64, &mut facts);
    }

    /// Keeps the head's texts, moved out of the facts: escaping them for
    /// display waits until a report asks.
    fn set_head(&mut self, index: u64, facts: &mut EntryFacts) {
        self.head = Some(HeadState {
            index,
            name: facts.name,
            pcr: facts.pcr,
            hash_text: std::mem::take(&mut facts.stored_hash_text),
            pcr_text: std::mem::take(&mut facts.pcr_text),
        });
    }
}
