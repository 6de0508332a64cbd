//! Applying a parsed patch, all or nothing: every file's new content is computed in memory first;
//! only when every hunk of every file has matched is anything written. Writes go to a temp file in
//! the same directory, then `rename` over the original (permissions copied); if a rename fails
//! half-way, the files already replaced get their original content back.
//!
//! Line endings are the file's own: a CRLF file stays CRLF, a file without a final newline keeps
//! lacking it. Context lines keep the file's exact text even when they matched only fuzzily.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::commit::{Planned, commit};
use super::diff::{Edit, change, whole};
use super::parse::{Chunk, FileOp, LineKind, parse};
use super::seek::{Level, closest, seek, seek_hint};
use cox_protocol::{Action, LineRange};

use crate::ToolContext;
use crate::paths::Access;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    Moved,
}

/// One file's change, for the result and the diff event.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: ChangeKind,
    /// Path as shown (relative to the working directory).
    pub path: String,
    pub moved_to: Option<String>,
    pub added: usize,
    pub removed: usize,
    /// Unified diff of this file.
    pub diff: String,
    /// Where the edits are, old and new line numbers.
    pub hunks: Vec<cox_protocol::Hunk>,
}

/// The outcome of a successful patch.
#[derive(Debug, Clone)]
pub struct Applied {
    pub changes: Vec<Change>,
    /// Hunks that matched only fuzzily, as notes for the model.
    pub notes: Vec<String>,
}

/// The files a patch touches (its targets too, for moves) with the lines it adds, for rule checks.
/// `None` when the patch does not parse.
pub fn edits(text: &str) -> Option<Vec<(String, String)>> {
    let ops = parse(text).ok()?;
    let mut out = Vec::new();
    for op in ops {
        match op {
            FileOp::Add { path, contents } => out.push((path, contents)),
            FileOp::Delete { path } => out.push((path, String::new())),
            FileOp::Update {
                path,
                move_to,
                chunks,
            } => {
                let added: String = chunks
                    .iter()
                    .flat_map(|c| c.lines.iter())
                    .filter(|(kind, _)| *kind == LineKind::Add)
                    .map(|(_, text)| format!("{text}\n"))
                    .collect();
                if let Some(target) = move_to {
                    out.push((target, added.clone()));
                }
                out.push((path, added));
            }
        }
    }
    Some(out)
}

/// What a patch will do, file by file, without doing it: `Create src/a.rs (12 lines)`,
/// `Modify src/db.js lines 45-89`, `Delete old.rs`, `Move a.rs → b.rs lines 3-4`. For the action
/// a front end shows before the call runs. When the patch would not apply as it stands (the call
/// itself then reports why), the files and `@@` hints of its headers; `None` when it does not
/// parse.
pub fn preview(text: &str, ctx: &ToolContext) -> Option<Vec<Action>> {
    let ops = parse(text).ok()?;
    Some(located(&ops, ctx).unwrap_or_else(|| outline(&ops)))
}

/// The actions with the line ranges the patch's hunks were matched at.
fn located(ops: &[FileOp], ctx: &ToolContext) -> Option<Vec<Action>> {
    let mut actions = Vec::new();
    for op in ops {
        let real = ctx.check_path(op.path(), Access::Write).ok()?;
        let shown = ctx.display_path(&real);
        match op {
            FileOp::Add { contents, .. } => actions.push(Action::Create {
                path: shown,
                lines: Some(split_lines(contents).len() as u64),
            }),
            FileOp::Delete { .. } => actions.push(Action::Delete { path: shown }),
            FileOp::Update {
                move_to, chunks, ..
            } => {
                let old = fs_err::read_to_string(&real).ok()?;
                let old_lines = split_lines(&old);
                let (_, edits) = update(&old, &old_lines, chunks, &shown, &mut Vec::new()).ok()?;
                let lines = match (edits.first(), edits.last()) {
                    (Some(first), Some(last)) => {
                        let start = first.at as u64 + 1;
                        let end = ((last.at + last.removed.len().max(1)) as u64).max(start);
                        Some(LineRange {
                            start,
                            end: Some(end),
                        })
                    }
                    _ => None,
                };
                actions.push(match move_to {
                    Some(target) => Action::Move {
                        from: shown,
                        to: target.clone(),
                        lines,
                    },
                    None => Action::Modify {
                        path: shown,
                        lines,
                        hint: None,
                    },
                });
            }
        }
    }
    Some(actions)
}

