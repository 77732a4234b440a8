//! End-to-end test of the interactive view: the real binary in a tmux pane.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::chain::{ChainWriter, Fields};

/// How long to wait for the screen to show something before failing.
const WAIT: Duration = Duration::from_secs(20);

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("running tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn capture(session: &str) -> String {
    tmux(&["capture-pane", "-p", "-t", session])
}

/// Polls the pane until `pred` holds; panics with the last screen otherwise.
fn wait_for(session: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let screen = capture(session);
        if pred(&screen) {
            return screen;
        }
        if start.elapsed() > WAIT {
            let _ = tmux(&["kill-session", "-t", session]);
            panic!("timed out waiting for {what}; the screen was:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

#[test]
fn live_view_in_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipping live_view_in_tmux: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = dir.path().join("decisions_sealed.jsonl");
    let asset = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo_chain.jsonl");
    std::fs::copy(&asset, &chain).expect("copy the demo chain");

    let session = format!("sealdesk-e2e-{}", std::process::id());
    let _guard = Session(session.clone());
    let command = format!(
        "XDG_STATE_HOME='{}' '{}' '{}'; echo SEALDESK-EXITED-$?; sleep 60",
        dir.path().display(),
        env!("CARGO_BIN_EXE_sealdesk"),
        chain.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        &command,
    ]);

    let screen = wait_for(&session, "the verdict", |s| s.contains("INVALID"));
    assert!(
        screen.contains("first: link_broken at entry 30"),
        "{screen}"
    );

    // A finding is shown in the detail pane after jumping to it.
    tmux(&["send-keys", "-t", &session, "g"]);
    tmux(&["send-keys", "-t", &session, "n"]);
    wait_for(&session, "the link_broken finding", |s| {
        s.contains("error link_broken")
    });
    tmux(&["send-keys", "-t", &session, "F"]);
    wait_for(&session, "following again", |s| s.contains("following"));

    // An appended, properly sealed entry appears.
    sealdesk::demo::append_entry(&chain, 0).expect("append a sealed entry");
    wait_for(&session, "the appended entry", |s| {
        s.contains("demo-writer") && s.contains("60 entries")
    });

    // Truncation is shown as an event, and the chain is verified again.
    let bytes = std::fs::read(&chain).expect("read chain");
    let cut = bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(9)
        .map(|(i, _)| i + 1)
        .expect("ten lines");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&chain)
        .expect("open chain");
    file.set_len(cut as u64).expect("truncate");
    drop(file);
    wait_for(&session, "the truncation event", |s| {
        s.contains("file truncated")
    });
    // Entries that had been shown are gone: the verdict says so until A acknowledges it.
    let screen = wait_for(&session, "the removed-entries verdict", |s| {
        s.contains("ENTRIES REMOVED WHILE WATCHING (50 at")
    });
    assert!(!screen.contains("✓ VALID"), "{screen}");
    assert!(screen.contains("50 entries lost"), "{screen}");
    tmux(&["send-keys", "-t", &session, "A"]);
    let screen = wait_for(&session, "the new verdict", |s| {
        s.contains("VALID · 10 entries")
    });
    assert!(!screen.contains("INVALID"), "{screen}");
    assert!(!screen.contains("demo-writer"), "{screen}");
    assert!(screen.contains("file truncated"), "{screen}");

    // q quits and the terminal is restored: the main screen is back.
    tmux(&["send-keys", "-t", &session, "q"]);
    let screen = wait_for(&session, "the exit", |s| s.contains("SEALDESK-EXITED-0"));
    assert!(
        !screen.contains("VALID"),
        "the view is still on screen:\n{screen}"
    );
    let mode = tmux(&[
        "display-message",
        "-p",
        "-t",
        &session,
        "#{alternate_on} #{cursor_flag}",
    ]);
    assert_eq!(
        mode.trim(),
        "0 1",
        "alternate screen still on or cursor hidden"
    );
}

