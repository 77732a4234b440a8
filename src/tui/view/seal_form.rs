//! The seal form and its preview.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::chain::entry::hex32;
use crate::tui::app::App;
use unicode_width::UnicodeWidthChar;

use crate::chain::line::is_invisible;
use crate::tui::form::{Field, SealForm, SealModeChoice, ACTIONS, DECISIONS, MAX_REASON};
use crate::tui::sanitize::{escape, plain, spans};
use crate::tui::tpm_panel::TpmStatus;

use super::theme::Theme;

/// Frames of the spinner shown while sealing.
pub const SPINNER: [&str; 4] = ["|", "/", "-", "\\"];

fn choice(options: &[&str], selected: usize) -> String {
    options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            if i == selected {
                format!("[{o}]")
            } else {
                format!(" {o} ")
            }
        })
        .collect::<Vec<_>>()
        .join("")
}

fn checkbox(on: bool, text: &str) -> String {
    format!("[{}] {text}", if on { "x" } else { " " })
}

/// Describes the key that seals in the chosen mode.
fn key_text(app: &App, mode: SealModeChoice) -> String {
    match mode {
        SealModeChoice::Software => app.tpm.settings.secret.describe(),
        SealModeChoice::Tpm => {
            let tcti = plain(&app.tpm.settings.tcti_text());
            match &app.tpm.status {
                TpmStatus::Ready(facts) => {
                    format!("TCTI {tcti}, signing key {}", facts.signing_key)
                }
                TpmStatus::Checking => format!("TCTI {tcti}, TPM being checked"),
                TpmStatus::Unreachable(_) | TpmStatus::NotBuilt => {
                    format!("TCTI {tcti}, no TPM reachable")
                }
            }
        }
    }
}

/// Returns whether the checkbox `field` is ticked.
fn checked(form: &SealForm, field: Field) -> bool {
    match field {
        Field::NewSegment => form.new_segment,
        Field::Force => form.force,
        _ => false,
    }
}

/// Columns before a field's value: the focus marker, the label and a space.
const GUTTER: usize = 15;

/// Most rows the reason box takes, however tall the terminal is.
const MAX_REASON_ROWS: usize = 8;

/// Size of the reason box: the columns inside the form and the rows it may take.
#[derive(Debug, Clone, Copy)]
struct ReasonLayout {
    width: usize,
    rows: usize,
}

/// Terminal columns `c` takes once sanitized: an escape such as `\n` for a hidden character.
fn shown_width(c: char) -> usize {
    if is_invisible(c) {
        escape(c).chars().count()
    } else {
        c.width().unwrap_or(0)
    }
}

