//! P-256 public keys: loading from PEM, SEC1 and TPM coordinates,
//! fingerprints, and the `--trusted-keys` pin file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};
use thiserror::Error;

const PEM_BEGIN: &str = "-----BEGIN ";
const PEM_END: &str = "-----END ";
const PEM_PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
/// Size of a P-256 field element (one coordinate) in bytes.
const COORDINATE_LEN: usize = 32;

/// DER prefix of a P-256 SubjectPublicKeyInfo (RFC 5480): SEQUENCE, the
/// AlgorithmIdentifier id-ecPublicKey with namedCurve prime256v1, and the BIT
/// STRING header. The 65-byte uncompressed point follows it.
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Error from loading a public key or a pin file.
#[derive(Debug, Error)]
pub enum KeyError {
    /// No `-----BEGIN PUBLIC KEY-----` block in the text.
    #[error("no PEM public key block (-----BEGIN PUBLIC KEY-----) found")]
    NoPublicKey,
    /// A PEM block starts but never ends.
    #[error("line {line}: PEM block has no -----END {label}----- line")]
    UnterminatedPem {
        /// 1-based line of the BEGIN line.
        line: usize,
        /// The block's label.
        label: String,
    },
    /// A PEM block that is not a public key (a certificate or a private key).
    #[error("line {line}: PEM block \"{label}\" is not a public key; export the key with `tpm2_readpublic -f pem` or `openssl pkey -pubout`")]
    UnexpectedPemLabel {
        /// 1-based line of the BEGIN line.
        line: usize,
        /// The block's label.
        label: String,
    },
    /// A public key block that does not decode to a P-256 key.
    #[error("line {line}: invalid P-256 public key: {reason}")]
    InvalidPem {
        /// 1-based line of the BEGIN line.
        line: usize,
        /// The decoder's error message.
        reason: String,
    },
    /// SEC1 bytes that are not a point on P-256.
    #[error("invalid SEC1 P-256 public key: expected 04||x||y (65 bytes) or a compressed point, got {len} bytes not on the curve")]
    InvalidSec1 {
        /// Length of the input.
        len: usize,
    },
    /// A TPM coordinate longer than 32 bytes.
    #[error("ECC coordinate {coordinate} is {len} bytes, more than the 32 bytes of P-256")]
    CoordinateTooLong {
        /// `x` or `y`.
        coordinate: &'static str,
        /// Its length.
        len: usize,
    },
    /// A line in a pin file that is neither a fingerprint, a comment nor PEM.
    #[error("line {line}: {reason}")]
    InvalidPinLine {
        /// 1-based line number.
        line: usize,
        /// Description of the problem.
        reason: String,
    },
    /// A fingerprint string that is not `sha256:` followed by 64 hex digits.
    #[error("invalid key fingerprint {0:?}: expected sha256:<64 hex digits>")]
    InvalidFingerprint(String),
    /// PEM encoding failed.
    #[error("cannot encode public key as PEM: {0}")]
    Encode(String),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// SHA-256 of a key's DER SubjectPublicKeyInfo, shown as `sha256:<hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Computes the fingerprint of a P-256 public key.
    pub fn of(key: &VerifyingKey) -> Self {
        Self(Sha256::digest(spki_der(key)).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl FromStr for Fingerprint {
    type Err = KeyError;

    /// Parses `sha256:<64 hex>` or bare 64 hex digits, in either case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix("sha256:").unwrap_or(text);
        let invalid = || KeyError::InvalidFingerprint(text.to_string());
        if digits.len() != 64 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| invalid())?;
        Ok(Self(bytes))
    }
}

/// Returns the fingerprint of `key` as `sha256:<lowercase hex>`.
pub fn fingerprint(key: &VerifyingKey) -> String {
    Fingerprint::of(key).to_string()
}

/// Returns the DER SubjectPublicKeyInfo of a P-256 key. It is built from the
/// fixed prefix because every P-256 SPKI differs only in its point, which
/// keeps this infallible.
pub fn spki_der(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_encoded_point(false);
    let mut der = Vec::with_capacity(SPKI_P256_PREFIX.len() + point.len());
    der.extend_from_slice(&SPKI_P256_PREFIX);
    der.extend_from_slice(point.as_bytes());
    der
}

/// Writes a key as a PEM `PUBLIC KEY` block (SubjectPublicKeyInfo), with a
/// trailing newline.
pub fn to_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|error| KeyError::Encode(error.to_string()))
}

