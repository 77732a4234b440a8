//! Verifying a chain file from disk: lines are read and analysed on worker
//! threads and fed in order to the engine on the calling thread.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::chain::entry::CHAIN_FILE;
use crate::chain::line::{LineAnalyzer, LineFacts};
use crate::chain::reader::split_lines;
use crate::chain::verify::{Engine, LineSource, VerifyKeys};

/// Bytes read per chunk; a line longer than this grows one chunk to fit it.
const CHUNK: usize = 1 << 20;

/// How many lines ahead the engine's name look-ups are prefetched.
const PREFETCH_AHEAD: usize = 16;

/// An error that prevents verifying a chain at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("{path}: the directory holds no {CHAIN_FILE}")]
    NoChainInDir { path: PathBuf },
    #[error("{path}: permission denied")]
    PermissionDenied { path: PathBuf },
    #[error("{path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_error(path: &Path, e: io::Error) -> OpenError {
    let path = path.to_path_buf();
    match e.kind() {
        io::ErrorKind::NotFound => OpenError::NotFound { path },
        io::ErrorKind::PermissionDenied => OpenError::PermissionDenied { path },
        _ => OpenError::Io { path, source: e },
    }
}

/// Resolves PATH to the chain file: the file itself, or the chain file inside a directory.
pub fn resolve_chain_path(path: &Path) -> Result<PathBuf, OpenError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        let file = path.join(CHAIN_FILE);
        match std::fs::metadata(&file) {
            Ok(m) if m.is_file() => Ok(file),
            Ok(_) => Err(OpenError::NotAFile { path: file }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(OpenError::NoChainInDir {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(io_error(&file, e)),
        }
    } else if meta.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(OpenError::NotAFile {
            path: path.to_path_buf(),
        })
    }
}

/// Re-reads records from the chain file by offset.
pub struct FileSource {
    file: File,
}

impl FileSource {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(FileSource {
            file: File::open(path)?,
        })
    }
}

impl LineSource for FileSource {
    fn record_at(&self, offset: u64) -> Option<Vec<u8>> {
        read_record(&self.file, offset, u64::MAX)
    }
}

/// Reads the line that starts at `offset`, without its `\n`, stopping at
/// `end` (a file size taken earlier) when the line runs that far.
pub fn read_record(file: &File, offset: u64, end: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut block = [0u8; 4096];
    let mut at = offset;
    while at < end {
        let want = usize::try_from(end - at).map_or(block.len(), |n| n.min(block.len()));
        let n = file.read_at(&mut block[..want], at).ok()?;
        if n == 0 {
            break;
        }
        if let Some(nl) = memchr::memchr(b'\n', &block[..n]) {
            out.extend_from_slice(&block[..nl]);
            break;
        }
        out.extend_from_slice(&block[..n]);
        at += n as u64;
    }
    Some(out)
}

struct Chunk {
    seq: u64,
    offset: u64,
    bytes: Vec<u8>,
    is_end: bool,
}

/// The facts of one chunk's lines, each with its offset and whether a `\n` ends it.
type AnalysedLines = Vec<(LineFacts, u64, bool)>;

struct Analysed {
    seq: u64,
    lines: AnalysedLines,
    end_offset: u64,
}

/// Reads the file in chunks that end at a line boundary (the last may not).
fn read_chunks(
    mut file: File,
    tx: SyncSender<Chunk>,
    recycled: Receiver<Vec<u8>>,
) -> io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    let mut seq = 0u64;
    let mut eof = false;
    while !eof {
        // Analysed chunks come back for reuse, which spares a fresh 1 MiB
        // allocation (and its page faults) per chunk. A long partial line
        // keeps its own buffer.
        let mut buf = match recycled.try_recv() {
            Ok(mut reused) if carry.len() < CHUNK / 2 => {
                reused.clear();
                reused.extend_from_slice(&carry);
                carry.clear();
                reused
            }
            _ => std::mem::take(&mut carry),
        };
        buf.reserve(CHUNK);
        // Bytes carried over hold no newline: search only what is read now,
        // so a line of any length is scanned once.
        let searched = buf.len();
        // read_to_end appends without zero-filling the buffer first.
        let n = (&mut file).take(CHUNK as u64).read_to_end(&mut buf)?;
        if n < CHUNK {
            eof = true;
        }
        if !eof {
            match memchr::memrchr(b'\n', &buf[searched..]).map(|nl| searched + nl) {
                Some(nl) => carry.extend_from_slice(&buf[nl + 1..]),
                None => {
                    // One line longer than a chunk: keep growing it.
                    carry = buf;
                    continue;
                }
            }
            buf.truncate(buf.len() - carry.len());
        }
        let len = buf.len() as u64;
        if tx
            .send(Chunk {
                seq,
                offset,
                bytes: buf,
                is_end: eof,
            })
            .is_err()
        {
            return Ok(());
        }
        seq += 1;
        offset += len;
    }
    Ok(())
}

