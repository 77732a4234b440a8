//! Creating the chain file and appending one line durably.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Creates an empty chain file with mode 0600 unless it exists; returns true when created.
///
/// The directory is synced after creating the file, so the new name survives a crash.
pub fn create_chain_file(path: &Path) -> io::Result<bool> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                File::open(dir)?.sync_all()?;
            }
            Ok(true)
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

/// Appends `line` (which ends in `\n`) to `path` and syncs the data to disk.
///
/// When the file does not end in `\n` (a fragment left by a crash), a `\n` is
/// written first so the new line never joins the fragment. Returns true when
/// that separator was written. The separator and the line go out in one write.
pub fn append_line(path: &Path, line: &[u8]) -> io::Result<bool> {
    let mut file = OpenOptions::new().read(true).append(true).open(path)?;
    let len = file.metadata()?.len();
    let mut separator = false;
    if len > 0 {
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, len - 1)?;
        separator = last[0] != b'\n';
    }
    let mut buffer = Vec::with_capacity(line.len() + 1);
    if separator {
        buffer.push(b'\n');
    }
    buffer.extend_from_slice(line);
    file.write_all(&buffer)?;
    file.sync_data()?;
    Ok(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_after_fragment_starts_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        assert!(create_chain_file(&path).unwrap());
        assert!(!create_chain_file(&path).unwrap());
        assert!(!append_line(&path, b"a\n").unwrap());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"frag")
            .unwrap();
        assert!(append_line(&path, b"b\n").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"a\n{\"frag\nb\n");
    }
}
