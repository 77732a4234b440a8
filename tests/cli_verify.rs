//! Exit codes, messages and output hygiene of `sealdesk verify`.

mod common;

use std::path::Path;

use common::chain::{run_verify, sealdesk, vectors_dir, ChainWriter, Fields, Run, DEV_KEY};

fn plain() -> std::path::PathBuf {
    vectors_dir().join("plain/decisions_sealed.jsonl")
}

fn assert_cannot_verify(run: &Run, what: &str) {
    assert_eq!(
        run.code,
        2,
        "{what}: exit code; stderr {}",
        run.stderr_text()
    );
    assert!(
        !run.stderr_text().trim().is_empty(),
        "{what}: no message on stderr"
    );
}

#[test]
fn missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("nope.jsonl");
    let run = run_verify(&path, None, "json");
    assert_cannot_verify(&run, "missing file");
    assert!(
        run.stderr_text().contains("nope.jsonl"),
        "{}",
        run.stderr_text()
    );
}

#[test]
fn directory_without_chain_exits_2() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let run = run_verify(dir.path(), None, "json");
    assert_cannot_verify(&run, "empty directory");
    assert!(
        run.stderr_text().contains("decisions_sealed.jsonl"),
        "{}",
        run.stderr_text()
    );
}

#[test]
fn directory_with_chain_is_verified() {
    let run = run_verify(&vectors_dir().join("plain"), None, "json");
    assert_eq!(run.code, 0, "{}", run.stderr_text());
    assert_eq!(run.report()["entries"].as_u64(), Some(50));
}

#[test]
fn unreadable_chain_exits_2() {
    // Tests may run as root, which chmod 000 does not stop: a directory named
    // like the chain file and a FIFO cannot be read as a chain either.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let as_dir = dir.path().join("a");
    std::fs::create_dir_all(as_dir.join("decisions_sealed.jsonl"))
        .unwrap_or_else(|e| panic!("mkdir: {e}"));
    let run = run_verify(&as_dir, None, "json");
    assert_cannot_verify(&run, "chain path is a directory");
    assert!(
        run.stderr_text().contains("not a regular file"),
        "{}",
        run.stderr_text()
    );

    let fifo = dir.path().join("fifo.jsonl");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes())
        .unwrap_or_else(|e| panic!("path: {e}"));
    // SAFETY: mkfifo reads a NUL-terminated path and nothing else.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo failed");
    let run = run_verify(&fifo, None, "json");
    assert_cannot_verify(&run, "FIFO");

    let locked = dir.path().join("locked.jsonl");
    std::fs::write(&locked, ChainWriter::sample(2).bytes()).unwrap_or_else(|e| panic!("{e}"));
    let status = std::process::Command::new("chmod")
        .arg("000")
        .arg(&locked)
        .status();
    assert!(status.is_ok_and(|s| s.success()));
    let run = run_verify(&locked, None, "json");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert_cannot_verify(&run, "chmod 000");
        assert!(
            run.stderr_text().contains("permission denied"),
            "{}",
            run.stderr_text()
        );
    }
}

#[test]
fn empty_file_is_valid_with_empty_chain() {
    let run = run_verify(
        &vectors_dir().join("empty/decisions_sealed.jsonl"),
        None,
        "json",
    );
    assert_eq!(run.code, 0);
    let report = run.report();
    assert_eq!(report["valid"].as_bool(), Some(true));
    assert_eq!(common::chain::of_kind(&report, "empty_chain").len(), 1);
}

#[test]
fn text_format_has_verdict_and_counts() {
    let path = vectors_dir().join("tamper-hash-5/decisions_sealed.jsonl");
    let run = run_verify(&path, None, "text");
    assert_eq!(run.code, 1);
    let text = run.stdout_text().to_lowercase();
    assert!(
        text.contains("invalid") || text.contains("not valid"),
        "no verdict:\n{text}"
    );
    for kind in [
        "hash_mismatch",
        "link_broken",
        "signature_invalid",
        "pcr_mismatch",
    ] {
        assert!(text.contains(kind), "no count for {kind}:\n{text}");
    }

    let run = run_verify(&plain(), None, "text");
    assert_eq!(run.code, 0);
    assert!(
        run.stdout_text().to_lowercase().contains("valid"),
        "{}",
        run.stdout_text()
    );
}