fn analyse_chunks(
    rx: Arc<Mutex<Receiver<Chunk>>>,
    tx: SyncSender<Analysed>,
    recycle: Sender<Vec<u8>>,
    spare_lines: Arc<Mutex<Receiver<AnalysedLines>>>,
    keys: Arc<VerifyKeys>,
) {
    let mut analyzer = LineAnalyzer::new();
    loop {
        let chunk = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(c) => c,
                Err(_) => return,
            }
        };
        let (lines, _) = split_lines(&chunk.bytes, chunk.offset, 0, chunk.is_end);
        // Lists the engine has emptied come back, so a chunk's facts do not
        // cost a fresh allocation (and the page faults of a large one).
        let mut out = spare_lines
            .lock()
            .ok()
            .and_then(|spare| spare.try_recv().ok())
            .unwrap_or_default();
        out.extend(
            lines
                .iter()
                .map(|l| (analyzer.analyze(l.bytes, &keys), l.offset, l.has_newline)),
        );
        let end_offset = chunk.offset + chunk.bytes.len() as u64;
        drop(lines);
        // The reader may have finished; then the buffer is simply dropped.
        let _ = recycle.send(chunk.bytes);
        if tx
            .send(Analysed {
                seq: chunk.seq,
                lines: out,
                end_offset,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Verifies a whole chain file; `progress` is called with bytes done.
pub fn verify_file(
    path: &Path,
    keys: VerifyKeys,
    progress: &mut dyn FnMut(u64),
) -> Result<Engine, OpenError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let source = FileSource::open(path).map_err(|e| io_error(path, e))?;
    let mut engine = Engine::new(keys.clone());
    // The reference writes about 590 bytes a line; a smaller guess only
    // means the table grows once more.
    let size = file.metadata().map_or(0, |m| m.len());
    engine.reserve(usize::try_from(size / 600).unwrap_or(0));
    let keys = Arc::new(keys);
    let workers = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);

    let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(1);
    let (done_tx, done_rx) = sync_channel::<Analysed>(workers);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let (recycle_tx, recycle_rx) = channel::<Vec<u8>>();
    let (spare_lines_tx, spare_lines_rx) = channel::<AnalysedLines>();
    let spare_lines_rx = Arc::new(Mutex::new(spare_lines_rx));
    let reader = thread::Builder::new()
        .name("sealdesk-read".to_owned())
        .spawn(move || read_chunks(file, chunk_tx, recycle_rx))
        .map_err(|e| io_error(path, e))?;
    let mut pool = Vec::new();
    for _ in 0..workers {
        let rx = Arc::clone(&chunk_rx);
        let tx = done_tx.clone();
        let keys = Arc::clone(&keys);
        let recycle = recycle_tx.clone();
        let spare_lines = Arc::clone(&spare_lines_rx);
        let worker = thread::Builder::new()
            .name("sealdesk-analyse".to_owned())
            .spawn(move || analyse_chunks(rx, tx, recycle, spare_lines, keys))
            .map_err(|e| io_error(path, e))?;
        pool.push(worker);
    }
    drop(done_tx);

    let mut next = 0u64;
    let mut waiting: std::collections::BTreeMap<u64, Analysed> = std::collections::BTreeMap::new();
    for analysed in done_rx {
        waiting.insert(analysed.seq, analysed);
        while let Some(mut batch) = waiting.remove(&next) {
            let lines = &mut batch.lines;
            for (facts, ..) in lines.iter().take(PREFETCH_AHEAD) {
                engine.prefetch(facts);
            }
            for k in 0..lines.len() {
                if let Some((ahead, ..)) = lines.get(k + PREFETCH_AHEAD) {
                    engine.prefetch(ahead);
                }
                let (facts, offset, has_newline) =
                    std::mem::replace(&mut lines[k], (LineFacts::blank(), 0, false));
                engine.push_line(facts, offset, has_newline, &source);
            }
            lines.clear();
            // The workers may have finished; then the list is simply dropped.
            let _ = spare_lines_tx.send(batch.lines);
            progress(batch.end_offset);
            next += 1;
        }
    }
    for worker in pool {
        let _ = worker.join();
    }
    match reader.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(io_error(path, e)),
        Err(_) => {
            return Err(OpenError::Io {
                path: path.to_path_buf(),
                source: io::Error::other("the reader thread stopped unexpectedly"),
            })
        }
    }
    engine.finish();
    Ok(engine)
}

/// Limits glibc to two malloc arenas. Line facts are allocated on the
/// analysis threads and freed on the engine's thread, so per-thread arenas
/// would keep freed memory apart and peak RSS would grow.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tuning value; callers run it
    // before they start any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
