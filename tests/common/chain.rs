//! Test helpers for `sealdesk verify`: a chain writer that seals entries the
//! way the Go reference does, and a runner that parses the JSON report.

#![allow(dead_code)] // Each test binary that includes this helper uses a different subset.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The reference logger's public development secret.
pub const DEV_KEY: &str = "sentinel-dev-key-not-for-production";

/// The directory that holds the copied reference vectors.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vectors")
}

/// The directory that holds generated hostile chains.
pub fn hostile_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile")
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// HMAC-SHA256 over the 32 raw hash bytes, as the reference signs.
pub fn hmac_hex(secret: &str, hash: &[u8; 32]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(e) => panic!("HMAC key rejected: {e}"),
    };
    mac.update(hash);
    hex::encode(mac.finalize().into_bytes())
}

/// TPM 2.0 PCR_Extend for the SHA-256 bank.
pub fn pcr_extend(old: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(old);
    h.update(digest);
    h.finalize().into()
}

/// Quotes a string as Go's `json.Marshal` does (HTML escaping on, lowercase
/// `\u00XX` for C0 controls, `\u2028`/`\u2029` escaped, Go 1.19 escapes).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The sealed fields of one entry; empty optional fields are omitted when encoded.
#[derive(Debug, Clone)]
pub struct Fields {
    pub id: String,
    pub timestamp: String,
    pub action: String,
    pub decision: String,
    pub reason: String,
    pub event_id: String,
    pub incident_id: String,
    pub operator: String,
    pub previous_hash: String,
}

impl Fields {
    /// A deterministic sample entry; every third one has all optional fields.
    pub fn sample(i: usize) -> Fields {
        let actions = ["ingest", "correlate", "respond", "contain"];
        let decisions = ["allow", "deny", "escalate"];
        let full = i % 3 == 0;
        Fields {
            id: format!("DEC-{:04}", i),
            timestamp: format!("2025-03-14T09:{:02}:{:02}.5Z", (i / 60) % 60, i % 60),
            action: actions[i % actions.len()].to_string(),
            decision: decisions[i % decisions.len()].to_string(),
            reason: format!("rule R-{} matched: score 0.{:02}", 100 + i, i % 100),
            event_id: if full {
                format!("EVT-{i}")
            } else {
                String::new()
            },
            incident_id: if full {
                format!("INC-{i}")
            } else {
                String::new()
            },
            operator: if full {
                "alice".to_string()
            } else {
                String::new()
            },
            previous_hash: String::new(),
        }
    }

    /// The entry's `json.Marshal` bytes; the timestamp is written as given.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        out.push_str(&format!("\"id\":{}", go_quote(&self.id)));
        out.push_str(&format!(",\"timestamp\":\"{}\"", self.timestamp));
        out.push_str(&format!(",\"action\":{}", go_quote(&self.action)));
        out.push_str(&format!(",\"decision\":{}", go_quote(&self.decision)));
        out.push_str(&format!(",\"reason\":{}", go_quote(&self.reason)));
        for (name, value) in [
            ("event_id", &self.event_id),
            ("incident_id", &self.incident_id),
            ("operator", &self.operator),
        ] {
            if !value.is_empty() {
                out.push_str(&format!(",\"{name}\":{}", go_quote(value)));
            }
        }
        out.push_str(&format!(
            ",\"previous_hash\":{}}}",
            go_quote(&self.previous_hash)
        ));
        out
    }
}

/// One sealed line, kept as its parts so tests can alter one of them.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub entry: String,
    pub hash: String,
    pub signature: String,
    pub pcr_value: String,
    pub seal_mode: String,
    pub chain_idx: String,
}

impl Sealed {
    /// The line as the reference writes it, with its `\n`.
    pub fn line(&self) -> String {
        format!("{}\n", self.record())
    }

    /// The line without its `\n`.
    pub fn record(&self) -> String {
        format!(
            "{{\"entry\":{},\"hash\":\"{}\",\"signature\":\"{}\",\"pcr_value\":\"{}\",\"seal_mode\":\"{}\",\"chain_idx\":{}}}",
            self.entry, self.hash, self.signature, self.pcr_value, self.seal_mode, self.chain_idx
        )
    }
}

