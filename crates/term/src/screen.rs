//! Drawing: committed lines go into the scrollback; the live area (the line being streamed, the
//! input line, the status line) sits below them and is redrawn in place. Live lines are cut to the
//! terminal's width, so the area's height is always known and can be cleared exactly. It draws to
//! any writer: the terminal's stdout, or a buffer a test reads back through a terminal emulator.

use std::io::Write;

use crossterm::cursor::{MoveToColumn, MoveUp};
use crossterm::style::{Attribute, Color, Print, ResetColor, SetAttribute, SetForegroundColor};
use crossterm::terminal::{Clear, ClearType};
use crossterm::{QueueableCommand, queue};

use crate::render::Tone;

pub struct Screen {
    out: Box<dyn Write + Send>,
    color: bool,
    width: u16,
    /// Streamed text not yet ended by a newline.
    partial: String,
    /// Streamed reasoning summary not yet ended by a newline.
    reasoning: String,
    /// A reasoning summary is being shown (its first line carried the `thinking:` label).
    thinking: bool,
    /// Lines of the live area currently on screen.
    live_drawn: u16,
}

impl Screen {
    /// A screen `width` columns wide drawing to `out`, in colour or not.
    pub fn new(out: Box<dyn Write + Send>, width: u16, color: bool) -> Screen {
        Screen {
            out,
            color,
            width: width.max(20),
            partial: String::new(),
            reasoning: String::new(),
            thinking: false,
            live_drawn: 0,
        }
    }

    pub fn resize(&mut self, width: u16) -> std::io::Result<()> {
        self.clear_live()?;
        self.width = width.max(20);
        Ok(())
    }

    fn clear_live(&mut self) -> std::io::Result<()> {
        if self.live_drawn > 0 {
            self.out.queue(MoveToColumn(0))?;
            if self.live_drawn > 1 {
                self.out.queue(MoveUp(self.live_drawn - 1))?;
            }
            self.out.queue(Clear(ClearType::FromCursorDown))?;
            self.live_drawn = 0;
        }
        Ok(())
    }

    fn styled(&mut self, text: &str, tone: Tone) -> std::io::Result<()> {
        let color = match tone {
            Tone::Plain | Tone::Prompt => None,
            Tone::Action | Tone::Hunk => Some(Color::Cyan),
            Tone::Dim => Some(Color::DarkGrey),
            Tone::Add => Some(Color::Green),
            Tone::Remove | Tone::Error => Some(Color::Red),
            Tone::Warn => Some(Color::Yellow),
            Tone::Steer => Some(Color::Magenta),
        };
        if self.color {
            if let Some(color) = color {
                self.out.queue(SetForegroundColor(color))?;
            }
            if tone == Tone::Prompt {
                self.out.queue(SetAttribute(Attribute::Bold))?;
            }
        }
        self.out.queue(Print(text))?;
        if self.color {
            queue!(self.out, SetAttribute(Attribute::Reset), ResetColor)?;
        }
        Ok(())
    }

    /// Commits text (one or more lines) to the scrollback.
    pub fn line(&mut self, text: &str, tone: Tone) -> std::io::Result<()> {
        self.clear_live()?;
        for line in text.split('\n') {
            self.styled(line, tone)?;
            self.out.queue(Print("\r\n"))?;
        }
        self.out.flush()
    }

    /// Streams agent text: whole lines are committed, the rest waits in the live area.
    pub fn stream(&mut self, delta: &str) -> std::io::Result<()> {
        self.partial.push_str(delta);
        while let Some(at) = self.partial.find('\n') {
            let done: String = self.partial.drain(..=at).collect();
            self.line(done.trim_end_matches('\n'), Tone::Plain)?;
        }
        Ok(())
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

    pub fn flush_partial(&mut self) -> std::io::Result<()> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest, Tone::Plain)?;
        }
        Ok(())
    }

    /// Cuts a live line to the width. Streamed text and input keep their end (what is new, where
    /// the cursor is); the status line keeps its beginning (the state).
    fn cut(&self, text: &str, keep_end: bool) -> String {
        let limit = usize::from(self.width.saturating_sub(1));
        let chars: Vec<char> = text.chars().collect();
        if chars.len() <= limit {
            text.to_string()
        } else if keep_end {
            chars[chars.len() - limit..].iter().collect()
        } else {
            chars[..limit].iter().collect()
        }
    }

    /// Redraws the live area: streamed partial line, input line, status line.
    pub fn draw_live(
        &mut self,
        input: Option<&str>,
        status: &str,
        paused: bool,
    ) -> std::io::Result<()> {
        self.clear_live()?;
        let mut lines: Vec<(String, Tone)> = Vec::new();
        if !self.partial.is_empty() {
            lines.push((self.cut(&self.partial, true), Tone::Plain));
        }
        if let Some(input) = input {
            for line in input.split('\n') {
                lines.push((self.cut(line, true), Tone::Prompt));
            }
        }
        let status_tone = if paused { Tone::Warn } else { Tone::Dim };
        lines.push((self.cut(status, false), status_tone));
        for (n, (text, tone)) in lines.iter().enumerate() {
            if n > 0 {
                self.out.queue(Print("\r\n"))?;
            }
            self.styled(text, *tone)?;
        }
        self.live_drawn = lines.len() as u16;
        self.out.flush()
    }

    /// Leaves the terminal with everything committed and the cursor on a fresh line.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.clear_live()?;
        self.flush_partial()?;
        self.out.flush()
    }
}
