//! Comparing a PCR value read from the TPM (directly or through a quote) with the chain.

use crate::chain::crypto::ZERO32;
use crate::chain::entry::{hex32, SealMode};
use crate::chain::finding::{Finding, FindingKind, Severity};

use super::snapshot::ChainSnapshot;

/// The caveat that goes with every "anchored" result.
pub const ANCHOR_LIMIT: &str = "this proves that the TPM's PCR equals the chain head's pcr_value, so no entry was cut from the end since the last extension; it does not prove that nobody with root reset the PCR (resettable at locality 0) and replayed the extensions";

/// The relation between the TPM's PCR and the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// The PCR equals the head's `pcr_value` (index `head`), or is zero on an empty chain.
    Anchored { head: Option<u64> },
    /// The PCR equals the `pcr_value` of entry `index`, which is not the head.
    Behind {
        index: u64,
        head: u64,
        /// True when every entry after `index` is a software entry, which never extends the TPM.
        only_software_after: bool,
    },
    /// The PCR equals no entry's `pcr_value`.
    Unrelated,
}

/// Compares `pcr` with the stored `pcr_value`s of the chain.
pub fn compare(pcr: &[u8; 32], chain: &ChainSnapshot) -> Anchor {
    let Some(head) = chain.entries().checked_sub(1) else {
        return if *pcr == ZERO32 {
            Anchor::Anchored { head: None }
        } else {
            Anchor::Unrelated
        };
    };
    if chain.entry(head).and_then(|e| e.pcr).as_ref() == Some(pcr) {
        return Anchor::Anchored { head: Some(head) };
    }
    match chain.last_index_with_pcr(pcr) {
        Some(index) => Anchor::Behind {
            index,
            head,
            only_software_after: chain
                .modes_after(index)
                .iter()
                .all(|mode| *mode == Some(SealMode::Software)),
        },
        None => Anchor::Unrelated,
    }
}

