//! The view's state and its one entry point for change, [`App::update`].
//! Nothing here draws, reads files or verifies: work is handed out as [`Job`]s.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::chain::finding::{FindingKind, Severity};
use crate::chain::report::Report;

use super::form::SealForm;
use super::keys::{action_for, Action};
use super::query::Query;
use super::rows::{LineText, Row};
use super::tpm_panel::{
    Export, HistoryLine, Probe, QuoteView, SealFailure, SealedInfo, TpmJob, TpmSettings, TpmView,
};
use super::worker::Update;

mod tpm;
mod watch;

pub use watch::{RemovedAlarm, WatchEvent};

/// Rows scrolled per mouse wheel step.
const WHEEL_STEP: usize = 3;

/// A change to the state.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    /// Pasted text. It is only ever inserted as text, so it never submits, moves
    /// between fields or seals.
    Paste(String),
    WheelDown,
    WheelUp,
    Resize {
        width: u16,
        height: u16,
    },
    Worker(Update),
    Rows {
        generation: u64,
        rows: Vec<Row>,
    },
    QueryDone {
        id: u64,
        matches: Vec<u64>,
    },
    LineFound {
        line: u64,
        index: Option<u64>,
    },
    Links {
        generation: u64,
        links: HashMap<u64, Option<u64>>,
    },
    /// The start of lines that hold no entry, by offset.
    LineTexts {
        generation: u64,
        texts: Vec<LineText>,
    },
    Tick,
    /// The TPM, the chain head and the quote log as a probe found them.
    TpmProbed(Box<Probe>),
    SealDone(Result<SealedInfo, SealFailure>),
    QuoteDone(Box<Result<(QuoteView, Vec<HistoryLine>), String>>),
    Exported(Result<Export, String>),
}

/// Work the state requests; the event loop runs it on blocking threads.
#[derive(Debug, Clone)]
pub enum Job {
    Rows {
        generation: u64,
        wanted: Vec<(u64, u64)>,
    },
    Query {
        id: u64,
        query: Query,
        offsets: Arc<Vec<u64>>,
        worst: Arc<HashMap<u64, Severity>>,
    },
    Line {
        line: u64,
        offsets: Arc<Vec<u64>>,
    },
    /// Find the entries that do not link to the entry before them.
    Links {
        generation: u64,
        offsets: Arc<Vec<u64>>,
    },
    /// Read the start of the lines at these offsets, which hold no entry.
    LineTexts {
        generation: u64,
        offsets: Vec<u64>,
    },
}

/// A line that holds no entry but has findings (a malformed line, crash residue),
/// shown as its own row between the entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRow {
    /// 1-based line number.
    pub line: u64,
    pub offset: u64,
    /// Number of entries that start before this line, so the row sits before entry `before`.
    pub before: u64,
    pub worst: Severity,
    pub kind: FindingKind,
}

/// One row of the table: an entry by index, or a line without entry by its place in
/// [`App::line_rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Entry(u64),
    Line(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeMode {
    Written,
    Utc,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Search,
    GoTo,
    Action,
    Operator,
    ExportDir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Findings { selected: usize },
    Pcr,
    Quote,
}

/// A one-off failure that needs reading: what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popup {
    pub title: String,
    pub message: String,
    pub advice: String,
}

/// Verification state as the view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Bytes done of the file size; `again` after the file changed.
    Running {
        done: u64,
        total: u64,
        again: bool,
    },
    Done,
    Failed(String),
}

