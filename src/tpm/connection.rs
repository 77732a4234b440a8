//! One open tss-esapi `Context` with the keys created on it, and the TPM commands sealdesk uses.

use std::str::FromStr;

use p256::ecdsa::VerifyingKey;
use tracing::{debug, warn};
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::{CapabilityType, PropertyTag, StartupType};
use tss_esapi::handles::{KeyHandle, PcrHandle, TpmHandle as RawTpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    CapabilityData, Data, Digest, DigestValues, EccPoint, EccScheme, HashScheme, HashcheckTicket,
    KeyDerivationFunctionScheme, PcrSelectionList, PcrSelectionListBuilder, PcrSlot, Public,
    PublicBuilder, PublicEccParametersBuilder, SignatureScheme, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::Marshall;
use tss_esapi::tss2_esys::{ESYS_TR, TPMT_TK_HASHCHECK};
use tss_esapi::Context;

use super::error::{classify_response_code, KeyKind, Phase, ResponseCode, TpmError, RC_INITIALIZE};
use super::tcti::TctiSelection;
use super::{QuoteParts, TpmInfo};

/// Number of PCRs in the SHA-256 bank of a PC-client TPM.
const PCR_COUNT: u8 = 24;

/// First handle of the transient object range (TPM2_TRANSIENT_FIRST).
const TRANSIENT_FIRST: u32 = 0x8000_0000;

/// Public keys first created in a worker's life, indexed by [`key_index`]: signing, attestation.
pub(super) type PinnedKeys = [Option<VerifyingKey>; 2];

/// A loaded key and its public part.
struct LoadedKey {
    handle: KeyHandle,
    public: VerifyingKey,
}

/// An open connection to the TPM and the keys loaded on it.
///
/// Holds at most 2 loaded objects (the signing key and the AK), within the 3 object
/// slots a direct swtpm connection offers.
pub(super) struct Connection {
    context: Context,
    tcti: TctiSelection,
    keys: [Option<LoadedKey>; 2],
}

/// Returns the raw response code inside a tss-esapi error, if it carries one.
pub(super) fn response_code(error: &tss_esapi::Error) -> Option<ResponseCode> {
    use tss_esapi::constants::response_code::Tss2ResponseCode;

    let tss_esapi::Error::Tss2Error(code) = error else {
        return None;
    };
    // tss-esapi 7.x keeps the raw value private; its Display for both response code
    // formats prints "Response code value: 0x…".
    let text = match code {
        Tss2ResponseCode::Success => return Some(ResponseCode(0)),
        Tss2ResponseCode::FormatZero(inner) => inner.to_string(),
        Tss2ResponseCode::FormatOne(inner) => inner.to_string(),
    };
    let (_, hex) = text.rsplit_once("0x")?;
    u32::from_str_radix(hex.trim(), 16).ok().map(ResponseCode)
}

fn convert(
    error: tss_esapi::Error,
    operation: &'static str,
    tcti: &TctiSelection,
    phase: Phase,
) -> TpmError {
    match response_code(&error) {
        Some(code) => classify_response_code(code, operation, error.to_string(), tcti, phase),
        None => TpmError::Library {
            operation,
            message: error.to_string(),
        },
    }
}

fn library_error(operation: &'static str, message: impl Into<String>) -> TpmError {
    TpmError::Library {
        operation,
        message: message.into(),
    }
}

fn key_index(kind: KeyKind) -> usize {
    match kind {
        KeyKind::Signing => 0,
        KeyKind::Attestation => 1,
    }
}

/// Builds the key template: ECDSA P-256 with SHA-256 under the owner hierarchy, noDA so
/// failed authorizations or unclean TPM stops never count toward dictionary-attack lockout.
/// The AK is the restricted variant, which signs only TPM-generated data such as quotes.
fn key_template(kind: KeyKind) -> tss_esapi::Result<Public> {
    let restricted = kind == KeyKind::Attestation;
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_sign_encrypt(true)
        .with_decrypt(false)
        .with_restricted(restricted)
        .build()?;

    let parameters = PublicEccParametersBuilder::new()
        .with_symmetric(SymmetricDefinitionObject::Null)
        .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)))
        .with_curve(EccCurve::NistP256)
        .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
        .with_is_signing_key(true)
        .with_is_decryption_key(false)
        .with_restricted(restricted)
        .build()?;

    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(parameters)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// Converts the public area of an ECC P-256 key to a p256 verifying key.
