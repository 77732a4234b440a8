//! The demo workspace: a copy of a bundled chain with one broken link and
//! one rewritten line, growing by one sealed software-mode entry every few seconds.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::chain::crypto::{pcr_extend, sha256, HmacKey};
use crate::chain::entry::{
    append_sealed_line, decode_string, fold_member_key, hex32, parse_hex32, DecisionEntry,
    SealMode, CHAIN_FILE, DEV_KEY,
};
use crate::chain::gostr::GoEscapes;
use crate::chain::gotime::GoTime;
use crate::chain::json::{Scan, Scanner, ValueKind};
use crate::cli::{DemoArgs, KeyArgs};

/// 59 entries written by the Go reference logger; line 31 was deleted (a
/// broken link) and line 44 has a space added after a key (a rewrite).
const DEMO_CHAIN: &[u8] = include_bytes!("../assets/demo_chain.jsonl");

const ACTIONS: [(&str, &str, &str); 4] = [
    ("ingest", "allow", "rule R-100 matched below threshold"),
    (
        "respond",
        "escalate",
        "correlated with prior events in the window",
    ),
    ("block", "deny", "known-bad indicator on the blocklist"),
    (
        "isolate",
        "escalate",
        "lateral movement pattern on two hosts",
    ),
];

/// The head's values a new entry links to.
struct Head {
    hash: [u8; 32],
    pcr: [u8; 32],
    chain_idx: i64,
}

/// Reads the last complete line's hash, pcr_value and chain_idx.
fn read_head(bytes: &[u8]) -> Option<Head> {
    let end = bytes.iter().rposition(|&b| b == b'\n')?;
    let start = bytes[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let line = &bytes[start..end];
    let mut scan = Scan::default();
    Scanner::new().scan(line, &mut scan).ok()?;
    let (mut hash, mut pcr, mut idx) = (None, None, None);
    for member in &scan.top {
        let token = &line[member.value.clone()];
        match fold_member_key(line, member).as_str() {
            "hash" if member.kind == ValueKind::String => {
                hash = parse_hex32(&decode_string(token, member.escaped)).map(|h| h.0)
            }
            "pcr_value" if member.kind == ValueKind::String => {
                pcr = parse_hex32(&decode_string(token, member.escaped)).map(|h| h.0)
            }
            "chain_idx" => idx = std::str::from_utf8(token).ok().and_then(|t| t.parse().ok()),
            _ => {}
        }
    }
    Some(Head {
        hash: hash?,
        pcr: pcr?,
        chain_idx: idx?,
    })
}

/// Appends one sealed software-mode entry linked to the file's head.
pub fn append_entry(path: &Path, n: u64) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    let head = read_head(&bytes).ok_or_else(|| {
        std::io::Error::other("the chain's last line has no readable hash, pcr_value and chain_idx")
    })?;
    let now = GoTime::now_local();
    let (action, decision, reason) = ACTIONS[(n % ACTIONS.len() as u64) as usize];
    let entry = DecisionEntry {
        id: format!("DEC-{}", now.unix_nanos()),
        timestamp: now,
        action: action.to_owned(),
        decision: decision.to_owned(),
        reason: reason.to_owned(),
        event_id: format!("EVT-{}", 200_000 + n),
        incident_id: "INC-3000".to_owned(),
        operator: "demo-writer".to_owned(),
        previous_hash: hex32(&head.hash),
    };
    let mut entry_json = Vec::new();
    entry
        .append_go_json(&mut entry_json, GoEscapes::Go122)
        .map_err(|e| std::io::Error::other(format!("encoding the timestamp failed: {e}")))?;
    let hash = sha256(&entry_json);
    let signature = hex32(&HmacKey::new(DEV_KEY.as_bytes()).sign(&hash));
    let pcr = pcr_extend(&head.pcr, &hash);
    let mut line = Vec::new();
    append_sealed_line(
        &mut line,
        &entry_json,
        &hash,
        &signature,
        &pcr,
        SealMode::Software,
        head.chain_idx + 1,
    );
    let mut file = OpenOptions::new().append(true).open(path)?;
    file.write_all(&line)
}

pub fn run(args: &DemoArgs) -> u8 {
    let dir = match tempfile::Builder::new().prefix("sealdesk-demo-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("sealdesk demo: creating a temporary directory failed: {e}");
            return 2;
        }
    };
    let path = dir.path().join(CHAIN_FILE);
    if let Err(e) = std::fs::write(&path, DEMO_CHAIN) {
        eprintln!("sealdesk demo: writing {} failed: {e}", path.display());
        return 2;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let path = path.clone();
        let interval = Duration::from_secs(args.interval.max(1));
        std::thread::spawn(move || {
            let mut n = 0u64;
            let step = Duration::from_millis(100);
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(step);
                waited += step;
                if waited < interval {
                    continue;
                }
                waited = Duration::ZERO;
                if let Err(e) = append_entry(&path, n) {
                    tracing::warn!(error = %e, "the demo writer could not append an entry");
                }
                n += 1;
            }
        })
    };
    let code = crate::tui::run(&path, &KeyArgs::default());
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    code
}
