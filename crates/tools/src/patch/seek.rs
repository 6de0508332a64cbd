//! Finding where a hunk applies. Four levels, each tried over the whole search range before the next:
//! exact; ignoring trailing whitespace; ignoring surrounding whitespace; and with common Unicode
//! punctuation normalised (curly quotes, dashes, non-breaking and other odd spaces). The first match
//! at the lowest level wins, so a fuzzy match never beats an exact one further down.

use std::borrow::Cow;

/// How loosely a hunk matched; reported so a model learns its context was off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Exact,
    TrailingWhitespace,
    SurroundingWhitespace,
    Punctuation,
}

impl Level {
    const ALL: [Level; 4] = [
        Level::Exact,
        Level::TrailingWhitespace,
        Level::SurroundingWhitespace,
        Level::Punctuation,
    ];

    fn same(self, file: &str, patch: &str) -> bool {
        match self {
            Level::Exact => file == patch,
            Level::TrailingWhitespace => file.trim_end() == patch.trim_end(),
            Level::SurroundingWhitespace => file.trim() == patch.trim(),
            Level::Punctuation => normalise(file) == normalise(patch),
        }
    }
}

/// Trimmed, with look-alike punctuation and spaces replaced by their ASCII forms.
pub fn normalise(text: &str) -> Cow<'_, str> {
    let trimmed = text.trim();
    if trimmed.is_ascii() {
        return Cow::Borrowed(trimmed);
    }
    let mut out = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => out.push('\''),
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => out.push('"'),
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
            | '\u{2212}' => out.push('-'),
            '\u{00A0}' | '\u{2002}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => {
                out.push(' ')
            }
            '\u{2026}' => out.push_str("..."),
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// Finds `pattern` in `lines` at or after `start`. With `at_end` the pattern must end the file.
pub fn seek(
    lines: &[&str],
    pattern: &[&str],
    start: usize,
    at_end: bool,
) -> Option<(usize, Level)> {
    if pattern.len() > lines.len() {
        return None;
    }
    let last_start = lines.len() - pattern.len();
    if start > last_start {
        return None;
    }
    let matches_at = |at: usize, level: Level| {
        pattern
            .iter()
            .zip(&lines[at..at + pattern.len()])
            .all(|(p, l)| level.same(l, p))
    };
    for level in Level::ALL {
        if at_end {
            if matches_at(last_start, level) {
                return Some((last_start, level));
            }
            continue;
        }
        if let Some(at) = (start..=last_start).find(|&at| matches_at(at, level)) {
            return Some((at, level));
        }
    }
    None
}

/// Finds the line matching a `@@` hint at or after `start`.
pub fn seek_hint(lines: &[&str], hint: &str, start: usize) -> Option<usize> {
    for level in Level::ALL {
        if let Some(found) = (start..lines.len()).find(|&i| level.same(lines[i], hint)) {
            return Some(found);
        }
    }
    // A hint is often a fragment of the line (`fn main` for `pub fn main() {`).
    let wanted = normalise(hint);
    (start..lines.len()).find(|&i| normalise(lines[i]).contains(wanted.as_ref()))
}

/// The window of `lines` most like `pattern` (most lines equal after normalisation), as
/// `(start, lines that agree)`, for error messages. Bounded work on huge files.
pub fn closest(lines: &[&str], pattern: &[&str]) -> Option<(usize, usize)> {
    if pattern.is_empty() || lines.is_empty() {
        return None;
    }
    let normal_pattern: Vec<Cow<'_, str>> = pattern.iter().map(|p| normalise(p)).collect();
    let normal_lines: Vec<Cow<'_, str>> = lines.iter().map(|l| normalise(l)).collect();
    let width = pattern.len().min(lines.len());
    let windows = lines.len() - width + 1;
    const BUDGET: usize = 20_000_000;
    let step = (windows * width).div_ceil(BUDGET).max(1);
    let mut best: Option<(usize, usize)> = None;
    for at in (0..windows).step_by(step) {
        let score = (0..width)
            .filter(|&k| normal_lines[at + k] == normal_pattern[k])
            .count();
        if score > 0 && best.is_none_or(|(_, top)| score > top) {
            best = Some((at, score));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn exact_beats_fuzzy_further_down() {
        let file = lines("a  \nb\na\nb");
        assert_eq!(seek(&file, &["a", "b"], 0, false), Some((2, Level::Exact)));
        assert_eq!(seek(&file, &["a", "b"], 3, false), None);
    }

    #[test]
    fn levels_in_order() {
        let file = lines("  let x = 1;  \nprintln!(\u{201C}hi\u{201D}); // \u{2014} done");
        assert_eq!(
            seek(&file, &["  let x = 1;"], 0, false),
            Some((0, Level::TrailingWhitespace))
        );
        assert_eq!(
            seek(&file, &["let x = 1;"], 0, false),
            Some((0, Level::SurroundingWhitespace))
        );
        assert_eq!(
            seek(&file, &["println!(\"hi\"); // - done"], 0, false),
            Some((1, Level::Punctuation))
        );
    }

    #[test]
    fn end_of_file_anchors() {
        let file = lines("x\ny\nx");
        assert_eq!(seek(&file, &["x"], 0, true), Some((2, Level::Exact)));
    }

    #[test]
    fn hint_matches_a_fragment() {
        let file = lines("mod a;\npub fn main() {\n}");
        assert_eq!(seek_hint(&file, "fn main", 0), Some(1));
    }

    #[test]
    fn closest_window() {
        let file = lines("a\nb\nc\nd\ne");
        assert_eq!(closest(&file, &["c", "X", "e"]), Some((2, 2)));
    }
}
