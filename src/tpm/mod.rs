//! The TPM worker: TCTI choice, errors, and (with the `tpm` feature) a thread that owns
//! the tss-esapi context and serves signing, PCR and quote requests.

pub mod error;
pub mod tcti;

#[cfg(feature = "tpm")]
mod connection;
#[cfg(not(feature = "tpm"))]
mod unsupported;
#[cfg(feature = "tpm")]
mod worker;

pub use error::{KeyKind, ResponseCode, TpmError};
pub use tcti::{resolve_tcti, TctiOrigin, TctiSelection};
#[cfg(not(feature = "tpm"))]
pub use unsupported::{QuoteParts, TpmHandle};
#[cfg(feature = "tpm")]
pub use worker::{QuoteParts, TpmHandle};

/// Identity of the connected TPM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmInfo {
    /// 4-character vendor ID (TPM_PT_MANUFACTURER) without padding, e.g. `IBM` for swtpm.
    pub manufacturer: String,
    /// TPM_PT_FIRMWARE_VERSION_1 in the high 32 bits, TPM_PT_FIRMWARE_VERSION_2 in the low.
    pub firmware_version: u64,
    /// TCTI the worker connected through.
    pub tcti: TctiSelection,
}

impl TpmInfo {
    /// Formats the firmware version as four 16-bit parts, `a.b.c.d`, as most vendors number it.
    pub fn firmware_version_text(&self) -> String {
        let parts: Vec<String> = (0..4)
            .rev()
            .map(|part| ((self.firmware_version >> (16 * part)) & 0xFFFF).to_string())
            .collect();
        parts.join(".")
    }
}
