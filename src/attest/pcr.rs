//! PCR selections (TPML_PCR_SELECTION) and the quote's PCR digest.

use sha2::{Digest, Sha256};

use super::quote::QuoteError;
use super::signature::TPM_ALG_SHA256;

/// TPM_ALG_SHA1 (TPM 2.0 Part 2).
pub const TPM_ALG_SHA1: u16 = 0x0004;
/// TPM_ALG_SHA384 (TPM 2.0 Part 2).
pub const TPM_ALG_SHA384: u16 = 0x000C;
/// TPM_ALG_SHA512 (TPM 2.0 Part 2).
pub const TPM_ALG_SHA512: u16 = 0x000D;
/// PCR_SELECT_MIN for a TPM with 24 PCRs (PC Client profile), so a quote's
/// selection bitmap has at least 3 bytes.
const MIN_SELECT_SIZE: usize = 3;

/// One bank of a TPML_PCR_SELECTION: a hash algorithm and a bitmap in which
/// bit `j` of byte `i` selects PCR `8 * i + j`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    /// TPM_ALG_ID of the PCR bank.
    pub hash: u16,
    /// `pcrSelect`, `sizeofSelect` bytes long.
    pub select: Vec<u8>,
}

impl PcrSelection {
    /// Builds the selection of `pcrs` in bank `hash`, with at least
    /// 3 bitmap bytes: `sha256:23` gives `[0x00, 0x00, 0x80]`.
    pub fn new(hash: u16, pcrs: &[u32]) -> Result<Self, QuoteError> {
        let highest = pcrs.iter().copied().max().unwrap_or(0);
        let size = usize::try_from(highest / 8 + 1)
            .unwrap_or(usize::MAX)
            .max(MIN_SELECT_SIZE);
        if size > usize::from(u8::MAX) {
            return Err(QuoteError::InvalidSelection {
                text: format!("{pcrs:?}"),
                reason: format!("PCR {highest} needs more than 255 bitmap bytes"),
            });
        }
        let mut select = vec![0u8; size];
        for &pcr in pcrs {
            // The index is in bounds because `size > highest / 8 >= pcr / 8`.
            select[(pcr / 8) as usize] |= 1 << (pcr % 8);
        }
        Ok(Self { hash, select })
    }

    /// Returns the selected PCR indices in ascending order, the order in
    /// which the TPM concatenates their values.
    pub fn pcrs(&self) -> Vec<u32> {
        let mut pcrs = Vec::new();
        for (byte_index, byte) in (0u32..).zip(&self.select) {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    pcrs.push(byte_index * 8 + bit);
                }
            }
        }
        pcrs
    }
}

/// Returns the name tpm2-tools uses for a hash algorithm, or its hex id.
pub fn hash_name(hash: u16) -> String {
    match hash {
        TPM_ALG_SHA1 => "sha1".to_string(),
        TPM_ALG_SHA256 => "sha256".to_string(),
        TPM_ALG_SHA384 => "sha384".to_string(),
        TPM_ALG_SHA512 => "sha512".to_string(),
        other => format!("0x{other:04x}"),
    }
}

/// Parses a PCR selection in tpm2-tools syntax: banks separated by `+`, each
/// `<hash>:<pcr>[,<pcr>...]`, e.g. `sha256:23` or `sha1:0+sha256:16,23`.
pub fn parse_pcr_selection(text: &str) -> Result<Vec<PcrSelection>, QuoteError> {
    let invalid = |reason: String| QuoteError::InvalidSelection {
        text: text.to_string(),
        reason,
    };
    let mut selections = Vec::new();
    for bank in text.split('+') {
        let (hash_text, pcr_list) = bank
            .split_once(':')
            .ok_or_else(|| invalid(format!("{bank:?} has no ':' between hash and PCR list")))?;
        let hash = match hash_text.trim().to_ascii_lowercase().as_str() {
            "sha1" => TPM_ALG_SHA1,
            "sha256" => TPM_ALG_SHA256,
            "sha384" => TPM_ALG_SHA384,
            "sha512" => TPM_ALG_SHA512,
            other => return Err(invalid(format!("unknown hash algorithm {other:?}"))),
        };
        let mut pcrs = Vec::new();
        for item in pcr_list.split(',') {
            let pcr = item
                .trim()
                .parse::<u32>()
                .map_err(|_| invalid(format!("{item:?} is not a PCR index")))?;
            pcrs.push(pcr);
        }
        selections.push(PcrSelection::new(hash, &pcrs)?);
    }
    Ok(selections)
}

