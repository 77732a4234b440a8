//! Errors of the TPM worker, each with what failed, what to do next and the raw response code.

use std::fmt;

use super::tcti::{TctiOrigin, TctiSelection};

/// A raw TSS2/TPM response code (`TSS2_RC`), shown as `0x…` in hex.
///
/// `tpm2_rc_decode 0x…` from tpm2-tools explains any code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode(pub u32);

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:X}", self.0)
    }
}

/// TCTI layer, I/O error: the TPM or simulator did not respond.
pub const RC_TCTI_IO_ERROR: u32 = 0x000A_000A;
/// TCTI layer, no connection.
pub const RC_TCTI_NO_CONNECTION: u32 = 0x000A_0008;
/// TCTI layer, not supported: the TCTI loader found no usable module for the name.
pub const RC_TCTI_NOT_SUPPORTED: u32 = 0x000A_0015;
/// ESAPI layer, bad sequence: the context is unusable after an earlier I/O error.
pub const RC_ESYS_BAD_SEQUENCE: u32 = 0x0007_0007;
/// ESAPI layer, I/O error.
pub const RC_ESYS_IO_ERROR: u32 = 0x0007_000A;
/// TPM_RC_INITIALIZE: TPM2_Startup was already run (expected with swtpm's `startup-clear`).
pub const RC_INITIALIZE: u32 = 0x0000_0100;
/// TPM_RC_OBJECT_MEMORY: no free slot for another loaded object.
pub const RC_OBJECT_MEMORY: u32 = 0x0000_0902;
/// TPM_RC_LOCALITY: the command is not allowed at the current locality.
pub const RC_LOCALITY: u32 = 0x0000_0907;
/// TPM_RC_REFERENCE_H0: the first handle names an object that is not loaded. On an open
/// connection this means the TPM restarted and dropped the loaded keys.
pub const RC_REFERENCE_H0: u32 = 0x0000_0910;
/// TPM_RC_LOCKOUT: the TPM is in dictionary-attack lockout.
pub const RC_LOCKOUT: u32 = 0x0000_0921;

const LAYER_MASK: u32 = 0x00FF_0000;
const TCTI_LAYER: u32 = 0x000A_0000;

impl ResponseCode {
    /// Returns true when the code means the connection to the TPM is gone or unusable,
    /// so the context must be dropped and opened again.
    pub fn is_connection_failure(self) -> bool {
        matches!(
            self.0,
            RC_TCTI_IO_ERROR | RC_TCTI_NO_CONNECTION | RC_ESYS_BAD_SEQUENCE | RC_ESYS_IO_ERROR
        ) || (self.0 & LAYER_MASK == TCTI_LAYER && self.0 != RC_TCTI_NOT_SUPPORTED)
    }
}

