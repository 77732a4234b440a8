//! The hash, HMAC and PCR arithmetic of the chain format.
//!
//! PCR extends and HMACs of a 32-byte hash each take two SHA-256 blocks, and
//! there is one of each per entry, so both run the compression function
//! directly on prepared blocks instead of going through a buffered hasher.

use sha2::{Digest, Sha256};

pub type Hash32 = [u8; 32];

pub const ZERO32: Hash32 = [0u8; 32];

/// The SHA-256 initial hash value.
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

const BLOCK: usize = 64;

pub fn sha256(bytes: &[u8]) -> Hash32 {
    Sha256::digest(bytes).into()
}

/// Compresses one 64-byte block into `state`.
// sha2 0.10 takes blocks as generic-array 0.14 arrays, a type that release
// marks deprecated in favour of generic-array 1.x, which sha2 0.10 cannot take.
#[allow(deprecated)]
fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    use sha2::digest::generic_array::GenericArray;
    sha2::compress256(state, &[GenericArray::from(*block)]);
}

/// Returns the digest bytes of a finished state.
fn digest_of(state: &[u32; 8]) -> Hash32 {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Builds the last block of a message whose final 32 bytes are `tail`, after
/// `prefix_blocks` full blocks: `tail`, the 0x80 marker, zeros and the bit length.
fn final_block(tail: &Hash32, prefix_blocks: u64) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    block[..32].copy_from_slice(tail);
    block[32] = 0x80;
    let bits = (prefix_blocks * BLOCK as u64 + 32) * 8;
    block[56..].copy_from_slice(&bits.to_be_bytes());
    block
}

/// TPM 2.0 PCR_Extend for the SHA-256 bank: SHA-256(old || digest).
pub fn pcr_extend(old: &Hash32, digest: &Hash32) -> Hash32 {
    let mut block = [0u8; BLOCK];
    block[..32].copy_from_slice(old);
    block[32..].copy_from_slice(digest);
    // The padding of a 64-byte message is a block of its own.
    let mut padding = [0u8; BLOCK];
    padding[0] = 0x80;
    padding[56..].copy_from_slice(&(BLOCK as u64 * 8).to_be_bytes());
    let mut state = SHA256_IV;
    compress(&mut state, &block);
    compress(&mut state, &padding);
    digest_of(&state)
}

/// An HMAC-SHA256 key, with the inner and outer key blocks compressed once.
#[derive(Clone)]
pub struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacKey {
    pub fn new(secret: &[u8]) -> Self {
        // Keys longer than a block are hashed first; shorter ones are padded with zeros.
        let mut key = [0u8; BLOCK];
        if secret.len() > BLOCK {
            key[..32].copy_from_slice(&sha256(secret));
        } else {
            key[..secret.len()].copy_from_slice(secret);
        }
        let pad = |byte: u8| {
            let mut block = key;
            block.iter_mut().for_each(|b| *b ^= byte);
            let mut state = SHA256_IV;
            compress(&mut state, &block);
            state
        };
        HmacKey {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// HMAC over the 32 raw hash bytes, as the reference signs.
    pub fn sign(&self, hash: &Hash32) -> Hash32 {
        let mut inner = self.inner;
        compress(&mut inner, &final_block(hash, 1));
        let mut outer = self.outer;
        compress(&mut outer, &final_block(&digest_of(&inner), 1));
        digest_of(&outer)
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
    fn hmac_matches_crate_all_key_lengths() {
        use hmac::{Hmac, Mac};
        let hash = sha256(b"a message");
        for len in [0, 1, 31, 32, 55, 63, 64, 65, 100, 200] {
            let secret: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
            mac.update(&hash);
            let expected: Hash32 = mac.finalize().into_bytes().into();
            assert_eq!(
                HmacKey::new(&secret).sign(&hash),
                expected,
                "key of {len} bytes"
            );
        }
    }

    #[test]
    fn pcr_extend_is_sha256_of_both() {
        let old = sha256(b"old");
        let digest = sha256(b"new");
        let mut both = old.to_vec();
        both.extend_from_slice(&digest);
        assert_eq!(pcr_extend(&old, &digest), sha256(&both));
        assert_eq!(pcr_extend(&ZERO32, &ZERO32), sha256(&[0u8; 64]));
    }

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
