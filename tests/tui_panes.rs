//! Render and state tests of the seal form, the PCR pane and the quote pane on
//! ratatui's TestBackend. The TPM state is set directly, so no TPM is needed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use sealdesk::chain::crypto::ZERO32;
use sealdesk::chain::entry::parse_hex32;
use sealdesk::chain::finding::Severity;
use sealdesk::chain::gotime::GoTime;
use sealdesk::chain::verify::VerifyKeys;
use sealdesk::cli::KeyArgs;
use sealdesk::commands::quote::QuoteRecord;
use sealdesk::tpm::TctiSelection;
use sealdesk::tui::app::{App, Job, Msg, Overlay};
use sealdesk::tui::form::{Field, FormOutcome, SealModeChoice};
use sealdesk::tui::tpm_panel::{
    probe, seal_entry, Export, HeadFacts, HistoryLine, PcrVerdict, Probe, QuoteFiles, QuoteView,
    SealFailure, SecretSource, TpmFacts, TpmJob, TpmSettings, TpmStatus,
};
use sealdesk::tui::worker::Update;
use sealdesk::tui::{rows, view};
use sealdesk::verify_file::verify_file;

const SIGNING_KEY: &str = "sha256:8cf9501dafd7deff6780854bd2876ea8aa36344a3ea75d4de72adebfea1c7398";

fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vectors")
        .join(name)
        .join("decisions_sealed.jsonl")
}

fn settings() -> TpmSettings {
    TpmSettings {
        tcti: TctiSelection::from_command_line("swtpm:host=127.0.0.1,port=2321"),
        pcr: 23,
        key_args: KeyArgs::default(),
        secret: SecretSource::DevelopmentKey,
        missing_tpm: None,
        tcti_set_by: None,
    }
}

/// Reads the rows the state requests. TPM jobs stay queued for the test to inspect.
fn settle(app: &mut App, path: &Path) {
    for _ in 0..10 {
        let jobs = app.take_jobs();
        if jobs.is_empty() {
            return;
        }
        for job in jobs {
            if let Job::Rows { generation, wanted } = job {
                app.update(Msg::Rows {
                    generation,
                    rows: rows::read_rows(path, &wanted),
                });
            }
        }
    }
}

/// Builds an App on the verified chain at `path`, with fixed TPM settings and operator.
fn app_on(path: &Path, width: u16, height: u16) -> App {
    let engine = verify_file(path, VerifyKeys::default(), &mut |_| {}).expect("fixture verifies");
    let offsets = (0..engine.entries())
        .filter_map(|i| engine.entry_offset(i))
        .collect();
    let report = engine.report(&path.display().to_string());
    let mut app = App::new(path.to_path_buf(), true).with_tpm(settings());
    app.form.operator = "alice".to_owned();
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

fn head_pcr(app: &App) -> [u8; 32] {
    let head = app
        .report
        .as_ref()
        .and_then(|r| r.head.clone())
        .expect("chain has a head");
    parse_hex32(&head.pcr_value).expect("hex pcr_value").0
}

/// Sets the TPM state as a probe would, with `pcr` read from the TPM.
fn tpm_ready(app: &mut App, pcr: [u8; 32], verdict: PcrVerdict) {
    let head = app.offsets.len() as u64 - 1;
    let head_pcr = head_pcr(app);
    app.tpm.status = TpmStatus::Ready(TpmFacts {
        manufacturer: "IBM".to_owned(),
        firmware: "8217.4131.22.13878".to_owned(),
        pcr_value: pcr,
        signing_key: SIGNING_KEY.to_owned(),
        verdict,
    });
    app.tpm.head = Some(HeadFacts {
        index: head,
        pcr_value: Some(head_pcr),
    });
    app.tpm.checked_at = Some("12:00:00".to_owned());
    app.tpm.probe_running = false;
}

fn tpm_unreachable(app: &mut App) {
    app.tpm.status = TpmStatus::Unreachable(
        "cannot connect to the TPM at `swtpm:host=127.0.0.1,port=2321` (TCTI from --tcti): is swtpm running and listening on that port? (response code 0x000a000a)".to_owned(),
    );
    app.tpm.checked_at = Some("12:00:00".to_owned());
    app.tpm.probe_running = false;
}

fn press(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

fn draw(app: &App) -> Terminal<TestBackend> {
    let mut terminal =
        Terminal::new(TestBackend::new(app.width, app.height)).expect("test backend");
    terminal.draw(|f| view::render(app, f)).expect("draw");
    terminal
}

fn screen(app: &App) -> String {
    let terminal = draw(app);
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

fn fixed_time() -> GoTime {
    GoTime::parse_json_token(b"\"2026-01-02T03:04:05.123456789Z\"").expect("valid time")
}

#[test]
fn form_empty_snapshot() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    let head = head_pcr(&app);
    tpm_ready(&mut app, head, PcrVerdict::Anchored { head: Some(15) });
    press(&mut app, KeyCode::Char('S'));
    assert!(app.form_open);
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn form_invalid_snapshot() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    tpm_unreachable(&mut app);
    press(&mut app, KeyCode::Char('S'));
    app.form.operator.clear();
    // The reason is blank, the operator empty and TPM mode has no TPM.
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Enter);
    assert!(app.form.preview.is_none());
    assert!(app
        .take_tpm_jobs()
        .iter()
        .all(|j| matches!(j, TpmJob::Probe(_))));
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn form_preview_snapshot() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    tpm_ready(&mut app, ZERO32, PcrVerdict::Reset);
    press(&mut app, KeyCode::Char('S'));
    type_text(&mut app, "manual review");
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "of INC-7");
    let previous = app
        .report
        .as_ref()
        .and_then(|r| r.head.clone())
        .map(|h| h.hash);
    app.form.new_segment = true;
    app.form.preview = Some(
        app.form
            .build_preview(previous.as_deref(), fixed_time())
            .expect("preview"),
    );
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn form_needs_new_segment_when_pcr_diverged() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    tpm_ready(&mut app, ZERO32, PcrVerdict::Reset);
    press(&mut app, KeyCode::Char('S'));
    insta::assert_snapshot!("form_new_segment_hint", draw(&app).backend());
    type_text(&mut app, "why");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Enter);
    assert!(
        app.form.preview.is_none(),
        "previewed without the confirmation"
    );
    let text = screen(&app);
    assert!(text.contains("tick this"), "{text}");

    // Tab to the new-segment box, tick it, preview, seal.
    for _ in 0..3 {
        press(&mut app, KeyCode::Tab);
    }
    press(&mut app, KeyCode::Char(' '));
    assert!(app.form.new_segment);
    press(&mut app, KeyCode::Enter);
    let preview = app.form.preview.clone().expect("preview shown");
    assert_eq!(preview.mode, SealModeChoice::Tpm);
    assert!(preview.new_segment);
    app.take_tpm_jobs();
    press(&mut app, KeyCode::Enter);
    let jobs = app.take_tpm_jobs();
    let seal = jobs.iter().find_map(|j| match j {
        TpmJob::Seal { preview, options } => Some((preview, options)),
        _ => None,
    });
    let (sealed_preview, options) = seal.expect("a seal job");
    assert!(options.new_segment);
    assert!(!options.force);
    assert_eq!(**sealed_preview, preview);
    assert!(app.form.sealing);
}

