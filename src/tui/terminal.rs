//! Terminal setup and teardown, and the one stream of input and tick events.

use std::io::{self, Stdout};
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, EventStream, KeyEvent, KeyEventKind, MouseEvent,
};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use futures::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Input from the terminal, or a timer tick.
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Text pasted while bracketed paste is on, delivered whole instead of as keys.
    Paste(String),
    Tick,
    /// Reading terminal input failed; the view should quit.
    Error(String),
}

pub type Backend = CrosstermBackend<Stdout>;

/// Puts the terminal back: main screen, cooked mode, cursor shown, mouse and
/// bracketed paste off. The panic hook and `Drop for Tui` both call it.
pub fn restore() -> io::Result<()> {
    let mut result = disable_raw_mode();
    let mut out = io::stdout();
    if let Err(e) = execute!(
        out,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    ) {
        result = Err(e);
    }
    result
}

/// Installs a panic hook that restores the terminal before the previous hook
/// prints the panic, so the message lands on a usable screen.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = restore();
        previous(info);
    }));
}

/// The terminal in raw mode on the alternate screen, and its event stream.
/// Dropping it restores the terminal.
pub struct Tui {
    pub terminal: Terminal<Backend>,
    events: mpsc::UnboundedReceiver<Event>,
    task: JoinHandle<()>,
}

impl Tui {
    /// Enters raw mode and the alternate screen and starts reading input.
    pub fn enter(tick: Duration) -> io::Result<Tui> {
        install_panic_hook();
        enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(
            out,
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        ) {
            let _ = restore();
            return Err(e);
        }
        let terminal = match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(t) => t,
            Err(e) => {
                let _ = restore();
                return Err(e);
            }
        };
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(read_events(tx, tick));
        Ok(Tui {
            terminal,
            events,
            task,
        })
    }

    /// Waits for the next event; `None` once the input task has stopped.
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.task.abort();
        if let Err(e) = restore() {
            tracing::warn!(error = %e, "restoring the terminal failed");
        }
    }
}

/// Merges crossterm's event stream and a tick timer into one channel.
async fn read_events(tx: mpsc::UnboundedSender<Event>, tick: Duration) {
    let mut stream = EventStream::new();
    let mut ticker = tokio::time::interval(tick);
    loop {
        let event = tokio::select! {
            _ = ticker.tick() => Event::Tick,
            next = stream.next() => match next {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => Event::Key(key),
                Some(Ok(TermEvent::Mouse(mouse))) => Event::Mouse(mouse),
                Some(Ok(TermEvent::Resize(w, h))) => Event::Resize(w, h),
                Some(Ok(TermEvent::Paste(text))) => Event::Paste(text),
                Some(Ok(_)) => continue,
                Some(Err(e)) => Event::Error(format!("reading terminal input failed: {e}")),
                None => Event::Error("terminal input closed".to_owned()),
            },
        };
        let stop = matches!(event, Event::Error(_));
        if tx.send(event).is_err() || stop {
            return;
        }
    }
}
