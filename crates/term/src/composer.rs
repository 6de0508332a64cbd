//! The input line: a multi-line buffer edited like a shell line. Cursor keys and Home/End move;
//! Ctrl-A/E go to the line's start and end, Ctrl-B/F by a character, Alt-B/F and Ctrl-Left/Right
//! by a word; Ctrl-W and Alt-Backspace delete the word before the cursor, Ctrl-U to the line's
//! start, Ctrl-K to its end, Ctrl-Y puts the last deleted text back; Delete and Ctrl-D (on a
//! non-empty line) delete under the cursor; Alt-Enter or Shift-Enter add a line; Up/Down move
//! between lines and, on the first or last one, through the history; Ctrl-R searches the history
//! backwards (Ctrl-R again: an older match, Enter or a motion key takes it, Esc or Ctrl-G gives up).
//! A bracketed paste is inserted as it came, newlines included, so it never submits.
//!
//! Our own rather than a line-editor crate: the line lives inside the UI's live area, under text
//! that keeps streaming, and a crate like `reedline` wants the terminal to itself while it reads.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use unicode_width::UnicodeWidthChar;

#[derive(Debug, Default)]
pub(crate) struct Composer {
    text: String,
    /// Byte offset of the cursor in `text`, always on a char boundary.
    cursor: usize,
    history: Vec<String>,
    /// The history entry shown, while browsing with Up/Down.
    history_at: Option<usize>,
    /// What was typed before browsing began, back when browsing goes past the newest entry.
    draft: String,
    /// Ctrl-R: the query and the history entry it matched.
    search: Option<Search>,
    /// What Ctrl-W/U/K deleted last, for Ctrl-Y.
    killed: String,
}

#[derive(Debug, Default)]
struct Search {
    query: String,
    found: Option<usize>,
}

/// The input as the live area shows it: rows cut to the width, and where the cursor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub rows: Vec<String>,
    /// (row, column) of the cursor, in cells.
    pub cursor: (usize, usize),
}

impl Composer {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn searching(&self) -> bool {
        self.search.is_some()
    }

