//! End-to-end test of sealing and quoting from the interactive view: the real binary in
//! a tmux pane, a real swtpm, and a chain written by the Go reference logger.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::swtpm::Swtpm;

/// How long to wait for the screen to show something before failing.
const WAIT: Duration = Duration::from_secs(30);

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

fn keys(session: &str, keys: &[&str]) {
    for key in keys {
        tmux(&["send-keys", "-t", session, key]);
    }
}

fn type_text(session: &str, text: &str) {
    tmux(&["send-keys", "-t", session, "-l", text]);
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

/// Writes a 10-entry chain into `dir` with the Go reference's bigchain command, or copies
/// the reference-written `plain` vector when Go or the reference is missing.
fn reference_chain(dir: &Path, bin: &Path) {
    let built = Command::new("go").arg("version").output().is_ok()
        && common::reference_dir().is_some()
        && Command::new("go")
            .current_dir(common::reference_dir().unwrap_or_default())
            .args(["build", "-o"])
            .arg(format!("{}/", bin.display()))
            .arg("./cmd/...")
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off")
            .status()
            .is_ok_and(|s| s.success());
    if built {
        let status = Command::new(bin.join("bigchain"))
            .arg("-dir")
            .arg(dir)
            .args(["-n", "10"])
            .status()
            .expect("run bigchain");
        assert!(status.success(), "bigchain failed");
        return;
    }
    eprintln!("the Go reference could not be built; using the reference-written plain vector");
    std::fs::create_dir_all(dir).expect("create chain dir");
    let vector = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vectors/plain/decisions_sealed.jsonl");
    std::fs::copy(vector, dir.join("decisions_sealed.jsonl")).expect("copy vector");
}

fn entries(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("decisions_sealed.jsonl"))
        .expect("read chain")
        .lines()
        .count()
}

fn quote_dir(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("quote-"))
                && p.join("quote.nonce").exists()
        })
}

