//! The facts of an entry line: its fields, hash match, signature and findings.

use std::borrow::Cow;

use crate::chain::crypto::{self, Hash32};
use crate::chain::entry::{self, DecisionEntry, DecodeError, SealMode, GENESIS};
use crate::chain::finding::FindingKind;
use crate::chain::gostr::GoEscapes;
use crate::chain::json::ValueKind;
use crate::chain::verify::keys::VerifyKeys;

use super::rewrite::{self, entry_rewrites, top_rewrites};
use super::{
    printable, EntryFacts, HashMatch, LineAnalyzer, LocalFinding, Previous, SignatureCheck,
    StoredIndex,
};

impl LineAnalyzer {
    pub(super) fn entry_facts(
        &mut self,
        bytes: &[u8],
        start: usize,
        entry_pos: usize,
        entry_members: &[usize],
        keys: &VerifyKeys,
    ) -> EntryFacts {
        let scan = &self.scan;
        let mut findings = Vec::new();
        let mut rewrites = 0u32;

        for dup in &scan.duplicates {
            let place = match dup.depth {
                1 => "the line's object".to_owned(),
                2 => "the entry object".to_owned(),
                d => format!("an object nested {d} levels deep"),
            };
            findings.push(LocalFinding::new(
                FindingKind::DuplicateKey,
                format!(
                    "key \"{}\" appears twice in {place} (Go matches keys ignoring case, so it reads only the last value); a viewer may show text that was never sealed",
                    printable(&dup.key)
                ),
            ));
        }

        // Top-level fields, decoded as Go decodes SealedEntry.
        let mut hash_text: Cow<[u8]> = Cow::Borrowed(b"");
        let mut signature_text: Cow<[u8]> = Cow::Borrowed(b"");
        let mut pcr_text: Cow<[u8]> = Cow::Borrowed(b"");
        let mut mode_text: Option<Cow<[u8]>> = None;
        let mut chain_idx = StoredIndex::Value(0);
        let mut top_unknown = false;
        let mut wrong_types: Vec<String> = Vec::new();
        for (i, member) in scan.top.iter().enumerate() {
            let field = member.field;
            let token = &bytes[member.value.clone()];
            let slot = match field {
                Some(0) => {
                    if member.kind != ValueKind::Object
                        && member.kind != ValueKind::Null
                        && i != entry_pos
                    {
                        wrong_types.push(format!("\"entry\" is {}", member.kind.name()));
                    }
                    continue;
                }
                Some(1) => &mut hash_text,
                Some(2) => &mut signature_text,
                Some(3) => &mut pcr_text,
                Some(4) => {
                    match member.kind {
                        ValueKind::String => mode_text = Some(string_bytes(token, member.escaped)),
                        ValueKind::Null => {}
                        k => wrong_types.push(format!(
                            "\"seal_mode\" must be a string but is {}",
                            k.name()
                        )),
                    }
                    continue;
                }
                Some(_) => {
                    match member.kind {
                        ValueKind::Number => match parse_go_int64(token) {
                            Some(v) => {
                                if token == b"-0" {
                                    rewrites |= rewrite::NUMBER_FORM;
                                }
                                chain_idx = StoredIndex::Value(v)
                            }
                            None => {
                                chain_idx = StoredIndex::Invalid;
                                wrong_types.push(format!(
                                    "\"chain_idx\" must be an integer but is {}",
                                    printable(&String::from_utf8_lossy(token))
                                ));
                            }
                        },
                        ValueKind::Null => {}
                        k => {
                            chain_idx = StoredIndex::Invalid;
                            wrong_types.push(format!(
                                "\"chain_idx\" must be an integer but is {}",
                                k.name()
                            ));
                        }
                    }
                    continue;
                }
                _ => {
                    top_unknown = true;
                    continue;
                }
            };
            match member.kind {
                ValueKind::String => *slot = string_bytes(token, member.escaped),
                ValueKind::Null => {}
                k => wrong_types.push(format!(
                    "\"{}\" must be a string but is {}",
                    entry::LINE_FIELDS[field.map_or(0, usize::from)],
                    k.name()
                )),
            }
        }

        // The entry object: raw bytes of the last object-valued `entry`, and
        // Go's merged decode of all of them.
        let entry_range = scan.top[entry_pos].value.clone();
        let raw_entry = &bytes[entry_range];
        let raw_hash = crypto::sha256(raw_entry);
        let members = scan
            .entry
            .iter()
            .filter(|(top, _)| entry_members.contains(top))
            .map(|(_, m)| m);
        let stored = entry::parse_hex32_bytes(&hash_text);
        let raw_verifies = stored.is_some_and(|(h, _)| h == raw_hash);
        // When the raw bytes verify, only previous_hash, unknown keys and
        // wrong types matter: skip decoding the other fields.
        // Without a 64-digit stored hash no re-encoding can match either.
        let (decoded, notes) = if raw_verifies || stored.is_none() {
            DecisionEntry::decode_light(bytes, members)
        } else {
            DecisionEntry::decode(bytes, members)
        };
        for e in &notes.wrong_types {
            if let DecodeError::WrongType { .. } = e {
                wrong_types.push(e.to_string());
            }
        }

        let mut hash_match = HashMatch::Mismatch;
        let mut go_version_form = false;
        if let Some((stored_hash, upper)) = stored {
            if upper {
                rewrites |= rewrite::HEX_CASE;
            }
            if stored_hash == raw_hash {
                hash_match = HashMatch::Raw;
            } else if wrong_types.is_empty() && notes.error.is_none() {
                self.scratch.clear();
                if decoded
                    .append_go_json(&mut self.scratch, GoEscapes::Go119)
                    .is_ok()
                {
                    if crypto::sha256(&self.scratch) == stored_hash {
                        hash_match = HashMatch::ReEncoded;
                    } else if decoded.has_version_dependent_escape() {
                        self.scratch.clear();
                        if decoded
                            .append_go_json(&mut self.scratch, GoEscapes::Go122)
                            .is_ok()
                            && crypto::sha256(&self.scratch) == stored_hash
                        {
                            hash_match = HashMatch::ReEncoded;
                            go_version_form = true;
                        }
                    }
                }
            }
        }

        if !wrong_types.is_empty() {
            findings.push(LocalFinding::new(
                FindingKind::MalformedLine,
                format!(
                    "wrong JSON type: {}; Go's decoder rejects this line (the reference drops it silently), so only its raw bytes were verified",
                    wrong_types.join("; ")
                ),
            ));
        }

        if hash_match == HashMatch::Mismatch {
            let why = match (&stored, &notes.error) {
                (None, _) if hash_text.is_empty() => "the line has no stored hash".to_owned(),
                (None, _) => "the stored hash is not 64 hex digits".to_owned(),
                (Some(_), Some(DecodeError::Timestamp(e))) => format!(
                    "the entry bytes do not match, and the timestamp cannot be re-encoded because Go cannot parse it ({e})"
                ),
                (Some(_), _) if !wrong_types.is_empty() => {
                    "the entry bytes do not match (a wrong JSON type prevents re-encoding)".to_owned()
                }
                (Some(_), _) => {
                    "neither the entry bytes nor their Go re-encoding match: the sealed content was changed after sealing".to_owned()
                }
            };
            findings.push(
                LocalFinding::new(FindingKind::HashMismatch, format!("hash mismatch: {why}"))
                    .values(crypto_hex(&raw_hash), lossy(&hash_text)),
            );
        }

        // Field findings only when the seal covers something.
        match hash_match {
            HashMatch::Raw => {
                for name in &notes.unknown {
                    findings.push(LocalFinding::new(
                        FindingKind::UnknownField,
                        format!(
                            "entry field \"{}\" is covered by the seal but unknown to this version (a newer logger wrote it)",
                            printable(name)
                        ),
                    ));
                }
            }
            HashMatch::ReEncoded => {
                for name in &notes.unknown {
                    findings.push(LocalFinding::new(
                        FindingKind::UnsealedField,
                        format!(
                            "entry field \"{}\" is not covered by the seal (the hash verifies only without it); its value is not shown",
                            printable(name)
                        ),
                    ));
                }
                rewrites |= entry_rewrites(bytes, &self.scan, entry_pos, &decoded, go_version_form);
            }
            HashMatch::Mismatch => {}
        }
        if hash_match != HashMatch::Mismatch {
            rewrites |= top_rewrites(bytes, &self.scan, top_unknown);
        }

        let replay_hash = stored.map_or(raw_hash, |(h, _)| h);
        let name = stored.map_or_else(|| crypto::text_name(&hash_text), |(h, _)| h);
        let plain_previous = notes.previous_plain.as_ref().map(|r| {
            let token = &bytes[r.clone()];
            &token[1..token.len() - 1]
        });
        let previous = if let Some(body) = plain_previous {
            match entry::parse_hex32_bytes(body) {
                Some((h, _)) => Previous::Name(h),
                None => Previous::Genesis,
            }
        } else if decoded.previous_hash == GENESIS {
            Previous::Genesis
        } else {
            match entry::parse_hex32(&decoded.previous_hash) {
                Some((h, false)) => Previous::Name(h),
                _ => Previous::Name(crypto::text_name(decoded.previous_hash.as_bytes())),
            }
        };
        // Texts are kept only where hex bytes cannot give them back.
        let previous_text = match previous {
            Previous::Genesis => String::new(),
            Previous::Name(_)
                if entry::parse_hex32(&decoded.previous_hash).is_some_and(|(_, upper)| !upper) =>
            {
                String::new()
            }
            Previous::Name(_) => decoded.previous_hash,
        };
        let stored_hash_text = match stored {
            Some((_, false)) => String::new(),
            _ => lossy(&hash_text),
        };

        let mut pcr_upper = false;
        let pcr = match entry::parse_hex32_bytes(&pcr_text) {
            Some((p, upper)) => {
                pcr_upper = upper;
                if upper {
                    rewrites |= rewrite::HEX_CASE;
                }
                Some(p)
            }
            None => None,
        };

        let seal_mode = match mode_text.as_deref() {
            Some(b"software") => Some(SealMode::Software),
            Some(b"tpm") => Some(SealMode::Tpm),
            _ => None,
        };
        let (signature, dev_key_valid) = check_signature(
            seal_mode,
            &signature_text,
            &replay_hash,
            keys,
            &mut rewrites,
        );
        match (seal_mode, &mode_text) {
            (Some(_), _) => {}
            (None, Some(text)) => findings.push(LocalFinding::error(
                FindingKind::SealModeChanged,
                format!(
                    "unknown seal_mode \"{}\": the signature was not checked",
                    lossy(text)
                ),
            )),
            (None, None) => findings.push(LocalFinding::error(
                FindingKind::SealModeChanged,
                "seal_mode is missing: the signature was not checked".to_owned(),
            )),
        }

        EntryFacts {
            record_start: start,
            name,
            replay_hash,
            stored_hash_text,
            hash_match,
            previous,
            previous_text,
            pcr_text: match pcr {
                Some(_) if !pcr_upper => String::new(),
                _ => lossy(&pcr_text),
            },
            pcr,
            chain_idx,
            seal_mode,
            signature,
            dev_key_valid,
            rewrites,
            findings,
        }
    }
}

