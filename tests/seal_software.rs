//! `sealdesk seal --mode software`: files, arguments, the lock and the output.

mod seal_support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use seal_support::{errors, lines, seal, sealdesk, text, verify};
use sealdesk::chain::entry::CHAIN_FILE;
use sealdesk::seal::ChainLock;
use serde_json::Value;

#[test]
fn creates_chain_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let output = seal(
        dir.path(),
        "first",
        &["--mode", "software", "--id", "DEC-1"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let chain = dir.path().join(CHAIN_FILE);
    let mode = std::fs::metadata(&chain).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let line: Value = serde_json::from_str(&lines(&chain)[0]).unwrap();
    assert_eq!(line["entry"]["id"], "DEC-1");
    assert_eq!(line["entry"]["previous_hash"], "genesis");
    assert_eq!(line["chain_idx"], 0);
    assert_eq!(line["seal_mode"], "software");
}

#[test]
fn dev_key_fallback_warns() {
    let dir = tempfile::tempdir().unwrap();
    let output = seal(dir.path(), "first", &["--mode", "software"]);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("development key"), "{stderr}");
}

#[test]
fn secret_file_signs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let secret = keys.path().join("secret");
    std::fs::write(&secret, "a file secret\n").unwrap();
    let secret_arg = secret.to_str().unwrap();
    for i in 0..3 {
        let output = seal(
            dir.path(),
            &format!("decision {i}"),
            &["--mode", "software", "--secret-file", secret_arg],
        );
        assert!(output.status.success(), "{}", text(&output));
        assert!(!String::from_utf8_lossy(&output.stderr).contains("development key"));
    }
    let (code, report) = verify(dir.path(), &["--secret-file", secret_arg]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert_eq!(report["entries"], 3);
    let (code, _) = verify(dir.path(), &[]);
    assert_eq!(
        code, 1,
        "the development key must not verify entries sealed with a secret"
    );
}

#[test]
fn json_output_names_entry() {
    let dir = tempfile::tempdir().unwrap();
    let output = seal(
        dir.path(),
        "first",
        &["--mode", "software", "--format", "json"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    let line: Value = serde_json::from_str(&lines(&dir.path().join(CHAIN_FILE))[0]).unwrap();
    assert_eq!(value["index"], 0);
    assert_eq!(value["hash"], line["hash"]);
    assert_eq!(value["pcr_value"], line["pcr_value"]);
    assert_eq!(value["seal_mode"], "software");
}

#[test]
fn missing_directory_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let output = seal(&missing, "first", &["--mode", "software"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no such file or directory"));
    assert!(!missing.exists());
}

#[test]
fn held_lock_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join(CHAIN_FILE);
    let _held = ChainLock::acquire(&chain, Duration::from_secs(1), |_| {}).unwrap();
    let output = seal(
        dir.path(),
        "blocked",
        &["--mode", "software", "--lock-timeout", "1"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("decisions_sealed.jsonl.lock"), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(!chain.exists() || lines(&chain).is_empty());
}

#[test]
fn missing_required_argument_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = sealdesk()
        .arg("seal")
        .arg(dir.path())
        .args(["--action", "a", "--mode", "software"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn symlinked_chain_shares_lock() {
    let root = tempfile::tempdir().unwrap();
    let real = root.path().join("chain");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join(CHAIN_FILE), b"").unwrap();
    // A symlink to the chain file in another directory: appending `.lock` to each path
    // as given would put the two lock files in different directories.
    let alias = root.path().join("alias.jsonl");
    std::os::unix::fs::symlink(real.join(CHAIN_FILE), &alias).unwrap();

    let workers: Vec<_> = [real.clone(), alias]
        .into_iter()
        .enumerate()
        .map(|(worker, path)| {
            std::thread::spawn(move || {
                for i in 0..25 {
                    let output = seal(
                        &path,
                        &format!("worker {worker} seal {i}"),
                        &["--mode", "software"],
                    );
                    assert!(output.status.success(), "{}", text(&output));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }

    let all = lines(&real.join(CHAIN_FILE));
    assert_eq!(all.len(), 50);
    for (index, line) in all.iter().enumerate() {
        let value: Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["chain_idx"], index as u64, "line {index}");
    }
    let (code, report) = verify(&real, &[]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert_eq!(report["entries"], 50);
}

/// Runs `sealdesk seal DIR --mode software` with the given field options.
fn seal_fields(dir: &std::path::Path, fields: &[&str]) -> std::process::Output {
    sealdesk()
        .arg("seal")
        .arg(dir)
        .args(["--mode", "software"])
        .args(fields)
        .output()
        .unwrap()
}

#[test]
fn invalid_fields_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "--action",
        "ingest",
        "--decision",
        "allow",
        "--reason",
        "ok",
    ];
    let cases: [(&[&str], &str, &str); 7] = [
        (
            &["--decision", "block"],
            "--decision",
            "allow, deny, escalate",
        ),
        (&["--action", ""], "--action", "empty"),
        (&["--reason", " \t "], "--reason", "whitespace"),
        (&["--reason", "ring\u{7}"], "--reason", "\\u{7}"),
        (&["--operator", "eve\u{202e}"], "--operator", "\\u{202e}"),
        (&["--event-id", "E\u{200b}1"], "--event-id", "\\u{200b}"),
        (&["--id", "DEC\n1"], "--id", "\\u{a}"),
    ];
    for (change, option, needle) in cases {
        let mut args: Vec<&str> = base.to_vec();
        for pair in change.chunks(2) {
            match args.iter().position(|a| *a == pair[0]) {
                Some(at) => args[at + 1] = pair[1],
                None => args.extend_from_slice(pair),
            }
        }
        let output = seal_fields(dir.path(), &args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{change:?}: {}",
            text(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(option), "{change:?}: {stderr}");
        assert!(stderr.contains(needle), "{change:?}: {stderr}");
    }
    assert!(!dir.path().join(CHAIN_FILE).exists());
}

#[test]
fn reason_line_breaks_and_unknown_action() {
    let dir = tempfile::tempdir().unwrap();
    let output = seal_fields(
        dir.path(),
        &[
            "--action",
            "quarantine",
            "--decision",
            "deny",
            "--reason",
            "two lines\nand\ta tab",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"quarantine\" is not one of"), "{stderr}");
    assert_eq!(lines(&dir.path().join(CHAIN_FILE)).len(), 1);
}