pub(super) fn verifying_key(public: &Public) -> Result<VerifyingKey, TpmError> {
    let Public::Ecc { unique, .. } = public else {
        return Err(library_error(
            "key creation",
            "the TPM returned a non-ECC public key",
        ));
    };

    // SEC1 uncompressed point: 0x04 || x || y, each coordinate left-padded to 32 bytes
    // because the TPM drops leading zero bytes.
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    for (coordinate, offset) in [(unique.x().value(), 1), (unique.y().value(), 33)] {
        if coordinate.len() > 32 {
            return Err(library_error(
                "key creation",
                format!(
                    "ECC coordinate is {} bytes, expected at most 32",
                    coordinate.len()
                ),
            ));
        }
        let start = offset + 32 - coordinate.len();
        sec1[start..offset + 32].copy_from_slice(coordinate);
    }

    VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|error| library_error("key creation", format!("invalid P-256 point: {error}")))
}

fn check_pcr_index(index: u8) -> Result<(), TpmError> {
    if index < PCR_COUNT {
        Ok(())
    } else {
        Err(TpmError::InvalidPcrIndex { index })
    }
}

fn pcr_selection(index: u8) -> Result<PcrSelectionList, TpmError> {
    check_pcr_index(index)?;
    let slot = PcrSlot::try_from(1u32 << index)
        .map_err(|error| library_error("PCR selection", error.to_string()))?;
    PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &[slot])
        .build()
        .map_err(|error| library_error("PCR selection", error.to_string()))
}

fn pcr_handle(index: u8) -> Result<PcrHandle, TpmError> {
    check_pcr_index(index)?;
    // ESYS_TR_PCR0 to ESYS_TR_PCR31 are the values 0 to 31.
    PcrHandle::try_from(ESYS_TR::from(index))
        .map_err(|error| library_error("PCR handle", error.to_string()))
}

fn digest_array(digest: &Digest, operation: &'static str) -> Result<[u8; 32], TpmError> {
    <[u8; 32]>::try_from(digest.value()).map_err(|_| {
        library_error(
            operation,
            format!(
                "expected a 32-byte SHA-256 value, got {} bytes",
                digest.value().len()
            ),
        )
    })
}

impl Connection {
    /// Opens the TPM: creates the context, runs TPM2_Startup(CLEAR) (an already started
    /// TPM is fine) and, on a direct simulator connection, flushes transient objects
    /// that earlier processes left loaded.
    pub(super) fn open(tcti: &TctiSelection) -> Result<Connection, TpmError> {
        let configuration =
            TctiNameConf::from_str(&tcti.tcti).map_err(|error| TpmError::InvalidTcti {
                tcti: tcti.tcti.clone(),
                origin: tcti.origin,
                reason: error.to_string(),
            })?;
        let mut context = Context::new(configuration)
            .map_err(|error| convert(error, "connect", tcti, Phase::Connecting))?;

        match context.startup(StartupType::Clear) {
            Ok(()) => {}
            Err(error) if response_code(&error) == Some(ResponseCode(RC_INITIALIZE)) => {}
            Err(error) => {
                let error = convert(error, "startup", tcti, Phase::Connecting);
                if matches!(
                    error,
                    TpmError::CannotConnect { .. } | TpmError::TctiModuleMissing { .. }
                ) {
                    return Err(error);
                }
                warn!(tcti = %tcti, %error, "TPM2_Startup failed; continuing");
            }
        }

        // Listing the transient handles also proves that the TPM responds.
        let (capability, _) = context
            .get_capability(CapabilityType::Handles, TRANSIENT_FIRST, 64)
            .map_err(|error| convert(error, "list transient objects", tcti, Phase::Connecting))?;

        if tcti.is_simulator() {
            if let CapabilityData::Handles(handles) = capability {
                for handle in handles.iter() {
                    flush_stale_object(&mut context, *handle, tcti)?;
                }
            }
        }

        Ok(Connection {
            context,
            tcti: tcti.clone(),
            keys: [None, None],
        })
    }

