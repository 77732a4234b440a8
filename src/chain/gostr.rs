//! Go `encoding/json` string encoding and decoding, byte for byte.
//!
//! `json.Marshal` escapes HTML characters and U+2028/U+2029, writes every
//! invalid UTF-8 byte as `\ufffd`, and (before Go 1.22) writes BS and FF as
//! `\u0008` and `\u000c`. `json.Unmarshal` replaces lone surrogates and
//! invalid bytes with U+FFFD and matches object keys to struct fields under
//! Unicode simple case folding. Entry hashes depend on all of it.

/// The Go release family whose string escapes to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoEscapes {
    /// Go 1.21 and older: BS and FF as `\u0008` and `\u000c`.
    Go119,
    /// Go 1.22 and newer: BS and FF as `\b` and `\f`.
    Go122,
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// ASCII bytes that `json.Marshal` (HTML escaping on) copies unchanged:
/// 0x20 to 0x7F except `"`, `\`, `<`, `>` and `&`. DEL is copied raw.
const fn ascii_safe_table() -> [bool; 128] {
    let mut table = [false; 128];
    let mut b = 0x20;
    while b < 128 {
        table[b] = !matches!(b as u8, b'"' | b'\\' | b'<' | b'>' | b'&');
        b += 1;
    }
    table
}

static ASCII_SAFE: [bool; 128] = ascii_safe_table();

/// Decodes one UTF-8 sequence at the start of `s` with Go's
/// `utf8.DecodeRune` rules: surrogates, overlong forms and values above
/// U+10FFFF are invalid. Returns `None` for an invalid or truncated
/// sequence, which Go treats as a single bad byte.
fn decode_rune(s: &[u8]) -> Option<(char, usize)> {
    let lead = *s.first()?;
    let (len, second_range) = match lead {
        0x00..=0x7F => return Some((char::from(lead), 1)),
        0xC2..=0xDF => (2, 0x80..=0xBF),
        0xE0 => (3, 0xA0..=0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80..=0xBF),
        0xED => (3, 0x80..=0x9F),
        0xF0 => (4, 0x90..=0xBF),
        0xF1..=0xF3 => (4, 0x80..=0xBF),
        0xF4 => (4, 0x80..=0x8F),
        _ => return None,
    };
    let bytes = s.get(..len)?;
    if !second_range.contains(&bytes[1]) {
        return None;
    }
    if !bytes[2..].iter().all(|b| (0x80..=0xBF).contains(b)) {
        return None;
    }
    // The ranges above are exactly those of well-formed UTF-8, so this
    // conversion succeeds; a failure still degrades to an invalid byte.
    let text = std::str::from_utf8(bytes).ok()?;
    text.chars().next().map(|c| (c, len))
}

/// Appends `s` as a JSON string, quotes included, the way `json.Marshal`
/// writes a Go string.
///
/// `<`, `>`, `&`, U+2028 and U+2029 become `\u003c`-style escapes with
/// lowercase hex. `"`, `\`, TAB, LF and CR get their short escapes. Other C0
/// controls become `\u00XX`, except BS and FF under [`GoEscapes::Go122`]. DEL, C1
/// controls and all other valid UTF-8 are copied raw, and each byte of
/// invalid UTF-8 becomes `\ufffd`. Runs of bytes that need no escape are
/// copied in one slice.
pub fn append_quoted(out: &mut Vec<u8>, s: &[u8], escapes: GoEscapes) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            if ASCII_SAFE[usize::from(b)] {
                i += 1;
                continue;
            }
            out.extend_from_slice(&s[run_start..i]);
            append_ascii_escape(out, b, escapes);
            i += 1;
            run_start = i;
            continue;
        }
        match decode_rune(&s[i..]) {
            None => {
                out.extend_from_slice(&s[run_start..i]);
                out.extend_from_slice(b"\\ufffd");
                i += 1;
                run_start = i;
            }
            Some(('\u{2028}', len)) | Some(('\u{2029}', len)) => {
                out.extend_from_slice(&s[run_start..i]);
                // U+2028 is E2 80 A8 and U+2029 is E2 80 A9.
                out.extend_from_slice(b"\\u202");
                out.push(HEX_DIGITS[usize::from(s[i + 2] & 0x0F)]);
                i += len;
                run_start = i;
            }
            Some((_, len)) => i += len,
        }
    }
    out.extend_from_slice(&s[run_start..]);
    out.push(b'"');
}

