//! The hash, HMAC and PCR arithmetic of the chain format.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub type Hash32 = [u8; 32];

pub const ZERO32: Hash32 = [0u8; 32];

pub fn sha256(bytes: &[u8]) -> Hash32 {
    Sha256::digest(bytes).into()
}

/// TPM 2.0 PCR_Extend for the SHA-256 bank: SHA-256(old || digest).
pub fn pcr_extend(old: &Hash32, digest: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update(old);
    h.update(digest);
    h.finalize().into()
}

/// An HMAC-SHA256 key, prepared once and cloned for each message.
#[derive(Clone)]
pub struct HmacKey {
    mac: Hmac<Sha256>,
}

impl HmacKey {
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length, so new_from_slice cannot fail.
        let mac = match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        HmacKey { mac }
    }

    /// HMAC over the 32 raw hash bytes, as the reference signs.
    pub fn sign(&self, hash: &Hash32) -> Hash32 {
        let mut mac = self.mac.clone();
        mac.update(hash);
        mac.finalize().into_bytes().into()
    }
}

/// A name for a value that is not 64 hex digits, so that equal texts still
/// match each other but never a real digest.
pub fn text_name(text: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(b"\0sealdesk: not a digest\0");
    h.update(text);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_one_signature_and_pcr() {
        let entry = br#"{"id":"DEC-1741944413589793238","timestamp":"2025-03-14T09:26:53.589793238Z","action":"ingest","decision":"allow","reason":"rule R-100 matched: score 0.91","event_id":"EVT-100000","incident_id":"INC-2000","operator":"alice","previous_hash":"genesis"}"#;
        let hash = sha256(entry);
        assert_eq!(
            hex::encode(hash),
            "5cd2d102d7e912e8ce54230e42e75a4357ccff17757dd2f08b617d4e6b4fce7f"
        );
        let sig = HmacKey::new(b"sentinel-dev-key-not-for-production").sign(&hash);
        assert_eq!(
            hex::encode(sig),
            "b1d85854c7c8074942503dc7f789f94488bb63453628293c987d08092e9e46ae"
        );
        let pcr = pcr_extend(&ZERO32, &hash);
        assert_eq!(
            hex::encode(pcr),
            "51d22eb2512432a97f94a39d09b1f3565c1ec3d8cb2600993aa8847a7d45922b"
        );
    }
}
