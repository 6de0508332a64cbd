//! Drawing: committed lines go into the scrollback; the live area (the text being streamed, the
//! input, the slash-command popup, the status line) sits below them and is redrawn in place.
//!
//! Every line is wrapped here, at word boundaries, to one cell less than the terminal's width (a
//! full row would make the terminal wrap by itself, and the live area's height would no longer be
//! known). The live area's rows are counted, and the terminal's cursor is left in the input, so
//! clearing moves up exactly to the area's top.
//!
//! A resize is the one moment the count could be lost: the terminal re-wraps what it shows.
//! Committed lines are left to it (terminals that reflow — tmux, VTE, kitty, iTerm2, WezTerm,
//! Alacritty, Windows Terminal — re-wrap them themselves, and painting them again would show them
//! twice in the scrollback). The live area is cleared from where its top is after the reflow
//! (each of its rows, a hard line, takes as many rows at the new width as it needs; the cursor
//! moves with its text) and drawn again at the new width. On a terminal that cuts instead of
//! reflowing (xterm) the live area is still redrawn whole; a committed row or two above it may be
//! cleared with it when the terminal gets narrower.
//!
//! It draws to any writer: the terminal's stdout, or a buffer a test reads back through a terminal emulator.

use std::io::Write;

use crossterm::cursor::{MoveToColumn, MoveUp};
use crossterm::style::{Attribute, Color, Print, ResetColor, SetAttribute, SetForegroundColor};
use crossterm::terminal::{Clear, ClearType};
use crossterm::{QueueableCommand, queue};
use unicode_width::UnicodeWidthChar;

use crate::composer::{Layout, cells};
use crate::render::Tone;

/// How a run of text looks: its tone (the colour) and the Markdown emphasis on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Look {
    pub tone: Tone,
    pub bold: bool,
    pub italic: bool,
    pub underline: bool,
    /// A colour of its own (code highlighting), over the tone's.
    pub rgb: Option<(u8, u8, u8)>,
}

impl Look {
    pub fn tone(tone: Tone) -> Look {
        Look {
            tone,
            ..Look::default()
        }
    }
}

/// A line as runs of text with their looks.
pub type Styled = Vec<(String, Look)>;

/// Rows of streamed text the live area shows at most (the rest is committed line by line).
const LIVE_TEXT_ROWS: usize = 8;

pub struct Screen {
    out: Box<dyn Write + Send>,
    color: bool,
    width: u16,
    height: u16,
    /// Streamed text not yet ended by a newline.
    partial: String,
    /// How a line of streamed text looks when it is committed (Markdown, or plain).
    markdown: crate::markdown::Markdown,
    /// Streamed reasoning summary not yet ended by a newline.
    reasoning: String,
    /// A reasoning summary is being shown (its first line carried the `thinking:` label).
    thinking: bool,
    /// Rows of the live area on screen, and the row (from its top) the cursor was left on.
    live_rows: u16,
    cursor_row: u16,
    /// The cells of each row of the live area as drawn, and the cursor's column in its row.
    live_cells: Vec<usize>,
    cursor_column: usize,
}

