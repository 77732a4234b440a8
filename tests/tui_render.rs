//! Render tests of the interactive view on ratatui's TestBackend, with insta snapshots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use sealdesk::chain::crypto::{pcr_extend, sha256, HmacKey, ZERO32};
use sealdesk::chain::entry::{append_sealed_line, hex32, DecisionEntry, SealMode, DEV_KEY};
use sealdesk::chain::gostr::GoEscapes;
use sealdesk::chain::gotime::GoTime;
use sealdesk::chain::line::is_invisible;
use sealdesk::chain::verify::VerifyKeys;
use sealdesk::tui::app::{App, Item, Job, Msg};
use sealdesk::tui::worker::{FileChange, Update};
use sealdesk::tui::{query, rows, view, worker};
use sealdesk::verify_file::verify_file;

fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vectors")
        .join(name)
        .join("decisions_sealed.jsonl")
}

/// Runs the jobs the state asks for, synchronously, until it asks for none.
fn settle(app: &mut App, path: &Path) {
    for _ in 0..10 {
        let jobs = app.take_jobs();
        if jobs.is_empty() {
            return;
        }
        for job in jobs {
            let msg = match job {
                Job::Rows { generation, wanted } => Msg::Rows {
                    generation,
                    rows: rows::read_rows(path, &wanted),
                },
                Job::Query {
                    id,
                    query,
                    offsets,
                    worst,
                } => Msg::QueryDone {
                    id,
                    matches: query::run_query(path, &offsets, &worst, &query),
                },
                Job::Line { line, offsets } => Msg::LineFound {
                    line,
                    index: query::entry_on_line(path, &offsets, line),
                },
                Job::Links {
                    generation,
                    offsets,
                } => Msg::Links {
                    generation,
                    links: rows::read_links(path, &offsets),
                },
                Job::LineTexts {
                    generation,
                    offsets,
                } => Msg::LineTexts {
                    generation,
                    texts: rows::read_line_texts(path, &offsets),
                },
            };
            app.update(msg);
        }
    }
}

/// An App with the chain at `path` verified, as the worker would leave it.
fn verified_app(path: &Path, width: u16, height: u16) -> App {
    let engine = verify_file(path, VerifyKeys::default(), &mut |_| {}).expect("fixture verifies");
    let offsets = (0..engine.entries())
        .filter_map(|i| engine.entry_offset(i))
        .collect();
    let report = engine.report(&path.display().to_string());
    let mut app = App::new(path.to_path_buf(), true);
    app.update(Msg::Resize { width, height });
    app.update(Msg::Worker(Update::Reverifying { generation: 1 }));
    app.update(Msg::Worker(Update::Verified {
        generation: 1,
        base: 0,
        offsets,
        report: Arc::new(report),
        seal_modes: "software".to_owned(),
        partial_tail: false,
    }));
    settle(&mut app, path);
    app
}

fn key(app: &mut App, path: &Path, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    settle(app, path);
}

fn draw(app: &App) -> Terminal<TestBackend> {
    let mut terminal =
        Terminal::new(TestBackend::new(app.width, app.height)).expect("test backend");
    terminal.draw(|f| view::render(app, f)).expect("draw");
    terminal
}

