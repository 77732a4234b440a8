//! Follows real files in temporary directories and checks the exact events.
//!
//! Every wait has a generous timeout. A test acts, then waits for the events
//! that the action must produce, so no assertion depends on a fixed sleep.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sealdesk::tail::{
    spawn_follower, FollowerConfig, FollowerHandle, TailEvent, TailEventKind, WatchMode,
};
use tokio::sync::mpsc::Receiver;

/// Upper bound on the wait for one event; far above the 1 s re-check interval.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

struct Follow {
    events: Receiver<TailEvent>,
    _handle: FollowerHandle,
}

impl Follow {
    fn start(config: FollowerConfig) -> Self {
        let (events, handle) = spawn_follower(config);
        Self {
            events,
            _handle: handle,
        }
    }

    async fn next(&mut self) -> TailEvent {
        tokio::time::timeout(EVENT_TIMEOUT, self.events.recv())
            .await
            .expect("no event within the timeout")
            .expect("event channel closed")
    }

    /// Receives one event per expected `(generation, kind)` and compares them in order.
    async fn expect(&mut self, expected: &[(u64, TailEventKind)]) {
        for (index, want) in expected.iter().enumerate() {
            let got = self.next().await;
            assert_eq!(
                (got.generation, &got.kind),
                (want.0, &want.1),
                "event {index} differs from the expected one"
            );
        }
    }

    /// Checks that no event is queued right now (events are sent before they are awaited).
    fn expect_no_queued_event(&mut self) {
        if let Ok(event) = self.events.try_recv() {
            panic!("unexpected event: {event:?}");
        }
    }
}

fn config(path: &Path, polling: bool) -> FollowerConfig {
    let mut config = FollowerConfig::new(path);
    config.force_polling = polling;
    // Long enough that no test receives a TailComplete it did not ask for.
    config.tail_complete_after = Duration::from_secs(3600);
    config
}

fn started(polling: bool) -> TailEventKind {
    let mode = if polling {
        WatchMode::Polling {
            reason: "polling was forced by the configuration".into(),
        }
    } else {
        WatchMode::Watcher
    };
    TailEventKind::Started { mode }
}

fn appended(offset: u64, bytes: &[u8]) -> TailEventKind {
    TailEventKind::Appended {
        offset,
        bytes: bytes.to_vec(),
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

fn chain_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("decisions_sealed.jsonl")
}

/// Defines one test per detection mode for an async case taking `polling: bool`.
macro_rules! in_both_modes {
    ($case:ident, $watcher:ident, $polling:ident) => {
        #[tokio::test]
        async fn $watcher() {
            $case(false).await;
        }

        #[tokio::test]
        async fn $polling() {
            $case(true).await;
        }
    };
}

async fn case_append_lines(polling: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"a\n").unwrap();
    let mut follow = Follow::start(config(&path, polling));
    follow
        .expect(&[(0, started(polling)), (0, appended(0, b"a\n"))])
        .await;

    append(&path, b"b\nc\n");
    follow.expect(&[(0, appended(2, b"b\nc\n"))]).await;

    append(&path, b"d\n");
    follow.expect(&[(0, appended(6, b"d\n"))]).await;
    follow.expect_no_queued_event();
}
in_both_modes!(
    case_append_lines,
    append_lines_watcher,
    append_lines_polling
);

async fn case_line_in_two_halves(polling: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"").unwrap();
    let mut follow = Follow::start(config(&path, polling));
    follow.expect(&[(0, started(polling))]).await;

    append(&path, b"{\"seq\":");
    follow
        .expect(&[(0, TailEventKind::PendingTail { len: 7 })])
        .await;

    append(&path, b"1}\n");
    follow
        .expect(&[
            (0, appended(0, b"{\"seq\":1}\n")),
            (0, TailEventKind::PendingTail { len: 0 }),
        ])
        .await;
    follow.expect_no_queued_event();
}
in_both_modes!(
    case_line_in_two_halves,
    two_halves_watcher,
    two_halves_polling
);

