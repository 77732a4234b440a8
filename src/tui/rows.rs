//! Reading and decoding the lines on screen, on demand, from the chain file.

use std::collections::HashMap;
use std::path::Path;

use crate::chain::crypto::sha256;
use crate::chain::entry::{decode_string, fold_member_key, hex32, DecisionEntry};
use crate::chain::json::{Member, Scan, Scanner, ValueKind};
use crate::chain::verify::LineSource;
use crate::verify_file::FileSource;

/// Raw line bytes kept for the detail pane; longer lines are cut here.
const RAW_LIMIT: usize = 16 * 1024;

/// Bytes kept of a line that holds no entry; the detail pane says how long the rest is.
pub const LINE_TEXT_LIMIT: usize = 4 * 1024;

/// The start of a line that holds no entry (a malformed line, crash residue).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineText {
    pub offset: u64,
    /// The first [`LINE_TEXT_LIMIT`] bytes, invalid UTF-8 replaced; unsanitized.
    pub text: String,
    /// Length of the whole line in bytes, without its newline.
    pub len: u64,
}

/// Reads the start of the lines at `offsets`, keeping at most [`LINE_TEXT_LIMIT`]
/// bytes of each. Lines that cannot be read (the file shrank) are left out.
pub fn read_line_texts(path: &Path, offsets: &[u64]) -> Vec<LineText> {
    use std::os::unix::fs::FileExt;
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut texts = Vec::with_capacity(offsets.len());
    let mut block = vec![0u8; 64 * 1024];
    for &offset in offsets {
        let mut kept = Vec::new();
        let mut len = 0u64;
        let mut at = offset;
        let complete = loop {
            let Ok(n) = file.read_at(&mut block, at) else {
                break false;
            };
            if n == 0 {
                break true;
            }
            let end = memchr::memchr(b'\n', &block[..n]).unwrap_or(n);
            let room = LINE_TEXT_LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&block[..end.min(room)]);
            len += end as u64;
            if end < n {
                break true;
            }
            at += n as u64;
        };
        if complete {
            texts.push(LineText {
                offset,
                text: String::from_utf8_lossy(&kept).into_owned(),
                len,
            });
        }
    }
    texts
}

/// One entry's line as the view shows it. Values are the decoded JSON
/// strings (unsanitized; the view sanitizes them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub index: u64,
    pub offset: u64,
    /// The entry's members in file order: key as written, value decoded.
    pub fields: Vec<(String, String)>,
    pub entry: DecisionEntry,
    /// The timestamp text as written in the line.
    pub timestamp: String,
    /// The timestamp as Go parses it, in nanoseconds since the Unix epoch.
    pub unix_nanos: Option<i128>,
    pub hash: String,
    /// SHA-256 of the entry's bytes as they stand in the line.
    pub computed_hash: String,
    pub signature: String,
    pub pcr_value: String,
    pub seal_mode: String,
    pub chain_idx: String,
    /// The line as text (invalid UTF-8 replaced), cut at 16 KiB.
    pub raw: String,
    pub raw_cut: bool,
    /// Why the line could not be decoded, when it could not.
    pub error: Option<String>,
}

fn member_text(line: &[u8], member: &Member) -> String {
    let token = &line[member.value.clone()];
    if member.kind == ValueKind::String {
        decode_string(token, member.escaped)
    } else {
        String::from_utf8_lossy(token).into_owned()
    }
}