/// Maps a TPML_PCR_SELECTION to its PCRs as `(hash, index)` pairs, in the
/// order the TPM concatenates their values for `pcrDigest`: banks in list
/// order, PCRs ascending within each bank.
pub fn selected_pcrs(selections: &[PcrSelection]) -> Vec<(u16, u32)> {
    selections
        .iter()
        .flat_map(|selection| {
            selection
                .pcrs()
                .into_iter()
                .map(|pcr| (selection.hash, pcr))
        })
        .collect()
}

/// Returns `pcrDigest` as a TPM computes it for SHA-256 PCR values: SHA-256
/// of the values concatenated in selection order.
pub fn pcr_digest(pcr_values: &[[u8; 32]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for value in pcr_values {
        hasher.update(value);
    }
    hasher.finalize().into()
}

/// Formats PCRs as tpm2-tools selections, e.g. `sha256:16,23`.
pub(crate) fn describe_pcrs(pcrs: &[(u16, u32)]) -> String {
    if pcrs.is_empty() {
        return "no PCR".to_string();
    }
    let mut banks: Vec<(u16, Vec<String>)> = Vec::new();
    for &(hash, pcr) in pcrs {
        match banks.last_mut() {
            Some((last_hash, list)) if *last_hash == hash => list.push(pcr.to_string()),
            _ => banks.push((hash, vec![pcr.to_string()])),
        }
    }
    banks
        .iter()
        .map(|(hash, list)| format!("{}:{}", hash_name(*hash), list.join(",")))
        .collect::<Vec<_>>()
        .join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_bitmap_for_pcr_23() {
        let selection = PcrSelection::new(TPM_ALG_SHA256, &[23]).unwrap();
        assert_eq!(selection.select, vec![0x00, 0x00, 0x80]);
        assert_eq!(selection.pcrs(), vec![23]);
        assert_eq!(parse_pcr_selection("sha256:23").unwrap(), vec![selection]);
    }

    #[test]
    fn selection_maps_in_tpm_order() {
        let selections = parse_pcr_selection("sha1:7+sha256:23,0,16").unwrap();
        assert_eq!(selections[1].select, vec![0x01, 0x00, 0x81]);
        assert_eq!(
            selected_pcrs(&selections),
            vec![
                (TPM_ALG_SHA1, 7),
                (TPM_ALG_SHA256, 0),
                (TPM_ALG_SHA256, 16),
                (TPM_ALG_SHA256, 23)
            ]
        );
        assert_eq!(
            describe_pcrs(&selected_pcrs(&selections)),
            "sha1:7+sha256:0,16,23"
        );
    }

    #[test]
    fn selection_above_pcr_23_grows_bitmap() {
        let selection = PcrSelection::new(TPM_ALG_SHA256, &[24]).unwrap();
        assert_eq!(selection.select, vec![0, 0, 0, 0x01]);
        assert!(PcrSelection::new(TPM_ALG_SHA256, &[8 * 255]).is_err());
        assert!(PcrSelection::new(TPM_ALG_SHA256, &[8 * 255 - 1]).is_ok());
    }

    #[test]
    fn selection_text_errors() {
        for text in ["sha256", "md5:1", "sha256:x", "sha256:", "sha256:1,,2"] {
            assert!(parse_pcr_selection(text).is_err(), "{text}");
        }
    }
}
