//! Helpers shared by the seal and quote tests: running the binary and reading reports.

#![allow(dead_code)] // Each test binary that includes this helper uses a different subset.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The environment variables that choose a TCTI or a secret, removed so tests see only their own.
const CLEARED_ENV: [&str; 5] = [
    "SEALDESK_TCTI",
    "TPM2TOOLS_TCTI",
    "TCTI",
    "SEALDESK_HMAC_SECRET",
    "TSS2_LOG",
];

/// Returns a command for the sealdesk binary with a clean environment.
pub fn sealdesk() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sealdesk"));
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command.env("TSS2_LOG", "all+none");
    command
}

/// Seals one entry; `extra` adds options such as `--tcti T` or `--mode software`.
pub fn seal(dir: &Path, reason: &str, extra: &[&str]) -> Output {
    sealdesk()
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
        .args(extra)
        .output()
        .expect("run sealdesk seal")
}

/// Runs `sealdesk verify PATH --format json ARGS` and returns the exit code and the report.
pub fn verify(path: &Path, extra: &[&str]) -> (i32, Value) {
    let output = sealdesk()
        .arg("verify")
        .arg(path)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .expect("run sealdesk verify");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}); stdout {} stderr {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

/// Returns the kinds of the report's findings, with the index when there is one.
pub fn kinds(report: &Value) -> Vec<(String, Option<u64>, String)> {
    report["findings"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|f| {
                    (
                        f["kind"].as_str().unwrap_or_default().to_owned(),
                        f["index"].as_u64(),
                        f["severity"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Returns true when the report has a finding of `kind`.
pub fn has_kind(report: &Value, kind: &str) -> bool {
    kinds(report).iter().any(|(k, _, _)| k == kind)
}

/// Returns the error findings of a report as text, for assertion messages.
pub fn errors(report: &Value) -> Vec<String> {
    kinds(report)
        .into_iter()
        .filter(|(_, _, severity)| severity == "error")
        .map(|(kind, index, _)| format!("{kind}@{index:?}"))
        .collect()
}

/// Returns stdout and stderr of an output as one text, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Returns the chain's lines.
pub fn lines(chain: &Path) -> Vec<String> {
    std::fs::read_to_string(chain)
        .expect("read chain")
        .lines()
        .map(str::to_owned)
        .collect()
}
