//! Checks of a decision's fields before it is sealed.
//!
//! `decision` must be allow, deny or escalate, the values the reference logger writes.
//! `action` may be any non-empty text, because operators add their own actions, but an
//! action other than the reference's (ingest, correlate, respond, playbook) draws a
//! warning, since a typo would otherwise be sealed for good. `reason` must contain more
//! than whitespace and may contain line breaks and tabs. No field may contain other
//! control, bidirectional-formatting or zero-width characters, which would hide or
//! reorder text where the entry is displayed.

use crate::chain::line::is_invisible;

use super::{NewEntry, SealError};

/// The values of `decision` that the reference logger writes.
pub const DECISIONS: [&str; 3] = ["allow", "deny", "escalate"];

/// The actions of the reference logger; others are accepted with a warning.
pub const KNOWN_ACTIONS: [&str; 4] = ["ingest", "correlate", "respond", "playbook"];

impl NewEntry {
    /// Checks the fields and returns warnings about unusual but accepted values.
    ///
    /// Errors are [`SealError::InvalidArgument`], naming the option (`--reason`) and, for a
    /// rejected character, its position and Unicode escape.
    pub fn validate(&self) -> Result<Vec<String>, SealError> {
        let mut warnings = Vec::new();
        if !DECISIONS.contains(&self.decision.as_str()) {
            return Err(invalid(format!(
                "invalid --decision {:?}: expected one of {}",
                self.decision,
                DECISIONS.join(", ")
            )));
        }
        if self.action.trim().is_empty() {
            return Err(invalid(
                "invalid --action: it is empty; give the action that led to the decision, e.g. ingest"
                    .to_owned(),
            ));
        }
        if self.reason.trim().is_empty() {
            return Err(invalid(
                "invalid --reason: it is empty or only whitespace; say why the decision was made"
                    .to_owned(),
            ));
        }
        check_characters(
            "--reason",
            &self.reason,
            "a control, bidirectional-formatting or zero-width character",
            |c| is_invisible(c) && !matches!(c, '\n' | '\r' | '\t'),
        )?;
        let id = self.id.as_deref().unwrap_or_default();
        for (option, value) in [
            ("--id", id),
            ("--action", self.action.as_str()),
            ("--event-id", self.event_id.as_str()),
            ("--incident-id", self.incident_id.as_str()),
            ("--operator", self.operator.as_str()),
        ] {
            check_characters(
                option,
                value,
                "a control, bidirectional-formatting or zero-width character",
                is_invisible,
            )?;
        }
        if !KNOWN_ACTIONS.contains(&self.action.as_str()) {
            warnings.push(format!(
                "warning: --action {:?} is not one of the reference actions ({}); it is sealed as given",
                self.action,
                KNOWN_ACTIONS.join(", ")
            ));
        }
        Ok(warnings)
    }
}

/// Rejects the first character of `value` for which `rejected` is true.
fn check_characters(
    option: &str,
    value: &str,
    class: &str,
    rejected: impl Fn(char) -> bool,
) -> Result<(), SealError> {
    match value.chars().enumerate().find(|(_, c)| rejected(*c)) {
        Some((position, c)) => Err(invalid(format!(
            "invalid {option}: character {} is {}, {class}, which would hide or reorder text where the entry is shown; remove it",
            position + 1,
            c.escape_unicode()
        ))),
        None => Ok(()),
    }
}

fn invalid(message: String) -> SealError {
    SealError::InvalidArgument(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> NewEntry {
        NewEntry {
            action: "ingest".into(),
            decision: "allow".into(),
            reason: "rule R-1 matched".into(),
            ..NewEntry::default()
        }
    }

    fn error_text(entry: &NewEntry) -> String {
        entry.validate().unwrap_err().to_string()
    }

    #[test]
    fn valid_entry_has_no_warnings() {
        assert!(entry().validate().unwrap().is_empty());
    }

    #[test]
    fn decision_outside_set_rejected() {
        for bad in ["", "Allow", "block", "allow "] {
            let e = NewEntry {
                decision: bad.into(),
                ..entry()
            };
            let text = error_text(&e);
            assert!(text.contains("--decision"), "{text}");
            assert!(text.contains("allow, deny, escalate"), "{text}");
        }
    }

    #[test]
    fn blank_reason_and_action_rejected() {
        let e = NewEntry {
            reason: " \n\t".into(),
            ..entry()
        };
        assert!(error_text(&e).contains("--reason"));
        let e = NewEntry {
            action: "".into(),
            ..entry()
        };
        assert!(error_text(&e).contains("--action"));
    }

    #[test]
    fn reason_rejects_bidi_and_zero_width() {
        for hidden in [
            '\u{202e}', '\u{200b}', '\u{2066}', '\u{2028}', '\u{feff}', '\u{61c}',
        ] {
            let e = NewEntry {
                reason: format!("x{hidden}y"),
                ..entry()
            };
            assert!(error_text(&e).contains("--reason"), "{hidden:?}");
        }
    }

    #[test]
    fn reason_allows_line_breaks_and_tabs() {
        let e = NewEntry {
            reason: "line one\r\nline two\tcolumn".into(),
            ..entry()
        };
        assert!(e.validate().is_ok());
        let e = NewEntry {
            reason: "bell\u{7}".into(),
            ..entry()
        };
        let text = error_text(&e);
        assert!(text.contains("--reason"), "{text}");
        assert!(text.contains("\\u{7}"), "{text}");
        assert!(text.contains("character 5"), "{text}");
    }

    #[test]
    fn hidden_characters_in_fields_rejected() {
        type SetField = fn(&mut NewEntry, String);
        let cases: [(&str, SetField); 5] = [
            ("--id", |e, v| e.id = Some(v)),
            ("--action", |e, v| e.action = v),
            ("--event-id", |e, v| e.event_id = v),
            ("--incident-id", |e, v| e.incident_id = v),
            ("--operator", |e, v| e.operator = v),
        ];
        for (option, set) in cases {
            for (c, escape) in [
                ('\u{202e}', "\\u{202e}"),
                ('\u{200b}', "\\u{200b}"),
                ('\n', "\\u{a}"),
            ] {
                let mut e = entry();
                set(&mut e, format!("ab{c}"));
                let text = error_text(&e);
                assert!(text.contains(option), "{option}: {text}");
                assert!(text.contains(escape), "{option}: {text}");
            }
        }
    }

    #[test]
    fn unknown_action_warns() {
        let e = NewEntry {
            action: "quarantine".into(),
            ..entry()
        };
        let warnings = e.validate().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("quarantine"), "{warnings:?}");
    }
}