#[test]
fn text_format_is_default() {
    let mut cmd = sealdesk();
    let out = cmd
        .arg("verify")
        .arg(plain())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_err());
}

#[test]
fn text_format_summarises_long_runs() {
    let mut w = ChainWriter::sample(2000);
    for s in &mut w.lines {
        s.signature = "0".repeat(64);
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("decisions_sealed.jsonl");
    std::fs::write(&path, w.bytes()).unwrap_or_else(|e| panic!("{e}"));

    let run = run_verify(&path, None, "text");
    assert_eq!(run.code, 1);
    let lines = run.stdout_text().lines().count();
    assert!(
        lines < 200,
        "text report has {lines} lines for one run of 2000 bad signatures"
    );
    assert!(
        run.stdout_text().contains("2000"),
        "count missing:\n{}",
        run.stdout_text()
    );

    let report = run_verify(&path, None, "json").report();
    assert_eq!(
        common::chain::of_kind(&report, "signature_invalid").len(),
        2000
    );
}

/// A chain whose strings hold every control byte class a terminal could act on.
fn hostile_chain() -> Vec<u8> {
    let mut w = ChainWriter::new(DEV_KEY);
    let mut f = Fields::sample(0);
    f.reason = "esc \u{1b}[31mred\u{1b}]0;title\u{7} nul \u{0} del \u{7f} c1 \u{9b}2J \u{85} bidi \u{202e}".to_string();
    f.operator = "bell\u{7}\r\n".to_string();
    w.push(f);
    w.push(Fields::sample(1));
    let mut bytes = w.bytes();
    bytes.extend_from_slice(b"\x1b[2J\x00\x07\x7f\xc2\x9b garbage \xff\n");
    bytes.extend_from_slice(b"{\"entry\":{\"id\":\"\x1b]52;c;AAAA\x07\"");
    bytes
}

fn assert_no_control_bytes(what: &str, out: &[u8]) {
    for (k, &b) in out.iter().enumerate() {
        let bad = (b < 0x20 && b != b'\n') || b == 0x7f;
        assert!(!bad, "{what}: raw control byte {b:#04x} at {k}");
    }
    let text = String::from_utf8_lossy(out);
    for (k, c) in text.char_indices() {
        let code = c as u32;
        assert!(
            !(0x80..=0x9f).contains(&code),
            "{what}: raw C1 control U+{code:04X} at {k}"
        );
    }
}

#[test]
fn output_has_no_raw_control_bytes() {
    let bytes = hostile_chain();
    common::chain::save_hostile("control-bytes", &bytes);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("decisions_sealed.jsonl");
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    for format in ["text", "json"] {
        let run = run_verify(&path, None, format);
        assert_eq!(run.code, 1, "{format}: {}", run.stderr_text());
        assert_no_control_bytes(&format!("{format} stdout"), &run.stdout);
        assert_no_control_bytes(&format!("{format} stderr"), &run.stderr);
    }
}

fn custom_key_path() -> std::path::PathBuf {
    vectors_dir().join("custom-key/decisions_sealed.jsonl")
}

#[test]
fn secret_from_env() {
    let run = run_verify(&custom_key_path(), Some("s3cr3t-ops-key"), "json");
    assert_eq!(run.code, 0, "{}", run.stdout_text());
}

#[test]
fn secret_from_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cr3t-ops-key\n").unwrap_or_else(|e| panic!("{e}"));
    let out = sealdesk()
        .arg("verify")
        .arg(custom_key_path())
        .arg("--format")
        .arg("json")
        .arg("--secret-file")
        .arg(&secret)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn missing_secret_file_exits_2() {
    let out = sealdesk()
        .arg("verify")
        .arg(plain())
        .arg("--secret-file")
        .arg(Path::new("/nonexistent/secret"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.is_empty());
}

#[test]
fn secret_on_argv_is_rejected() {
    for args in [
        vec!["--secret", "s3cr3t-ops-key"],
        vec!["--secret=s3cr3t-ops-key"],
        vec!["--hmac-secret", "s3cr3t-ops-key"],
    ] {
        let out = sealdesk()
            .arg("verify")
            .arg(custom_key_path())
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status.code(), Some(2), "{args:?} accepted");
        assert!(out.stdout.is_empty(), "{args:?}: printed a report");
    }
}
