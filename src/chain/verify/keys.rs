//! The keys a verification checks signatures with.

use p256::ecdsa::VerifyingKey;

use crate::chain::crypto::HmacKey;
use crate::chain::entry::DEV_KEY;

/// A TPM public key, where it came from and whether its fingerprint is pinned.
#[derive(Debug, Clone)]
pub struct TpmKey {
    pub key: VerifyingKey,
    /// `sha256:<hex>` of the DER SubjectPublicKeyInfo.
    pub fingerprint: String,
    /// True when a trusted-keys file outside the chain's directory pins it,
    /// or the live TPM re-created it.
    pub pinned: bool,
    /// Where the key was read from, for messages.
    pub source: String,
}

/// Secrets and public keys for one verification.
#[derive(Clone)]
pub struct VerifyKeys {
    pub hmac: HmacKey,
    pub dev_hmac: HmacKey,
    /// The empty key, to explain signatures made with it.
    pub empty_hmac: HmacKey,
    /// True when no secret was configured, so the development key is the secret.
    pub secret_is_dev_key: bool,
    pub tpm: Vec<TpmKey>,
    /// Pinned fingerprints, whether or not a key with that fingerprint is at hand.
    pub pins: Vec<String>,
}

impl VerifyKeys {
    /// Keys for a chain sealed with `secret`, or with the development key when `None`.
    pub fn new(secret: Option<&[u8]>) -> Self {
        let dev_hmac = HmacKey::new(DEV_KEY.as_bytes());
        match secret {
            Some(s) => VerifyKeys {
                hmac: HmacKey::new(s),
                dev_hmac,
                empty_hmac: HmacKey::new(b""),
                secret_is_dev_key: s == DEV_KEY.as_bytes(),
                tpm: Vec::new(),
                pins: Vec::new(),
            },
            None => VerifyKeys {
                hmac: dev_hmac.clone(),
                dev_hmac,
                empty_hmac: HmacKey::new(b""),
                secret_is_dev_key: true,
                tpm: Vec::new(),
                pins: Vec::new(),
            },
        }
    }

    pub fn with_tpm_keys(mut self, keys: Vec<TpmKey>, pins: Vec<String>) -> Self {
        self.tpm = keys;
        self.pins = pins;
        self
    }
}

impl Default for VerifyKeys {
    fn default() -> Self {
        Self::new(None)
    }
}
