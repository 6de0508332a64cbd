//! Applying a parsed patch, all or nothing: every file's new content is computed in memory first;
//! only when every hunk of every file has matched is anything written. Writes go to a temp file in
//! the same directory, then `rename` over the original (permissions copied); if a rename fails
//! half-way, the files already replaced get their original content back.
//!
//! Line endings are the file's own: a CRLF file stays CRLF, a file without a final newline keeps
//! lacking it. Context lines keep the file's exact text even when they matched only fuzzily.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::parse::{Chunk, FileOp, LineKind, parse};
use super::seek::{Level, closest, seek, seek_hint};
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
}

/// The outcome of a successful patch.
#[derive(Debug, Clone)]
pub struct Applied {
    pub changes: Vec<Change>,
    /// Hunks that matched only fuzzily, as notes for the model.
    pub notes: Vec<String>,
}

/// What will be done to the file system once everything has matched.
struct Planned {
    /// (real path, new content, mode to keep)
    writes: Vec<(PathBuf, String, Option<std::fs::Permissions>)>,
    removes: Vec<PathBuf>,
    /// Original content of every existing file this plan overwrites or removes, for rollback.
    originals: Vec<(PathBuf, Vec<u8>)>,
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
                changes.push(change(ChangeKind::Added, shown, None, "", contents));
            }
            FileOp::Delete { .. } => {
                let old = read_text(&real, &shown).map_err(failed)?;
                planned
                    .originals
                    .push((real.clone(), old.clone().into_bytes()));
                planned.removes.push(real.clone());
                changes.push(change(ChangeKind::Deleted, shown, None, &old, ""));
            }
            FileOp::Update {
                move_to, chunks, ..
            } => {
                let old = read_text(&real, &shown).map_err(failed)?;
                let permissions = std::fs::metadata(&real).ok().map(|m| m.permissions());
                let new = update(&old, chunks, &shown, &mut notes).map_err(failed)?;
                planned
                    .originals
                    .push((real.clone(), old.clone().into_bytes()));
                match move_to {
                    Some(target) => {
                        let target_real = ctx.check_path(target, Access::Write).map_err(failed)?;
                        let target_shown = ctx.display_path(&target_real);
                        claim(&target_real, &target_shown)?;
                        if target_real.exists() {
                            return Err(failed(format!(
                                "cannot move {shown} to {target_shown}: {target_shown} already exists"
                            )));
                        }
                        planned.writes.push((target_real, new.clone(), permissions));
                        planned.removes.push(real.clone());
                        changes.push(change(
                            ChangeKind::Moved,
                            shown,
                            Some(target_shown),
                            &old,
                            &new,
                        ));
                    }
                    None => {
                        planned
                            .writes
                            .push((real.clone(), new.clone(), permissions));
                        changes.push(change(ChangeKind::Modified, shown, None, &old, &new));
                    }
                }
            }
        }
    }
    commit(planned).map_err(failed)?;
    Ok(Applied { changes, notes })
}

fn read_text(path: &Path, shown: &str) -> Result<String, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{shown} does not exist. Use `*** Add File: {shown}` to create it."
            ));
        }
        Err(_) if path.is_dir() => return Err(format!("{shown} is a directory, not a file")),
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{shown} is not UTF-8 text (invalid byte at offset {}); apply_patch edits UTF-8 text files only",
            e.utf8_error().valid_up_to()
        )
    })
}

fn change(
    kind: ChangeKind,
    path: String,
    moved_to: Option<String>,
    old: &str,
    new: &str,
) -> Change {
    let diff = similar::TextDiff::from_lines(old, new);
    let (mut added, mut removed) = (0, 0);
    for op in diff.ops() {
        for change in diff.iter_changes(op) {
            match change.tag() {
                similar::ChangeTag::Insert => added += 1,
                similar::ChangeTag::Delete => removed += 1,
                similar::ChangeTag::Equal => {}
            }
        }
    }
    let from = if kind == ChangeKind::Added {
        "/dev/null".to_string()
    } else {
        format!("a/{path}")
    };
    let to = match (&kind, &moved_to) {
        (ChangeKind::Deleted, _) => "/dev/null".to_string(),
        (_, Some(target)) => format!("b/{target}"),
        _ => format!("b/{path}"),
    };
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(&from, &to)
        .to_string();
    Change {
        kind,
        path,
        moved_to,
        added,
        removed,
        diff: unified,
    }
}

