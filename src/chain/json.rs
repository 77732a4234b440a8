//! A JSON scanner that keeps byte spans, built for verifying sealed lines.
//!
//! It accepts exactly what Go's `encoding/json` scanner accepts (raw invalid
//! UTF-8 inside strings included, raw control bytes rejected, nesting up to
//! 10,000 levels) and records, without copying, the members of the top-level
//! object and of each `entry` object in it. While scanning it finds keys that
//! Go would treat as the same field (case-insensitive under Unicode simple
//! folding) in every object at every depth.

use std::ops::Range;

use super::gostr;

/// Go's `encoding/json` refuses documents nested deeper than this.
pub const MAX_DEPTH: usize = 10_000;

/// Objects with more keys than this switch from pairwise key comparison to a hash set.
const PAIRWISE_KEY_LIMIT: usize = 24;

/// The entry fields in the order Go writes them.
pub const ENTRY_FIELDS: [&str; 9] = [
    "id",
    "timestamp",
    "action",
    "decision",
    "reason",
    "event_id",
    "incident_id",
    "operator",
    "previous_hash",
];

/// The line's fields around the entry, in the order Go writes them.
pub const LINE_FIELDS: [&str; 6] = [
    "entry",
    "hash",
    "signature",
    "pcr_value",
    "seal_mode",
    "chain_idx",
];

/// Position of `entry` in [`LINE_FIELDS`].
pub const ENTRY_MEMBER: u8 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl ValueKind {
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Object => "an object",
            ValueKind::Array => "an array",
            ValueKind::String => "a string",
            ValueKind::Number => "a number",
            ValueKind::Bool => "a boolean",
            ValueKind::Null => "null",
        }
    }
}

/// One `"key": value` member, as byte ranges into the scanned input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The key's bytes between its quotes, still escaped.
    pub key: Range<usize>,
    /// True when the key contains a backslash escape.
    pub key_escaped: bool,
    /// The whole value token, quotes included for strings.
    pub value: Range<usize>,
    pub kind: ValueKind,
    /// For strings: true when the body contains a backslash escape.
    pub escaped: bool,
    /// The field Go matches the key to. It is an index into [`LINE_FIELDS`]
    /// for members of the line's object and into [`ENTRY_FIELDS`] for members
    /// of an `entry` object, or `None` for unknown keys.
    pub field: Option<u8>,
}

/// Two keys of one object that Go matches to the same field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The second key, decoded.
    pub key: String,
    /// Nesting depth of the object: 1 for the line's object, 2 for `entry`.
    pub depth: usize,
    /// Byte position of the second key's opening quote.
    pub at: usize,
}

/// Why scanning stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// The input ended inside a value with no syntax error before: a proper prefix.
    Incomplete,
    /// A syntax error at a byte position.
    Syntax { at: usize, reason: &'static str },
}

/// Where a top-level object value ends, and what lies after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trailing {
    /// Only JSON whitespace follows.
    None,
    /// Something else starts at this position.
    At(usize),
}

/// The result of scanning one line.
#[derive(Debug, Default)]
pub struct Scan {
    /// True when the line's first value is an object.
    pub is_object: bool,
    /// Kind of the first value when it is not an object.
    pub top_kind: Option<ValueKind>,
    /// Range of the first value.
    pub value: Range<usize>,
    /// Members of the top-level object, in order.
    pub top: Vec<Member>,
    /// Members of each top-level `entry` member whose value is an object,
    /// tagged with the position of that `entry` member in `top`.
    pub entry: Vec<(usize, Member)>,
    pub duplicates: Vec<DuplicateKey>,
}

impl Scan {
    fn clear(&mut self) {
        self.is_object = false;
        self.top_kind = None;
        self.value = 0..0;
        self.top.clear();
        self.entry.clear();
        self.duplicates.clear();
    }
}

/// A reusable scanner: its buffers are kept between lines so that scanning an
/// ordinary line allocates nothing.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Folded keys of the objects currently open, back to back.
    key_arena: Vec<u8>,
    /// Ranges into `key_arena`, one per key of the open objects.
    key_ranges: Vec<Range<usize>>,
    /// A 64-bit hash of each folded key in `key_ranges`, to skip most byte comparisons.
    key_hashes: Vec<u64>,
    /// For each open object: the first index into `key_ranges`, and a hash
    /// set once the object has many keys.
    frames: Vec<KeyFrame>,
    /// Container stack of the generic skipper.
    stack: Vec<u8>,
    fold_scratch: String,
}

