//! Splitting a shell command line into the simple commands it runs, so rules and approvals look at
//! each of them: `git status && rm -rf ~` is two commands, and a rule or grant for the first says
//! nothing about the second.
//!
//! The line is parsed by tree-sitter-bash (the grammar Codex's approvals use too), and every
//! command in the tree counts: in lists, pipelines, subshells, groups, loops, conditionals,
//! function bodies, command and process substitutions — inside double quotes, parameter
//! expansions and unquoted here-document bodies too (`cat <<EOF` with `$(rm x)` in the body runs
//! `rm x`; a quoted `<<'EOF'` body is data). Assignments on their own (`PATH=.:$PATH`) and
//! declarations (`export LD_PRELOAD=…`) count as commands, since they change what later commands
//! run. A line the grammar cannot read (an unclosed quote or parenthesis) is an error: rules must
//! not guess.

use tree_sitter::{Node, Parser};

/// One command as it would run: its words (quotes removed; leading `NAME=value` assignments
/// kept as words) and where its input and output are redirected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleCommand {
    pub words: Vec<String>,
    /// Redirection targets (`> file`, `>> file`, `< file`).
    pub redirects: Vec<String>,
    /// Its standard input comes from the line itself: a pipe, `< file`, a here-document or a
    /// here-string (a shell so fed runs what it is fed).
    pub fed: bool,
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

/// Every simple command in `line`: the outer ones in order, then the nested ones.
pub fn split(line: &str) -> Result<Vec<SimpleCommand>, ParseError> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .map_err(|e| ParseError(format!("the shell grammar did not load: {e}")))?;
    let tree = parser
        .parse(line, None)
        .ok_or_else(|| ParseError("the parser gave up".into()))?;
    let root = tree.root_node();
    if root.has_error() {
        return Err(ParseError(unreadable(root, line)));
    }
    let mut found = Vec::new();
    walk(root, line, 0, &[], false, &mut found);
    // Outer commands first (stable within each depth), as people read the line.
    found.sort_by_key(|(depth, _)| usize::from(*depth > 0));
    Ok(found.into_iter().map(|(_, command)| command).collect())
}

/// The words of `text` when it is exactly one simple command whose words are all literal: plain
/// words, `'single'` or `"double"` quoted text and backslash escapes, nothing the shell would expand
/// (`$VAR`, `$(…)`, globs, `~`, braces) and no redirection. `None` otherwise. For recognising
/// fixed forms such as `cd 'my dir'` without guessing at what the shell would make of the rest.
pub fn literal_words(text: &str) -> Option<Vec<String>> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .ok()?;
    let tree = parser.parse(text, None)?;
    let root = tree.root_node();
    if root.has_error() {
        return None;
    }
    let mut cursor = root.walk();
    let statements: Vec<Node> = root
        .children(&mut cursor)
        .filter(|n| n.kind() != "comment")
        .collect();
    let [command] = statements.as_slice() else {
        return None;
    };
    if command.kind() != "command" {
        return None;
    }
    let mut words = Vec::new();
    let mut cursor = command.walk();
    for child in command.children(&mut cursor) {
        if !is_literal(child, text) {
            return None;
        }
        words.push(text_of(child, text));
    }
    Some(words)
}

/// Whether a word node stands for exactly its own text once quotes and escapes are removed.
fn is_literal(node: Node, src: &str) -> bool {
    let mut cursor = node.walk();
    match node.kind() {
        "command_name" | "concatenation" => {
            let children: Vec<Node> = node.children(&mut cursor).collect();
            !children.is_empty() && children.into_iter().all(|c| is_literal(c, src))
        }
        "word" | "number" => {
            let raw = &src[node.start_byte()..node.end_byte()];
            !raw.starts_with('~') && !raw.contains(['*', '?', '[', '{', '$', '`'])
        }
        "raw_string" => true,
        "string" => node
            .children(&mut cursor)
            .filter(|c| c.is_named())
            .all(|c| c.kind() == "string_content"),
        _ => false,
    }
}

/// Where the grammar stopped reading, said plainly.
fn unreadable(root: Node, line: &str) -> String {
    let mut cursor = root.walk();
    let mut pending = vec![root];
    while let Some(node) = pending.pop() {
        if node.is_missing() {
            return format!("`{}` is missing", node.kind());
        }
        if node.is_error() {
            let at = &line[node.start_byte()..node.end_byte().min(line.len())];
            return match at.trim() {
                "" => "the line ends in the middle of a quote or a construct".to_string(),
                text => format!("unexpected `{}`", text.chars().take(40).collect::<String>()),
            };
        }
        pending.extend(
            node.children(&mut cursor)
                .collect::<Vec<_>>()
                .into_iter()
                .rev(),
        );
    }
    "the line is not valid shell".to_string()
}