#[tokio::test]
async fn utf8_char_split_across_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"").unwrap();
    let mut follow = Follow::start(config(&path, false));
    follow.expect(&[(0, started(false))]).await;

    let line = "caf\u{e9}\n".as_bytes();
    // "é" is two bytes (0xC3 0xA9); the first write ends between them.
    append(&path, &line[..4]);
    follow
        .expect(&[(0, TailEventKind::PendingTail { len: 4 })])
        .await;

    append(&path, &line[4..]);
    let event = follow.next().await;
    assert_eq!(event.kind, appended(0, line));
    if let TailEventKind::Appended { bytes, .. } = &event.kind {
        assert_eq!(std::str::from_utf8(bytes).unwrap(), "caf\u{e9}\n");
    }
    follow
        .expect(&[(0, TailEventKind::PendingTail { len: 0 })])
        .await;
}

#[tokio::test]
async fn tail_complete_after_quiet_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"a\n").unwrap();
    let mut config = config(&path, false);
    config.tail_complete_after = Duration::from_millis(300);
    let mut follow = Follow::start(config);
    follow
        .expect(&[(0, started(false)), (0, appended(0, b"a\n"))])
        .await;

    append(&path, b"{\"last\":true}");
    follow
        .expect(&[(0, TailEventKind::PendingTail { len: 13 })])
        .await;

    let event = follow.next().await;
    match event.kind {
        TailEventKind::TailComplete { len, pending_for } => {
            assert_eq!(len, 13);
            assert!(
                pending_for >= Duration::from_millis(300),
                "pending_for was {pending_for:?}"
            );
        }
        other => panic!("expected TailComplete, got {other:?}"),
    }

    // The newline arrives late: the line is delivered whole and the tail clears.
    append(&path, b"\n");
    follow
        .expect(&[
            (0, appended(2, b"{\"last\":true}\n")),
            (0, TailEventKind::PendingTail { len: 0 }),
        ])
        .await;
}

async fn case_truncate_to_zero(polling: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"a\nb\n").unwrap();
    let mut follow = Follow::start(config(&path, polling));
    follow
        .expect(&[(0, started(polling)), (0, appended(0, b"a\nb\n"))])
        .await;

    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    follow
        .expect(&[(
            1,
            TailEventKind::Truncated {
                old_size: 4,
                new_size: 0,
            },
        )])
        .await;

    append(&path, b"c\n");
    follow.expect(&[(1, appended(0, b"c\n"))]).await;
    follow.expect_no_queued_event();
}
in_both_modes!(
    case_truncate_to_zero,
    truncate_to_zero_watcher,
    truncate_to_zero_polling
);

async fn case_truncate_shorter(polling: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"aa\nbb\ncc\n").unwrap();
    let mut follow = Follow::start(config(&path, polling));
    follow
        .expect(&[(0, started(polling)), (0, appended(0, b"aa\nbb\ncc\n"))])
        .await;

    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(3)
        .unwrap();
    follow
        .expect(&[
            (
                1,
                TailEventKind::Truncated {
                    old_size: 9,
                    new_size: 3,
                },
            ),
            (1, appended(0, b"aa\n")),
        ])
        .await;
    follow.expect_no_queued_event();
}
in_both_modes!(
    case_truncate_shorter,
    truncate_shorter_watcher,
    truncate_shorter_polling
);

async fn case_replace_by_rename(polling: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"a\n").unwrap();
    let old_inode = inode(&path);
    let mut follow = Follow::start(config(&path, polling));
    follow
        .expect(&[(0, started(polling)), (0, appended(0, b"a\n"))])
        .await;

    // An editor's save: write a temporary file, then rename it over the path.
    let temp = dir.path().join(".decisions_sealed.jsonl.tmp");
    fs::write(&temp, b"x\ny\n").unwrap();
    let new_inode = inode(&temp);
    fs::rename(&temp, &path).unwrap();

    follow
        .expect(&[
            (
                1,
                TailEventKind::Replaced {
                    old_inode,
                    new_inode,
                },
            ),
            (1, appended(0, b"x\ny\n")),
        ])
        .await;
    follow.expect_no_queued_event();
}
in_both_modes!(
    case_replace_by_rename,
    replace_by_rename_watcher,
    replace_by_rename_polling
);

