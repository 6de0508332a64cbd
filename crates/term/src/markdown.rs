//! Streaming Markdown: the agent's text is rendered a line at a time, as each line ends, so what
//! streams is never held back longer than its line — except a table, which is buffered until its
//! last row (its columns cannot be sized before). Block structure (headings, fences, tables,
//! lists, quotes, rules) is tracked here across lines; a line's inline Markdown (emphasis, strong,
//! code spans, links, strikethrough) goes through `pulldown-cmark`. Code blocks are highlighted
//! with `syntect`, whose syntaxes and theme are loaded on the first code block (a few tens of
//! milliseconds), not at start-up.

use std::sync::OnceLock;

use pulldown_cmark::{Event as Md, Options, Parser, Tag, TagEnd};

use crate::composer::cells;
use crate::render::Tone;
use crate::screen::{Look, Styled};

#[derive(Default)]
pub struct Markdown {
    /// Off: lines are committed as they came (plain).
    pub enabled: bool,
    /// Inside a fenced code block: its fence and its highlighter.
    fence: Option<Fence>,
    /// Table rows waiting for the table's end.
    table: Vec<String>,
}

struct Fence {
    marker: String,
    highlighter: Option<syntect::easy::HighlightLines<'static>>,
}

impl Markdown {
    pub fn new(enabled: bool) -> Markdown {
        Markdown {
            enabled,
            ..Markdown::default()
        }
    }

    pub fn reset(&mut self) {
        self.fence = None;
        self.table.clear();
    }

    /// One source line (without its newline): the lines to commit now.
    pub fn line(&mut self, source: &str, limit: usize) -> Vec<Styled> {
        if !self.enabled {
            return vec![vec![(source.to_string(), Look::tone(Tone::Plain))]];
        }
        let trimmed = source.trim_start();
        if let Some(fence) = &mut self.fence {
            if trimmed.trim_end() == fence.marker {
                self.fence = None;
                return vec![vec![("  ╰".to_string(), Look::tone(Tone::Dim))]];
            }
            return vec![code_line(source, fence.highlighter.as_mut())];
        }
        let mut out = Vec::new();
        if trimmed.starts_with('|') {
            self.table.push(source.to_string());
            return out;
        }
        out.extend(self.finish(limit));
        if let Some(marker) = ["```", "~~~"].iter().find(|m| trimmed.starts_with(**m)) {
            let marker_len = trimmed
                .chars()
                .take_while(|c| marker.starts_with(*c))
                .count();
            let lang = trimmed[marker_len..].trim().to_string();
            self.fence = Some(Fence {
                marker: trimmed[..marker_len].to_string(),
                highlighter: highlighter(&lang),
            });
            let label = if lang.is_empty() {
                "code".to_string()
            } else {
                lang
            };
            out.push(vec![(format!("  ╭ {label}"), Look::tone(Tone::Dim))]);
            return out;
        }
        out.push(block_line(source, limit));
        out
    }

    /// The stream ended: a buffered table is rendered; an open fence is closed.
    pub fn finish(&mut self, limit: usize) -> Vec<Styled> {
        self.fence = None;
        if self.table.is_empty() {
            return Vec::new();
        }
        table(&std::mem::take(&mut self.table), limit)
    }
}