/// The actions as the patch's headers give them (files as written, `@@` hints).
fn outline(ops: &[FileOp]) -> Vec<Action> {
    ops.iter()
        .map(|op| match op {
            FileOp::Add { path, .. } => Action::Create {
                path: path.clone(),
                lines: None,
            },
            FileOp::Delete { path } => Action::Delete { path: path.clone() },
            FileOp::Update {
                path,
                move_to: Some(target),
                ..
            } => Action::Move {
                from: path.clone(),
                to: target.clone(),
                lines: None,
            },
            FileOp::Update { path, chunks, .. } => Action::Modify {
                path: path.clone(),
                lines: None,
                hint: chunks
                    .iter()
                    .find_map(|c| c.hint.clone())
                    .filter(|h| !h.trim().is_empty())
                    .map(|h| h.trim().to_string()),
            },
        })
        .collect()
}

/// Parses and applies `text`; on any failure returns a message for the model and changes nothing.
pub fn apply(text: &str, ctx: &ToolContext) -> Result<Applied, String> {
    let ops = parse(text).map_err(|e| format!("apply_patch failed; no file was changed.\n{e}"))?;
    let mut planned = Planned {
        writes: Vec::new(),
        removes: Vec::new(),
        originals: Vec::new(),
    };
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    let mut touched: Vec<PathBuf> = Vec::new();
    let failed = |message: String| format!("apply_patch failed; no file was changed.\n{message}");
    for op in &ops {
        let real = ctx.check_path(op.path(), Access::Write).map_err(failed)?;
        let shown = ctx.display_path(&real);
        let mut claim = |path: &PathBuf, shown: &str| {
            if touched.contains(path) {
                return Err(failed(format!(
                    "the patch changes {shown} more than once; merge those sections"
                )));
            }
            touched.push(path.clone());
            Ok(())
        };
        claim(&real, &shown)?;
        match op {
            FileOp::Add { contents, .. } => {
                if real.exists() {
                    return Err(failed(format!(
                        "cannot add {shown}: it already exists. Use `*** Update File: {shown}` to change it."
                    )));
                }
                planned.writes.push((real.clone(), contents.clone(), None));
                let edits = whole(&split_lines(contents), true);
                changes.push(change(ChangeKind::Added, shown, None, &[], &edits));
            }
            FileOp::Delete { .. } => {
                let old = read_text(ctx, &real, &shown).map_err(failed)?;
                let lines = split_lines(&old);
                changes.push(change(
                    ChangeKind::Deleted,
                    shown,
                    None,
                    &lines,
                    &whole(&lines, false),
                ));
                planned.removes.push(real.clone());
                planned.originals.push((real, old.into_bytes()));
            }
            FileOp::Update {
                move_to, chunks, ..
            } => {
                let old = read_text(ctx, &real, &shown).map_err(failed)?;
                let permissions = ctx.beneath(&real, false).ok().and_then(|b| b.mode());
                let old_lines = split_lines(&old);
                let (new, edits) =
                    update(&old, &old_lines, chunks, &shown, &mut notes).map_err(failed)?;
                let target = match move_to {
                    Some(target) => {
                        let target_real = ctx.check_path(target, Access::Write).map_err(failed)?;
                        let target_shown = ctx.display_path(&target_real);
                        claim(&target_real, &target_shown)?;
                        if target_real.exists() {
                            return Err(failed(format!(
                                "cannot move {shown} to {target_shown}: {target_shown} already exists"
                            )));
                        }
                        Some((target_real, target_shown))
                    }
                    None => None,
                };
                match target {
                    Some((target_real, target_shown)) => {
                        changes.push(change(
                            ChangeKind::Moved,
                            shown,
                            Some(target_shown),
                            &old_lines,
                            &edits,
                        ));
                        planned.writes.push((target_real, new, permissions));
                        planned.removes.push(real.clone());
                    }
                    None => {
                        changes.push(change(
                            ChangeKind::Modified,
                            shown,
                            None,
                            &old_lines,
                            &edits,
                        ));
                        planned.writes.push((real.clone(), new, permissions));
                    }
                }
                planned.originals.push((real, old.into_bytes()));
            }
        }
    }
    commit(planned, ctx).map_err(failed)?;
    Ok(Applied { changes, notes })
}

