//! The SEC-006 entry types, decoded and encoded as the Go reference does.

use std::fmt;

use super::gostr::{self, GoEscapes};
use super::gotime::{GoTime, TimeError};
use super::json::{Member, ValueKind};

/// The file name the reference logger reads and writes inside its audit directory.
pub const CHAIN_FILE: &str = "decisions_sealed.jsonl";

/// The reference logger's built-in HMAC secret: public, so anyone can forge with it.
pub const DEV_KEY: &str = "sentinel-dev-key-not-for-production";

/// `previous_hash` of the first entry.
pub const GENESIS: &str = "genesis";

/// The signing method of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealMode {
    /// HMAC-SHA256 keyed with the chain's secret.
    Software,
    /// ECDSA P-256 by a TPM-resident key.
    Tpm,
}

impl SealMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SealMode::Software => "software",
            SealMode::Tpm => "tpm",
        }
    }

    pub fn parse(text: &str) -> Option<SealMode> {
        match text {
            "software" => Some(SealMode::Software),
            "tpm" => Some(SealMode::Tpm),
            _ => None,
        }
    }
}

impl fmt::Display for SealMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sealed part of a line, with the reference's field names and order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionEntry {
    pub id: String,
    pub timestamp: GoTime,
    pub action: String,
    pub decision: String,
    pub reason: String,
    pub event_id: String,
    pub incident_id: String,
    pub operator: String,
    pub previous_hash: String,
}

impl Default for DecisionEntry {
    fn default() -> Self {
        DecisionEntry {
            id: String::new(),
            timestamp: GoTime::ZERO,
            action: String::new(),
            decision: String::new(),
            reason: String::new(),
            event_id: String::new(),
            incident_id: String::new(),
            operator: String::new(),
            previous_hash: String::new(),
        }
    }
}

pub use super::json::{ENTRY_FIELDS, LINE_FIELDS};

/// A reason Go's decoder would reject an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A field contains a JSON type its Go type cannot take.
    WrongType {
        field: &'static str,
        found: ValueKind,
    },
    /// The timestamp is not one Go's `time.Parse(RFC3339)` accepts.
    Timestamp(TimeError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::WrongType { field, found } => {
                write!(
                    f,
                    "field \"{field}\" must be a string but is {}",
                    found.name()
                )
            }
            DecodeError::Timestamp(e) => write!(f, "timestamp Go cannot parse: {e}"),
        }
    }
}

/// Finds the entry field a key matches, as Go matches keys: folded case.
pub fn entry_field(folded_key: &str) -> Option<usize> {
    ENTRY_FIELDS.iter().position(|f| *f == folded_key)
}

/// Folds a key the way the scanner does, for matching it to field names.
pub fn fold_member_key(line: &[u8], member: &Member) -> String {
    let raw = &line[member.key.clone()];
    if !member.key_escaped && raw.is_ascii() {
        String::from_utf8_lossy(raw).to_ascii_lowercase()
    } else {
        gostr::fold_key(&gostr::unquote(raw))
    }
}

/// Decodes a JSON string token (quotes included) as Go does.
pub fn decode_string(token: &[u8], escaped: bool) -> String {
    let body = token
        .get(1..token.len().saturating_sub(1))
        .unwrap_or_default();
    if !escaped {
        if let Ok(s) = std::str::from_utf8(body) {
            return s.to_owned();
        }
    }
    gostr::unquote(body)
}

/// Notes from decoding an entry object, besides its fields.
#[derive(Debug, Default, Clone)]
pub struct DecodeNotes {
    /// Keys that match no field of the Go type, as written (decoded).
    pub unknown: Vec<String>,
    /// The first error Go's decoder would return, if any.
    pub error: Option<DecodeError>,
    /// Type errors on fields, all of them (Go returns only the first).
    pub wrong_types: Vec<DecodeError>,
    /// Set by `decode_light` when `previous_hash` is plain genesis or a
    /// lower-case digest: its token, left undecoded in the entry.
    pub previous_plain: Option<std::ops::Range<usize>>,
}