#[derive(Debug)]
struct KeyFrame {
    first: usize,
    depth: usize,
    set: Option<std::collections::HashSet<Vec<u8>>>,
    /// Folded names already reported as duplicates in this object.
    reported: Vec<Vec<u8>>,
    /// The field names this object's keys are matched to (empty for objects
    /// that are neither the line's object nor its `entry`).
    fields: &'static [&'static str],
    /// While true, every key so far spelled one of `fields` exactly, each a
    /// different one: such keys cannot collide, so they are only marked in
    /// `exact` and put in the key arena when another key arrives.
    only_exact: bool,
    /// Bit i set: `fields[i]` was seen spelled exactly.
    exact: u64,
    /// The field expected next, as Go writes them in order.
    next: usize,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Result<u8, ScanError> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or(ScanError::Incomplete)
    }

    fn syntax(&self, reason: &'static str) -> ScanError {
        ScanError::Syntax {
            at: self.pos,
            reason,
        }
    }

    /// Scans a string token starting at its opening quote. Returns whether it
    /// contains an escape; leaves the cursor after the closing quote.
    fn string(&mut self) -> Result<bool, ScanError> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            let Some(run) = string_stop(&self.bytes[self.pos..]) else {
                self.pos = self.bytes.len();
                return Err(ScanError::Incomplete);
            };
            self.pos += run;
            match self.bytes[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                    let c = self.peek()?;
                    match c {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                        b'u' => {
                            self.pos += 1;
                            for _ in 0..4 {
                                let h = self.peek()?;
                                if !h.is_ascii_hexdigit() {
                                    return Err(self.syntax("invalid \\u escape in string"));
                                }
                                self.pos += 1;
                            }
                        }
                        _ => return Err(self.syntax("invalid escape in string")),
                    }
                }
                _ => return Err(self.syntax("control character in string")),
            }
        }
    }

    fn number(&mut self) -> Result<(), ScanError> {
        if self.peek()? == b'-' {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                while matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.syntax("invalid number")),
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.syntax("invalid number"));
            }
            while matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek()?, b'+' | b'-') {
                self.pos += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return Err(self.syntax("invalid number"));
            }
            while matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }
        // A number is complete only when something follows it.
        if self.pos >= self.bytes.len() {
            return Err(ScanError::Incomplete);
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), ScanError> {
        for &w in word {
            let b = self.peek()?;
            if b != w {
                return Err(self.syntax("invalid literal"));
            }
            self.pos += 1;
        }
        Ok(())
    }
}

