//! Cases a fresh user found by hand, kept so they stay fixed.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::chain::{sealdesk, ChainWriter, Fields};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use sealdesk::attest::keys::{fingerprint, to_pem};
use sealdesk::attest::TpmSignature;
use serde_json::Value;

fn key(seed: u8) -> SigningKey {
    let mut bytes = [0u8; 32];
    bytes[31] = seed;
    bytes[0] = 0x11;
    SigningKey::from_bytes(&bytes.into()).expect("valid scalar")
}

/// A chain of `n` tpm-mode entries signed by `signer`.
fn tpm_chain(n: usize, signer: &SigningKey) -> Vec<u8> {
    let mut writer = ChainWriter::sample(0);
    for i in 0..n {
        writer.push(Fields::sample(i));
    }
    for line in &mut writer.lines {
        let hash: [u8; 32] = hex::decode(&line.hash).unwrap().try_into().unwrap();
        let signature: Signature = signer.sign_prehash(&hash).unwrap();
        line.signature = TpmSignature::from_p256(&signature).to_hex();
        line.seal_mode = "tpm".to_owned();
    }
    writer.bytes()
}

fn report(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn kinds(report: &Value) -> Vec<(String, String)> {
    report["findings"]
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

#[test]
fn fingerprint_pin_rejects_forged_key_beside_chain() {
    let real = key(1);
    let forged = key(2);
    let chain_dir = tempfile::tempdir().unwrap();
    let pin_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        chain_dir.path().join("decisions_sealed.jsonl"),
        tpm_chain(4, &forged),
    )
    .unwrap();
    std::fs::write(
        chain_dir.path().join("sealdesk-signing-key.pem"),
        to_pem(forged.verifying_key()).unwrap(),
    )
    .unwrap();
    let pins = pin_dir.path().join("pins");
    std::fs::write(
        &pins,
        format!("# the real key\n{}\n", fingerprint(real.verifying_key())),
    )
    .unwrap();

    let output = sealdesk()
        .args(["verify", "--format", "json", "--trusted-keys"])
        .arg(&pins)
        .arg(chain_dir.path())
        .output()
        .unwrap();
    let report = report(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report["valid"], false);
    let changed = kinds(&report)
        .iter()
        .filter(|(k, s)| k == "key_changed" && s == "error")
        .count();
    assert_eq!(changed, 4, "{report}");
}

#[test]
fn fingerprint_pin_accepts_pinned_key_beside_chain() {
    let real = key(1);
    let chain_dir = tempfile::tempdir().unwrap();
    let pin_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        chain_dir.path().join("decisions_sealed.jsonl"),
        tpm_chain(3, &real),
    )
    .unwrap();
    std::fs::write(
        chain_dir.path().join("sealdesk-signing-key.pem"),
        to_pem(real.verifying_key()).unwrap(),
    )
    .unwrap();
    let pins = pin_dir.path().join("pins");
    std::fs::write(&pins, format!("{}\n", fingerprint(real.verifying_key()))).unwrap();

    let output = sealdesk()
        .args(["verify", "--format", "json", "--trusted-keys"])
        .arg(&pins)
        .arg(chain_dir.path())
        .output()
        .unwrap();
    let report = report(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(
        !kinds(&report)
            .iter()
            .any(|(k, _)| k == "key_unpinned" || k == "key_changed"),
        "{report}"
    );
}

#[test]
fn unpinned_key_beside_chain_is_key_unpinned() {
    let real = key(1);
    let chain_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        chain_dir.path().join("decisions_sealed.jsonl"),
        tpm_chain(3, &real),
    )
    .unwrap();
    std::fs::write(
        chain_dir.path().join("sealdesk-signing-key.pem"),
        to_pem(real.verifying_key()).unwrap(),
    )
    .unwrap();
    let output = sealdesk()
        .args(["verify", "--format", "json"])
        .arg(chain_dir.path())
        .output()
        .unwrap();
    let report = report(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        kinds(&report).contains(&("key_unpinned".to_owned(), "warning".to_owned())),
        "{report}"
    );
}

#[test]
fn closed_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.jsonl");
    // Every entry claims genesis: a long text report.
    let mut bytes = Vec::new();
    for _ in 0..3000 {
        bytes.extend_from_slice(&ChainWriter::sample(1).bytes());
    }
    std::fs::write(&path, bytes).unwrap();
    for format in ["text", "json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sealdesk"))
            .args(["verify", "--format", format])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_ne!(status.code(), Some(101), "panicked: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn json_error_object_when_verify_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let output = sealdesk()
        .args(["verify", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let value = report(&output);
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("decisions_sealed.jsonl"),
        "{value}"
    );
}

#[test]
fn json_output_escapes_bidi_and_c1_in_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil\u{202e}\u{9b}31m.jsonl");
    std::fs::write(&path, ChainWriter::sample(2).bytes()).unwrap();
    let output = sealdesk()
        .args(["verify", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(!text.contains('\u{202e}'), "{text}");
    assert!(!text.contains('\u{9b}'), "{text}");
    assert!(text.contains("\\u202e"), "{text}");
    let value = report(&output);
    assert!(value["file"].as_str().unwrap().contains("evil"));
}

/// Stored hashes are chosen by the file's writer. Twenty thousand
/// entries whose stored hashes share their first 28 bytes once made every
/// look-up re-read all earlier entries (about ten minutes); the names are
/// now hashed with random keys. The limit below only catches that kind of
/// blow-up: the run takes well under a second.
#[test]
fn shared_hash_prefix_stays_linear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions_sealed.jsonl");
    let mut writer = ChainWriter::sample(20_000);
    for (i, line) in writer.lines.iter_mut().enumerate() {
        line.hash = format!("{}{i:08x}", "a".repeat(56));
    }
    std::fs::write(&path, writer.bytes()).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_sealdesk"))
        .args(["verify", "--format", "json"])
        .arg(&path)
        .env_remove("SEALDESK_HMAC_SECRET")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Vec::new();
    let reader = {
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            stdout.read_to_end(&mut out).unwrap();
            out
        })
    };
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("verify still running after 60 s: quadratic look-ups are back");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    let report: Value = serde_json::from_slice(&reader.join().unwrap()).unwrap();
    assert_eq!(report["entries"], 20_000);
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"duplicate_entry"));
    assert!(kinds.contains(&"hash_mismatch"));
}

/// The reference logger signs with an empty HMAC key when it finds a TPM
/// device but cannot sign with it. Such signatures are invalid under any
/// configured secret, and the finding names the key they verify under.
#[test]
fn signature_under_the_empty_key_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions_sealed.jsonl");
    let mut writer = ChainWriter::new("");
    for i in 0..3 {
        writer.push(Fields::sample(i));
    }
    std::fs::write(&path, writer.bytes()).unwrap();
    for secret in [None, Some("a configured secret")] {
        let run = common::chain::run_verify(&path, secret, "json");
        assert_eq!(run.code, 1, "{secret:?}");
        let report = run.report();
        let invalid: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "signature_invalid")
            .collect();
        assert_eq!(invalid.len(), 3, "{secret:?}: {report}");
        for finding in invalid {
            let message = finding["message"].as_str().unwrap();
            assert!(message.contains("empty HMAC key"), "{message}");
        }
    }
}
