//! Line framing over a byte stream: each line with its number and offset.

/// One line, without its `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// 1-based line number.
    pub number: u64,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// False only for a last line that ends without `\n`.
    pub has_newline: bool,
}

/// Splits a buffer into lines. The buffer starts at `offset` in the file and
/// its first line has number `first_line`. When `is_end` is false, bytes
/// after the last `\n` are not returned: they are the start of a line that
/// continues in the next buffer.
pub fn split_lines(
    buf: &[u8],
    offset: u64,
    first_line: u64,
    is_end: bool,
) -> (Vec<Line<'_>>, usize) {
    let mut lines = Vec::with_capacity(buf.len() / 512 + 1);
    let mut start = 0;
    let mut number = first_line;
    for nl in memchr::memchr_iter(b'\n', buf) {
        lines.push(Line {
            bytes: &buf[start..nl],
            number,
            offset: offset + start as u64,
            has_newline: true,
        });
        number += 1;
        start = nl + 1;
    }
    if is_end && start < buf.len() {
        lines.push(Line {
            bytes: &buf[start..],
            number,
            offset: offset + start as u64,
            has_newline: false,
        });
        start = buf.len();
    }
    (lines, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_offsets_and_torn_tail() {
        let buf = b"ab\n\ncd\r\nef";
        let (lines, used) = split_lines(buf, 100, 1, true);
        assert_eq!(used, buf.len());
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2].bytes, b"cd\r");
        assert_eq!(lines[2].offset, 104);
        assert_eq!(lines[3].number, 4);
        assert!(!lines[3].has_newline);
    }

    #[test]
    fn split_holds_back_partial_line() {
        let (lines, used) = split_lines(b"ab\ncd", 0, 1, false);
        assert_eq!(lines.len(), 1);
        assert_eq!(used, 3);
    }
}