    /// Empties the buffer (the history stays).
    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
        self.history_at = None;
        self.search = None;
    }

    /// Takes the text out, leaving the buffer empty; a non-empty text joins the history.
    pub fn take(&mut self) -> String {
        let text = std::mem::take(&mut self.text);
        self.clear();
        if !text.trim().is_empty() && self.history.last() != Some(&text) {
            self.history.push(text.clone());
        }
        text
    }

    pub fn insert(&mut self, text: &str) {
        self.search = None;
        self.text.insert_str(self.cursor, text);
        self.cursor += text.len();
    }

    /// A bracketed paste: inserted as it is (CR LF and CR become newlines).
    pub fn paste(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        self.insert(&text);
    }

    /// Handles an editing key; `false` for a key the composer has no use for (Enter, Esc, …).
    pub fn key(&mut self, key: KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        if self.search.is_some() {
            return self.search_key(key, ctrl);
        }
        match key.code {
            KeyCode::Enter if alt || key.modifiers.contains(KeyModifiers::SHIFT) => {
                self.insert("\n")
            }
            KeyCode::Char('r') if ctrl => {
                self.search = Some(Search::default());
            }
            KeyCode::Char('a') if ctrl => self.cursor = self.line_start(),
            KeyCode::Char('e') if ctrl => self.cursor = self.line_end(),
            KeyCode::Char('b') if ctrl => self.cursor = self.prev_char(),
            KeyCode::Char('f') if ctrl => self.cursor = self.next_char(),
            KeyCode::Char('b') if alt => self.cursor = self.prev_word(),
            KeyCode::Char('f') if alt => self.cursor = self.next_word(),
            KeyCode::Char('w') if ctrl => self.kill(self.prev_word(), self.cursor),
            KeyCode::Char('u') if ctrl => self.kill(self.line_start(), self.cursor),
            KeyCode::Char('k') if ctrl => self.kill(self.cursor, self.line_end()),
            KeyCode::Char('y') if ctrl => {
                let killed = self.killed.clone();
                self.insert(&killed);
            }
            KeyCode::Char('d') if ctrl && !self.text.is_empty() => {
                self.remove(self.cursor, self.next_char())
            }
            KeyCode::Char(_) if ctrl => return false,
            KeyCode::Char(c) => {
                let mut buf = [0; 4];
                self.insert(c.encode_utf8(&mut buf));
            }
            KeyCode::Backspace if alt || ctrl => self.kill(self.prev_word(), self.cursor),
            KeyCode::Backspace => self.remove(self.prev_char(), self.cursor),
            KeyCode::Delete => self.remove(self.cursor, self.next_char()),
            KeyCode::Left if ctrl || alt => self.cursor = self.prev_word(),
            KeyCode::Right if ctrl || alt => self.cursor = self.next_word(),
            KeyCode::Left => self.cursor = self.prev_char(),
            KeyCode::Right => self.cursor = self.next_char(),
            KeyCode::Home => self.cursor = self.line_start(),
            KeyCode::End => self.cursor = self.line_end(),
            KeyCode::Up => self.vertical(-1),
            KeyCode::Down => self.vertical(1),
            _ => return false,
        }
        true
    }

    fn search_key(&mut self, key: KeyEvent, ctrl: bool) -> bool {
        let Some(search) = self.search.as_mut() else {
            return false;
        };
        match key.code {
            KeyCode::Char('r') if ctrl => {
                let before = search.found.unwrap_or(self.history.len());
                search.found = find(&self.history, &search.query, before).or(search.found);
            }
            KeyCode::Char('g') if ctrl => self.search = None,
            KeyCode::Esc => self.search = None,
            KeyCode::Char(c) if !ctrl => {
                search.query.push(c);
                let before = search.found.map_or(self.history.len(), |at| at + 1);
                search.found = find(&self.history, &search.query, before);
            }
            KeyCode::Backspace => {
                search.query.pop();
                search.found = find(&self.history, &search.query, self.history.len());
            }
            // Enter, a motion or any other key takes the match into the buffer.
            _ => {
                if let Some(at) = search.found {
                    self.text = self.history[at].clone();
                    self.cursor = self.text.len();
                }
                self.search = None;
            }
        }
        true
    }

    fn kill(&mut self, from: usize, to: usize) {
        if from < to {
            self.killed = self.text[from..to].to_string();
            self.remove(from, to);
        }
    }

    fn remove(&mut self, from: usize, to: usize) {
        if from < to {
            self.text.replace_range(from..to, "");
            self.cursor = from;
        }
    }

    fn prev_char(&self) -> usize {
        self.text[..self.cursor]
            .char_indices()
            .next_back()
            .map_or(0, |(at, _)| at)
    }

    fn next_char(&self) -> usize {
        self.text[self.cursor..]
            .chars()
            .next()
            .map_or(self.cursor, |c| self.cursor + c.len_utf8())
    }

    /// The start of the word before the cursor (spaces skipped first), as Ctrl-W and Alt-B see it.
    fn prev_word(&self) -> usize {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches(|c: char| !c.is_alphanumeric());
        trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| !c.is_alphanumeric())
            .map_or(0, |(at, c)| at + c.len_utf8())
    }

    /// The end of the word after the cursor.
    fn next_word(&self) -> usize {
        let after = &self.text[self.cursor..];
        let skip = after.len()
            - after
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .len();
        let rest = &after[skip..];
        let word = rest
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(rest.len());
        self.cursor + skip + word
    }

    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |at| at + 1)
    }

    fn line_end(&self) -> usize {
        self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |at| self.cursor + at)
    }

    /// Up/Down: to the line above or below at the same column, or through the history from the
    /// first or last line.
    fn vertical(&mut self, step: isize) {
        let start = self.line_start();
        let column = self.text[start..self.cursor].chars().count();
        if step < 0 && start > 0 {
            let above = self.text[..start - 1].rfind('\n').map_or(0, |at| at + 1);
            self.cursor = advance(&self.text, above, column, start - 1);
        } else if step > 0 && self.line_end() < self.text.len() {
            let below = self.line_end() + 1;
            let end = self.text[below..]
                .find('\n')
                .map_or(self.text.len(), |at| below + at);
            self.cursor = advance(&self.text, below, column, end);
        } else {
            self.browse(step);
        }
    }

    fn browse(&mut self, step: isize) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() as isize - 1;
        let at = match self.history_at {
            None if step < 0 => {
                self.draft = self.text.clone();
                last
            }
            None => return,
            Some(at) => at as isize + step,
        };
        if at > last {
            self.history_at = None;
            self.text = std::mem::take(&mut self.draft);
        } else {
            let at = at.clamp(0, last) as usize;
            self.history_at = Some(at);
            self.text = self.history[at].clone();
        }
        self.cursor = self.text.len();
    }

    /// The rows the input takes in a live area `width` cells wide, the first starting with
    /// `prompt` and the rest indented under it, wrapped at the width (never cut: a long directive
    /// shows from its start), and the cursor's place among them.
    pub fn layout(&self, prompt: &str, width: usize) -> Layout {
        if let Some(search) = &self.search {
            let found = search.found.map_or("", |at| self.history[at].as_str());
            let label = if search.found.is_none() && !search.query.is_empty() {
                "failing reverse-i-search"
            } else {
                "reverse-i-search"
            };
            let head = format!("({label})`{}': ", search.query);
            let cursor = (0, cells(&head).min(width.saturating_sub(1)));
            let mut layout = wrap(&format!("{head}{found}"), "", width, usize::MAX);
            layout.cursor = cursor;
            return layout;
        }
        wrap(&self.text, prompt, width, self.cursor)
    }
}

