//! The analysis of one line on its own: its class, its sealed entry, the hash and
//! signature checks and the ways its bytes differ from what the logger wrote.
//!
//! Everything here depends on the line alone (and the verification keys), so
//! lines are analysed in parallel; links, forks and PCR replay need the
//! lines before and live in `verify`.

use super::crypto::Hash32;
use super::entry::SealMode;
use super::finding::{FindingKind, Severity};
use super::json::{Scan, ScanError, Scanner, Trailing, ValueKind, ENTRY_MEMBER};
use super::verify::keys::VerifyKeys;

mod facts;
pub mod rewrite;

pub use super::text::{is_invisible, printable};
use facts::EntryMembers;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A finding that the line alone establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFinding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub message: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl LocalFinding {
    fn new(kind: FindingKind, message: String) -> Self {
        LocalFinding {
            kind,
            severity: kind.default_severity(),
            message,
            expected: None,
            actual: None,
        }
    }

    /// A finding raised to error severity (an unknown seal mode disables the
    /// signature check, so it must fail verification).
    fn error(kind: FindingKind, message: String) -> Self {
        LocalFinding {
            severity: Severity::Error,
            ..LocalFinding::new(kind, message)
        }
    }

    fn values(mut self, expected: String, actual: String) -> Self {
        self.expected = Some(expected);
        self.actual = Some(actual);
        self
    }
}

/// Crash residue at the start of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResidueKind {
    /// A run of NUL bytes.
    Nul,
    /// A proper prefix of a JSON object: a record torn mid-write.
    Fragment,
}

impl ResidueKind {
    pub fn describe(self) -> &'static str {
        match self {
            ResidueKind::Nul => "NUL bytes",
            ResidueKind::Fragment => "a torn record fragment",
        }
    }
}

/// The way the stored hash was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMatch {
    /// SHA-256 of the entry bytes as they stand in the line.
    Raw,
    /// SHA-256 of the Go re-encoding of the decoded entry.
    ReEncoded,
    /// Neither.
    Mismatch,
}

/// The result of the signature check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Valid under the configured secret (which may be the development key).
    Valid,
    /// Valid only under the development key while another secret is configured.
    DevKeyOnly,
    /// Valid only under an empty HMAC key, which the reference logger uses
    /// when it found a TPM device but could not sign with it.
    EmptyKeyOnly,
    /// Valid under none.
    Invalid,
    /// Not checked: unknown or missing seal mode.
    NotChecked,
    /// A TPM signature that verifies under the key at this position of `VerifyKeys::tpm`.
    TpmKey(usize),
    /// A TPM entry with no key to check against.
    TpmUnverifiable,
}

/// `chain_idx` as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredIndex {
    Value(i64),
    /// Not an integer literal Go's int64 accepts.
    Invalid,
}

/// Everything about an entry line that the line alone determines.
#[derive(Debug, Clone)]
pub struct EntryFacts {
    /// Byte position of the record in the line (after a BOM or residue).
    pub record_start: usize,
    /// The entry's name: its stored hash when that is 64 hex digits, else a
    /// name derived from the stored text.
    pub name: Hash32,
    /// The hash that signature and PCR replay use: the stored hash, or the
    /// entry bytes' hash when the stored one is not 64 hex digits.
    pub replay_hash: Hash32,
    /// The stored hash as written, kept only when it is not 64 lower-case
    /// hex digits (otherwise it is `name` in hex).
    pub stored_hash_text: String,
    pub hash_match: HashMatch,
    /// `previous_hash`: genesis, a digest in lower-case hex, or other text.
    pub previous: Previous,
    /// `previous_hash` as written when it is neither genesis nor 64
    /// lower-case hex digits; see `previous_display`.
    pub previous_text: String,
    pub pcr: Option<Hash32>,
    /// `pcr_value` as written when it is not 64 lower-case hex digits.
    pub pcr_text: String,
    pub chain_idx: StoredIndex,
    pub seal_mode: Option<SealMode>,
    pub signature: SignatureCheck,
    /// Whether the signature also verifies under the development key.
    pub dev_key_valid: bool,
    /// Ways the line was rewritten, as `rewrite` flags.
    pub rewrites: u32,
    pub findings: Vec<LocalFinding>,
}

/// The entry `previous_hash` names: genesis or a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Previous {
    Genesis,
    Name(Hash32),
}

