//! The seal form: fields, typing rules, validation and the preview of the entry.
//!
//! Keys: Tab and Shift-Tab (or ↓ and ↑) move between fields, and ← → and Space change
//! a choice. Enter in the reason inserts a line break. Enter on any other field opens
//! the preview, where Enter seals and Esc goes back.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::chain::crypto::sha256;
use crate::chain::entry::{DecisionEntry, GENESIS};
use crate::chain::gostr::GoEscapes;
use crate::chain::gotime::GoTime;
use crate::chain::line::is_invisible;

/// The actions the form offers.
pub const ACTIONS: [&str; 4] = ["ingest", "correlate", "respond", "playbook"];
/// The decisions the form offers.
pub const DECISIONS: [&str; 3] = ["allow", "deny", "escalate"];

/// Maximum length of the reason in characters, and of the other text fields.
pub const MAX_REASON: usize = 4000;
const MAX_FIELD: usize = 200;

/// The signing mode the operator chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealModeChoice {
    Tpm,
    Software,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Mode,
    Action,
    Decision,
    Reason,
    EventId,
    IncidentId,
    Operator,
    NewSegment,
    Force,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Mode,
        Field::Action,
        Field::Decision,
        Field::Reason,
        Field::EventId,
        Field::IncidentId,
        Field::Operator,
        Field::NewSegment,
        Field::Force,
    ];

    /// Returns the label shown before the field.
    pub fn label(self) -> &'static str {
        match self {
            Field::Mode => "mode",
            Field::Action => "action",
            Field::Decision => "decision",
            Field::Reason => "reason",
            Field::EventId => "event id",
            Field::IncidentId => "incident id",
            Field::Operator => "operator",
            Field::NewSegment => "new segment",
            Field::Force => "force",
        }
    }
}

/// Facts from the view that validation needs.
#[derive(Debug, Clone, Default)]
pub struct FormContext {
    /// Reason TPM mode cannot seal now (no TPM reachable), if any.
    pub tpm_unavailable: Option<String>,
    /// Reason a new PCR segment is needed, if any.
    pub new_segment_needed: Option<String>,
    /// Reason the head is broken, if any.
    pub head_broken: Option<String>,
}

/// The entry as it will be sealed, fixed at preview time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub entry: DecisionEntry,
    /// The Go JSON bytes that are hashed.
    pub json: String,
    /// The timestamp as the JSON has it (Go's RFC3339Nano).
    pub timestamp: String,
    pub hash: [u8; 32],
    pub mode: SealModeChoice,
    pub new_segment: bool,
    pub force: bool,
}

impl Preview {
    /// Returns the head hash the entry links to, `None` for a first entry.
    pub fn previous_hash(&self) -> Option<&str> {
        (self.entry.previous_hash != GENESIS).then_some(self.entry.previous_hash.as_str())
    }
}

/// Result of a key in the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormOutcome {
    Stay,
    Close,
    /// Show the preview (validation passed).
    Preview,
    /// Seal the previewed entry.
    Seal,
}

#[derive(Debug, Clone)]
pub struct SealForm {
    pub focus: usize,
    pub mode: SealModeChoice,
    pub action: usize,
    pub decision: usize,
    pub reason: String,
    pub event_id: String,
    pub incident_id: String,
    pub operator: String,
    pub new_segment: bool,
    pub force: bool,
    /// Validation messages per field, set by the last attempt to preview.
    pub errors: Vec<(Field, String)>,
    /// A one-off message, such as a rejected character.
    pub notice: Option<String>,
    pub preview: Option<Preview>,
    pub sealing: bool,
}