/// The file's text, read beneath its root without following symlinks (the patch is based on it).
fn read_text(ctx: &ToolContext, path: &Path, shown: &str) -> Result<String, String> {
    let bytes = match ctx.beneath(path, false).and_then(|b| b.read()) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{shown} does not exist. Use `*** Add File: {shown}` to create it."
            ));
        }
        Err(_) if path.is_dir() => return Err(format!("{shown} is a directory, not a file")),
        Err(e) => return Err(format!("cannot read {shown}: {}", crate::os_reason(&e))),
    };
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{shown} is not UTF-8 text (invalid byte at offset {}); apply_patch edits UTF-8 text files only",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Splits text into lines without their ends (`\n` or `\r\n`); a final line end adds no empty line.
fn split_lines(content: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = content
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if content.ends_with('\n') || content.is_empty() {
        lines.pop();
    }
    lines
}

/// Computes a file's new content from its chunks, with the edits made.
fn update(
    content: &str,
    lines: &[&str],
    chunks: &[Chunk],
    shown: &str,
    notes: &mut Vec<String>,
) -> Result<(String, Vec<Edit>), String> {
    // The first line end decides: a CRLF file stays CRLF, without scanning megabytes for it.
    let ending = match content.find('\n') {
        Some(at) if content[..at].ends_with('\r') => "\r\n",
        _ => "\n",
    };
    let final_newline = content.ends_with('\n') || content.is_empty();

    let mut edits: Vec<Edit> = Vec::new();
    let mut cursor = 0;
    for (n, chunk) in chunks.iter().enumerate() {
        let hunk = n + 1;
        let mut anchor = None;
        if let Some(hint) = &chunk.hint {
            match seek_hint(lines, hint, cursor) {
                Some(found) => {
                    anchor = Some(found);
                    cursor = found + 1;
                }
                None => {
                    return Err(format!(
                        "{shown}, hunk {hunk} (patch line {}): the `@@ {hint}` line was not found{}. \
                         Use a line that exists in the file after `@@`, or leave it empty.",
                        chunk.patch_line,
                        after_line(cursor)
                    ));
                }
            }
        }
        let mut old = chunk.old_lines();
        if old.is_empty() {
            let at = if chunk.hint.is_some() && !chunk.end_of_file {
                cursor
            } else {
                lines.len()
            };
            let added = chunk.lines.iter().map(|(_, text)| text.clone()).collect();
            edits.push(Edit {
                at,
                removed: Vec::new(),
                added,
            });
            continue;
        }
        let mut found = seek(lines, &old, cursor, chunk.end_of_file);
        if found.is_none() && old.last() == Some(&"") {
            // A trailing blank context line is often an artefact of how the patch was written.
            old.pop();
            found = seek(lines, &old, cursor, chunk.end_of_file);
        }
        // The `@@` line repeated as the hunk's first context or removed line (`@@ fn greet` then
        // ` fn greet(name) {`): the hunk starts at the anchor, not after it. Tried last, so a
        // match after the anchor, which is what the format means, always wins.
        if found.is_none()
            && let Some(at) = anchor
        {
            found = seek(lines, &old, at, chunk.end_of_file).filter(|(start, _)| *start == at);
        }
        let Some((at, level)) = found else {
            return Err(not_found(lines, &old, chunk, hunk, shown, cursor));
        };
        if level != Level::Exact {
            notes.push(format!(
                "{shown}, hunk {hunk} matched only {}; copy context lines exactly next time.",
                match level {
                    Level::Exact => "exactly",
                    Level::TrailingWhitespace => "after ignoring trailing whitespace",
                    Level::SurroundingWhitespace => "after ignoring surrounding whitespace",
                    Level::Punctuation => "after normalising quotes, dashes and spaces",
                }
            ));
        }
        // Runs of removed and added lines between context lines are the edits; context lines stay
        // as the file has them (they may have matched only fuzzily).
        let mut k = 0;
        let mut pending: Option<Edit> = None;
        for (kind, text) in &chunk.lines {
            match kind {
                LineKind::Context if k < old.len() => {
                    edits.extend(pending.take());
                    k += 1;
                }
                LineKind::Context => {}
                LineKind::Remove => {
                    let edit = pending.get_or_insert_with(|| Edit::empty(at + k));
                    edit.removed.push(lines[at + k].to_string());
                    k += 1;
                }
                LineKind::Add => {
                    let edit = pending.get_or_insert_with(|| Edit::empty(at + k));
                    edit.added.push(text.clone());
                }
            }
        }
        edits.extend(pending.take());
        cursor = at + old.len();
    }
    edits.sort_by_key(|edit| edit.at);

    // Unchanged stretches are copied byte for byte (their line ends included, even mixed ones);
    // only added lines are joined with the file's line end.
    let offset = |line: usize| match lines.get(line) {
        Some(text) => text.as_ptr() as usize - content.as_ptr() as usize,
        None => content.len(),
    };
    let mut out = String::with_capacity(content.len() + 1024);
    let mut next = 0;
    for edit in &edits {
        out.push_str(&content[offset(next)..offset(edit.at)]);
        for line in &edit.added {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push_str(ending);
            }
            out.push_str(line);
            out.push_str(ending);
        }
        next = edit.at + edit.removed.len();
    }
    out.push_str(&content[offset(next)..]);
    if final_newline && !out.is_empty() && !out.ends_with('\n') {
        out.push_str(ending);
    }
    if !final_newline && out.ends_with('\n') {
        out.truncate(out.len() - 1);
        if out.ends_with('\r') {
            out.truncate(out.len() - 1);
        }
    }
    Ok((out, edits))
}