    /// Flushes the loaded keys before the connection closes, so they do not take
    /// object slots on a TPM without a resource manager.
    pub(super) fn close(mut self) {
        for key in self.keys.iter_mut() {
            if let Some(key) = key.take() {
                if let Err(error) = self.context.flush_context(key.handle.into()) {
                    debug!(%error, "flushing a key on close failed");
                }
            }
        }
    }

    fn fail(&self, operation: &'static str) -> impl Fn(tss_esapi::Error) -> TpmError + '_ {
        move |error| convert(error, operation, &self.tcti, Phase::InSession)
    }

    pub(super) fn info(&mut self, tcti: &TctiSelection) -> Result<TpmInfo, TpmError> {
        let manufacturer = self
            .context
            .get_tpm_property(PropertyTag::Manufacturer)
            .map_err(self.fail("read TPM manufacturer"))?
            .unwrap_or_default();
        let version_high = self
            .context
            .get_tpm_property(PropertyTag::FirmwareVersion1)
            .map_err(self.fail("read TPM firmware version"))?
            .unwrap_or_default();
        let version_low = self
            .context
            .get_tpm_property(PropertyTag::FirmwareVersion2)
            .map_err(self.fail("read TPM firmware version"))?
            .unwrap_or_default();

        // The manufacturer is a 4-character ASCII vendor ID such as "IBM " or "INTC".
        let manufacturer: String = manufacturer
            .to_be_bytes()
            .iter()
            .filter(|byte| byte.is_ascii_graphic())
            .map(|byte| char::from(*byte))
            .collect();

        Ok(TpmInfo {
            manufacturer,
            firmware_version: (u64::from(version_high) << 32) | u64::from(version_low),
            tcti: tcti.clone(),
        })
    }

    pub(super) fn read_pcr(&mut self, index: u8) -> Result<[u8; 32], TpmError> {
        let selection = pcr_selection(index)?;
        let (_, _, digests) = self
            .context
            .pcr_read(selection)
            .map_err(self.fail("PCR read"))?;
        let digest = digests
            .value()
            .first()
            .ok_or_else(|| library_error("PCR read", "the TPM returned no PCR value"))?;
        digest_array(digest, "PCR read")
    }

    pub(super) fn extend_pcr(&mut self, index: u8, digest: [u8; 32]) -> Result<(), TpmError> {
        let handle = pcr_handle(index)?;
        let mut values = DigestValues::new();
        let digest = Digest::try_from(digest.to_vec())
            .map_err(|error| library_error("PCR extend", error.to_string()))?;
        values.set(HashingAlgorithm::Sha256, digest);
        self.context
            .execute_with_session(Some(AuthSession::Password), |context| {
                context.pcr_extend(handle, values)
            })
            .map_err(self.fail("PCR extend"))
    }

    pub(super) fn reset_pcr(&mut self, index: u8) -> Result<(), TpmError> {
        let handle = pcr_handle(index)?;
        self.context
            .execute_with_session(Some(AuthSession::Password), |context| {
                context.pcr_reset(handle)
            })
            .map_err(self.fail("PCR reset"))
    }

    /// Returns the loaded key of `kind`, creating it from its template on first use.
    ///
    /// A key whose public part differs from the one pinned earlier in this worker's life
    /// is flushed and rejected.
    fn key(&mut self, kind: KeyKind, pinned: &mut PinnedKeys) -> Result<&LoadedKey, TpmError> {
        let slot = key_index(kind);
        if self.keys[slot].is_none() {
            let template = key_template(kind)
                .map_err(|error| library_error("key template", error.to_string()))?;
            let created = self
                .context
                .execute_with_session(Some(AuthSession::Password), |context| {
                    context.create_primary(Hierarchy::Owner, template, None, None, None, None)
                })
                .map_err(self.fail("key creation"))?;
            let handle = created.key_handle;

            let public = match verifying_key(&created.out_public) {
                Ok(public) => public,
                Err(error) => {
                    self.flush_key(handle);
                    return Err(error);
                }
            };
            match pinned[slot] {
                Some(expected) if expected != public => {
                    self.flush_key(handle);
                    return Err(TpmError::KeyChanged { key: kind });
                }
                Some(_) => {}
                None => pinned[slot] = Some(public),
            }
            self.keys[slot] = Some(LoadedKey { handle, public });
        }

        self.keys[slot]
            .as_ref()
            .ok_or_else(|| library_error("key creation", "the key is not loaded"))
    }

    fn flush_key(&mut self, handle: KeyHandle) {
        if let Err(error) = self.context.flush_context(handle.into()) {
            debug!(%error, "flushing a rejected key failed");
        }
    }

    pub(super) fn public_key(
        &mut self,
        kind: KeyKind,
        pinned: &mut PinnedKeys,
    ) -> Result<VerifyingKey, TpmError> {
        Ok(self.key(kind, pinned)?.public)
    }

    pub(super) fn sign(
        &mut self,
        digest: [u8; 32],
        pinned: &mut PinnedKeys,
    ) -> Result<Vec<u8>, TpmError> {
        let key = self.key(KeyKind::Signing, pinned)?.handle;
        let digest = Digest::try_from(digest.to_vec())
            .map_err(|error| library_error("sign", error.to_string()))?;
        // A null-hierarchy hashcheck ticket: the digest was not computed by the TPM,
        // which an unrestricted key accepts.
        let ticket = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
            tag: TPM2_ST_HASHCHECK,
            hierarchy: TPM2_RH_NULL,
            digest: Default::default(),
        })
        .map_err(|error| library_error("sign", error.to_string()))?;

