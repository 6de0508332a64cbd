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
/// line a front end shows before the call runs. `None` when the patch would not apply (the call
/// itself then reports why).
pub fn preview(text: &str, ctx: &ToolContext) -> Option<Vec<String>> {
    let ops = parse(text).ok()?;
    let mut lines = Vec::new();
    for op in &ops {
        let real = ctx.check_path(op.path(), Access::Write).ok()?;
        let shown = ctx.display_path(&real);
        match op {
            FileOp::Add { contents, .. } => {
                lines.push(format!(
                    "Create {shown} ({} lines)",
                    split_lines(contents).len()
                ));
            }
            FileOp::Delete { .. } => lines.push(format!("Delete {shown}")),
            FileOp::Update {
                move_to, chunks, ..
            } => {
                let old = std::fs::read_to_string(&real).ok()?;
                let old_lines = split_lines(&old);
                let (_, edits) = update(&old, &old_lines, chunks, &shown, &mut Vec::new()).ok()?;
                let range = match (edits.first(), edits.last()) {
                    (Some(first), Some(last)) => {
                        let (start, end) = (
                            first.at + 1,
                            (last.at + last.removed.len().max(1)).max(first.at + 1),
                        );
                        if start == end {
                            format!(" line {start}")
                        } else {
                            format!(" lines {start}-{end}")
                        }
                    }
                    _ => String::new(),
                };
                match move_to {
                    Some(target) => lines.push(format!("Move {shown} → {target}{range}")),
                    None => lines.push(format!("Modify {shown}{range}")),
                }
            }
        }
    }
    Some(lines)
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
                let old = read_text(&real, &shown).map_err(failed)?;
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
                let old = read_text(&real, &shown).map_err(failed)?;
                let permissions = std::fs::metadata(&real).ok().map(|m| m.permissions());
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

/// One changed region of a file: at old line `at` (0-based), `removed` lines replaced by `added`.
#[derive(Debug, Clone)]
struct Edit {
    at: usize,
    removed: Vec<String>,
    added: Vec<String>,
}

impl Edit {
    fn empty(at: usize) -> Self {
        Edit {
            at,
            removed: Vec::new(),
            added: Vec::new(),
        }
    }
}

/// Lines of context around each change in the unified diff.
const DIFF_CONTEXT: usize = 3;

fn change(
    kind: ChangeKind,
    path: String,
    moved_to: Option<String>,
    old: &[&str],
    edits: &[Edit],
) -> Change {
    let added = edits.iter().map(|e| e.added.len()).sum();
    let removed = edits.iter().map(|e| e.removed.len()).sum();
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
    let body = unified_diff(old, edits);
    let diff = if body.is_empty() {
        String::new()
    } else {
        format!("--- {from}\n+++ {to}\n{body}")
    };
    Change {
        kind,
        path,
        moved_to,
        added,
        removed,
        diff,
    }
}

/// `@@ -a,b +c,d @@` ranges: a count of 1 is left out; an empty range names the line before it.
fn range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{len}", start + 1),
    }
}

/// A unified diff built from the edits themselves: no diff algorithm needed, since the patch
/// already says exactly which lines changed.
fn unified_diff(old: &[&str], edits: &[Edit]) -> String {
    let mut out = String::new();
    // New line number minus old line number before the current group.
    let mut shift: isize = 0;
    let mut i = 0;
    while i < edits.len() {
        // Edits whose context would touch or overlap form one hunk.
        let mut j = i;
        while j + 1 < edits.len()
            && edits[j + 1].at <= edits[j].at + edits[j].removed.len() + 2 * DIFF_CONTEXT
        {
            j += 1;
        }
        let from = edits[i].at.saturating_sub(DIFF_CONTEXT);
        let to = (edits[j].at + edits[j].removed.len() + DIFF_CONTEXT).min(old.len());
        let mut body = String::new();
        let mut cursor = from;
        let mut new_len = 0;
        let mut group_shift = 0isize;
        for edit in &edits[i..=j] {
            for line in &old[cursor..edit.at] {
                let _ = writeln!(body, " {line}");
                new_len += 1;
            }
            for line in &edit.removed {
                let _ = writeln!(body, "-{line}");
            }
            for line in &edit.added {
                let _ = writeln!(body, "+{line}");
            }
            new_len += edit.added.len();
            group_shift += edit.added.len() as isize - edit.removed.len() as isize;
            cursor = edit.at + edit.removed.len();
        }
        for line in &old[cursor..to] {
            let _ = writeln!(body, " {line}");
            new_len += 1;
        }
        let new_from = (from as isize + shift).max(0) as usize;
        let _ = write!(
            out,
            "@@ -{} +{} @@\n{body}",
            range(from, to - from),
            range(new_from, new_len)
        );
        shift += group_shift;
        i = j + 1;
    }
    out
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

/// The whole file as one edit (for added and deleted files).
fn whole(lines: &[&str], added: bool) -> Vec<Edit> {
    let all: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if all.is_empty() {
        return Vec::new();
    }
    let (removed, added) = if added {
        (Vec::new(), all)
    } else {
        (all, Vec::new())
    };
    vec![Edit {
        at: 0,
        removed,
        added,
    }]
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
        if let Some(hint) = &chunk.hint {
            match seek_hint(lines, hint, cursor) {
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