/// Returns the login name: `$USER`, else `$LOGNAME`, else getlogin(3), else the
/// user database's name for the real user id, else empty.
pub fn login_name() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Some(user) = std::env::var(var).ok().filter(|u| !u.is_empty()) {
            return user;
        }
    }
    // SAFETY: getlogin returns NULL or a pointer to a NUL-terminated buffer, copied at once.
    let name = unsafe { libc::getlogin() };
    if !name.is_null() {
        // SAFETY: `name` is non-null and NUL-terminated, as getlogin(3) guarantees.
        return unsafe { std::ffi::CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
    }
    let mut buffer = vec![0 as libc::c_char; 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buffer` outlives the use of `entry`.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || entry.pw_name.is_null() {
        return String::new();
    }
    // SAFETY: getpwuid_r succeeded, so pw_name points to a NUL-terminated string in `buffer`.
    unsafe { std::ffi::CStr::from_ptr(entry.pw_name) }
        .to_string_lossy()
        .into_owned()
}

impl SealForm {
    /// Creates an empty form: TPM mode, escalate preselected, the operator from the
    /// login name, the cursor in the reason.
    pub fn new(operator: String) -> SealForm {
        SealForm {
            focus: 3,
            mode: SealModeChoice::Tpm,
            action: 0,
            decision: 2,
            reason: String::new(),
            event_id: String::new(),
            incident_id: String::new(),
            operator,
            new_segment: false,
            force: false,
            errors: Vec::new(),
            notice: None,
            preview: None,
            sealing: false,
        }
    }

    pub fn field(&self) -> Field {
        Field::ALL[self.focus.min(Field::ALL.len() - 1)]
    }

    /// Returns the validation message of `field`, if any.
    pub fn error(&self, field: Field) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Clears what an entry needs, after a seal: keeps mode, action, decision and operator.
    pub fn clear_after_seal(&mut self) {
        self.reason.clear();
        self.event_id.clear();
        self.incident_id.clear();
        self.new_segment = false;
        self.force = false;
        self.errors.clear();
        self.preview = None;
        self.sealing = false;
        self.focus = 3;
    }

    fn text_mut(&mut self, field: Field) -> Option<(&mut String, usize)> {
        match field {
            Field::Reason => Some((&mut self.reason, MAX_REASON)),
            Field::EventId => Some((&mut self.event_id, MAX_FIELD)),
            Field::IncidentId => Some((&mut self.incident_id, MAX_FIELD)),
            Field::Operator => Some((&mut self.operator, MAX_FIELD)),
            _ => None,
        }
    }

    fn change_choice(&mut self, forward: bool) {
        let step = |i: usize, n: usize| {
            if forward {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            }
        };
        match self.field() {
            Field::Mode => {
                self.mode = match self.mode {
                    SealModeChoice::Tpm => SealModeChoice::Software,
                    SealModeChoice::Software => SealModeChoice::Tpm,
                }
            }
            Field::Action => self.action = step(self.action, ACTIONS.len()),
            Field::Decision => self.decision = step(self.decision, DECISIONS.len()),
            Field::NewSegment => self.new_segment = !self.new_segment,
            Field::Force => self.force = !self.force,
            _ => {}
        }
    }

    fn type_char(&mut self, c: char) {
        let field = self.field();
        let Some((text, max)) = self.text_mut(field) else {
            if c == ' ' {
                self.change_choice(true);
            } else {
                self.notice = Some(format!(
                    "{} is a choice: change it with ←/→ or Space",
                    field.label()
                ));
            }
            return;
        };
        if is_invisible(c) {
            self.notice = Some(format!(
                "U+{:04X} rejected: control, bidirectional and zero-width characters cannot be typed",
                u32::from(c)
            ));
            return;
        }
        if text.chars().count() >= max {
            self.notice = Some(limit_notice(field, max, ""));
            return;
        }
        text.push(c);
    }

    /// Returns whether the reason has reached [`MAX_REASON`] characters, so that the
    /// form shows the limit beside it.
    pub fn reason_at_limit(&self) -> bool {
        self.reason.chars().count() >= MAX_REASON
    }

    /// Inserts pasted text into the focused text field, cleaned by [`clean_paste`] and
    /// cut at the field's maximum length. It never moves the focus, opens the preview
    /// or seals, whatever keys the text contains.
    pub fn paste(&mut self, text: &str) {
        self.notice = None;
        if self.sealing || self.preview.is_some() {
            self.notice = Some("paste ignored: the preview is open".to_owned());
            return;
        }
        let field = self.field();
        let Some((value, max)) = self.text_mut(field) else {
            self.notice = Some(format!(
                "paste ignored: {} is a choice, not a text field",
                field.label()
            ));
            return;
        };
        let cleaned = clean_paste(text, field == Field::Reason);
        let room = max.saturating_sub(value.chars().count());
        let pasted = cleaned.chars().count();
        value.extend(cleaned.chars().take(room));
        if pasted > room {
            let dropped = pasted - room;
            self.notice = Some(limit_notice(
                field,
                max,
                &format!("; the last {dropped} pasted characters were not inserted"),
            ));
        }
    }

    fn type_line_break(&mut self) {
        if self.reason_at_limit() {
            self.notice = Some(limit_notice(Field::Reason, MAX_REASON, ""));
        } else {
            self.reason.push('\n');
        }
    }

    /// Applies a key while the form is open.
    pub fn on_key(&mut self, key: KeyEvent) -> FormOutcome {
        self.notice = None;
        if self.sealing {
            return FormOutcome::Stay;
        }
        if self.preview.is_some() {
            return match key.code {
                KeyCode::Enter | KeyCode::Char('y') => FormOutcome::Seal,
                KeyCode::Esc | KeyCode::Char('n') => {
                    self.preview = None;
                    FormOutcome::Stay
                }
                _ => FormOutcome::Stay,
            };
        }
        let n = Field::ALL.len();
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let control = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => return FormOutcome::Close,
            KeyCode::Char('c') if control => return FormOutcome::Close,
            KeyCode::Tab | KeyCode::Down => self.focus = (self.focus + 1) % n,
            KeyCode::BackTab | KeyCode::Up => self.focus = (self.focus + n - 1) % n,
            KeyCode::Left => self.change_choice(false),
            KeyCode::Right => self.change_choice(true),
            KeyCode::Enter if self.field() == Field::Reason && !alt => self.type_line_break(),
            KeyCode::Enter => return FormOutcome::Preview,
            KeyCode::Backspace => {
                let field = self.field();
                if let Some((text, _)) = self.text_mut(field) {
                    text.pop();
                }
            }
            KeyCode::Char(_) if control => {
                self.notice = Some("control keys cannot be typed into the form".to_owned());
            }
            KeyCode::Char(c) => self.type_char(c),
            _ => {}
        }
        FormOutcome::Stay
    }

    /// Checks the fields; sets the messages shown beside them and returns whether all pass.
    pub fn validate(&mut self, context: &FormContext) -> bool {
        let mut errors = Vec::new();
        if self.mode == SealModeChoice::Tpm {
            if let Some(why) = &context.tpm_unavailable {
                errors.push((
                    Field::Mode,
                    format!("no TPM: {why}. Press → to seal in software mode instead"),
                ));
            } else if let Some(why) = &context.new_segment_needed {
                if !self.new_segment {
                    errors.push((
                        Field::NewSegment,
                        format!(
                            "{why}; tick this (Space) to reset the PCR and start a new segment"
                        ),
                    ));
                }
            }
        }
        if self.reason.trim().is_empty() {
            errors.push((Field::Reason, "required: say why".to_owned()));
        }
        if self.operator.trim().is_empty() {
            errors.push((Field::Operator, "required: who decides".to_owned()));
        }
        for (field, text) in [
            (Field::EventId, &self.event_id),
            (Field::IncidentId, &self.incident_id),
            (Field::Operator, &self.operator),
        ] {
            if text != text.trim() {
                errors.push((field, "no leading or trailing spaces".to_owned()));
            }
        }
        if let Some(why) = &context.head_broken {
            if !self.force {
                errors.push((
                    Field::Force,
                    format!("{why}; tick this (Space) to seal onto it anyway"),
                ));
            }
        }
        self.errors = errors;
        self.errors.is_empty()
    }

    /// Builds the entry with a fresh id and timestamp, linked to `previous_hash`.
    pub fn build_preview(
        &self,
        previous_hash: Option<&str>,
        now: GoTime,
    ) -> Result<Preview, String> {
        let entry = DecisionEntry {
            id: format!("DEC-{}", now.unix_nanos()),
            timestamp: now,
            action: ACTIONS[self.action % ACTIONS.len()].to_owned(),
            decision: DECISIONS[self.decision % DECISIONS.len()].to_owned(),
            reason: self.reason.clone(),
            event_id: self.event_id.clone(),
            incident_id: self.incident_id.clone(),
            operator: self.operator.clone(),
            previous_hash: previous_hash.unwrap_or(GENESIS).to_owned(),
        };
        let mut json = Vec::new();
        entry
            .append_go_json(&mut json, GoEscapes::Go122)
            .map_err(|e| format!("cannot encode the timestamp: {e}"))?;
        let hash = sha256(&json);
        let mut stamp = Vec::new();
        now.append_json(&mut stamp)
            .map_err(|e| format!("cannot encode the timestamp: {e}"))?;
        Ok(Preview {
            timestamp: String::from_utf8_lossy(&stamp).trim_matches('"').to_owned(),
            json: String::from_utf8_lossy(&json).into_owned(),
            entry,
            hash,
            mode: self.mode,
            new_segment: self.new_segment,
            force: self.force,
        })
    }
}

/// Describes a text field that is full, e.g. "reason: 4000 / 4000 characters: limit
/// reached", followed by `more`.
fn limit_notice(field: Field, max: usize, more: &str) -> String {
    format!(
        "{}: {max} / {max} characters: limit reached{more}",
        field.label()
    )
}

/// Cleans pasted text for a form field or prompt.
///
/// Terminal escape sequences are dropped whole: CSI (`ESC [` or U+009B, up to a final
/// byte in `@`..=`~`), OSC, DCS, SOS, PM and APC strings (`ESC ]`, `ESC P`, `ESC X`,
/// `ESC ^`, `ESC _` or their C1 forms, up to BEL or `ESC \`), and other two-character
/// `ESC x` sequences. Tabs and line breaks become spaces, except that with
/// `keep_line_breaks` a CR LF, CR or LF becomes one `\n`. Every other character for
/// which [`is_invisible`] is true is dropped.
pub fn clean_paste(text: &str, keep_line_breaks: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // A two-character sequence, or a lone ESC at the end.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\r' | '\n' if keep_line_breaks => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\t' | '\r' | '\n' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c if is_invisible(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Skips the rest of a CSI sequence: parameter and intermediate bytes, then the final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
    }
}

/// Skips the rest of an OSC, DCS, SOS, PM or APC string, up to BEL, `ESC \` or ST (U+009C).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn invisible_characters_rejected() {
        let mut form = SealForm::new("alice".into());
        for c in ['a', '\u{202e}', '\u{200b}', '\u{1b}', 'b'] {
            form.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(form.reason, "ab");
    }

    #[test]
    fn paste_cleaning_cases() {
        let cases = [
            ("a\tb\nc", false, "a b c"),
            ("a\tb\r\nc\rd", true, "a b\nc\nd"),
            ("x\u{1b}]0;title\u{7}y", false, "xy"),
            ("x\u{1b}]8;;http://e\u{1b}\\y", false, "xy"),
            ("x\u{1b}[31;1my\u{1b}[0m", false, "xy"),
            ("x\u{9b}2Jy", false, "xy"),
            ("a\u{202e}b\u{200b}c\u{0}", true, "abc"),
            ("x\u{1b}cy", false, "xy"),
            ("unterminated\u{1b}]0;never", false, "unterminated"),
        ];
        for (input, keep, expected) in cases {
            assert_eq!(clean_paste(input, keep), expected, "input {input:?}");
        }
    }

    #[test]
    fn enter_in_reason_breaks_line() {
        let mut form = SealForm::new("alice".into());
        form.on_key(key(KeyCode::Char('a')));
        assert_eq!(form.on_key(key(KeyCode::Enter)), FormOutcome::Stay);
        form.on_key(key(KeyCode::Char('b')));
        assert_eq!(form.reason, "a\nb");
        form.focus = 4;
        assert_eq!(form.on_key(key(KeyCode::Enter)), FormOutcome::Preview);
    }

    #[test]
    fn tpm_mode_without_tpm_is_invalid() {
        let mut form = SealForm::new("alice".into());
        form.reason = "why".into();
        let context = FormContext {
            tpm_unavailable: Some("no device".into()),
            ..FormContext::default()
        };
        assert!(!form.validate(&context));
        assert!(form.error(Field::Mode).is_some());
        form.mode = SealModeChoice::Software;
        assert!(form.validate(&context));
    }

    #[test]
    fn preview_hash_is_hash_of_json() {
        let mut form = SealForm::new("alice".into());
        form.reason = "line one\nline two".into();
        let preview = form
            .build_preview(None, GoTime::now_local())
            .expect("preview");
        assert_eq!(preview.hash, sha256(preview.json.as_bytes()));
        assert!(preview.json.contains("\"previous_hash\":\"genesis\""));
        assert!(preview.json.contains("line one\\nline two"));
        assert_eq!(preview.entry.decision, "escalate");
    }
}
