//! TPMT_SIGNATURE for ECDSA P-256 with SHA-256 (TPM 2.0 Part 2):
//! `sigAlg` u16, `hash` u16, `signatureR` TPM2B, `signatureS` TPM2B, all
//! big-endian. This is the form a tpm-mode chain entry stores as hex and the
//! form `tpm2_sign` writes by default.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use thiserror::Error;

use super::wire::{put_tpm2b, Reader, Truncated};

/// TPM_ALG_ECDSA (TPM 2.0 Part 2).
pub const TPM_ALG_ECDSA: u16 = 0x0018;
/// TPM_ALG_SHA256 (TPM 2.0 Part 2).
pub const TPM_ALG_SHA256: u16 = 0x000B;
/// Size of a P-256 scalar in bytes.
const SCALAR_LEN: usize = 32;

/// Half of an ECDSA signature (`r` or `s`) named in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `signatureR`.
    R,
    /// `signatureS`.
    S,
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Component::R => f.write_str("signatureR"),
            Component::S => f.write_str("signatureS"),
        }
    }
}

/// Error from parsing or verifying a TPMT_SIGNATURE.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SigError {
    /// The signature is not valid hex.
    #[error("signature is not valid hex: {0}")]
    InvalidHex(String),
    /// The bytes end inside a field.
    #[error("TPMT_SIGNATURE is truncated: {0}")]
    Truncated(#[from] Truncated),
    /// `sigAlg` is not TPM_ALG_ECDSA.
    #[error("unsupported signature algorithm 0x{0:04x}: expected ECDSA (0x0018)")]
    UnsupportedAlgorithm(u16),
    /// `hash` is not TPM_ALG_SHA256.
    #[error("unsupported signature hash algorithm 0x{0:04x}: expected SHA-256 (0x000b)")]
    UnsupportedHash(u16),
    /// `signatureR` or `signatureS` is longer than a P-256 scalar.
    #[error("{component} is {size} bytes, more than the 32 bytes of a P-256 scalar")]
    ComponentTooLong {
        /// The offending half.
        component: Component,
        /// Its declared TPM2B size.
        size: usize,
    },
    /// `signatureR` or `signatureS` is zero, which no valid ECDSA signature has.
    #[error("{0} is zero")]
    ComponentZero(Component),
    /// `signatureR` or `signatureS` is not below the P-256 group order.
    #[error("{0} is not below the P-256 group order")]
    ComponentOutOfRange(Component),
    /// Bytes follow the end of the structure.
    #[error("{0} bytes follow the end of the TPMT_SIGNATURE")]
    TrailingBytes(usize),
    /// The signature is well formed but does not match the digest and key.
    #[error("ECDSA signature does not verify under the given public key")]
    Mismatch,
}

/// A parsed ECDSA P-256 / SHA-256 TPMT_SIGNATURE.
///
/// `r` and `s` keep the lengths they were marshalled with (a TPM may omit
/// leading zero bytes, so either may be shorter than 32), which makes
/// [`TpmSignature::marshal`] return the parsed bytes unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmSignature {
    r: Vec<u8>,
    s: Vec<u8>,
}

impl TpmSignature {
    /// Builds a signature from the TPM2B contents of `r` and `s`, as a TPM
    /// returns them (big-endian, at most 32 bytes each, possibly shorter).
    pub fn from_tpm2b(r: &[u8], s: &[u8]) -> Result<Self, SigError> {
        check_component(r, Component::R)?;
        check_component(s, Component::S)?;
        let signature = Self {
            r: r.to_vec(),
            s: s.to_vec(),
        };
        // Rejects values at or above the group order here, so that a value of
        // this type always converts to a p256 signature.
        signature.to_p256()?;
        Ok(signature)
    }

    /// Builds a signature from a p256 signature, with 32-byte `r` and `s`.
    pub fn from_p256(signature: &Signature) -> Self {
        let (r, s) = signature.split_bytes();
        Self {
            r: r.to_vec(),
            s: s.to_vec(),
        }
    }

    /// Parses a marshalled TPMT_SIGNATURE. The whole input must be one
    /// structure: trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, SigError> {
        let mut reader = Reader::new(bytes);

        let algorithm = reader.u16("sigAlg")?;
        if algorithm != TPM_ALG_ECDSA {
            return Err(SigError::UnsupportedAlgorithm(algorithm));
        }
        let hash = reader.u16("hash")?;
        if hash != TPM_ALG_SHA256 {
            return Err(SigError::UnsupportedHash(hash));
        }
        let r = reader.tpm2b("signatureR")?;
        let s = reader.tpm2b("signatureS")?;