/// A line outside code blocks and tables: heading, quote, list item, rule or paragraph text.
fn block_line(source: &str, limit: usize) -> Styled {
    let indent = source.len() - source.trim_start().len();
    let text = source.trim_start();
    let pad = " ".repeat(indent);
    let hashes = text.chars().take_while(|c| *c == '#').count();
    if (1..=6).contains(&hashes) && text[hashes..].starts_with(' ') {
        let look = Look {
            tone: if hashes <= 2 {
                Tone::Action
            } else {
                Tone::Plain
            },
            bold: true,
            underline: hashes == 1,
            ..Look::default()
        };
        let mut line = vec![(pad, Look::default())];
        line.extend(
            inline(text[hashes..].trim(), look)
                .into_iter()
                .map(|(t, l)| (t, Look { bold: true, ..l })),
        );
        return line;
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() >= 3
        && ["-", "*", "_"]
            .iter()
            .any(|m| compact.chars().all(|c| c.to_string() == *m))
    {
        return vec![("─".repeat(limit.min(40)), Look::tone(Tone::Dim))];
    }
    if let Some(rest) = text.strip_prefix('>') {
        let quote = Look {
            tone: Tone::Dim,
            italic: true,
            ..Look::default()
        };
        let mut line = vec![(format!("{pad}▌ "), Look::tone(Tone::Dim))];
        line.extend(inline(rest.trim_start(), quote));
        return line;
    }
    for bullet in ["- ", "* ", "+ "] {
        if let Some(rest) = text.strip_prefix(bullet) {
            let (mark, rest) = match rest.strip_prefix("[ ] ") {
                Some(rest) => ("☐ ", rest),
                None => match rest.strip_prefix("[x] ").or(rest.strip_prefix("[X] ")) {
                    Some(rest) => ("☑ ", rest),
                    None => ("• ", rest),
                },
            };
            let mut line = vec![(format!("{pad}{mark}"), Look::tone(Tone::Dim))];
            line.extend(inline(rest, Look::default()));
            return line;
        }
    }
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && (text[digits..].starts_with(". ") || text[digits..].starts_with(") ")) {
        let mut line = vec![(format!("{pad}{}. ", &text[..digits]), Look::tone(Tone::Dim))];
        line.extend(inline(&text[digits + 2..], Look::default()));
        return line;
    }
    let mut line = vec![(pad, Look::default())];
    line.extend(inline(text, Look::default()));
    line
}

/// A line's inline Markdown, over the look `base`.
pub(crate) fn inline(text: &str, base: Look) -> Styled {
    let mut out: Styled = Vec::new();
    let mut look = base;
    let mut links: Vec<String> = Vec::new();
    let push = |out: &mut Styled, text: &str, look: Look| match out.last_mut() {
        Some((last, at)) if *at == look => last.push_str(text),
        _ => out.push((text.to_string(), look)),
    };
    let parser = Parser::new_ext(
        text,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS,
    );
    for event in parser {
        match event {
            Md::Text(t) => push(&mut out, &t, look),
            Md::Code(t) => push(
                &mut out,
                &t,
                Look {
                    tone: Tone::Action,
                    ..look
                },
            ),
            Md::Start(Tag::Emphasis) => look.italic = true,
            Md::End(TagEnd::Emphasis) => look.italic = base.italic,
            Md::Start(Tag::Strong) => look.bold = true,
            Md::End(TagEnd::Strong) => look.bold = base.bold,
            Md::Start(Tag::Strikethrough) => look.tone = Tone::Dim,
            Md::End(TagEnd::Strikethrough) => look.tone = base.tone,
            Md::Start(Tag::Link { dest_url, .. }) => {
                links.push(dest_url.to_string());
                look.underline = true;
                look.tone = Tone::Action;
            }
            Md::End(TagEnd::Link) => {
                look.underline = base.underline;
                look.tone = base.tone;
                if let Some(url) = links.pop() {
                    let shown: String = out.last().map(|(t, _)| t.clone()).unwrap_or_default();
                    if !url.is_empty() && !shown.ends_with(url.as_str()) {
                        push(&mut out, &format!(" ({url})"), Look::tone(Tone::Dim));
                    }
                }
            }
            Md::SoftBreak | Md::HardBreak => push(&mut out, " ", look),
            Md::Html(t) | Md::InlineHtml(t) => push(&mut out, &t, look),
            Md::TaskListMarker(done) => push(&mut out, if done { "☑ " } else { "☐ " }, look),
            // Block tags a single line can open (a list marker, an indented code block): their
            // text is kept, their structure is this module's business.
            _ => {}
        }
    }
    if out.is_empty() && !text.is_empty() {
        out.push((text.to_string(), base));
    }
    out
}

/// A table's rows, sized to their widest cell; the delimiter row becomes a rule.
fn table(rows: &[String], limit: usize) -> Vec<Styled> {
    let cells_of = |row: &str| -> Vec<String> {
        let row = row.trim();
        let row = row.strip_prefix('|').unwrap_or(row);
        let row = row.strip_suffix('|').unwrap_or(row);
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut escaped = false;
        for c in row.chars() {
            match c {
                '\\' if !escaped => escaped = true,
                '|' if !escaped => cells.push(std::mem::take(&mut cell).trim().to_string()),
                _ => {
                    if escaped && c != '|' {
                        cell.push('\\');
                    }
                    escaped = false;
                    cell.push(c);
                }
            }
        }
        cells.push(cell.trim().to_string());
        cells
    };
    let is_rule = |cells: &[String]| {
        cells.iter().all(|c| {
            !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')) && c.contains('-')
        })
    };
    let parsed: Vec<Vec<String>> = rows.iter().map(|row| cells_of(row)).collect();
    let rendered: Vec<Option<Vec<Styled>>> = parsed
        .iter()
        .map(|cells| {
            (!is_rule(cells)).then(|| cells.iter().map(|c| inline(c, Look::default())).collect())
        })
        .collect();
    let columns = parsed.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rendered.iter().flatten() {
        for (n, cell) in row.iter().enumerate() {
            let w: usize = cell.iter().map(|(t, _)| cells(t)).sum();
            widths[n] = widths[n].max(w);
        }
    }
    // Too wide for the terminal: the widest columns give up room (their cells are cut with `…`).
    let budget = limit.saturating_sub(3 * columns + 1);
    while widths.iter().sum::<usize>() > budget && widths.iter().any(|w| *w > 6) {
        let widest = (0..columns).max_by_key(|n| widths[*n]).unwrap_or(0);
        widths[widest] -= 1;
    }
    let header = rendered.iter().position(Option::is_some);
    let mut out = Vec::new();
    for (n, row) in rendered.iter().enumerate() {
        let border = Look::tone(Tone::Dim);
        let Some(row) = row else {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
            out.push(vec![(format!("├{}┤", rule.join("┼")), border)]);
            continue;
        };
        let mut line: Styled = vec![("│".to_string(), border)];
        for (column, width) in widths.iter().enumerate() {
            let cell = row.get(column).cloned().unwrap_or_default();
            let mut used = 0;
            line.push((" ".to_string(), Look::default()));
            for (text, look) in cell {
                let look = Look {
                    bold: look.bold || Some(n) == header,
                    ..look
                };
                let mut kept = String::new();
                for c in text.chars() {
                    let w = cells(&c.to_string());
                    if used + w > *width {
                        break;
                    }
                    kept.push(c);
                    used += w;
                }
                if kept.len() < text.len() && used < *width {
                    kept.push('…');
                    used += 1;
                } else if kept.len() < text.len() {
                    kept.pop();
                    kept.push('…');
                }
                line.push((kept, look));
            }
            line.push((" ".repeat(width - used + 1), Look::default()));
            line.push(("│".to_string(), border));
        }
        out.push(line);
    }
    out
}

/// A line of code, highlighted when a syntax is known for the fence's language.
fn code_line(
    source: &str,
    highlighter: Option<&mut syntect::easy::HighlightLines<'static>>,
) -> Styled {
    let gutter = ("  │ ".to_string(), Look::tone(Tone::Dim));
    let Some(highlighter) = highlighter else {
        return vec![gutter, (source.to_string(), Look::tone(Tone::Plain))];
    };
    let (syntaxes, _) = assets();
    let line = format!("{source}\n");
    let mut out = vec![gutter];
    match highlighter.highlight_line(&line, syntaxes) {
        Ok(regions) => {
            for (style, text) in regions {
                let text = text.trim_end_matches('\n');
                if text.is_empty() {
                    continue;
                }
                let fg = style.foreground;
                out.push((
                    text.to_string(),
                    Look {
                        rgb: Some((fg.r, fg.g, fg.b)),
                        bold: style
                            .font_style
                            .contains(syntect::highlighting::FontStyle::BOLD),
                        ..Look::default()
                    },
                ));
            }
        }
        Err(_) => out.push((source.to_string(), Look::default())),
    }
    out
}

/// A highlighter for a fence's language (`rust`, `py`, `sh`, …), or none for an unknown one.
fn highlighter(lang: &str) -> Option<syntect::easy::HighlightLines<'static>> {
    let token = lang.split([' ', ',', '{']).next().unwrap_or_default();
    if token.is_empty() {
        return None;
    }
    let (syntaxes, theme) = assets();
    let syntax = syntaxes
        .find_syntax_by_token(token)
        .or_else(|| syntaxes.find_syntax_by_extension(token))?;
    Some(syntect::easy::HighlightLines::new(syntax, theme))
}

