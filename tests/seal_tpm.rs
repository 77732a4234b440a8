//! `sealdesk seal` in TPM mode against a real swtpm per test.

#![cfg(feature = "tpm")]

mod seal_support;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::path::Path;
use std::process::Command;

use seal_support::{errors, has_kind, kinds, lines, seal, text, verify};
use sealdesk::attest::keys::{fingerprint, load_keys_pem};
use sealdesk::chain::entry::CHAIN_FILE;
use serde_json::Value;
use swtpm::Swtpm;

fn seal_tpm(dir: &Path, swtpm: &Swtpm, reason: &str, extra: &[&str]) -> std::process::Output {
    let tcti = swtpm.tcti();
    let mut args = vec!["--tcti", tcti.as_str()];
    args.extend_from_slice(extra);
    seal(dir, reason, &args)
}

fn seal_ok(dir: &Path, swtpm: &Swtpm, reason: &str) {
    let output = seal_tpm(dir, swtpm, reason, &[]);
    assert!(output.status.success(), "seal failed: {}", text(&output));
}

/// Runs a tpm2-tools command against the swtpm instance.
fn tpm2(swtpm: &Swtpm, tool: &str, args: &[&str]) {
    let status = Command::new(tool)
        .args(args)
        .env("TPM2TOOLS_TCTI", swtpm.tcti())
        .env("TSS2_LOG", "all+none")
        .status()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(status.success(), "{tool} {args:?} failed: {status}");
}

fn pubkey_args(dir: &Path) -> Vec<String> {
    vec![
        "--tpm-pubkey".to_owned(),
        dir.join("sealdesk-signing-key.pem").display().to_string(),
    ]
}

fn verify_pub(dir: &Path) -> (i32, Value) {
    let args = pubkey_args(dir);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    verify(dir, &refs)
}

/// Replaces the value of `field` in line `index` of the chain (a JSON string field of the
/// line or of its entry) with `value`, writing the result to a copy in `out`.
fn tamper(dir: &Path, out: &Path, index: usize, field: &str, value: &str) {
    std::fs::create_dir_all(out).unwrap();
    for name in ["sealdesk-signing-key.pem", "sealdesk-ak.pem"] {
        std::fs::copy(dir.join(name), out.join(name)).unwrap();
    }
    let mut all = lines(&dir.join(CHAIN_FILE));
    let mut line: Value = serde_json::from_str(&all[index]).unwrap();
    // Rewrite only the one value in the original text, so the rest keeps Go's bytes.
    let old = if line.get(field).is_some() {
        line[field].as_str().unwrap().to_owned()
    } else {
        line["entry"][field].as_str().unwrap().to_owned()
    };
    let needle = format!("\"{field}\":\"{old}\"");
    assert!(all[index].contains(&needle), "{needle} not in line {index}");
    all[index] = all[index].replacen(&needle, &format!("\"{field}\":\"{value}\""), 1);
    line = serde_json::from_str(&all[index]).unwrap();
    assert!(line.is_object());
    let mut bytes = all.join("\n");
    bytes.push('\n');
    std::fs::write(out.join(CHAIN_FILE), bytes).unwrap();
}

