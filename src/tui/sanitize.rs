//! Display text for the terminal: hidden characters made visible, widths measured.
//!
//! Chain fields are attacker-controlled. Every character for which
//! [`is_invisible`] is true (controls, bidi overrides, zero-width characters)
//! is replaced by an escape such as `\u{202e}` or `\n`, drawn in the escape
//! style, so it can neither move the cursor nor reorder or hide text.
//! Widths come from `unicode-width`, the same measure ratatui's buffer uses,
//! so wide CJK and emoji and zero-width combining marks keep columns aligned.

use ratatui::style::Style;
use ratatui::text::Span;
use unicode_width::UnicodeWidthChar;

use crate::chain::line::is_invisible;

/// The ellipsis that marks a truncated cell.
const ELLIPSIS: char = '…';

/// One piece of display text: plain or an escape of a hidden character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub escaped: bool,
}

/// Splits `text` into plain runs and escapes of hidden characters.
pub fn pieces(text: &str) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut plain = String::new();
    for c in text.chars() {
        if is_invisible(c) {
            if !plain.is_empty() {
                out.push(Piece {
                    text: std::mem::take(&mut plain),
                    escaped: false,
                });
            }
            out.push(Piece {
                text: escape(c),
                escaped: true,
            });
        } else {
            plain.push(c);
        }
    }
    if !plain.is_empty() {
        out.push(Piece {
            text: plain,
            escaped: false,
        });
    }
    out
}

/// The visible escape for a hidden character.
pub fn escape(c: char) -> String {
    match c {
        '\n' => "\\n".to_owned(),
        '\t' => "\\t".to_owned(),
        '\r' => "\\r".to_owned(),
        _ => format!("\\u{{{:04x}}}", c as u32),
    }
}

/// True when `text` contains a character that is shown as an escape.
pub fn has_hidden(text: &str) -> bool {
    text.chars().any(is_invisible)
}

/// Terminal columns a visible character takes (0 for combining marks).
fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Terminal columns `text` takes once sanitized.
pub fn display_width(text: &str) -> usize {
    pieces(text)
        .iter()
        .map(|p| p.text.chars().map(char_width).sum::<usize>())
        .sum()
}

/// Spans showing `text` in exactly `width` columns: truncated with `…` when
/// longer, padded with spaces when shorter. A wide character that would
/// straddle the edge is replaced by padding.
pub fn cell(text: &str, width: usize, style: Style, escape_style: Style) -> Vec<Span<'static>> {
    cell_marked(text, width, [style, escape_style, style], &[])
}

/// Like [`cell`], with the characters at `marked` (char indices into `text`,
/// sorted) drawn in `styles[2]`; `styles` is plain, escape, marked.
pub fn cell_marked(
    text: &str,
    width: usize,
    styles: [Style; 3],
    marked: &[usize],
) -> Vec<Span<'static>> {
    let [style, escape_style, mark_style] = styles;
    let mut spans: Vec<Span<'static>> = Vec::new();
    let push = |piece: &str, s: Style, spans: &mut Vec<Span<'static>>| match spans.last_mut() {
        Some(last) if last.style == s => last.content.to_mut().push_str(piece),
        _ => spans.push(Span::styled(piece.to_owned(), s)),
    };
    let total = display_width(text);
    let budget = if total > width {
        width.saturating_sub(1)
    } else {
        width
    };
    let mut used = 0usize;
    for (i, c) in text.chars().enumerate() {
        let (shown, s) = if is_invisible(c) {
            (escape(c), escape_style)
        } else if marked.binary_search(&i).is_ok() {
            (c.to_string(), mark_style)
        } else {
            (c.to_string(), style)
        };
        let w: usize = shown.chars().map(char_width).sum();
        if used + w > budget {
            break;
        }
        used += w;
        push(&shown, s, &mut spans);
    }
    if total > width && width > 0 {
        if budget > used {
            push(&" ".repeat(budget - used), style, &mut spans);
        }
        push(&ELLIPSIS.to_string(), escape_style, &mut spans);
    } else if used < width {
        push(&" ".repeat(width - used), style, &mut spans);
    }
    spans
}

/// Spans showing all of `text`, hidden characters escaped, for wrapped panes.
pub fn spans(text: &str, style: Style, escape_style: Style) -> Vec<Span<'static>> {
    pieces(text)
        .into_iter()
        .map(|p| {
            let s = if p.escaped { escape_style } else { style };
            Span::styled(p.text, s)
        })
        .collect()
}

/// Plain text with hidden characters escaped, for places that take one string.
pub fn plain(text: &str) -> String {
    pieces(text).into_iter().map(|p| p.text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn width_of(spans: &[Span]) -> usize {
        spans
            .iter()
            .map(|s| s.content.chars().map(char_width).sum::<usize>())
            .sum()
    }

    #[test]
    fn escapes_bidi_and_controls() {
        assert_eq!(
            plain("a\u{202e}b\nc\u{1b}[2J"),
            "a\\u{202e}b\\nc\\u{001b}[2J"
        );
    }

    #[test]
    fn cell_pads_and_truncates_to_width() {
        let s = Style::default();
        for text in [
            "abc",
            "漢字かな交じり文",
            "e\u{301}e\u{301}",
            "👩\u{200d}💻 ok",
            "",
        ] {
            for width in 0..12 {
                assert_eq!(
                    width_of(&cell(text, width, s, s)),
                    width,
                    "{text:?} at {width}"
                );
            }
        }
    }

    #[test]
    fn cell_never_splits_wide_char() {
        let s = Style::default();
        let spans = cell("漢字漢字", 4, s, s);
        let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "漢 …");
    }
}
