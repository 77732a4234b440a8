//! The key table: one list that both key dispatch and the help screen read.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key does in the entry table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Down,
    Up,
    PageDown,
    PageUp,
    First,
    Last,
    NextFinding,
    PreviousFinding,
    FindingsList,
    GoTo,
    Search,
    ClearSearch,
    FilterSeverity,
    FilterDecision,
    FilterAction,
    FilterOperator,
    ToggleTime,
    Follow,
    Help,
    SealForm,
    PcrPane,
    QuotePane,
    Acknowledge,
}

/// One binding: the keys, how the help screen names them, and what they do.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [KeyCode],
    pub label: &'static str,
    pub action: Action,
    pub help: &'static str,
}

/// Every key of the entry table. The help screen lists exactly these.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[KeyCode::Char('j'), KeyCode::Down],
        label: "j ↓",
        action: Action::Down,
        help: "next entry",
    },
    Binding {
        keys: &[KeyCode::Char('k'), KeyCode::Up],
        label: "k ↑",
        action: Action::Up,
        help: "previous entry",
    },
    Binding {
        keys: &[KeyCode::PageDown, KeyCode::Char(' ')],
        label: "PgDn Space",
        action: Action::PageDown,
        help: "one page down",
    },
    Binding {
        keys: &[KeyCode::PageUp],
        label: "PgUp",
        action: Action::PageUp,
        help: "one page up",
    },
    Binding {
        keys: &[KeyCode::Char('g'), KeyCode::Home],
        label: "g Home",
        action: Action::First,
        help: "first entry",
    },
    Binding {
        keys: &[KeyCode::Char('G'), KeyCode::End],
        label: "G End",
        action: Action::Last,
        help: "last entry",
    },
    Binding {
        keys: &[KeyCode::Char('n')],
        label: "n",
        action: Action::NextFinding,
        help: "next entry with a finding",
    },
    Binding {
        keys: &[KeyCode::Char('N')],
        label: "N",
        action: Action::PreviousFinding,
        help: "previous entry with a finding",
    },
    Binding {
        keys: &[KeyCode::Char('f')],
        label: "f",
        action: Action::FindingsList,
        help: "list of findings; Enter jumps to one",
    },
    Binding {
        keys: &[KeyCode::Char(':')],
        label: ":",
        action: Action::GoTo,
        help: "go to entry index, or l<N> for line N",
    },
    Binding {
        keys: &[KeyCode::Char('/')],
        label: "/",
        action: Action::Search,
        help: "fuzzy search id, reason, operator, incident, event",
    },
    Binding {
        keys: &[KeyCode::Esc],
        label: "Esc",
        action: Action::ClearSearch,
        help: "clear search and filters",
    },
    Binding {
        keys: &[KeyCode::Char('s')],
        label: "s",
        action: Action::FilterSeverity,
        help: "filter by severity (cycles)",
    },
    Binding {
        keys: &[KeyCode::Char('d')],
        label: "d",
        action: Action::FilterDecision,
        help: "filter by decision (cycles)",
    },
    Binding {
        keys: &[KeyCode::Char('a')],
        label: "a",
        action: Action::FilterAction,
        help: "filter by action (type it)",
    },
    Binding {
        keys: &[KeyCode::Char('o')],
        label: "o",
        action: Action::FilterOperator,
        help: "filter by operator (type it)",
    },
    Binding {
        keys: &[KeyCode::Char('t')],
        label: "t",
        action: Action::ToggleTime,
        help: "time as written / UTC / local",
    },
    Binding {
        keys: &[KeyCode::Char('F')],
        label: "F",
        action: Action::Follow,
        help: "follow the end of the file",
    },
    Binding {
        keys: &[KeyCode::Char('S')],
        label: "S",
        action: Action::SealForm,
        help: "seal a decision (form, then preview)",
    },
    Binding {
        keys: &[KeyCode::Char('P')],
        label: "P",
        action: Action::PcrPane,
        help: "PCR pane: the TPM's PCR and the head",
    },
    Binding {
        keys: &[KeyCode::Char('Q')],
        label: "Q",
        action: Action::QuotePane,
        help: "quote pane: t quotes, e exports",
    },
    Binding {
        keys: &[KeyCode::Char('A')],
        label: "A",
        action: Action::Acknowledge,
        help: "acknowledge entries removed while watching",
    },
    Binding {
        keys: &[KeyCode::Char('?')],
        label: "?",
        action: Action::Help,
        help: "this help",
    },
    Binding {
        keys: &[KeyCode::Char('q')],
        label: "q",
        action: Action::Quit,
        help: "quit",
    },
];

/// The action bound to `key` in the entry table. Ctrl-C always quits.
pub fn action_for(key: &KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            KeyCode::Char('f') => Some(Action::PageDown),
            KeyCode::Char('b') => Some(Action::PageUp),
            _ => None,
        };
    }
    BINDINGS
        .iter()
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_bound_twice() {
        let mut seen = Vec::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(!seen.contains(k), "{k:?} bound twice");
                seen.push(*k);
            }
        }
    }
}
