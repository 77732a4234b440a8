//! Verification of a TPM2_Quote without a TPM, reported check by check.

use std::fmt;

use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

use super::pcr::{describe_pcrs, pcr_digest, selected_pcrs};
use super::quote::{ClockInfo, QuoteAttest};
use super::signature::{verify_prehash, TpmSignature};

/// Outcome of one quote check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The check passed.
    Passed,
    /// The check failed, with the reason.
    Failed(String),
    /// The check could not run, with the reason (the structure did not parse).
    Skipped(String),
}

impl Check {
    /// Returns whether the check passed.
    pub fn is_passed(&self) -> bool {
        matches!(self, Check::Passed)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Passed => f.write_str("passed"),
            Check::Failed(reason) => write!(f, "failed: {reason}"),
            Check::Skipped(reason) => write!(f, "not checked: {reason}"),
        }
    }
}

/// Result of [`verify_quote`]: each check on its own, plus the parsed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteCheck {
    /// The attest bytes parse as a TPMS_ATTEST quote.
    pub structure: Check,
    /// The signature verifies over SHA-256 of the attest bytes under the AK.
    pub signature: Check,
    /// `extraData` equals the expected nonce.
    pub nonce: Check,
    /// The quoted PCR selection equals the requested one.
    pub selection: Check,
    /// `pcrDigest` equals SHA-256 of the given PCR values.
    pub pcr_digest: Check,
    /// The parsed quote, when `structure` passed.
    pub attest: Option<QuoteAttest>,
}

impl QuoteCheck {
    /// Returns whether every check passed.
    pub fn is_valid(&self) -> bool {
        self.checks().iter().all(|(_, check)| check.is_passed())
    }

