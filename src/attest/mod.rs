//! TPM signature and quote parsing and verification in pure Rust (no libtss2),
//! so that chains and quotes verify on a machine without a TPM.
//!
//! - [`signature`]: TPMT_SIGNATURE (ECDSA P-256, SHA-256) for tpm-mode entries.
//! - [`keys`]: P-256 public keys from PEM, SEC1 or TPM coordinates, their
//!   fingerprints, and the `--trusted-keys` pin file.
//! - [`quote`]: the TPMS_ATTEST structure of a quote.
//! - [`pcr`]: PCR selections and the quote's PCR digest.
//! - [`quote_check`]: quote verification, check by check.

pub mod keys;
pub mod pcr;
pub mod quote;
pub mod quote_check;
pub mod signature;
mod wire;

pub use keys::{
    fingerprint, key_from_sec1, key_from_tpm_point, keys_from_pem, load_keys_pem, spki_der, to_pem,
    Fingerprint, KeyError, TrustedKeys,
};
pub use pcr::{
    hash_name, parse_pcr_selection, pcr_digest, selected_pcrs, PcrSelection, TPM_ALG_SHA1,
    TPM_ALG_SHA384, TPM_ALG_SHA512,
};
pub use quote::{ClockInfo, QuoteAttest, QuoteError, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE};
pub use quote_check::{verify_quote, Check, QuoteCheck};
pub use signature::{
    verify_entry_signature, verify_prehash, Component, SigError, TpmSignature, TPM_ALG_ECDSA,
    TPM_ALG_SHA256,
};
pub use wire::Truncated;
