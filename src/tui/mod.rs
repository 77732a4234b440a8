//! The interactive terminal view.
//!
//! A background task ([`worker`]) owns the chain file, its follower and the
//! verification engine; the view keeps per-entry offsets only and reads the
//! lines on screen on demand ([`rows`]). State changes go through
//! [`app::App::update`]; drawing ([`view`]) takes `&App` and does no I/O.

pub mod app;
pub mod form;
pub mod keys;
pub mod query;
pub mod rows;
pub mod sanitize;
pub mod terminal;
pub mod tpm_panel;
pub mod view;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossterm::event::MouseEventKind;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::chain::line::printable;
use crate::cli::KeyArgs;
use crate::commands::keys::load_keys;
use crate::verify_file::resolve_chain_path;

use app::{App, Job, Msg};
use terminal::{Event, Tui};

/// Interval of the tick event that redraws the clock and progress.
const TICK: Duration = Duration::from_millis(250);

/// True unless NO_COLOR is set to a non-empty value (no-color.org).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The log file: `$XDG_STATE_HOME/sealdesk/sealdesk.log`, else
/// `~/.local/state/sealdesk/sealdesk.log`, else the temp directory.
fn log_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")));
    match state {
        Some(dir) if std::fs::create_dir_all(dir.join("sealdesk")).is_ok() => dir.join("sealdesk"),
        _ => std::env::temp_dir(),
    }
}

/// Sends logs to a file, never the terminal; the guard flushes on drop.
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let appender = tracing_appender::rolling::never(log_dir(), "sealdesk.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEALDESK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Opens the view on the chain at `path`; returns the exit code. `tcti` is the
/// `--tcti` value, if any.
pub fn run(path: &Path, keys: &KeyArgs, tcti: Option<&str>) -> u8 {
    crate::verify_file::limit_malloc_arenas();
    run_with(path, keys, tpm_panel::TpmSettings::new(tcti, keys))
}

/// Opens the view like [`run`] with TPM settings made by the caller.
pub fn run_with(path: &Path, keys: &KeyArgs, settings: tpm_panel::TpmSettings) -> u8 {
    let path = match resolve_chain_path(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sealdesk: {}", printable(&e.to_string()));
            return 2;
        }
    };
    let verify_keys = match load_keys(keys, &path) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("sealdesk: {}", printable(&e));
            return 2;
        }
    };
    let _log_guard = init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sealdesk: starting the async runtime failed: {e}");
            return 2;
        }
    };
    tracing::info!(path = %path.display(), "opening the view");
    let result = runtime.block_on(event_loop(path, verify_keys, settings));
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sealdesk: {e}");
            2
        }
    }
}