        let signature = self
            .context
            .execute_with_session(Some(AuthSession::Password), |context| {
                context.sign(key, digest, SignatureScheme::Null, ticket)
            })
            .map_err(self.fail("sign"))?;
        signature
            .marshall()
            .map_err(|error| library_error("sign", error.to_string()))
    }

    pub(super) fn quote(
        &mut self,
        index: u8,
        nonce: [u8; 32],
        pinned: &mut PinnedKeys,
    ) -> Result<QuoteParts, TpmError> {
        let selection = pcr_selection(index)?;
        let key = self.key(KeyKind::Attestation, pinned)?.handle;
        let qualifying_data = Data::try_from(nonce.to_vec())
            .map_err(|error| library_error("quote", error.to_string()))?;

        let (attest, signature) = self
            .context
            .execute_with_session(Some(AuthSession::Password), |context| {
                context.quote(key, qualifying_data, SignatureScheme::Null, selection)
            })
            .map_err(self.fail("quote"))?;
        let attest = attest
            .marshall()
            .map_err(|error| library_error("quote", error.to_string()))?;
        let signature = signature
            .marshall()
            .map_err(|error| library_error("quote", error.to_string()))?;
        let value = self.read_pcr(index)?;

        Ok((attest, signature, vec![value]))
    }
}

/// Flushes one transient object left loaded by an earlier process.
fn flush_stale_object(
    context: &mut Context,
    handle: RawTpmHandle,
    tcti: &TctiSelection,
) -> Result<(), TpmError> {
    if !matches!(handle, RawTpmHandle::Transient(_)) {
        return Ok(());
    }
    let object = context
        .tr_from_tpm_public(handle)
        .map_err(|error| convert(error, "flush stale object", tcti, Phase::Connecting))?;
    context
        .flush_context(object)
        .map_err(|error| convert(error, "flush stale object", tcti, Phase::Connecting))?;
    debug!(
        ?handle,
        "flushed a transient object left by an earlier process"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tss_esapi::constants::response_code::Tss2ResponseCode;

    #[test]
    fn response_code_roundtrip() {
        for raw in [
            0xA000Au32, 0x70007, 0x921, 0x902, 0x907, 0xA0015, 0x3E0, 0x1C4,
        ] {
            let error = tss_esapi::Error::Tss2Error(Tss2ResponseCode::from(raw));
            assert_eq!(response_code(&error), Some(ResponseCode(raw)), "0x{raw:X}");
        }
    }

    #[test]
    fn pcr_index_range() {
        assert!(pcr_selection(23).is_ok());
        assert!(pcr_handle(0).is_ok());
        assert_eq!(
            pcr_handle(24).err(),
            Some(TpmError::InvalidPcrIndex { index: 24 })
        );
    }

    #[test]
    fn templates_build() {
        assert!(key_template(KeyKind::Signing).is_ok());
        assert!(key_template(KeyKind::Attestation).is_ok());
    }
}