/// Cuts the reason into display rows of at most `width` columns: a row per line the
/// operator typed, and more where a line is longer than `width`.
fn reason_rows(reason: &str, width: usize) -> Vec<String> {
    let width = width.max(2);
    let mut rows = Vec::new();
    for line in reason.split('\n') {
        let mut row = String::new();
        let mut used = 0;
        for c in line.chars() {
            let w = shown_width(c);
            if used + w > width && !row.is_empty() {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            row.push(c);
            used += w;
        }
        rows.push(row);
    }
    rows
}

/// Adds the reason box to `lines`: at most `layout.rows` rows, scrolled to the end
/// where the cursor is, then a line with the length when rows are hidden or the
/// limit is reached, then the validation message.
fn reason_lines(
    form: &SealForm,
    theme: &Theme,
    label: Vec<Span<'static>>,
    focused: bool,
    layout: ReasonLayout,
    lines: &mut Vec<Line<'static>>,
) {
    // One column stays free for the cursor.
    let rows = reason_rows(&form.reason, layout.width.saturating_sub(GUTTER + 1));
    let shown = layout.rows.max(1).min(rows.len());
    let hidden = rows.len() - shown;
    let count = form.reason.chars().count();
    let mut status = Vec::new();
    if hidden > 0 {
        status.push(format!("↑ {hidden} earlier rows hidden"));
    }
    if form.reason_at_limit() {
        status.push(format!("{count} / {MAX_REASON} characters: limit reached"));
    } else if hidden > 0 {
        status.push(format!("{count} / {MAX_REASON} characters"));
    }
    let error = form.error(Field::Reason);
    let single = shown == 1 && status.is_empty();
    for (n, text) in rows[hidden..].iter().enumerate() {
        let mut row = if n == 0 {
            label.clone()
        } else {
            vec![Span::raw(" ".repeat(GUTTER))]
        };
        row.extend(spans(text, theme.text(), theme.escape()));
        if focused && n + 1 == shown {
            row.push(Span::styled("▏", theme.text()));
        }
        if let (true, Some(error)) = (single, error) {
            row.push(Span::styled(format!("  ✗ {error}"), theme.bad()));
        }
        lines.push(Line::from(row));
    }
    if !status.is_empty() {
        let style = if form.reason_at_limit() {
            theme.busy()
        } else {
            theme.dim()
        };
        lines.push(Line::from(Span::styled(
            format!("{}{}", " ".repeat(GUTTER), status.join(" · ")),
            style,
        )));
    }
    if let (false, Some(error)) = (single, error) {
        lines.push(Line::from(Span::styled(
            format!("{}✗ {error}", " ".repeat(GUTTER)),
            theme.bad(),
        )));
    }
}

fn field_lines(
    form: &SealForm,
    app: &App,
    theme: &Theme,
    layout: ReasonLayout,
) -> Vec<Line<'static>> {
    let context = app.form_context();
    let mut lines = Vec::new();
    for (i, field) in Field::ALL.iter().enumerate() {
        let focused = i == form.focus;
        let marker = if focused { "▶ " } else { "  " };
        let label = format!("{marker}{:<12}", field.label());
        let value = match field {
            Field::Mode => match form.mode {
                SealModeChoice::Tpm => "[TPM]  software ".to_owned(),
                SealModeChoice::Software => " TPM  [software]".to_owned(),
            },
            Field::Action => choice(&ACTIONS, form.action),
            Field::Decision => choice(&DECISIONS, form.decision),
            Field::Reason => String::new(),
            Field::EventId => form.event_id.clone(),
            Field::IncidentId => form.incident_id.clone(),
            Field::Operator => form.operator.clone(),
            Field::NewSegment => checkbox(
                form.new_segment,
                &format!(
                    "start a new PCR segment (resets PCR {})",
                    app.tpm.settings.pcr
                ),
            ),
            Field::Force => checkbox(
                form.force,
                "seal anyway (a head with error findings, or another check --force overrides)",
            ),
        };
        let label_style = if focused {
            theme.selected()
        } else {
            theme.header()
        };
        let mut row = vec![Span::styled(label, label_style), Span::raw(" ")];
        if *field == Field::Reason {
            reason_lines(form, theme, row, focused, layout, &mut lines);
            continue;
        }
        row.extend(spans(&value, theme.text(), theme.escape()));
        let is_text = matches!(field, Field::EventId | Field::IncidentId | Field::Operator);
        if focused && is_text {
            row.push(Span::styled("▏", theme.text()));
        }
        let hint = match field {
            Field::NewSegment if form.mode == SealModeChoice::Tpm => {
                context.new_segment_needed.clone()
            }
            Field::Force => context.head_broken.clone(),
            _ => None,
        };
        if let Some(error) = form.error(*field) {
            row.push(Span::styled(format!("  ✗ {}", plain(error)), theme.bad()));
        } else if let (Some(hint), false) = (hint, checked(form, *field)) {
            row.push(Span::styled(format!("  {}", plain(&hint)), theme.busy()));
        } else if *field == Field::Mode {
            row.push(Span::styled(
                format!("  {}", key_text(app, form.mode)),
                theme.dim(),
            ));
        }
        lines.push(Line::from(row));
    }
    lines
}

/// Cuts `text` into rows of `width` characters, so that wrapping never breaks at a
/// space and makes the JSON look as if it held a line break.
fn hard_wrap(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(width.max(1))
        .map(|chunk| chunk.iter().collect())
        .collect()
}

/// Breaks `text` at spaces into rows of at most `width` characters; a word longer
/// than a row is cut.
pub(super) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in text.split(' ') {
        let needed = row.chars().count() + usize::from(!row.is_empty()) + word.chars().count();
        if !row.is_empty() && needed > width {
            rows.push(std::mem::take(&mut row));
        }
        if !row.is_empty() {
            row.push(' ');
        }
        row.push_str(word);
        while row.chars().count() > width {
            let rest: String = row.chars().skip(width).collect();
            rows.push(row.chars().take(width).collect());
            row = rest;
        }
    }
    rows.push(row);
    rows
}

/// Width of the label column of the preview.
const LABEL: usize = 11;

/// Rows of one preview value after its label. A value without spaces (a hash or a
/// fingerprint) that does not fit beside the label moves whole to the rows below it, so
/// that it is never split in the middle when it fits in a row.
fn labelled_rows(label: &str, value: &str, width: usize) -> Vec<String> {
    let indent = " ".repeat(LABEL);
    let beside = width.saturating_sub(LABEL);
    if !value.contains(' ') && value.chars().count() > beside {
        let mut rows = vec![label.to_owned()];
        rows.extend(hard_wrap(value, width));
        return rows;
    }
    wrap_words(value, beside)
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            if i == 0 {
                format!("{label:<LABEL$}{row}")
            } else {
                format!("{indent}{row}")
            }
        })
        .collect()
}

/// Rows `line` takes in a paragraph `width` columns wide that wraps at spaces.
fn wrapped_height(line: &Line<'_>, width: usize) -> usize {
    let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
    wrap_words(&text, width).len()
}