/// Loads a key from SEC1 bytes: `04||x||y`, or a compressed point.
pub fn key_from_sec1(bytes: &[u8]) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_sec1_bytes(bytes).map_err(|_| KeyError::InvalidSec1 { len: bytes.len() })
}

/// Loads a key from the x and y coordinates of a TPM's TPMS_ECC_POINT. A TPM
/// may drop leading zero bytes, so shorter coordinates are left-padded.
pub fn key_from_tpm_point(x: &[u8], y: &[u8]) -> Result<VerifyingKey, KeyError> {
    let mut sec1 = [0u8; 1 + 2 * COORDINATE_LEN];
    sec1[0] = 0x04;
    for (coordinate, bytes, start) in [("x", x, 1), ("y", y, 1 + COORDINATE_LEN)] {
        if bytes.len() > COORDINATE_LEN {
            return Err(KeyError::CoordinateTooLong {
                coordinate,
                len: bytes.len(),
            });
        }
        let end = start + COORDINATE_LEN;
        sec1[end - bytes.len()..end].copy_from_slice(bytes);
    }
    key_from_sec1(&sec1)
}

/// Loads every `PUBLIC KEY` block in a PEM file. Text outside the blocks is
/// ignored, as RFC 7468 allows. Other block labels (certificates, private
/// keys) are an error, and so is a file with no public key.
pub fn keys_from_pem(text: &str) -> Result<Vec<VerifyingKey>, KeyError> {
    let mut keys = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        if let Some(label) = pem_begin_label(line) {
            keys.push(read_pem_block(index + 1, label, &mut lines)?);
        }
    }
    if keys.is_empty() {
        return Err(KeyError::NoPublicKey);
    }
    Ok(keys)
}

/// Returns the label of a `-----BEGIN <label>-----` line.
fn pem_begin_label(line: &str) -> Option<&str> {
    line.trim().strip_prefix(PEM_BEGIN)?.strip_suffix("-----")
}

/// Reads the rest of a PEM block whose BEGIN line is `begin_line` and decodes
/// it as a P-256 public key.
fn read_pem_block<'a>(
    begin_line: usize,
    label: &str,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<VerifyingKey, KeyError> {
    if label != PEM_PUBLIC_KEY_LABEL {
        return Err(KeyError::UnexpectedPemLabel {
            line: begin_line,
            label: label.to_string(),
        });
    }
    let end_marker = format!("{PEM_END}{label}-----");
    let mut block = format!("{PEM_BEGIN}{label}-----\n");
    for (_, line) in lines.by_ref() {
        let line = line.trim();
        block.push_str(line);
        block.push('\n');
        if line == end_marker {
            return VerifyingKey::from_public_key_pem(&block).map_err(|error| {
                KeyError::InvalidPem {
                    line: begin_line,
                    reason: error.to_string(),
                }
            });
        }
    }
    Err(KeyError::UnterminatedPem {
        line: begin_line,
        label: label.to_string(),
    })
}

/// Reads a PEM file of public keys from disk.
pub fn load_keys_pem(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    keys_from_pem(&read_text(path)?)
}

fn read_text(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Pinned key fingerprints and public keys from a `--trusted-keys` file.
///
/// Each line is a fingerprint (`sha256:<64 hex>` or bare 64 hex digits,
/// either case), a comment after `#`, blank, or part of a PEM `PUBLIC KEY`
/// block. A PEM key pins its own fingerprint and is also available for
/// verification through [`TrustedKeys::keys`].
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    fingerprints: Vec<Fingerprint>,
    keys: Vec<VerifyingKey>,
}