    /// Returns every check with a short name, in the order a UI lists them.
    pub fn checks(&self) -> [(&'static str, &Check); 5] {
        [
            ("structure", &self.structure),
            ("signature", &self.signature),
            ("nonce", &self.nonce),
            ("PCR selection", &self.selection),
            ("PCR digest", &self.pcr_digest),
        ]
    }

    /// Returns `clockInfo` of the parsed quote.
    pub fn clock_info(&self) -> Option<ClockInfo> {
        self.attest.as_ref().map(|attest| attest.clock_info)
    }

    /// Returns `firmwareVersion` of the parsed quote.
    pub fn firmware_version(&self) -> Option<u64> {
        self.attest.as_ref().map(|attest| attest.firmware_version)
    }
}

/// Verifies a TPM2_Quote without a TPM.
///
/// `attest_bytes` is the marshalled TPMS_ATTEST, `sig_bytes` the marshalled
/// TPMT_SIGNATURE made by the attestation key `ak`. `pcr_values` are the
/// SHA-256 PCR values in selection order (see [`selected_pcrs`]), and
/// `expected_selection` the bank and PCR indices that were requested.
/// The signature is checked even when the structure does not parse, because
/// it covers the raw bytes.
pub fn verify_quote(
    ak: &VerifyingKey,
    attest_bytes: &[u8],
    sig_bytes: &[u8],
    expected_nonce: &[u8],
    pcr_values: &[[u8; 32]],
    expected_selection: (u16, &[u32]),
) -> QuoteCheck {
    let signature = check_signature(ak, attest_bytes, sig_bytes);

    let attest = match QuoteAttest::parse(attest_bytes) {
        Ok(attest) => attest,
        Err(error) => {
            let skipped = || Check::Skipped("the quote structure did not parse".to_string());
            return QuoteCheck {
                structure: Check::Failed(error.to_string()),
                signature,
                nonce: skipped(),
                selection: skipped(),
                pcr_digest: skipped(),
                attest: None,
            };
        }
    };

    QuoteCheck {
        structure: Check::Passed,
        signature,
        nonce: check_nonce(&attest, expected_nonce),
        selection: check_selection(&attest, expected_selection),
        pcr_digest: check_pcr_digest(&attest, pcr_values),
        attest: Some(attest),
    }
}

fn check_signature(ak: &VerifyingKey, attest_bytes: &[u8], sig_bytes: &[u8]) -> Check {
    let signature = match TpmSignature::parse(sig_bytes) {
        Ok(signature) => signature,
        Err(error) => return Check::Failed(error.to_string()),
    };
    let digest: [u8; 32] = Sha256::digest(attest_bytes).into();
    match verify_prehash(ak, &digest, &signature) {
        Ok(()) => Check::Passed,
        Err(error) => Check::Failed(format!(
            "{error}: the quote was altered or signed by another key"
        )),
    }
}

fn check_nonce(attest: &QuoteAttest, expected_nonce: &[u8]) -> Check {
    if attest.extra_data == expected_nonce {
        Check::Passed
    } else {
        Check::Failed(format!(
            "quote nonce is {}, expected {}: a replayed or foreign quote",
            hex_or_empty(&attest.extra_data),
            hex_or_empty(expected_nonce)
        ))
    }
}

fn check_selection(attest: &QuoteAttest, expected: (u16, &[u32])) -> Check {
    let (hash, indices) = expected;
    let mut expected_pcrs: Vec<(u16, u32)> = indices.iter().map(|&pcr| (hash, pcr)).collect();
    expected_pcrs.sort_unstable();
    expected_pcrs.dedup();
    let quoted = selected_pcrs(&attest.pcr_selections);
    if quoted == expected_pcrs {
        Check::Passed
    } else {
        Check::Failed(format!(
            "quote covers {}, expected {}",
            describe_pcrs(&quoted),
            describe_pcrs(&expected_pcrs)
        ))
    }
}

fn check_pcr_digest(attest: &QuoteAttest, pcr_values: &[[u8; 32]]) -> Check {
    let selected = selected_pcrs(&attest.pcr_selections).len();
    if pcr_values.len() != selected {
        return Check::Failed(format!(
            "{} PCR values given, but the quote selects {selected} PCRs",
            pcr_values.len()
        ));
    }
    let computed = pcr_digest(pcr_values);
    if attest.pcr_digest == computed {
        Check::Passed
    } else {
        Check::Failed(format!(
            "quote pcrDigest is {}, SHA-256 of the given PCR values is {}: the PCR values differ from the quoted ones",
            hex_or_empty(&attest.pcr_digest),
            hex::encode(computed)
        ))
    }
}

fn hex_or_empty(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "empty".to_string()
    } else {
        hex::encode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::keys::keys_from_pem;
    use crate::attest::pcr::TPM_ALG_SHA1;
    use crate::attest::quote::QuoteError;
    use crate::attest::signature::TPM_ALG_SHA256;

    const AK_PEM: &str = include_str!("../../tests/fixtures/attest/ak.pem");
    const SIGNING_KEY_PEM: &str = include_str!("../../tests/fixtures/attest/signing_key.pem");
    const QUOTE_MSG: &[u8] = include_bytes!("../../tests/fixtures/attest/quote.msg");
    const QUOTE_SIG: &[u8] = include_bytes!("../../tests/fixtures/attest/quote.sig");
    const QUOTE_PCR: &[u8; 32] = include_bytes!("../../tests/fixtures/attest/quote.pcr");
    const QUOTE_NONCE_HEX: &str = include_str!("../../tests/fixtures/attest/quote.nonce.hex");
    const ENTRY_DIGEST: &[u8; 32] = include_bytes!("../../tests/fixtures/attest/entry.digest");
    const PCR_23: &[u32] = &[23];

    fn ak() -> VerifyingKey {
        keys_from_pem(AK_PEM).unwrap().remove(0)
    }

    fn nonce() -> Vec<u8> {
        hex::decode(QUOTE_NONCE_HEX.trim()).unwrap()
    }

    fn verify_fixture(
        attest: &[u8],
        sig: &[u8],
        nonce: &[u8],
        pcr: [u8; 32],
        pcrs: &[u32],
    ) -> QuoteCheck {
        verify_quote(&ak(), attest, sig, nonce, &[pcr], (TPM_ALG_SHA256, pcrs))
    }

    #[test]
    fn fixture_quote_verifies() {
        let check = verify_fixture(QUOTE_MSG, QUOTE_SIG, &nonce(), *QUOTE_PCR, PCR_23);
        assert!(check.is_valid(), "{check:?}");
        let attest = QuoteAttest::parse(QUOTE_MSG).unwrap();
        assert_eq!(check.clock_info(), Some(attest.clock_info));
        assert_eq!(check.firmware_version(), Some(attest.firmware_version));
    }

    #[test]
    fn fixture_pcr_is_extend_of_entry_digest() {
        // The fixture extended PCR 23 once from zero with the entry digest.
        let mut hasher = Sha256::new();
        hasher.update([0u8; 32]);
        hasher.update(ENTRY_DIGEST);
        let extended: [u8; 32] = hasher.finalize().into();
        assert_eq!(&extended, QUOTE_PCR);
    }

    #[test]
    fn wrong_nonce_fails_nonce_only() {
        let mut wrong = nonce();
        wrong[0] ^= 1;
        let check = verify_fixture(QUOTE_MSG, QUOTE_SIG, &wrong, *QUOTE_PCR, PCR_23);
        assert!(matches!(check.nonce, Check::Failed(_)), "{:?}", check.nonce);
        assert!(check.signature.is_passed());
        assert!(check.selection.is_passed());
        assert!(check.pcr_digest.is_passed());
        assert!(!check.is_valid());
    }

    #[test]
    fn wrong_pcr_value_fails_digest_only() {
        let mut wrong = *QUOTE_PCR;
        wrong[31] ^= 1;
        let check = verify_fixture(QUOTE_MSG, QUOTE_SIG, &nonce(), wrong, PCR_23);
        assert!(
            matches!(check.pcr_digest, Check::Failed(_)),
            "{:?}",
            check.pcr_digest
        );
        assert!(check.signature.is_passed());
        assert!(check.nonce.is_passed());
        assert!(check.selection.is_passed());
    }

    #[test]
    fn wrong_pcr_count_fails_digest() {
        let check = verify_quote(
            &ak(),
            QUOTE_MSG,
            QUOTE_SIG,
            &nonce(),
            &[*QUOTE_PCR, *QUOTE_PCR],
            (TPM_ALG_SHA256, PCR_23),
        );
        let Check::Failed(reason) = &check.pcr_digest else {
            panic!("expected a failed PCR digest, got {:?}", check.pcr_digest);
        };
        assert!(reason.contains("2 PCR values given"), "{reason}");
    }

    #[test]
    fn wrong_selection_fails_selection_only() {
        let check = verify_fixture(QUOTE_MSG, QUOTE_SIG, &nonce(), *QUOTE_PCR, &[16]);
        let Check::Failed(reason) = &check.selection else {
            panic!("expected a failed selection, got {:?}", check.selection);
        };
        assert_eq!(reason, "quote covers sha256:23, expected sha256:16");
        assert!(check.signature.is_passed());
        assert!(check.nonce.is_passed());
        assert!(check.pcr_digest.is_passed());

        let other_bank = verify_quote(
            &ak(),
            QUOTE_MSG,
            QUOTE_SIG,
            &nonce(),
            &[*QUOTE_PCR],
            (TPM_ALG_SHA1, PCR_23),
        );
        assert!(matches!(other_bank.selection, Check::Failed(_)));
    }

    #[test]
    fn truncated_attest_fails_structure_and_signature() {
        let truncated = &QUOTE_MSG[..QUOTE_MSG.len() - 1];
        let check = verify_fixture(truncated, QUOTE_SIG, &nonce(), *QUOTE_PCR, PCR_23);
        assert!(
            matches!(check.structure, Check::Failed(_)),
            "{:?}",
            check.structure
        );
        assert!(
            matches!(check.signature, Check::Failed(_)),
            "{:?}",
            check.signature
        );
        assert!(matches!(check.nonce, Check::Skipped(_)));
        assert!(matches!(check.selection, Check::Skipped(_)));
        assert!(matches!(check.pcr_digest, Check::Skipped(_)));
        assert!(check.attest.is_none());
    }

    #[test]
    fn flipped_signature_fails_signature_only() {
        let mut sig = QUOTE_SIG.to_vec();
        let last = sig.len() - 1;
        sig[last] ^= 0x10;
        let check = verify_fixture(QUOTE_MSG, &sig, &nonce(), *QUOTE_PCR, PCR_23);
        assert!(
            matches!(check.signature, Check::Failed(_)),
            "{:?}",
            check.signature
        );
        assert!(check.structure.is_passed());
        assert!(check.nonce.is_passed());
        assert!(check.selection.is_passed());
        assert!(check.pcr_digest.is_passed());
    }

    #[test]
    fn altered_clock_fails_signature() {
        let mut attest = QuoteAttest::parse(QUOTE_MSG).unwrap();
        attest.clock_info.clock += 1;
        let check = verify_fixture(&attest.marshal(), QUOTE_SIG, &nonce(), *QUOTE_PCR, PCR_23);
        assert!(matches!(check.signature, Check::Failed(_)));
        assert!(check.structure.is_passed());
    }

    #[test]
    fn entry_signing_key_is_not_the_ak() {
        let signing = keys_from_pem(SIGNING_KEY_PEM).unwrap().remove(0);
        let check = verify_quote(
            &signing,
            QUOTE_MSG,
            QUOTE_SIG,
            &nonce(),
            &[*QUOTE_PCR],
            (TPM_ALG_SHA256, PCR_23),
        );
        assert!(matches!(check.signature, Check::Failed(_)));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..QUOTE_MSG.len() {
            let result = QuoteAttest::parse(&QUOTE_MSG[..len]);
            assert!(
                matches!(result, Err(QuoteError::Truncated(_))),
                "length {len}: {result:?}"
            );
            let check = verify_fixture(&QUOTE_MSG[..len], QUOTE_SIG, &nonce(), *QUOTE_PCR, PCR_23);
            assert!(!check.is_valid());
        }
        for len in 0..QUOTE_SIG.len() {
            let check = verify_fixture(QUOTE_MSG, &QUOTE_SIG[..len], &nonce(), *QUOTE_PCR, PCR_23);
            assert!(matches!(check.signature, Check::Failed(_)), "length {len}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next_byte = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        for round in 0..3000 {
            let len = round % 200;
            let mut bytes: Vec<u8> = (0..len).map(|_| next_byte()).collect();
            // Most inputs keep the real header so parsing reaches later fields.
            if round % 4 != 0 && bytes.len() >= 6 {
                bytes[..6].copy_from_slice(&QUOTE_MSG[..6]);
            }
            let _ = QuoteAttest::parse(&bytes);
            let _ = verify_fixture(&bytes, &bytes, &nonce(), *QUOTE_PCR, PCR_23);
        }
        // Every single-byte change of the real quote parses or fails cleanly.
        for index in 0..QUOTE_MSG.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bytes = QUOTE_MSG.to_vec();
                bytes[index] = value;
                let _ = QuoteAttest::parse(&bytes);
            }
        }
    }
}
