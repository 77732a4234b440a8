//! The notify watcher on the followed file's parent directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// A message to the follower thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Something may have changed at the path.
    Changed,
    /// The handle was dropped.
    Stop,
}

/// Starts a watcher on the parent directory of `path` that sends [`Wake::Changed`]
/// for events that name the file (or that need a rescan).
///
/// Returns the reason as text when the watcher cannot start, so the caller
/// can fall back to polling and report why.
pub(crate) fn start_watcher(path: &Path, wake: Sender<Wake>) -> Result<RecommendedWatcher, String> {
    let Some(file_name) = path.file_name().map(OsString::from) else {
        return Err(format!("path {} has no file name to watch", path.display()));
    };
    let parent = parent_dir(path);

    let handler = move |result: notify::Result<notify::Event>| {
        let message = match result {
            Ok(event) => {
                let names_file = event
                    .paths
                    .iter()
                    .any(|p| p.file_name() == Some(&file_name));
                if !(names_file || event.paths.is_empty() || event.need_rescan()) {
                    return;
                }
                Wake::Changed
            }
            Err(error) => {
                tracing::warn!(%error, "file watcher reported an error; checking the file");
                Wake::Changed
            }
        };
        // A send error means the follower thread has stopped, so nothing is waiting for this.
        let _ = wake.send(message);
    };

    let mut watcher = notify::recommended_watcher(handler)
        .map_err(|error| format!("file watcher failed to start: {error}"))?;
    watcher
        .watch(&parent, RecursiveMode::NonRecursive)
        .map_err(|error| format!("watching directory {} failed: {error}", parent.display()))?;
    Ok(watcher)
}

/// Returns the directory that contains `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