/// Returns a JSON string's value as bytes, borrowed when it has no escape.
pub(super) fn string_bytes(token: &[u8], escaped: bool) -> Cow<'_, [u8]> {
    if escaped {
        Cow::Owned(entry::decode_string(token, true).into_bytes())
    } else {
        Cow::Borrowed(
            token
                .get(1..token.len().saturating_sub(1))
                .unwrap_or_default(),
        )
    }
}

/// Text for messages, with invisible characters escaped.
pub(super) fn lossy(bytes: &[u8]) -> String {
    printable(&String::from_utf8_lossy(bytes))
}

/// Positions of the `entry` members of a line's object, on the stack for up to four.
#[derive(Default)]
pub(super) struct EntryMembers {
    inline: [usize; 4],
    len: usize,
    spill: Vec<usize>,
}

impl EntryMembers {
    pub(super) fn push(&mut self, i: usize) {
        if self.len < self.inline.len() && self.spill.is_empty() {
            self.inline[self.len] = i;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.push(i);
        }
    }

    pub(super) fn as_slice(&self) -> &[usize] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

impl EntryFacts {
    /// `pcr_value` as written.
    pub fn pcr_display(&self) -> String {
        match (self.pcr, self.pcr_text.is_empty()) {
            (Some(p), true) => hex::encode(p),
            _ => self.pcr_text.clone(),
        }
    }