impl Screen {
    /// A screen `width` columns wide drawing to `out`, in colour or not.
    pub fn new(out: Box<dyn Write + Send>, width: u16, color: bool) -> Screen {
        Screen {
            out,
            color,
            width: width.max(20),
            height: 24,
            partial: String::new(),
            markdown: crate::markdown::Markdown::new(true),
            reasoning: String::new(),
            thinking: false,
            live_rows: 0,
            cursor_row: 0,
            live_cells: Vec::new(),
            cursor_column: 0,
        }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    /// The terminal's height, for the repaint after a resize.
    pub fn set_height(&mut self, height: u16) {
        self.height = height.max(4);
    }

    /// Streamed agent text is rendered as Markdown (on by default) or shown as it came.
    pub fn set_markdown(&mut self, on: bool) {
        self.markdown.enabled = on;
    }

    /// The terminal changed size: the live area is cleared from its top after the terminal's
    /// reflow, to be drawn again (see the module's docs).
    pub fn resize(&mut self, width: u16, height: u16) -> std::io::Result<()> {
        self.width = width.max(20);
        self.set_height(height);
        if self.live_rows > 0 {
            let columns = usize::from(width.max(1));
            let rows_of = |cells: usize| cells.div_ceil(columns).max(1);
            let row = usize::from(self.cursor_row).min(self.live_cells.len());
            let up: usize = self.live_cells[..row]
                .iter()
                .map(|&c| rows_of(c))
                .sum::<usize>()
                + self.cursor_column / columns;
            if up > 0 {
                self.out
                    .queue(MoveUp(u16::try_from(up).unwrap_or(u16::MAX)))?;
            }
            self.out.queue(MoveToColumn(0))?;
            self.out.queue(Clear(ClearType::FromCursorDown))?;
        }
        self.live_rows = 0;
        self.cursor_row = 0;
        self.live_cells.clear();
        self.cursor_column = 0;
        Ok(())
    }

    /// The cells a row may take: one less than the width.
    fn limit(&self) -> usize {
        usize::from(self.width.saturating_sub(1))
    }

    fn clear_live(&mut self) -> std::io::Result<()> {
        if self.live_rows > 0 {
            self.out.queue(MoveToColumn(0))?;
            if self.cursor_row > 0 {
                self.out.queue(MoveUp(self.cursor_row))?;
            }
            self.out.queue(Clear(ClearType::FromCursorDown))?;
            self.live_rows = 0;
            self.cursor_row = 0;
        }
        Ok(())
    }

    fn print(&mut self, row: &Styled) -> std::io::Result<()> {
        for (text, look) in row {
            self.styled(text, *look)?;
        }
        Ok(())
    }

    fn styled(&mut self, text: &str, look: Look) -> std::io::Result<()> {
        let tone = look.tone;
        let color = match tone {
            Tone::Plain | Tone::Prompt => None,
            Tone::Action | Tone::Hunk => Some(Color::Cyan),
            Tone::Dim => Some(Color::DarkGrey),
            Tone::Add => Some(Color::Green),
            Tone::Remove | Tone::Error => Some(Color::Red),
            Tone::Warn => Some(Color::Yellow),
            Tone::Steer => Some(Color::Magenta),
        };
        let color = look.rgb.map(|(r, g, b)| Color::Rgb { r, g, b }).or(color);
        let styled =
            self.color && (color.is_some() || tone == Tone::Prompt || look.bold || look.italic);
        if self.color {
            if let Some(color) = color {
                self.out.queue(SetForegroundColor(color))?;
            }
            if tone == Tone::Prompt || look.bold {
                self.out.queue(SetAttribute(Attribute::Bold))?;
            }
            if look.italic {
                self.out.queue(SetAttribute(Attribute::Italic))?;
            }
            if look.underline {
                self.out.queue(SetAttribute(Attribute::Underlined))?;
            }
        }
        self.out.queue(Print(text))?;
        if styled || (self.color && look.underline) {
            queue!(self.out, SetAttribute(Attribute::Reset), ResetColor)?;
        }
        Ok(())
    }

    /// Commits text (one or more lines) to the scrollback, wrapped at the width.
    pub fn line(&mut self, text: &str, tone: Tone) -> std::io::Result<()> {
        for line in text.split('\n') {
            self.commit(vec![(line.to_string(), Look::tone(tone))])?;
        }
        self.out.flush()
    }

    /// Commits one styled line, wrapped.
    pub fn commit(&mut self, line: Styled) -> std::io::Result<()> {
        self.clear_live()?;
        for row in wrap(&line, self.limit()) {
            self.print(&row)?;
            self.out.queue(Print("\r\n"))?;
        }
        Ok(())
    }

    /// Streams agent text: whole lines are rendered (Markdown) and committed, the rest waits in
    /// the live area.
    pub fn stream(&mut self, delta: &str) -> std::io::Result<()> {
        self.partial.push_str(delta);
        while let Some(at) = self.partial.find('\n') {
            let done: String = self.partial.drain(..=at).collect();
            let lines = self
                .markdown
                .line(done.trim_end_matches('\n'), self.limit());
            for line in lines {
                self.commit(line)?;
            }
        }
        self.out.flush()
    }

    /// Streams a reasoning summary, dimmed, line by line, the first labelled `thinking:`.
    pub fn reason(&mut self, delta: &str) -> std::io::Result<()> {
        self.reasoning.push_str(delta);
        while let Some(at) = self.reasoning.find('\n') {
            let done: String = self.reasoning.drain(..=at).collect();
            let label = self.thinking_label();
            self.line(
                &format!("{label}{}", done.trim_end_matches('\n')),
                Tone::Dim,
            )?;
        }
        Ok(())
    }

    fn thinking_label(&mut self) -> &'static str {
        if std::mem::replace(&mut self.thinking, true) {
            "  "
        } else {
            "thinking: "
        }
    }