async fn case_rotation_drains_old_file(polling: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"a\n").unwrap();
    let old_inode = inode(&path);
    let mut follow = Follow::start(config(&path, polling));
    follow
        .expect(&[(0, started(polling)), (0, appended(0, b"a\n"))])
        .await;

    // A writer keeps the old file open across the rotation.
    let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
    fs::rename(&path, dir.path().join("decisions_sealed.jsonl.1")).unwrap();
    writer.write_all(b"b\n").unwrap();
    let mut new_file = File::create(&path).unwrap();
    let new_inode = new_file.metadata().unwrap().ino();
    new_file.write_all(b"c\n").unwrap();

    follow
        .expect(&[
            (0, appended(2, b"b\n")),
            (
                1,
                TailEventKind::Replaced {
                    old_inode,
                    new_inode,
                },
            ),
            (1, appended(0, b"c\n")),
        ])
        .await;
    follow.expect_no_queued_event();
}
in_both_modes!(
    case_rotation_drains_old_file,
    rotation_watcher,
    rotation_polling
);

async fn case_delete_then_recreate(polling: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"a\n").unwrap();
    let old_inode = inode(&path);
    let mut follow = Follow::start(config(&path, polling));
    follow
        .expect(&[(0, started(polling)), (0, appended(0, b"a\n"))])
        .await;

    fs::remove_file(&path).unwrap();
    follow.expect(&[(0, TailEventKind::Deleted)]).await;

    fs::write(&path, b"z\n").unwrap();
    let new_inode = inode(&path);
    follow
        .expect(&[
            (
                1,
                TailEventKind::Replaced {
                    old_inode,
                    new_inode,
                },
            ),
            (1, appended(0, b"z\n")),
        ])
        .await;
    follow.expect_no_queued_event();
}
in_both_modes!(case_delete_then_recreate, delete_watcher, delete_polling);

#[tokio::test]
async fn missing_path_then_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    let mut follow = Follow::start(config(&path, false));
    follow
        .expect(&[(0, started(false)), (0, TailEventKind::Deleted)])
        .await;

    fs::write(&path, b"a\n").unwrap();
    let inode = inode(&path);
    follow
        .expect(&[
            (0, TailEventKind::Created { inode }),
            (0, appended(0, b"a\n")),
        ])
        .await;
    follow.expect_no_queued_event();
}

async fn case_modify_in_place(polling: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"aaa\nbbb\nccc\n").unwrap();
    let mut follow = Follow::start(config(&path, polling));
    follow
        .expect(&[(0, started(polling)), (0, appended(0, b"aaa\nbbb\nccc\n"))])
        .await;

    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_at(b"X", 5).unwrap();
    follow
        .expect(&[
            (
                1,
                TailEventKind::Modified {
                    first_changed_offset_hint: 5,
                },
            ),
            (1, appended(0, b"aaa\nbXb\nccc\n")),
        ])
        .await;
    follow.expect_no_queued_event();
}
in_both_modes!(
    case_modify_in_place,
    modify_in_place_watcher,
    modify_in_place_polling
);

#[tokio::test]
async fn modify_middle_of_large_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    let line = b"{\"entry\":\"0123456789abcdef0123456789abcdef\"}\n";
    let content: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 20_000)
        .collect();
    fs::write(&path, &content).unwrap();
    let mut follow = Follow::start(config(&path, false));
    follow
        .expect(&[(0, started(false)), (0, appended(0, &content))])
        .await;

    // Far from the first and last 4 KiB, so only the block digests can see it.
    let offset = 600_000_u64;
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_at(b"X", offset).unwrap();
    let mut changed = content.clone();
    changed[offset as usize] = b'X';

    // The block digests cover 256 KiB each, so the hint is the start of the third block.
    follow
        .expect(&[
            (
                1,
                TailEventKind::Modified {
                    first_changed_offset_hint: 2 * 256 * 1024,
                },
            ),
            (1, appended(0, &changed)),
        ])
        .await;
    follow.expect_no_queued_event();
}