#[test]
fn seal_failure_keeps_form_and_shows_popup() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    let head = head_pcr(&app);
    tpm_ready(&mut app, head, PcrVerdict::Anchored { head: Some(15) });
    press(&mut app, KeyCode::Char('S'));
    type_text(&mut app, "keep me");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    app.update(Msg::SealDone(Err(SealFailure {
        title: "chain locked".to_owned(),
        message: "timed out waiting for the lock".to_owned(),
        advice: "another sealdesk process is sealing; wait until it finishes and seal again"
            .to_owned(),
        stale_preview: false,
        current_head: None,
    })));
    assert!(app.form_open);
    assert_eq!(app.form.reason, "keep me");
    assert!(!app.form.sealing);
    let text = screen(&app);
    assert!(text.contains("chain locked"), "{text}");
    assert!(text.contains("What to do"), "{text}");
    press(&mut app, KeyCode::Esc);
    assert!(app.popup.is_none());
    assert!(app.form_open);
}

#[test]
fn status_line_shows_sealing_mode() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 120, 30);
    tpm_unreachable(&mut app);
    assert!(screen(&app).contains("next seal: no TPM"));
    press(&mut app, KeyCode::Char('S'));
    for _ in 0..3 {
        press(&mut app, KeyCode::BackTab);
    }
    press(&mut app, KeyCode::Right);
    assert_eq!(app.form.mode, SealModeChoice::Software);
    press(&mut app, KeyCode::Esc);
    assert!(screen(&app).contains("next seal: software"));
    let head = head_pcr(&app);
    tpm_ready(&mut app, head, PcrVerdict::Anchored { head: Some(15) });
    app.form.mode = SealModeChoice::Tpm;
    assert!(screen(&app).contains("next seal: TPM"));
}

#[test]
fn control_characters_cannot_be_typed() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    press(&mut app, KeyCode::Char('S'));
    type_text(&mut app, "a\u{1b}[31m\u{202e}\u{200b}b");
    assert_eq!(app.form.reason, "a[31mb");
    let ctrl = KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(app.form.on_key(ctrl), FormOutcome::Stay);
    assert_eq!(app.form.reason, "a[31mb");
}

