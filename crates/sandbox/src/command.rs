//! Splitting a shell command line into the simple commands it runs, so rules and approvals look at
//! each of them: `git status && rm -rf ~` is two commands, and a rule or grant for the first says
//! nothing about the second.
//!
//! A small parser of the POSIX shell grammar's lexical layer — not a regular expression: quotes
//! (single, double with escapes), backslash escapes, the operators `&&` `||` `;` `|` `&` and new
//! lines, subshells `( … )` and groups `{ …; }`, command substitutions `$( … )` and backticks
//! (also inside double quotes), redirections (`>`, `>>`, `<`, `2>`, `&>`, `>&`, here-documents).
//! What is nested is split too and reported beside the outer commands. A line it cannot read
//! (an unclosed quote or parenthesis) is an error: rules must not guess.

/// One command as it would run: its words (quotes removed) and where its output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleCommand {
    pub words: Vec<String>,
    /// Redirection targets (`> file`, `>> file`, `< file`).
    pub redirects: Vec<String>,
}

impl SimpleCommand {
    /// The words joined by single spaces, for matching.
    pub fn text(&self) -> String {
        self.words.join(" ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the shell command: {0}")]
pub struct ParseError(pub String);

/// Every simple command in `line`, outer ones first in order, then the nested ones.
pub fn split(line: &str) -> Result<Vec<SimpleCommand>, ParseError> {
    let mut out = Vec::new();
    let chars: Vec<char> = strip_heredocs(line)?.chars().collect();
    let mut parser = Parser {
        chars: &chars,
        at: 0,
    };
    parser.list(&mut out, None)?;
    Ok(out)
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek2(&self) -> Option<char> {
        self.chars.get(self.at + 1).copied()
    }

    /// Parses commands until the end, or until `close` (`)` of a subshell or substitution).
    fn list(
        &mut self,
        out: &mut Vec<SimpleCommand>,
        close: Option<char>,
    ) -> Result<(), ParseError> {
        let mut words: Vec<String> = Vec::new();
        let mut redirects = Vec::new();
        let mut nested: Vec<SimpleCommand> = Vec::new();
        let mut pending_redirect = false;
        let finish =
            |words: &mut Vec<String>, redirects: &mut Vec<String>, out: &mut Vec<SimpleCommand>| {
                let words: Vec<String> = std::mem::take(words)
                    .into_iter()
                    .filter(|w| w != "{" && w != "}")
                    .collect();
                let redirects = std::mem::take(redirects);
                if !words.is_empty() || !redirects.is_empty() {
                    out.push(SimpleCommand { words, redirects });
                }
            };
        loop {
            let Some(c) = self.peek() else {
                if close.is_some() {
                    return Err(ParseError("a `(` or `$(` is never closed".into()));
                }
                break;
            };
            match c {
                c if Some(c) == close => {
                    self.at += 1;
                    break;
                }
                ' ' | '\t' => self.at += 1,
                '#' if words.is_empty()
                    || self
                        .chars
                        .get(self.at.wrapping_sub(1))
                        .is_some_and(|p| p.is_whitespace()) =>
                {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.at += 1;
                    }
                }
                ';' | '\n' | '&' | '|' => {
                    self.at += 1;
                    if matches!(
                        (c, self.peek()),
                        ('&', Some('&')) | ('|', Some('|')) | ('&', Some('>'))
                    ) {
                        if c == '&' && self.peek() == Some('>') {
                            // `&>file`: both streams to a file.
                            self.at += 1;
                            pending_redirect = true;
                            continue;
                        }
                        self.at += 1;
                    }
                    finish(&mut words, &mut redirects, out);
                }
                '(' => {
                    self.at += 1;
                    self.list(&mut nested, Some(')'))?;
                }
                ')' => return Err(ParseError("a `)` closes nothing".into())),
                '>' | '<' => {
                    self.at += 1;
                    if c == '<' && self.peek() == Some('<') {
                        self.at += 1;
                        self.heredoc()?;
                        continue;
                    }
                    if matches!(self.peek(), Some('>') | Some('&') | Some('|')) {
                        self.at += 1;
                    }
                    pending_redirect = true;
                }
                _ => {
                    // A file-descriptor number right before a redirection (`2>`).
                    if c.is_ascii_digit() && matches!(self.peek2(), Some('>') | Some('<')) {
                        self.at += 1;
                        continue;
                    }
                    let word = self.word(&mut nested)?;
                    if pending_redirect {
                        pending_redirect = false;
                        // `2>&1`: a descriptor, not a file.
                        if !word.chars().all(|c| c.is_ascii_digit() || c == '-') {
                            redirects.push(word);
                        }
                    } else {
                        words.push(word);
                    }
                }
            }
        }
        finish(&mut words, &mut redirects, out);
        out.extend(nested);
        Ok(())
    }