#[test]
fn table_80x24_tamper_hash() {
    let path = vector("tamper-hash-5");
    let mut app = verified_app(&path, 80, 24);
    key(&mut app, &path, KeyCode::Char('g'));
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn table_120x40_broken_link() {
    let path = vector("tamper-delete-30");
    let mut app = verified_app(&path, 120, 40);
    key(&mut app, &path, KeyCode::Char('g'));
    key(&mut app, &path, KeyCode::Char('n'));
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn detail_80x24_rewritten_reason() {
    let path = vector("tamper-reason-17");
    let mut app = verified_app(&path, 80, 24);
    key(&mut app, &path, KeyCode::Char('g'));
    key(&mut app, &path, KeyCode::Char('n'));
    assert_eq!(app.selected_index(), Some(17));
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn findings_list_120x40() {
    let path = vector("tamper-delete-30");
    let mut app = verified_app(&path, 120, 40);
    key(&mut app, &path, KeyCode::Char('f'));
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn help_screen_80x24() {
    let path = vector("plain");
    let mut app = verified_app(&path, 80, 24);
    key(&mut app, &path, KeyCode::Char('?'));
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn search_filters_and_counts() {
    let path = vector("plain");
    let mut app = verified_app(&path, 120, 40);
    let total = app.offsets.len();
    key(&mut app, &path, KeyCode::Char('/'));
    for c in "alice".chars() {
        key(&mut app, &path, KeyCode::Char(c));
    }
    key(&mut app, &path, KeyCode::Enter);
    let shown = app.shown_len();
    assert!(shown > 0 && shown < total, "{shown} of {total}");
    let text = draw(&app).backend().to_string();
    assert!(
        text.contains(&format!("{shown} of {total} shown")),
        "{text}"
    );
    key(&mut app, &path, KeyCode::Esc);
    assert_eq!(app.shown_len(), total);
}

#[test]
fn goto_index_and_line() {
    let path = vector("tamper-delete-30");
    let mut app = verified_app(&path, 80, 24);
    key(&mut app, &path, KeyCode::Char(':'));
    key(&mut app, &path, KeyCode::Char('7'));
    key(&mut app, &path, KeyCode::Enter);
    assert_eq!(app.selected_index(), Some(7));
    key(&mut app, &path, KeyCode::Char(':'));
    for c in "l12".chars() {
        key(&mut app, &path, KeyCode::Char(c));
    }
    key(&mut app, &path, KeyCode::Enter);
    assert_eq!(app.selected_index(), Some(11));
}

#[test]
fn reverifying_hides_old_verdict() {
    let path = vector("plain");
    let mut app = verified_app(&path, 80, 24);
    assert!(draw(&app).backend().to_string().contains("VALID"));
    app.update(Msg::Worker(Update::Reverifying { generation: 2 }));
    let text = draw(&app).backend().to_string();
    assert!(!text.contains("VALID"), "{text}");
    assert!(text.contains("re-verifying"), "{text}");
}

/// Strings no terminal should receive raw.
const HOSTILE: [&str; 10] = [
    "esc \u{1b}[2J\u{1b}[31mred",
    "osc \u{1b}]0;title\u{7}",
    "c1 csi \u{9b}31m",
    "bidi \u{202e}evil\u{202c} \u{2066}iso\u{2069}",
    "zero\u{200b}width",
    "del \u{7f} nul \u{0} end",
    "漢字かな交じり文の理由",
    "emoji 👩\u{200d}💻 zwj 🇩🇪",
    "combining e\u{301}e\u{301}e\u{301}",
    "tab\tnew\nline\r",
];

/// Writes a sealed chain whose text fields hold hostile strings.
fn hostile_chain(dir: &Path) -> PathBuf {
    text_chain(dir, &HOSTILE)
}

/// Writes a software-sealed chain with one entry per text, used as the reason and
/// in the other text fields.
fn text_chain(dir: &Path, texts: &[&str]) -> PathBuf {
    let path = dir.join("decisions_sealed.jsonl");
    let key = HmacKey::new(DEV_KEY.as_bytes());
    let mut out = Vec::new();
    let mut previous = "genesis".to_owned();
    let mut pcr = ZERO32;
    for (i, text) in texts.iter().enumerate() {
        let entry = DecisionEntry {
            id: format!("DEC-{i}{text}"),
            timestamp: GoTime::parse_json_token(b"\"2026-01-02T03:04:05.5Z\"").expect("timestamp"),
            action: format!("a{}", &text.chars().take(6).collect::<String>()),
            decision: "allow".to_owned(),
            reason: text.to_string(),
            event_id: text.to_string(),
            incident_id: "INC-1".to_owned(),
            operator: text.chars().take(8).collect(),
            previous_hash: previous.clone(),
        };
        let mut json = Vec::new();
        entry
            .append_go_json(&mut json, GoEscapes::Go122)
            .expect("encode");
        let hash = sha256(&json);
        pcr = pcr_extend(&pcr, &hash);
        append_sealed_line(
            &mut out,
            &json,
            &hash,
            &hex32(&key.sign(&hash)),
            &pcr,
            SealMode::Software,
            i as i64,
        );
        previous = hex32(&hash);
    }
    std::fs::write(&path, out).expect("write chain");
    path
}

fn column_of(buffer: &ratatui::buffer::Buffer, y: u16, needle: &str) -> Option<u16> {
    let width = buffer.area.width;
    let first = needle.chars().next()?;
    (0..width).find(|&x| {
        let mut cx = x;
        needle.chars().all(|c| {
            let ok = cx < width && buffer[(cx, y)].symbol().starts_with(c);
            cx += 1;
            ok
        }) && buffer[(x, y)].symbol().starts_with(first)
    })
}

#[test]
fn hostile_text_never_reaches_cells() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = hostile_chain(dir.path());
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = verified_app(&path, w, h);
        assert_eq!(app.offsets.len(), HOSTILE.len());
        let report = app.report.clone().expect("report");
        assert!(report.valid, "{:?}", report.findings);
        for selected in 0..HOSTILE.len() {
            app.selected = selected;
            app.update(Msg::Tick);
            settle(&mut app, &path);
            let terminal = draw(&app);
            let buffer = terminal.backend().buffer();
            for cell in buffer.content() {
                for c in cell.symbol().chars() {
                    assert!(
                        !c.is_control(),
                        "control {c:?} in a cell at {w}x{h}, entry {selected}"
                    );
                    assert!(
                        !is_invisible(c),
                        "hidden {c:?} in a cell at {w}x{h}, entry {selected}"
                    );
                }
            }
            // Every entry row has its decision and incident in the same columns.
            let table_end = 1 + sealdesk::tui::app::pane_heights(h).0;
            let rows_y: Vec<u16> = (2..table_end)
                .filter(|&y| column_of(buffer, y, "INC-1").is_some())
                .collect();
            assert!(rows_y.len() >= 5, "too few table rows found at {w}x{h}");
            let decision_x: Vec<_> = rows_y
                .iter()
                .map(|&y| column_of(buffer, y, "allow"))
                .collect();
            let incident_x: Vec<_> = rows_y
                .iter()
                .map(|&y| column_of(buffer, y, "INC-1"))
                .collect();
            assert!(
                decision_x.windows(2).all(|p| p[0] == p[1]),
                "decision columns {decision_x:?} at {w}x{h}"
            );
            assert!(
                incident_x.windows(2).all(|p| p[0] == p[1]),
                "incident columns {incident_x:?} at {w}x{h}"
            );
        }
    }
}

#[test]
fn hostile_detail_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = hostile_chain(dir.path());
    let mut app = verified_app(&path, 120, 40);
    app.selected = 3;
    app.update(Msg::Tick);
    settle(&mut app, &path);
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn no_color_uses_no_colors() {
    let path = vector("tamper-hash-5");
    let mut app = verified_app(&path, 80, 24);
    app.color = false;
    let terminal = draw(&app);
    for cell in terminal.backend().buffer().content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset);
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
}

/// Text of every cell of the drawn screen, one line per row.
fn screen_text(app: &App) -> String {
    let terminal = draw(app);
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Writes `count` sealed entries; `parent_of(i)` names each entry's parent.
fn chain_with_parents(
    dir: &Path,
    count: usize,
    parent_of: impl Fn(usize) -> Option<usize>,
) -> PathBuf {
    sealed_chain(dir, count, "reason", parent_of)
}

/// Writes `count` sealed entries whose reasons start with `tag`.
fn sealed_chain(
    dir: &Path,
    count: usize,
    tag: &str,
    parent_of: impl Fn(usize) -> Option<usize>,
) -> PathBuf {
    let path = dir.join("decisions_sealed.jsonl");
    let key = HmacKey::new(DEV_KEY.as_bytes());
    let mut out = Vec::new();
    let mut hashes: Vec<[u8; 32]> = Vec::new();
    let mut pcr = ZERO32;
    for i in 0..count {
        let previous = match parent_of(i) {
            Some(p) => hex32(&hashes[p]),
            None => "genesis".to_owned(),
        };
        let entry = DecisionEntry {
            id: format!("DEC-{i}"),
            timestamp: GoTime::parse_json_token(b"\"2026-01-02T03:04:05.5Z\"").expect("timestamp"),
            action: "deploy".to_owned(),
            decision: "allow".to_owned(),
            reason: format!("{tag} {i}"),
            event_id: format!("EV-{i}"),
            incident_id: "INC-1".to_owned(),
            operator: "alice".to_owned(),
            previous_hash: previous,
        };
        let mut json = Vec::new();
        entry
            .append_go_json(&mut json, GoEscapes::Go122)
            .expect("encode");
        let hash = sha256(&json);
        pcr = pcr_extend(&pcr, &hash);
        append_sealed_line(
            &mut out,
            &json,
            &hash,
            &hex32(&key.sign(&hash)),
            &pcr,
            SealMode::Software,
            i as i64,
        );
        hashes.push(hash);
    }
    std::fs::write(&path, out).expect("write chain");
    path
}

/// Feeds the state a change of the file, then the verification after it.
fn change_file(app: &mut App, path: &Path, change: FileChange, text: &str, generation: u64) {
    app.update(Msg::Worker(Update::FileEvent {
        at: std::time::SystemTime::now(),
        text: text.to_owned(),
        change: Some(change),
    }));
    if change == FileChange::Deleted {
        return;
    }
    let engine = verify_file(path, VerifyKeys::default(), &mut |_| {}).expect("chain verifies");
    let offsets = (0..engine.entries())
        .filter_map(|i| engine.entry_offset(i))
        .collect();
    app.update(Msg::Worker(Update::Reverifying { generation }));
    app.update(Msg::Worker(Update::Verified {
        generation,
        base: 0,
        offsets,
        report: Arc::new(engine.report(&path.display().to_string())),
        seal_modes: "software".to_owned(),
        partial_tail: false,
    }));
    settle(app, path);
}

#[test]
fn truncation_raises_removed_alarm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = chain_with_parents(dir.path(), 10, |i| i.checked_sub(1));
    let mut app = verified_app(&path, 80, 24);
    assert!(screen_text(&app).contains("✓ VALID · 10 entries"));

    let bytes = std::fs::read(&path).expect("read");
    let cut = bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(7)
        .map(|(i, _)| i + 1)
        .expect("eight lines");
    std::fs::write(&path, &bytes[..cut]).expect("truncate");
    let text = format!("file truncated {}→{cut} B", bytes.len());
    let change = FileChange::Truncated {
        old_size: bytes.len() as u64,
        new_size: cut as u64,
    };
    change_file(&mut app, &path, change, &text, 2);

    let screen = screen_text(&app);
    let first = screen.lines().next().expect("verdict line");
    assert!(!first.contains("VALID ·"), "{screen}");
    assert!(
        first.contains("✗ ENTRIES REMOVED WHILE WATCHING (2 at"),
        "{screen}"
    );
    assert!(first.contains("chain itself verifies"), "{screen}");
    let footer = screen.lines().last().expect("status line");
    assert!(footer.contains("file truncated"), "{footer}");
    assert!(footer.contains("2 entries lost"), "{footer}");

    // The findings list shows the change as a view-level finding.
    key(&mut app, &path, KeyCode::Char('f'));
    let list = screen_text(&app);
    assert!(list.contains("entries_removed"), "{list}");
    key(&mut app, &path, KeyCode::Esc);

    // A acknowledges; the chain's own verdict is back.
    key(&mut app, &path, KeyCode::Char('A'));
    let screen = screen_text(&app);
    assert!(screen.contains("✓ VALID · 8 entries"), "{screen}");
}

#[test]
fn emptied_and_deleted_file_not_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = chain_with_parents(dir.path(), 3, |i| i.checked_sub(1));
    let mut app = verified_app(&path, 120, 40);
    let size = std::fs::metadata(&path).expect("metadata").len();
    std::fs::write(&path, b"").expect("empty");
    let change = FileChange::Truncated {
        old_size: size,
        new_size: 0,
    };
    change_file(&mut app, &path, change, "file truncated", 2);
    let screen = screen_text(&app);
    assert!(!screen.contains("✓ VALID"), "{screen}");
    assert!(
        screen.contains("ENTRIES REMOVED WHILE WATCHING (3 at"),
        "{screen}"
    );

    let mut app = verified_app(
        &chain_with_parents(dir.path(), 3, |i| i.checked_sub(1)),
        120,
        40,
    );
    std::fs::remove_file(&path).expect("delete");
    change_file(&mut app, &path, FileChange::Deleted, "file deleted", 2);
    let screen = screen_text(&app);
    let first = screen.lines().next().expect("verdict line");
    assert!(first.contains("FILE DELETED"), "{screen}");
    assert!(!first.contains("VALID"), "{screen}");
}

#[test]
fn file_back_after_delete_shows_its_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = chain_with_parents(dir.path(), 10, |i| i.checked_sub(1));
    let mut app = verified_app(&path, 120, 40);
    let saved = std::fs::read(&path).expect("read chain");
    std::fs::remove_file(&path).expect("delete");
    change_file(&mut app, &path, FileChange::Deleted, "file deleted", 2);
    assert!(screen_text(&app)
        .lines()
        .next()
        .unwrap_or("")
        .contains("FILE DELETED"));

    // The follower still has the old file open, so a file created later at the
    // path arrives as a replacement.
    std::fs::write(&path, saved).expect("recreate");
    change_file(&mut app, &path, FileChange::Replaced, "file replaced", 3);
    let screen = screen_text(&app);
    let first = screen.lines().next().expect("verdict line");
    assert!(!first.contains("FILE DELETED"), "{screen}");
    // The deletion stays as an alarm until acknowledged; the chain's own
    // verdict is shown beside it and after it.
    assert!(first.contains("chain itself verifies"), "{screen}");
    key(&mut app, &path, KeyCode::Char('A'));
    let screen = screen_text(&app);
    let first = screen.lines().next().expect("verdict line");
    assert!(first.contains("✓ VALID · 10 entries"), "{screen}");
}