#[test]
fn seal_and_quote_from_the_view() {
    for tool in ["tmux", "swtpm", "tpm2_checkquote"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("skipping seal_and_quote_from_the_view: {tool} is not installed");
            return;
        }
    }
    let tpm = Swtpm::start();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("chain");
    reference_chain(&dir, work.path());
    let before = entries(&dir);

    let session = format!("sealdesk-seal-e2e-{}", std::process::id());
    let _guard = Session(session.clone());
    let command = format!(
        "USER=tester XDG_STATE_HOME='{}' '{}' --tcti '{}' '{}'; echo SEALDESK-EXITED-$?; sleep 60",
        work.path().display(),
        env!("CARGO_BIN_EXE_sealdesk"),
        tpm.tcti(),
        dir.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "140",
        "-y",
        "45",
        &command,
    ]);
    wait_for(&session, "the verdict and the TPM", |s| {
        s.contains(&format!("{before} entries")) && s.contains("next seal: TPM ")
    });

    // First seal: the software entries were never extended into this TPM, so the form
    // needs the new-segment confirmation.
    keys(&session, &["P"]);
    wait_for(&session, "the PCR verdict", |s| s.contains("reset: PCR 23"));
    keys(&session, &["P"]);
    wait_for(&session, "the pane to close", |s| {
        !s.contains("r refreshes")
    });
    keys(&session, &["S"]);
    wait_for(&session, "the form", |s| s.contains("seal a decision"));
    type_text(&session, "first manual decision");
    keys(&session, &["Enter"]);
    type_text(&session, "second line");
    keys(&session, &["Tab", "Enter"]);
    wait_for(&session, "the new-segment message", |s| {
        s.contains("tick this")
    });
    keys(&session, &["Tab", "Tab", "Tab", "Space", "Enter"]);
    wait_for(&session, "the preview", |s| {
        s.contains("Preview: the entry")
    });
    keys(&session, &["Enter"]);
    wait_for(&session, "the first sealed entry", |s| {
        s.contains(&format!("sealed entry {before}"))
            && s.contains(&format!("{} entries", before + 1))
    });
    // The new entry is selected, so the detail pane shows it, and its signature verifies
    // under the signing key the seal exported beside the chain.
    let screen = wait_for(&session, "the sealed entry in the detail pane", |s| {
        s.contains(&format!("entry {before} ·")) && s.contains("(verifies)")
    });
    assert!(
        screen.contains("reason: first manual decision\\nsecond line"),
        "{screen}"
    );
    assert!(screen.contains("operator: tester"), "{screen}");

    // Second seal: the PCR is at the head now.
    keys(&session, &["P"]);
    wait_for(&session, "the anchored verdict", |s| {
        s.contains(&format!(
            "anchored: PCR 23 equals the pcr_value of the head (entry {before})"
        ))
    });
    keys(&session, &["P"]);
    wait_for(&session, "the pane to close", |s| {
        !s.contains("r refreshes")
    });
    keys(&session, &["S"]);
    wait_for(&session, "the form", |s| s.contains("seal a decision"));
    type_text(&session, "second manual decision");
    keys(&session, &["Tab", "Enter"]);
    wait_for(&session, "the preview", |s| {
        s.contains("Preview: the entry")
    });
    keys(&session, &["Enter"]);
    wait_for(&session, "the second sealed entry", |s| {
        s.contains(&format!("sealed entry {}", before + 1))
            && s.contains(&format!("{} entries", before + 2))
    });
    assert_eq!(entries(&dir), before + 2);

    // A quote, then its files exported into the default directory.
    keys(&session, &["Q", "t"]);
    let screen = wait_for(&session, "the quote", |s| {
        s.contains("PCR digest    passed")
    });
    assert!(
        screen.contains(&format!(
            "anchored: PCR 23 equals the pcr_value of the head (entry {})",
            before + 1
        )),
        "{screen}"
    );
    assert!(screen.contains("signature     passed"), "{screen}");
    assert!(screen.contains("nonce         passed"), "{screen}");
    keys(&session, &["e"]);
    wait_for(&session, "the export prompt", |s| {
        s.contains("export the quote files into directory")
    });
    keys(&session, &["Enter"]);
    wait_for(&session, "the export", |s| s.contains("tpm2_checkquote -u"));
    keys(&session, &["Q"]);
    wait_for(&session, "the pane to close", |s| {
        !s.contains("t takes a quote")
    });
    keys(&session, &["q"]);
    wait_for(&session, "the exit", |s| s.contains("SEALDESK-EXITED-0"));

    let output = Command::new(env!("CARGO_BIN_EXE_sealdesk"))
        .args(["verify", "--anchor", "--tcti", &tpm.tcti()])
        .arg(&dir)
        .output()
        .expect("run sealdesk verify");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "verify --anchor: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("anchored: PCR 23"), "{stdout}");

    let export = quote_dir(&dir).expect("an exported quote directory beside the chain");
    let nonce = std::fs::read_to_string(export.join("quote.nonce")).expect("read nonce");
    let status = Command::new("tpm2_checkquote")
        .arg("-u")
        .arg(export.join("ak.pub.pem"))
        .arg("-m")
        .arg(export.join("quote.msg"))
        .arg("-s")
        .arg(export.join("quote.sig"))
        .arg("-f")
        .arg(export.join("quote.pcrs"))
        .args(["-l", "sha256:23", "-q", nonce.trim(), "-g", "sha256"])
        .output()
        .expect("run tpm2_checkquote");
    assert!(
        status.status.success(),
        "tpm2_checkquote: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// Returns whether a process whose command line contains `needle` runs.
fn process_running(needle: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", needle])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn demo_starts_and_stops_swtpm() {
    for tool in ["tmux", "swtpm", "pgrep"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("skipping demo_starts_and_stops_swtpm: {tool} is not installed");
            return;
        }
    }
    let work = tempfile::tempdir().expect("tempdir");
    let session = format!("sealdesk-demo-e2e-{}", std::process::id());
    let _guard = Session(session.clone());
    // The demo's temporary directory, and so swtpm's state directory, lands under TMPDIR.
    let command = format!(
        "TMPDIR='{}' XDG_STATE_HOME='{}' '{}' demo --interval 60; echo SEALDESK-EXITED-$?; sleep 60",
        work.path().display(),
        work.path().display(),
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
    wait_for(&session, "the TPM", |s| s.contains("next seal: TPM "));
    let state = format!(
        "swtpm socket --tpm2 --tpmstate dir={}/sealdesk-demo-",
        work.path().display()
    );
    assert!(process_running(&state), "no process matches {state}");
    keys(&session, &["P"]);
    let screen = wait_for(&session, "the PCR pane", |s| s.contains("manufacturer IBM"));
    assert!(screen.contains("swtpm:host=127.0.0.1,port="), "{screen}");
    keys(&session, &["P"]);
    wait_for(&session, "the pane to close", |s| {
        !s.contains("r refreshes")
    });
    keys(&session, &["q"]);
    wait_for(&session, "the exit", |s| s.contains("SEALDESK-EXITED-0"));
    assert!(!process_running(&state), "{state} still runs");
}