/// Where rows start inside lines (byte offsets): after the last space that lets a row end before
/// `limit`, or at the character that would pass it when a word is longer than a row.
fn breaks(text: &str, first: usize, indent: usize, limit: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut used = first;
    // The byte offset after the row's last space, and the cells used up to it.
    let mut space: Option<(usize, usize)> = None;
    for (at, c) in text.char_indices() {
        if c == '\n' {
            used = indent;
            space = None;
            continue;
        }
        let w = c.width().unwrap_or(0);
        if used + w > limit {
            match space {
                Some((after, upto)) if c != ' ' && indent + (used - upto) + w <= limit => {
                    out.push(after);
                    used = indent + (used - upto);
                }
                _ => {
                    out.push(at);
                    used = indent;
                }
            }
            space = None;
        }
        used += w;
        if c == ' ' {
            space = Some((at + 1, used));
        }
    }
    out
}

/// The newest history entry before `before` containing `query`.
fn find(history: &[String], query: &str, before: usize) -> Option<usize> {
    history[..before.min(history.len())]
        .iter()
        .rposition(|entry| entry.contains(query))
}

/// The byte offset `column` chars after `from`, but not past `limit`.
fn advance(text: &str, from: usize, column: usize, limit: usize) -> usize {
    text[from..limit]
        .char_indices()
        .nth(column)
        .map_or(limit, |(at, _)| from + at)
}

