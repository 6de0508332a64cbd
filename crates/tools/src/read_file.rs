#![doc = include_str!("read_file.md")]
//!
//! ## Implementation notes
//!
//! The file is streamed line by line, so a huge file costs only the lines returned. A NUL byte in the
//! first 8 KiB marks a binary file; text that is not UTF-8 is refused rather than mangled.

use std::io::{BufRead, Read};

use cox_protocol::{Action, ToolKind, ToolSpec};
use serde::Deserialize;
use serde_json::json;

use crate::paths::Access;
use crate::{BoxFuture, Tool, ToolContext, ToolOutput, Touches, description, parse_args};

pub const DEFAULT_LIMIT: usize = 2000;
pub const MAX_LINE_CHARS: usize = 2000;
/// Output beyond this many bytes is cut at a line boundary, with the note on how to go on.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;

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
    fn name(&self) -> &'static str {
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
            let result = tokio::task::spawn_blocking(move || read(file, &path, &args)).await;
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

fn read(file: std::fs::File, path: &std::path::Path, args: &Args) -> Result<String, String> {
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
        line.clear();
        let n = reader
            .by_ref()
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        if n == 0 {
            break;
        }
        number += 1;
        if number < offset {
            continue;
        }
        if returned == limit || out.len() >= MAX_OUTPUT_BYTES {
            next_offset = Some(number);
            break;
        }
        let text = std::str::from_utf8(&line).map_err(|_| {
            format!("{shown} is not UTF-8 text (line {number}); read_file shows UTF-8 text only")
        })?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let chars = text.chars().count();
        if chars > MAX_LINE_CHARS {
            let kept: String = text.chars().take(MAX_LINE_CHARS).collect();
            out.push_str(&format!(
                "{number:>6}\t{kept}… [line cut: {} more characters]\n",
                chars - MAX_LINE_CHARS
            ));
        } else {
            out.push_str(&format!("{number:>6}\t{text}\n"));
        }
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
            "[… more lines follow; call read_file with offset={next} to read further]\n"
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
            Ok(file) => super::read(file.into_parts().0, path, args),
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
            "     2\ttwo\n     3\tthree\n[… more lines follow; call read_file with offset=4 to read further]\n"
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
        assert!(out.ends_with("… [line cut: 5 more characters]\n"), "{out}");
    }
}
