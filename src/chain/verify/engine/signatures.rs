//! Signature, key and seal-mode findings.

use crate::chain::entry::SealMode;
use crate::chain::finding::{Finding, FindingKind, Severity};
use crate::chain::line::{EntryFacts, SignatureCheck};

use super::Engine;

impl Engine {
    pub(super) fn signature_findings(
        &mut self,
        facts: &EntryFacts,
        base_mode: Option<SealMode>,
        index: u64,
        line_no: u64,
        offset: u64,
    ) {
        let at = |f: Finding| f.at(Some(index), line_no, offset);
        if facts.dev_key_valid && !self.dev_key_reported {
            self.dev_key_reported = true;
            self.push_finding(Finding::new(
                FindingKind::DefaultDevKey,
                format!(
                    "software signatures verify under the public development key \"{}\", so anyone can forge them (first at entry {index})",
                    crate::chain::entry::DEV_KEY
                ),
            ));
        }
        match facts.signature {
            SignatureCheck::Valid | SignatureCheck::NotChecked => {}
            SignatureCheck::DevKeyOnly => {
                self.push_finding(at(Finding::new(
                    FindingKind::SignatureInvalid,
                    "the signature does not verify under the configured secret; it verifies only under the public development key".to_owned(),
                )));
            }
            SignatureCheck::EmptyKeyOnly => {
                self.push_finding(at(Finding::new(
                    FindingKind::SignatureInvalid,
                    "the signature does not verify under the configured secret; it verifies only under an empty HMAC key, which the reference logger uses when it finds a TPM device but cannot sign with it, so anyone can forge it".to_owned(),
                )));
            }
            SignatureCheck::Invalid => {
                let what = match facts.seal_mode {
                    Some(SealMode::Tpm) => {
                        "the TPM signature does not verify under any known TPM public key"
                    }
                    _ => "the HMAC signature does not verify under the configured secret",
                };
                self.push_finding(at(Finding::new(
                    FindingKind::SignatureInvalid,
                    what.to_owned(),
                )));
            }
            SignatureCheck::TpmUnverifiable => {
                self.push_finding(at(Finding::new(
                    FindingKind::SignatureUnverifiable,
                    "a tpm entry with no TPM public key to check it against (give --tpm-pubkey or --trusted-keys); otherwise a forger would only need to write \"seal_mode\":\"tpm\"".to_owned(),
                )));
            }
            SignatureCheck::TpmKey(k) => self.tpm_key_findings(k, index, line_no, offset),
        }

        // seal_mode along the chain.
        if let (Some(before), Some(mode)) = (base_mode, facts.seal_mode) {
            if before != mode {
                let downgrade = before == SealMode::Tpm
                    && mode == SealMode::Software
                    && facts.dev_key_valid
                    && (facts.signature == SignatureCheck::DevKeyOnly
                        || (facts.signature == SignatureCheck::Valid
                            && self.keys.secret_is_dev_key));
                let f = if downgrade {
                    Finding::new(
                        FindingKind::SealModeChanged,
                        "seal_mode changes from tpm to software and the entry verifies only under the public development key: a downgrade anyone could forge".to_owned(),
                    )
                    .severity(Severity::Error)
                } else {
                    Finding::new(
                        FindingKind::SealModeChanged,
                        format!("seal_mode changes from {before} to {mode}"),
                    )
                };
                self.push_finding(at(f.values(before.as_str(), mode.as_str())));
            }
        }
    }

    pub(super) fn tpm_key_findings(&mut self, k: usize, index: u64, line_no: u64, offset: u64) {
        // With pins given, only a pinned key may sign: a key merely found
        // beside the chain can be replaced by whoever rewrote the chain.
        if !self.keys.pins.is_empty() && !self.keys.tpm[k].pinned {
            let expected = self.keys.pins.join(", ");
            let actual = self.keys.tpm[k].fingerprint.clone();
            self.push_finding(
                Finding::new(
                    FindingKind::KeyChanged,
                    format!(
                        "signed by TPM key {actual} ({}), which is not pinned: the chain may have been re-signed with another key",
                        self.keys.tpm[k].source
                    ),
                )
                .values(expected, actual)
                .at(Some(index), line_no, offset),
            );
            return;
        }
        let pinned: Vec<usize> = (0..self.keys.tpm.len())
            .filter(|&i| self.keys.tpm[i].pinned)
            .collect();
        let chain_key = match self.chain_key {
            Some(c) => c,
            None => {
                let c = pinned.first().copied().unwrap_or(k);
                self.chain_key = Some(c);
                c
            }
        };
        if k != chain_key {
            let expected = self.keys.tpm[chain_key].fingerprint.clone();
            let actual = self.keys.tpm[k].fingerprint.clone();
            self.push_finding(
                Finding::new(
                    FindingKind::KeyChanged,
                    format!(
                        "signed by TPM key {actual} ({}), not the chain's {} key: the TPM was cleared, or another machine signed",
                        self.keys.tpm[k].source,
                        if self.keys.tpm[chain_key].pinned { "pinned" } else { "first" }
                    ),
                )
                .values(expected, actual)
                .at(Some(index), line_no, offset),
            );
        } else if !self.keys.tpm[k].pinned && !self.unpinned_reported {
            self.unpinned_reported = true;
            self.push_finding(Finding::new(
                FindingKind::KeyUnpinned,
                format!(
                    "TPM signatures verify only against the public key {} from {}, which whoever can write the chain can replace; pin its fingerprint with --trusted-keys (a file outside the chain's directory) or verify against the live TPM with --anchor",
                    self.keys.tpm[k].fingerprint, self.keys.tpm[k].source
                ),
            ));
        }
    }
}