        let trailing = reader.remaining();
        if trailing != 0 {
            return Err(SigError::TrailingBytes(trailing));
        }
        Self::from_tpm2b(r, s)
    }

    /// Parses the hex text of a marshalled TPMT_SIGNATURE, as a tpm-mode
    /// chain entry stores it. Upper-case hex is accepted.
    pub fn parse_hex(text: &str) -> Result<Self, SigError> {
        let bytes = hex::decode(text).map_err(|error| SigError::InvalidHex(error.to_string()))?;
        Self::parse(&bytes)
    }

    /// Marshals the TPMT_SIGNATURE, keeping the TPM2B lengths of `r` and `s`.
    pub fn marshal(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.r.len() + self.s.len());
        out.extend_from_slice(&TPM_ALG_ECDSA.to_be_bytes());
        out.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        put_tpm2b(&mut out, &self.r);
        put_tpm2b(&mut out, &self.s);
        out
    }

    /// Returns the lowercase hex of [`TpmSignature::marshal`].
    pub fn to_hex(&self) -> String {
        hex::encode(self.marshal())
    }

    /// Returns `r` as stored in the TPM2B (possibly shorter than 32 bytes).
    pub fn r(&self) -> &[u8] {
        &self.r
    }

    /// Returns `s` as stored in the TPM2B (possibly shorter than 32 bytes).
    pub fn s(&self) -> &[u8] {
        &self.s
    }

    /// Converts to a p256 signature, left-padding `r` and `s` to 32 bytes.
    /// High-S values are kept as they are, because swtpm returns them in about
    /// half of its signatures and p256 0.13 verification accepts both forms.
    pub fn to_p256(&self) -> Result<Signature, SigError> {
        let r = left_pad(&self.r);
        let s = left_pad(&self.s);
        Signature::from_scalars(r, s).map_err(|_| {
            if Signature::from_scalars(r, [1u8; SCALAR_LEN]).is_err() {
                SigError::ComponentOutOfRange(Component::R)
            } else {
                SigError::ComponentOutOfRange(Component::S)
            }
        })
    }
}

fn check_component(bytes: &[u8], component: Component) -> Result<(), SigError> {
    if bytes.len() > SCALAR_LEN {
        return Err(SigError::ComponentTooLong {
            component,
            size: bytes.len(),
        });
    }
    if bytes.iter().all(|&byte| byte == 0) {
        return Err(SigError::ComponentZero(component));
    }
    Ok(())
}

/// Left-pads a big-endian value of at most 32 bytes to 32 bytes. Longer
/// input is rejected by `check_component` before any caller gets here.
fn left_pad(bytes: &[u8]) -> [u8; SCALAR_LEN] {
    let mut padded = [0u8; SCALAR_LEN];
    let len = bytes.len().min(SCALAR_LEN);
    padded[SCALAR_LEN - len..].copy_from_slice(&bytes[bytes.len() - len..]);
    padded
}

/// Verifies a tpm-mode entry signature: `sig_bytes` is a marshalled
/// TPMT_SIGNATURE made by `key` over `digest` (the 32 raw bytes of the
/// entry hash, signed as a prehashed digest, not hashed again).
pub fn verify_entry_signature(
    key: &VerifyingKey,
    digest: &[u8; 32],
    sig_bytes: &[u8],
) -> Result<(), SigError> {
    let signature = TpmSignature::parse(sig_bytes)?;
    verify_prehash(key, digest, &signature)
}