    /// Commits what is left of a reasoning summary when the answer or an action begins.
    pub fn end_reasoning(&mut self) -> std::io::Result<()> {
        if !self.reasoning.is_empty() {
            let rest = std::mem::take(&mut self.reasoning);
            let label = self.thinking_label();
            self.line(&format!("{label}{rest}"), Tone::Dim)?;
        }
        self.thinking = false;
        Ok(())
    }

    /// Takes back what a failed attempt streamed: what is still in the live area goes; lines
    /// already in the scrollback cannot, so a note says the response starts again below them.
    pub fn retract(&mut self, text: &str, reasoning: &str) -> std::io::Result<()> {
        let committed = text.contains('\n') || reasoning.contains('\n');
        self.partial.clear();
        self.markdown.reset();
        self.reasoning.clear();
        self.thinking = false;
        if committed {
            self.line(
                "  ↺ the connection dropped; the response starts again from its beginning",
                Tone::Warn,
            )?;
        }
        Ok(())
    }

    /// Commits the rest of the streamed text (the message ended): the last line, and whatever
    /// Markdown block was still open (a table waiting for its end).
    pub fn flush_partial(&mut self) -> std::io::Result<()> {
        self.end_stream("")
    }

    /// Ends the streamed text with `marker` after it (a stream that was cancelled says so, so a
    /// half word is not taken for the answer).
    pub fn end_stream(&mut self, marker: &str) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.partial);
        let mut lines = Vec::new();
        if !rest.is_empty() {
            lines.extend(self.markdown.line(&rest, self.limit()));
        }
        lines.extend(self.markdown.finish(self.limit()));
        if !marker.is_empty() {
            match lines.last_mut() {
                Some(last) if !rest.is_empty() => {
                    last.push((marker.to_string(), Look::tone(Tone::Dim)))
                }
                _ => lines.push(vec![(marker.to_string(), Look::tone(Tone::Dim))]),
            }
        }
        for line in lines {
            self.commit(line)?;
        }
        self.out.flush()
    }

    /// Whether streamed text is waiting in the live area.
    pub fn streaming(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Redraws the live area: the streamed partial line (wrapped, its last rows), the input (rows
    /// laid out by the composer), the popup rows under it, the status line (cut: it keeps its
    /// beginning). The cursor is left where the input's cursor is.
    pub(crate) fn draw_live(
        &mut self,
        held: &[(String, Tone)],
        input: Option<&Layout>,
        popup: &[String],
        status: &[String],
        paused: bool,
    ) -> std::io::Result<()> {
        self.clear_live()?;
        let limit = self.limit();
        let mut rows: Vec<Styled> = Vec::new();
        if !self.partial.is_empty() {
            let line = vec![(self.partial.clone(), Look::tone(Tone::Plain))];
            let wrapped = wrap(&line, limit);
            let skip = wrapped.len().saturating_sub(LIVE_TEXT_ROWS);
            rows.extend(wrapped.into_iter().skip(skip));
        }
        for (row, tone) in held {
            rows.push(vec![(cut(row, limit), Look::tone(*tone))]);
        }
        let mut cursor = None;
        if let Some(layout) = input {
            cursor = Some((rows.len() + layout.cursor.0, layout.cursor.1));
            for row in &layout.rows {
                rows.push(vec![(row.clone(), Look::tone(Tone::Prompt))]);
            }
        }
        for row in popup {
            rows.push(vec![(cut(row, limit), Look::tone(Tone::Dim))]);
        }
        let status_tone = if paused { Tone::Warn } else { Tone::Dim };
        for row in status {
            rows.push(vec![(cut(row, limit), Look::tone(status_tone))]);
        }
        if rows.is_empty() {
            rows.push(Vec::new());
        }
        for (n, row) in rows.iter().enumerate() {
            if n > 0 {
                self.out.queue(Print("\r\n"))?;
            }
            self.print(row)?;
        }
        let last = rows.len() - 1;
        self.live_rows = rows.len() as u16;
        self.cursor_row = last as u16;
        self.live_cells = rows
            .iter()
            .map(|row| row.iter().map(|(text, _)| cells(text)).sum())
            .collect();
        self.cursor_column = self.live_cells[last];
        if let Some((row, column)) = cursor {
            self.cursor_column = column;
            if row < last {
                self.out.queue(MoveUp((last - row) as u16))?;
            }
            self.out.queue(MoveToColumn(column as u16))?;
            self.cursor_row = row as u16;
        }
        self.out.flush()
    }

    /// Leaves the terminal with everything committed and the cursor on a fresh line.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.clear_live()?;
        self.flush_partial()?;
        self.out.flush()
    }
}

/// The start of `text` that fits in `limit` cells.
fn cut(text: &str, limit: usize) -> String {
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        used += c.width().unwrap_or(0);
        if used > limit {
            break;
        }
        out.push(c);
    }
    out
}