#[tokio::test]
async fn start_offset_skips_delivered_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"a\nb\n").unwrap();
    let mut config = config(&path, false);
    config.start_offset = 2;
    let mut follow = Follow::start(config);
    follow
        .expect(&[(0, started(false)), (0, appended(2, b"b\n"))])
        .await;
    follow.expect_no_queued_event();
}

#[tokio::test]
async fn start_offset_past_end_is_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"a\nb\n").unwrap();
    let mut config = config(&path, false);
    config.start_offset = 100;
    let mut follow = Follow::start(config);
    follow
        .expect(&[
            (0, started(false)),
            (
                1,
                TailEventKind::Truncated {
                    old_size: 100,
                    new_size: 4,
                },
            ),
            (1, appended(0, b"a\nb\n")),
        ])
        .await;
    follow.expect_no_queued_event();
}

#[tokio::test]
async fn max_chunk_splits_at_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"ab\ncd\nef\n").unwrap();
    let mut config = config(&path, false);
    config.max_chunk = 4;
    let mut follow = Follow::start(config);
    follow
        .expect(&[
            (0, started(false)),
            (0, appended(0, b"ab\n")),
            (0, appended(3, b"cd\n")),
            (0, appended(6, b"ef\n")),
        ])
        .await;
}

#[tokio::test]
async fn mode_000_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::write(&path, b"a\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    let mut follow = Follow::start(config(&path, false));

    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    if !is_root {
        follow.expect(&[(0, started(false))]).await;
        match follow.next().await.kind {
            TailEventKind::Error { message } => {
                assert!(message.contains("Permission denied"), "message: {message}");
                assert!(
                    message.contains("decisions_sealed.jsonl"),
                    "message: {message}"
                );
            }
            other => panic!("expected Error, got {other:?}"),
        }
        return;
    }

    // Root bypasses file permission bits, so mode 000 still reads; the
    // follower must neither report an error nor mistake the chmod for a change.
    follow
        .expect(&[(0, started(false)), (0, appended(0, b"a\n"))])
        .await;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    append(&path, b"b\n");
    follow.expect(&[(0, appended(2, b"b\n"))]).await;
    follow.expect_no_queued_event();
}

#[tokio::test]
async fn directory_at_path_is_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = chain_path(&dir);
    fs::create_dir(&path).unwrap();
    let mut follow = Follow::start(config(&path, false));
    let message = format!("{} is not a regular file", path.display());
    follow
        .expect(&[(0, started(false)), (0, TailEventKind::Error { message })])
        .await;

    fs::remove_dir(&path).unwrap();
    fs::write(&path, b"a\n").unwrap();
    let inode = inode(&path);
    follow
        .expect(&[
            (0, TailEventKind::Created { inode }),
            (0, appended(0, b"a\n")),
        ])
        .await;
}

#[tokio::test]
async fn missing_parent_falls_back_to_polling() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("not-yet");
    let path = parent.join("decisions_sealed.jsonl");
    let mut config = config(&path, false);
    config.poll_interval = Duration::from_millis(50);
    let mut follow = Follow::start(config);

    match follow.next().await.kind {
        TailEventKind::Started {
            mode: WatchMode::Polling { reason },
        } => {
            assert!(reason.contains("not-yet"), "reason: {reason}");
        }
        other => panic!("expected Started in polling mode, got {other:?}"),
    }
    follow.expect(&[(0, TailEventKind::Deleted)]).await;

    fs::create_dir(&parent).unwrap();
    fs::write(&path, b"a\n").unwrap();
    let inode = inode(&path);
    follow
        .expect(&[
            (0, TailEventKind::Created { inode }),
            (0, appended(0, b"a\n")),
        ])
        .await;
}
