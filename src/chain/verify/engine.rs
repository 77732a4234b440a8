//! Links, forks, derived values and chain-level findings.

use std::collections::{BTreeMap, HashMap};

use hashbrown::HashTable;

use crate::chain::crypto::{self, Hash32, ZERO32};
use crate::chain::entry::SealMode;
use crate::chain::finding::{Finding, FindingKind, Severity};
use crate::chain::line::{
    self, rewrite, EntryFacts, HashMatch, LineAnalyzer, LineClass, LineFacts, Previous,
    ResidueKind, SignatureCheck, StoredIndex,
};
use crate::chain::report::{Branch, Head, Report, Segment};

use super::keys::VerifyKeys;

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

/// What the engine knows of an entry it links to or replays from.
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
    has_newline: bool,
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
    prefixes: Vec<u64>,
    offsets: Vec<u64>,
    flags: Vec<u8>,
    names: HashTable<u32>,
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

fn prefix(name: &Hash32) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&name[..8]);
    u64::from_le_bytes(b)
}

impl Engine {
    pub fn new(keys: VerifyKeys) -> Self {
        Engine {
            keys,
            analyzer: LineAnalyzer::new(),
            prefixes: Vec::new(),
            offsets: Vec::new(),
            flags: Vec::new(),
            names: HashTable::new(),
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

    /// Reserves room for about `entries` more entries, so that a large file
    /// does not rehash the name table as it grows.
    pub fn reserve(&mut self, entries: usize) {
        self.prefixes.reserve(entries);
        self.offsets.reserve(entries);
        self.flags.reserve(entries);
        let prefixes = &self.prefixes;
        self.names.reserve(entries, |&i| prefixes[i as usize]);
    }

    pub fn keys(&self) -> &VerifyKeys {
        &self.keys
    }

    /// Number of entries so far.
    pub fn entries(&self) -> u64 {
        self.prefixes.len() as u64
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
                        has_newline,
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
                    self.residue_finding(p.kind, p.line, p.offset, links, p.has_newline);
                }
                if let Some(kind) = residue {
                    let before = self.prev.as_ref().map(|p| p.name);
                    let links = self.links_to(before, &facts.previous);
                    self.residue_finding(kind, line_no, offset, links, true);
                }
                // Findings sit at the line's start, or at the record's when
                // residue precedes it on the same line.
                let finding_offset = if residue.is_some() {
                    record_offset
                } else {
                    offset
                };
                self.push_entry(
                    *facts,
                    rewrites,
                    line_no,
                    (record_offset, finding_offset),
                    source,
                );
                if !has_newline {
                    let index = self.prefixes.len() as u64 - 1;
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

    fn residue_finding(
        &mut self,
        kind: ResidueKind,
        line_no: u64,
        offset: u64,
        links: bool,
        _has_newline: bool,
    ) {
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

    /// Finds an earlier entry by name, confirming prefix matches.
    fn lookup(&self, name: &Hash32, source: &dyn LineSource) -> Option<u32> {
        let p = prefix(name);
        let prev_match = self
            .prev
            .as_ref()
            .filter(|s| s.name == *name)
            .map(|s| s.index);
        let mut found = None;
        for &i in self.names.iter_hash(p) {
            if self.prefixes[i as usize] != p {
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
                // Without a source, a full 64-bit prefix match is taken as a match.
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
        let index = self.prefixes.len() as u32;
        let index64 = u64::from(index);
        self.prefixes.push(prefix(&facts.name));
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
        if let Some(original) = self.lookup(&facts.name, source) {
            self.flags[index as usize] |= DUPLICATE;
            self.push_finding(at(Finding::new(
                FindingKind::DuplicateEntry,
                format!("entry repeats entry {original} (same hash): a replayed line; it takes no part in links"),
            )));
            self.signature_findings(&facts, None, index64, line_no, offset);
            self.set_head(index64, &mut facts);
            return;
        }
        let p = prefix(&facts.name);
        let prefixes = &self.prefixes;
        self.names
            .insert_unique(p, index, |&i| prefixes[i as usize]);
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
                None => match self.lookup(&name, source) {
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

    /// Checks `pcr_value` and `chain_idx`; returns the entry's expected values.
    fn derived(
        &mut self,
        facts: &EntryFacts,
        base: Option<&EntryState>,
        index: u64,
        line_no: u64,
        offset: u64,
    ) -> (Hash32, i64) {
        let h = &facts.replay_hash;
        let i = index as usize;

        // pcr_value
        let expected_pcr = match base {
            None => {
                let from_zero = crypto::pcr_extend(&ZERO32, h);
                if facts.pcr != Some(from_zero) {
                    self.push_finding(
                        Finding::new(
                            FindingKind::PcrMismatch,
                            "the first entry's pcr_value must extend the zero PCR with its hash"
                                .to_owned(),
                        )
                        .values(
                            hex::encode(from_zero),
                            line::printable(&facts.pcr_display()),
                        )
                        .at(Some(index), line_no, offset),
                    );
                }
                if self.segment_starts.is_empty() {
                    self.segment_starts.push(index as u32);
                }
                from_zero
            }
            Some(b) => {
                // The parent's stored value usually is its expected one:
                // extend once, and again only when the two differ.
                let from_stored = b.stored_pcr.map(|s| crypto::pcr_extend(&s, h));
                let from_expected = if b.stored_pcr == Some(b.expected_pcr) {
                    from_stored.unwrap_or_else(|| crypto::pcr_extend(&b.expected_pcr, h))
                } else {
                    crypto::pcr_extend(&b.expected_pcr, h)
                };
                if facts.pcr.is_some()
                    && (facts.pcr == from_stored || facts.pcr == Some(from_expected))
                {
                    facts.pcr.unwrap_or(from_expected)
                } else if facts.pcr == Some(crypto::pcr_extend(&ZERO32, h)) {
                    self.push_finding(
                        Finding::new(
                            FindingKind::PcrReset,
                            "pcr_value restarts from zero: the logger restarted or the machine rebooted; a new segment begins".to_owned(),
                        )
                        .at(Some(index), line_no, offset),
                    );
                    self.segment_starts.push(index as u32);
                    crypto::pcr_extend(&ZERO32, h)
                } else {
                    let what = if facts.pcr.is_none() {
                        "pcr_value is not 64 hex digits"
                    } else {
                        "pcr_value follows neither from the parent's PCR value nor from zero"
                    };
                    self.push_finding(
                        Finding::new(FindingKind::PcrMismatch, what.to_owned())
                            .values(
                                hex::encode(from_expected),
                                line::printable(&facts.pcr_display()),
                            )
                            .at(Some(index), line_no, offset),
                    );
                    self.flags[i] |= PCR_DIFFERS;
                    self.expected_pcrs.insert(index as u32, from_expected);
                    from_expected
                }
            }
        };

        // chain_idx
        let stored = match facts.chain_idx {
            StoredIndex::Value(v) => Some(v),
            StoredIndex::Invalid => None,
        };
        let expected_idx = match base {
            None => {
                if stored != Some(0) {
                    if stored.is_some() {
                        self.push_finding(
                            Finding::new(
                                FindingKind::ChainIdxMismatch,
                                "the first entry's chain_idx must be 0".to_owned(),
                            )
                            .values("0", stored.map_or_else(String::new, |v| v.to_string()))
                            .at(Some(index), line_no, offset),
                        );
                    }
                    self.flags[i] |= IDX_DIFFERS;
                    self.expected_idxs.insert(index as u32, 0);
                }
                0
            }
            Some(b) => {
                let from_expected = b.expected_idx.saturating_add(1);
                let from_stored = b.stored_idx.map(|s| s.saturating_add(1));
                match stored {
                    Some(v) if Some(v) == from_stored || v == from_expected => v,
                    _ => {
                        if stored.is_some() {
                            self.push_finding(
                                Finding::new(
                                    FindingKind::ChainIdxMismatch,
                                    "chain_idx does not follow from the parent's (chain_idx is not sealed; the reference renumbers after dropping lines)".to_owned(),
                                )
                                .values(from_expected.to_string(), stored.map_or_else(String::new, |v| v.to_string()))
                                .at(Some(index), line_no, offset),
                            );
                        }
                        self.flags[i] |= IDX_DIFFERS;
                        self.expected_idxs.insert(index as u32, from_expected);
                        from_expected
                    }
                }
            }
        };
        (expected_pcr, expected_idx)
    }

    fn signature_findings(
        &mut self,
        facts: &EntryFacts,
        base_mode: Option<SealMode>,
        index: u64,
        line_no: u64,
        offset: u64,
    ) {
        let at = |f: Finding| f.at(Some(index), line_no, offset);
        if facts.dev_key_valid && !self.dev_key_reported {
            self.dev_key_reported = true;
            self.push_finding(Finding::new(
                FindingKind::DefaultDevKey,
                format!(
                    "software signatures verify under the public development key \"{}\", so anyone can forge them (first at entry {index})",
                    crate::chain::entry::DEV_KEY
                ),
            ));
        }
        match facts.signature {
            SignatureCheck::Valid | SignatureCheck::NotChecked => {}
            SignatureCheck::DevKeyOnly => {
                self.push_finding(at(Finding::new(
                    FindingKind::SignatureInvalid,
                    "the signature does not verify under the configured secret; it verifies only under the public development key".to_owned(),
                )));
            }
            SignatureCheck::Invalid => {
                let what = match facts.seal_mode {
                    Some(SealMode::Tpm) => {
                        "the TPM signature does not verify under any known TPM public key"
                    }
                    _ => "the HMAC signature does not verify under the configured secret",
                };
                self.push_finding(at(Finding::new(
                    FindingKind::SignatureInvalid,
                    what.to_owned(),
                )));
            }
            SignatureCheck::TpmUnverifiable => {
                self.push_finding(at(Finding::new(
                    FindingKind::SignatureUnverifiable,
                    "a tpm entry with no TPM public key to check it against (give --tpm-pubkey or --trusted-keys); otherwise a forger would only need to write \"seal_mode\":\"tpm\"".to_owned(),
                )));
            }
            SignatureCheck::TpmKey(k) => self.tpm_key_findings(k, index, line_no, offset),
        }

        // seal_mode along the chain.
        if let (Some(before), Some(mode)) = (base_mode, facts.seal_mode) {
            if before != mode {
                let downgrade = before == SealMode::Tpm
                    && mode == SealMode::Software
                    && facts.dev_key_valid
                    && (facts.signature == SignatureCheck::DevKeyOnly
                        || (facts.signature == SignatureCheck::Valid
                            && self.keys.secret_is_dev_key));
                let f = if downgrade {
                    Finding::new(
                        FindingKind::SealModeChanged,
                        "seal_mode changes from tpm to software and the entry verifies only under the public development key: a downgrade anyone could forge".to_owned(),
                    )
                    .severity(Severity::Error)
                } else {
                    Finding::new(
                        FindingKind::SealModeChanged,
                        format!("seal_mode changes from {before} to {mode}"),
                    )
                };
                self.push_finding(at(f.values(before.as_str(), mode.as_str())));
            }
        }
    }

    fn tpm_key_findings(&mut self, k: usize, index: u64, line_no: u64, offset: u64) {
        // With pins given, only a pinned key may sign: a key merely found
        // beside the chain can be replaced by whoever rewrote the chain.
        if !self.keys.pins.is_empty() && !self.keys.tpm[k].pinned {
            let expected = self.keys.pins.join(", ");
            let actual = self.keys.tpm[k].fingerprint.clone();
            self.push_finding(
                Finding::new(
                    FindingKind::KeyChanged,
                    format!(
                        "signed by TPM key {actual} ({}), which is not pinned: the chain may have been re-signed with another key",
                        self.keys.tpm[k].source
                    ),
                )
                .values(expected, actual)
                .at(Some(index), line_no, offset),
            );
            return;
        }
        let pinned: Vec<usize> = (0..self.keys.tpm.len())
            .filter(|&i| self.keys.tpm[i].pinned)
            .collect();
        let chain_key = match self.chain_key {
            Some(c) => c,
            None => {
                let c = pinned.first().copied().unwrap_or(k);
                self.chain_key = Some(c);
                c
            }
        };
        if k != chain_key {
            let expected = self.keys.tpm[chain_key].fingerprint.clone();
            let actual = self.keys.tpm[k].fingerprint.clone();
            self.push_finding(
                Finding::new(
                    FindingKind::KeyChanged,
                    format!(
                        "signed by TPM key {actual} ({}), not the chain's {} key: the TPM was cleared, or another machine signed",
                        self.keys.tpm[k].source,
                        if self.keys.tpm[chain_key].pinned { "pinned" } else { "first" }
                    ),
                )
                .values(expected, actual)
                .at(Some(index), line_no, offset),
            );
        } else if !self.keys.tpm[k].pinned && !self.unpinned_reported {
            self.unpinned_reported = true;
            self.push_finding(Finding::new(
                FindingKind::KeyUnpinned,
                format!(
                    "TPM signatures verify only against the public key {} from {}, which whoever can write the chain can replace; pin its fingerprint with --trusted-keys (a file outside the chain's directory) or verify against the live TPM with --anchor",
                    self.keys.tpm[k].fingerprint, self.keys.tpm[k].source
                ),
            ));
        }
    }

    fn fork(&mut self, parent: u32, child: u32, line_no: u64, offset: u64) {
        if let Some(fork) = self.forks.get_mut(&parent) {
            fork.children.push(child);
            return;
        }
        let first_child = (parent + 1..child).find(|&c| {
            self.flags[c as usize] & DUPLICATE == 0 && self.parent_of(c) == Some(parent)
        });
        let mut children: Vec<u32> = first_child.into_iter().collect();
        children.push(child);
        let fi = self.push_finding(
            Finding::new(
                FindingKind::Fork,
                format!("entry {parent} has a second child: two writers, or a branch inserted into the chain"),
            )
            .at(Some(u64::from(child)), line_no, offset),
        );
        self.forks.insert(
            parent,
            Fork {
                finding: fi,
                children,
            },
        );
    }

    /// The parent of an entry, if it has one.
    fn parent_of(&self, index: u32) -> Option<u32> {
        let flags = self.flags[index as usize];
        if flags & (ROOT | DUPLICATE) != 0 {
            return None;
        }
        if let Some(&p) = self.parents.get(&index) {
            return Some(p);
        }
        // The entry before in the file that is not a duplicate.
        (0..index)
            .rev()
            .find(|&i| self.flags[i as usize] & DUPLICATE == 0)
    }

    /// Computes each fork branch: first index, last index of its subtree, and
    /// whether every entry in it verifies.
    fn branches(&self) -> Vec<Branch> {
        if self.forks.is_empty() {
            return Vec::new();
        }
        let n = self.prefixes.len();
        let mut last = (0..n as u32).collect::<Vec<u32>>();
        let mut error: Vec<bool> = self.flags.iter().map(|f| f & HAS_ERROR != 0).collect();
        let mut parent = vec![u32::MAX; n];
        let mut last_plain = None;
        for i in 0..n as u32 {
            let flags = self.flags[i as usize];
            if flags & DUPLICATE != 0 {
                continue;
            }
            if flags & ROOT == 0 {
                parent[i as usize] = self
                    .parents
                    .get(&i)
                    .copied()
                    .or(last_plain)
                    .unwrap_or(u32::MAX);
            }
            last_plain = Some(i);
        }
        for i in (0..n).rev() {
            let p = parent[i];
            if p != u32::MAX {
                let p = p as usize;
                last[p] = last[p].max(last[i]);
                error[p] |= error[i];
            }
        }
        let mut out = Vec::new();
        for (&p, fork) in &self.forks {
            for &c in &fork.children {
                out.push(Branch {
                    parent_index: u64::from(p),
                    first_index: u64::from(c),
                    last_index: u64::from(last[c as usize]),
                    verifies: !error[c as usize],
                });
            }
        }
        out
    }

    /// The report as it stands; call `finish` first for a whole file.
    pub fn report(&self, file: &str) -> Report {
        let mut findings = self.findings.clone();
        let branches = self.branches();
        for (&p, fork) in &self.forks {
            let list: Vec<String> = branches
                .iter()
                .filter(|b| b.parent_index == u64::from(p))
                .map(|b| {
                    format!(
                        "entries {}..{} ({})",
                        b.first_index,
                        b.last_index,
                        if b.verifies {
                            "verifies"
                        } else {
                            "does not verify"
                        }
                    )
                })
                .collect();
            if let Some(f) = findings.get_mut(fork.finding) {
                f.message = format!(
                    "entry {p} has {} children: two writers, or a branch inserted into the chain; branches: {}",
                    fork.children.len(),
                    list.join(", ")
                );
            }
        }
        if self.prefixes.is_empty() {
            findings.push(Finding::new(
                FindingKind::EmptyChain,
                "the file holds no entry".to_owned(),
            ));
        }
        // Stable: findings of one line keep the order they were found in.
        findings.sort_by_key(|f| f.offset.unwrap_or(u64::MAX));

        let n = self.prefixes.len() as u32;
        let segments = self
            .segment_starts
            .iter()
            .enumerate()
            .map(|(k, &start)| Segment {
                first_index: u64::from(start),
                last_index: u64::from(self.segment_starts.get(k + 1).map_or(n, |&next| next) - 1),
            })
            .collect();
        let valid = !findings.iter().any(|f| f.severity == Severity::Error);
        Report {
            file: file.to_owned(),
            entries: u64::from(n),
            lines: self.lines,
            valid,
            findings,
            head: self.head.as_ref().map(|h| Head {
                index: h.index,
                hash: if h.hash_text.is_empty() && h.name != crypto::text_name(b"") {
                    hex::encode(h.name)
                } else {
                    line::printable(&h.hash_text)
                },
                pcr_value: match (h.pcr, h.pcr_text.is_empty()) {
                    (Some(p), true) => hex::encode(p),
                    _ => line::printable(&h.pcr_text),
                },
            }),
            segments,
            branches,
        }
    }
}