    /// `previous_hash` as written.
    pub fn previous_display(&self) -> String {
        match self.previous {
            Previous::Genesis => GENESIS.to_owned(),
            Previous::Name(h) if self.previous_text.is_empty() => hex::encode(h),
            Previous::Name(_) => self.previous_text.clone(),
        }
    }
}

pub(super) fn crypto_hex(h: &Hash32) -> String {
    hex::encode(h)
}

/// Checks the signature for the entry's seal mode.
pub(super) fn check_signature(
    mode: Option<SealMode>,
    text: &[u8],
    hash: &Hash32,
    keys: &VerifyKeys,
    rewrites: &mut u32,
) -> (SignatureCheck, bool) {
    match mode {
        None => (SignatureCheck::NotChecked, false),
        Some(SealMode::Software) => {
            let Some((sig, upper)) = entry::parse_hex32_bytes(text) else {
                return (SignatureCheck::Invalid, false);
            };
            let valid = keys.hmac.sign(hash) == sig;
            let dev_valid = if keys.secret_is_dev_key {
                valid
            } else {
                keys.dev_hmac.sign(hash) == sig
            };
            if (valid || dev_valid) && upper {
                *rewrites |= rewrite::HEX_CASE;
            }
            let check = if valid {
                SignatureCheck::Valid
            } else if dev_valid {
                SignatureCheck::DevKeyOnly
            } else if keys.empty_hmac.sign(hash) == sig {
                SignatureCheck::EmptyKeyOnly
            } else {
                SignatureCheck::Invalid
            };
            (check, dev_valid)
        }
        Some(SealMode::Tpm) => {
            if keys.tpm.is_empty() {
                return (SignatureCheck::TpmUnverifiable, false);
            }
            let Ok(bytes) = hex::decode(text) else {
                return (SignatureCheck::Invalid, false);
            };
            for (i, key) in keys.tpm.iter().enumerate() {
                if crate::attest::verify_entry_signature(&key.key, hash, &bytes).is_ok() {
                    if text.iter().any(|b| b.is_ascii_uppercase()) {
                        *rewrites |= rewrite::HEX_CASE;
                    }
                    return (SignatureCheck::TpmKey(i), false);
                }
            }
            (SignatureCheck::Invalid, false)
        }
    }
}

/// Parses an integer literal as Go's `strconv.ParseInt(s, 10, 64)` does for
/// a JSON number token: no fraction or exponent, within int64.
pub(super) fn parse_go_int64(token: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(token).ok()?;
    if text.contains(['.', 'e', 'E']) {
        return None;
    }
    text.parse::<i64>().ok()
}
