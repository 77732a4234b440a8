//! Forks, their branches, and the report.

use crate::chain::crypto;
use crate::chain::finding::{Finding, FindingKind, Severity};
use crate::chain::line;
use crate::chain::report::{Branch, Head, Report, Segment};

use super::{Engine, Fork, DUPLICATE, HAS_ERROR, ROOT};

impl Engine {
    pub(super) fn fork(&mut self, parent: u32, child: u32, line_no: u64, offset: u64) {
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
    pub(super) fn parent_of(&self, index: u32) -> Option<u32> {
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
    pub(super) fn branches(&self) -> Vec<Branch> {
        if self.forks.is_empty() {
            return Vec::new();
        }
        let n = self.name_hashes.len();
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
        if self.name_hashes.is_empty() {
            findings.push(Finding::new(
                FindingKind::EmptyChain,
                "the file holds no entry".to_owned(),
            ));
        }
        // Stable: findings of one line keep the order they were found in.
        findings.sort_by_key(|f| f.offset.unwrap_or(u64::MAX));

        let n = self.name_hashes.len() as u32;
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