/// Seals entries as the reference logger does: hash, HMAC, PCR extend, chain_idx.
pub struct ChainWriter {
    pub secret: String,
    pub prev_hash: String,
    pub pcr: [u8; 32],
    pub next_idx: i64,
    pub lines: Vec<Sealed>,
}

impl ChainWriter {
    pub fn new(secret: &str) -> Self {
        ChainWriter {
            secret: secret.to_string(),
            prev_hash: "genesis".to_string(),
            pcr: [0u8; 32],
            next_idx: 0,
            lines: Vec::new(),
        }
    }

    /// A chain of `n` sample entries under the development key.
    pub fn sample(n: usize) -> Self {
        let mut w = ChainWriter::new(DEV_KEY);
        for i in 0..n {
            w.push(Fields::sample(i));
        }
        w
    }

    /// Seals `fields` with `previous_hash` set to the chain's last hash.
    pub fn push(&mut self, mut fields: Fields) -> Sealed {
        fields.previous_hash = self.prev_hash.clone();
        self.push_entry_json(&fields.to_json())
    }

    /// Seals entry bytes exactly as given (their previous_hash is the caller's).
    pub fn push_entry_json(&mut self, entry: &str) -> Sealed {
        let hash = sha256(entry.as_bytes());
        let pcr = pcr_extend(&self.pcr, &hash);
        let sealed = Sealed {
            entry: entry.to_string(),
            hash: hex::encode(hash),
            signature: hmac_hex(&self.secret, &hash),
            pcr_value: hex::encode(pcr),
            seal_mode: "software".to_string(),
            chain_idx: self.next_idx.to_string(),
        };
        self.prev_hash = sealed.hash.clone();
        self.pcr = pcr;
        self.next_idx += 1;
        self.lines.push(sealed.clone());
        sealed
    }

    /// Restarts the simulated PCR at zero, as a reopened reference logger does.
    pub fn restart_pcr(&mut self) {
        self.pcr = [0u8; 32];
    }

    /// The whole file: every line with its `\n`.
    pub fn bytes(&self) -> Vec<u8> {
        self.lines
            .iter()
            .flat_map(|l| l.line().into_bytes())
            .collect()
    }
}