pub struct App {
    pub path: PathBuf,
    pub color: bool,
    pub width: u16,
    pub height: u16,
    pub generation: u64,
    pub verification: Verification,
    pub offsets: Arc<Vec<u64>>,
    pub report: Option<Arc<Report>>,
    pub seal_modes: String,
    /// Worst severity of each entry's findings.
    pub worst: Arc<HashMap<u64, Severity>>,
    /// Entries whose link to the entry before is broken (drawn after a break row).
    pub breaks: HashSet<u64>,
    /// Entries with findings, sorted.
    pub finding_entries: Vec<u64>,
    /// Lines that hold no entry and have findings, in file order. They come from the
    /// findings, so there are never more of them than findings.
    pub line_rows: Vec<LineRow>,
    /// Start of the lines in `line_rows`, by offset, read when they come on screen.
    pub line_texts: HashMap<u64, LineText>,
    requested_lines: HashSet<u64>,
    pub rows: HashMap<u64, Row>,
    requested: HashSet<u64>,
    /// The last lines of the file, decoded but not verified, shown while the first
    /// verification runs and no entry is known. At most
    /// [`super::worker::PROVISIONAL_LINES`].
    pub provisional: Vec<Row>,
    /// Entries shown when a search or filter is active, in file order.
    pub filtered: Option<Vec<u64>>,
    pub query: Query,
    query_id: u64,
    pub query_running: bool,
    /// Position of the selected entry in the shown list.
    pub selected: usize,
    /// Position of the first shown entry.
    pub top: usize,
    pub follow: bool,
    pub time_mode: TimeMode,
    pub overlay: Overlay,
    pub prompt: Option<(PromptKind, String)>,
    pub last_event: Option<(SystemTime, String)>,
    /// Changes of the file seen while watching, oldest first.
    pub watch_events: Vec<WatchEvent>,
    /// Entries shown earlier and removed since, until acknowledged.
    pub removed: Option<RemovedAlarm>,
    /// The file was deleted and not created again.
    pub file_deleted: bool,
    pending_change: Option<watch::PendingChange>,
    /// Entries whose parent is not the entry before: the parent's index, or
    /// `None` when previous_hash names no entry.
    pub links: HashMap<u64, Option<u64>>,
    /// Entries, breaks and branches when the links were last requested.
    links_signature: Option<(u64, usize, usize)>,
    pub pending_tail: u64,
    pub partial_tail: bool,
    /// A one-off message for the status line, cleared by the next key.
    pub notice: Option<String>,
    pub quit: bool,
    jobs: Vec<Job>,
    /// The TPM, the PCR pane and the quote pane.
    pub tpm: TpmView,
    /// The seal form; it keeps what was typed while closed, until an entry is sealed.
    pub form: SealForm,
    pub form_open: bool,
    pub popup: Option<Popup>,
    /// Frame of the spinner shown while a TPM job runs.
    pub spinner: usize,
    /// A seal changed the key files, so the worker must verify with reloaded keys.
    pub reload_keys: bool,
    /// The keys are being reloaded, so the entry just sealed is selected only after
    /// the worker verified the chain again.
    awaiting_reverify: bool,
    /// The entry just sealed, selected once the follower reports it.
    select_after_seal: Option<u64>,
    tpm_jobs: Vec<TpmJob>,
}

/// Text of the note `sealdesk verify` adds when no anchor was compared.
pub const TAIL_UNANCHORED: &str = "no TPM quote or PCR read was compared with the head: a cut at the end of the file cannot be detected; run with --anchor on the sealing machine, or `sealdesk quote`";

/// Adds the tail_unanchored note to a non-empty chain's report, as `sealdesk
/// verify` does without `--anchor`, so that the view's counts match it.
fn add_tail_unanchored(report: &mut Arc<Report>) {
    let missing = report.entries > 0
        && !report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::TailUnanchored);
    if missing {
        // A finding without an offset sorts last, as in `sealdesk verify`.
        Arc::make_mut(report)
            .findings
            .push(crate::chain::finding::Finding::new(
                FindingKind::TailUnanchored,
                TAIL_UNANCHORED,
            ));
    }
}

/// Collects the lines that hold no entry from the findings with a line and offset but
/// no entry index, one row per line, sorted by offset.
fn line_rows(report: &Report, offsets: &[u64]) -> Vec<LineRow> {
    let mut rows: Vec<LineRow> = Vec::new();
    for f in &report.findings {
        let (None, Some(line), Some(offset)) = (f.index, f.line, f.offset) else {
            continue;
        };
        // Residue before a record on the same line is reported at the record's
        // offset, which the entry's own row already shows.
        if offsets.binary_search(&offset).is_ok() {
            continue;
        }
        if let Some(row) = rows.iter_mut().find(|r| r.offset == offset) {
            if f.severity > row.worst {
                row.worst = f.severity;
                row.kind = f.kind;
            }
            continue;
        }
        rows.push(LineRow {
            line,
            offset,
            before: offsets.partition_point(|&o| o < offset) as u64,
            worst: f.severity,
            kind: f.kind,
        });
    }
    rows.sort_by_key(|r| r.offset);
    rows
}