impl DecisionEntry {
    /// Decodes entry members as `json.Unmarshal` into the Go struct does:
    /// keys match fields case-insensitively, the last duplicate wins, `null`
    /// leaves a field unchanged, unknown keys are ignored.
    pub fn decode<'m>(
        line: &[u8],
        members: impl Iterator<Item = &'m Member>,
    ) -> (DecisionEntry, DecodeNotes) {
        let mut entry = DecisionEntry::default();
        let mut notes = DecodeNotes::default();
        for member in members {
            let Some(field) = member.field.map(usize::from) else {
                notes
                    .unknown
                    .push(gostr::unquote(&line[member.key.clone()]));
                continue;
            };
            let token = &line[member.value.clone()];
            if member.kind == ValueKind::Null {
                continue;
            }
            if field == 1 {
                // time.Time implements UnmarshalJSON: any literal or container
                // reaches time.Parse, and its error stops the decoder at once.
                if notes.error.is_some() {
                    continue;
                }
                // Go parses the raw token; an escaped timestamp is parsed
                // after unescaping, so an escape alone is not a finding.
                let unescaped;
                let token = if member.kind == ValueKind::String && member.escaped {
                    let mut t = Vec::with_capacity(token.len());
                    t.push(b'"');
                    t.extend_from_slice(decode_string(token, true).as_bytes());
                    t.push(b'"');
                    unescaped = t;
                    &unescaped[..]
                } else {
                    token
                };
                match GoTime::parse_json_token(token) {
                    Ok(t) => entry.timestamp = t,
                    Err(e) => notes.error = Some(DecodeError::Timestamp(e)),
                }
                continue;
            }
            if member.kind != ValueKind::String {
                let err = DecodeError::WrongType {
                    field: ENTRY_FIELDS[field],
                    found: member.kind,
                };
                notes.wrong_types.push(err.clone());
                if notes.error.is_none() {
                    notes.error = Some(err);
                }
                continue;
            }
            let value = decode_string(token, member.escaped);
            match field {
                0 => entry.id = value,
                2 => entry.action = value,
                3 => entry.decision = value,
                4 => entry.reason = value,
                5 => entry.event_id = value,
                6 => entry.incident_id = value,
                7 => entry.operator = value,
                _ => entry.previous_hash = value,
            }
        }
        (entry, notes)
    }

    /// Decodes only `previous_hash` and checks the other fields' JSON types,
    /// for entries whose raw bytes already verify.
    pub fn decode_light<'m>(
        line: &[u8],
        members: impl Iterator<Item = &'m Member>,
    ) -> (DecisionEntry, DecodeNotes) {
        let mut entry = DecisionEntry::default();
        let mut notes = DecodeNotes::default();
        for member in members {
            let Some(field) = member.field.map(usize::from) else {
                notes
                    .unknown
                    .push(gostr::unquote(&line[member.key.clone()]));
                continue;
            };
            match (field, member.kind) {
                (1, _) | (_, ValueKind::Null) => {}
                (8, ValueKind::String) => {
                    let token = &line[member.value.clone()];
                    let body = token
                        .get(1..token.len().saturating_sub(1))
                        .unwrap_or_default();
                    // Genesis and lower-case digests need no copy; see `previous_name`.
                    notes.previous_plain = if !member.escaped
                        && (body == GENESIS.as_bytes()
                            || parse_hex32_bytes(body).is_some_and(|(_, upper)| !upper))
                    {
                        Some(member.value.clone())
                    } else {
                        entry.previous_hash = decode_string(token, member.escaped);
                        None
                    };
                }
                (_, ValueKind::String) => {}
                (_, kind) => {
                    let err = DecodeError::WrongType {
                        field: ENTRY_FIELDS[field],
                        found: kind,
                    };
                    notes.wrong_types.push(err.clone());
                    notes.error.get_or_insert(err);
                }
            }
        }
        (entry, notes)
    }

    /// Appends the bytes `json.Marshal` writes for this entry; fails only for
    /// timestamps Go cannot marshal (years outside 0..=9999).
    pub fn append_go_json(&self, out: &mut Vec<u8>, escapes: GoEscapes) -> Result<(), TimeError> {
        out.extend_from_slice(b"{\"id\":");
        gostr::append_quoted(out, self.id.as_bytes(), escapes);
        out.extend_from_slice(b",\"timestamp\":");
        self.timestamp.append_json(out)?;
        out.extend_from_slice(b",\"action\":");
        gostr::append_quoted(out, self.action.as_bytes(), escapes);
        out.extend_from_slice(b",\"decision\":");
        gostr::append_quoted(out, self.decision.as_bytes(), escapes);
        out.extend_from_slice(b",\"reason\":");
        gostr::append_quoted(out, self.reason.as_bytes(), escapes);
        for (name, value) in [
            ("event_id", &self.event_id),
            ("incident_id", &self.incident_id),
            ("operator", &self.operator),
        ] {
            if !value.is_empty() {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
                gostr::append_quoted(out, value.as_bytes(), escapes);
            }
        }
        out.extend_from_slice(b",\"previous_hash\":");
        gostr::append_quoted(out, self.previous_hash.as_bytes(), escapes);
        out.push(b'}');
        Ok(())
    }

    /// Returns the entry's `json.Marshal` bytes as the current Go toolchain writes them.
    pub fn to_go_json(&self) -> Result<Vec<u8>, TimeError> {
        let mut out = Vec::with_capacity(256);
        self.append_go_json(&mut out, GoEscapes::Go122)?;
        Ok(out)
    }

    /// Returns true when some string field contains a backspace or form feed, the only
    /// characters whose escape differs between Go versions.
    pub fn has_version_dependent_escape(&self) -> bool {
        [
            &self.id,
            &self.action,
            &self.decision,
            &self.reason,
            &self.event_id,
            &self.incident_id,
            &self.operator,
            &self.previous_hash,
        ]
        .iter()
        .any(|s| s.bytes().any(|b| b == 0x08 || b == 0x0c))
    }
}