fn flip_hex(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

#[test]
fn twenty_seals_verify_and_tampering_found() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        seal_ok(dir.path(), &swtpm, &format!("decision {i}"));
    }
    assert_eq!(lines(&dir.path().join(CHAIN_FILE)).len(), 20);

    let (code, report) = verify_pub(dir.path());
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert_eq!(report["entries"], 20);
    assert!(has_kind(&report, "key_unpinned"));
    assert!(has_kind(&report, "tail_unanchored"));

    let pins = tempfile::tempdir().unwrap();
    let keys = load_keys_pem(&dir.path().join("sealdesk-signing-key.pem")).unwrap();
    let pin_file = pins.path().join("trusted.txt");
    std::fs::write(&pin_file, format!("{}\n", fingerprint(&keys[0]))).unwrap();
    let (code, report) = verify(dir.path(), &["--trusted-keys", pin_file.to_str().unwrap()]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert!(!has_kind(&report, "key_unpinned"), "{:?}", kinds(&report));

    let (code, report) = verify(dir.path(), &["--anchor", "--tcti", &swtpm.tcti()]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert!(!has_kind(&report, "key_unpinned"), "{:?}", kinds(&report));
    assert!(!has_kind(&report, "tail_unanchored"));
    assert!(!has_kind(&report, "anchor_mismatch"));

    let line: Value = serde_json::from_str(&lines(&dir.path().join(CHAIN_FILE))[10]).unwrap();
    let cases = [
        ("reason", "changed reason".to_owned(), "hash_mismatch"),
        (
            "hash",
            flip_hex(line["hash"].as_str().unwrap()),
            "hash_mismatch",
        ),
        (
            "signature",
            flip_hex(line["signature"].as_str().unwrap()),
            "signature_invalid",
        ),
        (
            "pcr_value",
            flip_hex(line["pcr_value"].as_str().unwrap()),
            "pcr_mismatch",
        ),
        (
            "previous_hash",
            flip_hex(line["entry"]["previous_hash"].as_str().unwrap()),
            "hash_mismatch",
        ),
    ];
    let copies = tempfile::tempdir().unwrap();
    for (field, value, kind) in cases {
        let out = copies.path().join(field);
        tamper(dir.path(), &out, 10, field, &value);
        let (code, report) = verify_pub(&out);
        assert_eq!(code, 1, "tampered {field}: {:?}", kinds(&report));
        assert!(
            kinds(&report)
                .iter()
                .any(|(k, index, _)| k == kind && *index == Some(10)),
            "tampered {field}: expected {kind} at entry 10, got {:?}",
            kinds(&report)
        );
    }
}

#[test]
fn interrupted_seal_is_completed() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        seal_ok(dir.path(), &swtpm, &format!("decision {i}"));
    }
    // Put the PCR one step behind the head, as a crash between append and extend leaves it.
    let chain = dir.path().join(CHAIN_FILE);
    tpm2(&swtpm, "tpm2_pcrreset", &["23"]);
    for line in &lines(&chain)[..2] {
        let value: Value = serde_json::from_str(line).unwrap();
        let digest = format!("23:sha256={}", value["hash"].as_str().unwrap());
        tpm2(&swtpm, "tpm2_pcrextend", &[&digest]);
    }

    let output = seal_tpm(dir.path(), &swtpm, "after the crash", &[]);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("completed the interrupted seal of entry 2"),
        "{stderr}"
    );

    let (code, report) = verify(dir.path(), &["--anchor", "--tcti", &swtpm.tcti()]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert_eq!(report["entries"], 4);
    assert!(!has_kind(&report, "pcr_reset"), "{:?}", kinds(&report));
    assert!(!has_kind(&report, "anchor_mismatch"));
}

#[test]
fn divergence_rejected_then_new_segment() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        seal_ok(dir.path(), &swtpm, &format!("decision {i}"));
    }
    let random = format!("23:sha256={}", hex::encode(rand_bytes()));
    tpm2(&swtpm, "tpm2_pcrextend", &[&random]);

    let output = seal_tpm(dir.path(), &swtpm, "diverged", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PCR 23 is"), "{stderr}");
    assert!(stderr.contains("head (entry 2)"), "{stderr}");
    assert!(stderr.contains("--new-segment"), "{stderr}");
    assert_eq!(lines(&dir.path().join(CHAIN_FILE)).len(), 3);

    let output = seal_tpm(dir.path(), &swtpm, "new segment", &["--new-segment"]);
    assert!(output.status.success(), "{}", text(&output));
    let (code, report) = verify(dir.path(), &["--anchor", "--tcti", &swtpm.tcti()]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert!(
        kinds(&report)
            .iter()
            .any(|(k, index, _)| k == "pcr_reset" && *index == Some(3)),
        "{:?}",
        kinds(&report)
    );
    assert_eq!(report["segments"].as_array().map(Vec::len), Some(2));
}

#[test]
fn empty_chain_with_nonzero_pcr_is_divergence() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let random = format!("23:sha256={}", hex::encode(rand_bytes()));
    tpm2(&swtpm, "tpm2_pcrextend", &[&random]);
    let output = seal_tpm(dir.path(), &swtpm, "first", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("the chain is empty"));
    let output = seal_tpm(dir.path(), &swtpm, "first", &["--new-segment"]);
    assert!(output.status.success(), "{}", text(&output));
    let (code, report) = verify(dir.path(), &["--anchor", "--tcti", &swtpm.tcti()]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
}

#[test]
fn torn_tail_gets_new_line() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        seal_ok(dir.path(), &swtpm, &format!("decision {i}"));
    }
    let chain = dir.path().join(CHAIN_FILE);
    let mut bytes = std::fs::read(&chain).unwrap();
    bytes.extend_from_slice(b"{\"entry\":{\"id\":\"DEC-17");
    std::fs::write(&chain, &bytes).unwrap();

    let output = seal_tpm(dir.path(), &swtpm, "after the fragment", &[]);
    assert!(output.status.success(), "{}", text(&output));
    let all = lines(&chain);
    assert_eq!(all.len(), 5);
    assert_eq!(all[3], "{\"entry\":{\"id\":\"DEC-17");

    let (code, report) = verify(dir.path(), &["--anchor", "--tcti", &swtpm.tcti()]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert!(
        kinds(&report)
            .iter()
            .any(|(k, _, severity)| k == "crash_residue" && severity == "warning"),
        "{:?}",
        kinds(&report)
    );
    assert_eq!(report["entries"], 4);
}