/// The class of one line.
#[derive(Debug, Clone)]
// Nearly every line is an entry, so boxing the large variant would cost an
// allocation per line (freed on another thread) to save space on the rare rest.
#[allow(clippy::large_enum_variant)]
pub enum LineClass {
    /// Only spaces, tabs and `\r` (or nothing).
    Blank,
    /// A sealed entry, maybe after residue on the same line.
    Entry {
        residue: Option<ResidueKind>,
        facts: EntryFacts,
    },
    /// The whole line is residue; whether it is crash residue depends on the next line.
    Residue(ResidueKind),
    /// Not an entry.
    Malformed(String),
}

/// The analysis of one line.
#[derive(Debug, Clone)]
pub struct LineFacts {
    pub class: LineClass,
    /// Line-level rewrites (BOM, CRLF, blank).
    pub rewrites: u32,
}

impl LineFacts {
    /// Returns the facts of an empty line, a cheap placeholder.
    pub fn blank() -> Self {
        LineFacts {
            class: LineClass::Blank,
            rewrites: 0,
        }
    }
}

/// Per-thread state for analysing lines.
pub struct LineAnalyzer {
    scanner: Scanner,
    scan: Scan,
    scratch: Vec<u8>,
}

impl Default for LineAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

/// Lines longer than this are not searched for residue split points beyond
/// this many candidate positions; such a line is reported as malformed.
const MAX_SPLIT_CANDIDATES: usize = 64;

impl LineAnalyzer {
    pub fn new() -> Self {
        LineAnalyzer {
            scanner: Scanner::new(),
            scan: Scan::default(),
            scratch: Vec::with_capacity(512),
        }
    }

    /// Analyses one line, given without its `\n`.
    pub fn analyze(&mut self, line: &[u8], keys: &VerifyKeys) -> LineFacts {
        let mut rewrites = 0;
        let mut body = line;
        if let Some(rest) = body.strip_prefix(BOM) {
            rewrites |= rewrite::BOM;
            body = rest;
        }
        let offset = line.len() - body.len();
        if body.last() == Some(&b'\r') {
            rewrites |= rewrite::CRLF;
        }
        if body.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            return LineFacts {
                class: LineClass::Blank,
                rewrites: rewrites | rewrite::BLANK,
            };
        }