/// A failed TPM operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TpmError {
    /// Opening the TPM failed.
    #[error(
        "cannot connect to the TPM at `{tcti}` (TCTI from {origin}): {hint} (response code {code})"
    )]
    CannotConnect {
        tcti: String,
        origin: TctiOrigin,
        hint: String,
        code: ResponseCode,
    },

    /// The connection broke, or the TPM restarted and dropped the loaded keys,
    /// and one reconnect did not help.
    #[error("lost the connection to the TPM at `{tcti}`, or the TPM restarted, during {operation}; the next request reconnects and re-creates the keys (response code {code})")]
    ConnectionLost {
        tcti: String,
        operation: &'static str,
        code: ResponseCode,
    },

    /// The TPM is in dictionary-attack lockout.
    #[error("the TPM rejected {operation} because it is in dictionary-attack lockout; wait for the lockout to expire or clear it with `tpm2_dictionarylockout -c` (response code {code})")]
    Lockout {
        operation: &'static str,
        code: ResponseCode,
    },

    /// The TPM has no free slot for another loaded object.
    #[error("the TPM has no free object slot for {operation}; flush stale objects with `tpm2_flushcontext -t` or use the resource manager `device:/dev/tpmrm0` (response code {code})")]
    ObjectMemory {
        operation: &'static str,
        code: ResponseCode,
    },

    /// The command is not allowed at locality 0, e.g. resetting a PCR other than 16 or 23.
    #[error("the TPM rejected {operation} at the current locality; at locality 0 only PCR 16 and 23 can be reset (response code {code})")]
    BadLocality {
        operation: &'static str,
        code: ResponseCode,
    },

    /// libtss2 found no TCTI module for the configured name.
    #[error("the TCTI module `{module}` for `{tcti}` could not be loaded; install libtss2-tcti-{module}0 or choose another TCTI (response code {code})")]
    TctiModuleMissing {
        tcti: String,
        module: String,
        code: ResponseCode,
    },

    /// The TCTI string could not be parsed.
    #[error("invalid TCTI `{tcti}` (from {origin}): {reason}")]
    InvalidTcti {
        tcti: String,
        origin: TctiOrigin,
        reason: String,
    },

    /// This binary was built without the `tpm` cargo feature.
    #[error("this sealdesk binary was built without TPM support; rebuild with the `tpm` cargo feature or use software sealing")]
    NotBuilt,

    /// A PCR index outside the 24 PCRs of the SHA-256 bank.
    #[error("PCR index {index} is out of range; valid indexes are 0 to 23")]
    InvalidPcrIndex { index: u8 },

    /// A key re-created after a reconnect differs from the one first created by this worker,
    /// for example because the TPM was cleared.
    #[error("the TPM {key} differs from the one this session started with (was the TPM cleared or replaced?); restart sealdesk to use the new key")]
    KeyChanged { key: KeyKind },

    /// The TPM gave no reply in time: a stalled device, connection or simulator.
    #[error("the TPM at TCTI `{tcti}` did not answer within {seconds} s; check that it is running and responsive (a stopped swtpm process, a hung device), then try again")]
    TimedOut { tcti: String, seconds: u64 },

    /// The worker thread ended or dropped the request without a reply.
    #[error("the TPM worker returned no reply (it stopped or failed internally); connect again")]
    WorkerStopped,

    /// The operating system could not start the worker thread.
    #[error("cannot start the TPM worker thread: {message}")]
    WorkerStart { message: String },

    /// The TPM or libtss2 returned a response code with no more specific variant.
    #[error("TPM {operation} failed: {message} (response code {code})")]
    Other {
        operation: &'static str,
        message: String,
        code: ResponseCode,
    },

    /// tss-esapi rejected a value before sending it, or could not parse the TPM's reply.
    #[error("TPM {operation} failed in tss-esapi: {message}")]
    Library {
        operation: &'static str,
        message: String,
    },
}

/// The two keys the worker re-creates from fixed templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The unrestricted ECDSA P-256 key that signs entry digests.
    Signing,
    /// The restricted ECDSA P-256 attestation key (AK) that signs quotes.
    Attestation,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Signing => f.write_str("signing key"),
            KeyKind::Attestation => f.write_str("attestation key (AK)"),
        }
    }
}

/// Whether a response code arrived while opening the TPM or on an open connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    InSession,
}

/// Returns the next step to suggest when the TPM at `tcti` cannot be reached.
pub fn connect_hint(tcti: &TctiSelection) -> String {
    if tcti.is_simulator() {
        "is swtpm running and listening on that port?".to_owned()
    } else if tcti.is_device() {
        let path = tcti
            .tcti
            .split_once(':')
            .map(|(_, path)| path)
            .filter(|path| !path.is_empty())
            .unwrap_or("/dev/tpmrm0");
        format!("is {path} present and readable and writable by this user?")
    } else {
        "is the TPM service for this TCTI running?".to_owned()
    }
}

/// Maps a response code from `operation` to the matching [`TpmError`].
pub fn classify_response_code(
    code: ResponseCode,
    operation: &'static str,
    message: String,
    tcti: &TctiSelection,
    phase: Phase,
) -> TpmError {
    if code.0 == RC_TCTI_NOT_SUPPORTED {
        return TpmError::TctiModuleMissing {
            tcti: tcti.tcti.clone(),
            module: tcti.module().to_owned(),
            code,
        };
    }

    let keys_lost = phase == Phase::InSession && code.0 == RC_REFERENCE_H0;
    if code.is_connection_failure() || keys_lost {
        return match phase {
            Phase::Connecting => TpmError::CannotConnect {
                tcti: tcti.tcti.clone(),
                origin: tcti.origin,
                hint: connect_hint(tcti),
                code,
            },
            Phase::InSession => TpmError::ConnectionLost {
                tcti: tcti.tcti.clone(),
                operation,
                code,
            },
        };
    }

    match code.0 {
        RC_LOCKOUT => TpmError::Lockout { operation, code },
        RC_OBJECT_MEMORY => TpmError::ObjectMemory { operation, code },
        RC_LOCALITY => TpmError::BadLocality { operation, code },
        _ => TpmError::Other {
            operation,
            message,
            code,
        },
    }
}

