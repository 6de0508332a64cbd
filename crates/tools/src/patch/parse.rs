//! Parsing the patch format: text in, [`FileOp`]s out, or a [`ParseError`] that names the patch line.
//!
//! Lenient where models are sloppy and the meaning is still clear: blank lines around the envelope,
//! a heredoc wrapper left inside the input, a first hunk of an update without its `@@` line, an empty
//! line inside a hunk standing for an empty context line, file headers padded with spaces, blank
//! lines after `*** End of File`, a rename whose hunks are context only. Strict where a guess could
//! corrupt a file: a line inside a hunk that starts with none of ` `, `-`, `+` is an error.
//!
//! Kept deliberately different from Codex (the tool's description tells the model what to do
//! instead): `Add File` over an existing file and `Move to` onto one are refused, the patch is
//! all or nothing, a missing final newline stays missing, a file is named once per patch.

/// What one line of a hunk does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Remove,
    Add,
}

/// One `@@` section of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The text after `@@`, e.g. a function signature: the search starts after the line that has it.
    pub hint: Option<String>,
    pub lines: Vec<(LineKind, String)>,
    /// `*** End of File` closed this chunk: it must match at the end of the file.
    pub end_of_file: bool,
    /// 1-based line of the `@@` (or first) line in the patch, for messages.
    pub patch_line: usize,
}