        // NUL residue: NUL bytes at the start of the line.
        let nuls = body.iter().take_while(|&&b| b == 0).count();
        if nuls > 0 {
            let rest = &body[nuls..];
            if rest.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
                return LineFacts {
                    class: LineClass::Residue(ResidueKind::Nul),
                    rewrites,
                };
            }
            return match self.record(line, offset + nuls, keys) {
                Ok(facts) => LineFacts {
                    class: LineClass::Entry {
                        residue: Some(ResidueKind::Nul),
                        facts,
                    },
                    rewrites,
                },
                // NUL bytes, then a torn record, then the record written again.
                Err(reason) => match self.record_after_fragment(line, offset + nuls, 0, keys) {
                    Some(facts) => LineFacts {
                        class: LineClass::Entry {
                            residue: Some(ResidueKind::Fragment),
                            facts,
                        },
                        rewrites,
                    },
                    None => LineFacts {
                        class: LineClass::Malformed(format!(
                            "{nuls} NUL bytes followed by bytes that are not a complete record ({reason})"
                        )),
                        rewrites,
                    },
                },
            };
        }

        match self.scanner.scan(body, &mut self.scan) {
            Ok(Trailing::None) => match self.record_scanned(line, offset, keys) {
                Ok(facts) => LineFacts {
                    class: LineClass::Entry {
                        residue: None,
                        facts,
                    },
                    rewrites,
                },
                Err(reason) => LineFacts {
                    class: LineClass::Malformed(reason),
                    rewrites,
                },
            },
            Ok(Trailing::At(at)) => LineFacts {
                class: LineClass::Malformed(format!(
                    "a complete JSON value is followed by other bytes at column {}",
                    offset + at + 1
                )),
                rewrites,
            },
            Err(ScanError::Incomplete) if body.first() == Some(&b'{') => {
                // A record torn right where a value starts (after `"key":`)
                // takes the complete record written after it as that value,
                // so the line reads as unfinished, not as invalid.
                let class = match self.record_after_fragment(line, offset, body.len(), keys) {
                    Some(facts) => LineClass::Entry {
                        residue: Some(ResidueKind::Fragment),
                        facts,
                    },
                    None => LineClass::Residue(ResidueKind::Fragment),
                };
                LineFacts { class, rewrites }
            }
            Err(ScanError::Incomplete) => LineFacts {
                class: LineClass::Malformed("the line ends inside a JSON value".to_owned()),
                rewrites,
            },
            Err(ScanError::Syntax { at, reason }) => {
                // A record torn mid-write, followed on the same line by a complete record.
                if let Some(facts) = self.record_after_fragment(line, offset, at, keys) {
                    return LineFacts {
                        class: LineClass::Entry {
                            residue: Some(ResidueKind::Fragment),
                            facts,
                        },
                        rewrites,
                    };
                }
                LineFacts {
                    class: LineClass::Malformed(format!(
                        "invalid JSON at column {}: {reason}",
                        offset + at + 1
                    )),
                    rewrites,
                }
            }
        }
    }

    /// Finds `p` such that `body[..p]` is a proper prefix of a JSON object and
    /// `body[p..]` is a complete object. `error_at` is where scanning the
    /// whole line failed: a valid prefix cannot extend past it.
    fn find_split(&mut self, body: &[u8], error_at: usize) -> Option<usize> {
        let mut tried = 0;
        for p in 1..=error_at.min(body.len().saturating_sub(1)) {
            if body[p] != b'{' {
                continue;
            }
            tried += 1;
            if tried > MAX_SPLIT_CANDIDATES {
                return None;
            }
            let prefix_ok = matches!(
                self.scanner.scan(&body[..p], &mut self.scan),
                Err(ScanError::Incomplete)
            );
            if !prefix_ok {
                continue;
            }
            if self.is_complete_record(&body[p..]) {
                return Some(p);
            }
        }
        // Two crashes in a row, or a torn record followed by NUL bytes (a
        // block the file system had not written yet), leave bytes before the
        // record that are no prefix of one object. The record itself starts
        // the way the reference writes every record.
        let mut tried = 0;
        for p in memchr::memmem::find_iter(&body[1..], b"{\"entry\"").map(|p| p + 1) {
            tried += 1;
            if tried > MAX_SPLIT_CANDIDATES {
                return None;
            }
            if self.is_complete_record(&body[p..]) {
                return Some(p);
            }
        }
        None
    }

    /// Analyses a complete record that follows a torn one in `line[start..]`.
    /// `error_at` is where scanning from `start` failed (see `find_split`).
    fn record_after_fragment(
        &mut self,
        line: &[u8],
        start: usize,
        error_at: usize,
        keys: &VerifyKeys,
    ) -> Option<EntryFacts> {
        let bytes = &line[start..];
        if bytes.first() != Some(&b'{') {
            return None;
        }
        let split = self.find_split(bytes, error_at)?;
        self.record(line, start + split, keys).ok()
    }

    /// True when `bytes` is one complete JSON object with an `entry` object.
    fn is_complete_record(&mut self, bytes: &[u8]) -> bool {
        matches!(self.scanner.scan(bytes, &mut self.scan), Ok(Trailing::None))
            && self.scan.is_object
            && !self.scan.entry.is_empty()
    }

    /// Scans and analyses the record starting at `start`; `Err` gives the reason it is no entry.
    fn record(
        &mut self,
        line: &[u8],
        start: usize,
        keys: &VerifyKeys,
    ) -> Result<EntryFacts, String> {
        let bytes = &line[start..];
        match self.scanner.scan(bytes, &mut self.scan) {
            Ok(Trailing::None) => {}
            Ok(Trailing::At(at)) => {
                return Err(format!(
                    "a complete JSON value is followed by other bytes at column {}",
                    start + at + 1
                ))
            }
            Err(ScanError::Incomplete) => {
                return Err("the line ends inside a JSON value".to_owned())
            }
            Err(ScanError::Syntax { at, reason }) => {
                return Err(format!(
                    "invalid JSON at column {}: {reason}",
                    start + at + 1
                ))
            }
        }
        self.record_scanned(line, start, keys)
    }

    /// Analyses the record starting at `start`, which `self.scan` already holds.
    fn record_scanned(
        &mut self,
        line: &[u8],
        start: usize,
        keys: &VerifyKeys,
    ) -> Result<EntryFacts, String> {
        let bytes = &line[start..];
        if !self.scan.is_object {
            let kind = self.scan.top_kind.map_or("a value", |k| k.name());
            return Err(format!("the line is {kind}, not a sealed entry object"));
        }
        // Usually one `entry` member: keep the list on the stack.
        let mut entry_members = EntryMembers::default();
        for (i, m) in self.scan.top.iter().enumerate() {
            if m.field == Some(ENTRY_MEMBER) {
                entry_members.push(i);
            }
        }
        let entry_members = entry_members.as_slice();
        let Some(&entry_pos) = entry_members
            .iter()
            .rev()
            .find(|&&i| self.scan.top[i].kind == ValueKind::Object)
        else {
            return Err(if entry_members.is_empty() {
                "the object has no \"entry\" member".to_owned()
            } else {
                "\"entry\" is not an object".to_owned()
            });
        };
        Ok(self.entry_facts(bytes, start, entry_pos, entry_members, keys))
    }
}