fn after_line(cursor: usize) -> String {
    if cursor == 0 {
        String::new()
    } else {
        format!(" after line {cursor}")
    }
}

/// The message for a hunk that matched nowhere: what was expected, and the closest lines that exist.
fn not_found(
    lines: &[&str],
    old: &[&str],
    chunk: &Chunk,
    hunk: usize,
    shown: &str,
    cursor: usize,
) -> String {
    let mut message = format!(
        "{shown}, hunk {hunk} (patch line {}): these lines were not found{}{}:\n",
        chunk.patch_line,
        if chunk.end_of_file {
            " at the end of the file"
        } else {
            ""
        },
        after_line(cursor),
    );
    for line in old {
        let _ = writeln!(message, "  | {line}");
    }
    if chunk.end_of_file {
        // Anchored hunks are about the end: show the end, not a look-alike elsewhere.
        let from = lines.len().saturating_sub(old.len().max(3));
        let _ = writeln!(
            message,
            "The hunk ends with `*** End of File`, so these must be the last lines; {shown} ends with:"
        );
        for (k, line) in lines[from..].iter().enumerate() {
            let _ = writeln!(message, "  {:>5} | {line}", from + k + 1);
        }
        message.push_str("Read the file again and resend the patch with the context and `-` lines copied exactly.");
        return message;
    }
    match closest(lines, old) {
        Some((at, score)) => {
            let width = old.len().min(lines.len() - at);
            let _ = writeln!(
                message,
                "Closest lines in {shown} ({score} of {} agree), lines {}-{}:",
                old.len(),
                at + 1,
                at + width
            );
            for (k, line) in lines[at..at + width].iter().enumerate() {
                let _ = writeln!(message, "  {:>5} | {line}", at + k + 1);
            }
            if let Some(k) = (0..width).find(|&k| lines[at + k].trim() != old[k].trim()) {
                let _ = writeln!(
                    message,
                    "First difference, line {}: the patch has `{}`, the file has `{}`.",
                    at + k + 1,
                    old[k],
                    lines[at + k]
                );
            }
        }
        None => {
            let count = match lines.len() {
                1 => "1 line".to_string(),
                n => format!("{n} lines"),
            };
            let _ = writeln!(
                message,
                "No line of {shown} resembles them ({count} in the file)."
            );
        }
    }
    message.push_str(
        "Read the file again and resend the patch with the context and `-` lines copied exactly.",
    );
    message
}