#[test]
fn paste_inserts_text_only() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    tpm_ready(&mut app, ZERO32, PcrVerdict::Reset);
    press(&mut app, KeyCode::Char('S'));
    app.take_tpm_jobs();
    let reason_focus = app.form.focus;

    app.update(Msg::Paste(
        "text\tmore\nx\u{1b}]0;owned\u{7}\r\n\u{202e}y\n".to_owned(),
    ));
    assert!(app.form_open);
    assert_eq!(app.form.focus, reason_focus);
    assert_eq!(app.form.reason, "text more\nx\ny\n");
    assert!(app.form.preview.is_none());

    press(&mut app, KeyCode::Tab);
    let event_focus = app.form.focus;
    app.update(Msg::Paste("EV\t1\nEV\u{1b}[2J2\n".to_owned()));
    assert!(app.form_open);
    assert_eq!(app.form.focus, event_focus);
    assert_eq!(app.form.event_id, "EV 1 EV2 ");
    assert!(app.form.preview.is_none());
    assert!(!app.form.sealing);
    assert!(app
        .take_tpm_jobs()
        .iter()
        .all(|j| !matches!(j, TpmJob::Seal { .. })));
}

#[test]
fn paste_outside_form_is_ignored() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    let selected = app.selected;
    app.update(Msg::Paste("qSG\n".to_owned()));
    assert!(!app.quit);
    assert!(!app.form_open);
    assert_eq!(app.selected, selected);

    press(&mut app, KeyCode::Char('/'));
    app.update(Msg::Paste("deny\tall\n".to_owned()));
    assert_eq!(
        app.prompt.as_ref().map(|(_, t)| t.as_str()),
        Some("deny all ")
    );
}

/// A probe result that found no TPM.
fn probe_unreachable() -> Msg {
    Msg::TpmProbed(Box::new(Probe {
        status: TpmStatus::Unreachable("connection refused".to_owned()),
        head: None,
        history: Vec::new(),
        at: "12:00:01".to_owned(),
        chain_error: None,
    }))
}

#[test]
fn form_rechecks_unreachable_tpm() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    tpm_unreachable(&mut app);
    app.take_tpm_jobs();

    press(&mut app, KeyCode::Char('S'));
    assert!(app.form_open);
    let jobs = app.take_tpm_jobs();
    assert!(
        jobs.iter().any(|j| matches!(j, TpmJob::Probe(_))),
        "opening the form probes the TPM: {jobs:?}"
    );

    app.update(probe_unreachable());
    type_text(&mut app, "why");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Enter);
    assert!(app.form.preview.is_none());
    assert!(app.form.error(Field::Mode).is_some());
    let jobs = app.take_tpm_jobs();
    assert!(
        jobs.iter().any(|j| matches!(j, TpmJob::Probe(_))),
        "Enter after a failed probe probes again: {jobs:?}"
    );

    // The TPM is back: the message beside the mode goes away.
    let head = head_pcr(&app);
    tpm_ready(&mut app, head, PcrVerdict::Anchored { head: Some(15) });
    let ready = app.tpm.status.clone();
    app.update(Msg::TpmProbed(Box::new(Probe {
        status: ready,
        head: app.tpm.head.clone(),
        history: Vec::new(),
        at: "12:00:02".to_owned(),
        chain_error: None,
    })));
    assert!(app.form.error(Field::Mode).is_none());
    press(&mut app, KeyCode::Enter);
    assert!(app.form.preview.is_some());
}

#[test]
fn verified_append_requests_probe() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    let jobs = app.take_tpm_jobs();
    assert!(jobs.iter().any(|j| matches!(j, TpmJob::Probe(_))));
}

fn pcr_pane(verdict: PcrVerdict, pcr: Option<[u8; 32]>) -> String {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 110, 26);
    match pcr {
        Some(pcr) => tpm_ready(&mut app, pcr, verdict),
        None => tpm_unreachable(&mut app),
    }
    press(&mut app, KeyCode::Char('P'));
    assert_eq!(app.overlay, Overlay::Pcr);
    app.tpm.probe_running = false;
    draw(&app).backend().to_string()
}

#[test]
fn pcr_pane_anchored() {
    let path = vector("fixed-timestamps");
    let app = app_on(&path, 110, 26);
    let head = head_pcr(&app);
    insta::assert_snapshot!(pcr_pane(
        PcrVerdict::Anchored { head: Some(15) },
        Some(head)
    ));
}

#[test]
fn pcr_pane_behind() {
    let earlier = [0x11; 32];
    insta::assert_snapshot!(pcr_pane(
        PcrVerdict::Behind {
            index: 12,
            head: 15,
            only_software_after: true,
            interrupted: false,
        },
        Some(earlier)
    ));
}

#[test]
fn pcr_pane_diverged() {
    insta::assert_snapshot!(pcr_pane(PcrVerdict::Unrelated, Some([0xab; 32])));
}

#[test]
fn pcr_pane_reset() {
    insta::assert_snapshot!(pcr_pane(PcrVerdict::Reset, Some(ZERO32)));
}