fn append_ascii_escape(out: &mut Vec<u8>, b: u8, escapes: GoEscapes) {
    match (b, escapes) {
        (b'"', _) => out.extend_from_slice(b"\\\""),
        (b'\\', _) => out.extend_from_slice(b"\\\\"),
        (b'\n', _) => out.extend_from_slice(b"\\n"),
        (b'\r', _) => out.extend_from_slice(b"\\r"),
        (b'\t', _) => out.extend_from_slice(b"\\t"),
        (0x08, GoEscapes::Go122) => out.extend_from_slice(b"\\b"),
        (0x0C, GoEscapes::Go122) => out.extend_from_slice(b"\\f"),
        _ => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX_DIGITS[usize::from(b >> 4)]);
            out.push(HEX_DIGITS[usize::from(b & 0x0F)]);
        }
    }
}

/// Go's `getu4`: the code unit of a `\uXXXX` escape at the start of `s`
/// (hex digits in either case).
fn parse_u4(s: &[u8]) -> Option<u32> {
    let digits = s.strip_prefix(b"\\u")?.get(..4)?;
    let mut value = 0;
    for &d in digits {
        value = value * 16 + char::from(d).to_digit(16)?;
    }
    Some(value)
}

fn is_surrogate(unit: u32) -> bool {
    (0xD800..0xE000).contains(&unit)
}

/// Decodes the body of a JSON string token (the bytes between the quotes)
/// as `json.Unmarshal` does into a Go string.
///
/// A surrogate pair escape becomes its character. A lone or mismatched
/// surrogate escape becomes U+FFFD, and an escape after a high surrogate
/// that does not complete it is decoded on its own. Each invalid raw UTF-8
/// byte becomes U+FFFD. Go rejects a body with a bad escape. Here a
/// backslash that starts no valid escape is kept as a literal `\`, so that
/// the result is defined for any bytes.
pub fn unquote(body: &[u8]) -> String {
    if !body.contains(&b'\\') {
        if let Ok(text) = std::str::from_utf8(body) {
            return text.to_owned();
        }
    }

    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'\\' {
            i += decode_escape(&body[i..], &mut out);
        } else if b < 0x80 {
            out.push(char::from(b));
            i += 1;
        } else if let Some((c, len)) = decode_rune(&body[i..]) {
            out.push(c);
            i += len;
        } else {
            out.push(char::REPLACEMENT_CHARACTER);
            i += 1;
        }
    }
    out
}

/// Decodes the escape at the start of `s` (which starts with `\`) into
/// `out` and returns how many bytes it used.
fn decode_escape(s: &[u8], out: &mut String) -> usize {
    let simple = match s.get(1) {
        Some(b'"') => Some('"'),
        Some(b'\\') => Some('\\'),
        Some(b'/') => Some('/'),
        Some(b'\'') => Some('\''),
        Some(b'b') => Some('\u{8}'),
        Some(b'f') => Some('\u{c}'),
        Some(b'n') => Some('\n'),
        Some(b'r') => Some('\r'),
        Some(b't') => Some('\t'),
        _ => None,
    };
    if let Some(c) = simple {
        out.push(c);
        return 2;
    }

    let Some(unit) = parse_u4(s) else {
        out.push('\\');
        return 1;
    };
    if !is_surrogate(unit) {
        // Not a surrogate, so a valid scalar value.
        out.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
        return 6;
    }
    let high = unit;
    if (0xD800..0xDC00).contains(&high) {
        if let Some(low) = parse_u4(&s[6..]).filter(|low| (0xDC00..0xE000).contains(low)) {
            let scalar = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
            out.push(char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER));
            return 12;
        }
    }
    out.push(char::REPLACEMENT_CHARACTER);
    6
}

