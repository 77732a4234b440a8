//! Search and filters over all entries, run off the view on a blocking thread.

use std::collections::HashMap;
use std::path::Path;

use fuzzy_matcher::skim::SkimMatcherV2;
use fuzzy_matcher::FuzzyMatcher;

use crate::chain::finding::Severity;
use crate::chain::json::{Scan, Scanner};
use crate::chain::verify::LineSource;
use crate::verify_file::FileSource;

use super::rows::{decode_row, Row};

/// What the entry table is narrowed to. Empty parts do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Fuzzy search text over id, reason, operator, incident and event ids.
    pub text: String,
    /// Entries whose worst finding is at least this severe.
    pub severity: Option<Severity>,
    pub decision: Option<String>,
    /// Substring of the action, case-insensitive.
    pub action: Option<String>,
    /// Substring of the operator, case-insensitive.
    pub operator: Option<String>,
}

impl Query {
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
            && self.severity.is_none()
            && self.decision.is_none()
            && self.action.is_none()
            && self.operator.is_none()
    }

    /// True when only the severity filter is set, which needs no disk reads.
    fn needs_rows(&self) -> bool {
        !self.text.is_empty()
            || self.decision.is_some()
            || self.action.is_some()
            || self.operator.is_some()
    }

    /// The fields the fuzzy search looks at, in one string per field.
    pub fn searched_fields(row: &Row) -> [&str; 5] {
        [
            &row.entry.id,
            &row.entry.reason,
            &row.entry.operator,
            &row.entry.incident_id,
            &row.entry.event_id,
        ]
    }

    fn row_matches(&self, row: &Row, matcher: &SkimMatcherV2) -> bool {
        let contains = |field: &str, wanted: &Option<String>| match wanted {
            Some(w) => field.to_lowercase().contains(&w.to_lowercase()),
            None => true,
        };
        if let Some(d) = &self.decision {
            if !row.entry.decision.eq_ignore_ascii_case(d) {
                return false;
            }
        }
        if !contains(&row.entry.action, &self.action)
            || !contains(&row.entry.operator, &self.operator)
        {
            return false;
        }
        if self.text.is_empty() {
            return true;
        }
        Self::searched_fields(row)
            .iter()
            .any(|f| matcher.fuzzy_match(f, &self.text).is_some())
    }
}

/// Indices of the entries that `query` keeps, in file order.
pub fn run_query(
    path: &Path,
    offsets: &[u64],
    worst: &HashMap<u64, Severity>,
    query: &Query,
) -> Vec<u64> {
    let severity_ok = |index: u64| match query.severity {
        Some(min) => worst.get(&index).is_some_and(|s| *s >= min),
        None => true,
    };
    if !query.needs_rows() {
        return (0..offsets.len() as u64)
            .filter(|&i| severity_ok(i))
            .collect();
    }
    let Ok(source) = FileSource::open(path) else {
        return Vec::new();
    };
    let matcher = SkimMatcherV2::default();
    let mut scanner = Scanner::new();
    let mut scan = Scan::default();
    let mut out = Vec::new();
    for (i, &offset) in offsets.iter().enumerate() {
        let index = i as u64;
        if !severity_ok(index) {
            continue;
        }
        let Some(line) = source.record_at(offset) else {
            continue;
        };
        let row = decode_row(index, offset, &line, &mut scanner, &mut scan);
        if query.row_matches(&row, &matcher) {
            out.push(index);
        }
    }
    out
}

/// Returns the index of the entry on 1-based `line`, counting lines from the file's start.
pub fn entry_on_line(path: &Path, offsets: &[u64], line: u64) -> Option<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut seen = 1u64;
    let mut pos = 0u64;
    let mut start = if line == 1 { Some(0) } else { None };
    let mut buf = vec![0u8; 1 << 16];
    while start.is_none() {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        for nl in memchr::memchr_iter(b'\n', &buf[..n]) {
            seen += 1;
            if seen == line {
                start = Some(pos + nl as u64 + 1);
                break;
            }
        }
        pos += n as u64;
    }
    let start = start?;
    // The record may start after residue or a BOM on the same line.
    let i = offsets.partition_point(|&o| o < start);
    let next_line = offsets.get(i)?;
    let end = FileSource::open(path)
        .ok()?
        .record_at(start)
        .map(|r| start + r.len() as u64)?;
    (*next_line <= end).then_some(i as u64)
}
