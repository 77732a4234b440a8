//! A TPM that stops answering gives a timeout error, not a hang. In its own
//! test binary because the timeout is set through the process environment.

#![cfg(feature = "tpm")]

#[path = "common/swtpm.rs"]
mod swtpm;

use std::time::{Duration, Instant};

use sealdesk::tpm::{TctiSelection, TpmError, TpmHandle};
use swtpm::Swtpm;

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

#[test]
fn stalled_tpm_times_out() {
    std::env::set_var("SEALDESK_TPM_TIMEOUT", "2");
    let swtpm = Swtpm::start();
    let pid = swtpm.pid().expect("swtpm pid");
    let tpm = TpmHandle::connect(TctiSelection::from_command_line(swtpm.tcti())).expect("connect");
    tpm.sign([7u8; 32]).expect("sign before the stall");

    signal(pid, "-STOP");
    let started = Instant::now();
    let result = tpm.sign([8u8; 32]);
    let waited = started.elapsed();
    signal(pid, "-CONT");

    match result {
        Err(TpmError::TimedOut { seconds, .. }) => assert_eq!(seconds, 2),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        waited >= Duration::from_secs(2),
        "returned after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(20),
        "returned after {waited:?}"
    );
    let message = TpmError::TimedOut {
        tcti: "t".into(),
        seconds: 2,
    }
    .to_string();
    assert!(message.contains("did not answer within 2 s"), "{message}");

    // Dropping the handle of a stalled worker must not block.
    let dropped = Instant::now();
    drop(tpm);
    assert!(dropped.elapsed() < Duration::from_secs(5));
}