#[test]
fn pcr_pane_no_tpm() {
    insta::assert_snapshot!(pcr_pane(PcrVerdict::Unrelated, None));
}

#[test]
fn pcr_pane_not_built() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 110, 26);
    app.tpm.status = TpmStatus::NotBuilt;
    press(&mut app, KeyCode::Char('P'));
    app.tpm.probe_running = false;
    let text = screen(&app);
    assert!(text.contains("built without TPM support"), "{text}");
    assert!(text.contains("next seal: no TPM"), "{text}");
}

fn quote_view(anchored: bool, verdict: &str) -> QuoteView {
    let ak = p256::ecdsa::SigningKey::from_slice(&[7u8; 32])
        .expect("valid scalar")
        .verifying_key()
        .to_owned();
    QuoteView {
        time: "2026-01-02T03:04:05.123456789Z".to_owned(),
        nonce: "ab".repeat(32),
        ak_fingerprint: "sha256:ce00471de57b3a7ca8cc26887a84b5e8b0b54e0a769da18db3ba3a5b6738dbf7"
            .to_owned(),
        pcr_value: "5037c40048f24f3a9394fd6c9b0167c28f2c7d838e740bd27065e1ce98bfe299".to_owned(),
        checks: [
            "structure",
            "signature",
            "nonce",
            "PCR selection",
            "PCR digest",
        ]
        .iter()
        .map(|n| ((*n).to_owned(), true, "passed".to_owned()))
        .collect(),
        verdict: verdict.to_owned(),
        anchored,
        findings: if anchored {
            Vec::new()
        } else {
            vec![(
                Severity::Error,
                "anchor_mismatch: the quoted PCR 23 matches no entry's pcr_value".to_owned(),
            )]
        },
        files: Arc::new(QuoteFiles {
            attest: Vec::new(),
            signature: Vec::new(),
            pcrs: Vec::new(),
            nonce: [0; 32],
            ak,
        }),
    }
}

fn record(time: &str, pcr_value: &str) -> QuoteRecord {
    QuoteRecord {
        time: time.to_owned(),
        nonce: "cd".repeat(32),
        pcr: 23,
        pcr_value: pcr_value.to_owned(),
        clock: 1000,
        reset_count: 0,
        restart_count: 0,
        ak_fingerprint: "sha256:ce00471de57b3a7ca8cc26887a84b5e8b0b54e0a769da18db3ba3a5b6738dbf7"
            .to_owned(),
    }
}

fn quote_app(anchored: bool, verdict: &str) -> App {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 110, 34);
    let head = head_pcr(&app);
    tpm_ready(&mut app, head, PcrVerdict::Anchored { head: Some(15) });
    press(&mut app, KeyCode::Char('Q'));
    assert_eq!(app.overlay, Overlay::Quote);
    app.update(Msg::QuoteDone(Box::new(Ok((
        quote_view(anchored, verdict),
        vec![
            HistoryLine {
                record: record("2026-01-02T03:00:00Z", &"aa".repeat(32)),
                verdict: PcrVerdict::Anchored { head: Some(15) },
                rollback: Vec::new(),
            },
            HistoryLine {
                record: record("2026-01-02T03:04:05Z", &"bb".repeat(32)),
                verdict: PcrVerdict::Unrelated,
                rollback: vec!["the quote of 2026-01-02T03:00:00Z (same resetCount 0 and restartCount 0) saw PCR 23 = aaaa…, which is not the pcr_value of any entry up to entry 15".to_owned()],
            },
        ],
    )))));
    app
}

/// The quote pane with one history line of `verdict` and no rollback finding.
fn history_screen(verdict: PcrVerdict) -> String {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 110, 34);
    press(&mut app, KeyCode::Char('Q'));
    app.tpm.history = vec![HistoryLine {
        record: record("2026-01-02T03:00:00Z", &"aa".repeat(32)),
        verdict,
        rollback: Vec::new(),
    }];
    screen(&app)
}

/// Returns the part inside the pane's borders of the screen line that shows the
/// quote of `time`; the table behind the pane has marks of its own.
fn line_with<'a>(text: &'a str, time: &str) -> &'a str {
    let line = text
        .lines()
        .find(|l| l.contains(time))
        .unwrap_or_else(|| panic!("no line with {time} in\n{text}"));
    line.split('│').nth(1).unwrap_or(line)
}

#[test]
fn quote_history_marks_follow_verdict() {
    let cases = [
        (PcrVerdict::Anchored { head: Some(15) }, "✓ anchored"),
        (
            PcrVerdict::Behind {
                index: 12,
                head: 15,
                only_software_after: false,
                interrupted: false,
            },
            "· equal to entry 12",
        ),
        (PcrVerdict::Unrelated, "✗ matches no entry"),
        (PcrVerdict::Reset, "✗ all zeros"),
    ];
    for (verdict, expected) in cases {
        let text = history_screen(verdict.clone());
        let line = line_with(&text, "2026-01-02T03:00:00Z");
        assert!(line.contains(expected), "{verdict:?}: {line}");
        if !matches!(verdict, PcrVerdict::Anchored { .. }) {
            assert!(!line.contains('✓'), "{verdict:?}: {line}");
        }
    }
}