#[test]
fn unreadable_middle_line_counts_one_lost_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = chain_with_parents(dir.path(), 10, |i| i.checked_sub(1));
    let mut app = verified_app(&path, 120, 40);
    let original = std::fs::read(&path).expect("read chain");
    // Break the JSON of the sixth line in place: same size.
    let line_start = original
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(4)
        .map(|(i, _)| i + 1)
        .expect("six lines");
    let mut broken = original.clone();
    broken[line_start] = b'#';
    std::fs::write(&path, &broken).expect("break");
    change_file(
        &mut app,
        &path,
        FileChange::Modified { offset: 0 },
        "changed in place",
        2,
    );
    assert_eq!(app.offsets.len(), 9);
    assert_eq!(app.watch_events[0].lost, Some(1));

    // Restored: every entry read before the restore is still there.
    std::fs::write(&path, &original).expect("restore");
    change_file(
        &mut app,
        &path,
        FileChange::Modified { offset: 0 },
        "changed in place",
        3,
    );
    assert_eq!(app.offsets.len(), 10);
    assert_eq!(app.watch_events[1].lost, Some(0));
}

#[test]
fn replaced_file_counts_lost_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = chain_with_parents(dir.path(), 4, |i| i.checked_sub(1));
    let mut app = verified_app(&path, 120, 40);
    // Another chain of the same shape: same offsets, other hashes.
    let other = tempfile::tempdir().expect("tempdir");
    let replacement = sealed_chain(other.path(), 4, "motive", |i| i.checked_sub(1));
    std::fs::copy(&replacement, &path).expect("replace");
    change_file(&mut app, &path, FileChange::Replaced, "file replaced", 2);
    assert_eq!(app.watch_events.len(), 1);
    assert!(app.watch_events[0].lost.unwrap_or(0) >= 1);
    assert!(screen_text(&app).contains("ENTRIES REMOVED WHILE WATCHING"));
}