/// Returns the finding for `anchor`, or `None` when the PCR is the head's.
///
/// `source` names where the PCR value came from, e.g. "a quote" or "a PCR read".
pub fn finding(
    anchor: &Anchor,
    pcr: &[u8; 32],
    pcr_index: u8,
    chain: &ChainSnapshot,
    source: &str,
) -> Option<Finding> {
    let head_pcr = chain
        .head()
        .and_then(|e| e.pcr)
        .map_or_else(|| "(empty chain)".to_owned(), |p| hex32(&p));
    match anchor {
        Anchor::Anchored { .. } => None,
        Anchor::Behind {
            index,
            head,
            only_software_after,
        } => {
            let severity = if *only_software_after {
                Severity::Warning
            } else {
                Severity::Error
            };
            let reason = if *only_software_after {
                "they are all software entries, which never extend the TPM"
            } else {
                "a tpm entry among them should have extended it: the entries were appended without the TPM, or the PCR was reset and replayed up to entry"
            };
            let message = if *only_software_after {
                format!("PCR {pcr_index} (from {source}) equals the pcr_value of entry {index}, not of the head (entry {head}): entries after {index} were never extended into the TPM; {reason}")
            } else {
                format!("PCR {pcr_index} (from {source}) equals the pcr_value of entry {index}, not of the head (entry {head}): entries after {index} were never extended into the TPM; {reason} {index}")
            };
            Some(
                Finding::new(FindingKind::AnchorMismatch, message)
                    .severity(severity)
                    .values(head_pcr, hex32(pcr)),
            )
        }
        Anchor::Unrelated if chain.entries() == 0 => Some(
            Finding::new(
                FindingKind::AnchorMismatch,
                format!(
                    "the chain is empty, so it has no head to compare, but PCR {pcr_index} (from {source}) is {}, not zero: something other than this chain extended it (another program, or seals of another chain through the same PCR)",
                    hex32(pcr)
                ),
            )
            .values(head_pcr, hex32(pcr)),
        ),
        Anchor::Unrelated if !chain.has_tpm_entry() => {
            let value = if *pcr == ZERO32 {
                "zero".to_owned()
            } else {
                hex32(pcr)
            };
            Some(
                Finding::new(
                    FindingKind::AnchorMismatch,
                    format!(
                        "no entry of this chain was ever extended into this TPM: all {} entries are software entries, whose pcr_value only simulates the PCR, so a TPM PCR cannot anchor this chain (PCR {pcr_index} from {source} is {value}); seal in TPM mode (with --new-segment) to start anchoring it",
                        chain.entries()
                    ),
                )
                .values(head_pcr, hex32(pcr)),
            )
        }
        Anchor::Unrelated => {
            let cause = if *pcr == ZERO32 {
                "it is zero: the TPM restarted or the PCR was reset since the last seal"
            } else {
                "it equals no entry's pcr_value: the end of the chain was cut, the chain was replaced, or another program extended the PCR"
            };
            Some(
                Finding::new(
                    FindingKind::AnchorMismatch,
                    format!(
                        "PCR {pcr_index} (from {source}) is not the head's pcr_value and {cause}"
                    ),
                )
                .values(head_pcr, hex32(pcr)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::chain::crypto::HmacKey;
    use crate::chain::verify::VerifyKeys;
    use crate::seal::{seal, ChainLock, NewEntry, SealOptions, Signer};

    const SECRET: &[u8] = b"anchor test secret";

    fn software_chain(entries: usize) -> (tempfile::TempDir, ChainSnapshot) {
        let dir = tempfile::tempdir().unwrap();
        let chain = dir.path().join("decisions_sealed.jsonl");
        let lock = ChainLock::acquire(&chain, Duration::from_secs(1), |_| {}).unwrap();
        let keys = |_: &std::path::Path| Ok(VerifyKeys::new(Some(SECRET)));
        for i in 0..entries {
            let entry = NewEntry {
                action: "ingest".into(),
                decision: "allow".into(),
                reason: format!("decision {i}"),
                ..NewEntry::default()
            };
            let signer = Signer::Software(HmacKey::new(SECRET));
            seal(
                &chain,
                &lock,
                &entry,
                &signer,
                &SealOptions::default(),
                &keys,
            )
            .unwrap();
        }
        if entries == 0 {
            crate::seal::write::create_chain_file(&chain).unwrap();
        }
        let snapshot = ChainSnapshot::load(&chain, VerifyKeys::new(Some(SECRET))).unwrap();
        (dir, snapshot)
    }

    #[test]
    fn head_pcr_is_anchored() {
        let (_dir, chain) = software_chain(3);
        let head = chain.head().unwrap().pcr.unwrap();
        assert_eq!(compare(&head, &chain), Anchor::Anchored { head: Some(2) });
        assert!(finding(&compare(&head, &chain), &head, 23, &chain, "a test").is_none());
    }

    #[test]
    fn earlier_pcr_before_software_entries_warns() {
        let (_dir, chain) = software_chain(3);
        let first = chain.entry(0).unwrap().pcr.unwrap();
        let relation = compare(&first, &chain);
        assert_eq!(
            relation,
            Anchor::Behind {
                index: 0,
                head: 2,
                only_software_after: true
            }
        );
        let found = finding(&relation, &first, 23, &chain, "a test").unwrap();
        assert_eq!(found.kind, FindingKind::AnchorMismatch);
        assert_eq!(found.severity, Severity::Warning);
        assert!(found
            .message
            .contains("entries after 0 were never extended"));
    }

    #[test]
    fn unknown_pcr_is_error() {
        let (_dir, chain) = software_chain(2);
        let other = [7u8; 32];
        assert_eq!(compare(&other, &chain), Anchor::Unrelated);
        let found = finding(&Anchor::Unrelated, &other, 23, &chain, "a test").unwrap();
        assert_eq!(found.severity, Severity::Error);
    }

    #[test]
    fn software_only_chain_explained() {
        let (_dir, chain) = software_chain(2);
        for pcr in [ZERO32, [7u8; 32]] {
            let found = finding(&Anchor::Unrelated, &pcr, 23, &chain, "a test").unwrap();
            assert_eq!(found.severity, Severity::Error);
            assert!(
                found
                    .message
                    .contains("no entry of this chain was ever extended"),
                "{}",
                found.message
            );
            assert!(!found.message.contains("cut"), "{}", found.message);
        }
    }

    #[test]
    fn empty_chain_nonzero_pcr_explained() {
        let (_dir, chain) = software_chain(0);
        let found = finding(&Anchor::Unrelated, &[7u8; 32], 23, &chain, "a test").unwrap();
        assert!(
            found.message.contains("the chain is empty"),
            "{}",
            found.message
        );
        assert!(found.message.contains("not zero"), "{}", found.message);
        assert!(!found.message.contains("cut"), "{}", found.message);
    }

    #[test]
    fn empty_chain_needs_zero_pcr() {
        let (_dir, chain) = software_chain(0);
        assert_eq!(compare(&ZERO32, &chain), Anchor::Anchored { head: None });
        assert_eq!(compare(&[1u8; 32], &chain), Anchor::Unrelated);
    }

    #[test]
    fn software_seals_continue_head_pcr() {
        let (_dir, chain) = software_chain(3);
        for index in 1..3 {
            let entry = chain.entry(index).unwrap();
            let before = chain.entry(index - 1).unwrap();
            let expected =
                crate::chain::crypto::pcr_extend(&before.pcr.unwrap(), &entry.hash.unwrap());
            assert_eq!(entry.pcr, Some(expected));
            assert_eq!(entry.chain_idx, Some(index as i64));
        }
        assert!(chain.report.valid);
    }
}
