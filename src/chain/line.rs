//! What one line says on its own: its class, its sealed entry, the hash and
//! signature checks and the ways its bytes differ from what the logger wrote.
//!
//! Everything here depends on the line alone (and the verification keys), so
//! lines are analysed in parallel; links, forks and PCR replay need the
//! lines before and live in `verify`.

use std::borrow::Cow;

use super::crypto::{self, Hash32};
use super::entry::{self, DecisionEntry, DecodeError, SealMode, DEV_KEY, ENTRY_FIELDS, GENESIS};
use super::finding::{FindingKind, Severity};
use super::gostr::{self, GoEscapes};
use super::json::{Member, Scan, ScanError, Scanner, Trailing, ValueKind};
use super::verify::keys::VerifyKeys;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Ways a line's bytes differ from what the logger wrote, as bit flags.
pub mod rewrite {
    pub const BOM: u32 = 1 << 0;
    pub const CRLF: u32 = 1 << 1;
    pub const BLANK: u32 = 1 << 2;
    pub const KEY_ORDER: u32 = 1 << 3;
    pub const WHITESPACE: u32 = 1 << 4;
    pub const TOP_UNKNOWN: u32 = 1 << 5;
    pub const ESCAPES: u32 = 1 << 6;
    pub const KEY_CASE: u32 = 1 << 7;
    pub const TIMESTAMP: u32 = 1 << 8;
    pub const HEX_CASE: u32 = 1 << 9;
    pub const OPTIONAL_EMPTY: u32 = 1 << 10;
    pub const NUMBER_FORM: u32 = 1 << 11;
    pub const NULL_FIELD: u32 = 1 << 12;
    pub const DUPLICATE_KEY: u32 = 1 << 13;
    pub const GO_VERSION: u32 = 1 << 14;

    /// Plain words for each flag, in the order they are listed.
    pub const NAMES: [(u32, &str); 15] = [
        (BOM, "UTF-8 byte order mark"),
        (CRLF, "CRLF line ending"),
        (BLANK, "blank line"),
        (KEY_ORDER, "key order"),
        (WHITESPACE, "whitespace"),
        (TOP_UNKNOWN, "unknown top-level fields"),
        (ESCAPES, "string escapes"),
        (KEY_CASE, "key case"),
        (TIMESTAMP, "timestamp form"),
        (HEX_CASE, "upper-case hex"),
        (OPTIONAL_EMPTY, "empty optional fields written out"),
        (NUMBER_FORM, "number form"),
        (NULL_FIELD, "null in place of a value"),
        (DUPLICATE_KEY, "duplicate keys"),
        (
            GO_VERSION,
            "backspace/form feed escaped as by another Go version",
        ),
    ];

    pub fn describe(flags: u32) -> String {
        NAMES
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

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

/// How the stored hash was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMatch {
    /// SHA-256 of the entry bytes as they stand in the line.
    Raw,
    /// SHA-256 of the Go re-encoding of the decoded entry.
    ReEncoded,
    /// Neither.
    Mismatch,
}

/// How the signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Valid under the configured secret (which may be the development key).
    Valid,
    /// Valid only under the development key while another secret is configured.
    DevKeyOnly,
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
    /// Where the record starts in the line (after a BOM or residue).
    pub record_start: usize,
    /// The entry's name: its stored hash when that is 64 hex digits, else a
    /// name derived from the stored text.
    pub name: Hash32,
    /// The hash that signature and PCR replay use: the stored hash, or the
    /// entry bytes' hash when the stored one is not 64 hex digits.
    pub replay_hash: Hash32,
    /// The stored hash as written, kept only when it is not 64 lower-case
    /// hex digits (otherwise it is `name` in hex); see `hash_display`.
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

/// What `previous_hash` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Previous {
    Genesis,
    Name(Hash32),
}