impl TrustedKeys {
    /// Parses the text of a pin file. Errors name the 1-based line.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut trusted = Self::default();
        let mut lines = text.lines().enumerate();
        while let Some((index, raw_line)) = lines.next() {
            let line_number = index + 1;
            if let Some(label) = pem_begin_label(raw_line) {
                let key = read_pem_block(line_number, label, &mut lines)?;
                trusted.add_key(key);
                continue;
            }
            let line = raw_line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let fingerprint = line.parse::<Fingerprint>().map_err(|_| KeyError::InvalidPinLine {
                line: line_number,
                reason: format!(
                    "expected sha256:<64 hex digits>, 64 hex digits, a comment or a PEM public key, got {line:?}"
                ),
            })?;
            trusted.add_fingerprint(fingerprint);
        }
        Ok(trusted)
    }

    /// Reads and parses a pin file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::parse(&read_text(path)?)
    }

    fn add_fingerprint(&mut self, fingerprint: Fingerprint) {
        if !self.fingerprints.contains(&fingerprint) {
            self.fingerprints.push(fingerprint);
        }
    }

    fn add_key(&mut self, key: VerifyingKey) {
        self.add_fingerprint(Fingerprint::of(&key));
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Returns whether the key's fingerprint is pinned.
    pub fn contains(&self, key: &VerifyingKey) -> bool {
        self.contains_fingerprint(&Fingerprint::of(key))
    }

    /// Returns whether a fingerprint is pinned.
    pub fn contains_fingerprint(&self, fingerprint: &Fingerprint) -> bool {
        self.fingerprints.contains(fingerprint)
    }

    /// Pinned fingerprints, in file order without repeats.
    pub fn fingerprints(&self) -> &[Fingerprint] {
        &self.fingerprints
    }

    /// Public keys given in full as PEM blocks, in file order without repeats.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// Returns whether the file pinned nothing.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNING_KEY_PEM: &str = include_str!("../../tests/fixtures/attest/signing_key.pem");
    const AK_PEM: &str = include_str!("../../tests/fixtures/attest/ak.pem");

    fn signing_key() -> VerifyingKey {
        keys_from_pem(SIGNING_KEY_PEM).unwrap().remove(0)
    }

    fn ak() -> VerifyingKey {
        keys_from_pem(AK_PEM).unwrap().remove(0)
    }

    #[test]
    fn pem_single_key_loads() {
        let keys = keys_from_pem(SIGNING_KEY_PEM).unwrap();
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn pem_two_keys_load_in_order() {
        let text = format!("# entry key\n{SIGNING_KEY_PEM}\n\nattestation key:\n{AK_PEM}\n");
        let keys = keys_from_pem(&text).unwrap();
        assert_eq!(keys, vec![signing_key(), ak()]);
    }

    #[test]
    fn pem_without_key_rejected() {
        assert!(matches!(
            keys_from_pem("nothing here\n"),
            Err(KeyError::NoPublicKey)
        ));
    }

    #[test]
    fn pem_unterminated_names_line() {
        let text = format!(
            "\n\n{}",
            SIGNING_KEY_PEM.replace("-----END PUBLIC KEY-----", "")
        );
        let error = keys_from_pem(&text).unwrap_err();
        assert!(
            matches!(error, KeyError::UnterminatedPem { line: 3, .. }),
            "{error}"
        );
    }

    #[test]
    fn pem_private_key_label_rejected() {
        let text = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let error = keys_from_pem(text).unwrap_err();
        assert!(
            matches!(error, KeyError::UnexpectedPemLabel { line: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn pem_corrupt_base64_rejected() {
        let text = SIGNING_KEY_PEM.replacen("MFkw", "MFkx", 1);
        let error = keys_from_pem(&text).unwrap_err();
        assert!(
            matches!(error, KeyError::InvalidPem { line: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn pem_round_trips() {
        let key = signing_key();
        let pem = to_pem(&key).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(keys_from_pem(&pem).unwrap(), vec![key]);
        // tpm2_readpublic writes the same base64, without the final newline.
        assert_eq!(pem.trim_end(), SIGNING_KEY_PEM.trim_end());
    }

    #[test]
    fn spki_der_matches_p256_encoder() {
        let key = signing_key();
        let der = key.to_public_key_der().unwrap();
        assert_eq!(spki_der(&key), der.as_bytes());
    }

    #[test]
    fn fingerprint_is_sha256_of_der() {
        let key = signing_key();
        let expected = hex::encode(Sha256::digest(key.to_public_key_der().unwrap().as_bytes()));
        assert_eq!(fingerprint(&key), format!("sha256:{expected}"));
        assert_ne!(fingerprint(&key), fingerprint(&ak()));
    }

    #[test]
    fn sec1_and_tpm_point_give_same_key() {
        let key = signing_key();
        let point = key.to_encoded_point(false);
        assert_eq!(key_from_sec1(point.as_bytes()).unwrap(), key);
        let x = point.x().unwrap();
        let y = point.y().unwrap();
        assert_eq!(key_from_tpm_point(x, y).unwrap(), key);
    }

    #[test]
    fn tpm_point_short_coordinate_left_padded() {
        // Walks k*G until x has a leading zero byte (about 1 in 256 points),
        // then passes x without that byte, as a TPM may.
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::ProjectivePoint;
        let mut point = ProjectivePoint::GENERATOR;
        let mut found = None;
        for _ in 0..2000 {
            point += ProjectivePoint::GENERATOR;
            let encoded = point.to_affine().to_encoded_point(false);
            if encoded.as_bytes()[1] == 0 {
                found = Some(encoded);
                break;
            }
        }
        let encoded = found.expect("a multiple of G with x[0] == 0 within 2000 steps");
        let x = &encoded.as_bytes()[2..33];
        let y = &encoded.as_bytes()[33..];
        let key = key_from_tpm_point(x, y).unwrap();
        assert_eq!(key.to_encoded_point(false), encoded);
    }

    #[test]
    fn tpm_point_long_coordinate_rejected() {
        let error = key_from_tpm_point(&[1u8; 33], &[1u8; 32]).unwrap_err();
        assert!(matches!(
            error,
            KeyError::CoordinateTooLong {
                coordinate: "x",
                len: 33
            }
        ));
    }

    #[test]
    fn sec1_off_curve_rejected() {
        let mut bytes = signing_key().to_encoded_point(false).as_bytes().to_vec();
        bytes[64] ^= 1;
        assert!(matches!(
            key_from_sec1(&bytes),
            Err(KeyError::InvalidSec1 { len: 65 })
        ));
    }

    #[test]
    fn fingerprint_parses_both_forms() {
        let text = fingerprint(&signing_key());
        let parsed: Fingerprint = text.parse().unwrap();
        assert_eq!(parsed.to_string(), text);
        let bare = text.trim_start_matches("sha256:").to_uppercase();
        assert_eq!(bare.parse::<Fingerprint>().unwrap(), parsed);
        assert!("sha256:abc".parse::<Fingerprint>().is_err());
        assert!(format!("sha1:{bare}").parse::<Fingerprint>().is_err());
    }

    #[test]
    fn pin_file_mixes_fingerprints_and_pem() {
        let signing = signing_key();
        let text = format!(
            "# sealdesk pins\n\n{}  # entry key\n{AK_PEM}\n   \n",
            fingerprint(&signing)
        );
        let trusted = TrustedKeys::parse(&text).unwrap();
        assert!(trusted.contains(&signing));
        assert!(trusted.contains(&ak()));
        assert_eq!(trusted.fingerprints().len(), 2);
        assert_eq!(trusted.keys(), &[ak()]);
    }

    #[test]
    fn pin_file_bare_hex_pins() {
        let text = fingerprint(&ak()).replace("sha256:", "");
        let trusted = TrustedKeys::parse(&text).unwrap();
        assert!(trusted.contains(&ak()));
        assert!(!trusted.contains(&signing_key()));
        assert!(trusted.keys().is_empty());
    }

    #[test]
    fn pin_file_bad_line_names_line() {
        let text = format!("# pins\n{}\nsha256:1234\n", fingerprint(&ak()));
        let error = TrustedKeys::parse(&text).unwrap_err();
        assert!(
            matches!(error, KeyError::InvalidPinLine { line: 3, .. }),
            "{error}"
        );
        assert!(error.to_string().starts_with("line 3: "), "{error}");
    }

    #[test]
    fn pin_file_bad_pem_names_line() {
        let text = format!("# pins\n{}", AK_PEM.replacen("MFkw", "MFkx", 1));
        let error = TrustedKeys::parse(&text).unwrap_err();
        assert!(
            matches!(error, KeyError::InvalidPem { line: 2, .. }),
            "{error}"
        );
    }

    #[test]
    fn pin_file_empty_pins_nothing() {
        let trusted = TrustedKeys::parse("# nothing pinned yet\n\n").unwrap();
        assert!(trusted.is_empty());
        assert!(!trusted.contains(&ak()));
    }

    #[test]
    fn pin_file_missing_reports_path() {
        let error = TrustedKeys::load(Path::new("/nonexistent/sealdesk-pins")).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/sealdesk-pins"),
            "{error}"
        );
    }
}
