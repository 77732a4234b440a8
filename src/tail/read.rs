//! Reading whole lines from a byte offset.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Reads the complete lines of `file` that start at byte `offset`.
///
/// Returns the bytes up to and including the last `\n` found, and the offset
/// just after them. Bytes after the last `\n` are left for a later call, so a
/// line written in several pieces (or cut inside a UTF-8 character) comes back
/// once, whole. Returns no bytes and `offset` unchanged when no `\n` follows
/// `offset` yet.
///
/// `max` caps the bytes returned, with one exception: a single line longer
/// than `max` is returned whole, so the buffer then grows to that line's length.
/// Uses positional reads (`pread`), so the file's cursor is not moved.
///
/// # Errors
/// Returns the I/O error of the underlying read.
pub fn read_complete_lines(file: &File, offset: u64, max: usize) -> io::Result<(Vec<u8>, u64)> {
    let lines = read_lines(file, offset, max)?;
    Ok((lines.bytes, lines.next))
}

/// The result of [`read_lines`].
pub(crate) struct Lines {
    /// Complete lines from the requested offset; empty when no `\n` was found.
    pub(crate) bytes: Vec<u8>,
    /// Offset just after `bytes`.
    pub(crate) next: u64,
    /// When `bytes` is empty: the bytes found after the offset, up to the end of
    /// the file as the read saw it. Otherwise 0.
    pub(crate) unterminated: u64,
}

/// Reads like [`read_complete_lines`] and also returns the length of the
/// partial line the read saw, so the caller needs no second `stat` (which
/// could count bytes that arrived after the read).
pub(crate) fn read_lines(file: &File, offset: u64, max: usize) -> io::Result<Lines> {
    let max = max.max(1);
    let mut buf = vec![0_u8; max];
    let filled = read_full_at(file, &mut buf, offset)?;
    buf.truncate(filled);

    if let Some(last) = buf.iter().rposition(|&b| b == b'\n') {
        buf.truncate(last + 1);
        return Ok(whole_lines(buf, offset));
    }

    // No newline in the first `max` bytes: unless the file ended, a line
    // longer than `max` is being read, so keep reading until its newline or
    // the end of the file.
    let mut got = filled;
    while got == max {
        let searched = buf.len();
        buf.resize(searched + max, 0);
        got = read_full_at(file, &mut buf[searched..], offset + searched as u64)?;
        buf.truncate(searched + got);
        if let Some(pos) = buf[searched..].iter().position(|&b| b == b'\n') {
            buf.truncate(searched + pos + 1);
            return Ok(whole_lines(buf, offset));
        }
    }
    Ok(Lines {
        bytes: Vec::new(),
        next: offset,
        unterminated: buf.len() as u64,
    })
}

fn whole_lines(bytes: Vec<u8>, offset: u64) -> Lines {
    let next = offset + bytes.len() as u64;
    Lines {
        bytes,
        next,
        unterminated: 0,
    }
}

/// Fills `buf` from `offset` until it is full or the file ends; returns the bytes read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        let file = File::open(&path).unwrap();
        (dir, file)
    }

    #[test]
    fn holds_back_partial_line() {
        let (_dir, file) = file_with(b"a\nbc\nde");
        let (bytes, next) = read_complete_lines(&file, 0, 1024).unwrap();
        assert_eq!(bytes, b"a\nbc\n");
        assert_eq!(next, 5);
    }

    #[test]
    fn no_newline_returns_nothing() {
        let (_dir, file) = file_with(b"a\nbcd");
        let (bytes, next) = read_complete_lines(&file, 2, 1024).unwrap();
        assert!(bytes.is_empty());
        assert_eq!(next, 2);
    }

    #[test]
    fn max_splits_at_line_boundary() {
        let (_dir, file) = file_with(b"ab\ncd\nef\n");
        let (bytes, next) = read_complete_lines(&file, 0, 7).unwrap();
        assert_eq!(bytes, b"ab\ncd\n");
        assert_eq!(next, 6);
        let (bytes, next) = read_complete_lines(&file, next, 7).unwrap();
        assert_eq!(bytes, b"ef\n");
        assert_eq!(next, 9);
    }

    #[test]
    fn line_longer_than_max_is_whole() {
        let (_dir, file) = file_with(b"abcdefghij\nk");
        let (bytes, next) = read_complete_lines(&file, 0, 3).unwrap();
        assert_eq!(bytes, b"abcdefghij\n");
        assert_eq!(next, 11);
    }

    #[test]
    fn long_partial_line_returns_nothing() {
        let (_dir, file) = file_with(b"abcdefghij");
        let (bytes, next) = read_complete_lines(&file, 0, 3).unwrap();
        assert!(bytes.is_empty());
        assert_eq!(next, 0);
    }

    #[test]
    fn unterminated_counts_partial_line() {
        let (_dir, file) = file_with(b"ab\ncdefghij");
        let lines = read_lines(&file, 3, 4).unwrap();
        assert!(lines.bytes.is_empty());
        assert_eq!(lines.next, 3);
        assert_eq!(lines.unterminated, 8);
        let lines = read_lines(&file, 0, 4).unwrap();
        assert_eq!(lines.bytes, b"ab\n");
        assert_eq!(lines.unterminated, 0);
    }
}