impl Chunk {
    /// The lines the file must have where the chunk applies: context and removed lines, in order.
    pub fn old_lines(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(kind, _)| *kind != LineKind::Add)
            .map(|(_, text)| text.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    Add {
        path: String,
        contents: String,
    },
    Delete {
        path: String,
    },
    Update {
        path: String,
        move_to: Option<String>,
        chunks: Vec<Chunk>,
    },
}

impl FileOp {
    pub fn path(&self) -> &str {
        match self {
            FileOp::Add { path, .. } | FileOp::Delete { path } | FileOp::Update { path, .. } => {
                path
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid patch, line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

const BEGIN: &str = "*** Begin Patch";
const END: &str = "*** End Patch";
const ADD: &str = "*** Add File: ";
const DELETE: &str = "*** Delete File: ";
const UPDATE: &str = "*** Update File: ";
const MOVE: &str = "*** Move to: ";
const EOF_MARKER: &str = "*** End of File";

fn error(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses a whole patch.
pub fn parse(text: &str) -> Result<Vec<FileOp>, ParseError> {
    let all: Vec<&str> = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // Envelope: the first and last meaningful lines, allowing a heredoc wrapper around them.
    let meaningful = |line: &str| {
        let t = line.trim();
        !t.is_empty() && !is_heredoc_wrapper(t)
    };
    let Some(first) = all.iter().position(|l| meaningful(l)) else {
        return Err(error(
            1,
            format!("the patch is empty; it must start with `{BEGIN}`"),
        ));
    };
    let last = all.iter().rposition(|l| meaningful(l)).unwrap_or(first);
    if all[first].trim() != BEGIN {
        return Err(error(
            first + 1,
            format!(
                "the patch must start with `{BEGIN}`, found `{}`",
                all[first].trim()
            ),
        ));
    }
    if last == first || all[last].trim() != END {
        return Err(error(
            last + 1,
            format!(
                "the patch must end with `{END}`, found `{}`",
                all[last].trim()
            ),
        ));
    }

    let mut ops = Vec::new();
    let mut i = first + 1;
    while i < last {
        // A file header may be padded with spaces (the model indented it). `*** Move to:` and
        // lines inside an update's hunks are not trimmed: there a padded line is a context line
        // (a file may well contain `*** …` text), as in Codex.
        let line = all[i].trim();
        let number = i + 1;
        if line.is_empty() {
            i += 1;
            continue;
        }
        if let Some(path) = line.strip_prefix(ADD) {
            let path = file_path(path, number)?;
            i += 1;
            let mut contents = String::new();
            while i < last && !all[i].trim_start().starts_with("*** ") {
                match all[i].strip_prefix('+') {
                    Some(text) => {
                        contents.push_str(text);
                        contents.push('\n');
                    }
                    None => {
                        return Err(error(
                            i + 1,
                            format!(
                                "in `{ADD}{path}` every line must start with `+`, found `{}`",
                                all[i]
                            ),
                        ));
                    }
                }
                i += 1;
            }
            ops.push(FileOp::Add { path, contents });
        } else if let Some(path) = line.strip_prefix(DELETE) {
            ops.push(FileOp::Delete {
                path: file_path(path, number)?,
            });
            i += 1;
        } else if let Some(path) = line.strip_prefix(UPDATE) {
            let path = file_path(path, number)?;
            i += 1;
            let mut move_to = None;
            if i < last
                && let Some(target) = all[i].strip_prefix(MOVE)
            {
                move_to = Some(file_path(target, i + 1)?);
                i += 1;
            }
            let (chunks, next) = parse_chunks(&all, i, last, &path, move_to.is_some())?;
            if chunks.is_empty() && move_to.is_none() {
                return Err(error(
                    number,
                    format!("`{UPDATE}{path}` has no hunks; add `@@` sections with the change"),
                ));
            }
            i = next;
            ops.push(FileOp::Update {
                path,
                move_to,
                chunks,
            });
        } else {
            return Err(error(
                number,
                format!("expected `{ADD}`, `{DELETE}`, `{UPDATE}` or `{END}`, found `{line}`"),
            ));
        }
    }
    if ops.is_empty() {
        return Err(error(last + 1, "the patch changes no file"));
    }
    Ok(ops)
}

fn is_heredoc_wrapper(line: &str) -> bool {
    line == "EOF" || line == "'EOF'" || line.starts_with("apply_patch <<") || line.starts_with("<<")
}

fn file_path(raw: &str, line: usize) -> Result<String, ParseError> {
    let path = raw.trim();
    if path.is_empty() {
        return Err(error(line, "missing file path"));
    }
    Ok(path.to_string())
}

/// Parses the hunks of one update, from line `i` up to the next file header or `last`. A hunk of
/// context lines only changes nothing but must still match; an update made only of such hunks is
/// refused unless it moves the file (the model meant a change it did not write).
fn parse_chunks(
    all: &[&str],
    mut i: usize,
    last: usize,
    path: &str,
    moving: bool,
) -> Result<(Vec<Chunk>, usize), ParseError> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut current: Option<Chunk> = None;
    while i < last {
        let line = all[i];
        if line.starts_with(ADD) || line.starts_with(DELETE) || line.starts_with(UPDATE) {
            break;
        }
        if line.trim_end() == EOF_MARKER {
            match current.as_mut() {
                Some(chunk) => chunk.end_of_file = true,
                None => return Err(error(i + 1, format!("`{EOF_MARKER}` must close a hunk"))),
            }
            i += 1;
            continue;
        }
        if let Some(rest) = line.strip_prefix("@@") {
            if let Some(done) = current.take() {
                chunks.push(done);
            }
            let hint = rest.trim();
            let hint = hint.strip_suffix("@@").map(str::trim).unwrap_or(hint);
            current = Some(Chunk {
                hint: (!hint.is_empty()).then(|| hint.to_string()),
                lines: Vec::new(),
                end_of_file: false,
                patch_line: i + 1,
            });
            i += 1;
            continue;
        }
        if line.starts_with("*** ") {
            return Err(error(
                i + 1,
                format!("unexpected `{}` inside `{UPDATE}{path}`", line.trim_end()),
            ));
        }
        let (kind, text) = match line.chars().next() {
            Some(' ') => (LineKind::Context, &line[1..]),
            Some('-') => (LineKind::Remove, &line[1..]),
            Some('+') => (LineKind::Add, &line[1..]),
            // An empty line is an empty context line whose leading space was lost.
            None => (LineKind::Context, ""),
            Some(_) => {
                return Err(error(
                    i + 1,
                    format!(
                        "in `{UPDATE}{path}`, hunk lines start with ` ` (context), `-` (remove) or `+` (add); found `{line}`"
                    ),
                ));
            }
        };
        // Blank lines after `*** End of File` separate it from what follows; they are not context.
        if line.trim().is_empty() && current.as_ref().is_some_and(|c| c.end_of_file) {
            i += 1;
            continue;
        }
        let chunk = current.get_or_insert_with(|| Chunk {
            hint: None,
            lines: Vec::new(),
            end_of_file: false,
            patch_line: i + 1,
        });
        if chunk.end_of_file {
            return Err(error(
                i + 1,
                format!("lines after `{EOF_MARKER}` in `{UPDATE}{path}`; start a new `@@` hunk"),
            ));
        }
        chunk.lines.push((kind, text.to_string()));
        i += 1;
    }
    if let Some(done) = current.take() {
        chunks.push(done);
    }
    let changes_nothing = |chunk: &Chunk| {
        chunk
            .lines
            .iter()
            .all(|(kind, _)| *kind == LineKind::Context)
    };
    if !moving
        && chunks.iter().all(changes_nothing)
        && let Some(chunk) = chunks.first()
    {
        return Err(error(
            chunk.patch_line,
            format!("a hunk in `{UPDATE}{path}` changes nothing: it has no `-` or `+` lines"),
        ));
    }
    Ok((chunks, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section_kind() {
        let patch = "*** Begin Patch\n*** Add File: a.txt\n+one\n+two\n*** Delete File: b.txt\n*** Update File: c.rs\n*** Move to: d.rs\n@@ fn main() {\n context\n-old\n+new\n*** End of File\n*** End Patch\n";
        let ops = parse(patch).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(
            ops[0],
            FileOp::Add {
                path: "a.txt".into(),
                contents: "one\ntwo\n".into()
            }
        );
        assert_eq!(
            ops[1],
            FileOp::Delete {
                path: "b.txt".into()
            }
        );
        let FileOp::Update {
            path,
            move_to,
            chunks,
        } = &ops[2]
        else {
            panic!()
        };
        assert_eq!((path.as_str(), move_to.as_deref()), ("c.rs", Some("d.rs")));
        assert_eq!(chunks[0].hint.as_deref(), Some("fn main() {"));
        assert!(chunks[0].end_of_file);
        assert_eq!(chunks[0].old_lines(), ["context", "old"]);
    }

    #[test]
    fn envelope_errors_name_the_line() {
        assert_eq!(parse("").unwrap_err().line, 1);
        let err = parse("hello\n*** End Patch").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid patch, line 1: the patch must start with `*** Begin Patch`, found `hello`"
        );
        let err = parse("*** Begin Patch\n*** Add File: a\n+x\n").unwrap_err();
        assert!(err.message.contains("must end with `*** End Patch`"));
    }

    #[test]
    fn tolerates_heredoc_wrapper_and_missing_first_hunk_header() {
        let patch = "apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: a\n-x\n+y\n*** End Patch\nEOF\n";
        let ops = parse(patch).unwrap();
        let FileOp::Update { chunks, .. } = &ops[0] else {
            panic!()
        };
        assert_eq!(chunks[0].lines.len(), 2);
    }

    #[test]
    fn rejects_unprefixed_hunk_lines() {
        let err = parse("*** Begin Patch\n*** Update File: a\n@@\n-x\nnot prefixed\n*** End Patch")
            .unwrap_err();
        assert_eq!(err.line, 5);
    }
}