/// Folds an object key for matching the way Go 1.19's `encoding/json`
/// matches keys to struct fields: Unicode simple case folding, so `ſ`
/// (U+017F) folds with `s` and `K` (U+212A) with `k`. Two keys name the same
/// field if and only if their folded forms are equal.
///
/// Each character maps to the lowercase of its simple uppercase, taken from
/// Rust's case tables. Dotless `ı` (U+0131) keeps its own class, because Go's
/// `bytes.EqualFold` does not match it with `i` or `I`.
///
/// Characters whose case pairs Unicode added after 13.0 (Go 1.19's version)
/// are left unfolded, as listed against the tables of Rust 1.95.
///
/// NOTE: a newer Rust toolchain with newer Unicode tables may fold further
/// characters that Go 1.19 does not.
pub fn fold_key(key: &str) -> String {
    let mut folded = String::with_capacity(key.len());
    for c in key.chars() {
        folded.push(fold_char(c));
    }
    folded
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == 'ı' || is_unfolded_in_go119(c) {
        return c;
    }
    let upper = single_char(c.to_uppercase()).unwrap_or(c);
    single_char(upper.to_lowercase()).unwrap_or(upper)
}

/// Characters that Rust's tables fold but Go 1.19 (Unicode 13.0) does not,
/// because their case pairs came with Unicode 14 or later. Found by
/// comparing every character's fold with Go 1.19.8's `bytes.EqualFold`.
const GO119_UNFOLDED: &[(char, char)] = &[
    ('\u{1C89}', '\u{1C89}'),
    ('\u{2C2F}', '\u{2C2F}'),
    ('\u{A7C0}', '\u{A7C0}'),
    ('\u{A7CB}', '\u{A7CC}'),
    ('\u{A7CE}', '\u{A7CE}'),
    ('\u{A7D0}', '\u{A7D0}'),
    ('\u{A7D2}', '\u{A7D2}'),
    ('\u{A7D4}', '\u{A7D4}'),
    ('\u{A7D6}', '\u{A7D6}'),
    ('\u{A7D8}', '\u{A7D8}'),
    ('\u{A7DA}', '\u{A7DA}'),
    ('\u{A7DC}', '\u{A7DC}'),
    ('\u{10570}', '\u{1057A}'),
    ('\u{1057C}', '\u{1058A}'),
    ('\u{1058C}', '\u{10592}'),
    ('\u{10594}', '\u{10595}'),
    ('\u{10D50}', '\u{10D65}'),
    ('\u{16EA0}', '\u{16EB8}'),
];