#[test]
fn interleaved_fork_marks_every_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Entries 2, 4, 6 continue entry 1; entries 3, 5, 7 form a second branch from 1.
    let path = chain_with_parents(dir.path(), 8, |i| match i {
        0 => None,
        1 => Some(0),
        2 | 3 => Some(1),
        _ => Some(i - 2),
    });
    let mut app = verified_app(&path, 120, 40);
    key(&mut app, &path, KeyCode::Char('g'));
    let screen = screen_text(&app);
    for (child, parent) in [(3, 1), (4, 2), (5, 3), (6, 4), (7, 5)] {
        let marker = format!("↳ entry {child} links to entry {parent}");
        assert!(screen.contains(&marker), "missing {marker}:\n{screen}");
    }
    assert!(!screen.contains("↳ entry 2 links"), "{screen}");
}

#[test]
fn counts_match_verify_report() {
    let path = vector("tamper-delete-30");
    let app = verified_app(&path, 120, 40);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealdesk"))
        .args(["verify", "--format", "json"])
        .arg(&path)
        .output()
        .expect("run sealdesk verify");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let cli: Vec<(String, String)> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_owned(),
                f["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let report = app.report.as_ref().expect("report");
    let view: Vec<(String, String)> = report
        .findings
        .iter()
        .map(|f| (f.kind.as_str().to_owned(), f.message.clone()))
        .collect();
    assert_eq!(view, cli);
    let screen = screen_text(&app);
    assert!(screen.contains("2 errors, 2 warnings, 1 note "), "{screen}");
}

#[test]
fn verdict_uses_singular() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = chain_with_parents(dir.path(), 1, |_| None);
    let app = verified_app(&path, 120, 40);
    let screen = screen_text(&app);
    assert!(
        screen.contains("✓ VALID · 1 entry · no errors, 1 warning, 1 note"),
        "{screen}"
    );
}

