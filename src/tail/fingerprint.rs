//! Fingerprint of the bytes already delivered, to notice in-place changes.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::read::read_full_at;

/// Bytes kept from each end of the delivered region for the cheap check.
const WINDOW: usize = 4096;

/// Size of each block in the full digest check, in bytes.
const BLOCK: usize = 256 * 1024;

/// A record of the delivered bytes `[0, len)`: a copy of the first and last
/// 4 KiB, plus one SHA-256 digest per 256 KiB block.
///
/// The windows are compared on every check, which costs two reads of at most
/// 4 KiB and finds the exact first changed offset inside them. The block
/// digests are compared only on suspicion (see the follower), because that
/// reads every delivered byte again; they locate a change to its block.
/// Memory use is 8 KiB plus 32 bytes per 256 KiB delivered.
///
/// Bytes that were in the file before following began (the consumer's start
/// offset) are digested on a background thread, so that appended lines are
/// delivered at once and not after a read of the whole file. Their digests
/// are in `base`; `blocks` cover the bytes from `blocks_start` on.
pub(crate) struct Fingerprint {
    len: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
    base: Option<Base>,
    blocks_start: u64,
    blocks: Vec<[u8; 32]>,
    block_hasher: Sha256,
    block_fill: usize,
}

/// Block digests of the bytes present when following began.
enum Base {
    Pending {
        done: Receiver<io::Result<Fingerprint>>,
        stop: Arc<AtomicBool>,
    },
    Ready(Box<Fingerprint>),
    /// The bytes could not all be read: the file shrank, or a read failed.
    Failed(io::ErrorKind, String),
}

impl Drop for Base {
    fn drop(&mut self) {
        if let Base::Pending { stop, .. } = self {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

impl Fingerprint {
    /// Creates an empty fingerprint, for a region of 0 bytes.
    pub(crate) fn new() -> Self {
        Self {
            len: 0,
            head: Vec::new(),
            tail: Vec::new(),
            base: None,
            blocks_start: 0,
            blocks: Vec::new(),
            block_hasher: Sha256::new(),
            block_fill: 0,
        }
    }

    /// Builds the fingerprint of `file`'s first `len` bytes, reading them in blocks.
    #[cfg(test)]
    pub(crate) fn from_file(file: &File, len: u64) -> io::Result<Self> {
        Self::digest_file(file, len, &AtomicBool::new(false))
    }

    /// Builds the fingerprint of `file`'s first `len` bytes: the windows now,
    /// the block digests on a background thread. A later [`check_blocks`]
    /// waits for that thread when it has not finished.
    ///
    /// [`check_blocks`]: Fingerprint::check_blocks
    pub(crate) fn from_file_in_background(file: &File, len: u64) -> io::Result<Self> {
        let mut fingerprint = Self::new();
        let window = |start: u64, size: u64| -> io::Result<Vec<u8>> {
            let mut bytes = vec![0_u8; usize::try_from(size).unwrap_or(WINDOW)];
            let got = read_full_at(file, &mut bytes, start)?;
            if got < bytes.len() {
                return Err(shrank());
            }
            Ok(bytes)
        };
        let window_len = len.min(WINDOW as u64);
        fingerprint.head = window(0, window_len)?;
        fingerprint.tail = window(len - window_len, window_len)?;
        fingerprint.len = len;
        fingerprint.blocks_start = len;
        if len == 0 {
            return Ok(fingerprint);
        }

        let copy = file.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::sync_channel(1);
        let thread_stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("sealdesk-digest".into())
            .spawn(move || {
                let result = Self::digest_file(&copy, len, &thread_stop);
                // The fingerprint may be gone (the file was replaced), and
                // then the send fails harmlessly.
                let _ = tx.send(result);
            })?;
        fingerprint.base = Some(Base::Pending { done, stop });
        Ok(fingerprint)
    }

    /// Digests `file`'s first `len` bytes block by block; `stop` ends it early.
    fn digest_file(file: &File, len: u64, stop: &AtomicBool) -> io::Result<Self> {
        let mut fingerprint = Self::new();
        let mut buf = vec![0_u8; BLOCK];
        while fingerprint.len < len {
            if stop.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
            }
            let want = usize::try_from(len - fingerprint.len).map_or(BLOCK, |rest| rest.min(BLOCK));
            let got = read_full_at(file, &mut buf[..want], fingerprint.len)?;
            if got == 0 {
                return Err(shrank());
            }
            fingerprint.extend(&buf[..got]);
        }
        Ok(fingerprint)
    }

    /// Adds bytes delivered after the current end.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;

        if self.head.len() < WINDOW {
            let take = (WINDOW - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }

        if bytes.len() >= WINDOW {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - WINDOW..]);
        } else {
            self.tail.extend_from_slice(bytes);
            let excess = self.tail.len().saturating_sub(WINDOW);
            self.tail.drain(..excess);
        }

        let mut rest = bytes;
        while !rest.is_empty() {
            let take = (BLOCK - self.block_fill).min(rest.len());
            self.block_hasher.update(&rest[..take]);
            self.block_fill += take;
            rest = &rest[take..];
            if self.block_fill == BLOCK {
                let digest = std::mem::take(&mut self.block_hasher).finalize();
                self.blocks.push(digest.into());
                self.block_fill = 0;
            }
        }
    }