impl Scanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans `bytes` as one JSON value with optional whitespace around it.
    /// On success returns where trailing non-whitespace starts, if anywhere.
    pub fn scan(&mut self, bytes: &[u8], out: &mut Scan) -> Result<Trailing, ScanError> {
        out.clear();
        self.key_arena.clear();
        self.key_ranges.clear();
        self.key_hashes.clear();
        self.frames.clear();
        self.stack.clear();

        let mut cur = Cursor { bytes, pos: 0 };
        cur.skip_ws();
        let start = cur.pos;
        if cur.peek()? == b'{' {
            out.is_object = true;
            self.top_object(&mut cur, out)?;
        } else {
            out.top_kind = Some(self.skip_value(&mut cur, 1, out)?);
        }
        out.value = start..cur.pos;
        cur.skip_ws();
        if cur.pos < bytes.len() {
            Ok(Trailing::At(cur.pos))
        } else {
            Ok(Trailing::None)
        }
    }

    fn top_object(&mut self, cur: &mut Cursor, out: &mut Scan) -> Result<(), ScanError> {
        self.object(cur, 1, &LINE_FIELDS, out, |scanner, cur, key, out| {
            let is_entry = key.1 == Some(ENTRY_MEMBER);
            let vstart = cur.pos;
            let (kind, escaped) = if is_entry && cur.peek()? == b'{' {
                let top_index = out.top.len();
                scanner.entry_object(cur, top_index, out)?;
                (ValueKind::Object, false)
            } else {
                scanner.member_value(cur, 2, out)?
            };
            out.top.push(Member {
                key: key.0.clone(),
                key_escaped: key.2,
                value: vstart..cur.pos,
                kind,
                escaped,
                field: key.1,
            });
            Ok(())
        })
    }

    fn entry_object(
        &mut self,
        cur: &mut Cursor,
        top_index: usize,
        out: &mut Scan,
    ) -> Result<(), ScanError> {
        self.object(cur, 2, &ENTRY_FIELDS, out, |scanner, cur, key, out| {
            let vstart = cur.pos;
            let (kind, escaped) = scanner.member_value(cur, 3, out)?;
            out.entry.push((
                top_index,
                Member {
                    key: key.0.clone(),
                    key_escaped: key.2,
                    value: vstart..cur.pos,
                    kind,
                    escaped,
                    field: key.1,
                },
            ));
            Ok(())
        })
    }

    /// Scans a member's value; objects and arrays go through the generic skipper.
    fn member_value(
        &mut self,
        cur: &mut Cursor,
        depth: usize,
        out: &mut Scan,
    ) -> Result<(ValueKind, bool), ScanError> {
        if cur.peek()? == b'"' {
            let escaped = cur.string()?;
            return Ok((ValueKind::String, escaped));
        }
        let kind = self.skip_value(cur, depth, out)?;
        Ok((kind, false))
    }

    /// Scans an object at `depth` (1 = the line's object), calling `on_member`
    /// with the cursor at each value and the key's match in `fields`. Checks
    /// keys for Go-equivalent duplicates.
    fn object<F>(
        &mut self,
        cur: &mut Cursor,
        depth: usize,
        fields: &'static [&'static str],
        out: &mut Scan,
        mut on_member: F,
    ) -> Result<(), ScanError>
    where
        F: FnMut(
            &mut Self,
            &mut Cursor,
            (Range<usize>, Option<u8>, bool),
            &mut Scan,
        ) -> Result<(), ScanError>,
    {
        cur.pos += 1; // '{'
        self.open_frame(depth, fields);
        cur.skip_ws();
        if cur.peek()? == b'}' {
            cur.pos += 1;
            self.close_frame();
            return Ok(());
        }
        loop {
            cur.skip_ws();
            if cur.peek()? != b'"' {
                return Err(cur.syntax("expected a string key"));
            }
            let key_at = cur.pos;
            let key_escaped = cur.string()?;
            let key = key_at + 1..cur.pos - 1;
            let field = self.add_key(cur.bytes, key.clone(), key_escaped, key_at, depth, out);
            cur.skip_ws();
            if cur.peek()? != b':' {
                return Err(cur.syntax("expected ':' after object key"));
            }
            cur.pos += 1;
            cur.skip_ws();
            on_member(self, cur, (key, field, key_escaped), out)?;
            cur.skip_ws();
            match cur.peek()? {
                b',' => cur.pos += 1,
                b'}' => {
                    cur.pos += 1;
                    self.close_frame();
                    return Ok(());
                }
                _ => return Err(cur.syntax("expected ',' or '}' after object member")),
            }
        }
    }

    fn open_frame(&mut self, depth: usize, fields: &'static [&'static str]) {
        self.frames.push(KeyFrame {
            first: self.key_ranges.len(),
            depth,
            set: None,
            reported: Vec::new(),
            fields,
            only_exact: true,
            exact: 0,
            next: 0,
        });
    }

    fn close_frame(&mut self) {
        if let Some(frame) = self.frames.pop() {
            if let Some(r) = self.key_ranges.get(frame.first) {
                self.key_arena.truncate(r.start);
            }
            self.key_ranges.truncate(frame.first);
            self.key_hashes.truncate(frame.first);
        }
    }

    /// Folds a key, records it in the innermost open object and reports it
    /// when Go would match it to a key already there. Returns the field of
    /// the object's field list that Go matches the key to.
    fn add_key(
        &mut self,
        bytes: &[u8],
        key: Range<usize>,
        escaped: bool,
        at: usize,
        depth: usize,
        out: &mut Scan,
    ) -> Option<u8> {
        let raw = &bytes[key];
        let frame = self.frames.last_mut()?;
        if frame.only_exact {
            // The common case: Go's own spelling of a field not seen yet.
            if !escaped {
                if let Some(i) = exact_field(frame.fields, frame.next, raw) {
                    let bit = 1u64 << i;
                    if frame.exact & bit == 0 {
                        frame.exact |= bit;
                        frame.next = i + 1;
                        return u8::try_from(i).ok();
                    }
                }
            }
            // Any other key is compared with everything before it, so the
            // exact keys seen so far go into the arena now.
            frame.only_exact = false;
            let fields = frame.fields;
            let mut exact = frame.exact;
            while exact != 0 {
                let i = exact.trailing_zeros() as usize;
                exact &= exact - 1;
                let start = self.key_arena.len();
                self.key_arena.extend_from_slice(fields[i].as_bytes());
                self.key_hashes.push(key_hash(fields[i].as_bytes()));
                self.key_ranges.push(start..self.key_arena.len());
            }
        }
        let start = self.key_arena.len();
        if !escaped && raw.is_ascii() {
            self.key_arena.extend_from_slice(raw);
            self.key_arena[start..].make_ascii_lowercase();
        } else {
            let decoded = gostr::unquote(raw);
            self.fold_scratch = gostr::fold_key(&decoded);
            self.key_arena
                .extend_from_slice(self.fold_scratch.as_bytes());
        }
        let folded = start..self.key_arena.len();
        let Some(frame) = self.frames.last_mut() else {
            self.key_arena.truncate(start);
            return None;
        };
        let first = frame.first;
        let count = self.key_ranges.len() - first;
        let name = &self.key_arena[folded.clone()];
        let field = frame
            .fields
            .iter()
            .position(|f| f.as_bytes() == name)
            .and_then(|i| u8::try_from(i).ok());
        let name_hash = key_hash(name);
        let seen = if let Some(set) = frame.set.as_mut() {
            !set.insert(name.to_vec())
        } else if count >= PAIRWISE_KEY_LIMIT {
            let mut set = std::collections::HashSet::with_capacity(count * 2);
            for r in &self.key_ranges[first..] {
                set.insert(self.key_arena[r.clone()].to_vec());
            }
            let seen = !set.insert(name.to_vec());
            frame.set = Some(set);
            seen
        } else {
            self.key_ranges[first..]
                .iter()
                .zip(&self.key_hashes[first..])
                .any(|(r, &h)| h == name_hash && &self.key_arena[r.clone()] == name)
        };
        // Each folded name is reported once per object.
        if seen && !frame.reported.iter().any(|r| r == name) {
            frame.reported.push(name.to_vec());
            out.duplicates.push(DuplicateKey {
                key: gostr::unquote(raw),
                depth,
                at,
            });
        }
        self.key_ranges.push(folded);
        self.key_hashes.push(name_hash);
        field
    }

    /// Validates one value of any kind, iteratively, checking duplicate keys
    /// in every nested object.
    fn skip_value(
        &mut self,
        cur: &mut Cursor,
        depth: usize,
        out: &mut Scan,
    ) -> Result<ValueKind, ScanError> {
        let base = self.stack.len();
        let first_kind = match cur.peek()? {
            b'{' => ValueKind::Object,
            b'[' => ValueKind::Array,
            b'"' => ValueKind::String,
            b't' | b'f' => ValueKind::Bool,
            b'n' => ValueKind::Null,
            b'-' | b'0'..=b'9' => ValueKind::Number,
            _ => return Err(cur.syntax("invalid character looking for beginning of value")),
        };
        // `expect_value` is true when the next token must be a value.
        let mut expect_value = true;
        loop {
            cur.skip_ws();
            if expect_value {
                match cur.peek()? {
                    b'{' => {
                        if depth + self.stack.len() - base >= MAX_DEPTH {
                            return Err(cur.syntax("exceeded max depth"));
                        }
                        cur.pos += 1;
                        self.open_frame(depth + self.stack.len() - base, &[]);
                        self.stack.push(b'{');
                        cur.skip_ws();
                        if cur.peek()? == b'}' {
                            cur.pos += 1;
                            self.stack.pop();
                            self.close_frame();
                            expect_value = false;
                        } else {
                            self.object_key(cur, out)?;
                        }
                        continue;
                    }
                    b'[' => {
                        if depth + self.stack.len() - base >= MAX_DEPTH {
                            return Err(cur.syntax("exceeded max depth"));
                        }
                        cur.pos += 1;
                        self.stack.push(b'[');
                        cur.skip_ws();
                        if cur.peek()? == b']' {
                            cur.pos += 1;
                            self.stack.pop();
                            expect_value = false;
                        }
                        continue;
                    }
                    b'"' => {
                        cur.string()?;
                    }
                    b't' => cur.literal(b"true")?,
                    b'f' => cur.literal(b"false")?,
                    b'n' => cur.literal(b"null")?,
                    b'-' | b'0'..=b'9' => cur.number()?,
                    _ => return Err(cur.syntax("invalid character looking for beginning of value")),
                }
                expect_value = false;
            } else {
                let Some(&open) = self.stack.get(base..).and_then(|s| s.last()) else {
                    return Ok(first_kind);
                };
                if self.stack.len() == base {
                    return Ok(first_kind);
                }
                match (open, cur.peek()?) {
                    (b'{', b',') => {
                        cur.pos += 1;
                        cur.skip_ws();
                        self.object_key(cur, out)?;
                        expect_value = true;
                    }
                    (b'[', b',') => {
                        cur.pos += 1;
                        expect_value = true;
                    }
                    (b'{', b'}') => {
                        cur.pos += 1;
                        self.stack.pop();
                        self.close_frame();
                    }
                    (b'[', b']') => {
                        cur.pos += 1;
                        self.stack.pop();
                    }
                    _ => return Err(cur.syntax("expected ',' or a closing bracket")),
                }
                if self.stack.len() == base {
                    return Ok(first_kind);
                }
            }
        }
    }

    /// Scans `"key":` inside the generic skipper and leaves the cursor at the value.
    fn object_key(&mut self, cur: &mut Cursor, out: &mut Scan) -> Result<(), ScanError> {
        cur.skip_ws();
        if cur.peek()? != b'"' {
            return Err(cur.syntax("expected a string key"));
        }
        let at = cur.pos;
        let escaped = cur.string()?;
        let depth = self.frames.last().map_or(0, |f| f.depth);
        self.add_key(cur.bytes, at + 1..cur.pos - 1, escaped, at, depth, out);
        cur.skip_ws();
        if cur.peek()? != b':' {
            return Err(cur.syntax("expected ':' after object key"));
        }
        cur.pos += 1;
        Ok(())
    }
}