/// The text of the buffer, one row per line.
fn buffer_text(terminal: &Terminal<TestBackend>) -> String {
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            text.push_str(buffer[(x, y)].symbol());
        }
        text.push('\n');
    }
    text
}

/// Types `text` into the go-to prompt and submits it.
fn go_to(app: &mut App, path: &Path, text: &str) {
    key(app, path, KeyCode::Char(':'));
    for c in text.chars() {
        key(app, path, KeyCode::Char(c));
    }
    key(app, path, KeyCode::Enter);
}

#[test]
fn malformed_line_has_own_row() {
    let path = vector("tamper-malformed-line-middle");
    let mut app = verified_app(&path, 80, 24);
    assert_eq!(app.offsets.len(), 50);
    assert_eq!(app.line_rows.len(), 1, "{:?}", app.line_rows);
    assert_eq!(app.line_rows[0].line, 26);
    assert_eq!(app.shown_len(), 51);

    go_to(&mut app, &path, "l26");
    assert_eq!(app.selected_item(), Some(Item::Line(0)), "{:?}", app.notice);
    let text = buffer_text(&draw(&app));
    let row = &app.line_rows[0];
    let head = format!("! line 26: {}", row.kind.as_str());
    assert!(text.contains(&head), "{text}");
    let meaning: String = row.kind.meaning().chars().take(30).collect();
    assert!(text.contains(&meaning), "{text}");
    assert!(text.contains("line 26 · offset"), "{text}");
    assert!(text.contains("raw line ("), "{text}");

    // The entries around the line keep their own lines.
    go_to(&mut app, &path, "l27");
    assert_eq!(app.selected_index(), Some(25));
    go_to(&mut app, &path, "l25");
    assert_eq!(app.selected_index(), Some(24));

    // n stops on the line between entries 24 and 25, N comes back to it.
    key(&mut app, &path, KeyCode::Char('n'));
    assert_eq!(app.selected_item(), Some(Item::Line(0)));
    key(&mut app, &path, KeyCode::Char('j'));
    assert_eq!(app.selected_index(), Some(25));
    key(&mut app, &path, KeyCode::Char('N'));
    assert_eq!(app.selected_item(), Some(Item::Line(0)));
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn findings_enter_selects_line_row() {
    let path = vector("tamper-malformed-line-middle");
    let mut app = verified_app(&path, 120, 40);
    let report = app.report.clone().expect("report");
    let at = report
        .findings
        .iter()
        .position(|f| f.index.is_none() && f.line == Some(26))
        .expect("a finding on line 26");
    key(&mut app, &path, KeyCode::Char('g'));
    key(&mut app, &path, KeyCode::Char('f'));
    key(&mut app, &path, KeyCode::Char('g'));
    for _ in 0..at + app.watch_events.len() {
        key(&mut app, &path, KeyCode::Char('j'));
    }
    key(&mut app, &path, KeyCode::Enter);
    assert_eq!(app.selected_item(), Some(Item::Line(0)), "{:?}", app.notice);
}

/// Writes a valid three-entry chain with a garbage line holding escape sequences
/// and bidi controls after the first entry, and returns the garbage.
fn chain_with_hostile_garbage(dir: &Path) -> (PathBuf, String) {
    let path = hostile_chain(dir);
    let text = std::fs::read_to_string(&path).expect("read chain");
    let mut lines: Vec<&str> = text.lines().take(3).collect();
    let garbage = format!(
        "\u{1b}[2J\u{1b}]0;pwned\u{7}garbage \u{202e}txt.exe\u{2066}\u{200b} {{\"entry\": {}",
        "x".repeat(6000)
    );
    lines.insert(1, &garbage);
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(&path, out).expect("write chain");
    (path, garbage)
}

#[test]
fn hostile_line_row_is_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, garbage) = chain_with_hostile_garbage(dir.path());
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = verified_app(&path, w, h);
        assert_eq!(app.offsets.len(), 3);
        assert_eq!(app.line_rows.len(), 1, "{:?}", app.line_rows);
        go_to(&mut app, &path, "l2");
        assert_eq!(app.selected_item(), Some(Item::Line(0)), "{:?}", app.notice);
        let terminal = draw(&app);
        for cell in terminal.backend().buffer().content() {
            for c in cell.symbol().chars() {
                assert!(!c.is_control(), "control {c:?} in a cell at {w}x{h}");
                assert!(!is_invisible(c), "hidden {c:?} in a cell at {w}x{h}");
            }
        }
        let text = buffer_text(&terminal);
        assert!(text.contains("line 2:"), "{text}");
        assert!(
            text.contains("\\u{001b}[2J"),
            "escape shown escaped:\n{text}"
        );
        assert!(text.contains("\\u{202e}"), "bidi shown escaped:\n{text}");
        let cut = format!("first 4096 of {} bytes", garbage.len());
        assert!(text.contains(&cut), "cut note missing:\n{text}");
    }
}

