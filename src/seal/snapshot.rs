//! The state of a chain file as a sealer needs it: the verification report and
//! the stored fields of its entries, read while the chain's lock is held.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::chain::entry::{parse_hex32, SealMode};
use crate::chain::finding::{Finding, Severity};
use crate::chain::report::Report;
use crate::chain::verify::{Engine, VerifyKeys};
use crate::verify_file::{read_record, verify_file, OpenError};

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

/// A verified chain file: its report, the offsets of its entries, and the
/// open file to read an entry's stored fields from on demand. Bytes written
/// after the snapshot was taken are ignored.
pub struct ChainSnapshot {
    /// The verification report.
    pub report: Arc<Report>,
    offsets: Arc<Vec<u64>>,
    file: File,
    /// The file's size when the snapshot was taken.
    len: u64,
}

impl ChainSnapshot {
    /// Verifies `path` with `keys`.
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
        ChainSnapshot::from_verified(path, Arc::new(report), Arc::new(offsets))
    }

    /// Builds the snapshot from a verification done elsewhere (the view's
    /// worker), without verifying `path` again.
    pub fn from_verified(
        path: &Path,
        report: Arc<Report>,
        offsets: Arc<Vec<u64>>,
    ) -> Result<ChainSnapshot, OpenError> {
        let io = |source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Ok(ChainSnapshot {
            report,
            offsets,
            file,
            len,
        })
    }

    /// Returns the number of entries.
    pub fn entries(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Returns true when the file is empty or ends with `\n`.
    pub fn ends_with_newline(&self) -> bool {
        let Some(last) = self.len.checked_sub(1) else {
            return true;
        };
        let mut byte = [0u8; 1];
        matches!(self.file.read_at(&mut byte, last), Ok(1) if byte[0] == b'\n')
    }

    /// Reads the stored fields of entry `index`.
    pub fn entry(&self, index: u64) -> Option<EntryInfo> {
        let offset = *self.offsets.get(usize::try_from(index).ok()?)?;
        let line = read_record(&self.file, offset, self.len)?;
        entry_info(index, &line)
    }

    /// Reads the entries from `first` on, in order, with one pass over the file.
    fn entries_from(&self, first: u64) -> impl Iterator<Item = (u64, Option<EntryInfo>)> + '_ {
        let start = usize::try_from(first)
            .ok()
            .and_then(|i| self.offsets.get(i))
            .copied()
            .unwrap_or(self.len);
        let mut reader = io::BufReader::with_capacity(
            1 << 20,
            (&self.file).take(self.len.saturating_sub(start)),
        );
        let seek = io::Seek::seek(reader.get_mut().get_mut(), io::SeekFrom::Start(start));
        let mut pos = start;
        let mut line = Vec::new();
        (first..self.entries()).map_while(move |index| {
            seek.as_ref().ok()?;
            let offset = *self.offsets.get(usize::try_from(index).ok()?)?;
            // Lines without an entry lie between entries: skip them.
            while pos < offset {
                line.clear();
                let n = io::BufRead::read_until(&mut reader, b'\n', &mut line).ok()?;
                if n == 0 {
                    return None;
                }
                pos += n as u64;
            }
            line.clear();
            let n = io::BufRead::read_until(&mut reader, b'\n', &mut line).ok()?;
            pos += n as u64;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            Some((index, entry_info(index, &line)))
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
        self.entries_from(0)
            .filter(|(_, entry)| entry.as_ref().and_then(|e| e.pcr).as_ref() == Some(pcr))
            .map(|(index, _)| index)
            .last()
    }

    /// Returns true when some entry's `seal_mode` is `tpm`, so it was extended into a TPM.
    pub fn has_tpm_entry(&self) -> bool {
        self.entries_from(0)
            .any(|(_, entry)| entry.and_then(|e| e.mode) == Some(SealMode::Tpm))
    }

    /// Returns the seal modes of the entries after `index`, in order.
    pub fn modes_after(&self, index: u64) -> Vec<Option<SealMode>> {
        self.entries_from(index + 1)
            .map(|(_, entry)| entry.and_then(|e| e.mode))
            .collect()
    }
}

/// Reads the stored fields of the entry line `line` (without its `\n`).
fn entry_info(index: u64, line: &[u8]) -> Option<EntryInfo> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::crypto::{pcr_extend, sha256, HmacKey, ZERO32};
    use crate::chain::entry::{append_sealed_line, DecisionEntry};
    use crate::chain::gostr::GoEscapes;
    use crate::chain::gotime::GoTime;

    const SECRET: &[u8] = b"snapshot test secret";

    /// Four entries (the third in TPM mode, signed with nonsense) with a
    /// junk line, a blank line and a CRLF line between them.
    fn chain_with_junk() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions_sealed.jsonl");
        let hmac = HmacKey::new(SECRET);
        let mut out = Vec::new();
        let (mut previous, mut pcr) = (crate::chain::entry::GENESIS.to_owned(), ZERO32);
        for i in 0..4u64 {
            let entry = DecisionEntry {
                id: format!("DEC-{i}"),
                timestamp: GoTime::parse_json_token(b"\"2026-12-04T10:00:00Z\"").unwrap(),
                action: "ingest".into(),
                decision: "allow".into(),
                reason: format!("decision {i}"),
                previous_hash: previous.clone(),
                ..DecisionEntry::default()
            };
            let mut json = Vec::new();
            entry.append_go_json(&mut json, GoEscapes::Go119).unwrap();
            let hash = sha256(&json);
            pcr = pcr_extend(&pcr, &hash);
            let mode = if i == 2 {
                SealMode::Tpm
            } else {
                SealMode::Software
            };
            let signature = hex::encode(hmac.sign(&hash));
            append_sealed_line(&mut out, &json, &hash, &signature, &pcr, mode, i as i64);
            previous = hex::encode(hash);
            match i {
                0 => out.extend_from_slice(b"not json at all\n"),
                1 => out.extend_from_slice(b"\n"),
                _ => {}
            }
        }
        std::fs::write(&path, out).unwrap();
        (dir, path)
    }

    #[test]
    fn one_pass_agrees_with_single_reads() {
        let (_dir, path) = chain_with_junk();
        let chain = ChainSnapshot::load(&path, VerifyKeys::new(Some(SECRET))).unwrap();
        assert_eq!(chain.entries(), 4);
        let single: Vec<_> = (0..4).map(|i| chain.entry(i)).collect();
        assert!(single.iter().all(Option::is_some));
        let pass: Vec<_> = chain.entries_from(0).map(|(_, e)| e).collect();
        assert_eq!(pass, single);
        let tail: Vec<_> = chain.entries_from(2).map(|(i, _)| i).collect();
        assert_eq!(tail, vec![2, 3]);

        let pcr1 = single[1].as_ref().unwrap().pcr.unwrap();
        assert_eq!(chain.last_index_with_pcr(&pcr1), Some(1));
        assert_eq!(chain.last_index_with_pcr(&ZERO32), None);
        assert!(chain.has_tpm_entry());
        assert_eq!(
            chain.modes_after(0),
            vec![
                Some(SealMode::Software),
                Some(SealMode::Tpm),
                Some(SealMode::Software)
            ]
        );
        assert!(chain.ends_with_newline());
    }

    #[test]
    fn bytes_appended_after_the_snapshot_are_ignored() {
        let (_dir, path) = chain_with_junk();
        let chain = ChainSnapshot::load(&path, VerifyKeys::new(Some(SECRET))).unwrap();
        let head = chain.head().unwrap();
        // A writer appends a partial line after the snapshot was taken.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, b"{\"entry\":").unwrap();
        assert!(chain.ends_with_newline());
        assert_eq!(chain.head(), Some(head));
        assert_eq!(chain.modes_after(3), Vec::<Option<SealMode>>::new());
    }
}