#[test]
fn quote_history_counts_singular() {
    let text = history_screen(PcrVerdict::Unrelated);
    assert!(
        text.contains("(sealdesk-quotes.jsonl, 1 quote, newest"),
        "{text}"
    );
    assert!(!text.contains("1 quotes"), "{text}");
}

#[test]
fn quote_pane_anchored_with_export() {
    let mut app = quote_app(
        true,
        "anchored: PCR 23 equals the pcr_value of the head (entry 15)",
    );
    let dir = PathBuf::from("/chains/quote-20260102T030405Z");
    app.update(Msg::Exported(Ok(Export {
        command: sealdesk::tui::tpm_panel::checkquote_command(&dir, 23),
        dir,
    })));
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn quote_pane_diverged() {
    let app = quote_app(
        false,
        "diverged: PCR 23 matches no entry's pcr_value: entries were cut from the end of the chain, or PCR 23 was extended by another program",
    );
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn quote_pane_no_tpm() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 110, 26);
    tpm_unreachable(&mut app);
    press(&mut app, KeyCode::Char('Q'));
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn quote_pane_keys_queue_jobs() {
    let mut app = quote_app(true, "anchored");
    app.take_tpm_jobs();
    press(&mut app, KeyCode::Char('t'));
    assert!(app.tpm.quote.running);
    assert!(app
        .take_tpm_jobs()
        .iter()
        .any(|j| matches!(j, TpmJob::Quote)));
    app.tpm.quote.running = false;
    press(&mut app, KeyCode::Char('e'));
    let (_, text) = app.prompt.clone().expect("export prompt");
    assert!(text.contains("quote-"), "{text}");
    press(&mut app, KeyCode::Enter);
    assert!(app
        .take_tpm_jobs()
        .iter()
        .any(|j| matches!(j, TpmJob::Export { .. })));
    // q closes the pane, not the view.
    press(&mut app, KeyCode::Char('q'));
    assert_eq!(app.overlay, Overlay::None);
    assert!(!app.quit);
}

/// Seals in software mode through the form's preview and the job function, without a TPM.
#[test]
fn software_seal_matches_preview() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("decisions_sealed.jsonl");
    std::fs::copy(vector("fixed-timestamps"), &path).expect("copy fixture");
    let mut app = app_on(&path, 100, 32);
    tpm_unreachable(&mut app);
    press(&mut app, KeyCode::Char('S'));
    type_text(&mut app, "software seal");
    for _ in 0..3 {
        press(&mut app, KeyCode::BackTab);
    }
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Enter);
    let preview = app.form.preview.clone().expect("preview");
    assert_eq!(preview.mode, SealModeChoice::Software);

    let options = sealdesk::seal::SealOptions::default();
    let info = seal_entry(&path, &settings(), &preview, &options).expect("sealed");
    assert_eq!(info.index, 16);
    assert_eq!(info.id, preview.entry.id);
    let bytes = std::fs::read_to_string(&path).expect("read chain");
    let last = bytes.lines().last().expect("a line");
    assert!(last.contains(&preview.json), "{last}");
    let engine = verify_file(&path, VerifyKeys::default(), &mut |_| {}).expect("verifies");
    let report = engine.report("chain");
    assert!(report.valid, "{:?}", report.findings);

    // A second seal from the same preview links to a head that moved: rejected.
    let stale = seal_entry(&path, &settings(), &preview, &options).expect_err("stale");
    assert!(stale.stale_preview);
}

/// After a seal finds the chain changed, the new preview links to the file's current
/// head even while the view's report still shows the old one.
#[test]
fn stale_preview_rebuilt_on_file_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("decisions_sealed.jsonl");
    std::fs::copy(vector("fixed-timestamps"), &path).expect("copy fixture");
    let mut app = app_on(&path, 100, 32);
    tpm_unreachable(&mut app);
    press(&mut app, KeyCode::Char('S'));
    type_text(&mut app, "retry after append");
    app.form.mode = SealModeChoice::Software;
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Enter);
    let old = app.form.preview.clone().expect("first preview");

    sealdesk::demo::append_entry(&path, 1).expect("append an entry");
    let engine = verify_file(&path, VerifyKeys::default(), &mut |_| {}).expect("verifies");
    let new_head = engine.report("chain").head.expect("a head").hash;
    assert_ne!(old.previous_hash(), Some(new_head.as_str()));

    let options = sealdesk::seal::SealOptions::default();
    let failure = seal_entry(&path, &settings(), &old, &options).expect_err("stale");
    assert!(failure.stale_preview);
    app.update(Msg::SealDone(Err(failure)));
    assert_eq!(
        app.popup.as_ref().map(|p| p.title.as_str()),
        Some("chain changed")
    );
    let refreshed = app.form.preview.clone().expect("refreshed preview");
    assert_eq!(refreshed.previous_hash(), Some(new_head.as_str()));

    // The retry with the refreshed preview seals onto the new head.
    let info = seal_entry(&path, &settings(), &refreshed, &options).expect("retry seals");
    assert_eq!(info.index, 17);
}

