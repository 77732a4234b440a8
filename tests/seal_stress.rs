//! Concurrent sealers and sealers killed with SIGKILL at random points, in software and TPM mode.

#![cfg(feature = "tpm")]

mod seal_support;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use seal_support::{errors, has_kind, kinds, lines, sealdesk, text};
use sealdesk::chain::entry::CHAIN_FILE;
use serde_json::Value;
use swtpm::Swtpm;

const SECRET: &str = "stress test secret";

fn seal_command(dir: &Path, reason: &str, mode: &[String]) -> std::process::Command {
    let mut command = sealdesk();
    command
        .env("SEALDESK_HMAC_SECRET", SECRET)
        .arg("seal")
        .arg(dir)
        .args([
            "--action",
            "ingest",
            "--decision",
            "allow",
            "--reason",
            reason,
        ])
        .args(mode);
    command
}

fn verify_json(dir: &Path, extra: &[String]) -> (i32, Value) {
    let output = sealdesk()
        .env("SEALDESK_HMAC_SECRET", SECRET)
        .arg("verify")
        .arg(dir)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("verify printed no JSON ({e}): {}", text(&output)));
    (output.status.code().unwrap_or(-1), report)
}

fn random_below(limit: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % limit
}

fn concurrent(mode: Vec<String>, verify_extra: Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let path = dir.path().to_path_buf();
            let mode = mode.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    let output = seal_command(&path, &format!("worker {worker} seal {i}"), &mode)
                        .output()
                        .unwrap();
                    assert!(output.status.success(), "{}", text(&output));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(lines(&dir.path().join(CHAIN_FILE)).len(), 100);
    let (code, report) = verify_json(dir.path(), &verify_extra);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    assert_eq!(report["entries"], 100);
    assert!(!has_kind(&report, "fork"));
    assert_eq!(report["branches"].as_array().map(Vec::len), Some(0));
    assert!(!has_kind(&report, "pcr_reset"), "{:?}", kinds(&report));
}

#[test]
fn concurrent_software_sealers() {
    concurrent(vec!["--mode".into(), "software".into()], vec![]);
}

#[test]
fn concurrent_tpm_sealers() {
    let swtpm = Swtpm::start();
    concurrent(
        vec!["--tcti".into(), swtpm.tcti()],
        vec!["--anchor".into(), "--tcti".into(), swtpm.tcti()],
    );
}

/// Seals repeatedly, killing each seal with SIGKILL after a random delay of up to 1.25
/// times what one seal takes here, until `target_kills` seals were killed while running.
/// Then checks that every reported seal is in the file and that the chain verifies.
fn killed(mode: Vec<String>, verify_extra: Vec<String>, target_kills: usize) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    for i in 0..3 {
        let output = seal_command(dir.path(), &format!("warm-up {i}"), &mode)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }
    let max_delay_ms = (started.elapsed().as_millis() as u64 * 5 / 12).max(5);
    let max_rounds = target_kills * 4;
    let mut reported = HashSet::new();
    let mut kills = 0;
    let mut completed = 0;
    let mut rounds = 0;
    while kills < target_kills && rounds < max_rounds {
        let round = rounds;
        rounds += 1;
        let mut child = seal_command(dir.path(), &format!("round {round}"), &mode)
            .args(["--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(random_below(max_delay_ms)));
        let output = match child.try_wait().unwrap() {
            // Exited on its own before the kill.
            Some(_) => child.wait_with_output().unwrap(),
            None => {
                child.kill().unwrap();
                kills += 1;
                child.wait_with_output().unwrap()
            }
        };
        if let Ok(value) = serde_json::from_slice::<Value>(&output.stdout) {
            reported.insert(value["hash"].as_str().unwrap().to_owned());
            if String::from_utf8_lossy(&output.stderr).contains("completed the interrupted seal") {
                completed += 1;
            }
        } else if output.status.code().is_some() {
            // Not killed: it exited on its own, so it must have sealed.
            assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        }
    }
    // Seal once more without a kill: sealing resumes with no manual reset.
    let output = seal_command(dir.path(), "after the kills", &mode)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));

    let in_file: HashSet<String> = lines(&dir.path().join(CHAIN_FILE))
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["hash"].as_str().map(str::to_owned))
        .collect();
    for hash in &reported {
        assert!(
            in_file.contains(hash),
            "reported seal {hash} is not in the file"
        );
    }
    let (code, report) = verify_json(dir.path(), &verify_extra);
    assert_eq!(code, 0, "errors: {:?}", errors(&report));
    for (kind, _, severity) in kinds(&report) {
        assert!(
            severity != "error" && severity != "warning"
                || ["torn_tail", "crash_residue"].contains(&kind.as_str()),
            "unexpected {severity} {kind}"
        );
    }
    eprintln!(
        "{rounds} rounds (kill delay up to {max_delay_ms} ms): {kills} killed while running, {} seals reported ({completed} completing an interrupted seal), {} entries in the file",
        reported.len(),
        in_file.len()
    );
    assert!(
        kills >= target_kills,
        "only {kills} of {rounds} seals were killed while running"
    );
}

#[test]
fn killed_software_sealers() {
    killed(vec!["--mode".into(), "software".into()], vec![], 50);
}

#[test]
fn killed_tpm_sealers() {
    let swtpm = Swtpm::start();
    killed(
        vec!["--tcti".into(), swtpm.tcti()],
        vec!["--anchor".into(), "--tcti".into(), swtpm.tcti()],
        12,
    );
}
