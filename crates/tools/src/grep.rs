#![doc = include_str!("grep.md")]
//!
//! ## Implementation notes
//!
//! ripgrep's own crates: `ignore` walks in parallel (one thread per core), `grep-regex` matches,
//! `grep-searcher` reads files with memory maps where it pays and quits a file at its first NUL
//! byte (binary). Results are sorted by path and line so the same search gives the same answer;
//! once more than `max_results` matches are found the walk stops and the output says so.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cox_protocol::{Action, ToolKind, ToolSpec};
use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, SearcherBuilder, sinks::Lossy};
use ignore::WalkState;
use serde::Deserialize;
use serde_json::json;

use crate::paths::Access;
use crate::{BoxFuture, Tool, ToolContext, ToolOutput, Touches, description, parse_args};

pub const DEFAULT_MAX_RESULTS: usize = 100;
/// A matched line longer than this is cut.
const MAX_LINE_CHARS: usize = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    glob: Option<String>,
    #[serde(default)]
    max_results: Option<usize>,
    #[serde(default)]
    ignore_case: Option<bool>,
}

/// The tool's name, as the model calls it.
pub const NAME: &str = "grep";

pub struct Grep;

impl Tool for Grep {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("grep.md")),
            parameters: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string"},
                    "path": {"type": "string"},
                    "glob": {"type": "string"},
                    "max_results": {"type": "integer"},
                    "ignore_case": {"type": "boolean"}
                },
                "required": ["pattern"],
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
        let Some(pattern) = arguments["pattern"].as_str() else {
            return (Vec::new(), Touches::default());
        };
        let action = Action::Search {
            pattern: pattern.to_string(),
            path: arguments["path"].as_str().unwrap_or(".").to_string(),
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
            let raw = args.path.clone().unwrap_or_else(|| ".".to_string());
            let root = match ctx.check_path(&raw, Access::Read) {
                Ok(root) => root,
                Err(message) => return ToolOutput::error(message),
            };
            if !root.exists() {
                return ToolOutput::error(format!("no such file or directory: {raw}"));
            }
            let cwd = ctx.cwd.clone();
            let budget = ctx.max_output_bytes;
            match tokio::task::spawn_blocking(move || search(&args, &root, &cwd, budget)).await {
                Ok(Ok(text)) => ToolOutput::ok(text),
                Ok(Err(message)) => ToolOutput::error(message),
                Err(e) => ToolOutput::error(format!("grep failed: {e}")),
            }
        })
    }
}

/// Runs a search; public for the benchmark harness.
pub fn search_text(
    pattern: &str,
    root: &std::path::Path,
    glob: Option<&str>,
    max_results: usize,
) -> Result<String, String> {
    let args = Args {
        pattern: pattern.to_string(),
        path: None,
        glob: glob.map(str::to_string),
        max_results: Some(max_results),
        ignore_case: None,
    };
    search(&args, root, root, usize::MAX)
}

fn search(
    args: &Args,
    root: &std::path::Path,
    cwd: &std::path::Path,
    budget: usize,
) -> Result<String, String> {
    // With the line terminator declared, a match can never span lines, which lets the searcher
    // run the regex over whole buffers instead of line by line (ripgrep does the same).
    let matcher = RegexMatcherBuilder::new()
        .line_terminator(Some(b'\n'))
        .case_insensitive(args.ignore_case.unwrap_or(false))
        .build(&args.pattern)
        .map_err(|e| format!("invalid regular expression `{}`: {e}", args.pattern))?;
    let max = args.max_results.unwrap_or(DEFAULT_MAX_RESULTS).max(1);
    let mut walk = ignore::WalkBuilder::new(root);
    walk.require_git(false)
        .threads(std::thread::available_parallelism().map_or(2, |n| n.get()));
    if let Some(glob) = &args.glob {
        let base = if root.is_dir() {
            root
        } else {
            root.parent().unwrap_or(root)
        };
        let mut overrides = ignore::overrides::OverrideBuilder::new(base);
        overrides
            .add(glob)
            .map_err(|e| format!("invalid glob `{glob}`: {e}"))?;
        walk.overrides(
            overrides
                .build()
                .map_err(|e| format!("invalid glob `{glob}`: {e}"))?,
        );
    }
    let found = Arc::new(Mutex::new(Vec::<(String, u64, String)>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    walk.build_parallel().run(|| {
        let matcher = matcher.clone();
        let found = Arc::clone(&found);
        let count = Arc::clone(&count);
        let mut searcher = SearcherBuilder::new()
            .binary_detection(BinaryDetection::quit(0))
            .line_number(true)
            .build();
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let path = entry.path();
            let shown = path.strip_prefix(cwd).unwrap_or(path).display().to_string();
            let mut local = Vec::new();
            let _ = searcher.search_path(
                &matcher,
                path,
                Lossy(|line_number, line| {
                    local.push((
                        shown.clone(),
                        line_number,
                        cut(line.trim_end_matches(['\n', '\r'])),
                    ));
                    Ok(count.load(Ordering::Relaxed) + local.len() <= max)
                }),
            );
            let seen = count.fetch_add(local.len(), Ordering::Relaxed) + local.len();
            if let Ok(mut found) = found.lock() {
                found.extend(local);
            }
            if seen > max {
                WalkState::Quit
            } else {
                WalkState::Continue
            }
        })
    });
    let mut found = match Arc::try_unwrap(found) {
        Ok(mutex) => mutex.into_inner().unwrap_or_else(|p| p.into_inner()),
        Err(shared) => shared.lock().map(|f| f.clone()).unwrap_or_default(),
    };
    found.sort();
    let truncated = found.len() > max;
    found.truncate(max);
    if found.is_empty() {
        return Ok(format!("no matches for `{}`", args.pattern));
    }
    let mut out = String::new();
    let mut shown = 0;
    for (path, line, text) in &found {
        let entry = format!("{path}:{line}:{text}\n");
        // Within the session's output budget, with room for the note.
        if shown > 0 && out.len() + entry.len() > budget.saturating_sub(160) {
            break;
        }
        out.push_str(&entry);
        shown += 1;
    }
    if shown < found.len() {
        out.push_str(&format!(
            "[… {} more matches not shown (the output budget is {budget} bytes); narrow the \
             pattern, path or glob]\n",
            found.len() - shown
        ));
    } else if truncated {
        out.push_str(&format!(
            "[… more than {max} matches; narrow the pattern, path or glob, or raise max_results]\n"
        ));
    }
    Ok(out)
}

fn cut(line: &str) -> String {
    if line.chars().count() <= MAX_LINE_CHARS {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(MAX_LINE_CHARS).collect::<String>())
    }
}