/// Copies the fixture chain into a temporary directory and previews an entry on it.
fn preview_on_copy(
    mode: SealModeChoice,
) -> (tempfile::TempDir, PathBuf, sealdesk::tui::form::Preview) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("decisions_sealed.jsonl");
    std::fs::copy(vector("fixed-timestamps"), &path).expect("copy fixture");
    let app = app_on(&path, 100, 32);
    let previous = app
        .report
        .as_ref()
        .and_then(|r| r.head.clone())
        .map(|h| h.hash);
    let mut form = app.form.clone();
    form.reason = "why".to_owned();
    form.mode = mode;
    let preview = form
        .build_preview(previous.as_deref(), fixed_time())
        .expect("preview");
    (dir, path, preview)
}

#[test]
fn seal_job_reports_held_lock() {
    let (_dir, path, preview) = preview_on_copy(SealModeChoice::Software);
    let _held =
        sealdesk::seal::ChainLock::acquire(&path, std::time::Duration::from_secs(1), |_| {})
            .expect("take the lock");
    let options = sealdesk::seal::SealOptions {
        lock_timeout: std::time::Duration::from_millis(200),
        ..sealdesk::seal::SealOptions::default()
    };
    let failure = seal_entry(&path, &settings(), &preview, &options).expect_err("lock is held");
    assert_eq!(failure.title, "chain locked");
    assert!(failure.advice.contains("wait"), "{}", failure.advice);
    assert_eq!(entries_in(&path), 16);
}

#[test]
fn seal_job_reports_unreachable_tpm() {
    let (_dir, path, preview) = preview_on_copy(SealModeChoice::Tpm);
    let mut unreachable = settings();
    // Port 1 on the loopback address: nothing listens there, so the connection is refused.
    unreachable.tcti = TctiSelection::from_command_line("swtpm:host=127.0.0.1,port=1");
    let options = sealdesk::seal::SealOptions::default();
    let failure = seal_entry(&path, &unreachable, &preview, &options).expect_err("no TPM");
    assert_eq!(failure.title, "TPM unreachable");
    assert!(
        failure.advice.contains("software mode"),
        "{}",
        failure.advice
    );
    assert_eq!(
        entries_in(&path),
        16,
        "a failed TPM seal must not fall back to software"
    );
}

fn entries_in(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .expect("read chain")
        .lines()
        .count()
}

/// Builds the form in its three states at 80x24: empty, invalid and previewed.
fn form_80x24(state: &str) -> App {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 80, 24);
    match state {
        "empty" => {
            let head = head_pcr(&app);
            tpm_ready(&mut app, head, PcrVerdict::Anchored { head: Some(15) });
            press(&mut app, KeyCode::Char('S'));
        }
        "invalid" => {
            tpm_unreachable(&mut app);
            press(&mut app, KeyCode::Char('S'));
            app.form.operator.clear();
            press(&mut app, KeyCode::Tab);
            press(&mut app, KeyCode::Enter);
        }
        _ => {
            tpm_ready(&mut app, ZERO32, PcrVerdict::Reset);
            press(&mut app, KeyCode::Char('S'));
            type_text(&mut app, "manual review");
            press(&mut app, KeyCode::Enter);
            type_text(&mut app, "of INC-7");
            let previous = app
                .report
                .as_ref()
                .and_then(|r| r.head.clone())
                .map(|h| h.hash);
            app.form.new_segment = true;
            app.form.preview = Some(
                app.form
                    .build_preview(previous.as_deref(), fixed_time())
                    .expect("preview"),
            );
        }
    }
    assert!(app.form_open);
    app
}