/// How many cells `text` takes.
pub(crate) fn cells(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Wraps `text` (after `prompt`, continuation rows indented as wide as it) into rows of fewer than
/// `width` cells — at spaces where a word fits, else inside the word; the last column stays free
/// so a full row never makes the terminal wrap by itself — and finds the cell of byte offset
/// `cursor`.
fn wrap(text: &str, prompt: &str, width: usize, cursor: usize) -> Layout {
    let limit = width.saturating_sub(1).max(2);
    let indent = " ".repeat(cells(prompt).min(limit / 2));
    let breaks = breaks(text, cells(prompt), indent.len(), limit);
    let mut rows = vec![prompt.to_string()];
    let mut used = cells(prompt);
    let mut at_cursor = None;
    for (at, c) in text.char_indices().chain([(text.len(), '\0')]) {
        if breaks.contains(&at) {
            rows.push(indent.clone());
            used = indent.len();
        }
        if at == cursor && at_cursor.is_none() {
            if used >= limit {
                rows.push(indent.clone());
                used = indent.len();
            }
            at_cursor = Some((rows.len() - 1, used));
        }
        if c == '\0' && at == text.len() {
            break;
        }
        if c == '\n' {
            rows.push(indent.clone());
            used = indent.len();
            continue;
        }
        if let Some(row) = rows.last_mut() {
            row.push(c);
        }
        used += c.width().unwrap_or(0);
    }
    Layout {
        cursor: at_cursor.unwrap_or((rows.len() - 1, used.min(limit))),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(composer: &mut Composer, code: KeyCode, modifiers: KeyModifiers) {
        composer.key(KeyEvent::new(code, modifiers));
    }

    fn typed(text: &str) -> Composer {
        let mut composer = Composer::default();
        for c in text.chars() {
            press(&mut composer, KeyCode::Char(c), KeyModifiers::NONE);
        }
        composer
    }

    const CTRL: KeyModifiers = KeyModifiers::CONTROL;
    const ALT: KeyModifiers = KeyModifiers::ALT;
    const NONE: KeyModifiers = KeyModifiers::NONE;

    #[test]
    fn edits_like_a_shell_line() {
        let mut c = typed("keep the wrapper");
        press(&mut c, KeyCode::Char('a'), CTRL);
        c.insert("Please ");
        assert_eq!(c.text(), "Please keep the wrapper");
        press(&mut c, KeyCode::Char('e'), CTRL);
        press(&mut c, KeyCode::Char('w'), CTRL);
        assert_eq!(c.text(), "Please keep the ");
        press(&mut c, KeyCode::Char('y'), CTRL);
        assert_eq!(c.text(), "Please keep the wrapper");
        press(&mut c, KeyCode::Left, CTRL);
        press(&mut c, KeyCode::Left, CTRL);
        press(&mut c, KeyCode::Char('k'), CTRL);
        assert_eq!(c.text(), "Please keep ");
        press(&mut c, KeyCode::Home, NONE);
        press(&mut c, KeyCode::Char('f'), ALT);
        press(&mut c, KeyCode::Char('u'), CTRL);
        assert_eq!(c.text(), " keep ");
        press(&mut c, KeyCode::Delete, NONE);
        press(&mut c, KeyCode::End, NONE);
        press(&mut c, KeyCode::Backspace, NONE);
        press(&mut c, KeyCode::Left, NONE);
        press(&mut c, KeyCode::Char('é'), NONE);
        assert_eq!(c.text(), "keeép");
        press(&mut c, KeyCode::Char('b'), ALT);
        press(&mut c, KeyCode::Char('d'), CTRL);
        assert_eq!(c.text(), "eeép");
    }

    #[test]
    fn lines_and_history() {
        let mut c = typed("first");
        c.take();
        let mut typed_again = typed("one");
        std::mem::swap(&mut c.text, &mut typed_again.text);
        c.cursor = c.text.len();
        press(&mut c, KeyCode::Enter, ALT);
        c.insert("two");
        assert_eq!(c.text(), "one\ntwo");
        press(&mut c, KeyCode::Up, NONE);
        assert_eq!(c.cursor, 3, "same column on the line above");
        press(&mut c, KeyCode::Up, NONE);
        assert_eq!(c.text(), "first", "from the first line: the history");
        press(&mut c, KeyCode::Down, NONE);
        assert_eq!(c.text(), "one\ntwo", "past the newest: the draft back");
        c.paste("a\r\nb");
        assert_eq!(c.text(), "one\ntwoa\nb");
    }

    #[test]
    fn ctrl_r_searches_the_history() {
        let mut c = Composer::default();
        for entry in ["run the tests", "fix the parser", "run clippy"] {
            c.insert(entry);
            c.take();
        }
        press(&mut c, KeyCode::Char('r'), CTRL);
        for ch in "run".chars() {
            press(&mut c, KeyCode::Char(ch), NONE);
        }
        let layout = c.layout("› ", 60);
        assert_eq!(layout.rows, ["(reverse-i-search)`run': run clippy"]);
        press(&mut c, KeyCode::Char('r'), CTRL);
        assert!(c.layout("› ", 60).rows[0].ends_with("run the tests"));
        press(&mut c, KeyCode::Enter, NONE);
        assert_eq!(c.text(), "run the tests");
        assert!(!c.searching());
        press(&mut c, KeyCode::Char('r'), CTRL);
        press(&mut c, KeyCode::Char('z'), NONE);
        assert!(c.layout("› ", 60).rows[0].starts_with("(failing"));
        press(&mut c, KeyCode::Esc, NONE);
        assert_eq!(c.text(), "run the tests", "Esc leaves the buffer as it was");
    }

    #[test]
    fn a_long_directive_wraps_and_shows_its_start() {
        let mut c = typed("Keep the wrapper, mark it @deprecated and point to the new function");
        let layout = c.layout("steer› ", 30);
        assert_eq!(layout.rows[0], "steer› Keep the wrapper, mark");
        assert!(layout.rows.iter().all(|row| cells(row) < 30), "{layout:?}");
        assert_eq!(layout.cursor.0, layout.rows.len() - 1);
        press(&mut c, KeyCode::Home, NONE);
        assert_eq!(c.layout("steer› ", 30).cursor, (0, 7));
    }
}
