//! `sealdesk quote` and `verify --anchor` against a real swtpm per test.

#![cfg(feature = "tpm")]

mod seal_support;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::path::Path;
use std::process::{Command, Output};

use seal_support::{errors, kinds, lines, seal, sealdesk, text, verify};
use sealdesk::chain::entry::CHAIN_FILE;
use serde_json::Value;
use swtpm::Swtpm;

fn seal_tpm(dir: &Path, swtpm: &Swtpm, count: usize) {
    for i in 0..count {
        let output = seal(dir, &format!("decision {i}"), &["--tcti", &swtpm.tcti()]);
        assert!(output.status.success(), "seal failed: {}", text(&output));
    }
}

fn quote(dir: &Path, swtpm: &Swtpm, extra: &[&str]) -> (Output, Value) {
    let output = sealdesk()
        .arg("quote")
        .arg(dir)
        .args(["--tcti", &swtpm.tcti(), "--format", "json"])
        .args(extra)
        .output()
        .expect("run sealdesk quote");
    let value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("quote printed no JSON ({e}): {}", text(&output)));
    (output, value)
}

fn finding_kinds(value: &Value) -> Vec<(String, String)> {
    value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn tpm2(swtpm: &Swtpm, tool: &str, args: &[&str]) {
    let status = Command::new(tool)
        .args(args)
        .env("TPM2TOOLS_TCTI", swtpm.tcti())
        .env("TSS2_LOG", "all+none")
        .status()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(status.success(), "{tool} {args:?} failed: {status}");
}

/// Resets PCR 23 and extends it with the hashes of the first `count` entries.
fn replay(swtpm: &Swtpm, chain: &Path, count: usize) {
    tpm2(swtpm, "tpm2_pcrreset", &["23"]);
    for line in &lines(chain)[..count] {
        let value: Value = serde_json::from_str(line).unwrap();
        let digest = format!("23:sha256={}", value["hash"].as_str().unwrap());
        tpm2(swtpm, "tpm2_pcrextend", &[&digest]);
    }
}

fn checkquote(out: &Path, nonce: &str, pcrs: &Path) -> bool {
    Command::new("tpm2_checkquote")
        .current_dir(out)
        .args([
            "-u",
            "ak.pub.pem",
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-f",
        ])
        .arg(pcrs)
        .args(["-l", "sha256:23", "-q", nonce, "-g", "sha256"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run tpm2_checkquote")
        .success()
}

#[test]
fn quote_after_sealing_is_anchored() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    seal_tpm(dir.path(), &swtpm, 5);
    let out = tempfile::tempdir().unwrap();

    let (output, value) = quote(dir.path(), &swtpm, &["--out", out.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(value["quote_valid"], true);
    assert_eq!(value["anchored"], true);
    assert!(
        finding_kinds(&value).is_empty(),
        "{:?}",
        finding_kinds(&value)
    );
    let head: Value =
        serde_json::from_str(lines(&dir.path().join(CHAIN_FILE)).last().unwrap()).unwrap();
    assert_eq!(value["quote"]["pcr_value"], head["pcr_value"]);

    let log = std::fs::read_to_string(dir.path().join("sealdesk-quotes.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1);

    let nonce = std::fs::read_to_string(out.path().join("quote.nonce")).unwrap();
    let pcrs = out.path().join("quote.pcrs");
    assert!(
        checkquote(out.path(), &nonce, &pcrs),
        "tpm2_checkquote rejected the exported quote"
    );

    let mut wrong_nonce = nonce.clone().into_bytes();
    wrong_nonce[0] = if wrong_nonce[0] == b'0' { b'1' } else { b'0' };
    assert!(!checkquote(
        out.path(),
        std::str::from_utf8(&wrong_nonce).unwrap(),
        &pcrs
    ));

    let mut bytes = std::fs::read(&pcrs).unwrap();
    bytes[0] ^= 1;
    let modified = out.path().join("modified.pcrs");
    std::fs::write(&modified, bytes).unwrap();
    assert!(!checkquote(out.path(), &nonce, &modified));
}

#[test]
fn software_entries_after_quote_warn() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    seal_tpm(dir.path(), &swtpm, 3);
    let output = sealdesk()
        .arg("seal")
        .arg(dir.path())
        .args([
            "--action",
            "a",
            "--decision",
            "deny",
            "--reason",
            "software",
            "--mode",
            "software",
            // A software entry after a tpm entry is a mode change, sealed only with --force.
            "--force",
        ])
        .env("SEALDESK_HMAC_SECRET", "a test secret")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));

    let mut command = sealdesk();
    command.env("SEALDESK_HMAC_SECRET", "a test secret");
    let output = command
        .arg("quote")
        .arg(dir.path())
        .args(["--tcti", &swtpm.tcti(), "--format", "json"])
        .output()
        .unwrap();
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(value["anchored"], false);
    assert_eq!(
        finding_kinds(&value),
        vec![("anchor_mismatch".to_owned(), "warning".to_owned())]
    );
    let message = value["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("entries after 2 were never extended"),
        "{message}"
    );
}

#[test]
fn unrelated_pcr_is_anchor_mismatch() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    seal_tpm(dir.path(), &swtpm, 2);
    tpm2(
        &swtpm,
        "tpm2_pcrextend",
        &[&format!("23:sha256={}", "ab".repeat(32))],
    );
    let (output, value) = quote(dir.path(), &swtpm, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_eq!(value["quote_valid"], true);
    assert_eq!(
        finding_kinds(&value),
        vec![("anchor_mismatch".to_owned(), "error".to_owned())]
    );

    let (code, report) = verify(dir.path(), &["--anchor", "--tcti", &swtpm.tcti()]);
    assert_eq!(code, 1);
    assert_eq!(errors(&report), vec!["anchor_mismatch@None".to_owned()]);
}

#[test]
fn cut_tail_found_by_anchor() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    seal_tpm(dir.path(), &swtpm, 4);
    let chain = dir.path().join(CHAIN_FILE);
    let all = lines(&chain);
    std::fs::write(&chain, format!("{}\n", all[..3].join("\n"))).unwrap();

    let (code, report) = verify(dir.path(), &[]);
    assert_eq!(
        code,
        0,
        "a cut tail is invisible without the TPM: {:?}",
        kinds(&report)
    );
    let (code, report) = verify(dir.path(), &["--anchor", "--tcti", &swtpm.tcti()]);
    assert_eq!(code, 1);
    assert_eq!(errors(&report), vec!["anchor_mismatch@None".to_owned()]);
}

#[test]
fn replayed_pcr_is_quote_rollback() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    seal_tpm(dir.path(), &swtpm, 3);
    let (output, _) = quote(dir.path(), &swtpm, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // Reset the PCR and replay it up to entry 1, as root could, then quote again.
    replay(&swtpm, &dir.path().join(CHAIN_FILE), 2);
    let (output, value) = quote(dir.path(), &swtpm, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let found = finding_kinds(&value);
    assert!(
        found.contains(&("anchor_mismatch".to_owned(), "error".to_owned())),
        "{found:?}"
    );
    assert!(
        found.contains(&("quote_rollback".to_owned(), "error".to_owned())),
        "{found:?}"
    );

    // A replay back to the head is anchored and not a rollback: the earlier PCR is on the path.
    replay(&swtpm, &dir.path().join(CHAIN_FILE), 3);
    let (output, value) = quote(dir.path(), &swtpm, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        finding_kinds(&value).is_empty(),
        "{:?}",
        finding_kinds(&value)
    );
}

#[test]
fn empty_chain_quote_explained() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CHAIN_FILE), b"").unwrap();

    let (output, value) = quote(dir.path(), &swtpm, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(value["findings"].as_array().unwrap().is_empty(), "{value}");
    let output = sealdesk()
        .arg("quote")
        .arg(dir.path())
        .args(["--tcti", &swtpm.tcti()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("no head"), "{stdout}");
    assert!(
        stdout.contains("consistent with nothing sealed"),
        "{stdout}"
    );

    tpm2(
        &swtpm,
        "tpm2_pcrextend",
        &[&format!("23:sha256={}", "ab".repeat(32))],
    );
    let (output, value) = quote(dir.path(), &swtpm, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let message = value["findings"][0]["message"].as_str().unwrap();
    assert_eq!(value["findings"][0]["kind"], "anchor_mismatch");
    assert!(message.contains("the chain is empty"), "{message}");
    assert!(message.contains("not zero"), "{message}");
    assert!(!message.contains("cut"), "{message}");
}

#[test]
fn software_chain_quote_explained() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..2 {
        let output = seal(
            dir.path(),
            &format!("decision {i}"),
            &["--mode", "software"],
        );
        assert!(output.status.success(), "{}", text(&output));
    }
    for extend in [false, true] {
        if extend {
            tpm2(
                &swtpm,
                "tpm2_pcrextend",
                &[&format!("23:sha256={}", "cd".repeat(32))],
            );
        }
        let (output, value) = quote(dir.path(), &swtpm, &[]);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        assert_eq!(value["findings"][0]["kind"], "anchor_mismatch", "{value}");
        let message = value["findings"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("no entry of this chain was ever extended into this TPM"),
            "{message}"
        );
        assert!(message.contains("software entries"), "{message}");
        assert!(!message.contains("cut"), "{message}");
        assert!(!message.contains("restarted"), "{message}");
    }
}
