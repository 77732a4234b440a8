//! Styles, with a monochrome set for NO_COLOR.

use ratatui::style::{Color, Modifier, Style};

use crate::chain::finding::Severity;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn new(color: bool) -> Theme {
        Theme { color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn text(&self) -> Style {
        Style::default()
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }

    /// Escapes of hidden characters: never mistaken for the text around them.
    pub fn escape(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Magenta)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn matched(&self) -> Style {
        self.fg(Color::Yellow)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn header(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn selected(&self) -> Style {
        if self.color {
            Style::default().bg(Color::Blue).fg(Color::White)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn severity(&self, severity: Severity) -> Style {
        match severity {
            Severity::Error => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Severity::Warning => self.fg(Color::Yellow),
            Severity::Info => self.fg(Color::Cyan),
        }
    }

    /// The whole row of an entry with findings.
    pub fn row(&self, severity: Option<Severity>) -> Style {
        match severity {
            Some(Severity::Error) => self.fg(Color::LightRed),
            Some(Severity::Warning) => self.fg(Color::LightYellow),
            _ => Style::default(),
        }
    }

    pub fn decision(&self, decision: &str) -> Style {
        match decision {
            "allow" => self.fg(Color::Green),
            "deny" => self.fg(Color::Red),
            "escalate" => self.fg(Color::Magenta),
            _ => self.fg(Color::Gray),
        }
    }

    pub fn good(&self) -> Style {
        self.fg(Color::Green).add_modifier(Modifier::BOLD)
    }

    pub fn bad(&self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }

    pub fn busy(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn break_row(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
}
