#![doc = include_str!("list_dir.md")]
//!
//! ## Implementation notes
//!
//! The walk is ripgrep's `ignore` crate, so ignore rules are exactly ripgrep's (`.gitignore` also
//! outside a git repository, `.ignore`, global excludes, hidden files). Entries are sorted by name;
//! at most [`MAX_ENTRIES`] are shown and the rest are counted.

use cox_protocol::{Action, ToolKind, ToolSpec};
use serde::Deserialize;
use serde_json::json;

use crate::paths::Access;
use crate::{BoxFuture, Tool, ToolContext, ToolOutput, Touches, description, parse_args};

pub const DEFAULT_DEPTH: usize = 2;
pub const MAX_DEPTH: usize = 8;
pub const MAX_ENTRIES: usize = 400;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    depth: Option<usize>,
}

/// The tool's name, as the model calls it.
pub const NAME: &str = "list_dir";

pub struct ListDir;

impl Tool for ListDir {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("list_dir.md")),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "depth": {"type": "integer"}
                },
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
        let path = arguments["path"].as_str().unwrap_or(".").to_string();
        (vec![Action::List { path }], Touches::default())
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
            let raw = args.path.unwrap_or_else(|| ".".to_string());
            let root = match ctx.check_path(&raw, Access::Read) {
                Ok(root) => root,
                Err(message) => return ToolOutput::error(message),
            };
            if !root.is_dir() {
                return ToolOutput::error(format!("{raw} is not a directory"));
            }
            let depth = args.depth.unwrap_or(DEFAULT_DEPTH).clamp(1, MAX_DEPTH);
            let budget = ctx.max_output_bytes;
            match tokio::task::spawn_blocking(move || list(&root, depth, budget)).await {
                Ok(text) => ToolOutput::ok(text),
                Err(e) => ToolOutput::error(format!("list_dir failed: {e}")),
            }
        })
    }
}

fn list(root: &std::path::Path, depth: usize, budget: usize) -> String {
    let walker = ignore::WalkBuilder::new(root)
        .max_depth(Some(depth))
        .require_git(false)
        .sort_by_file_path(|a, b| a.cmp(b))
        .build();
    let mut entries: Vec<(usize, String, bool)> = Vec::new();
    let mut errors = 0usize;
    for entry in walker {
        let Ok(entry) = entry else {
            errors += 1;
            continue;
        };
        if entry.depth() == 0 {
            continue;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        let name = entry.file_name().to_string_lossy().into_owned();
        entries.push((entry.depth(), name, is_dir));
    }
    let total = entries.len();
    let mut out = String::new();
    let mut shown = 0;
    for (depth, name, is_dir) in entries.iter().take(MAX_ENTRIES) {
        let line = format!(
            "{}{name}{}\n",
            "  ".repeat(depth - 1),
            if *is_dir { "/" } else { "" }
        );
        // Within the session's output budget, with room for the note.
        if out.len() + line.len() > budget.saturating_sub(120) && shown > 0 {
            break;
        }
        out.push_str(&line);
        shown += 1;
    }
    if total == 0 {
        out.push_str("(empty: no entries, or all ignored)\n");
    }
    if total > shown {
        out.push_str(&format!(
            "[… {} more entries not shown; list a subdirectory or lower depth]\n",
            total - shown
        ));
    }
    if errors > 0 {
        out.push_str(&format!("[{errors} entries could not be read]\n"));
    }
    out
}