/// Lowercase hex of 32 bytes.
pub fn hex32(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

/// Hex digit values: 0x80 marks an invalid byte, 0x40 an upper-case digit.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 0x40 | (10 + i as u8);
        i += 1;
    }
    table
};

/// Parses 64 hex digits of either case; the flag is true when any digit is upper case.
pub fn parse_hex32(text: &str) -> Option<([u8; 32], bool)> {
    parse_hex32_bytes(text.as_bytes())
}

/// `parse_hex32` over bytes that need not be UTF-8.
pub fn parse_hex32_bytes(text: &[u8]) -> Option<([u8; 32], bool)> {
    let bytes: &[u8; 64] = text.try_into().ok()?;
    let mut out = [0u8; 32];
    let mut seen = 0u8;
    // Branch-free: every line carries four such fields.
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = HEX_VALUE[pair[0] as usize];
        let lo = HEX_VALUE[pair[1] as usize];
        seen |= hi | lo;
        out[i] = (hi & 0x0f) << 4 | (lo & 0x0f);
    }
    if seen & 0x80 != 0 {
        return None;
    }
    Some((out, seen & 0x40 != 0))
}

/// Writes one sealed line exactly as the reference's `json.Marshal(SealedEntry)`, plus `\n`.
pub fn append_sealed_line(
    out: &mut Vec<u8>,
    entry_json: &[u8],
    hash: &[u8; 32],
    signature_hex: &str,
    pcr: &[u8; 32],
    mode: SealMode,
    chain_idx: i64,
) {
    out.extend_from_slice(b"{\"entry\":");
    out.extend_from_slice(entry_json);
    out.extend_from_slice(b",\"hash\":\"");
    out.extend_from_slice(hex32(hash).as_bytes());
    out.extend_from_slice(b"\",\"signature\":\"");
    out.extend_from_slice(signature_hex.as_bytes());
    out.extend_from_slice(b"\",\"pcr_value\":\"");
    out.extend_from_slice(hex32(pcr).as_bytes());
    out.extend_from_slice(b"\",\"seal_mode\":\"");
    out.extend_from_slice(mode.as_str().as_bytes());
    out.extend_from_slice(b"\",\"chain_idx\":");
    out.extend_from_slice(chain_idx.to_string().as_bytes());
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_hex32_cases() {
        let lower = "5cd2d102d7e912e8ce54230e42e75a4357ccff17757dd2f08b617d4e6b4fce7f";
        let (bytes, upper) = parse_hex32(lower).unwrap();
        assert_eq!(hex::encode(bytes), lower);
        assert!(!upper);
        let (bytes2, upper2) = parse_hex32(&lower.to_uppercase()).unwrap();
        assert_eq!(bytes, bytes2);
        assert!(upper2);
        assert!(parse_hex32(&lower[..63]).is_none());
        assert!(parse_hex32(&format!("{}g", &lower[..63])).is_none());
        assert!(parse_hex32(&format!("{}\u{e9}", &lower[..62])).is_none());
    }
}