/// Nodes that run something: commands, and statements that change what commands run.
fn walk(
    node: Node,
    src: &str,
    depth: usize,
    redirects: &[String],
    fed: bool,
    out: &mut Vec<(usize, SimpleCommand)>,
) {
    let mut cursor = node.walk();
    match node.kind() {
        "command" | "declaration_command" | "unset_command" => {
            out.push((depth, command(node, src, redirects, fed)));
            // Substitutions in its words run first, nested.
            for child in node.children(&mut cursor) {
                walk_nested(child, src, depth + 1, out);
            }
        }
        "variable_assignment" | "variable_assignments" => {
            out.push((
                depth,
                SimpleCommand {
                    words: vec![text_of(node, src)],
                    redirects: redirects.to_vec(),
                    fed,
                },
            ));
            for child in node.children(&mut cursor) {
                walk_nested(child, src, depth + 1, out);
            }
        }
        "redirected_statement" => {
            let mut own = redirects.to_vec();
            let children: Vec<Node> = node.children(&mut cursor).collect();
            let mut own_fed = fed;
            for child in &children {
                if matches!(child.kind(), "file_redirect" | "heredoc_redirect") {
                    own.extend(redirect_targets(*child, src));
                }
                own_fed |= feeds(*child, src);
            }
            for child in children {
                match child.kind() {
                    "file_redirect" | "heredoc_redirect" | "herestring_redirect" => {
                        walk_nested(child, src, depth + 1, out)
                    }
                    _ => walk(child, src, depth, &own, own_fed, out),
                }
            }
        }
        "pipeline" => {
            for (n, child) in node.children(&mut cursor).enumerate() {
                walk(child, src, depth, redirects, fed || n > 0, out);
            }
        }
        "command_substitution" | "process_substitution" => {
            for child in node.children(&mut cursor) {
                walk(child, src, depth + 1, &[], false, out);
            }
        }
        "subshell" => {
            for child in node.children(&mut cursor) {
                walk(child, src, depth + 1, redirects, fed, out);
            }
        }
        _ => {
            for child in node.children(&mut cursor) {
                walk(child, src, depth, redirects, fed, out);
            }
        }
    }
}

/// The commands inside a word, a redirect or a here-document body.
fn walk_nested(node: Node, src: &str, depth: usize, out: &mut Vec<(usize, SimpleCommand)>) {
    let mut cursor = node.walk();
    match node.kind() {
        "command_substitution" | "process_substitution" => {
            walk(node, src, depth - 1, &[], false, out)
        }
        _ => {
            for child in node.children(&mut cursor) {
                walk_nested(child, src, depth, out);
            }
        }
    }
}

/// Whether a redirect feeds standard input: `<`, `<<`, `<<<` (not `<&` or `<>`… of a descriptor).
fn feeds(node: Node, src: &str) -> bool {
    match node.kind() {
        "heredoc_redirect" | "herestring_redirect" => true,
        "file_redirect" => {
            let raw = &src[node.start_byte()..node.end_byte()];
            let operator = raw.trim_start_matches(|c: char| c.is_ascii_digit());
            (operator.starts_with('<')
                && !operator.starts_with("<&")
                && !operator.starts_with("<>"))
                && raw.chars().next().is_none_or(|c| c == '<' || c == '0')
        }
        _ => false,
    }
}

fn command(node: Node, src: &str, inherited: &[String], fed: bool) -> SimpleCommand {
    let mut words = Vec::new();
    let mut redirects = inherited.to_vec();
    let mut fed = fed;
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        fed |= feeds(child, src);
        match child.kind() {
            "file_redirect" | "heredoc_redirect" => redirects.extend(redirect_targets(child, src)),
            "herestring_redirect" | "comment" => {}
            _ if child.is_named() => words.push(text_of(child, src)),
            // `export`, `unset`, … are anonymous keyword nodes of their statements.
            kind if node.kind() != "command" && kind.chars().all(char::is_alphabetic) => {
                words.push(kind.to_string())
            }
            _ => {}
        }
    }
    SimpleCommand {
        words,
        redirects,
        fed,
    }
}

