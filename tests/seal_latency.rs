//! Seal latency on swtpm, end to end (process start, lock, verify, TPM calls, fsync).
//!
//! Ignored by default; run with
//! `cargo test --release --test seal_latency -- --ignored --nocapture`.

#![cfg(feature = "tpm")]

mod seal_support;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::time::Instant;

use seal_support::{seal, text};
use swtpm::Swtpm;

const SEALS: usize = 200;

#[test]
#[ignore = "measurement: run in a release build with --ignored --nocapture"]
fn tpm_seal_latency() {
    let swtpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let tcti = swtpm.tcti();
    let mut times = Vec::with_capacity(SEALS);
    for i in 0..SEALS {
        let started = Instant::now();
        let output = seal(dir.path(), &format!("latency {i}"), &["--tcti", &tcti]);
        times.push(started.elapsed());
        assert!(output.status.success(), "{}", text(&output));
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).min(times.len()) - 1];
    eprintln!(
        "{SEALS} TPM seals on swtpm: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}