    /// Compares the head and tail windows with `file`; returns the first offset that differs.
    pub(crate) fn check_windows(&self, file: &File) -> io::Result<Option<u64>> {
        if let Some(index) = first_difference(file, &self.head, 0)? {
            return Ok(Some(index));
        }
        let tail_start = self.len - self.tail.len() as u64;
        first_difference(file, &self.tail, tail_start)
    }

    /// Re-reads all fingerprinted bytes of `file` and compares block digests;
    /// returns the start of the first block that differs.
    pub(crate) fn check_blocks(&mut self, file: &File) -> io::Result<Option<u64>> {
        if let Some(base) = self.base.as_mut() {
            if let Base::Pending { done, .. } = base {
                *base = match done.recv() {
                    Ok(Ok(digests)) => Base::Ready(Box::new(digests)),
                    Ok(Err(e)) => Base::Failed(e.kind(), e.to_string()),
                    Err(_) => Base::Failed(
                        io::ErrorKind::Other,
                        "the digest thread stopped unexpectedly".to_owned(),
                    ),
                };
            }
            match base {
                Base::Ready(digests) => {
                    if let Some(at) = digests.check_blocks(file)? {
                        return Ok(Some(at));
                    }
                }
                // The bytes before the start offset changed length while
                // they were read: they are no longer what was delivered.
                Base::Failed(io::ErrorKind::UnexpectedEof, _) => return Ok(Some(0)),
                Base::Failed(kind, message) => return Err(io::Error::new(*kind, message.clone())),
                Base::Pending { .. } => {}
            }
        }
        let mut buf = vec![0_u8; BLOCK];
        let block_count = self.blocks.len() + usize::from(self.block_fill > 0);
        for index in 0..block_count {
            let start = self.blocks_start + (index * BLOCK) as u64;
            let want = if index < self.blocks.len() {
                BLOCK
            } else {
                self.block_fill
            };
            let got = read_full_at(file, &mut buf[..want], start)?;
            if got < want {
                return Ok(Some(start + got as u64));
            }
            let digest: [u8; 32] = Sha256::digest(&buf[..want]).into();
            let expected: [u8; 32] = match self.blocks.get(index) {
                Some(block) => *block,
                None => self.block_hasher.clone().finalize().into(),
            };
            if digest != expected {
                return Ok(Some(start));
            }
        }
        Ok(None)
    }
}

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shrank while its fingerprint was read",
    )
}

