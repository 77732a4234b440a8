//! The TPM worker against a real swtpm per test.

#![cfg(feature = "tpm")]

#[path = "common/swtpm.rs"]
mod swtpm;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sealdesk::tpm::{TctiOrigin, TctiSelection, TpmError, TpmHandle};
use sha2::{Digest, Sha256};
use swtpm::Swtpm;

const PCR: u8 = 23;

fn connect(swtpm: &Swtpm) -> TpmHandle {
    TpmHandle::connect(TctiSelection::from_command_line(swtpm.tcti())).expect("connect to swtpm")
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn read_tpm2b(bytes: &[u8]) -> (&[u8], &[u8]) {
    let size = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    (&bytes[2..2 + size], &bytes[2 + size..])
}

fn left_pad(value: &[u8]) -> [u8; 32] {
    let mut padded = [0u8; 32];
    padded[32 - value.len()..].copy_from_slice(value);
    padded
}

/// Parses a marshalled TPMT_SIGNATURE that must be ECDSA with SHA-256.
fn parse_ecdsa_signature(bytes: &[u8]) -> Signature {
    assert_eq!(
        &bytes[0..2],
        &[0x00, 0x18],
        "signature algorithm is not ECDSA"
    );
    assert_eq!(&bytes[2..4], &[0x00, 0x0B], "signature hash is not SHA-256");
    let (r, rest) = read_tpm2b(&bytes[4..]);
    let (s, rest) = read_tpm2b(rest);
    assert!(rest.is_empty(), "trailing bytes after the signature");
    Signature::from_scalars(left_pad(r), left_pad(s)).expect("valid r and s")
}

fn verify(key: &VerifyingKey, digest: &[u8; 32], signature: &[u8]) {
    let signature = parse_ecdsa_signature(signature);
    key.verify_prehash(digest, &signature)
        .expect("TPM signature verifies");
}

#[test]
fn info_names_swtpm() {
    let swtpm = Swtpm::start();
    let tpm = connect(&swtpm);

    let info = tpm.info().expect("info");
    assert_eq!(info.manufacturer, "IBM");
    assert_eq!(info.tcti.tcti, swtpm.tcti());
    assert_eq!(info.tcti.origin, TctiOrigin::CommandLine);
    assert_ne!(info.firmware_version, 0);
    assert_eq!(info.firmware_version_text().split('.').count(), 4);
}

#[test]
fn extend_gives_hash_of_old_and_digest() {
    let swtpm = Swtpm::start();
    let tpm = connect(&swtpm);

    let before = tpm.read_pcr(PCR).expect("read");
    for round in 0u8..5 {
        let old = tpm.read_pcr(PCR).expect("read");
        let digest = sha256(&[&[round]]);
        tpm.extend_pcr(PCR, digest).expect("extend");
        let new = tpm.read_pcr(PCR).expect("read");
        assert_eq!(new, sha256(&[&old, &digest]), "round {round}");
    }
    assert_ne!(tpm.read_pcr(PCR).expect("read"), before);
}

#[test]
fn reset_gives_zeros() {
    let swtpm = Swtpm::start();
    let tpm = connect(&swtpm);

    tpm.extend_pcr(PCR, [7; 32]).expect("extend");
    assert_ne!(tpm.read_pcr(PCR).expect("read"), [0; 32]);
    tpm.reset_pcr(PCR).expect("reset");
    assert_eq!(tpm.read_pcr(PCR).expect("read"), [0; 32]);
}

#[test]
fn reset_pcr0_is_bad_locality() {
    let swtpm = Swtpm::start();
    let tpm = connect(&swtpm);

    let error = tpm.reset_pcr(0).expect_err("PCR 0 is not resettable");
    assert!(matches!(error, TpmError::BadLocality { .. }), "{error:?}");
    assert!(error.to_string().contains("0x907"), "{error}");
}

#[test]
fn pcr_index_out_of_range() {
    let swtpm = Swtpm::start();
    let tpm = connect(&swtpm);

    assert_eq!(
        tpm.read_pcr(24).expect_err("index 24"),
        TpmError::InvalidPcrIndex { index: 24 }
    );
}

#[test]
fn sign_verifies_and_key_survives_restart() {
    let mut swtpm = Swtpm::start();
    let tpm = connect(&swtpm);

    let key = tpm.signing_public().expect("signing key");
    let ak = tpm.ak_public().expect("AK");
    assert_ne!(key, ak, "signing key and AK must differ");

    for round in 0u8..20 {
        let digest = sha256(&[b"entry", &[round]]);
        let signature = tpm.sign(digest).expect("sign");
        verify(&key, &digest, &signature);
    }
    drop(tpm);

    swtpm.restart();
    let tpm = connect(&swtpm);
    assert_eq!(tpm.signing_public().expect("signing key"), key);
    assert_eq!(tpm.ak_public().expect("AK"), ak);
}

#[test]
fn quote_verifies_under_ak() {
    let swtpm = Swtpm::start();
    let tpm = connect(&swtpm);
    tpm.extend_pcr(PCR, [0x5A; 32]).expect("extend");

    let nonce = sha256(&[b"nonce"]);
    let (attest, signature, pcr_values) = tpm.quote(PCR, nonce).expect("quote");
    let ak = tpm.ak_public().expect("AK");

    verify(&ak, &sha256(&[&attest]), &signature);
    assert_eq!(
        &attest[0..4],
        &[0xFF, 0x54, 0x43, 0x47],
        "TPM_GENERATED_VALUE"
    );
    assert_eq!(&attest[4..6], &[0x80, 0x18], "TPM_ST_ATTEST_QUOTE");
    assert!(
        attest.windows(32).any(|window| window == nonce),
        "attest contains the nonce"
    );

    assert_eq!(pcr_values, vec![tpm.read_pcr(PCR).expect("read")]);
    let pcr_digest = sha256(&[&pcr_values[0]]);
    assert_eq!(&attest[attest.len() - 32..], &pcr_digest, "pcrDigest");

    let signing_key = tpm.signing_public().expect("signing key");
    let signature = parse_ecdsa_signature(&signature);
    assert!(signing_key
        .verify_prehash(&sha256(&[&attest]), &signature)
        .is_err());
}

#[test]
fn concurrent_signs_all_succeed() {
    let swtpm = Swtpm::start();
    let tpm = connect(&swtpm);
    let key = tpm.signing_public().expect("signing key");

    let started = Instant::now();
    let threads: Vec<_> = (0u8..10)
        .map(|thread_index| {
            let tpm = tpm.clone();
            thread::spawn(move || {
                (0u8..10)
                    .map(|round| {
                        let digest = sha256(&[&[thread_index, round]]);
                        (digest, tpm.sign(digest))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();

    let mut count = 0;
    for handle in threads {
        for (digest, result) in handle.join().expect("thread") {
            verify(&key, &digest, &result.expect("sign"));
            count += 1;
        }
    }
    assert_eq!(count, 100);
    eprintln!("100 concurrent signs took {:?}", started.elapsed());
}

#[test]
fn killed_swtpm_gives_error_then_reconnects() {
    let mut swtpm = Swtpm::start();
    let tpm = connect(&swtpm);
    let key = tpm.signing_public().expect("signing key");
    tpm.sign([1; 32]).expect("sign before kill");

    swtpm.kill();
    let error = tpm.sign([2; 32]).expect_err("sign with swtpm gone");
    assert!(error.is_connection_failure(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&swtpm.tcti()), "{message}");
    assert!(message.contains("0x"), "{message}");
    assert!(tpm.read_pcr(PCR).is_err(), "read with swtpm gone");

    swtpm.restart();
    let digest = [3; 32];
    let signature = tpm.sign(digest).expect("sign after restart");
    verify(&key, &digest, &signature);
    assert_eq!(tpm.signing_public().expect("signing key"), key);
}

#[test]
fn restart_between_calls_reconnects_transparently() {
    let mut swtpm = Swtpm::start();
    let tpm = connect(&swtpm);
    let key = tpm.signing_public().expect("signing key");
    let ak = tpm.ak_public().expect("AK");

    swtpm.kill();
    swtpm.restart();

    let digest = [4; 32];
    let signature = tpm.sign(digest).expect("sign after restart");
    verify(&key, &digest, &signature);
    let (attest, signature, _) = tpm.quote(PCR, [9; 32]).expect("quote after restart");
    verify(&ak, &sha256(&[&attest]), &signature);
}

#[test]
fn nothing_listening_cannot_connect() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");

    let error = TpmHandle::connect(TctiSelection::from_command_line(&tcti))
        .expect_err("nothing listens there");
    assert!(matches!(error, TpmError::CannotConnect { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&tcti), "{message}");
    assert!(message.contains("is swtpm running"), "{message}");
}

#[test]
fn invalid_tcti_is_reported() {
    let error = TpmHandle::connect(TctiSelection::from_command_line("nosuchmodule:x"))
        .expect_err("no such TCTI module");
    assert!(
        matches!(
            error,
            TpmError::TctiModuleMissing { .. } | TpmError::InvalidTcti { .. }
        ),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_methods_work() {
    let swtpm = Swtpm::start();
    let tpm = connect(&swtpm);

    let key = tpm.signing_public_async().await.expect("signing key");
    let digest = [8; 32];
    let signature = tpm.sign_async(digest).await.expect("sign");
    verify(&key, &digest, &signature);

    tpm.reset_pcr_async(PCR).await.expect("reset");
    tpm.extend_pcr_async(PCR, digest).await.expect("extend");
    let value = tpm.read_pcr_async(PCR).await.expect("read");
    assert_eq!(value, sha256(&[&[0; 32], &digest]));

    let (attest, signature, _) = tpm.quote_async(PCR, [1; 32]).await.expect("quote");
    let ak = tpm.ak_public_async().await.expect("AK");
    verify(&ak, &sha256(&[&attest]), &signature);
    assert_eq!(tpm.info_async().await.expect("info").manufacturer, "IBM");
}

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[index]
}

fn measure(name: &str, calls: usize, mut call: impl FnMut(usize)) {
    let mut samples = Vec::with_capacity(calls);
    for index in 0..calls {
        let started = Instant::now();
        call(index);
        samples.push(started.elapsed());
    }
    let p50 = percentile(&mut samples, 0.50);
    let p99 = percentile(&mut samples, 0.99);
    eprintln!("{name:<8} p50 {p50:>10.3?}  p99 {p99:>10.3?}  ({calls} calls)");
}

/// Prints seal-relevant latencies; run with
/// `cargo test --release --test tpm_worker -- --ignored --nocapture latency`.
#[test]
#[ignore = "measurement, not a check"]
fn latency_report() {
    let swtpm = Swtpm::start();
    let tpm = Arc::new(connect(&swtpm));
    tpm.signing_public().expect("signing key");
    tpm.ak_public().expect("AK");

    measure("sign", 200, |index| {
        tpm.sign(sha256(&[&index.to_be_bytes()])).expect("sign");
    });
    measure("extend", 200, |index| {
        tpm.extend_pcr(PCR, sha256(&[&index.to_be_bytes()]))
            .expect("extend");
    });
    measure("read", 200, |_| {
        tpm.read_pcr(PCR).expect("read");
    });
    measure("quote", 200, |index| {
        tpm.quote(PCR, sha256(&[&index.to_be_bytes()]))
            .expect("quote");
    });
    measure("connect", 20, |_| {
        drop(connect(&swtpm));
    });
}

#[test]
fn dropped_handle_flushes_keys() {
    let swtpm = Swtpm::start();
    let tpm = connect(&swtpm);
    tpm.signing_public().expect("signing key");
    tpm.ak_public().expect("AK");
    let clone = tpm.clone();
    drop(tpm);
    clone.sign([5; 32]).expect("sign through a clone");
    drop(clone);

    let output = std::process::Command::new("tpm2_getcap")
        .arg("handles-transient")
        .env("TPM2TOOLS_TCTI", swtpm.tcti())
        .env("TSS2_LOG", "all+none")
        .output()
        .expect("run tpm2_getcap");
    assert!(output.status.success(), "tpm2_getcap failed: {output:?}");
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        !listing.contains("0x80"),
        "transient objects left loaded: {listing}"
    );
}
