//! What a terminal session shows the model: the visible screen of a full-screen program (vim,
//! less, top — anything on the alternate screen), or, for a line program, the text printed
//! since the last look, with escape codes interpreted (colours dropped, `\r` overwrites, cursor
//! moves applied) rather than passed on. Both are read through a terminal emulator (`vt100`).

use crate::HeadTail;

/// Rows and columns of every session's terminal.
pub const ROWS: u16 = 24;
pub const COLUMNS: u16 = 80;

/// Bytes of output kept between two looks (head and tail beyond that).
const WINDOW_BYTES: usize = 64 * 1024;

/// Lines rendered by one emulator when reading a line program's output.
const CHUNK_LINES: usize = 200;

pub struct Screen {
    parser: vt100::Parser,
    window: HeadTail,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen").finish_non_exhaustive()
    }
}

impl Default for Screen {
    fn default() -> Self {
        Screen {
            parser: vt100::Parser::new(ROWS, COLUMNS, 0),
            window: HeadTail::new(WINDOW_BYTES),
        }
    }
}

impl Screen {
    pub fn push(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
        self.window.push(bytes);
    }

    /// A full-screen program is showing (the alternate screen).
    pub fn full_screen(&self) -> bool {
        self.parser.screen().alternate_screen()
    }

    /// Arrow keys as the program asked for them (application cursor mode sends `ESC O A`).
    pub fn application_cursor(&self) -> bool {
        self.parser.screen().application_cursor()
    }

    /// What the model gets now, at most about `budget` bytes; the window starts afresh.
    pub fn take(&mut self, budget: usize) -> String {
        let window = std::mem::replace(&mut self.window, HeadTail::new(WINDOW_BYTES));
        let screen = self.parser.screen();
        if screen.alternate_screen() {
            return visible(screen);
        }
        if window.total() == 0 {
            return String::new();
        }
        lines(window.render_within(budget).as_bytes())
    }
}

/// The visible screen, trailing blanks trimmed, with where the cursor is.
fn visible(screen: &vt100::Screen) -> String {
    let (rows, columns) = screen.size();
    let mut shown: Vec<String> = screen
        .rows(0, columns)
        .map(|row| row.trim_end().to_string())
        .collect();
    while shown.last().is_some_and(String::is_empty) {
        shown.pop();
    }
    let (row, column) = screen.cursor_position();
    format!(
        "[full-screen program: the screen ({rows}x{columns}), cursor at line {} column {}]\n{}",
        row + 1,
        column + 1,
        shown.join("\n")
    )
}

/// A line program's output as text: each run of lines through an emulator tall enough to hold
/// it, so nothing scrolls away; a bare `\n` starts a new line at its first column.
pub fn lines(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (mut end, mut count, mut rows, mut line) = (0, 0, 2usize, 0usize);
        while end < rest.len() && count < CHUNK_LINES {
            line += 1;
            if rest[end] == b'\n' {
                count += 1;
                // A long line wraps onto more rows; none may scroll away.
                rows += 1 + line / usize::from(COLUMNS);
                line = 0;
            }
            end += 1;
        }
        rows += 1 + line / usize::from(COLUMNS);
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        let rows = u16::try_from(rows).unwrap_or(u16::MAX);
        let mut parser = vt100::Parser::new(rows, COLUMNS, 0);
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            match piece.strip_suffix(b"\n") {
                Some(line) => {
                    parser.process(line);
                    parser.process(b"\r\n");
                }
                None => parser.process(piece),
            }
        }
        let text = parser.screen().contents();
        out.push(text.trim_end_matches('\n').to_string());
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_programs_escape_codes_are_interpreted() {
        let text = lines(b"\x1b[31mred\x1b[0m plain\r\n10%\r50%\r100%\r\nbare\nnext\n");
        assert_eq!(text, "red plain\n100%\nbare\nnext");
    }

    #[test]
    fn a_full_screen_program_comes_back_as_its_screen() {
        let mut screen = Screen::default();
        screen.push(b"before\r\n\x1b[?1049h\x1b[H\x1b[2Jtop line\x1b[3;5Hthird");
        let shown = screen.take(10_000);
        assert!(
            shown.starts_with(
                "[full-screen program: the screen (24x80), cursor at line 3 column 10]"
            ),
            "{shown}"
        );
        assert!(shown.ends_with("top line\n\n    third"), "{shown}");
        assert!(!shown.contains("before"));
        // Leaving the alternate screen: line output again.
        screen.push(b"\x1b[?1049lafter\r\n");
        assert_eq!(screen.take(10_000), "after");
        assert_eq!(screen.take(10_000), "", "nothing new");
    }

    #[test]
    fn many_lines_are_all_kept_within_the_budget() {
        let mut screen = Screen::default();
        for i in 0..1000 {
            screen.push(format!("line {i}\r\n").as_bytes());
        }
        let shown = screen.take(1_000_000);
        assert_eq!(shown.lines().count(), 1000);
        assert!(shown.starts_with("line 0\nline 1\n"));
        assert!(shown.ends_with("line 999"));
    }
}