#[test]
fn form_empty_80x24() {
    let app = form_80x24("empty");
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn form_invalid_80x24() {
    let app = form_80x24("invalid");
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn form_preview_80x24() {
    let app = form_80x24("preview");
    let text = screen(&app);
    let hash = sealdesk::chain::entry::hex32(&app.form.preview.as_ref().expect("preview").hash);
    assert!(text.contains(&hash), "the whole hash on one row:\n{text}");
    assert!(text.contains("segment starts"), "{text}");
    assert!(text.contains("Enter or y seals"), "{text}");
    insta::assert_snapshot!(draw(&app).backend());
}

/// Draws the PCR pane at 80x24 with `pcr` read from the TPM, or no TPM.
fn pcr_pane_80x24(verdict: PcrVerdict, pcr: Option<[u8; 32]>) -> String {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 80, 24);
    match pcr {
        Some(pcr) => tpm_ready(&mut app, pcr, verdict),
        None => tpm_unreachable(&mut app),
    }
    press(&mut app, KeyCode::Char('P'));
    app.tpm.probe_running = false;
    draw(&app).backend().to_string()
}

#[test]
fn pcr_anchored_80x24() {
    let path = vector("fixed-timestamps");
    let head = head_pcr(&app_on(&path, 80, 24));
    insta::assert_snapshot!(pcr_pane_80x24(
        PcrVerdict::Anchored { head: Some(15) },
        Some(head)
    ));
}

#[test]
fn pcr_diverged_80x24() {
    insta::assert_snapshot!(pcr_pane_80x24(PcrVerdict::Unrelated, Some([0xab; 32])));
}

#[test]
fn pcr_no_tpm_80x24() {
    insta::assert_snapshot!(pcr_pane_80x24(PcrVerdict::Unrelated, None));
}

#[test]
fn quote_anchored_80x24() {
    let mut app = quote_app(
        true,
        "anchored: PCR 23 equals the pcr_value of the head (entry 15)",
    );
    app.update(Msg::Resize {
        width: 80,
        height: 24,
    });
    let text = screen(&app);
    assert!(text.contains("(entry 15)"), "the verdict is whole:\n{text}");
    assert!(text.contains("j/k PgUp/PgDn scroll"), "{text}");
    insta::assert_snapshot!(draw(&app).backend());
}

#[test]
fn quote_pane_scrolls_80x24() {
    let mut app = quote_app(
        true,
        "anchored: PCR 23 equals the pcr_value of the head (entry 15)",
    );
    let dir = PathBuf::from("/chains/quote-20260102T030405Z");
    app.update(Msg::Exported(Ok(Export {
        command: sealdesk::tui::tpm_panel::checkquote_command(&dir, 23),
        dir,
    })));
    app.update(Msg::Resize {
        width: 80,
        height: 24,
    });
    let top = screen(&app);
    assert!(top.contains("limit:"), "{top}");
    assert!(!top.contains("2026-01-02T03:00:00Z"), "{top}");

    press(&mut app, KeyCode::End);
    let bottom = screen(&app);
    assert!(
        bottom.contains("2026-01-02T03:00:00Z"),
        "oldest quote:\n{bottom}"
    );
    assert!(bottom.contains("restartCount 0"), "{bottom}");
    assert!(!bottom.contains("limit:"), "{bottom}");

    // j and k move one row, never past either end; PgUp returns to the top.
    let max = app.tpm.quote.max_scroll.get();
    assert!(max > 0);
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.tpm.quote.scroll, max);
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.tpm.quote.scroll, max - 1);
    press(&mut app, KeyCode::PageUp);
    press(&mut app, KeyCode::PageUp);
    assert_eq!(app.tpm.quote.scroll, 0);
    assert_eq!(screen(&app), top);
    assert_eq!(app.overlay, Overlay::Quote);
}

#[test]
fn quote_no_tpm_80x24() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 80, 24);
    tpm_unreachable(&mut app);
    press(&mut app, KeyCode::Char('Q'));
    insta::assert_snapshot!(draw(&app).backend());
}

/// Returns the screen row that contains `text`, if any.
fn row_of(screen: &str, text: &str) -> Option<usize> {
    screen.lines().position(|l| l.contains(text))
}

#[test]
fn reason_limit_shown_when_typed() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    press(&mut app, KeyCode::Char('S'));
    app.form.reason = "x".repeat(3999);
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.form.reason.chars().count(), 4000);
    let shown = screen(&app);
    assert!(
        shown.contains("4000 / 4000 characters: limit reached"),
        "{shown}"
    );
    press(&mut app, KeyCode::Char('z'));
    assert_eq!(app.form.reason.chars().count(), 4000);
    assert!(app
        .form
        .notice
        .as_deref()
        .is_some_and(|n| n.contains("limit reached")));
}

#[test]
fn reason_limit_shown_when_pasted() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    press(&mut app, KeyCode::Char('S'));
    app.update(Msg::Paste("ab ".repeat(1500)));
    assert_eq!(app.form.reason.chars().count(), 4000);
    let notice = app.form.notice.clone().unwrap_or_default();
    assert!(
        notice.contains("4000 / 4000 characters: limit reached"),
        "{notice}"
    );
    assert!(
        notice.contains("the last 500 pasted characters"),
        "{notice}"
    );
    let shown = screen(&app);
    assert!(
        shown.contains("4000 / 4000 characters: limit reached"),
        "{shown}"
    );
}