/// Joins records into a file, each followed by `\n`.
pub fn join_lines(records: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(r.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The outcome of one `sealdesk verify` run.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Run {
    /// Parses stdout as the JSON report.
    pub fn report(&self) -> Value {
        match serde_json::from_slice(&self.stdout) {
            Ok(v) => v,
            Err(e) => panic!(
                "stdout is not a JSON report ({e}); exit {}; stderr: {}",
                self.code,
                String::from_utf8_lossy(&self.stderr)
            ),
        }
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A `sealdesk` command with no secret in its environment.
pub fn sealdesk() -> Command {
    let mut cmd = match Command::cargo_bin("sealdesk") {
        Ok(c) => c,
        Err(e) => panic!("sealdesk binary not built: {e}"),
    };
    cmd.env_remove("SEALDESK_HMAC_SECRET");
    cmd
}

/// Runs `sealdesk verify PATH --format FORMAT`, with the secret in the environment when given.
pub fn run_verify(path: &Path, secret: Option<&str>, format: &str) -> Run {
    let mut cmd = sealdesk();
    cmd.arg("verify").arg(path).arg("--format").arg(format);
    if let Some(s) = secret {
        cmd.env("SEALDESK_HMAC_SECRET", s);
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run sealdesk: {e}"),
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// Writes `bytes` to a fresh chain file and verifies it in JSON form.
pub fn verify_bytes(bytes: &[u8], secret: Option<&str>) -> (Value, i32) {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    let path = dir.path().join("decisions_sealed.jsonl");
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("cannot write {}: {e}", path.display());
    }
    let run = run_verify(&path, secret, "json");
    (run.report(), run.code)
}

/// Writes a hostile chain under tests/fixtures/hostile so a failing case can be replayed by hand.
pub fn save_hostile(name: &str, bytes: &[u8]) {
    let path = hostile_dir().join(format!("{name}.jsonl"));
    // A fixture that cannot be saved only loses the replay copy, not the test.
    let _ = std::fs::create_dir_all(hostile_dir());
    let _ = std::fs::write(path, bytes);
}

/// One finding as the tests compare it: kind, severity, index, line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fx {
    pub kind: String,
    pub severity: String,
    pub index: Option<u64>,
    pub line: Option<u64>,
}

/// The severity the finding table gives a kind (`seal_mode_changed` and
/// `anchor_mismatch` may also be errors; tests state those explicitly).
pub fn default_severity(kind: &str) -> &'static str {
    match kind {
        "crash_residue" | "torn_tail" | "empty_chain" | "key_unpinned" | "pcr_reset"
        | "chain_idx_mismatch" | "seal_mode_changed" | "rewritten" | "default_dev_key" => "warning",
        "unknown_field" | "tail_unanchored" => "info",
        _ => "error",
    }
}

/// An expected finding with the table's severity.
pub fn fx(kind: &str, index: Option<u64>, line: Option<u64>) -> Fx {
    Fx {
        kind: kind.to_string(),
        severity: default_severity(kind).to_string(),
        index,
        line,
    }
}

/// An expected finding with an explicit severity.
pub fn fxs(kind: &str, severity: &str, index: Option<u64>, line: Option<u64>) -> Fx {
    Fx {
        kind: kind.to_string(),
        severity: severity.to_string(),
        index,
        line,
    }
}

/// An expected finding on entry `index` at 1-based `line`.
pub fn at(kind: &str, index: u64, line: u64) -> Fx {
    fx(kind, Some(index), Some(line))
}

/// An expected finding on a line that holds no entry.
pub fn on_line(kind: &str, line: u64) -> Fx {
    fx(kind, None, Some(line))
}

/// An expected chain-level finding.
pub fn chain_level(kind: &str) -> Fx {
    fx(kind, None, None)
}

/// The report's findings, sorted, leaving out `tail_unanchored`: SPEC.md does
/// not say whether a plain verify without an anchor must emit it.
pub fn findings(report: &Value) -> Vec<Fx> {
    let mut out: Vec<Fx> = report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("report has no findings array: {report}"))
        .iter()
        .map(|f| Fx {
            kind: f["kind"].as_str().unwrap_or("").to_string(),
            severity: f["severity"].as_str().unwrap_or("").to_string(),
            index: f.get("index").and_then(Value::as_u64),
            line: f.get("line").and_then(Value::as_u64),
        })
        .filter(|f| f.kind != "tail_unanchored")
        .collect();
    out.sort();
    out
}

/// Asserts that the findings are exactly `expected` (in any order) and that
/// the report is consistent: `valid`, exit code, offsets sorted, indexes in range.
pub fn assert_findings(label: &str, report: &Value, code: i32, expected: &[Fx]) {
    let mut want = expected.to_vec();
    want.sort();
    let got = findings(report);
    assert_eq!(
        got,
        want,
        "{label}: findings differ\nreport: {}",
        serde_json::to_string_pretty(&report["findings"]).unwrap_or_default()
    );
    let has_error = want.iter().any(|f| f.severity == "error");
    assert_eq!(
        report["valid"].as_bool(),
        Some(!has_error),
        "{label}: valid"
    );
    assert_eq!(code, if has_error { 1 } else { 0 }, "{label}: exit code");
    assert_report_consistent(label, report);
}

/// Checks what holds for every report: offsets sorted, no index beyond the
/// entries, every finding with a message.
pub fn assert_report_consistent(label: &str, report: &Value) {
    let entries = report["entries"].as_u64().unwrap_or(0);
    let list = report["findings"].as_array().cloned().unwrap_or_default();
    let mut last_offset = 0u64;
    for f in &list {
        if let Some(i) = f.get("index").and_then(Value::as_u64) {
            assert!(i < entries, "{label}: index {i} >= entries {entries}: {f}");
        }
        if let Some(o) = f.get("offset").and_then(Value::as_u64) {
            assert!(
                o >= last_offset,
                "{label}: findings not sorted by offset at {f}"
            );
            last_offset = o;
        }
        assert!(
            f["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{label}: finding without a message: {f}"
        );
    }
}

/// The findings of one kind, in report order.
pub fn of_kind<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["kind"] == kind).collect())
        .unwrap_or_default()
}
