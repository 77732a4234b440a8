//! The state of a chain file as a sealer needs it: the verification report and
//! the stored fields of its entries, read while the chain's lock is held.

use std::path::Path;

use crate::chain::entry::{parse_hex32, SealMode};
use crate::chain::finding::{Finding, Severity};
use crate::chain::report::Report;
use crate::chain::verify::{Engine, VerifyKeys};
use crate::verify_file::{verify_file, OpenError};

/// The stored fields of one entry, as written in its line (not re-derived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Position among the file's entries, from 0.
    pub index: u64,
    /// `hash` as written.
    pub hash_text: String,
    /// `hash` as 32 bytes, when it is 64 hex digits.
    pub hash: Option<[u8; 32]>,
    /// `pcr_value` as 32 bytes, when it is 64 hex digits.
    pub pcr: Option<[u8; 32]>,
    /// `seal_mode`, when it is `software` or `tpm`.
    pub mode: Option<SealMode>,
    /// `signature` as written.
    pub signature: String,
    /// `chain_idx`, when it is an integer.
    pub chain_idx: Option<i64>,
}

/// A verified chain file and its bytes.
pub struct ChainSnapshot {
    /// The verification report.
    pub report: Report,
    bytes: Vec<u8>,
    offsets: Vec<u64>,
}

impl ChainSnapshot {
    /// Verifies `path` with `keys` and keeps its bytes for entry look-ups.
    pub fn load(path: &Path, keys: VerifyKeys) -> Result<ChainSnapshot, OpenError> {
        let engine = verify_file(path, keys, &mut |_| {})?;
        ChainSnapshot::from_engine(path, &engine)
    }

    /// Builds the snapshot from a finished engine that verified `path`.
    pub fn from_engine(path: &Path, engine: &Engine) -> Result<ChainSnapshot, OpenError> {
        let report = engine.report(&path.display().to_string());
        let offsets = (0..engine.entries())
            .filter_map(|index| engine.entry_offset(index))
            .collect();
        // NOTE: the file is read a second time. A writer that ignores the lock (the Go
        // reference logger) could append in between, and the extra bytes are then ignored.
        let bytes = std::fs::read(path).map_err(|source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(ChainSnapshot {
            report,
            bytes,
            offsets,
        })
    }

    /// Returns the number of entries.
    pub fn entries(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Returns true when the file is empty or ends with `\n`.
    pub fn ends_with_newline(&self) -> bool {
        self.bytes.last().is_none_or(|&b| b == b'\n')
    }

    /// Reads the stored fields of entry `index`.
    pub fn entry(&self, index: u64) -> Option<EntryInfo> {
        let offset = usize::try_from(*self.offsets.get(usize::try_from(index).ok()?)?).ok()?;
        let rest = self.bytes.get(offset..)?;
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let value: serde_json::Value = serde_json::from_slice(&rest[..end]).ok()?;
        let text = |name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let hash_text = text("hash");
        Some(EntryInfo {
            index,
            hash: parse_hex32(&hash_text).map(|(bytes, _)| bytes),
            hash_text,
            pcr: parse_hex32(&text("pcr_value")).map(|(bytes, _)| bytes),
            mode: SealMode::parse(&text("seal_mode")),
            signature: text("signature"),
            chain_idx: value.get("chain_idx").and_then(serde_json::Value::as_i64),
        })
    }

    /// Returns the last entry in the file.
    pub fn head(&self) -> Option<EntryInfo> {
        self.entry(self.entries().checked_sub(1)?)
    }

    /// Returns the error findings about the head entry, or about lines after it.
    pub fn head_errors(&self) -> Vec<&Finding> {
        let Some(last) = self.entries().checked_sub(1) else {
            return Vec::new();
        };
        let head_offset = self.offsets.last().copied().unwrap_or(0);
        self.report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .filter(|f| f.index == Some(last) || f.offset.is_some_and(|o| o > head_offset))
            .collect()
    }

    /// Returns the number of error findings anywhere in the chain.
    pub fn error_count(&self) -> usize {
        self.report.count(Severity::Error)
    }

    /// Returns the highest index whose stored `pcr_value` equals `pcr`.
    pub fn last_index_with_pcr(&self, pcr: &[u8; 32]) -> Option<u64> {
        (0..self.entries())
            .rev()
            .find(|&index| self.entry(index).and_then(|e| e.pcr).as_ref() == Some(pcr))
    }

    /// Returns true when some entry's `seal_mode` is `tpm`, so it was extended into a TPM.
    pub fn has_tpm_entry(&self) -> bool {
        (0..self.entries()).any(|i| self.entry(i).and_then(|e| e.mode) == Some(SealMode::Tpm))
    }

    /// Returns the seal modes of the entries after `index`, in order.
    pub fn modes_after(&self, index: u64) -> Vec<Option<SealMode>> {
        (index + 1..self.entries())
            .map(|i| self.entry(i).and_then(|e| e.mode))
            .collect()
    }
}