#[test]
fn key_file_mismatch_rejected() {
    let swtpm = Swtpm::start();
    let other = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    seal_ok(dir.path(), &swtpm, "first");
    // Another TPM has another signing key: the exported key no longer matches.
    let output = seal_tpm(dir.path(), &other, "second", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("key_changed"));
    assert_eq!(lines(&dir.path().join(CHAIN_FILE)).len(), 1);
}

#[test]
fn swtpm_stopped_then_restarted() {
    let mut swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    seal_ok(dir.path(), &swtpm, "before the stop");
    swtpm.stop();

    let output = seal_tpm(dir.path(), &swtpm, "while stopped", &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&swtpm.tcti()), "{stderr}");
    assert!(stderr.contains("response code"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(lines(&dir.path().join(CHAIN_FILE)).len(), 1);

    swtpm.restart();
    // The restart cleared PCR 23, so the head is no longer in the TPM.
    let output = seal_tpm(dir.path(), &swtpm, "after the restart", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("it is zero"));
    let output = seal_tpm(dir.path(), &swtpm, "after the restart", &["--new-segment"]);
    assert!(output.status.success(), "{}", text(&output));
    seal_ok(dir.path(), &swtpm, "and on");
    let (code, report) = verify(dir.path(), &["--anchor", "--tcti", &swtpm.tcti()]);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
}

#[test]
fn broken_head_needs_force() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..2 {
        seal_ok(dir.path(), &swtpm, &format!("decision {i}"));
    }
    let chain = dir.path().join(CHAIN_FILE);
    let text_before = std::fs::read_to_string(&chain).unwrap();
    std::fs::write(&chain, text_before.replacen("decision 1", "decision X", 1)).unwrap();
    let output = seal_tpm(dir.path(), &swtpm, "onto a broken head", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("hash_mismatch"));
    let output = seal_tpm(dir.path(), &swtpm, "onto a broken head", &["--force"]);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn tpm_unreachable_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let output = seal(
        dir.path(),
        "no tpm",
        &["--tcti", "swtpm:host=127.0.0.1,port=1"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("swtpm:host=127.0.0.1,port=1"), "{stderr}");
    assert!(!dir.path().join("sealdesk-signing-key.pem").exists());
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).unwrap();
    bytes
}

#[test]
fn software_after_tpm_needs_force() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    seal_ok(dir.path(), &swtpm, "tpm entry");
    let chain = dir.path().join(CHAIN_FILE);

    let output = seal(dir.path(), "software entry", &["--mode", "software"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is a tpm entry"), "{stderr}");
    assert!(stderr.contains("seal_mode_changed"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(lines(&chain).len(), 1);

    let output = seal(
        dir.path(),
        "forced software entry",
        &["--mode", "software", "--force"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WARNING"), "{stderr}");
    assert!(
        stderr.contains("will report seal_mode_changed as an error"),
        "{stderr}"
    );
    assert_eq!(lines(&chain).len(), 2);
    let (code, report) = verify_pub(dir.path());
    assert_eq!(code, 1);
    assert!(
        kinds(&report)
            .iter()
            .any(|(k, i, s)| k == "seal_mode_changed" && *i == Some(1) && s == "error"),
        "{:?}",
        kinds(&report)
    );
}

#[test]
fn held_pcr_lock_times_out() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let lock_dir = runtime.path().join("sealdesk");
    std::fs::create_dir(&lock_dir).unwrap();
    std::fs::set_permissions(
        &lock_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let tcti = swtpm.tcti();
    let seal_with_runtime = |reason: &str| {
        seal_support::sealdesk()
            .env("XDG_RUNTIME_DIR", runtime.path())
            .arg("seal")
            .arg(dir.path())
            .args(["--action", "ingest", "--decision", "allow"])
            .args(["--reason", reason, "--tcti", &tcti, "--lock-timeout", "1"])
            .output()
            .unwrap()
    };
    let output = seal_with_runtime("first");
    assert!(output.status.success(), "{}", text(&output));
    let held = sealdesk::seal::PcrLock::acquire_in(
        &lock_dir,
        &tcti,
        23,
        std::time::Duration::from_secs(1),
        |_| {},
    )
    .unwrap();

    // The test holds the PCR lock as a sealer of another chain through this TPM would.
    let output = seal_with_runtime("blocked");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(stderr.contains("PCR lock"), "{stderr}");
    let name = held
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(stderr.contains(&name), "{name} not in {stderr}");
    assert_eq!(lines(&dir.path().join(CHAIN_FILE)).len(), 1);

    drop(held);
    let output = seal_with_runtime("after release");
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(lines(&dir.path().join(CHAIN_FILE)).len(), 2);
}