/// Wraps a styled line into rows of at most `limit` cells, breaking after spaces where it can
/// (a word longer than a row is split). Continuation rows are indented like the line's start
/// (its leading spaces, or a `│ `/list-marker prefix as wide), so folded output and lists stay in
/// their column.
pub(crate) fn wrap(line: &Styled, limit: usize) -> Vec<Styled> {
    let limit = limit.max(8);
    let total: usize = line.iter().map(|(text, _)| cells(text)).sum();
    if total <= limit {
        return vec![line.clone()];
    }
    let chars: Vec<(char, Look)> = line
        .iter()
        .flat_map(|(text, look)| text.chars().map(move |c| (c, *look)))
        .collect();
    let hang = hanging_indent(&chars).min(limit / 2);
    let mut rows: Vec<Vec<(char, Look)>> = Vec::new();
    let mut row: Vec<(char, Look)> = Vec::new();
    let mut used = 0;
    let mut at = 0;
    while at < chars.len() {
        // The next word with the spaces after it.
        let mut end = at;
        while end < chars.len() && chars[end].0 != ' ' {
            end += 1;
        }
        while end < chars.len() && chars[end].0 == ' ' {
            end += 1;
        }
        let word = &chars[at..end];
        let word_cells: usize = word.iter().map(|(c, _)| c.width().unwrap_or(0)).sum();
        let trimmed: usize = word
            .iter()
            .filter(|(c, _)| *c != ' ')
            .map(|(c, _)| c.width().unwrap_or(0))
            .sum();
        if used + trimmed > limit && used > hang && !row.is_empty() {
            rows.push(std::mem::take(&mut row));
            row.extend(std::iter::repeat_n((' ', Look::default()), hang));
            used = hang;
        }
        for &(c, look) in word {
            let w = c.width().unwrap_or(0);
            if used + w > limit {
                if c == ' ' {
                    continue;
                }
                rows.push(std::mem::take(&mut row));
                row.extend(std::iter::repeat_n((' ', Look::default()), hang));
                used = hang;
            }
            row.push((c, look));
            used += w;
        }
        let _ = word_cells;
        at = end;
    }
    rows.push(row);
    rows.into_iter()
        .map(|row| {
            let mut styled: Styled = Vec::new();
            for (c, look) in row {
                match styled.last_mut() {
                    Some((text, last)) if *last == look => text.push(c),
                    _ => styled.push((c.to_string(), look)),
                }
            }
            // Trailing spaces at a break are not shown.
            if let Some((text, _)) = styled.last_mut() {
                let kept = text.trim_end_matches(' ').len();
                text.truncate(kept);
            }
            styled
        })
        .collect()
}

/// How far continuation rows are indented: the leading spaces, then a `│ `, `- `, `* `, `N. `
/// or `> ` marker after them.
fn hanging_indent(chars: &[(char, Look)]) -> usize {
    let text: String = chars.iter().take(16).map(|(c, _)| *c).collect();
    let spaces = text.len() - text.trim_start_matches(' ').len();
    let rest = &text[spaces..];
    let marker = ["│ ", "- ", "* ", "• ", "> ", "▌ "]
        .iter()
        .find(|m| rest.starts_with(**m))
        .map(|m| cells(m))
        .or_else(|| {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            (digits > 0 && rest[digits..].starts_with(". ")).then_some(digits + 2)
        })
        .unwrap_or(0);
    spaces + marker
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Styled {
        vec![(text.to_string(), Look::default())]
    }

    fn texts(rows: Vec<Styled>) -> Vec<String> {
        rows.into_iter()
            .map(|row| row.into_iter().map(|(text, _)| text).collect())
            .collect()
    }

    #[test]
    fn wraps_at_words_and_hangs_under_markers() {
        let rows = texts(wrap(
            &plain("the quick brown fox jumps over the lazy dog"),
            16,
        ));
        assert_eq!(rows, ["the quick brown", "fox jumps over", "the lazy dog"]);
        let rows = texts(wrap(&plain("  │ one two three four five six"), 14));
        assert_eq!(rows, ["  │ one two", "    three four", "    five six"]);
        let rows = texts(wrap(&plain("abcdefghijklmnopqrstuvwxyz"), 10));
        assert_eq!(rows, ["abcdefghij", "klmnopqrst", "uvwxyz"]);
        assert!(
            texts(wrap(&plain("wide 表表表表表表表表 text"), 10))
                .iter()
                .all(|row| cells(row) <= 10)
        );
    }
}