/// Feeds the state the rows the worker reads from the end of the file before
/// verification ends, as it does at start.
fn provisional_app(path: &Path, width: u16, height: u16) -> App {
    let mut app = App::new(path.to_path_buf(), true);
    app.update(Msg::Resize { width, height });
    app.update(Msg::Worker(Update::Reverifying { generation: 1 }));
    app.update(Msg::Worker(Update::Progress {
        generation: 1,
        done: 10,
        total: 100,
    }));
    let rows = worker::provisional_rows(path, worker::PROVISIONAL_LINES);
    app.update(Msg::Worker(Update::Provisional {
        generation: 1,
        rows,
    }));
    settle(&mut app, path);
    app
}

/// The drawn line holding `needle`.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[test]
fn provisional_rows_until_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sealed_chain(dir.path(), 30, "tail", |i| i.checked_sub(1));
    // A write in progress: the torn last line is not shown.
    let mut bytes = std::fs::read(&path).expect("read chain");
    bytes.extend_from_slice(b"{\"entry\":{\"id\":\"TORN-LINE\",\"reason\":\"torn");
    std::fs::write(&path, &bytes).expect("write chain");

    let mut app = provisional_app(&path, 120, 30);
    assert_eq!(
        app.provisional.len(),
        30,
        "a short file gives all its lines"
    );
    let text = screen_text(&app);
    assert!(text.contains("verifying…  10%"), "{text}");
    assert!(!text.contains('✓'), "{text}");
    assert!(!text.contains("TORN-LINE"), "{text}");
    for i in [29, 20] {
        let line = line_with(&text, &format!("tail {i} "));
        assert!(line.starts_with("… ?"), "{line}");
        assert!(line.contains("deploy") && line.contains("alice"), "{line}");
    }

    let engine = verify_file(&path, VerifyKeys::default(), &mut |_| {}).expect("verifies");
    let offsets: Vec<u64> = (0..engine.entries())
        .filter_map(|i| engine.entry_offset(i))
        .collect();
    app.update(Msg::Worker(Update::Verified {
        generation: 1,
        base: 0,
        offsets,
        report: Arc::new(engine.report(&path.display().to_string())),
        seal_modes: "software".to_owned(),
        partial_tail: true,
    }));
    settle(&mut app, &path);
    assert!(app.provisional.is_empty());
    assert_eq!(app.offsets.len(), 30);
    // Following, the newest row stays selected (the torn line may have a row of its own).
    assert!(app.follow);
    assert_eq!(app.selected, app.shown_len() - 1);
    let text = screen_text(&app);
    assert!(!text.contains("verifying"), "{text}");
    let line = line_with(&text, "tail 29 ");
    assert!(line.starts_with("✓ 29"), "{line}");
    assert!(!text.contains("… ?"), "{text}");
}