    /// One word, quotes removed; substitutions inside it go to `nested`.
    fn word(&mut self, nested: &mut Vec<SimpleCommand>) -> Result<String, ParseError> {
        let mut word = String::new();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
                '\\' => {
                    self.at += 1;
                    if let Some(next) = self.peek() {
                        if next != '\n' {
                            word.push(next);
                        }
                        self.at += 1;
                    }
                }
                '\'' => {
                    self.at += 1;
                    loop {
                        match self.peek() {
                            Some('\'') => {
                                self.at += 1;
                                break;
                            }
                            Some(c) => {
                                word.push(c);
                                self.at += 1;
                            }
                            None => return Err(ParseError("a `'` quote is never closed".into())),
                        }
                    }
                }
                '"' => {
                    self.at += 1;
                    loop {
                        match self.peek() {
                            Some('"') => {
                                self.at += 1;
                                break;
                            }
                            Some('\\') => {
                                self.at += 1;
                                if let Some(next) = self.peek() {
                                    word.push(next);
                                    self.at += 1;
                                }
                            }
                            Some('$') if self.peek2() == Some('(') => {
                                self.at += 2;
                                self.list(nested, Some(')'))?;
                                word.push_str("$(…)");
                            }
                            Some('`') => {
                                self.at += 1;
                                self.backtick(nested)?;
                                word.push_str("`…`");
                            }
                            Some(c) => {
                                word.push(c);
                                self.at += 1;
                            }
                            None => return Err(ParseError("a `\"` quote is never closed".into())),
                        }
                    }
                }
                '$' if self.peek2() == Some('(') => {
                    self.at += 2;
                    self.list(nested, Some(')'))?;
                    word.push_str("$(…)");
                }
                '`' => {
                    self.at += 1;
                    self.backtick(nested)?;
                    word.push_str("`…`");
                }
                c => {
                    word.push(c);
                    self.at += 1;
                }
            }
        }
        Ok(word)
    }

    fn backtick(&mut self, nested: &mut Vec<SimpleCommand>) -> Result<(), ParseError> {
        let start = self.at;
        while self.peek().is_some_and(|c| c != '`') {
            self.at += 1;
        }
        if self.peek().is_none() {
            return Err(ParseError("a backtick is never closed".into()));
        }
        let inner: String = self.chars[start..self.at].iter().collect();
        self.at += 1;
        nested.extend(split(&inner)?);
        Ok(())
    }

    /// The delimiter word of a here-document (its body was taken out by [`strip_heredocs`]).
    fn heredoc(&mut self) -> Result<(), ParseError> {
        if self.peek() == Some('-') {
            self.at += 1;
        }
        while self.peek() == Some(' ') {
            self.at += 1;
        }
        let mut ignored = Vec::new();
        self.word(&mut ignored)?;
        Ok(())
    }
}

/// Removes the bodies of here-documents (`<<EOF … EOF`): they are data, not commands.
fn strip_heredocs(line: &str) -> Result<String, ParseError> {
    let mut out = String::new();
    let mut lines = line.split_inclusive('\n');
    while let Some(current) = lines.next() {
        out.push_str(current);
        let Some(at) = current.find("<<") else {
            continue;
        };
        let rest = current[at + 2..].trim_start_matches('-').trim_start();
        let delimiter: String = rest
            .trim_start_matches(['\'', '"'])
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if delimiter.is_empty() {
            continue;
        }
        let mut closed = false;
        for body in lines.by_ref() {
            if body.trim() == delimiter {
                closed = true;
                break;
            }
        }
        if !closed {
            return Err(ParseError(format!(
                "the here-document `{delimiter}` is never closed"
            )));
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split(line)
            .unwrap()
            .iter()
            .map(SimpleCommand::text)
            .collect()
    }

    #[test]
    fn splits_lists_pipes_and_background() {
        assert_eq!(texts("git status && rm -rf ~"), ["git status", "rm -rf ~"]);
        assert_eq!(texts("a || b; c | d & e"), ["a", "b", "c", "d", "e"]);
        assert_eq!(texts("ls\nrm x"), ["ls", "rm x"]);
    }

    #[test]
    fn nested_substitutions_and_subshells_are_commands_too() {
        assert_eq!(
            texts("echo $(rm -rf /tmp/x) done"),
            ["echo $(…) done", "rm -rf /tmp/x"]
        );
        assert_eq!(
            texts("echo `psql -c 'select 1'`"),
            ["echo `…`", "psql -c select 1"]
        );
        assert_eq!(texts("(cd /; rm a) && { ls; }"), ["ls", "cd /", "rm a"]);
        assert_eq!(texts("echo \"x $(whoami)\""), ["echo x $(…)", "whoami"]);
    }

    #[test]
    fn quotes_escapes_and_redirections() {
        let commands = split("echo 'a && b' \"c;d\" e\\ f > out.txt 2>&1 >> log").unwrap();
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].words, ["echo", "a && b", "c;d", "e f"]);
        assert_eq!(commands[0].redirects, ["out.txt", "log"]);
        assert_eq!(
            texts("DATABASE_URL=postgres://x npm test"),
            ["DATABASE_URL=postgres://x npm test"]
        );
    }

    #[test]
    fn heredoc_bodies_are_data() {
        assert_eq!(
            texts("cat <<'EOF' > f.txt\nrm -rf /\nEOF\nls"),
            ["cat", "ls"]
        );
    }

    #[test]
    fn unreadable_lines_are_errors() {
        assert!(split("echo 'unclosed").is_err());
        assert!(split("echo $(ls").is_err());
        assert!(split("a )").is_err());
    }
}
