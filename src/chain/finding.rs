//! Findings: what verification reports about a chain, as data.

use serde::Serialize;

/// How much a finding matters. `valid` is false when any finding is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Every finding kind of the SEC-006 verification contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    MalformedLine,
    CrashResidue,
    TornTail,
    EmptyChain,
    HashMismatch,
    GenesisInvalid,
    LinkBroken,
    Fork,
    DuplicateEntry,
    DuplicateKey,
    UnsealedField,
    UnknownField,
    SignatureInvalid,
    SignatureUnverifiable,
    KeyUnpinned,
    KeyChanged,
    PcrMismatch,
    PcrReset,
    ChainIdxMismatch,
    SealModeChanged,
    Rewritten,
    DefaultDevKey,
    TailUnanchored,
    AnchorMismatch,
    QuoteRollback,
}

impl FindingKind {
    pub const ALL: [FindingKind; 25] = [
        FindingKind::MalformedLine,
        FindingKind::CrashResidue,
        FindingKind::TornTail,
        FindingKind::EmptyChain,
        FindingKind::HashMismatch,
        FindingKind::GenesisInvalid,
        FindingKind::LinkBroken,
        FindingKind::Fork,
        FindingKind::DuplicateEntry,
        FindingKind::DuplicateKey,
        FindingKind::UnsealedField,
        FindingKind::UnknownField,
        FindingKind::SignatureInvalid,
        FindingKind::SignatureUnverifiable,
        FindingKind::KeyUnpinned,
        FindingKind::KeyChanged,
        FindingKind::PcrMismatch,
        FindingKind::PcrReset,
        FindingKind::ChainIdxMismatch,
        FindingKind::SealModeChanged,
        FindingKind::Rewritten,
        FindingKind::DefaultDevKey,
        FindingKind::TailUnanchored,
        FindingKind::AnchorMismatch,
        FindingKind::QuoteRollback,
    ];