#[test]
fn long_reason_keeps_form_on_screen() {
    for (width, height) in [(80, 24), (120, 40)] {
        let path = vector("fixed-timestamps");
        let mut app = app_on(&path, width, height);
        press(&mut app, KeyCode::Char('S'));
        let mut reason = String::new();
        for n in 0..40 {
            reason.push_str(&format!("line {n} {}\n", "word ".repeat(n % 30)));
        }
        reason.push_str("LAST LINE");
        app.update(Msg::Paste(reason));
        app.form.operator.clear();
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Enter);
        assert!(app.form.preview.is_none());
        let shown = screen(&app);
        let at = format!("{width}x{height}:\n{shown}");
        // The box stays scrolled to the end, where typing continues.
        assert!(row_of(&shown, "LAST LINE").is_some(), "{at}");
        assert!(row_of(&shown, "▶ event id").is_some(), "{at}");
        for label in ["mode", "reason", "operator", "new segment", "force"] {
            assert!(row_of(&shown, label).is_some(), "{label} missing at {at}");
        }
        assert!(row_of(&shown, "required: who decides").is_some(), "{at}");
        assert!(row_of(&shown, "earlier rows hidden").is_some(), "{at}");
        assert!(row_of(&shown, "Esc closes").is_some(), "{at}");

        press(&mut app, KeyCode::BackTab);
        let shown = screen(&app);
        let at = format!("{width}x{height}:\n{shown}");
        assert!(row_of(&shown, "LAST LINE▏").is_some(), "{at}");
        assert!(row_of(&shown, "Esc closes").is_some(), "{at}");
        assert!(row_of(&shown, "force").is_some(), "{at}");
    }
}

#[test]
fn new_segment_hint_says_pcr_is_zero() {
    let path = vector("fixed-timestamps");
    let mut app = app_on(&path, 100, 32);
    tpm_ready(&mut app, ZERO32, PcrVerdict::Reset);
    let hint = app.form_context().new_segment_needed.unwrap_or_default();
    assert!(
        hint.contains("the TPM's PCR 23 is all zeros, not the head's pcr_value"),
        "{hint}"
    );
    assert!(!hint.contains("pcr_value (all zeros)"), "{hint}");
}

#[test]
fn demo_tcti_not_called_command_line() {
    let path = vector("fixed-timestamps");
    let mut settings = settings();
    settings.tcti_set_by = Some("the demo".to_owned());
    let mut app = App::new(path.clone(), true).with_tpm(settings);
    app.update(Msg::Resize {
        width: 120,
        height: 40,
    });
    press(&mut app, KeyCode::Char('S'));
    let shown = screen(&app);
    assert!(shown.contains("(set by the demo)"), "{shown}");
    assert!(!shown.contains("(from --tcti)"), "{shown}");
}

/// The probe compares the TPM with the chain the worker verified, so it waits
/// for that verification instead of verifying the file a second time.
#[test]
fn probe_waits_for_verification_and_reuses_it() {
    // A copy, since the probe takes the chain's lock beside the file.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("decisions_sealed.jsonl");
    std::fs::copy(vector("fixed-timestamps"), &path).expect("copy the fixture");
    let engine = verify_file(&path, VerifyKeys::default(), &mut |_| {}).expect("fixture verifies");
    let offsets: Vec<u64> = (0..engine.entries())
        .filter_map(|i| engine.entry_offset(i))
        .collect();
    let report = Arc::new(engine.report(&path.display().to_string()));

    let mut app = App::new(path.clone(), true).with_tpm(settings());
    app.update(Msg::Worker(Update::Reverifying { generation: 1 }));
    press(&mut app, KeyCode::Char('P'));
    press(&mut app, KeyCode::Char('r'));
    assert!(
        app.take_tpm_jobs().is_empty(),
        "no probe while the worker verifies"
    );

    app.update(Msg::Worker(Update::Verified {
        generation: 1,
        base: 0,
        offsets: offsets.clone(),
        report: Arc::clone(&report),
        seal_modes: "software".to_owned(),
        partial_tail: false,
    }));
    let jobs = app.take_tpm_jobs();
    let verified = jobs
        .iter()
        .find_map(|j| match j {
            TpmJob::Probe(Some(verified)) => Some(verified),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a probe with the verified chain: {jobs:?}"));
    assert!(Arc::ptr_eq(&verified.report, app.report.as_ref().unwrap()));
    assert_eq!(*verified.offsets, offsets);

    // The probe reads the head from the file through the offsets it was given.
    // No TPM at this device path, so only the chain side is read.
    let no_tpm = TpmSettings {
        tcti: TctiSelection::from_command_line("device:/nonexistent/sealdesk-test-tpm"),
        ..settings()
    };
    let probe = probe(&path, &no_tpm, Some(verified.clone()));
    assert_eq!(probe.chain_error, None);
    let head = probe.head.expect("the probe found the head");
    assert_eq!(head.index, offsets.len() as u64 - 1);
    assert_eq!(head.pcr_value, Some(head_pcr(&app)));
}
