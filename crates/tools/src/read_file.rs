#![doc = include_str!("read_file.md")]
//!
//! ## Implementation notes
//!
//! The file is streamed line by line, so a huge file costs only the lines returned. A NUL byte in the
//! first 8 KiB marks a binary file; text that is not UTF-8 is refused rather than mangled.

use std::io::BufRead;

use cox_protocol::{Action, ToolKind, ToolSpec};
use serde::Deserialize;
use serde_json::json;

use crate::paths::Access;
use crate::{BoxFuture, Tool, ToolContext, ToolOutput, Touches, description, parse_args};

pub const DEFAULT_LIMIT: usize = 2000;
pub const MAX_LINE_CHARS: usize = 2000;
/// At most this much of one line is read into memory (a line is shown up to
/// [`MAX_LINE_CHARS`] characters; the rest of it is skipped, not stored).
const MAX_LINE_BYTES: usize = MAX_LINE_CHARS * 4;
/// Room kept in the budget for the note on how to continue.
const NOTE_ROOM: usize = 128;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    #[serde(default)]
    offset: Option<usize>,
    #[serde(default)]
    limit: Option<usize>,
}

/// The tool's name, as the model calls it.
pub const NAME: &str = "read_file";

pub struct ReadFile;

impl Tool for ReadFile {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("read_file.md")),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "file to read"},
                    "offset": {"type": "integer", "description": "first line, 1-based (default 1)"},
                    "limit": {"type": "integer", "description": "number of lines (default 2000)"}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Read
    }

    fn describe(
        &self,
        arguments: &serde_json::Value,
        _ctx: &ToolContext,
    ) -> (Vec<Action>, Touches) {
        let Some(path) = arguments["path"].as_str() else {
            return (Vec::new(), Touches::default());
        };
        let lines = arguments["offset"]
            .as_u64()
            .map(|start| cox_protocol::LineRange {
                start,
                end: arguments["limit"]
                    .as_u64()
                    .map(|count| start + count.saturating_sub(1)),
            });
        let action = Action::Read {
            path: path.to_string(),
            lines,
        };
        (vec![action], Touches::default())
    }

    fn call<'a>(
        &'a self,
        arguments: serde_json::Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let args = match parse_args::<Args>(NAME, arguments) {
                Ok(args) => args,
                Err(output) => return output,
            };
            let path = match ctx.check_path(&args.path, Access::Read) {
                Ok(path) => path,
                Err(message) => return ToolOutput::error(message),
            };
            let file = match open(&path, ctx) {
                Ok(file) => file,
                Err(message) => return ToolOutput::error(message),
            };
            // The session's output budget: a page never exceeds what the model may be shown.
            let budget = ctx.max_output_bytes;
            let result =
                tokio::task::spawn_blocking(move || read(file, &path, &args, budget)).await;
            match result {
                Ok(Ok(text)) => ToolOutput::ok(text),
                Ok(Err(message)) => ToolOutput::error(message),
                Err(e) => ToolOutput::error(format!("read_file failed: {e}")),
            }
        })
    }
}

/// Opens the checked path beneath the workspace without following symlinks: the checked path is
/// the real one, so only a path changed since the check fails here.
fn open(path: &std::path::Path, ctx: &ToolContext) -> Result<std::fs::File, String> {
    let shown = path.display();
    ctx.beneath(path, false)
        .and_then(|b| b.open())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("no such file: {shown}"),
            _ => format!("cannot read {shown}: {}", crate::os_reason(&e)),
        })
}

/// Reads one line (through its `\n`) into `line`, keeping at most `cap` bytes of it; returns the
/// line's whole length in bytes (0 at the end of the file). Memory stays bounded by `cap`
/// whatever the line's length.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<usize> {
    line.clear();
    let mut total = 0;
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buffer.is_empty() {
            return Ok(total);
        }
        let (used, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&buffer[..used.min(room)]);
        reader.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
    }
}

/// The UTF-8 prefix of a line cut at `MAX_LINE_BYTES` (which may split a character).
fn utf8_prefix(bytes: &[u8]) -> Option<&str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok(),
        Err(_) => None,
    }
}