/// Lines of the form, its help and its notice. The reason box gets the rows the other
/// lines leave free, between 1 and [`MAX_REASON_ROWS`], so that every field, the
/// messages and the help stay on screen.
fn form_lines(app: &App, theme: &Theme, area: Rect) -> Vec<Line<'static>> {
    let form = &app.form;
    let width = usize::from(area.width.saturating_sub(2));
    let height = usize::from(area.height.saturating_sub(2));
    let build = |rows: usize| {
        let mut lines = field_lines(form, app, theme, ReasonLayout { width, rows });
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            "Tab/↓ next field · Shift-Tab/↑ previous · ←/→/Space change a choice or box · Enter in the reason inserts a line break · Enter elsewhere previews · Esc closes (the form keeps what was typed)",
            theme.dim(),
        )));
        if let Some(notice) = &form.notice {
            lines.push(Line::from(Span::styled(plain(notice), theme.busy())));
        }
        lines
    };
    let smallest = build(1);
    let used: usize = smallest.iter().map(|l| wrapped_height(l, width)).sum();
    let rows = (height + 1).saturating_sub(used).clamp(1, MAX_REASON_ROWS);
    if rows == 1 {
        return smallest;
    }
    build(rows)
}

fn preview_lines(form: &SealForm, app: &App, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let Some(preview) = &form.preview else {
        return Vec::new();
    };
    let pcr = app.tpm.settings.pcr;
    let mode = match preview.mode {
        SealModeChoice::Tpm => "TPM",
        SealModeChoice::Software => "software (HMAC-SHA256)",
    };
    let mut lines = vec![
        Line::from(Span::styled(
            "Preview: the entry exactly as it will be sealed",
            theme.header(),
        )),
        Line::from(format!("id         {}", plain(&preview.entry.id))),
        Line::from(format!("timestamp  {}", preview.timestamp)),
        Line::from("entry (the Go JSON bytes that are hashed):"),
    ];
    for row in hard_wrap(&preview.json, width) {
        lines.push(Line::from(spans(&row, theme.text(), theme.escape())));
    }
    let plain_rows = |label: &str, value: &str, lines: &mut Vec<Line<'static>>| {
        for row in labelled_rows(label, value, width) {
            lines.push(Line::from(row));
        }
    };
    plain_rows("SHA-256", &hex32(&preview.hash), &mut lines);
    plain_rows("mode", mode, &mut lines);
    match (preview.mode, &app.tpm.status) {
        (SealModeChoice::Tpm, TpmStatus::Ready(facts)) => {
            let tcti = plain(&app.tpm.settings.tcti_text());
            plain_rows("TCTI", &tcti, &mut lines);
            plain_rows("key", &facts.signing_key, &mut lines);
        }
        (mode, _) => plain_rows("key", &key_text(app, mode), &mut lines),
    }
    if preview.mode == SealModeChoice::Tpm && preview.new_segment {
        let text = "is reset first if it is not at the head's pcr_value: a new segment starts";
        for row in labelled_rows(&format!("PCR {pcr}"), text, width) {
            lines.push(Line::from(Span::styled(row, theme.busy())));
        }
    }
    if preview.force {
        let text = "has error findings; sealing onto it anyway";
        for row in labelled_rows("head", text, width) {
            lines.push(Line::from(Span::styled(row, theme.bad())));
        }
    }
    lines.push(Line::from(Span::styled(
        "The signature and the pcr_value are made at sealing.",
        theme.dim(),
    )));
    let action = if form.sealing {
        format!(
            "{} sealing… (waiting for the lock and the TPM)",
            SPINNER[app.spinner % SPINNER.len()]
        )
    } else {
        "Enter or y seals · Esc goes back to the form".to_owned()
    };
    lines.push(Line::from(Span::styled(action, theme.busy())));
    lines
}

/// Keeps the last line (what Enter does) visible when the preview is taller than
/// `height` rows, and says how many rows above it are hidden.
fn pin_last_line(lines: &mut Vec<Line<'static>>, height: usize, theme: &Theme) {
    if lines.len() <= height || height < 2 {
        return;
    }
    let Some(last) = lines.pop() else { return };
    let keep = height - 2;
    let hidden = lines.len() - keep;
    lines.truncate(keep);
    lines.push(Line::from(Span::styled(
        format!("… {hidden} more rows: make the terminal taller to see the whole preview"),
        theme.busy(),
    )));
    lines.push(last);
}

pub fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let form = &app.form;
    let mut lines = if form.preview.is_some() {
        preview_lines(form, app, theme, usize::from(area.width.saturating_sub(2)))
    } else {
        form_lines(app, theme, area)
    };
    let title = if form.preview.is_some() {
        "seal a decision · preview"
    } else {
        "seal a decision"
    };
    if form.preview.is_some() {
        pin_last_line(
            &mut lines,
            usize::from(area.height.saturating_sub(2)),
            theme,
        );
    }
    let block = Block::default().borders(Borders::ALL).title(title);
    frame.render_widget(Clear, area);
    let mut paragraph = Paragraph::new(lines).block(block);
    // The preview cuts its long rows itself; word wrapping would move JSON at its spaces.
    if form.preview.is_none() {
        paragraph = paragraph.wrap(Wrap { trim: false });
    }
    frame.render_widget(paragraph, area);
}