/// Decodes one record (the bytes of an entry's line from its record start).
pub fn decode_row(
    index: u64,
    offset: u64,
    line: &[u8],
    scanner: &mut Scanner,
    scan: &mut Scan,
) -> Row {
    let mut row = Row {
        index,
        offset,
        raw_cut: line.len() > RAW_LIMIT,
        raw: String::from_utf8_lossy(&line[..line.len().min(RAW_LIMIT)]).into_owned(),
        ..Row::default()
    };
    if let Err(e) = scanner.scan(line, scan) {
        row.error = Some(format!("the line is not valid JSON: {e:?}"));
        return row;
    }
    let mut entry_pos = None;
    for (pos, member) in scan.top.iter().enumerate() {
        let key = fold_member_key(line, member);
        match key.as_str() {
            "entry" if member.kind == ValueKind::Object => {
                entry_pos = Some(pos);
                row.computed_hash = hex32(&sha256(&line[member.value.clone()]));
            }
            "hash" => row.hash = member_text(line, member),
            "signature" => row.signature = member_text(line, member),
            "pcr_value" => row.pcr_value = member_text(line, member),
            "seal_mode" => row.seal_mode = member_text(line, member),
            "chain_idx" => row.chain_idx = member_text(line, member),
            _ => {}
        }
    }
    let Some(entry_pos) = entry_pos else {
        row.error = Some("the line has no entry object".to_owned());
        return row;
    };
    let members = || {
        scan.entry
            .iter()
            .filter(move |(p, _)| *p == entry_pos)
            .map(|(_, m)| m)
    };
    for member in members() {
        let key = crate::chain::gostr::unquote(&line[member.key.clone()]);
        let value = member_text(line, member);
        if fold_member_key(line, member) == "timestamp" {
            row.timestamp = value.clone();
        }
        row.fields.push((key, value));
    }
    let (entry, notes) = DecisionEntry::decode(line, members());
    if let Some(err) = notes.error {
        row.error = Some(err.to_string());
    } else {
        row.unix_nanos = Some(entry.timestamp.unix_nanos());
    }
    row.entry = entry;
    row
}

/// Reads and decodes the entries at `wanted` (index, record offset).
/// Entries that cannot be read (the file shrank) are left out.
pub fn read_rows(path: &Path, wanted: &[(u64, u64)]) -> Vec<Row> {
    let Ok(source) = FileSource::open(path) else {
        return Vec::new();
    };
    let mut scanner = Scanner::new();
    let mut scan = Scan::default();
    wanted
        .iter()
        .filter_map(|&(index, offset)| {
            let line = source.record_at(offset)?;
            Some(decode_row(index, offset, &line, &mut scanner, &mut scan))
        })
        .collect()
}

/// Finds the entries whose previous_hash does not name the entry before them:
/// each maps to the index of the entry it names, or `None` when it names no
/// entry. `offsets` are the record offsets of all entries.
///
/// NOTE: this reads and decodes every entry, so the view asks for it only when
/// the report has forks, branches or broken links.
pub fn read_links(path: &Path, offsets: &[u64]) -> HashMap<u64, Option<u64>> {
    let mut links = HashMap::new();
    let Ok(source) = FileSource::open(path) else {
        return links;
    };
    let mut scanner = Scanner::new();
    let mut scan = Scan::default();
    let mut by_hash: HashMap<String, u64> = HashMap::with_capacity(offsets.len());
    let mut previous: Vec<String> = Vec::with_capacity(offsets.len());
    let mut hashes: Vec<String> = Vec::with_capacity(offsets.len());
    for (index, &offset) in offsets.iter().enumerate() {
        let index = index as u64;
        let Some(line) = source.record_at(offset) else {
            break;
        };
        let row = decode_row(index, offset, &line, &mut scanner, &mut scan);
        // The first entry with a hash is the one a child links to, as in the engine.
        let hash = row.hash.to_ascii_lowercase();
        by_hash.entry(hash.clone()).or_insert(index);
        hashes.push(hash);
        previous.push(row.entry.previous_hash.to_ascii_lowercase());
    }
    for (index, prev) in previous.iter().enumerate().skip(1) {
        let index = index as u64;
        let above = hashes.get(index as usize - 1);
        if above == Some(prev) || prev.bytes().all(|b| b == b'0') {
            continue;
        }
        let parent = by_hash.get(prev).copied().filter(|&p| p < index);
        links.insert(index, parent);
    }
    links
}