/// The files a redirect reads or writes (`2>&1`, `<&0` name descriptors, not files).
fn redirect_targets(node: Node, src: &str) -> Vec<String> {
    let mut cursor = node.walk();
    if node.kind() != "file_redirect" {
        let children: Vec<Node> = node.children(&mut cursor).collect();
        return children
            .into_iter()
            .filter(|c| c.kind() == "file_redirect")
            .flat_map(|c| redirect_targets(c, src))
            .collect();
    }
    node.children_by_field_name("destination", &mut cursor)
        .map(|d| text_of(d, src))
        .filter(|t| !t.chars().all(|c| c.is_ascii_digit() || c == '-'))
        .collect()
}

/// A word as the shell would pass it, quotes removed; substitutions shown as `$(…)` and `` `…` ``.
fn text_of(node: Node, src: &str) -> String {
    let raw = &src[node.start_byte()..node.end_byte()];
    let mut cursor = node.walk();
    match node.kind() {
        "command_name" => node
            .children(&mut cursor)
            .map(|c| text_of(c, src))
            .collect(),
        "word" | "number" => unescape(raw),
        "raw_string" => raw.trim_matches('\'').to_string(),
        "ansi_c_string" => ansi_c(
            raw.strip_prefix("$'")
                .and_then(|r| r.strip_suffix('\''))
                .unwrap_or(raw),
        ),
        "string" => {
            let mut out = String::new();
            let inner_start = node.start_byte() + 1;
            let mut at = inner_start;
            for child in node.children(&mut cursor).filter(|c| c.is_named()) {
                out.push_str(&unescape_quoted(
                    &src[at.min(child.start_byte())..child.start_byte()],
                ));
                out.push_str(&match child.kind() {
                    "string_content" => unescape_quoted(&src[child.start_byte()..child.end_byte()]),
                    _ => text_of(child, src),
                });
                at = child.end_byte();
            }
            let end = node.end_byte().saturating_sub(1).max(at);
            out.push_str(&unescape_quoted(&src[at.min(end)..end]));
            out
        }
        "variable_assignment" => {
            let name = node.child_by_field_name("name").map(|n| text_of(n, src));
            let value = node.child_by_field_name("value").map(|v| text_of(v, src));
            format!("{}={}", name.unwrap_or_default(), value.unwrap_or_default())
        }
        "variable_assignments" => node
            .children(&mut cursor)
            .filter(|c| c.is_named())
            .map(|c| text_of(c, src))
            .collect::<Vec<_>>()
            .join(" "),
        "concatenation" => node
            .children(&mut cursor)
            .map(|c| text_of(c, src))
            .collect(),
        "command_substitution" if raw.starts_with('`') => "`…`".to_string(),
        "command_substitution" => "$(…)".to_string(),
        "process_substitution" => format!("{}(…)", &raw[..1]),
        _ => raw.to_string(),
    }
}

/// The text of `$'…'` as bash decodes it: `\n`, `\t`, …, `\xHH`, `\NNN` (octal), `\uHHHH`,
/// `\UHHHHHHHH`, `\cX`, `\'` and `\\`. (`$'\x70sql'` is `psql`.)
fn ansi_c(inner: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    let digits = |from: usize, max: usize, radix: u32| -> (Option<u32>, usize) {
        let taken: String = chars[from..]
            .iter()
            .take(max)
            .take_while(|c| c.is_digit(radix))
            .collect();
        (u32::from_str_radix(&taken, radix).ok(), taken.len())
    };
    while i < chars.len() {
        if chars[i] != '\\' || i + 1 == chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let escape = chars[i + 1];
        i += 2;
        let simple = match escape {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'e' | 'E' => Some('\u{1b}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' | '\'' | '"' | '?' => Some(escape),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        let (value, used) = match escape {
            'x' => digits(i, 2, 16),
            'u' => digits(i, 4, 16),
            'U' => digits(i, 8, 16),
            '0'..='7' => {
                i -= 1;
                digits(i, 3, 8)
            }
            'c' if i < chars.len() => {
                let c = chars[i];
                i += 1;
                out.push(char::from_u32(u32::from(c) & 0x1f).unwrap_or(c));
                continue;
            }
            _ => (None, 0),
        };
        match value.and_then(char::from_u32) {
            Some(c) if used > 0 => {
                out.push(c);
                i += used;
            }
            _ => {
                out.push('\\');
                out.push(escape);
            }
        }
    }
    out
}

/// Backslash escapes of an unquoted word.
fn unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(next) => out.push(next),
            },
            c => out.push(c),
        }
    }
    out
}