#[test]
fn demo_cleans_up_on_hangup() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipping demo_cleans_up_on_hangup: tmux is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let session = format!("sealdesk-demo-hup-{}", std::process::id());
    let _guard = Session(session.clone());
    let command = format!(
        "TMPDIR='{0}' XDG_STATE_HOME='{0}' '{1}' demo",
        tmp.path().display(),
        env!("CARGO_BIN_EXE_sealdesk"),
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        &command,
    ]);
    wait_for(&session, "the demo view", |s| s.contains("VALID"));
    let demo_dirs = || {
        std::fs::read_dir(tmp.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("sealdesk-demo-")
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(demo_dirs(), 1, "the demo made no temp directory");

    // Closing the terminal sends SIGHUP to the view.
    tmux(&["kill-session", "-t", &session]);
    let start = Instant::now();
    while demo_dirs() > 0 && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(demo_dirs(), 0, "the demo left its temp directory");
}

#[test]
fn rows_show_while_a_large_chain_verifies() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipping rows_show_while_a_large_chain_verifies: tmux is not installed");
        return;
    }
    // 200,000 lines: a sealed chain of 1,000 entries written 200 times over.
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = dir.path().join("decisions_sealed.jsonl");
    let block = ChainWriter::sample(1000).bytes();
    let mut bytes = Vec::with_capacity(block.len() * 200);
    for _ in 0..200 {
        bytes.extend_from_slice(&block);
    }
    std::fs::write(&chain, &bytes).expect("write chain");
    drop(bytes);
    // The reason of the last entry, the newest row in follow mode.
    let newest = Fields::sample(999).reason;

    let session = format!("sealdesk-rows-{}", std::process::id());
    let _guard = Session(session.clone());
    let command = format!(
        "XDG_STATE_HOME='{}' '{}' '{}'; sleep 60",
        dir.path().display(),
        env!("CARGO_BIN_EXE_sealdesk"),
        chain.display()
    );
    let start = Instant::now();
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        &command,
    ]);
    // Entry rows are shown, not verified yet, while the verdict still says verifying.
    let screen = loop {
        let screen = capture(&session);
        if screen.lines().any(|l| l.starts_with("… ?")) && screen.contains(&newest) {
            break screen;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "no row within 1 s of start; the screen was:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    assert!(screen.contains("verifying…"), "{screen}");
    assert!(!screen.contains('✓'), "{screen}");
    assert!(screen.contains(&newest), "{screen}");
    eprintln!("first rows after {elapsed:?}");
    tmux(&["send-keys", "-t", &session, "q"]);
}

/// A byte changed in place while the first verification runs, in bytes the
/// reader has already passed, must not leave a VALID verdict: the view
/// verifies again when the file's change time moved during the run.
#[test]
fn edit_during_first_verification_is_verified_again() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!(
            "skipping edit_during_first_verification_is_verified_again: tmux is not installed"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = dir.path().join("decisions_sealed.jsonl");
    let writer = ChainWriter::sample(300_000);
    let bytes = writer.bytes();
    std::fs::write(&chain, &bytes).expect("write chain");
    // A byte of a reason about 1 MB in: read in the first chunk, past the
    // 4 KiB window the follower compares on every check.
    let reason_at = bytes[1_000_000..]
        .windows(9)
        .position(|w| w == b"\"reason\":")
        .expect("a reason after 1 MB")
        + 1_000_000
        + 10;
    let original = bytes[reason_at];
    drop(bytes);
    drop(writer);

    let session = format!("sealdesk-edit-{}", std::process::id());
    let _guard = Session(session.clone());
    let command = format!(
        "XDG_STATE_HOME='{}' '{}' '{}'; sleep 60",
        dir.path().display(),
        env!("CARGO_BIN_EXE_sealdesk"),
        chain.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        &command,
    ]);
    wait_for(&session, "the progress of the first verification", |s| {
        s.contains("verifying…") && s.contains('%')
    });
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&chain)
            .expect("open for the edit");
        let changed = if original == b'X' { b'Y' } else { b'X' };
        file.write_at(&[changed], reason_at as u64).expect("edit");
    }
    let during = capture(&session);
    if !during.contains("verifying…") {
        eprintln!("skipping the check: verification ended before the edit (a fast build)");
        return;
    }
    let screen = wait_for(&session, "an INVALID verdict after the edit", |s| {
        s.contains("INVALID")
    });
    assert!(
        screen.contains("hash_mismatch") || screen.contains("error"),
        "{screen}"
    );
    tmux(&["send-keys", "-t", &session, "q"]);
}
