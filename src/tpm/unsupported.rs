//! Stand-in for the TPM worker in builds without the `tpm` feature: connecting always
//! fails with [`TpmError::NotBuilt`], so callers compile unchanged.

use p256::ecdsa::VerifyingKey;

use super::error::TpmError;
use super::tcti::TctiSelection;
use super::TpmInfo;

/// Output of a quote: the marshalled TPMS_ATTEST, the marshalled TPMT_SIGNATURE
/// and the SHA-256 values of the quoted PCRs in selection order.
pub type QuoteParts = (Vec<u8>, Vec<u8>, Vec<[u8; 32]>);

/// Handle to a TPM worker; this build has none, so no value of this type exists.
#[derive(Debug, Clone)]
pub struct TpmHandle {
    tcti: TctiSelection,
}

impl TpmHandle {
    /// Returns [`TpmError::NotBuilt`]: this build has no TPM support.
    pub fn connect(_tcti: TctiSelection) -> Result<TpmHandle, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns the TCTI this handle was created for.
    pub fn tcti(&self) -> &TctiSelection {
        &self.tcti
    }

    /// Returns [`TpmError::NotBuilt`].
    pub fn info(&self) -> Result<TpmInfo, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub fn read_pcr(&self, _index: u8) -> Result<[u8; 32], TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub fn extend_pcr(&self, _index: u8, _digest: [u8; 32]) -> Result<(), TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub fn reset_pcr(&self, _index: u8) -> Result<(), TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub fn signing_public(&self) -> Result<VerifyingKey, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub fn ak_public(&self) -> Result<VerifyingKey, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub fn sign(&self, _digest: [u8; 32]) -> Result<Vec<u8>, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub fn quote(&self, _index: u8, _nonce: [u8; 32]) -> Result<QuoteParts, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub async fn info_async(&self) -> Result<TpmInfo, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub async fn read_pcr_async(&self, _index: u8) -> Result<[u8; 32], TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub async fn extend_pcr_async(&self, _index: u8, _digest: [u8; 32]) -> Result<(), TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub async fn reset_pcr_async(&self, _index: u8) -> Result<(), TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub async fn signing_public_async(&self) -> Result<VerifyingKey, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub async fn ak_public_async(&self) -> Result<VerifyingKey, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub async fn sign_async(&self, _digest: [u8; 32]) -> Result<Vec<u8>, TpmError> {
        Err(TpmError::NotBuilt)
    }

    /// Returns [`TpmError::NotBuilt`].
    pub async fn quote_async(&self, _index: u8, _nonce: [u8; 32]) -> Result<QuoteParts, TpmError> {
        Err(TpmError::NotBuilt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_reports_not_built() {
        let result = TpmHandle::connect(TctiSelection::from_command_line("swtpm"));
        assert_eq!(result.err(), Some(TpmError::NotBuilt));
    }
}
