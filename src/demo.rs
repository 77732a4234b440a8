//! The demo workspace: a copy of a bundled chain with one broken link and
//! one rewritten line, growing by one sealed software-mode entry every few seconds.
//! When `swtpm` is installed, the demo starts one on a free loopback port pair, so
//! the seal form, the PCR pane and the quote pane work against a real (software) TPM.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
///
/// The entry is written under the chain's lock, so it never lands between the
/// view's seal preview and the seal, nor inside a seal.
pub fn append_entry(path: &Path, n: u64) -> std::io::Result<()> {
    let _lock = crate::seal::ChainLock::acquire(path, Duration::from_secs(5), |_| {})
        .map_err(|e| std::io::Error::other(e.to_string()))?;
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

/// How long swtpm may take to accept connections after it starts.
const SWTPM_START: Duration = Duration::from_secs(10);

/// How long tpm2_shutdown may take before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// An swtpm process the demo started on 127.0.0.1.
struct DemoTpm {
    child: Child,
    port: u16,
}

fn accepts(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok()
}

/// Returns a port P such that P and P + 1 are free on 127.0.0.1 now.
fn free_port_pair() -> Option<u16> {
    for _ in 0..20 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
        let port = listener.local_addr().ok()?.port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return Some(port);
        }
    }
    None
}

/// Returns whether `program` is an executable file in a directory of PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn signal(child: &Child, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) on the pid of a child this process spawned and has not reaped.
    unsafe {
        libc::kill(pid, signal);
    }
}

impl DemoTpm {
    /// Starts swtpm with a fresh state directory under `dir`; the reason when it cannot.
    fn start(dir: &Path) -> Result<DemoTpm, String> {
        if !on_path("swtpm") {
            return Err(
                "swtpm is not installed (Debian: apt-get install swtpm swtpm-tools)".to_owned(),
            );
        }
        let state: PathBuf = dir.join("swtpm-state");
        std::fs::create_dir_all(&state)
            .map_err(|e| format!("cannot create {}: {e}", state.display()))?;
        let mut last_error = String::new();
        // Another process may take the free port between the probe and swtpm's bind.
        for _ in 0..3 {
            let port = free_port_pair().ok_or("no free port pair on 127.0.0.1")?;
            let log_path = state.join("swtpm.log");
            let log = std::fs::File::create(&log_path)
                .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
            let mut child = Command::new("swtpm")
                .args(["socket", "--tpm2", "--tpmstate"])
                .arg(format!("dir={}", state.display()))
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                .args(["--flags", "not-need-init,startup-clear"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .map_err(|e| format!("cannot run swtpm: {e}"))?;
            let deadline = Instant::now() + SWTPM_START;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_error = format!("swtpm exited with {status}: {}", text.trim());
                    break;
                }
                if accepts(port + 1) && accepts(port) {
                    tracing::info!(port, pid = child.id(), "demo swtpm started");
                    return Ok(DemoTpm { child, port });
                }
                if Instant::now() > deadline {
                    signal(&child, libc::SIGKILL);
                    let _ = child.wait();
                    last_error =
                        format!("swtpm did not listen on port {port} within {SWTPM_START:?}");
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(last_error)
    }

    fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Sends TPM2_Shutdown(CLEAR) through tpm2_shutdown when installed, then SIGTERM and waits.
    fn stop(mut self) {
        if on_path("tpm2_shutdown") {
            let spawned = Command::new("tpm2_shutdown")
                .arg("-c")
                .env("TPM2TOOLS_TCTI", self.tcti())
                .env("TSS2_LOG", "all+none")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Ok(mut shutdown) = spawned {
                let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
                loop {
                    match shutdown.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        _ => {
                            tracing::warn!("tpm2_shutdown did not finish; killing it");
                            signal(&shutdown, libc::SIGKILL);
                            let _ = shutdown.wait();
                            break;
                        }
                    }
                }
            }
        } else {
            tracing::warn!("tpm2_shutdown is not installed; stopping swtpm without TPM2_Shutdown");
        }
        signal(&self.child, libc::SIGTERM);
        let _ = self.child.wait();
        tracing::info!(pid = self.child.id(), "demo swtpm stopped");
    }
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
    let mut missing = None;
    let tpm = match DemoTpm::start(dir.path()) {
        Ok(tpm) => Some(tpm),
        Err(reason) => {
            missing = Some(format!("the demo started no swtpm: {reason}"));
            eprintln!(
                "sealdesk demo: no TPM for the demo: {reason}; the PCR and quote panes will say so"
            );
            tracing::warn!(%reason, "the demo runs without swtpm");
            None
        }
    };
    let tcti = tpm.as_ref().map(DemoTpm::tcti);
    let keys = KeyArgs::default();
    let mut settings = crate::tui::tpm_panel::TpmSettings::new(tcti.as_deref(), &keys);
    settings.missing_tpm = missing;
    settings.tcti_set_by = tcti.is_some().then(|| "the demo".to_owned());
    let code = crate::tui::run_with(&path, &keys, settings);
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    if let Some(tpm) = tpm {
        tpm.stop();
    }
    code
}