fn read(
    file: std::fs::File,
    path: &std::path::Path,
    args: &Args,
    budget: usize,
) -> Result<String, String> {
    let shown = path.display();
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(format!("{shown} is a directory; read a file inside it"));
    }
    let mut reader = std::io::BufReader::new(file);
    let start = reader
        .fill_buf()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if start[..start.len().min(8192)].contains(&0) {
        return Err(format!(
            "{shown} is a binary file; read_file shows text only"
        ));
    }
    let offset = args.offset.unwrap_or(1).max(1);
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT).max(1);

    let mut out = String::new();
    let mut line = Vec::new();
    let mut number = 0usize;
    let mut returned = 0usize;
    let mut next_offset = None;
    loop {
        let length = read_line_bounded(&mut reader, &mut line, MAX_LINE_BYTES)
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        if length == 0 {
            break;
        }
        number += 1;
        if number < offset {
            continue;
        }
        if returned == limit {
            next_offset = Some(number);
            break;
        }
        let cut = length > line.len();
        let text = if cut {
            utf8_prefix(&line)
        } else {
            std::str::from_utf8(&line).ok()
        }
        .ok_or_else(|| {
            format!("{shown} is not UTF-8 text (line {number}); read_file shows UTF-8 text only")
        })?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let chars = text.chars().count();
        let shown_line = if chars > MAX_LINE_CHARS || cut {
            let kept: String = text.chars().take(MAX_LINE_CHARS).collect();
            let more = length - kept.len();
            format!("{number:>6}\t{kept}… [line cut: {more} more bytes]\n")
        } else {
            format!("{number:>6}\t{text}\n")
        };
        // The page ends before the line that would pass the budget (the first line always fits:
        // it is cut to MAX_LINE_CHARS, and budgets are larger).
        if returned > 0 && out.len() + shown_line.len() > budget.saturating_sub(NOTE_ROOM) {
            next_offset = Some(number);
            break;
        }
        out.push_str(&shown_line);
        returned += 1;
    }
    if number < offset && number > 0 {
        return Err(format!(
            "{shown} has {number} lines; offset {offset} is past the end"
        ));
    }
    if number == 0 {
        return Ok(format!("({shown} is empty)"));
    }
    if let Some(next) = next_offset {
        out.push_str(&format!(
            "[… more lines follow: this page ends at line {}; call read_file with offset={next} \
             to read further]\n",
            next - 1
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens by path (these tests are about reading, not resolving).
    fn read(path: &std::path::Path, args: &Args) -> Result<String, String> {
        match fs_err::File::open(path) {
            Ok(file) => super::read(file.into_parts().0, path, args, 64 * 1024),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("no such file: {}", path.display()))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn args(offset: Option<usize>, limit: Option<usize>) -> Args {
        Args {
            path: String::new(),
            offset,
            limit,
        }
    }

    fn temp(name: &str, content: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cox-read-file-{}-{name}", std::process::id()));
        fs_err::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        fs_err::write(&path, content).unwrap();
        path
    }

    #[test]
    fn numbers_lines_with_offset_and_limit() {
        let path = temp("a.txt", b"one\r\ntwo\nthree\nfour\n");
        assert_eq!(
            read(&path, &args(None, None)).unwrap(),
            "     1\tone\n     2\ttwo\n     3\tthree\n     4\tfour\n"
        );
        let part = read(&path, &args(Some(2), Some(2))).unwrap();
        assert_eq!(
            part,
            "     2\ttwo\n     3\tthree\n[… more lines follow: this page ends at line 3; call read_file \
             with offset=4 to read further]\n"
        );
        assert!(
            read(&path, &args(Some(9), None))
                .unwrap_err()
                .contains("offset 9 is past the end")
        );
    }

    #[test]
    fn refuses_binary_and_non_utf8() {
        let binary = temp("b.bin", b"abc\0def");
        assert!(
            read(&binary, &args(None, None))
                .unwrap_err()
                .contains("binary file")
        );
        let latin1 = temp("c.txt", b"caf\xe9\n");
        assert!(
            read(&latin1, &args(None, None))
                .unwrap_err()
                .contains("not UTF-8")
        );
        let missing = std::env::temp_dir().join("cox-definitely-missing.txt");
        assert!(
            read(&missing, &args(None, None))
                .unwrap_err()
                .starts_with("no such file")
        );
    }

    #[test]
    fn cuts_long_lines() {
        let long = "x".repeat(MAX_LINE_CHARS + 5);
        let path = temp("d.txt", long.as_bytes());
        let out = read(&path, &args(None, None)).unwrap();
        assert!(out.ends_with("… [line cut: 5 more bytes]\n"), "{out}");
    }

    /// Issue 14: one call returned 214,071 characters against a 16 KB budget, and a 200 MB line
    /// was read whole into memory.
    #[test]
    fn pages_within_the_budget_and_reads_a_huge_line_in_bounded_memory_issue_14() {
        let many: String = (1..=20_000)
            .map(|n| format!("line {n} of a long file\n"))
            .collect();
        let path = temp("e.txt", many.as_bytes());
        let budget = 16_000;
        let page = super::read(
            fs_err::File::open(&path).unwrap().into_parts().0,
            &path,
            &args(None, None),
            budget,
        )
        .unwrap();
        assert!(page.len() <= budget, "{} bytes", page.len());
        let next: usize = page
            .rsplit("offset=")
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("a note with the next offset");
        let last_shown = page.lines().rev().nth(1).unwrap();
        assert!(
            last_shown
                .trim_start()
                .starts_with(&format!("{}\t", next - 1)),
            "{last_shown}"
        );
        // The next page starts where the note says.
        let second = super::read(
            fs_err::File::open(&path).unwrap().into_parts().0,
            &path,
            &args(Some(next), None),
            budget,
        )
        .unwrap();
        assert!(
            second
                .trim_start()
                .starts_with(&format!("{next}\tline {next} ")),
            "{}",
            &second[..80]
        );

        // 50 MB on one line: shown cut, and only MAX_LINE_BYTES of it held at a time.
        let huge = temp("f.txt", &vec![b'y'; 50 * 1024 * 1024]);
        let out = super::read(
            fs_err::File::open(&huge).unwrap().into_parts().0,
            &huge,
            &args(None, None),
            budget,
        )
        .unwrap();
        assert!(out.len() < MAX_LINE_CHARS + 200, "{}", out.len());
        assert!(
            out.contains(&format!(
                "[line cut: {} more bytes]",
                50 * 1024 * 1024 - MAX_LINE_CHARS
            )),
            "{out}"
        );
    }
}
