//! Replaying `pcr_value` and `chain_idx` against each entry's parent.

use crate::chain::crypto::{self, Hash32, ZERO32};
use crate::chain::finding::{Finding, FindingKind};
use crate::chain::line::{self, EntryFacts, StoredIndex};

use super::{Engine, EntryState, IDX_DIFFERS, PCR_DIFFERS};

impl Engine {
    /// Checks `pcr_value` and `chain_idx`; returns the entry's expected values.
    pub(super) fn derived(
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
}