/// Finds the first byte that ends a run of ordinary string bytes: a quote, a
/// backslash or a control byte. Eight bytes are tested at a time. In each of
/// the three tests the lowest flagged byte of the word is exact, because a
/// borrow can flag bytes above a true match but never below it. So the
/// lowest flag of the three is the first stop.
fn string_stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let flags = zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS);
        if flags != 0 {
            return Some(at + (flags.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

/// Returns the index of the field spelled exactly `raw`, trying `hint` first.
fn exact_field(fields: &[&str], hint: usize, raw: &[u8]) -> Option<usize> {
    if fields.get(hint).is_some_and(|f| f.as_bytes() == raw) {
        return Some(hint);
    }
    fields.iter().position(|f| f.as_bytes() == raw)
}

/// Length and the first eight bytes of a folded key, which tell most keys apart.
fn key_hash(name: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = name.len().min(8);
    head[..n].copy_from_slice(&name[..n]);
    u64::from_le_bytes(head) ^ ((name.len() as u64) << 56)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &[u8]) -> (Result<Trailing, ScanError>, Scan) {
        let mut scanner = Scanner::new();
        let mut out = Scan::default();
        let r = scanner.scan(text, &mut out);
        (r, out)
    }

    #[test]
    fn members_and_entry_spans() {
        let line = br#"{"entry":{"id":"a","reason":"r\"q"},"hash":"h","chain_idx":3}"#;
        let (r, s) = scan(line);
        assert_eq!(r, Ok(Trailing::None));
        assert!(s.is_object);
        assert_eq!(s.top.len(), 3);
        assert_eq!(
            &line[s.top[0].value.clone()],
            br#"{"id":"a","reason":"r\"q"}"#
        );
        assert_eq!(s.entry.len(), 2);
        assert!(s.entry[1].1.escaped);
        assert_eq!(s.top[2].kind, ValueKind::Number);
        assert!(s.duplicates.is_empty());
    }

    #[test]
    fn duplicate_keys_fold_case_at_every_depth() {
        let line = r#"{"entry":{"reason":"a","REASON":"b"},"x":{"y":[{"k":1,"K":2}]},"Hash":"1","hash":"2","ſignature":"s","signature":"t"}"#;
        let (r, s) = scan(line.as_bytes());
        assert_eq!(r, Ok(Trailing::None));
        let keys: Vec<(&str, usize)> = s
            .duplicates
            .iter()
            .map(|d| (d.key.as_str(), d.depth))
            .collect();
        assert_eq!(
            keys,
            vec![("REASON", 2), ("K", 4), ("hash", 1), ("signature", 1)]
        );
    }

    fn fields_and_duplicates(line: &str) -> (Vec<Option<u8>>, Vec<Option<u8>>, Vec<String>) {
        let (r, s) = scan(line.as_bytes());
        assert_eq!(r, Ok(Trailing::None), "{line}");
        let top = s.top.iter().map(|m| m.field).collect();
        let entry = s.entry.iter().map(|(_, m)| m.field).collect();
        let dups = s.duplicates.iter().map(|d| d.key.clone()).collect();
        (top, entry, dups)
    }

    #[test]
    fn exact_keys_in_go_order_get_their_fields() {
        let (top, entry, dups) = fields_and_duplicates(
            r#"{"entry":{"id":"a","timestamp":"t","previous_hash":"g"},"hash":"h","seal_mode":"software","chain_idx":0}"#,
        );
        assert_eq!(top, vec![Some(0), Some(1), Some(4), Some(5)]);
        assert_eq!(entry, vec![Some(0), Some(1), Some(8)]);
        assert!(dups.is_empty());
    }

    #[test]
    fn exact_keys_out_of_order_still_match() {
        let (top, entry, dups) =
            fields_and_duplicates(r#"{"hash":"h","entry":{"operator":"o","id":"a"},"other":1}"#);
        assert_eq!(top, vec![Some(1), Some(0), None]);
        assert_eq!(entry, vec![Some(7), Some(0)]);
        assert!(dups.is_empty());
    }

    #[test]
    fn exact_key_twice_is_a_duplicate() {
        let (_, entry, dups) =
            fields_and_duplicates(r#"{"entry":{"id":"a","reason":"r","id":"b"}}"#);
        assert_eq!(entry, vec![Some(0), Some(4), Some(0)]);
        assert_eq!(dups, vec!["id"]);
    }

    #[test]
    fn folded_key_after_exact_keys() {
        let (_, entry, dups) =
            fields_and_duplicates(r#"{"entry":{"id":"a","reason":"r","REASON":"s","Id":"b"}}"#);
        assert_eq!(entry, vec![Some(0), Some(4), Some(4), Some(0)]);
        assert_eq!(dups, vec!["REASON", "Id"]);
    }

    #[test]
    fn exact_key_after_folded_key_is_a_duplicate() {
        let (top, _, dups) = fields_and_duplicates(
            r#"{"Hash":"1","hash":"2","\u0073eal_mode":"x","seal_mode":"y","\u212aey":1,"key":2}"#,
        );
        assert_eq!(top, vec![Some(1), Some(1), Some(4), Some(4), None, None]);
        assert_eq!(dups, vec!["hash", "seal_mode", "key"]);
    }

    #[test]
    fn escaped_or_folded_keys_match_their_field() {
        let (top, entry, dups) = fields_and_duplicates(
            r#"{"\u0065ntry":{"ID":"a","\u017fhouldnt":1,"Operator":"o"},"PCR_VALUE":"p","chain_\u0069dx":3}"#,
        );
        assert_eq!(top, vec![Some(0), Some(3), Some(5)]);
        assert_eq!(entry, vec![Some(0), None, Some(7)]);
        assert!(dups.is_empty());
    }

    #[test]
    fn nested_objects_have_no_fields() {
        let (top, _, dups) =
            fields_and_duplicates(r#"{"x":{"entry":1,"hash":2,"hash":3},"entry":{}}"#);
        assert_eq!(top, vec![None, Some(0)]);
        assert_eq!(dups, vec!["hash"]);
    }

    #[test]
    fn duplicate_reported_once_per_name_and_object() {
        let (_, s) = scan(br#"{"a":1,"A":2,"a":3,"b":{"a":1,"a":2}}"#);
        assert_eq!(s.duplicates.len(), 2);
    }

    #[test]
    fn many_keys_use_set_and_still_find_duplicates() {
        let mut line = String::from("{");
        for i in 0..100 {
            line.push_str(&format!("\"k{i}\":{i},"));
        }
        line.push_str("\"K50\":0}");
        let (r, s) = scan(line.as_bytes());
        assert_eq!(r, Ok(Trailing::None));
        assert_eq!(s.duplicates.len(), 1);
        assert_eq!(s.duplicates[0].key, "K50");
    }

    #[test]
    fn string_stop_agrees_with_a_byte_loop() {
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        // Every byte value at every position of a 19-byte run, on a
        // background of bytes next to the stops (0x20, 0x21, 0x23, 0x5b,
        // 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff).
        for background in [0x20u8, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff] {
            for at in 0..19 {
                for byte in 0..=255u8 {
                    let mut run = vec![background; 19];
                    run[at] = byte;
                    assert_eq!(string_stop(&run), naive(&run), "{run:?}");
                    // A second stop later must not hide the first.
                    run[18] = b'"';
                    assert_eq!(string_stop(&run), naive(&run), "{run:?}");
                }
            }
        }
        assert_eq!(string_stop(b""), None);
        assert_eq!(string_stop(b"abcdefgh"), None);
    }

    #[test]
    fn proper_prefix_is_incomplete() {
        for text in [
            &b"{"[..],
            b"{\"entry\":{\"id\":\"DEC-1",
            b"{\"a\":tr",
            b"{\"a\":-",
            b"{\"a\":1",
            b"{\"a\":\"x\\u00",
        ] {
            assert_eq!(
                scan(text).0,
                Err(ScanError::Incomplete),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn syntax_errors_have_positions() {
        for (text, at) in [
            (&b"{\"a\" 1}"[..], 5),
            (b"{\"a\":01}", 6),
            (b"{\"a\":\"\x01\"}", 6),
            (b"{\"a\":\"\\x\"}", 7),
            (b"{\"a\":[1,]}", 8),
            (b"{\"a\":nul}", 8),
        ] {
            match scan(text).0 {
                Err(ScanError::Syntax { at: got, .. }) => {
                    assert_eq!(got, at, "{}", String::from_utf8_lossy(text))
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(text)),
            }
        }
    }

    #[test]
    fn trailing_bytes_and_whitespace() {
        assert_eq!(scan(b" {\"a\":1} \r\n\t").0, Ok(Trailing::None));
        assert_eq!(scan(b"{\"a\":1}{\"b\":2}").0, Ok(Trailing::At(7)));
        assert_eq!(scan(b"{\"a\":1} x").0, Ok(Trailing::At(8)));
    }

    #[test]
    fn raw_invalid_utf8_accepted() {
        let (r, s) = scan(b"{\"entry\":{\"reason\":\"raw\xffbyte\"}}");
        assert_eq!(r, Ok(Trailing::None));
        assert_eq!(s.entry.len(), 1);
    }

    #[test]
    fn nesting_limit_matches_go() {
        let deep = "[".repeat(MAX_DEPTH + 5);
        assert!(matches!(
            scan(deep.as_bytes()).0,
            Err(ScanError::Syntax { .. })
        ));
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(scan(ok.as_bytes()).0, Ok(Trailing::None));
    }

    #[test]
    fn non_object_top_values() {
        for (text, kind) in [
            (&b"null"[..], ValueKind::Null),
            (b"[]", ValueKind::Array),
            (b"\"s\"", ValueKind::String),
            (b"12 ", ValueKind::Number),
        ] {
            let (r, s) = scan(text);
            assert_eq!(r, Ok(Trailing::None));
            assert!(!s.is_object);
            assert_eq!(s.top_kind, Some(kind));
        }
    }
}
