//! Drawing: every function takes `&App` and a frame, and does no I/O.

mod detail;
mod overlay;
mod pcr;
mod quote;
pub mod seal_form;
mod status;
mod table;
pub mod theme;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;

use crate::chain::finding::Severity;

use super::app::{pane_heights, App, Overlay};
use theme::Theme;

/// The mark of an entry by the worst severity of its findings.
pub fn mark(severity: Option<Severity>) -> &'static str {
    match severity {
        Some(Severity::Error) => "✗",
        Some(Severity::Warning) => "!",
        _ => "✓",
    }
}

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let theme = Theme::new(app.color);
    let area = frame.area();
    let (table_h, detail_h) = pane_heights(area.height);
    let [verdict, table_area, detail_area, status_area] = Layout::vertical([
        Constraint::Length(1.min(area.height)),
        Constraint::Length(table_h),
        Constraint::Length(detail_h),
        Constraint::Length(1),
    ])
    .areas(area);
    status::render_verdict(app, &theme, frame, verdict);
    table::render(app, &theme, frame, table_area);
    detail::render(app, &theme, frame, detail_area);
    status::render_status(app, &theme, frame, status_area);
    match app.overlay {
        Overlay::None => {}
        Overlay::Help => overlay::render_help(&theme, frame, area),
        Overlay::Findings { selected } => {
            overlay::render_findings(app, &theme, frame, popup(area), selected)
        }
        Overlay::Pcr => pcr::render(app, &theme, frame, popup(area)),
        Overlay::Quote => quote::render(app, &theme, frame, popup(area)),
    }
    if app.form_open {
        seal_form::render(app, &theme, frame, popup(area));
    }
    if let Some(p) = &app.popup {
        overlay::render_popup(p, &theme, frame, small_popup(area));
    }
}

/// Returns a centred area for a failure message: half the height, most of the width.
fn small_popup(area: Rect) -> Rect {
    let width = area.width.saturating_sub(8).max(area.width.min(20));
    let height = (area.height / 2).max(area.height.min(8));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// A centred area for pop-ups: most of the screen, leaving the verdict visible.
fn popup(area: Rect) -> Rect {
    let width = area.width.saturating_sub(4).max(area.width.min(20));
    let height = area.height.saturating_sub(4).max(area.height.min(6));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}