/// The syntaxes and the theme, loaded on first use.
fn assets() -> (
    &'static syntect::parsing::SyntaxSet,
    &'static syntect::highlighting::Theme,
) {
    static SYNTAXES: OnceLock<syntect::parsing::SyntaxSet> = OnceLock::new();
    static THEME: OnceLock<syntect::highlighting::Theme> = OnceLock::new();
    let syntaxes = SYNTAXES.get_or_init(syntect::parsing::SyntaxSet::load_defaults_newlines);
    let theme = THEME.get_or_init(|| {
        let mut themes = syntect::highlighting::ThemeSet::load_defaults();
        themes
            .themes
            .remove("base16-ocean.dark")
            .unwrap_or_default()
    });
    (syntaxes, theme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &Styled) -> String {
        line.iter().map(|(t, _)| t.as_str()).collect()
    }

    fn render(source: &str) -> Vec<Styled> {
        let mut md = Markdown {
            enabled: true,
            ..Markdown::default()
        };
        let mut out = Vec::new();
        for line in source.lines() {
            out.extend(md.line(line, 60));
        }
        out.extend(md.finish(60));
        out
    }

    #[test]
    fn blocks_and_inline_emphasis() {
        let out = render(
            "# Title\nSome **bold** and *it* and `code`, a [link](https://x.y).\n- item\n> quoted\n---\n1. first",
        );
        let lines: Vec<String> = out.iter().map(text).collect();
        assert_eq!(
            lines,
            [
                "Title",
                "Some bold and it and code, a link (https://x.y).",
                "• item",
                "▌ quoted",
                "────────────────────────────────────────",
                "1. first"
            ]
        );
        let bold = out[1].iter().find(|(t, _)| t == "bold").unwrap();
        assert!(bold.1.bold);
        let code = out[1].iter().find(|(t, _)| t == "code").unwrap();
        assert_eq!(code.1.tone, Tone::Action);
        assert!(out[0][1].1.bold && out[0][1].1.underline);
    }

    #[test]
    fn tables_are_sized_and_fences_highlighted() {
        let out = render("| name | size |\n|---|--:|\n| a.rs | 12 |\n| longer.rs | 3 |\nafter");
        let lines: Vec<String> = out.iter().map(text).collect();
        assert_eq!(
            lines,
            [
                "│ name      │ size │",
                "├───────────┼──────┤",
                "│ a.rs      │ 12   │",
                "│ longer.rs │ 3    │",
                "after"
            ]
        );
        let out = render("```rust\nfn main() {}\n```\nafter");
        assert_eq!(text(&out[0]), "  ╭ rust");
        assert_eq!(text(&out[1]), "  │ fn main() {}");
        assert!(
            out[1].iter().filter(|(_, l)| l.rgb.is_some()).count() > 1,
            "highlighted in more than one colour: {:?}",
            out[1]
        );
        assert_eq!(text(&out[2]), "  ╰");
        assert_eq!(text(&out[3]), "after");
    }
}