/// Computes a file's new content from its chunks.
fn update(
    content: &str,
    chunks: &[Chunk],
    shown: &str,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let ending = if content.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let final_newline = content.ends_with('\n') || content.is_empty();
    let mut lines: Vec<String> = content
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    if content.ends_with('\n') || content.is_empty() {
        lines.pop();
    }

    let mut replacements: Vec<(usize, usize, Vec<String>)> = Vec::new();
    let mut cursor = 0;
    for (n, chunk) in chunks.iter().enumerate() {
        let hunk = n + 1;
        if let Some(hint) = &chunk.hint {
            match seek_hint(&lines, hint, cursor) {
                Some(found) => cursor = found + 1,
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
        let added: Vec<String> = chunk
            .lines
            .iter()
            .filter(|(kind, _)| *kind == LineKind::Add)
            .map(|(_, text)| text.clone())
            .collect();
        if old.is_empty() {
            let at = if chunk.hint.is_some() && !chunk.end_of_file {
                cursor
            } else {
                lines.len()
            };
            replacements.push((at, 0, added));
            continue;
        }
        let mut found = seek(&lines, &old, cursor, chunk.end_of_file);
        if found.is_none() && old.last() == Some(&"") {
            // A trailing blank context line is often an artefact of how the patch was written.
            old.pop();
            found = seek(&lines, &old, cursor, chunk.end_of_file);
        }
        let Some((at, level)) = found else {
            return Err(not_found(&lines, &old, chunk, hunk, shown, cursor));
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
        let mut k = 0;
        let mut replacement = Vec::new();
        for (kind, text) in &chunk.lines {
            match kind {
                LineKind::Context if k < old.len() => {
                    replacement.push(lines[at + k].clone());
                    k += 1;
                }
                LineKind::Context => {}
                LineKind::Remove => k += 1,
                LineKind::Add => replacement.push(text.clone()),
            }
        }
        replacements.push((at, old.len(), replacement));
        cursor = at + old.len();
    }
    replacements.sort_by_key(|(at, _, _)| *at);
    for (at, len, new) in replacements.into_iter().rev() {
        lines.splice(at..at + len, new);
    }
    let mut out = lines.join(ending);
    if final_newline && !lines.is_empty() {
        out.push_str(ending);
    }
    Ok(out)
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
    lines: &[String],
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

/// Writes everything, or nothing.
fn commit(planned: Planned) -> Result<(), String> {
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
    let cleanup = |temps: &[(PathBuf, PathBuf)]| {
        for (temp, _) in temps {
            let _ = std::fs::remove_file(temp);
        }
    };
    for (n, (target, content, permissions)) in planned.writes.iter().enumerate() {
        let dir = target.parent().unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.cox-patch-{}-{n}.tmp", std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&temp, content))
            .and_then(|()| match permissions {
                Some(permissions) => std::fs::set_permissions(&temp, permissions.clone()),
                None => Ok(()),
            });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            cleanup(&temps);
            return Err(format!("cannot write {}: {e}", target.display()));
        }
        temps.push((temp, target.clone()));
    }
    let mut done: Vec<PathBuf> = Vec::new();
    let mut failure = None;
    for (temp, target) in &temps {
        if let Err(e) = std::fs::rename(temp, target) {
            failure = Some(format!("cannot replace {}: {e}", target.display()));
            break;
        }
        done.push(target.clone());
    }
    if failure.is_none() {
        for path in &planned.removes {
            if let Err(e) = std::fs::remove_file(path) {
                failure = Some(format!("cannot remove {}: {e}", path.display()));
                break;
            }
        }
    }
    let Some(failure) = failure else {
        return Ok(());
    };
    // Put back what was already changed: originals rewritten, new files removed.
    cleanup(&temps);
    for (path, bytes) in &planned.originals {
        let _ = std::fs::write(path, bytes);
    }
    for path in done {
        if !planned
            .originals
            .iter()
            .any(|(original, _)| *original == path)
        {
            let _ = std::fs::remove_file(path);
        }
    }
    Err(failure)
}