#[test]
fn provisional_rows_keep_the_last_200_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sealed_chain(dir.path(), 450, "many", |i| i.checked_sub(1));
    let rows = worker::provisional_rows(&path, worker::PROVISIONAL_LINES);
    assert_eq!(rows.len(), 200);
    assert_eq!(rows[0].entry.reason, "many 250");
    assert_eq!(rows[199].entry.reason, "many 449");
    let bytes = std::fs::read(&path).expect("read chain");
    for row in &rows {
        let start = usize::try_from(row.offset).expect("offset");
        assert!(start == 0 || bytes[start - 1] == b'\n', "offset {start}");
    }
    let app = provisional_app(&path, 80, 24);
    let text = screen_text(&app);
    assert!(text.contains("many 449"), "{text}");
    assert!(!text.contains('✓'), "{text}");
    // A stale generation's rows are ignored.
    let mut app = app;
    app.update(Msg::Worker(Update::Reverifying { generation: 2 }));
    app.update(Msg::Worker(Update::Provisional {
        generation: 1,
        rows,
    }));
    assert!(app.provisional.is_empty());
}

#[test]
fn provisional_hostile_rows_are_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = hostile_chain(dir.path());
    let app = provisional_app(&path, 120, 40);
    assert_eq!(app.provisional.len(), HOSTILE.len());
    let terminal = draw(&app);
    for cell in terminal.backend().buffer().content() {
        for c in cell.symbol().chars() {
            assert!(!c.is_control(), "control {c:?} in a cell");
            assert!(!is_invisible(c), "hidden {c:?} in a cell");
        }
    }
    let text = screen_text(&app);
    assert!(!text.contains('✓'), "{text}");
}