/// Backslash escapes inside double quotes (only `\"`, `\\`, `\$`, `` \` `` and a new line).
fn unescape_quoted(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some('"' | '\\' | '$' | '`')) => {
                out.extend(chars.next());
            }
            ('\\', Some('\n')) => {
                chars.next();
            }
            (c, _) => out.push(c),
        }
    }
    out
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
        assert_eq!(texts("cat <(rm y)"), ["cat <(…)", "rm y"]);
        assert_eq!(texts("echo ${x:-$(rm z)}"), ["echo ${x:-$(rm z)}", "rm z"]);
        assert_eq!(texts("if true; then ls; fi"), ["true", "ls"]);
        assert_eq!(texts("f() { rm x; }; f"), ["rm x", "f"]);
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
        assert_eq!(
            split("a\"b\"c \"q\\\"x\"").unwrap()[0].words,
            ["abc", "q\"x"]
        );
        assert_eq!(split("{ ls; } > out").unwrap()[0].redirects, ["out"]);
    }

    #[test]
    fn heredoc_bodies_are_data_unless_they_substitute() {
        assert_eq!(
            texts("cat <<'EOF' > f.txt\nrm -rf /\nEOF\nls"),
            ["cat", "ls"]
        );
        assert_eq!(
            texts("cat <<EOF > f.txt\n$(rm -rf x)\nEOF\nls"),
            ["cat", "ls", "rm -rf x"]
        );
        assert_eq!(
            split("cat <<EOF > f.txt\nx\nEOF").unwrap()[0].redirects,
            ["f.txt"]
        );
        assert_eq!(texts("cat <<<\"$(rm w)\""), ["cat", "rm w"]);
    }

    #[test]
    fn assignments_and_declarations_count() {
        assert_eq!(texts("PATH=.:$PATH; ls"), ["PATH=.:$PATH", "ls"]);
        assert_eq!(
            texts("export LD_PRELOAD=./x.so"),
            ["export LD_PRELOAD=./x.so"]
        );
        assert_eq!(texts("a=$(rm q)"), ["a=$(…)", "rm q"]);
    }

    #[test]
    fn literal_words_only_for_fixed_text() {
        let words = |line: &str| literal_words(line);
        assert_eq!(
            words("cd 'foo bar'"),
            Some(vec!["cd".into(), "foo bar".into()])
        );
        assert_eq!(words("cd \"a b\""), Some(vec!["cd".into(), "a b".into()]));
        assert_eq!(words("cd a\\ b/c"), Some(vec!["cd".into(), "a b/c".into()]));
        assert_eq!(words("cd 'x'\"y\"z"), Some(vec!["cd".into(), "xyz".into()]));
        for expanded in [
            "cd $HOME",
            "cd \"$HOME/x\"",
            "cd ~/x",
            "cd src/*",
            "cd {a,b}",
            "cd $(pwd)",
            "cd `pwd`",
            "cd a > f",
            "cd a; ls",
            "cd a && ls",
            "x=1",
            "cd 'open",
        ] {
            assert_eq!(words(expanded), None, "{expanded}");
        }
    }

    #[test]
    fn ansi_c_quoting_is_decoded_as_bash_does() {
        assert_eq!(split("$'\\x70sql' -c x").unwrap()[0].words[0], "psql");
        assert_eq!(split("$'\\160sql'").unwrap()[0].words[0], "psql");
        assert_eq!(split("$'p\\u0073ql'").unwrap()[0].words[0], "psql");
        assert_eq!(split("echo $'a\\tb\\'c'").unwrap()[0].words[1], "a\tb'c");
    }

    #[test]
    fn commands_fed_by_the_line_are_marked() {
        let fed =
            |line: &str| -> Vec<bool> { split(line).unwrap().iter().map(|c| c.fed).collect() };
        assert_eq!(fed("echo psql | sh"), [false, true]);
        assert_eq!(fed("sh < script.sh"), [true]);
        assert_eq!(fed("bash <<'EOF'\npsql\nEOF"), [true]);
        assert_eq!(fed("bash <<< 'psql'"), [true]);
        assert_eq!(fed("bash -i"), [false]);
        assert_eq!(fed("ls > out 2>&1"), [false]);
    }

    #[test]
    fn unreadable_lines_are_errors() {
        assert!(split("echo 'unclosed").is_err());
        assert!(split("echo $(ls").is_err());
        assert!(split("a )").is_err());
    }
}