async fn event_loop(
    path: PathBuf,
    keys: crate::chain::verify::VerifyKeys,
    settings: tpm_panel::TpmSettings,
) -> std::io::Result<()> {
    // SIGHUP (the terminal closed) and SIGTERM end the view like q, so the
    // terminal is restored and callers such as the demo clean up.
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut tui = Tui::enter(TICK)?;
    let (update_tx, mut updates) = mpsc::unbounded_channel();
    let mut worker = worker::spawn(path.clone(), keys, update_tx.clone());
    let (msg_tx, mut msgs) = mpsc::unbounded_channel::<Msg>();
    let mut app = App::new(path.clone(), color_enabled()).with_tpm(settings.clone());
    let size = tui.terminal.size()?;
    app.update(Msg::Resize {
        width: size.width,
        height: size.height,
    });

    loop {
        for job in app.take_jobs() {
            run_job(&path, job, msg_tx.clone());
        }
        for job in app.take_tpm_jobs() {
            run_tpm_job(&path, &settings, job, msg_tx.clone());
        }
        if std::mem::take(&mut app.reload_keys) {
            // A seal exported a new TPM public key beside the chain: verify again with it.
            match load_keys(&settings.key_args, &path) {
                Ok(keys) => {
                    worker.abort();
                    worker =
                        worker::spawn_after(path.clone(), keys, update_tx.clone(), app.generation);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reloading the keys after a seal failed");
                    app.keys_reload_failed(&e);
                }
            }
        }
        tui.terminal.draw(|frame| view::render(&app, frame))?;
        if app.quit {
            break;
        }
        let msg = tokio::select! {
            event = tui.next() => match event {
                Some(Event::Key(key)) => Msg::Key(key),
                Some(Event::Mouse(m)) => match m.kind {
                    MouseEventKind::ScrollDown => Msg::WheelDown,
                    MouseEventKind::ScrollUp => Msg::WheelUp,
                    _ => continue,
                },
                Some(Event::Resize(width, height)) => Msg::Resize { width, height },
                Some(Event::Paste(text)) => Msg::Paste(text),
                Some(Event::Tick) => Msg::Tick,
                Some(Event::Error(e)) => {
                    tracing::error!(error = %e, "terminal input failed");
                    break;
                }
                None => break,
            },
            _ = hangup.recv() => {
                tracing::info!("SIGHUP received; closing the view");
                break;
            }
            _ = terminate.recv() => {
                tracing::info!("SIGTERM received; closing the view");
                break;
            }
            Some(update) = updates.recv() => Msg::Worker(update),
            Some(msg) = msgs.recv() => msg,
        };
        app.update(msg);
        // Apply what else is queued before drawing again.
        while let Ok(update) = updates.try_recv() {
            app.update(Msg::Worker(update));
        }
        while let Ok(msg) = msgs.try_recv() {
            app.update(msg);
        }
    }
    worker.abort();
    drop(tui);
    Ok(())
}

/// Runs one TPM job on a blocking thread and sends its result back as a message.
fn run_tpm_job(
    path: &Path,
    settings: &tpm_panel::TpmSettings,
    job: tpm_panel::TpmJob,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let path = path.to_path_buf();
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || {
        let msg = match job {
            tpm_panel::TpmJob::Probe(verified) => {
                Msg::TpmProbed(Box::new(tpm_panel::probe(&path, &settings, verified)))
            }
            tpm_panel::TpmJob::Seal { preview, options } => {
                let result = tpm_panel::seal_entry(&path, &settings, &preview, &options);
                match &result {
                    Ok(info) => {
                        tracing::info!(index = info.index, id = %info.id, "sealed an entry")
                    }
                    Err(f) => tracing::warn!(error = %f.message, "sealing failed"),
                }
                Msg::SealDone(result)
            }
            tpm_panel::TpmJob::Quote => {
                let result = tpm_panel::quote(&path, &settings);
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "quote failed");
                }
                Msg::QuoteDone(Box::new(result))
            }
            tpm_panel::TpmJob::Export { dir, files } => {
                Msg::Exported(tpm_panel::export(&dir, &files, settings.pcr))
            }
        };
        // The view has quit when the channel is closed.
        let _ = tx.send(msg);
    });
}

/// Runs one job on a blocking thread and sends its result back as a message.
fn run_job(path: &Path, job: Job, tx: mpsc::UnboundedSender<Msg>) {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let msg = match job {
            Job::Rows { generation, wanted } => Msg::Rows {
                generation,
                rows: rows::read_rows(&path, &wanted),
            },
            Job::Query {
                id,
                query,
                offsets,
                worst,
            } => Msg::QueryDone {
                id,
                matches: query::run_query(&path, &offsets, &worst, &query),
            },
            Job::Line { line, offsets } => Msg::LineFound {
                line,
                index: query::entry_on_line(&path, &offsets, line),
            },
            Job::Links {
                generation,
                offsets,
            } => Msg::Links {
                generation,
                links: rows::read_links(&path, &offsets),
            },
            Job::LineTexts {
                generation,
                offsets,
            } => Msg::LineTexts {
                generation,
                texts: rows::read_line_texts(&path, &offsets),
            },
        };
        // The view has quit when the channel is closed.
        let _ = tx.send(msg);
    });
}