/// Heights of the entry table (header included) and the detail pane for a terminal height.
pub fn pane_heights(height: u16) -> (u16, u16) {
    let body = height.saturating_sub(2);
    let table = (body * 11 / 20).max(4.min(body));
    (table, body - table)
}

impl App {
    pub fn new(path: PathBuf, color: bool) -> App {
        App {
            path,
            color,
            width: 80,
            height: 24,
            generation: 0,
            verification: Verification::Running {
                done: 0,
                total: 0,
                again: false,
            },
            offsets: Arc::new(Vec::new()),
            report: None,
            seal_modes: String::new(),
            worst: Arc::new(HashMap::new()),
            breaks: HashSet::new(),
            finding_entries: Vec::new(),
            line_rows: Vec::new(),
            line_texts: HashMap::new(),
            requested_lines: HashSet::new(),
            rows: HashMap::new(),
            requested: HashSet::new(),
            provisional: Vec::new(),
            filtered: None,
            query: Query::default(),
            query_id: 0,
            query_running: false,
            selected: 0,
            top: 0,
            follow: true,
            time_mode: TimeMode::Written,
            overlay: Overlay::None,
            prompt: None,
            last_event: None,
            watch_events: Vec::new(),
            removed: None,
            file_deleted: false,
            pending_change: None,
            links: HashMap::new(),
            links_signature: None,
            pending_tail: 0,
            partial_tail: false,
            notice: None,
            quit: false,
            jobs: Vec::new(),
            tpm: TpmView::new(TpmSettings::new(None, &crate::cli::KeyArgs::default())),
            form: SealForm::new(super::form::login_name()),
            form_open: false,
            popup: None,
            spinner: 0,
            reload_keys: false,
            awaiting_reverify: false,
            select_after_seal: None,
            tpm_jobs: Vec::new(),
        }
    }

    /// Entry rows that fit in the table.
    pub fn table_capacity(&self) -> usize {
        usize::from(pane_heights(self.height).0.saturating_sub(1)).max(1)
    }

    /// Number of rows shown (after search and filters). Search and filters show
    /// entries only, so lines without entry are shown only when none is active.
    pub fn shown_len(&self) -> usize {
        match &self.filtered {
            Some(list) => list.len(),
            None => self.offsets.len() + self.line_rows.len(),
        }
    }

    /// The row at a position of the shown list.
    pub fn shown_item(&self, pos: usize) -> Option<Item> {
        if let Some(list) = &self.filtered {
            return list.get(pos).map(|&i| Item::Entry(i));
        }
        // Line row k sits at position `before + k`, which grows with k: find
        // how many sit before `pos` by bisection, as a hostile file can hold
        // a million lines without an entry.
        let (mut lines_before, mut end) = (0, self.line_rows.len());
        while lines_before < end {
            let mid = lines_before + (end - lines_before) / 2;
            if self.line_rows[mid].before as usize + mid < pos {
                lines_before = mid + 1;
            } else {
                end = mid;
            }
        }
        if let Some(row) = self.line_rows.get(lines_before) {
            if row.before as usize + lines_before == pos {
                return Some(Item::Line(lines_before));
            }
        }
        let index = (pos - lines_before) as u64;
        (index < self.offsets.len() as u64).then_some(Item::Entry(index))
    }

    /// Entry index at a position of the shown list; `None` for a line without entry.
    pub fn shown_index(&self, pos: usize) -> Option<u64> {
        match self.shown_item(pos)? {
            Item::Entry(i) => Some(i),
            Item::Line(_) => None,
        }
    }

    fn position_of(&self, index: u64) -> Option<usize> {
        match &self.filtered {
            Some(list) => list.binary_search(&index).ok(),
            None => (index < self.offsets.len() as u64)
                .then(|| index as usize + self.line_rows.partition_point(|r| r.before <= index)),
        }
    }

    /// Position of the line row `k`; `None` while search or filters hide it.
    fn line_position(&self, k: usize) -> Option<usize> {
        if self.filtered.is_some() {
            return None;
        }
        self.line_rows.get(k).map(|r| r.before as usize + k)
    }

    pub fn selected_item(&self) -> Option<Item> {
        self.shown_item(self.selected)
    }