/// Reads `expected.len()` bytes at `start` and returns the offset of the first mismatch.
fn first_difference(file: &File, expected: &[u8], start: u64) -> io::Result<Option<u64>> {
    if expected.is_empty() {
        return Ok(None);
    }
    let mut actual = vec![0_u8; expected.len()];
    let got = read_full_at(file, &mut actual, start)?;
    let mismatch = expected[..got]
        .iter()
        .zip(&actual[..got])
        .position(|(a, b)| a != b)
        .or((got < expected.len()).then_some(got));
    Ok(mismatch.map(|index| start + index as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (dir, file)
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn unchanged_file_matches() {
        let data = sample(BLOCK * 2 + 100);
        let (_dir, file) = file_with(&data);
        let mut fingerprint = Fingerprint::new();
        fingerprint.extend(&data[..10]);
        fingerprint.extend(&data[10..]);
        assert_eq!(fingerprint.check_windows(&file).unwrap(), None);
        assert_eq!(fingerprint.check_blocks(&file).unwrap(), None);
    }

    #[test]
    fn window_change_gives_exact_offset() {
        let data = sample(10_000);
        let (_dir, file) = file_with(&data);
        let fingerprint = Fingerprint::from_file(&file, data.len() as u64).unwrap();
        file.write_at(&[data[9_990].wrapping_add(1)], 9_990)
            .unwrap();
        assert_eq!(fingerprint.check_windows(&file).unwrap(), Some(9_990));
        file.write_at(&[data[17].wrapping_add(1)], 17).unwrap();
        assert_eq!(fingerprint.check_windows(&file).unwrap(), Some(17));
    }

    #[test]
    fn middle_change_found_by_blocks() {
        let data = sample(BLOCK * 2 + 100);
        let (_dir, file) = file_with(&data);
        let mut fingerprint = Fingerprint::from_file(&file, data.len() as u64).unwrap();
        let offset = BLOCK + 5_000;
        file.write_at(&[data[offset].wrapping_add(1)], offset as u64)
            .unwrap();
        assert_eq!(fingerprint.check_windows(&file).unwrap(), None);
        assert_eq!(fingerprint.check_blocks(&file).unwrap(), Some(BLOCK as u64));
    }

    #[test]
    fn last_partial_block_is_checked() {
        let data = sample(BLOCK + 20_000);
        let (_dir, file) = file_with(&data);
        let mut fingerprint = Fingerprint::from_file(&file, data.len() as u64).unwrap();
        let offset = BLOCK + 8_000;
        file.write_at(&[data[offset].wrapping_add(1)], offset as u64)
            .unwrap();
        assert_eq!(fingerprint.check_windows(&file).unwrap(), None);
        assert_eq!(fingerprint.check_blocks(&file).unwrap(), Some(BLOCK as u64));
    }

    #[test]
    fn background_digests_find_a_change_before_the_start() {
        let data = sample(BLOCK * 3 + 700);
        let (_dir, file) = file_with(&data);
        let mut fingerprint =
            Fingerprint::from_file_in_background(&file, data.len() as u64).unwrap();
        assert_eq!(fingerprint.check_windows(&file).unwrap(), None);
        let offset = BLOCK * 2 + 10;
        // Changed after the digests were taken (the check below waits for them).
        fingerprint_wait(&mut fingerprint, &file);
        file.write_at(&[data[offset].wrapping_add(1)], offset as u64)
            .unwrap();
        assert_eq!(fingerprint.check_windows(&file).unwrap(), None);
        assert_eq!(
            fingerprint.check_blocks(&file).unwrap(),
            Some(2 * BLOCK as u64)
        );
    }

    #[test]
    fn background_digests_and_appended_blocks_are_both_checked() {
        let data = sample(BLOCK * 2 + 300);
        let start = BLOCK + 123;
        let (_dir, file) = file_with(&data);
        let mut fingerprint = Fingerprint::from_file_in_background(&file, start as u64).unwrap();
        fingerprint.extend(&data[start..]);
        assert_eq!(fingerprint.check_windows(&file).unwrap(), None);
        assert_eq!(fingerprint.check_blocks(&file).unwrap(), None);

        // A change in the appended part is found from the start offset on.
        let offset = start + 50;
        file.write_at(&[data[offset].wrapping_add(1)], offset as u64)
            .unwrap();
        assert_eq!(fingerprint.check_blocks(&file).unwrap(), Some(start as u64));
        file.write_at(&[data[offset]], offset as u64).unwrap();

        // A change in the first block, past the head window, is found too.
        file.write_at(&[data[9_000].wrapping_add(1)], 9_000)
            .unwrap();
        assert_eq!(fingerprint.check_windows(&file).unwrap(), None);
        assert_eq!(fingerprint.check_blocks(&file).unwrap(), Some(0));
    }

    #[test]
    fn short_file_windows_grow_with_appends() {
        let data = sample(3_000);
        let (_dir, file) = file_with(&data);
        let mut fingerprint = Fingerprint::from_file_in_background(&file, 1_000).unwrap();
        fingerprint.extend(&data[1_000..]);
        assert_eq!(fingerprint.check_windows(&file).unwrap(), None);
        file.write_at(&[data[2_500].wrapping_add(1)], 2_500)
            .unwrap();
        assert_eq!(fingerprint.check_windows(&file).unwrap(), Some(2_500));
    }

    #[test]
    fn cut_before_digests_is_changed() {
        let data = sample(BLOCK * 40);
        let (_dir, file) = file_with(&data);
        let mut fingerprint =
            Fingerprint::from_file_in_background(&file, data.len() as u64).unwrap();
        file.set_len(BLOCK as u64 / 2).unwrap();
        // Either the digest thread saw the cut, or the re-read does.
        assert_eq!(fingerprint.check_blocks(&file).unwrap(), Some(0));
    }

    #[test]
    fn empty_start_has_no_background_digests() {
        let (_dir, file) = file_with(b"");
        let mut fingerprint = Fingerprint::from_file_in_background(&file, 0).unwrap();
        assert!(fingerprint.base.is_none());
        assert_eq!(fingerprint.check_blocks(&file).unwrap(), None);
    }

    /// Waits until the background digests are done, by checking an unchanged file.
    fn fingerprint_wait(fingerprint: &mut Fingerprint, file: &File) {
        assert_eq!(fingerprint.check_blocks(file).unwrap(), None);
        assert!(matches!(fingerprint.base, Some(Base::Ready(_))));
    }
}