    /// The kind's name in reports, e.g. `hash_mismatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::MalformedLine => "malformed_line",
            FindingKind::CrashResidue => "crash_residue",
            FindingKind::TornTail => "torn_tail",
            FindingKind::EmptyChain => "empty_chain",
            FindingKind::HashMismatch => "hash_mismatch",
            FindingKind::GenesisInvalid => "genesis_invalid",
            FindingKind::LinkBroken => "link_broken",
            FindingKind::Fork => "fork",
            FindingKind::DuplicateEntry => "duplicate_entry",
            FindingKind::DuplicateKey => "duplicate_key",
            FindingKind::UnsealedField => "unsealed_field",
            FindingKind::UnknownField => "unknown_field",
            FindingKind::SignatureInvalid => "signature_invalid",
            FindingKind::SignatureUnverifiable => "signature_unverifiable",
            FindingKind::KeyUnpinned => "key_unpinned",
            FindingKind::KeyChanged => "key_changed",
            FindingKind::PcrMismatch => "pcr_mismatch",
            FindingKind::PcrReset => "pcr_reset",
            FindingKind::ChainIdxMismatch => "chain_idx_mismatch",
            FindingKind::SealModeChanged => "seal_mode_changed",
            FindingKind::Rewritten => "rewritten",
            FindingKind::DefaultDevKey => "default_dev_key",
            FindingKind::TailUnanchored => "tail_unanchored",
            FindingKind::AnchorMismatch => "anchor_mismatch",
            FindingKind::QuoteRollback => "quote_rollback",
        }
    }

    /// The usual severity of the kind. A few kinds are raised or lowered
    /// case by case (`seal_mode_changed`, `anchor_mismatch`).
    pub fn default_severity(self) -> Severity {
        use FindingKind::*;
        match self {
            MalformedLine
            | HashMismatch
            | GenesisInvalid
            | LinkBroken
            | Fork
            | DuplicateEntry
            | DuplicateKey
            | UnsealedField
            | SignatureInvalid
            | SignatureUnverifiable
            | KeyChanged
            | PcrMismatch
            | AnchorMismatch
            | QuoteRollback => Severity::Error,
            CrashResidue | TornTail | EmptyChain | KeyUnpinned | PcrReset | ChainIdxMismatch
            | SealModeChanged | Rewritten | DefaultDevKey => Severity::Warning,
            UnknownField | TailUnanchored => Severity::Info,
        }
    }

    /// One plain sentence on what the kind means for the chain, for help
    /// screens and the detail pane.
    pub fn meaning(self) -> &'static str {
        use FindingKind::*;
        match self {
            MalformedLine => "A line that is neither a sealed entry nor crash residue: bad JSON, a wrong type, trailing bytes or null.",
            CrashResidue => "NUL bytes or a torn record left by a crash; the complete record after it keeps the chain linked.",
            TornTail => "The last line has no newline: a write in progress or a crash in the middle of a write.",
            EmptyChain => "The file holds no entry at all.",
            HashMismatch => "The stored hash matches neither the entry's bytes nor their Go re-encoding: the sealed content was changed.",
            GenesisInvalid => "Only the first entry may say previous_hash \"genesis\", and it must.",
            LinkBroken => "previous_hash names a later entry or no entry in the file: entries are missing, altered or out of order.",
            Fork => "A second child of one parent: two writers, or a branch inserted into the chain.",
            DuplicateEntry => "An entry whose hash appeared earlier in the file: a replayed line.",
            DuplicateKey => "Two keys in one JSON object that Go treats as the same field; readers may disagree on which value counts.",
            UnsealedField => "A field inside the entry that the seal does not cover; it is never shown as entry content.",
            UnknownField => "A field inside the entry, covered by the seal, that this version does not know (a newer logger wrote it).",
            SignatureInvalid => "The signature does not verify under the configured secret or TPM public key.",
            SignatureUnverifiable => "A TPM entry with no TPM public key to check it against.",
            KeyUnpinned => "TPM signatures verify only against the key stored beside the chain, which anyone who can write the chain can replace.",
            KeyChanged => "A TPM entry signed by another key than the chain's pinned or first key.",
            PcrMismatch => "pcr_value follows neither from the parent's values nor from zero.",
            PcrReset => "pcr_value restarts from zero: the logger restarted or the machine rebooted, and a new segment begins.",
            ChainIdxMismatch => "chain_idx does not follow from the parent's; it is not sealed, and the reference renumbers after dropping lines.",
            SealModeChanged => "seal_mode changes along the chain, or is unknown.",
            Rewritten => "The line's bytes differ from what the logger wrote, but the sealed content verifies.",
            DefaultDevKey => "Software signatures verify under the public development key, so anyone can forge them.",
            TailUnanchored => "No TPM quote or PCR read was compared with the head, so a cut at the end of the file cannot be detected.",
            AnchorMismatch => "The TPM's PCR is not the head's pcr_value.",
            QuoteRollback => "A later quote with the same reset and restart counts whose PCR is not on the path from the earlier one: the PCR was reset and replayed.",
        }
    }
}

/// One finding: what is wrong, where, and the values compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// Position of the entry among the file's entries, from 0; `None` for
    /// chain-level findings and lines that hold no entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// 1-based line number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Byte offset of the line (of the record, when residue precedes it on the same line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

impl Finding {
    pub fn new(kind: FindingKind, message: impl Into<String>) -> Self {
        Finding {
            kind,
            severity: kind.default_severity(),
            index: None,
            line: None,
            offset: None,
            message: message.into(),
            expected: None,
            actual: None,
        }
    }

    pub fn at(mut self, index: Option<u64>, line: u64, offset: u64) -> Self {
        self.index = index;
        self.line = Some(line);
        self.offset = Some(offset);
        self
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn values(mut self, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self.actual = Some(actual.into());
        self
    }
}
