//! The verification report: SEC-006's JSON form and a summary for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::finding::{Finding, FindingKind, Severity};
use super::line::{is_invisible, printable};

/// The last entry in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    pub index: u64,
    pub hash: String,
    pub pcr_value: String,
}

/// A run of entries between PCR restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub first_index: u64,
    pub last_index: u64,
}

/// One child's subtree after a fork.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Branch {
    pub parent_index: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub verifies: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub file: String,
    pub entries: u64,
    pub lines: u64,
    pub valid: bool,
    pub findings: Vec<Finding>,
    pub head: Option<Head>,
    pub segments: Vec<Segment>,
    pub branches: Vec<Branch>,
}

/// Consecutive findings of one kind beyond this many are summarised in text output.
const RUN_SHOWN: usize = 3;
const RUN_LIMIT: usize = 6;

impl Report {
    pub fn to_json(&self) -> String {
        match serde_json::to_string_pretty(self) {
            Ok(s) => escape_json_invisible(&s),
            // Serializing plain strings and numbers cannot fail.
            Err(e) => format!("{{\"error\":\"report serialization failed: {e}\"}}"),
        }
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn counts_by_kind(&self) -> BTreeMap<(std::cmp::Reverse<Severity>, FindingKind), usize> {
        let mut counts = BTreeMap::new();
        for f in &self.findings {
            *counts
                .entry((std::cmp::Reverse(f.severity), f.kind))
                .or_insert(0) += 1;
        }
        counts
    }

    /// Formats the summary for people: a verdict line, counts by kind, then
    /// each finding with its place. Long runs of one kind are shortened.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let errors = self.count(Severity::Error);
        let warnings = self.count(Severity::Warning);
        let infos = self.count(Severity::Info);
        let verdict = if self.valid { "VALID" } else { "INVALID" };
        let _ = writeln!(
            out,
            "{verdict}: {} — {} in {}; {}, {}, {}",
            printable(&self.file),
            plural(self.entries as usize, "entry", "entries"),
            plural(self.lines as usize, "line", "lines"),
            plural(errors, "error", "errors"),
            plural(warnings, "warning", "warnings"),
            plural(infos, "note", "notes"),
        );
        if let Some(head) = &self.head {
            let _ = writeln!(
                out,
                "head: entry {} hash {} pcr {}",
                head.index, head.hash, head.pcr_value
            );
        }
        if self.segments.len() > 1 {
            let list: Vec<String> = self
                .segments
                .iter()
                .map(|s| format!("{}..{}", s.first_index, s.last_index))
                .collect();
            let _ = writeln!(out, "PCR segments: {}", list.join(", "));
        }
        if !self.branches.is_empty() {
            for b in &self.branches {
                let _ = writeln!(
                    out,
                    "branch after entry {}: entries {}..{} {}",
                    b.parent_index,
                    b.first_index,
                    b.last_index,
                    if b.verifies {
                        "verifies"
                    } else {
                        "does not verify"
                    }
                );
            }
        }
        if !self.findings.is_empty() {
            out.push_str("\nfindings by kind:\n");
            for ((severity, kind), n) in self.counts_by_kind() {
                let _ = writeln!(
                    out,
                    "  {:<24} {:<8} {n}",
                    kind.as_str(),
                    severity.0.as_str()
                );
            }
            out.push('\n');
        }
        let mut i = 0;
        while i < self.findings.len() {
            let kind = self.findings[i].kind;
            let run = self.findings[i..]
                .iter()
                .take_while(|f| f.kind == kind)
                .count();
            let shown = if run >= RUN_LIMIT { RUN_SHOWN } else { run };
            for f in &self.findings[i..i + shown] {
                write_finding(&mut out, f);
            }
            if shown < run {
                let rest = &self.findings[i + shown..i + run];
                let first = rest.first().and_then(|f| f.line);
                let last = rest.last().and_then(|f| f.line);
                let place = match (first, last) {
                    (Some(a), Some(b)) => format!(" on lines {a}..{b}"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  ... and {} more {} findings{place}",
                    run - shown,
                    kind.as_str()
                );
            }
            i += run;
        }
        out
    }
}

/// Rewrites characters that must not reach a terminal raw (DEL, C1
/// controls, bidi and zero-width characters) as `\uXXXX` escapes. serde_json
/// escapes only C0 controls, and such characters occur only inside strings,
/// where the escape means the same character.
pub fn escape_json_invisible(json: &str) -> String {
    if !json.chars().any(is_invisible) {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_invisible(c) && c != '\n' {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{:04x}", unit);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn write_finding(out: &mut String, f: &Finding) {
    let mut place = String::new();
    if let Some(line) = f.line {
        let _ = write!(place, "line {line}");
    }
    if let Some(index) = f.index {
        if !place.is_empty() {
            place.push_str(", ");
        }
        let _ = write!(place, "entry {index}");
    }
    if place.is_empty() {
        place.push_str("chain");
    }
    let _ = writeln!(
        out,
        "{:<7} {} [{place}]: {}",
        f.severity.as_str(),
        f.kind.as_str(),
        printable(&f.message)
    );
    if let (Some(e), Some(a)) = (&f.expected, &f.actual) {
        let _ = writeln!(
            out,
            "        expected {}\n        actual   {}",
            printable(e),
            printable(a)
        );
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