#[test]
fn line_breaks_not_labelled_hidden() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = text_chain(dir.path(), &["first\nsecond\tcolumn", "bidi\u{202e}text"]);
    let mut app = verified_app(&path, 120, 40);
    app.selected = 0;
    app.update(Msg::Tick);
    settle(&mut app, &path);
    let shown = screen_text(&app);
    assert!(shown.contains("first\\nsecond\\tcolumn"), "{shown}");
    assert!(
        !shown.contains("[hidden characters shown escaped]"),
        "{shown}"
    );

    app.selected = 1;
    app.update(Msg::Tick);
    settle(&mut app, &path);
    let shown = screen_text(&app);
    assert!(
        shown.contains("[hidden characters shown escaped]"),
        "{shown}"
    );
}

/// After the first verification the view jumps from the provisional rows at
/// the top to the last of a million entries. Placing the table must not walk
/// the whole distance row by row, which once spun for minutes.
#[test]
fn jump_to_last_row_is_immediate() {
    let path = vector("plain");
    let report = verify_file(&path, VerifyKeys::default(), &mut |_| {})
        .expect("fixture verifies")
        .report(&path.display().to_string());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut app = App::new(path, true);
        app.update(Msg::Resize {
            width: 120,
            height: 40,
        });
        app.update(Msg::Worker(Update::Reverifying { generation: 1 }));
        app.update(Msg::Worker(Update::Verified {
            generation: 1,
            base: 0,
            offsets: (0..2_000_000).collect(),
            report: Arc::new(report),
            seal_modes: "software".to_owned(),
            partial_tail: false,
        }));
        let _ = done_tx.send((app.selected, app.top, app.table_capacity()));
    });
    let (selected, top, capacity) = done_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the view placed the table within a minute");
    assert_eq!(selected, 1_999_999);
    assert_eq!(top, selected + 1 - capacity);
}

/// The index column fits the last index: 299999 has six digits although
/// 300000 entries is no power of ten.
#[test]
fn index_column_fits_the_last_index() {
    let path = vector("plain");
    let report = verify_file(&path, VerifyKeys::default(), &mut |_| {})
        .expect("fixture verifies")
        .report(&path.display().to_string());
    let mut app = App::new(path, true);
    app.update(Msg::Resize {
        width: 120,
        height: 40,
    });
    app.update(Msg::Worker(Update::Reverifying { generation: 1 }));
    app.update(Msg::Worker(Update::Verified {
        generation: 1,
        base: 0,
        offsets: (0..300_000).collect(),
        report: Arc::new(report),
        seal_modes: "software".to_owned(),
        partial_tail: false,
    }));
    let screen = screen_text(&app);
    assert!(screen.contains(" 299999 "), "{screen}");
    assert!(!screen.contains("29999…"), "{screen}");
}
