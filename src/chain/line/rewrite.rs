//! Ways a line's bytes differ from what the logger wrote, as bit flags.

use crate::chain::entry::{self, DecisionEntry, ENTRY_FIELDS};
use crate::chain::gostr::{self, GoEscapes};
use crate::chain::json::{Member, Scan, ValueKind};

pub const BOM: u32 = 1 << 0;
pub const CRLF: u32 = 1 << 1;
pub const BLANK: u32 = 1 << 2;
pub const KEY_ORDER: u32 = 1 << 3;
pub const WHITESPACE: u32 = 1 << 4;
pub const TOP_UNKNOWN: u32 = 1 << 5;
pub const ESCAPES: u32 = 1 << 6;
pub const KEY_CASE: u32 = 1 << 7;
pub const TIMESTAMP: u32 = 1 << 8;
pub const HEX_CASE: u32 = 1 << 9;
pub const OPTIONAL_EMPTY: u32 = 1 << 10;
pub const NUMBER_FORM: u32 = 1 << 11;
pub const NULL_FIELD: u32 = 1 << 12;
pub const DUPLICATE_KEY: u32 = 1 << 13;
pub const GO_VERSION: u32 = 1 << 14;

/// Plain words for each flag, in the order they are listed.
pub const NAMES: [(u32, &str); 15] = [
    (BOM, "UTF-8 byte order mark"),
    (CRLF, "CRLF line ending"),
    (BLANK, "blank line"),
    (KEY_ORDER, "key order"),
    (WHITESPACE, "whitespace"),
    (TOP_UNKNOWN, "unknown top-level fields"),
    (ESCAPES, "string escapes"),
    (KEY_CASE, "key case"),
    (TIMESTAMP, "timestamp form"),
    (HEX_CASE, "upper-case hex"),
    (OPTIONAL_EMPTY, "empty optional fields written out"),
    (NUMBER_FORM, "number form"),
    (NULL_FIELD, "null in place of a value"),
    (DUPLICATE_KEY, "duplicate keys"),
    (
        GO_VERSION,
        "backspace/form feed escaped as by another Go version",
    ),
];

pub fn describe(flags: u32) -> String {
    NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Flags for the ways the line's object differs from Go's layout. Only
/// called when the sealed content verifies.
pub(super) fn top_rewrites(bytes: &[u8], scan: &Scan, top_unknown: bool) -> u32 {
    let mut flags = 0;
    if top_unknown {
        flags |= TOP_UNKNOWN;
    }
    if !scan.duplicates.is_empty() {
        flags |= DUPLICATE_KEY;
    }
    flags |= layout_rewrites(
        bytes,
        scan.value.clone(),
        scan.top.iter(),
        &entry::LINE_FIELDS,
    );
    for member in &scan.top {
        if member.kind == ValueKind::String && member.escaped {
            flags |= ESCAPES;
        }
        if member.kind == ValueKind::Null {
            flags |= NULL_FIELD;
        }
    }
    flags
}

/// Flags for the ways the entry object differs from Go's encoding of the
/// decoded entry: called when only the re-encoding verifies.
pub(super) fn entry_rewrites(
    bytes: &[u8],
    scan: &Scan,
    entry_pos: usize,
    decoded: &DecisionEntry,
    go_version_form: bool,
) -> u32 {
    let mut flags = 0;
    if go_version_form {
        flags |= GO_VERSION;
    }
    let range = scan.top[entry_pos].value.clone();
    let members: Vec<&Member> = scan
        .entry
        .iter()
        .filter(|(top, _)| *top == entry_pos)
        .map(|(_, m)| m)
        .collect();
    flags |= layout_rewrites(bytes, range, members.iter().copied(), &ENTRY_FIELDS);
    let mut scratch = Vec::new();
    for member in &members {
        let folded = entry::fold_member_key(bytes, member);
        let token = &bytes[member.value.clone()];
        match (folded.as_str(), member.kind) {
            (_, ValueKind::Null) => {
                let optional = matches!(folded.as_str(), "event_id" | "incident_id" | "operator");
                flags |= if optional { OPTIONAL_EMPTY } else { NULL_FIELD };
            }
            ("timestamp", _) => {
                scratch.clear();
                if decoded.timestamp.append_json(&mut scratch).is_ok() && scratch != token {
                    flags |= TIMESTAMP;
                }
            }
            ("event_id" | "incident_id" | "operator", ValueKind::String) if token == b"\"\"" => {
                flags |= OPTIONAL_EMPTY;
            }
            (_, ValueKind::String) => {
                let value = entry::decode_string(token, member.escaped);
                scratch.clear();
                gostr::append_quoted(&mut scratch, value.as_bytes(), GoEscapes::Go119);
                if scratch != token {
                    let mut newer = Vec::new();
                    gostr::append_quoted(&mut newer, value.as_bytes(), GoEscapes::Go122);
                    if newer != token {
                        flags |= ESCAPES;
                    }
                }
            }
            _ => {}
        }
    }
    flags
}

/// Key case, key order and whitespace of one object against Go's field order.
pub(super) fn layout_rewrites<'m>(
    bytes: &[u8],
    object: std::ops::Range<usize>,
    members: impl Iterator<Item = &'m Member>,
    fields: &[&str],
) -> u32 {
    let mut flags = 0;
    let mut last_field = None;
    let mut expected_next = object.start + 1;
    for member in members {
        let raw_key = &bytes[member.key.clone()];
        if let Some(pos) = member.field.map(usize::from) {
            if raw_key != fields[pos].as_bytes() {
                flags |= KEY_CASE;
            }
            if last_field.is_some_and(|last| pos <= last) {
                flags |= KEY_ORDER;
            }
            last_field = Some(pos);
        }
        // Go writes `{"k":v,"k":v}` with no whitespace anywhere.
        if member.key.start != expected_next + 1 || member.value.start != member.key.end + 2 {
            flags |= WHITESPACE;
        }
        expected_next = member.value.end + 1;
    }
    if expected_next != object.end {
        flags |= WHITESPACE;
    }
    if object.start != 0 && fields.len() == entry::LINE_FIELDS.len() {
        flags |= WHITESPACE;
    }
    flags
}
