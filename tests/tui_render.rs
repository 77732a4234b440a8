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
use sealdesk::tui::app::{App, Job, Msg};
use sealdesk::tui::worker::Update;
use sealdesk::tui::{query, rows, view};
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
    let path = dir.join("decisions_sealed.jsonl");
    let key = HmacKey::new(DEV_KEY.as_bytes());
    let mut out = Vec::new();
    let mut previous = "genesis".to_owned();
    let mut pcr = ZERO32;
    for (i, text) in HOSTILE.iter().enumerate() {
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