    pub fn selected_index(&self) -> Option<u64> {
        self.shown_index(self.selected)
    }

    /// Selects the line row `k`, clearing search and filters, which hide it.
    fn select_line_row(&mut self, k: usize) {
        if self.filtered.is_some() {
            self.query = Query::default();
            self.filtered = None;
            self.query_id += 1;
            self.query_running = false;
        }
        if let Some(pos) = self.line_position(k) {
            self.selected = pos;
            self.follow = false;
        }
    }

    /// Takes the jobs queued by updates.
    pub fn take_jobs(&mut self) -> Vec<Job> {
        self.request_rows();
        std::mem::take(&mut self.jobs)
    }

    pub fn update(&mut self, msg: Msg) {
        match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Paste(text) => self.on_paste(&text),
            Msg::WheelDown => self.move_by(WHEEL_STEP as isize),
            Msg::WheelUp => self.move_by(-(WHEEL_STEP as isize)),
            Msg::Resize { width, height } => {
                self.width = width;
                self.height = height;
            }
            Msg::Worker(update) => self.on_worker(update),
            Msg::Rows { generation, rows } => {
                if generation == self.generation {
                    for row in rows {
                        self.requested.remove(&row.index);
                        self.rows.insert(row.index, row);
                    }
                }
            }
            Msg::QueryDone { id, matches } => {
                if id == self.query_id {
                    let keep = self.selected_index();
                    self.query_running = false;
                    self.filtered = Some(matches);
                    self.select_index_or_near(keep);
                }
            }
            Msg::LineFound { line, index } => match index {
                Some(i) => self.jump_to(i),
                None => match self.line_rows.iter().position(|r| r.line == line) {
                    Some(k) => self.select_line_row(k),
                    None => {
                        self.notice = Some(format!(
                            "no entry starts on line {line}, and it has no finding"
                        ))
                    }
                },
            },
            Msg::LineTexts { generation, texts } => {
                if generation == self.generation {
                    for text in texts {
                        self.requested_lines.remove(&text.offset);
                        self.line_texts.insert(text.offset, text);
                    }
                }
            }
            Msg::Links { generation, links } => {
                if generation == self.generation {
                    self.breaks.extend(links.keys().copied());
                    self.links = links;
                }
            }
            Msg::Tick => {
                if self.form.sealing || self.tpm.probe_running || self.tpm.quote.running {
                    self.spinner = self.spinner.wrapping_add(1);
                }
            }
            Msg::TpmProbed(probe) => self.on_probe(*probe),
            Msg::SealDone(result) => self.on_sealed(result),
            Msg::QuoteDone(result) => {
                self.tpm.quote.running = false;
                match *result {
                    Ok((view, history)) => {
                        self.tpm.quote.last = Some(view);
                        self.tpm.quote.error = None;
                        self.tpm.quote.export = None;
                        self.tpm.history = history;
                    }
                    Err(e) => self.tpm.quote.error = Some(e),
                }
            }
            Msg::Exported(result) => self.tpm.quote.export = Some(result),
        }
        self.ensure_visible();
    }

    fn on_worker(&mut self, update: Update) {
        match update {
            Update::Reverifying { generation } => {
                self.generation = generation;
                self.awaiting_reverify = false;
                self.verification = Verification::Running {
                    done: 0,
                    total: 0,
                    again: generation > 1,
                };
                self.offsets = Arc::new(Vec::new());
                self.report = None;
                self.worst = Arc::new(HashMap::new());
                self.breaks.clear();
                self.links.clear();
                self.links_signature = None;
                self.finding_entries.clear();
                self.line_rows.clear();
                self.line_texts.clear();
                self.requested_lines.clear();
                self.rows.clear();
                self.requested.clear();
                self.provisional.clear();
                self.pending_tail = 0;
                self.partial_tail = false;
                if self.filtered.is_some() {
                    self.filtered = Some(Vec::new());
                }
            }
            Update::Progress {
                generation,
                done,
                total,
            } => {
                if generation == self.generation {
                    if let Verification::Running { again, .. } = self.verification {
                        self.verification = Verification::Running { done, total, again };
                    }
                }
            }
            Update::Verified {
                generation,
                base,
                offsets,
                report,
                seal_modes,
                partial_tail,
            } => {
                if generation != self.generation {
                    return;
                }
                self.provisional.clear();
                let list = Arc::make_mut(&mut self.offsets);
                if base == 0 {
                    *list = offsets;
                } else if base == list.len() as u64 {
                    list.extend(offsets);
                }
                self.verification = Verification::Done;
                self.seal_modes = seal_modes;
                self.partial_tail = partial_tail;
                self.set_report(report);
                if base == 0 {
                    self.settle_change();
                }
                if !self.query.is_empty() {
                    self.start_query();
                }
                if self.follow {
                    self.selected = self.shown_len().saturating_sub(1);
                }
                self.select_sealed();
                self.request_probe();
            }
            Update::FileEvent { at, text, change } => {
                if let Some(change) = change {
                    self.on_file_change(at, text.clone(), change);
                }
                self.last_event = Some((at, text));
            }
            Update::PendingTail { len } => self.pending_tail = len,
            Update::Provisional {
                generation,
                mut rows,
            } => {
                if generation == self.generation && self.offsets.is_empty() {
                    let keep = rows.len().saturating_sub(super::worker::PROVISIONAL_LINES);
                    rows.drain(..keep);
                    self.provisional = rows;
                }
            }
            Update::Failed { message } => {
                self.provisional.clear();
                self.verification = Verification::Failed(message);
                // The probe reports why the chain cannot be read.
                self.request_probe();
            }
        }
    }

    fn set_report(&mut self, mut report: Arc<Report>) {
        add_tail_unanchored(&mut report);
        let mut worst: HashMap<u64, Severity> = HashMap::new();
        self.breaks.clear();
        self.line_rows = line_rows(&report, &self.offsets);
        for f in &report.findings {
            let Some(i) = f.index else { continue };
            let w = worst.entry(i).or_insert(f.severity);
            *w = (*w).max(f.severity);
            if matches!(f.kind, FindingKind::LinkBroken | FindingKind::Fork)
                || (f.kind == FindingKind::GenesisInvalid && i > 0)
            {
                self.breaks.insert(i);
            }
        }
        // Forks and branches leave entries whose parent is not the row above;
        // which entry each links to needs their hashes, read in a job.
        let forked = !report.branches.is_empty() || !self.breaks.is_empty();
        let signature = (report.entries, self.breaks.len(), report.branches.len());
        if forked && self.links_signature != Some(signature) {
            self.links_signature = Some(signature);
            self.jobs.push(Job::Links {
                generation: self.generation,
                offsets: Arc::clone(&self.offsets),
            });
        }
        if !forked {
            self.links.clear();
            self.links_signature = None;
        }
        self.breaks.extend(self.links.keys().copied());
        let mut entries: Vec<u64> = worst.keys().copied().collect();
        entries.sort_unstable();
        self.finding_entries = entries;
        self.worst = Arc::new(worst);
        self.report = Some(report);
    }

    /// Inserts pasted text into the open prompt or the seal form's current field;
    /// elsewhere a paste is ignored.
    fn on_paste(&mut self, text: &str) {
        if self.popup.is_some() {
            return;
        }
        if let Some((_, prompt)) = self.prompt.as_mut() {
            prompt.push_str(&super::form::clean_paste(text, false));
            return;
        }
        if self.form_open {
            self.form.paste(text);
        }
    }

    fn on_key(&mut self, key: KeyEvent) {
        self.notice = None;
        if self.popup.is_some() {
            if matches!(key.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
                self.popup = None;
            }
            return;
        }
        if let Some((kind, text)) = self.prompt.as_mut() {
            match key.code {
                KeyCode::Esc => self.prompt = None,
                KeyCode::Enter => {
                    let (kind, text) = (*kind, std::mem::take(text));
                    self.prompt = None;
                    self.submit_prompt(kind, text);
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.prompt = None
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return;
        }
        if self.form_open {
            self.on_form_key(key);
            return;
        }
        match self.overlay {
            Overlay::Pcr | Overlay::Quote => {
                self.on_pane_key(key, self.overlay);
                return;
            }
            Overlay::Help => {
                if matches!(
                    key.code,
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Enter
                ) {
                    self.overlay = Overlay::None;
                }
                return;
            }
            Overlay::Findings { selected } => {
                let events = self.watch_events.len();
                let n = events + self.report.as_ref().map_or(0, |r| r.findings.len());
                let selected = match key.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('f') => {
                        self.overlay = Overlay::None;
                        return;
                    }
                    KeyCode::Enter => {
                        self.overlay = Overlay::None;
                        if let Some(event) = self.watch_events.get(selected) {
                            self.notice = Some(format!(
                                "a change of the file while watching: {}",
                                event.summary()
                            ));
                            return;
                        }
                        let finding = self
                            .report
                            .as_ref()
                            .and_then(|r| r.findings.get(selected - events))
                            .map(|f| (f.index, f.offset));
                        let line_row = |offset: Option<u64>| {
                            self.line_rows.iter().position(|r| Some(r.offset) == offset)
                        };
                        match finding {
                            Some((Some(i), _)) => self.jump_to(i),
                            Some((None, offset)) if line_row(offset).is_some() => {
                                if let Some(k) = line_row(offset) {
                                    self.select_line_row(k);
                                }
                            }
                            _ => {
                                self.notice = Some(
                                    "this finding is about the whole chain, not one line"
                                        .to_owned(),
                                )
                            }
                        }
                        return;
                    }
                    KeyCode::Char('j') | KeyCode::Down => (selected + 1).min(n.saturating_sub(1)),
                    KeyCode::Char('k') | KeyCode::Up => selected.saturating_sub(1),
                    KeyCode::PageDown => (selected + 10).min(n.saturating_sub(1)),
                    KeyCode::PageUp => selected.saturating_sub(10),
                    KeyCode::Char('g') | KeyCode::Home => 0,
                    KeyCode::Char('G') | KeyCode::End => n.saturating_sub(1),
                    _ => selected,
                };
                self.overlay = Overlay::Findings { selected };
                return;
            }
            Overlay::None => {}
        }
        let Some(action) = action_for(&key) else {
            return;
        };
        self.on_action(action);
    }

    fn on_action(&mut self, action: Action) {
        let page = self.table_capacity().saturating_sub(1).max(1) as isize;
        match action {
            Action::Quit => self.quit = true,
            Action::Down => self.move_by(1),
            Action::Up => self.move_by(-1),
            Action::PageDown => self.move_by(page),
            Action::PageUp => self.move_by(-page),
            Action::First => {
                self.selected = 0;
                self.follow = false;
            }
            Action::Last | Action::Follow => {
                self.selected = self.shown_len().saturating_sub(1);
                self.follow = true;
            }
            Action::NextFinding => self.next_finding(true),
            Action::PreviousFinding => self.next_finding(false),
            Action::FindingsList => {
                self.overlay = Overlay::Findings {
                    selected: self.findings_position(),
                }
            }
            Action::GoTo => self.prompt = Some((PromptKind::GoTo, String::new())),
            Action::Search => self.prompt = Some((PromptKind::Search, self.query.text.clone())),
            Action::FilterAction => self.prompt = Some((PromptKind::Action, String::new())),
            Action::FilterOperator => self.prompt = Some((PromptKind::Operator, String::new())),
            Action::ClearSearch => {
                let keep = self.selected_index();
                self.query = Query::default();
                self.filtered = None;
                self.query_running = false;
                self.query_id += 1;
                self.select_index_or_near(keep);
            }
            Action::FilterSeverity => {
                self.query.severity = match self.query.severity {
                    None => Some(Severity::Error),
                    Some(Severity::Error) => Some(Severity::Warning),
                    Some(Severity::Warning) => Some(Severity::Info),
                    Some(Severity::Info) => None,
                };
                self.start_query();
            }
            Action::FilterDecision => {
                self.query.decision = match self.query.decision.as_deref() {
                    None => Some("allow".to_owned()),
                    Some("allow") => Some("deny".to_owned()),
                    Some("deny") => Some("escalate".to_owned()),
                    Some(_) => None,
                };
                self.start_query();
            }
            Action::ToggleTime => {
                self.time_mode = match self.time_mode {
                    TimeMode::Written => TimeMode::Utc,
                    TimeMode::Utc => TimeMode::Local,
                    TimeMode::Local => TimeMode::Written,
                };
            }
            Action::Help => self.overlay = Overlay::Help,
            Action::SealForm => {
                self.form_open = true;
                self.form.errors.clear();
                // The TPM may have come up or gone away since the last probe.
                self.request_probe();
            }
            Action::PcrPane => {
                self.overlay = Overlay::Pcr;
                self.request_probe();
            }
            Action::QuotePane => self.overlay = Overlay::Quote,
            Action::Acknowledge => self.acknowledge_removed(),
        }
    }

    fn submit_prompt(&mut self, kind: PromptKind, text: String) {
        let text = text.trim().to_owned();
        let optional = |t: String| (!t.is_empty()).then_some(t);
        match kind {
            PromptKind::Search => {
                self.query.text = text;
                self.start_query();
            }
            PromptKind::Action => {
                self.query.action = optional(text);
                self.start_query();
            }
            PromptKind::Operator => {
                self.query.operator = optional(text);
                self.start_query();
            }
            PromptKind::ExportDir => {
                let files = self.tpm.quote.last.as_ref().map(|q| Arc::clone(&q.files));
                match (text.is_empty(), files) {
                    (false, Some(files)) => self.tpm_jobs.push(TpmJob::Export {
                        dir: PathBuf::from(text),
                        files,
                    }),
                    (true, _) => {
                        self.notice = Some("no directory given; nothing exported".to_owned())
                    }
                    (false, None) => self.notice = Some("take a quote first (t)".to_owned()),
                }
            }
            PromptKind::GoTo => {
                if let Some(line) = text.strip_prefix(['l', 'L']) {
                    match line.trim().parse::<u64>() {
                        Ok(line) if self.line_rows.iter().any(|r| r.line == line) => {
                            if let Some(k) = self.line_rows.iter().position(|r| r.line == line) {
                                self.select_line_row(k);
                            }
                        }
                        Ok(line) if line > 0 => self.jobs.push(Job::Line {
                            line,
                            offsets: Arc::clone(&self.offsets),
                        }),
                        _ => {
                            self.notice = Some(format!(
                                "not a line number: {}",
                                super::sanitize::plain(line)
                            ))
                        }
                    }
                } else {
                    match text.parse::<u64>() {
                        Ok(i) => self.jump_to(i),
                        Err(_) => {
                            self.notice = Some(format!(
                                "not an entry index: {}; type a number, or l and a line number",
                                super::sanitize::plain(&text)
                            ))
                        }
                    }
                }
            }
        }
    }

    fn start_query(&mut self) {
        self.query_id += 1;
        if self.query.is_empty() {
            let keep = self.selected_index();
            self.filtered = None;
            self.query_running = false;
            self.select_index_or_near(keep);
            return;
        }
        self.query_running = true;
        self.jobs.push(Job::Query {
            id: self.query_id,
            query: self.query.clone(),
            offsets: Arc::clone(&self.offsets),
            worst: Arc::clone(&self.worst),
        });
    }

    /// Selects entry `index`, clearing search and filters when they hide it.
    fn jump_to(&mut self, index: u64) {
        if index >= self.offsets.len() as u64 {
            self.notice = Some(format!(
                "no entry {index}; the chain has {} entries",
                self.offsets.len()
            ));
            return;
        }
        if self.position_of(index).is_none() {
            self.query = Query::default();
            self.filtered = None;
            self.query_id += 1;
            self.query_running = false;
        }
        if let Some(pos) = self.position_of(index) {
            self.selected = pos;
            self.follow = false;
        }
    }

    fn select_index_or_near(&mut self, index: Option<u64>) {
        let pos = match (index, &self.filtered) {
            (Some(i), Some(list)) => list.partition_point(|&x| x < i),
            (Some(i), None) => self.position_of(i).unwrap_or(i as usize),
            (None, _) => 0,
        };
        self.selected = pos.min(self.shown_len().saturating_sub(1));
    }

    fn findings_position(&self) -> usize {
        let (Some(report), Some(item)) = (&self.report, self.selected_item()) else {
            return 0;
        };
        let found = match item {
            Item::Entry(index) => report.findings.iter().position(|f| f.index == Some(index)),
            Item::Line(k) => {
                let offset = self.line_rows.get(k).map(|r| r.offset);
                report
                    .findings
                    .iter()
                    .position(|f| f.index.is_none() && f.offset.is_some() && f.offset == offset)
            }
        };
        found.map_or(0, |p| p + self.watch_events.len())
    }

    /// Selects the next (or previous) shown row with a finding: an entry with findings
    /// or a line without entry.
    fn next_finding(&mut self, forward: bool) {
        if self.shown_len() == 0 {
            return;
        }
        let current = self.selected;
        let entries = self
            .finding_entries
            .iter()
            .filter_map(|&i| self.position_of(i));
        let lines = (0..self.line_rows.len()).filter_map(|k| self.line_position(k));
        let candidates = entries.chain(lines);
        let found = if forward {
            candidates.filter(|&p| p > current).min()
        } else {
            candidates.filter(|&p| p < current).max()
        };
        match found {
            Some(pos) => {
                self.selected = pos;
                self.follow = false;
            }
            None => {
                self.notice = Some(
                    if forward {
                        "no finding after this entry"
                    } else {
                        "no finding before this entry"
                    }
                    .to_owned(),
                )
            }
        }
    }

    fn move_by(&mut self, delta: isize) {
        let n = self.shown_len();
        if n == 0 {
            return;
        }
        let target = (self.selected as isize + delta).clamp(0, n as isize - 1) as usize;
        if delta < 0 {
            self.follow = false;
        }
        self.selected = target;
    }

    /// Rows the table needs for the entries at positions `top..=last`.
    fn rows_needed(&self, top: usize, last: usize) -> usize {
        (top..=last)
            .map(|p| match self.shown_index(p) {
                Some(i) if self.breaks.contains(&i) => 2,
                _ => 1,
            })
            .sum()
    }

    fn ensure_visible(&mut self) {
        let n = self.shown_len();
        self.selected = self.selected.min(n.saturating_sub(1));
        let capacity = self.table_capacity();
        self.top = self.top.min(self.selected);
        if self.selected < self.top {
            self.top = self.selected;
        }
        // Every entry takes at least one row, so a top further back than the
        // capacity cannot show the selection. Skipping there keeps the loop
        // below short after a jump of a million entries.
        self.top = self.top.max((self.selected + 1).saturating_sub(capacity));
        while self.top < self.selected && self.rows_needed(self.top, self.selected) > capacity {
            self.top += 1;
        }
        // Fill the table from the bottom when the list ends early.
        while self.top > 0
            && n - (self.top - 1) <= capacity
            && self.rows_needed(self.top - 1, n - 1) <= capacity
        {
            self.top -= 1;
        }
    }

    /// Queues reads of the entries on screen that are not cached yet, and
    /// drops cached rows far from the screen.
    fn request_rows(&mut self) {
        let capacity = self.table_capacity();
        let last = (self.top + capacity).min(self.shown_len());
        let mut wanted = Vec::new();
        let mut wanted_lines = Vec::new();
        for pos in self.top..last {
            let index = match self.shown_item(pos) {
                Some(Item::Entry(index)) => index,
                Some(Item::Line(k)) => {
                    let Some(offset) = self.line_rows.get(k).map(|r| r.offset) else {
                        continue;
                    };
                    if !self.line_texts.contains_key(&offset) && self.requested_lines.insert(offset)
                    {
                        wanted_lines.push(offset);
                    }
                    continue;
                }
                None => continue,
            };
            if self.rows.contains_key(&index) || self.requested.contains(&index) {
                continue;
            }
            if let Some(&offset) = self.offsets.get(index as usize) {
                self.requested.insert(index);
                wanted.push((index, offset));
            }
        }
        if self.rows.len() > capacity * 4 {
            let keep: HashSet<u64> = (self.top.saturating_sub(capacity)..last + capacity)
                .filter_map(|p| self.shown_index(p))
                .collect();
            self.rows.retain(|i, _| keep.contains(i));
        }
        if !wanted.is_empty() {
            self.jobs.push(Job::Rows {
                generation: self.generation,
                wanted,
            });
        }
        if self.line_texts.len() > capacity * 4 {
            let keep: HashSet<u64> = (self.top.saturating_sub(capacity)..last + capacity)
                .filter_map(|p| match self.shown_item(p) {
                    Some(Item::Line(k)) => self.line_rows.get(k).map(|r| r.offset),
                    _ => None,
                })
                .collect();
            self.line_texts.retain(|offset, _| keep.contains(offset));
        }
        if !wanted_lines.is_empty() {
            self.jobs.push(Job::LineTexts {
                generation: self.generation,
                offsets: wanted_lines,
            });
        }
    }
}