fn is_unfolded_in_go119(c: char) -> bool {
    GO119_UNFOLDED
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

/// Returns the only character of a case mapping, or `None` when the mapping has
/// several (such as `ß` to `SS`).
fn single_char(mut mapping: impl Iterator<Item = char>) -> Option<char> {
    let first = mapping.next()?;
    match mapping.next() {
        None => Some(first),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn quoted(s: &[u8], escapes: GoEscapes) -> Vec<u8> {
        let mut out = Vec::new();
        append_quoted(&mut out, s, escapes);
        out
    }

    /// Input bytes, then the JSON bytes Go 1.19.8's json.Marshal writes for
    /// them (without the surrounding quotes).
    const GO_STRING_ESCAPES: &[(&[u8], &[u8])] = &[
        (b"\"", b"\\\""),
        (b"\\", b"\\\\"),
        (b"/", b"/"),
        (b"'", b"'"),
        (b"<", b"\\u003c"),
        (b">", b"\\u003e"),
        (b"&", b"\\u0026"),
        (b"\t", b"\\t"),
        (b"\n", b"\\n"),
        (b"\r", b"\\r"),
        (b"\x08", b"\\u0008"),
        (b"\x0c", b"\\u000c"),
        (b"\x00", b"\\u0000"),
        (b"\x07", b"\\u0007"),
        (b"\x0b", b"\\u000b"),
        (b"\x1b", b"\\u001b"),
        (b"\x1f", b"\\u001f"),
        (b"\x7f", b"\x7f"),
        (b"\xc2\x85", b"\xc2\x85"),
        (b"\xc2\x9b", b"\xc2\x9b"),
        (b"\xc2\xa0", b"\xc2\xa0"),
        (b"\xe2\x80\xa8", b"\\u2028"),
        (b"\xe2\x80\xa9", b"\\u2029"),
        (b"\xe2\x80\xae", b"\xe2\x80\xae"),
        (b"\xef\xbb\xbf", b"\xef\xbb\xbf"),
        (b"\xef\xbf\xbd", b"\xef\xbf\xbd"),
        (b"\xef\xbf\xbf", b"\xef\xbf\xbf"),
        (b"\xf0\x9f\x94\xa5", b"\xf0\x9f\x94\xa5"),
        (b"e\xcc\x81", b"e\xcc\x81"),
        (b"\xe5\xae\xa1", b"\xe5\xae\xa1"),
        (b"\xff", b"\\ufffd"),
        (b"\xc0\xaf", b"\\ufffd\\ufffd"),
        (b"\xed\xa0\x80", b"\\ufffd\\ufffd\\ufffd"),
        (b"\xe2\x82", b"\\ufffd\\ufffd"),
        (b"\x1b[31m", b"\\u001b[31m"),
        (b"\x1b]0;t\x07", b"\\u001b]0;t\\u0007"),
    ];

    #[test]
    fn quote_matches_go119_table() {
        for (input, body) in GO_STRING_ESCAPES {
            let mut expected = b"\"".to_vec();
            expected.extend_from_slice(body);
            expected.push(b'"');
            assert_eq!(
                quoted(input, GoEscapes::Go119),
                expected,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn quote_all_c0_controls() {
        let expected = concat!(
            r#""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007"#,
            r#"\u0008\t\n\u000b\u000c\r\u000e\u000f"#,
            r#"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017"#,
            r#"\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f""#,
        );
        let controls: Vec<u8> = (0..0x20).collect();
        assert_eq!(quoted(&controls, GoEscapes::Go119), expected.as_bytes());
    }

    #[test]
    fn quote_go122_short_escapes() {
        assert_eq!(quoted(b"\x08", GoEscapes::Go122), br#""\b""#);
        assert_eq!(quoted(b"\x0c", GoEscapes::Go122), br#""\f""#);
        let controls: Vec<u8> = (0..0x20).collect();
        let go119 = quoted(&controls, GoEscapes::Go119);
        let go122 = quoted(&controls, GoEscapes::Go122);
        let go119_text = String::from_utf8_lossy(&go119)
            .replace(r"\u0008", r"\b")
            .replace(r"\u000c", r"\f");
        assert_eq!(String::from_utf8_lossy(&go122), go119_text);
        for (input, body) in GO_STRING_ESCAPES {
            if input != b"\x08" && input != b"\x0c" {
                let go119 = quoted(input, GoEscapes::Go119);
                assert_eq!(quoted(input, GoEscapes::Go122), go119, "{body:?}");
            }
        }
    }

    #[test]
    fn quote_copies_plain_runs() {
        assert_eq!(quoted(b"", GoEscapes::Go119), b"\"\"");
        assert_eq!(
            quoted(b"rule R-100 matched: score 0.91", GoEscapes::Go119),
            b"\"rule R-100 matched: score 0.91\""
        );
        let mut out = b"prefix".to_vec();
        append_quoted(&mut out, b"a<b", GoEscapes::Go119);
        assert_eq!(out, b"prefix\"a\\u003cb\"");
    }

    #[test]
    fn unquote_matches_go_decoding() {
        assert_eq!(unquote(br"a\ud800b"), "a\u{fffd}b");
        assert_eq!(unquote(br"\ud83d\ude00"), "\u{1f600}");
        assert_eq!(unquote(b"raw\xffbyte"), "raw\u{fffd}byte");
        assert_eq!(unquote(br"\u006fk"), "ok");
        assert_eq!(unquote(br"\u006Fk"), "ok");
        assert_eq!(unquote(br#"\"\\\/\b\f\n\r\t"#), "\"\\/\u{8}\u{c}\n\r\t");
        assert_eq!(unquote(b"\xed\xa0\x80"), "\u{fffd}\u{fffd}\u{fffd}");
        assert_eq!(unquote(b"\xe2\x82z"), "\u{fffd}\u{fffd}z");
        assert_eq!(
            unquote(b"\xf0\x9f\x94\xa5 \xe5\xae\xa1"),
            "\u{1f525} \u{5ba1}"
        );
    }

    #[test]
    fn unquote_surrogate_corner_cases() {
        // A high surrogate followed by a non-low escape: both decode alone.
        assert_eq!(unquote(br"\ud800\u0041"), "\u{fffd}A");
        assert_eq!(unquote(br"\ud800\ud800"), "\u{fffd}\u{fffd}");
        assert_eq!(unquote(br"\udc00\ud800"), "\u{fffd}\u{fffd}");
        assert_eq!(unquote(br"\ud800\n"), "\u{fffd}\n");
        assert_eq!(unquote(br"\ud800"), "\u{fffd}");
        assert_eq!(unquote(br"\udbff\udfff"), "\u{10ffff}");
        assert_eq!(unquote(br"\u0000"), "\u{0}");
    }

    #[test]
    fn unquote_never_panics() {
        for body in [
            &b"\\"[..],
            b"\\u",
            b"\\u12",
            b"\\u12g4",
            b"\\x",
            b"\\ud800\\u",
            b"\"",
        ] {
            let _ = unquote(body);
        }
        assert_eq!(unquote(b"a\\"), "a\\");
        assert_eq!(unquote(b"\\q"), "\\q");
        let mut rng = SplitMix(3);
        for _ in 0..20_000 {
            let alphabet = b"\\u0dDfF8\"a\xed\xa0\x80\xff";
            let body: Vec<u8> = (0..rng.below(20))
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            let _ = unquote(&body);
            let _ = quoted(&body, GoEscapes::Go119);
        }
    }

    #[test]
    fn fold_key_matches_go_field_matching() {
        // Go 1.19.8: json.Unmarshal of {"<key>":"x"} into a struct with the
        // tags "hash", "kind", "id", "σ", "ß" and "i".
        let matches: &[(&str, &str)] = &[
            ("hash", "hash"),
            ("HASH", "hash"),
            ("Hash", "hash"),
            ("haſh", "hash"),
            ("HAſH", "hash"),
            ("Kind", "kind"),
            ("\u{212a}ind", "kind"),
            ("ID", "id"),
            ("Σ", "σ"),
            ("ς", "σ"),
            ("ẞ", "ß"),
            ("I", "i"),
        ];
        for (key, field) in matches {
            assert_eq!(fold_key(key), fold_key(field), "{key} should match {field}");
        }
        let distinct: &[(&str, &str)] = &[
            ("hash ", "hash"),
            ("ha_sh", "hash"),
            ("ſ", "hash"),
            ("İD", "id"),
            ("ıd", "id"),
            ("I\u{307}D", "id"),
            ("SS", "ß"),
            ("ss", "ß"),
            ("İ", "i"),
            ("ı", "i"),
            ("ı", "I"),
        ];
        for (key, field) in distinct {
            assert_ne!(
                fold_key(key),
                fold_key(field),
                "{key} should not match {field}"
            );
        }
    }

    #[test]
    fn fold_key_skips_post_unicode13_pairs() {
        // Go 1.19.8 bytes.EqualFold is false for these pairs, which later
        // Unicode versions made case pairs.
        for (upper, lower) in [
            ('\u{a7c0}', '\u{a7c1}'),
            ('\u{10570}', '\u{10597}'),
            ('\u{2c2f}', '\u{2c5f}'),
        ] {
            assert_ne!(fold_key(&upper.to_string()), fold_key(&lower.to_string()));
        }
        // Pairs Go 1.19 does fold.
        for (upper, lower) in [
            ('\u{10d0}', '\u{1c90}'),
            ('\u{13a0}', '\u{ab70}'),
            ('µ', 'Μ'),
            ('ǅ', 'ǆ'),
        ] {
            assert_eq!(fold_key(&upper.to_string()), fold_key(&lower.to_string()));
        }
    }

    /// Example 3 of the reference's worked examples: string bodies as they
    /// stand in the sealed entry, with SHA-256
    /// 3c027b68afa4451a18c3c77030b174a7e582bc3dd86cde09639e8b92aa1f0e80.
    #[test]
    fn example_entry_reencodes_to_its_hash() {
        let entry_hex = concat!(
            "7b226964223a224445432d5c7530303363335c7530303365222c2274696d657374616d70223a22",
            "323032352d30372d30345430353a30363a30372d30343a3030222c22616374696f6e223a227265",
            "73706f6e64222c226465636973696f6e223a22657363616c617465222c22726561736f6e223a22",
            "615c7530303363625c75303033655c753030323663205c22715c22205c5c206c696e65315c6e6c",
            "696e6532205c75303031625b33316d7265645c75303031625b306d205c753230323820f09f94a5",
            "20e5aea1e8aea12065cc81222c226f70657261746f72223a22e6938de4bd9ce593a1222c227072",
            "6576696f75735f68617368223a2267656e65736973227d",
        );
        let entry = hex::decode(entry_hex).expect("valid hex");
        assert_eq!(entry.len(), 257);

        let fields: [(&str, &[u8]); 7] = [
            ("id", br"DEC-\u003c3\u003e"),
            ("timestamp", b"2025-07-04T05:06:07-04:00"),
            ("action", b"respond"),
            ("decision", b"escalate"),
            (
                "reason",
                b"a\\u003cb\\u003e\\u0026c \\\"q\\\" \\\\ line1\\nline2 \\u001b[31mred\\u001b[0m \
                  \\u2028 \xf0\x9f\x94\xa5 \xe5\xae\xa1\xe8\xae\xa1 e\xcc\x81",
            ),
            ("operator", b"\xe6\x93\x8d\xe4\xbd\x9c\xe5\x93\xa1"),
            ("previous_hash", b"genesis"),
        ];
        let decoded_reason = unquote(fields[4].1);
        assert_eq!(
            decoded_reason,
            "a<b>&c \"q\" \\ line1\nline2 \u{1b}[31mred\u{1b}[0m \u{2028} 🔥 审计 e\u{301}"
        );

        let mut rebuilt = b"{".to_vec();
        for (i, (name, body)) in fields.iter().enumerate() {
            if i > 0 {
                rebuilt.push(b',');
            }
            append_quoted(&mut rebuilt, name.as_bytes(), GoEscapes::Go119);
            rebuilt.push(b':');
            append_quoted(&mut rebuilt, unquote(body).as_bytes(), GoEscapes::Go119);
        }
        rebuilt.push(b'}');
        assert_eq!(rebuilt, entry);
        assert_eq!(
            hex::encode(Sha256::digest(&rebuilt)),
            "3c027b68afa4451a18c3c77030b174a7e582bc3dd86cde09639e8b92aa1f0e80"
        );
    }

    /// SplitMix64, so that a Go program can generate the same cases.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const UTF8_PIECES: [&[u8]; 10] = [
        b"\xe2\x80\xa8",
        b"\xe2\x80\xa9",
        b"\xed\xa0\x80",
        b"\xf0\x9f\x94\xa5",
        b"\xc0\xaf",
        b"\xe2\x82",
        b"\xef\xbf\xbd",
        b"\xc2\x85",
        b"\xf4\x90\x80\x80",
        b"\xe0\x80\x80",
    ];

    /// Builds a random Go string rich in bytes that need escaping.
    fn random_string(rng: &mut SplitMix) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rng.below(24) {
            match rng.below(10) {
                0 => out.push(rng.below(0x20) as u8),
                1 => out.push(b"\"\\<>&/'\x7f"[rng.below(8) as usize]),
                2 => out.push(0x80 + rng.below(0x80) as u8),
                3 => out.extend_from_slice(UTF8_PIECES[rng.below(10) as usize]),
                _ => out.push(0x20 + rng.below(95) as u8),
            }
        }
        out
    }

    /// Builds a random valid JSON string body with escapes, surrogates and
    /// invalid UTF-8.
    fn random_body(rng: &mut SplitMix) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rng.below(16) {
            match rng.below(8) {
                0 => {
                    let unit = if rng.below(2) == 0 {
                        0xD800 + rng.below(0x800)
                    } else {
                        rng.below(0x10000)
                    };
                    let digits = if rng.below(2) == 0 {
                        format!("{unit:04x}")
                    } else {
                        format!("{unit:04X}")
                    };
                    out.extend_from_slice(b"\\u");
                    out.extend_from_slice(digits.as_bytes());
                }
                1 => {
                    let escapes = [
                        b"\\\"", b"\\\\", b"\\/", b"\\b", b"\\f", b"\\n", b"\\r", b"\\t",
                    ];
                    out.extend_from_slice(escapes[rng.below(8) as usize]);
                }
                2 => out.push(0x80 + rng.below(0x80) as u8),
                3 => out.extend_from_slice(UTF8_PIECES[rng.below(10) as usize]),
                _ => {
                    let b = 0x20 + rng.below(95) as u8;
                    out.push(if b == b'"' || b == b'\\' { b'a' } else { b });
                }
            }
        }
        out
    }

    /// SHA-256 of each block of 100 `json.Marshal(string(b))` outputs, each
    /// followed by `\n`, from Go 1.19.8 for `random_string` seeded with
    /// 0x60517 (a Go port of the generator).
    const GO_QUOTE_BLOCK_DIGESTS: [&str; 20] = [
        "dc29e279ab8eefeb46edc3a893a4a3a51fb71f7af9a2b54d8688fc9b85d03e4e",
        "7397ffef4a1b441ffd1de9bb31f84952313eb18c0c885005ef1b0df40ccb33fa",
        "29eff7d3dbf9f7150f59cbb154548aaf59b19cc8bc0a1f6c647e63a95d67bd4d",
        "f0dac7f799eefd101cd6a27929f944954f4cc64c61ffd21d0f046d1b0efca4df",
        "22043ef3a1a9164a20004cf47ab512d1de931f1858755ea050d4c85c0ab7aedc",
        "82d5304732c1b3b49981885fbfdcb2a1fddffa41bc942fce14ba3d1de026e6db",
        "7baaadebd0e356dbac41a7f77c51d2ba5f8bf71b4ecd02dcc3575182bb38572e",
        "2f6d7514d6296dfdaaf98c71726ac8d04c8178e788be4cb106da3dd17553c9c2",
        "43340c73f35db3dfacc011cd5acba6b4762dfb585732e8f20eb889e41b4dfadc",
        "a826f6e4eebb21f5f57f2a81b49d25e7fe279d627b7a619c582f268ca77d54f0",
        "83f49e770b0411c865cbd71d2803a0179f1fad135b00229251504ee5e16f2160",
        "5fa259009d46f17dc2c705c122620453b7745bfbe3194011764265c359fe27cf",
        "3b9eecd7379f5b2a66989f51bcbc2eaf1112f07344b833d26065ff45a592a092",
        "4007ad5fbe338d3d9439f84e9e9ef2069a231251746bd93ca282bc974a42de93",
        "4000c38f726c21ab22224fbdca3e2bc8f5d44dcb19cba413d4579c11b7ef0ae1",
        "10877b5068fdf2af019da854d8e6723de0272a19369dbac424919b25883fe511",
        "575faff2e17e8f9b10ce323ed6f2fc6e8d85a3b93fa957ec04c9b2059024445e",
        "5d726c258e3b9d5ccf731a662ba0e1c5908f82727a118266a017ba63ae113ae3",
        "20e645086bebd027c35390648acf203f301f2bc5f01342c634d47c1b20a99af9",
        "3d4f18ca983c29193206392ae574c163a99c80454fe37bcce247da6ca3e909b8",
    ];

    /// SHA-256 of each block of 100 decoded strings, each followed by `\n`,
    /// from Go 1.19.8's json.Unmarshal of `random_body` seeded with 0xDEC0DE.
    const GO_UNQUOTE_BLOCK_DIGESTS: [&str; 20] = [
        "cea20022859647c0eca0dfd3e97dd89623f1eb2b2ff566da9a8b8b0ea4d714d7",
        "d732ca5a1b761fc5ca43f3065a7c157b4ea9bf4337bbc7d36503e4d76b91230a",
        "74ce89a5930a9d2181f18dba92ff8028ae939ea0d41d4805c1e1e5306b37eb82",
        "73a67794ebddcc14943b7e1d2b8115faae75c7e99fbb7702cb80b3f35c606e3f",
        "0248af1d0093aef0ef521b529cda0b4d25db3bcc6c66fd7601edba308d3ee8f7",
        "364a9ae17f4a11e6e6c9c81b33dbf91b4698893af10bf3eb7e2b8184af87b660",
        "bcdbecd4c033ceafa7bd88ebf8be88477bb37d6b509389b4af8670356eee2b66",
        "eac28feca82f7beab99f7dff7c02d0a2e62d5d40f4988bff6543a049348f8557",
        "4506b76f9e9de8c243889d0d450def850ac3a06c4720b18f900e3507ba8b8623",
        "8d9a8a813aed556adad32524626ef20b737017370ff2b42c3f3890cc2897a90a",
        "e4f97e75a5d6ad63a5b84fc4b4c5210450391e7a70914ca3cbe538d90bef0d69",
        "3304505c5fc6298102f834c409f92e2d0f39c25d7146dd6ada0bd87830eb0c6a",
        "fe360bf32facb787d9d888bf9c1a5ece6c28ee1a1fae3ac8e7f7a0e2270a5664",
        "ee15f21db2fbee08545461d305faf3a40e5c2fa94d2edddd4bac362cecc26144",
        "442c9a2c08ca05738845025f837cb20caadecc53866ed68dd4b029cf3fa49c3b",
        "737be411b7d532f3bc77b2cb29ce84df7bda6dfbc723a43857fa709187f5390a",
        "637e67d5064687793515af8086ccdcd988884ba2c3f5b627408a53decca3ce9c",
        "fa26f729ded6a212ee5d906c536179eb7b3b890819274c0405222af66736a8df",
        "f63d25d6669d5250a19cae199317561cea9569144d8f87e632f9d83b12d06545",
        "f1506070c674551779535f7b62465dcefe1cfb8f8872f2ceb8cac2cbe24abb16",
    ];

    #[test]
    fn random_strings_quote_like_go() {
        let mut rng = SplitMix(0x60517);
        for (block, expected) in GO_QUOTE_BLOCK_DIGESTS.iter().enumerate() {
            let mut lines = Vec::new();
            for _ in 0..100 {
                append_quoted(&mut lines, &random_string(&mut rng), GoEscapes::Go119);
                lines.push(b'\n');
            }
            let digest = hex::encode(Sha256::digest(&lines));
            assert_eq!(
                digest,
                *expected,
                "block {block}: {}",
                String::from_utf8_lossy(&lines)
            );
        }
    }

    #[test]
    fn random_bodies_unquote_like_go() {
        let mut rng = SplitMix(0xDEC0DE);
        for (block, expected) in GO_UNQUOTE_BLOCK_DIGESTS.iter().enumerate() {
            let mut lines = String::new();
            for _ in 0..100 {
                lines.push_str(&unquote(&random_body(&mut rng)));
                lines.push('\n');
            }
            let digest = hex::encode(Sha256::digest(lines.as_bytes()));
            assert_eq!(digest, *expected, "block {block}: {lines:?}");
        }
    }
}