/// Verifies a parsed signature over a 32-byte digest.
pub fn verify_prehash(
    key: &VerifyingKey,
    digest: &[u8; 32],
    signature: &TpmSignature,
) -> Result<(), SigError> {
    let signature = signature.to_p256()?;
    key.verify_prehash(digest, &signature)
        .map_err(|_| SigError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::DecodePublicKey;

    const SIGNING_KEY_PEM: &str = include_str!("../../tests/fixtures/attest/signing_key.pem");
    const ENTRY_DIGEST: &[u8; 32] = include_bytes!("../../tests/fixtures/attest/entry.digest");
    const ENTRY_SIG: &[u8] = include_bytes!("../../tests/fixtures/attest/entry.sig");
    const AK_PEM: &str = include_str!("../../tests/fixtures/attest/ak.pem");

    fn signing_key() -> VerifyingKey {
        VerifyingKey::from_public_key_pem(SIGNING_KEY_PEM).unwrap()
    }

    fn flip_bit(bytes: &[u8], index: usize, bit: u8) -> Vec<u8> {
        let mut flipped = bytes.to_vec();
        flipped[index] ^= 1 << bit;
        flipped
    }

    #[test]
    fn real_signature_verifies() {
        verify_entry_signature(&signing_key(), ENTRY_DIGEST, ENTRY_SIG).unwrap();
    }

    #[test]
    fn parse_then_marshal_round_trips() {
        let signature = TpmSignature::parse(ENTRY_SIG).unwrap();
        assert_eq!(signature.marshal(), ENTRY_SIG);
        assert_eq!(
            TpmSignature::parse_hex(&signature.to_hex()).unwrap(),
            signature
        );
    }

    #[test]
    fn flipped_r_fails() {
        // r starts at offset 6, after sigAlg, hash and its size. The test
        // flips a bit in its last byte.
        let sig = flip_bit(ENTRY_SIG, 6 + 31, 0);
        let result = verify_entry_signature(&signing_key(), ENTRY_DIGEST, &sig);
        assert_eq!(result, Err(SigError::Mismatch));
    }

    #[test]
    fn flipped_s_fails() {
        let last = ENTRY_SIG.len() - 1;
        let sig = flip_bit(ENTRY_SIG, last, 3);
        let result = verify_entry_signature(&signing_key(), ENTRY_DIGEST, &sig);
        assert_eq!(result, Err(SigError::Mismatch));
    }

    #[test]
    fn flipped_digest_fails() {
        let mut digest = *ENTRY_DIGEST;
        digest[0] ^= 0x80;
        let result = verify_entry_signature(&signing_key(), &digest, ENTRY_SIG);
        assert_eq!(result, Err(SigError::Mismatch));
    }

    #[test]
    fn other_key_fails() {
        let ak = VerifyingKey::from_public_key_pem(AK_PEM).unwrap();
        let result = verify_entry_signature(&ak, ENTRY_DIGEST, ENTRY_SIG);
        assert_eq!(result, Err(SigError::Mismatch));
    }

    #[test]
    fn flipped_key_coordinate_fails() {
        // A changed x keeps a point on the curve for about half of all x
        // values when y is recovered from the compressed form, so several
        // bits are tried.
        let point = signing_key().to_encoded_point(true);
        let mut tried_valid_key = false;
        for bit in 0..8 {
            let changed = flip_bit(point.as_bytes(), 32, bit);
            if let Ok(key) = VerifyingKey::from_sec1_bytes(&changed) {
                tried_valid_key = true;
                let result = verify_entry_signature(&key, ENTRY_DIGEST, ENTRY_SIG);
                assert_eq!(result, Err(SigError::Mismatch), "bit {bit}");
            }
        }
        assert!(tried_valid_key, "no flipped x gave a point on the curve");
    }

    #[test]
    fn high_s_and_low_s_both_verify() {
        let key = signing_key();
        let signature = TpmSignature::parse(ENTRY_SIG).unwrap().to_p256().unwrap();
        let low = signature.normalize_s().unwrap_or(signature);
        let (r, s) = low.split_bytes();
        let high_s = -*low.s();
        let high = Signature::from_scalars(r, high_s.to_bytes()).unwrap();
        assert_ne!(high.s().to_bytes(), s);
        for candidate in [low, high] {
            let marshalled = TpmSignature::from_p256(&candidate).marshal();
            verify_entry_signature(&key, ENTRY_DIGEST, &marshalled).unwrap();
        }
    }

    #[test]
    fn real_r_with_leading_zero_verifies() {
        // swtpm 0.7.1 keeps r at 32 bytes with a leading zero byte instead of
        // shortening the TPM2B. Both forms must verify.
        let digest = include_bytes!("../../tests/fixtures/attest/entry_r_leading_zero.digest");
        let sig = include_bytes!("../../tests/fixtures/attest/entry_r_leading_zero.sig");
        let signature = TpmSignature::parse(sig).unwrap();
        assert_eq!(signature.r()[0], 0);
        verify_entry_signature(&signing_key(), digest, sig).unwrap();

        let shortened = TpmSignature::from_tpm2b(&signature.r()[1..], signature.s()).unwrap();
        assert_eq!(shortened.marshal().len(), sig.len() - 1);
        verify_entry_signature(&signing_key(), digest, &shortened.marshal()).unwrap();
    }

    #[test]
    fn short_r_is_left_padded() {
        let mut r = vec![0u8; 31];
        r[0] = 0x7f;
        r[30] = 0x01;
        let mut bytes = vec![0x00, 0x18, 0x00, 0x0b, 0x00, 31];
        bytes.extend_from_slice(&r);
        bytes.extend_from_slice(&[0x00, 32]);
        bytes.extend_from_slice(&[0x22; 32]);

        let signature = TpmSignature::parse(&bytes).unwrap();
        assert_eq!(signature.r().len(), 31);
        let (padded_r, _) = signature.to_p256().unwrap().split_bytes();
        assert_eq!(padded_r[0], 0);
        assert_eq!(&padded_r[1..], r.as_slice());
        assert_eq!(signature.marshal(), bytes);
    }

    #[test]
    fn unsupported_algorithm_rejected() {
        let mut bytes = ENTRY_SIG.to_vec();
        bytes[1] = 0x14; // TPM_ALG_RSASSA
        assert_eq!(
            TpmSignature::parse(&bytes),
            Err(SigError::UnsupportedAlgorithm(0x0014))
        );
    }

    #[test]
    fn unsupported_hash_rejected() {
        let mut bytes = ENTRY_SIG.to_vec();
        bytes[3] = 0x0c; // TPM_ALG_SHA384
        assert_eq!(
            TpmSignature::parse(&bytes),
            Err(SigError::UnsupportedHash(0x000c))
        );
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut bytes = ENTRY_SIG.to_vec();
        bytes.push(0);
        assert_eq!(TpmSignature::parse(&bytes), Err(SigError::TrailingBytes(1)));
    }

    #[test]
    fn oversized_component_rejected() {
        let mut bytes = vec![0x00, 0x18, 0x00, 0x0b, 0x00, 33];
        bytes.extend_from_slice(&[0x01; 33]);
        bytes.extend_from_slice(&[0x00, 1, 0x01]);
        assert_eq!(
            TpmSignature::parse(&bytes),
            Err(SigError::ComponentTooLong {
                component: Component::R,
                size: 33
            })
        );
    }

    #[test]
    fn zero_components_rejected() {
        let zero_r = [0x00, 0x18, 0x00, 0x0b, 0x00, 1, 0x00, 0x00, 1, 0x05];
        assert_eq!(
            TpmSignature::parse(&zero_r),
            Err(SigError::ComponentZero(Component::R))
        );
        let empty_s = [0x00, 0x18, 0x00, 0x0b, 0x00, 1, 0x05, 0x00, 0];
        assert_eq!(
            TpmSignature::parse(&empty_s),
            Err(SigError::ComponentZero(Component::S))
        );
    }

    #[test]
    fn out_of_range_component_rejected() {
        let mut bytes = vec![0x00, 0x18, 0x00, 0x0b, 0x00, 1, 0x05, 0x00, 32];
        bytes.extend_from_slice(&[0xff; 32]);
        assert_eq!(
            TpmSignature::parse(&bytes),
            Err(SigError::ComponentOutOfRange(Component::S))
        );
    }

    #[test]
    fn truncated_signature_names_field() {
        let error = TpmSignature::parse(&ENTRY_SIG[..10]).unwrap_err();
        let SigError::Truncated(truncated) = error else {
            panic!("expected Truncated, got {error:?}");
        };
        assert_eq!(truncated.field, "signatureR");
        assert_eq!(truncated.offset, 6);
    }

    #[test]
    fn invalid_hex_rejected() {
        assert!(matches!(
            TpmSignature::parse_hex("00zz"),
            Err(SigError::InvalidHex(_))
        ));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..ENTRY_SIG.len() {
            assert!(
                TpmSignature::parse(&ENTRY_SIG[..len]).is_err(),
                "length {len}"
            );
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..2000 {
            let len = round % 90;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            // Half the inputs start with a valid header so the TPM2B paths run.
            if round % 2 == 0 && bytes.len() >= 4 {
                bytes[..4].copy_from_slice(&[0x00, 0x18, 0x00, 0x0b]);
            }
            let _ = TpmSignature::parse(&bytes);
            let _ = verify_entry_signature(&signing_key(), ENTRY_DIGEST, &bytes);
        }
    }
}
