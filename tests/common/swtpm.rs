//! A software TPM (swtpm) on a free loopback port pair, started and stopped by a test.
//!
//! Each instance has its own temporary state directory, so tests never share a TPM
//! and dictionary-attack counters of earlier runs never carry over.

#![allow(dead_code)] // Each test binary that includes this helper uses a different subset.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long to wait for swtpm to accept connections after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long tpm2_shutdown may take before it is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// A running (or stopped) swtpm process bound to 127.0.0.1.
pub struct Swtpm {
    state_dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl Swtpm {
    /// Starts swtpm on a free port pair with a fresh state directory.
    ///
    /// Panics when swtpm cannot be started, which fails the calling test.
    pub fn start() -> Swtpm {
        let state_dir = tempfile::Builder::new()
            .prefix("sealdesk-swtpm-")
            .tempdir()
            .expect("create swtpm state directory");

        let mut swtpm = Swtpm {
            state_dir,
            port: 0,
            child: None,
        };

        // Another test may take the same free port between the probe and swtpm's bind,
        // so try a few port pairs.
        let mut last_error = String::new();
        for _ in 0..5 {
            swtpm.port = free_port_pair();
            match swtpm.launch() {
                Ok(()) => return swtpm,
                Err(error) => last_error = error,
            }
        }
        panic!("swtpm did not start: {last_error}");
    }

    /// Returns the TCTI string for this instance, e.g. `swtpm:host=127.0.0.1,port=2321`.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Returns the TPM command port; the control port is the next one.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the state directory that survives [`Swtpm::restart`].
    pub fn state_dir(&self) -> &Path {
        self.state_dir.path()
    }

    /// Returns the process id while swtpm runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops swtpm cleanly: TPM2_Shutdown(CLEAR) through tpm2_shutdown, then SIGTERM and wait.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.shutdown_tpm();
        signal(&child, libc::SIGTERM);
        let _ = child.wait();
    }

    /// Sends TPM2_Shutdown(CLEAR) with tpm2_shutdown, so the TPM saves its state cleanly.
    ///
    /// NOTE: tpm2_shutdown hung once right after a kill and restart, with swtpm waiting on
    /// an idle connection, so it gets a deadline and is killed after it.
    fn shutdown_tpm(&self) {
        let spawned = Command::new("tpm2_shutdown")
            .arg("-c")
            .env("TPM2TOOLS_TCTI", self.tcti())
            .env("TSS2_LOG", "all+none")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut shutdown = match spawned {
            Ok(shutdown) => shutdown,
            Err(error) => {
                eprintln!("cannot run tpm2_shutdown: {error}");
                return;
            }
        };

        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            match shutdown.try_wait() {
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => {
                    eprintln!("tpm2_shutdown -c on {} exited with {status}", self.tcti());
                    return;
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) | Err(_) => {
                    eprintln!(
                        "tpm2_shutdown -c on {} did not finish within {SHUTDOWN_TIMEOUT:?}; killing it",
                        self.tcti()
                    );
                    signal(&shutdown, libc::SIGKILL);
                    let _ = shutdown.wait();
                    return;
                }
            }
        }
    }

    /// Kills swtpm with SIGKILL, as a crash would, without a TPM shutdown.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts swtpm again on the same ports and state directory, stopping it first if it runs.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return,
                // The old sockets may linger briefly after the process exits.
                Err(error) if Instant::now() < deadline => {
                    eprintln!("swtpm restart retry: {error}");
                    thread::sleep(Duration::from_millis(200));
                }
                Err(error) => panic!("swtpm did not restart on port {}: {error}", self.port),
            }
        }
    }

    fn launch(&mut self) -> Result<(), String> {
        let port = self.port;
        // stderr goes to a file, because a pipe nobody reads could fill and block swtpm.
        let log_path = self.state_dir.path().join("swtpm.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
        let mut child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", self.state_dir.path().display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|error| format!("cannot run swtpm: {error}"))?;

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let message = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("swtpm exited with {status}: {}", message.trim()));
            }
            // swtpm is ready once both its control port and its server port accept connections.
            if accepts(port + 1) && accepts(port) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                signal(&child, libc::SIGKILL);
                let _ = child.wait();
                return Err(format!(
                    "swtpm did not listen on port {port} within {START_TIMEOUT:?}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) with the pid of a child this helper spawned and has not reaped yet.
    unsafe {
        libc::kill(pid, signal);
    }
}

fn accepts(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok()
}

/// Returns a port P such that P and P + 1 are free on 127.0.0.1 right now.
fn free_port_pair() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
        let port = listener.local_addr().expect("local address").port();
        if port == u16::MAX {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
}