/// The class of one line.
#[derive(Debug, Clone)]
pub enum LineClass {
    /// Only spaces, tabs and `\r` (or nothing).
    Blank,
    /// A sealed entry, maybe after residue on the same line.
    Entry {
        residue: Option<ResidueKind>,
        facts: Box<EntryFacts>,
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
                Err(reason) => LineFacts {
                    class: LineClass::Malformed(format!(
                        "{nuls} NUL bytes followed by bytes that are not a complete record ({reason})"
                    )),
                    rewrites,
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
            Err(ScanError::Incomplete) if body.first() == Some(&b'{') => LineFacts {
                class: LineClass::Residue(ResidueKind::Fragment),
                rewrites,
            },
            Err(ScanError::Incomplete) => LineFacts {
                class: LineClass::Malformed("the line ends inside a JSON value".to_owned()),
                rewrites,
            },
            Err(ScanError::Syntax { at, reason }) => {
                // A record torn mid-write, followed on the same line by a complete record.
                if body.first() == Some(&b'{') {
                    if let Some(split) = self.find_split(body, at) {
                        if let Ok(facts) = self.record(line, offset + split, keys) {
                            return LineFacts {
                                class: LineClass::Entry {
                                    residue: Some(ResidueKind::Fragment),
                                    facts,
                                },
                                rewrites,
                            };
                        }
                    }
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
            if matches!(
                self.scanner.scan(&body[p..], &mut self.scan),
                Ok(Trailing::None)
            ) && self.scan.is_object
                && self.scan.entry.iter().any(|_| true)
            {
                return Some(p);
            }
        }
        None
    }

    /// Scans and analyses the record starting at `start`; `Err` holds why it is no entry.
    fn record(
        &mut self,
        line: &[u8],
        start: usize,
        keys: &VerifyKeys,
    ) -> Result<Box<EntryFacts>, String> {
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
    ) -> Result<Box<EntryFacts>, String> {
        let bytes = &line[start..];
        if !self.scan.is_object {
            let kind = self.scan.top_kind.map_or("a value", |k| k.name());
            return Err(format!("the line is {kind}, not a sealed entry object"));
        }
        // Usually one `entry` member: keep the list on the stack.
        let mut entry_members = EntryMembers::default();
        for (i, m) in self.scan.top.iter().enumerate() {
            if entry::field_of(bytes, m, &["entry"]).is_some() {
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
        Ok(Box::new(self.entry_facts(
            bytes,
            start,
            entry_pos,
            entry_members,
            keys,
        )))
    }

    fn entry_facts(
        &mut self,
        bytes: &[u8],
        start: usize,
        entry_pos: usize,
        entry_members: &[usize],
        keys: &VerifyKeys,
    ) -> EntryFacts {
        let scan = &self.scan;
        let mut findings = Vec::new();
        let mut rewrites = 0u32;

        for dup in &scan.duplicates {
            let place = match dup.depth {
                1 => "the line's object".to_owned(),
                2 => "the entry object".to_owned(),
                d => format!("an object nested {d} levels deep"),
            };
            findings.push(LocalFinding::new(
                FindingKind::DuplicateKey,
                format!(
                    "key \"{}\" appears twice in {place} (Go matches keys ignoring case, so it reads only the last value); a viewer may show text that was never sealed",
                    printable(&dup.key)
                ),
            ));
        }

        // Top-level fields, decoded as Go decodes SealedEntry.
        let mut hash_text: Cow<[u8]> = Cow::Borrowed(b"");
        let mut signature_text: Cow<[u8]> = Cow::Borrowed(b"");
        let mut pcr_text: Cow<[u8]> = Cow::Borrowed(b"");
        let mut mode_text: Option<Cow<[u8]>> = None;
        let mut chain_idx = StoredIndex::Value(0);
        let mut top_unknown = false;
        let mut wrong_types: Vec<String> = Vec::new();
        for (i, member) in scan.top.iter().enumerate() {
            let field = entry::field_of(bytes, member, &entry::LINE_FIELDS);
            let token = &bytes[member.value.clone()];
            let slot = match field {
                Some(0) => {
                    if member.kind != ValueKind::Object
                        && member.kind != ValueKind::Null
                        && i != entry_pos
                    {
                        wrong_types.push(format!("\"entry\" is {}", member.kind.name()));
                    }
                    continue;
                }
                Some(1) => &mut hash_text,
                Some(2) => &mut signature_text,
                Some(3) => &mut pcr_text,
                Some(4) => {
                    match member.kind {
                        ValueKind::String => mode_text = Some(string_bytes(token, member.escaped)),
                        ValueKind::Null => {}
                        k => wrong_types.push(format!(
                            "\"seal_mode\" must be a string but is {}",
                            k.name()
                        )),
                    }
                    continue;
                }
                Some(_) => {
                    match member.kind {
                        ValueKind::Number => match parse_go_int64(token) {
                            Some(v) => {
                                if token == b"-0" {
                                    rewrites |= rewrite::NUMBER_FORM;
                                }
                                chain_idx = StoredIndex::Value(v)
                            }
                            None => {
                                chain_idx = StoredIndex::Invalid;
                                wrong_types.push(format!(
                                    "\"chain_idx\" must be an integer but is {}",
                                    printable(&String::from_utf8_lossy(token))
                                ));
                            }
                        },
                        ValueKind::Null => {}
                        k => {
                            chain_idx = StoredIndex::Invalid;
                            wrong_types.push(format!(
                                "\"chain_idx\" must be an integer but is {}",
                                k.name()
                            ));
                        }
                    }
                    continue;
                }
                _ => {
                    top_unknown = true;
                    continue;
                }
            };
            match member.kind {
                ValueKind::String => *slot = string_bytes(token, member.escaped),
                ValueKind::Null => {}
                k => wrong_types.push(format!(
                    "\"{}\" must be a string but is {}",
                    entry::LINE_FIELDS[field.unwrap_or(0)],
                    k.name()
                )),
            }
        }

        // The entry object: raw bytes of the last object-valued `entry`, and
        // Go's merged decode of all of them.
        let entry_range = scan.top[entry_pos].value.clone();
        let raw_entry = &bytes[entry_range];
        let raw_hash = crypto::sha256(raw_entry);
        let members = scan
            .entry
            .iter()
            .filter(|(top, _)| entry_members.contains(top))
            .map(|(_, m)| m);
        let stored = entry::parse_hex32_bytes(&hash_text);
        let raw_verifies = stored.is_some_and(|(h, _)| h == raw_hash);
        // When the raw bytes verify, only previous_hash, unknown keys and
        // wrong types matter: skip decoding the other fields.
        // Without a 64-digit stored hash no re-encoding can match either.
        let (decoded, notes) = if raw_verifies || stored.is_none() {
            DecisionEntry::decode_light(bytes, members)
        } else {
            DecisionEntry::decode(bytes, members)
        };
        for e in &notes.wrong_types {
            if let DecodeError::WrongType { .. } = e {
                wrong_types.push(e.to_string());
            }
        }

        let mut hash_match = HashMatch::Mismatch;
        let mut go_version_form = false;
        if let Some((stored_hash, upper)) = stored {
            if upper {
                rewrites |= rewrite::HEX_CASE;
            }
            if stored_hash == raw_hash {
                hash_match = HashMatch::Raw;
            } else if wrong_types.is_empty() && notes.error.is_none() {
                self.scratch.clear();
                if decoded
                    .append_go_json(&mut self.scratch, GoEscapes::Go119)
                    .is_ok()
                {
                    if crypto::sha256(&self.scratch) == stored_hash {
                        hash_match = HashMatch::ReEncoded;
                    } else if decoded.has_version_dependent_escape() {
                        self.scratch.clear();
                        if decoded
                            .append_go_json(&mut self.scratch, GoEscapes::Go122)
                            .is_ok()
                            && crypto::sha256(&self.scratch) == stored_hash
                        {
                            hash_match = HashMatch::ReEncoded;
                            go_version_form = true;
                        }
                    }
                }
            }
        }

        if !wrong_types.is_empty() {
            findings.push(LocalFinding::new(
                FindingKind::MalformedLine,
                format!(
                    "wrong JSON type: {}; Go's decoder rejects this line (the reference drops it silently), so only its raw bytes were verified",
                    wrong_types.join("; ")
                ),
            ));
        }

        if hash_match == HashMatch::Mismatch {
            let why = match (&stored, &notes.error) {
                (None, _) if hash_text.is_empty() => "the line has no stored hash".to_owned(),
                (None, _) => "the stored hash is not 64 hex digits".to_owned(),
                (Some(_), Some(DecodeError::Timestamp(e))) => format!(
                    "the entry bytes do not match, and the timestamp cannot be re-encoded because Go cannot parse it ({e})"
                ),
                (Some(_), _) if !wrong_types.is_empty() => {
                    "the entry bytes do not match (a wrong JSON type prevents re-encoding)".to_owned()
                }
                (Some(_), _) => {
                    "neither the entry bytes nor their Go re-encoding match: the sealed content was changed after sealing".to_owned()
                }
            };
            findings.push(
                LocalFinding::new(FindingKind::HashMismatch, format!("hash mismatch: {why}"))
                    .values(crypto_hex(&raw_hash), lossy(&hash_text)),
            );
        }

        // Field findings only when the seal covers something.
        match hash_match {
            HashMatch::Raw => {
                for name in &notes.unknown {
                    findings.push(LocalFinding::new(
                        FindingKind::UnknownField,
                        format!(
                            "entry field \"{}\" is covered by the seal but unknown to this version (a newer logger wrote it)",
                            printable(name)
                        ),
                    ));
                }
            }
            HashMatch::ReEncoded => {
                for name in &notes.unknown {
                    findings.push(LocalFinding::new(
                        FindingKind::UnsealedField,
                        format!(
                            "entry field \"{}\" is not covered by the seal (the hash verifies only without it); its value is not shown",
                            printable(name)
                        ),
                    ));
                }
                rewrites |= entry_rewrites(bytes, &self.scan, entry_pos, &decoded, go_version_form);
            }
            HashMatch::Mismatch => {}
        }
        if hash_match != HashMatch::Mismatch {
            rewrites |= top_rewrites(bytes, &self.scan, top_unknown);
        }

        let replay_hash = stored.map_or(raw_hash, |(h, _)| h);
        let name = stored.map_or_else(|| crypto::text_name(&hash_text), |(h, _)| h);
        let plain_previous = notes.previous_plain.as_ref().map(|r| {
            let token = &bytes[r.clone()];
            &token[1..token.len() - 1]
        });
        let previous = if let Some(body) = plain_previous {
            match entry::parse_hex32_bytes(body) {
                Some((h, _)) => Previous::Name(h),
                None => Previous::Genesis,
            }
        } else if decoded.previous_hash == GENESIS {
            Previous::Genesis
        } else {
            match entry::parse_hex32(&decoded.previous_hash) {
                Some((h, false)) => Previous::Name(h),
                _ => Previous::Name(crypto::text_name(decoded.previous_hash.as_bytes())),
            }
        };
        // Texts are kept only where hex bytes cannot give them back.
        let previous_text = match previous {
            Previous::Genesis => String::new(),
            Previous::Name(_)
                if entry::parse_hex32(&decoded.previous_hash).is_some_and(|(_, upper)| !upper) =>
            {
                String::new()
            }
            Previous::Name(_) => decoded.previous_hash,
        };
        let stored_hash_text = match stored {
            Some((_, false)) => String::new(),
            _ => lossy(&hash_text),
        };

        let mut pcr_upper = false;
        let pcr = match entry::parse_hex32_bytes(&pcr_text) {
            Some((p, upper)) => {
                pcr_upper = upper;
                if upper {
                    rewrites |= rewrite::HEX_CASE;
                }
                Some(p)
            }
            None => None,
        };

        let seal_mode = match mode_text.as_deref() {
            Some(b"software") => Some(SealMode::Software),
            Some(b"tpm") => Some(SealMode::Tpm),
            _ => None,
        };
        let (signature, dev_key_valid) = check_signature(
            seal_mode,
            &signature_text,
            &replay_hash,
            keys,
            &mut rewrites,
        );
        match (seal_mode, &mode_text) {
            (Some(_), _) => {}
            (None, Some(text)) => findings.push(LocalFinding::error(
                FindingKind::SealModeChanged,
                format!(
                    "unknown seal_mode \"{}\": the signature was not checked",
                    lossy(text)
                ),
            )),
            (None, None) => findings.push(LocalFinding::error(
                FindingKind::SealModeChanged,
                "seal_mode is missing: the signature was not checked".to_owned(),
            )),
        }

        EntryFacts {
            record_start: start,
            name,
            replay_hash,
            stored_hash_text,
            hash_match,
            previous,
            previous_text,
            pcr_text: match pcr {
                Some(_) if !pcr_upper => String::new(),
                _ => lossy(&pcr_text),
            },
            pcr,
            chain_idx,
            seal_mode,
            signature,
            dev_key_valid,
            rewrites,
            findings,
        }
    }
}

/// A JSON string's value as bytes: borrowed when it holds no escape.
fn string_bytes(token: &[u8], escaped: bool) -> Cow<'_, [u8]> {
    if escaped {
        Cow::Owned(entry::decode_string(token, true).into_bytes())
    } else {
        Cow::Borrowed(
            token
                .get(1..token.len().saturating_sub(1))
                .unwrap_or_default(),
        )
    }
}

/// Text for messages, with invisible characters escaped.
fn lossy(bytes: &[u8]) -> String {
    printable(&String::from_utf8_lossy(bytes))
}

/// Positions of the `entry` members of a line's object, on the stack for up to four.
#[derive(Default)]
struct EntryMembers {
    inline: [usize; 4],
    len: usize,
    spill: Vec<usize>,
}

impl EntryMembers {
    fn push(&mut self, i: usize) {
        if self.len < self.inline.len() && self.spill.is_empty() {
            self.inline[self.len] = i;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.push(i);
        }
    }

    fn as_slice(&self) -> &[usize] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

impl EntryFacts {
    /// The stored hash as written.
    pub fn hash_display(&self) -> String {
        if self.stored_hash_text.is_empty() && self.name != crypto::text_name(b"") {
            hex::encode(self.name)
        } else {
            self.stored_hash_text.clone()
        }
    }

    /// `pcr_value` as written.
    pub fn pcr_display(&self) -> String {
        match (self.pcr, self.pcr_text.is_empty()) {
            (Some(p), true) => hex::encode(p),
            _ => self.pcr_text.clone(),
        }
    }

    /// `previous_hash` as written.
    pub fn previous_display(&self) -> String {
        match self.previous {
            Previous::Genesis => GENESIS.to_owned(),
            Previous::Name(h) if self.previous_text.is_empty() => hex::encode(h),
            Previous::Name(_) => self.previous_text.clone(),
        }
    }
}

fn crypto_hex(h: &Hash32) -> String {
    hex::encode(h)
}

/// Checks the signature for the entry's seal mode.
fn check_signature(
    mode: Option<SealMode>,
    text: &[u8],
    hash: &Hash32,
    keys: &VerifyKeys,
    rewrites: &mut u32,
) -> (SignatureCheck, bool) {
    match mode {
        None => (SignatureCheck::NotChecked, false),
        Some(SealMode::Software) => {
            let Some((sig, upper)) = entry::parse_hex32_bytes(text) else {
                return (SignatureCheck::Invalid, false);
            };
            let valid = keys.hmac.sign(hash) == sig;
            let dev_valid = if keys.secret_is_dev_key {
                valid
            } else {
                keys.dev_hmac.sign(hash) == sig
            };
            if (valid || dev_valid) && upper {
                *rewrites |= rewrite::HEX_CASE;
            }
            let check = if valid {
                SignatureCheck::Valid
            } else if dev_valid {
                SignatureCheck::DevKeyOnly
            } else {
                SignatureCheck::Invalid
            };
            (check, dev_valid)
        }
        Some(SealMode::Tpm) => {
            if keys.tpm.is_empty() {
                return (SignatureCheck::TpmUnverifiable, false);
            }
            let Ok(bytes) = hex::decode(text) else {
                return (SignatureCheck::Invalid, false);
            };
            for (i, key) in keys.tpm.iter().enumerate() {
                if crate::attest::verify_entry_signature(&key.key, hash, &bytes).is_ok() {
                    if text.iter().any(|b| b.is_ascii_uppercase()) {
                        *rewrites |= rewrite::HEX_CASE;
                    }
                    return (SignatureCheck::TpmKey(i), false);
                }
            }
            (SignatureCheck::Invalid, false)
        }
    }
}

/// Parses an integer literal as Go's `strconv.ParseInt(s, 10, 64)` does for
/// a JSON number token: no fraction or exponent, within int64.
fn parse_go_int64(token: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(token).ok()?;
    if text.contains(['.', 'e', 'E']) {
        return None;
    }
    text.parse::<i64>().ok()
}

/// Flags for the ways the line's object differs from Go's layout. Only
/// called when the sealed content verifies.
fn top_rewrites(bytes: &[u8], scan: &Scan, top_unknown: bool) -> u32 {
    let mut flags = 0;
    if top_unknown {
        flags |= rewrite::TOP_UNKNOWN;
    }
    if !scan.duplicates.is_empty() {
        flags |= rewrite::DUPLICATE_KEY;
    }
    flags |= layout_rewrites(
        bytes,
        scan.value.clone(),
        scan.top.iter(),
        &entry::LINE_FIELDS,
    );
    for member in &scan.top {
        if member.kind == ValueKind::String && member.escaped {
            flags |= rewrite::ESCAPES;
        }
        if member.kind == ValueKind::Null {
            flags |= rewrite::NULL_FIELD;
        }
    }
    flags
}

/// Flags for the ways the entry object differs from Go's encoding of the
/// decoded entry: called when only the re-encoding verifies.
fn entry_rewrites(
    bytes: &[u8],
    scan: &Scan,
    entry_pos: usize,
    decoded: &DecisionEntry,
    go_version_form: bool,
) -> u32 {
    let mut flags = 0;
    if go_version_form {
        flags |= rewrite::GO_VERSION;
    }
    let range = scan.top[entry_pos].value.clone();
    let members: Vec<&Member> = scan
        .entry
        .iter()
        .filter(|(top, _)| *top == entry_pos)
        .map(|(_, m)| m)
        .collect();
    flags |= layout_rewrites(bytes, range, members.iter().copied(), &ENTRY_FIELDS);
    let mut scratch = Vec::new();
    for member in &members {
        let folded = entry::fold_member_key(bytes, member);
        let token = &bytes[member.value.clone()];
        match (folded.as_str(), member.kind) {
            (_, ValueKind::Null) => {
                let optional = matches!(folded.as_str(), "event_id" | "incident_id" | "operator");
                flags |= if optional {
                    rewrite::OPTIONAL_EMPTY
                } else {
                    rewrite::NULL_FIELD
                };
            }
            ("timestamp", _) => {
                scratch.clear();
                if decoded.timestamp.append_json(&mut scratch).is_ok() && scratch != token {
                    flags |= rewrite::TIMESTAMP;
                }
            }
            ("event_id" | "incident_id" | "operator", ValueKind::String) if token == b"\"\"" => {
                flags |= rewrite::OPTIONAL_EMPTY;
            }
            (_, ValueKind::String) => {
                let value = entry::decode_string(token, member.escaped);
                scratch.clear();
                gostr::append_quoted(&mut scratch, value.as_bytes(), GoEscapes::Go119);
                if scratch != token {
                    let mut newer = Vec::new();
                    gostr::append_quoted(&mut newer, value.as_bytes(), GoEscapes::Go122);
                    if newer != token {
                        flags |= rewrite::ESCAPES;
                    }
                }
            }
            _ => {}
        }
    }
    flags
}

/// Key case, key order and whitespace of one object against Go's field order.
fn layout_rewrites<'m>(
    bytes: &[u8],
    object: std::ops::Range<usize>,
    members: impl Iterator<Item = &'m Member>,
    fields: &[&str],
) -> u32 {
    let mut flags = 0;
    let mut last_field = None;
    let mut expected_next = object.start + 1;
    for member in members {
        let raw_key = &bytes[member.key.clone()];
        if let Some(pos) = entry::field_of(bytes, member, fields) {
            if raw_key != fields[pos].as_bytes() {
                flags |= rewrite::KEY_CASE;
            }
            if last_field.is_some_and(|last| pos <= last) {
                flags |= rewrite::KEY_ORDER;
            }
            last_field = Some(pos);
        }
        // Go writes `{"k":v,"k":v}` with no whitespace anywhere.
        if member.key.start != expected_next + 1 || member.value.start != member.key.end + 2 {
            flags |= rewrite::WHITESPACE;
        }
        expected_next = member.value.end + 1;
    }
    if expected_next != object.end {
        flags |= rewrite::WHITESPACE;
    }
    if object.start != 0 && fields.len() == entry::LINE_FIELDS.len() {
        flags |= rewrite::WHITESPACE;
    }
    flags
}

/// Escapes control, bidi and other invisible characters for messages.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_invisible(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                _ => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that must never reach a terminal raw: C0 and C1 controls, DEL,
/// bidi controls, zero-width characters, line and paragraph separators, BOM.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{061c}'
        | '\u{180e}' | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}')
}

/// The development key, for callers that need its bytes.
pub fn dev_key() -> &'static [u8] {
    DEV_KEY.as_bytes()
}