impl TpmError {
    /// Returns the raw response code behind this error, if the TPM or libtss2 returned one.
    pub fn response_code(&self) -> Option<ResponseCode> {
        match self {
            TpmError::CannotConnect { code, .. }
            | TpmError::ConnectionLost { code, .. }
            | TpmError::Lockout { code, .. }
            | TpmError::ObjectMemory { code, .. }
            | TpmError::BadLocality { code, .. }
            | TpmError::TctiModuleMissing { code, .. }
            | TpmError::Other { code, .. } => Some(*code),
            TpmError::InvalidTcti { .. }
            | TpmError::NotBuilt
            | TpmError::InvalidPcrIndex { .. }
            | TpmError::KeyChanged { .. }
            | TpmError::WorkerStopped
            | TpmError::TimedOut { .. }
            | TpmError::WorkerStart { .. }
            | TpmError::Library { .. } => None,
        }
    }

    /// Returns true when the connection is gone, so a later request may succeed after a reconnect.
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            TpmError::CannotConnect { .. } | TpmError::ConnectionLost { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swtpm() -> TctiSelection {
        TctiSelection::from_command_line("swtpm:host=127.0.0.1,port=2321")
    }

    #[test]
    fn response_code_displays_as_hex() {
        assert_eq!(ResponseCode(0xA000A).to_string(), "0xA000A");
        assert_eq!(ResponseCode(0x921).to_string(), "0x921");
    }

    #[test]
    fn io_error_while_connecting_names_tcti() {
        let error = classify_response_code(
            ResponseCode(RC_TCTI_IO_ERROR),
            "startup",
            String::new(),
            &swtpm(),
            Phase::Connecting,
        );
        let text = error.to_string();
        assert!(matches!(error, TpmError::CannotConnect { .. }));
        assert!(text.contains("swtpm:host=127.0.0.1,port=2321"), "{text}");
        assert!(text.contains("is swtpm running"), "{text}");
        assert!(text.contains("0xA000A"), "{text}");
    }

    #[test]
    fn device_hint_names_device_path() {
        let device = TctiSelection::from_command_line("device:/dev/tpm0");
        assert!(connect_hint(&device).contains("/dev/tpm0 present and readable"));

        let bare = TctiSelection::from_command_line("device");
        assert!(connect_hint(&bare).contains("/dev/tpmrm0"));
    }

    #[test]
    fn bad_sequence_in_session_is_connection_lost() {
        let error = classify_response_code(
            ResponseCode(RC_ESYS_BAD_SEQUENCE),
            "sign",
            String::new(),
            &swtpm(),
            Phase::InSession,
        );
        assert!(matches!(error, TpmError::ConnectionLost { .. }));
        assert!(error.is_connection_failure());
        assert!(error.to_string().contains("0x70007"));
    }

    #[test]
    fn unloaded_key_in_session_is_connection_lost() {
        let error = classify_response_code(
            ResponseCode(RC_REFERENCE_H0),
            "sign",
            String::new(),
            &swtpm(),
            Phase::InSession,
        );
        assert!(
            matches!(error, TpmError::ConnectionLost { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn tpm_warnings_map_to_variants() {
        let cases = [
            (RC_LOCKOUT, "Lockout"),
            (RC_OBJECT_MEMORY, "ObjectMemory"),
            (RC_LOCALITY, "BadLocality"),
            (RC_TCTI_NOT_SUPPORTED, "TctiModuleMissing"),
            (0x3E0, "Other"),
        ];
        for (code, variant) in cases {
            let error = classify_response_code(
                ResponseCode(code),
                "quote",
                "invalid ticket".into(),
                &swtpm(),
                Phase::InSession,
            );
            let debug = format!("{error:?}");
            assert!(debug.starts_with(variant), "0x{code:X} gave {debug}");
            assert_eq!(error.response_code(), Some(ResponseCode(code)));
            assert!(!error.is_connection_failure(), "0x{code:X}");
        }
    }

    #[test]
    fn module_missing_names_package() {
        let error = classify_response_code(
            ResponseCode(RC_TCTI_NOT_SUPPORTED),
            "connect",
            String::new(),
            &swtpm(),
            Phase::Connecting,
        );
        assert!(error.to_string().contains("libtss2-tcti-swtpm0"));
    }

    #[test]
    fn tpm_layer_codes_are_not_connection_failures() {
        assert!(!ResponseCode(RC_INITIALIZE).is_connection_failure());
        assert!(!ResponseCode(RC_LOCKOUT).is_connection_failure());
        assert!(ResponseCode(RC_TCTI_IO_ERROR).is_connection_failure());
        assert!(ResponseCode(RC_ESYS_IO_ERROR).is_connection_failure());
    }
}
