//! The unified diff of a patched file, built from the edits the patch made (no diff algorithm:
//! the patch already says which lines changed).

use std::fmt::Write as _;

use super::apply::{Change, ChangeKind};

/// One changed region of a file: at old line `at` (0-based), `removed` lines replaced by `added`.
#[derive(Debug, Clone)]
pub(super) struct Edit {
    pub(super) at: usize,
    pub(super) removed: Vec<String>,
    pub(super) added: Vec<String>,
}

impl Edit {
    pub(super) fn empty(at: usize) -> Self {
        Edit {
            at,
            removed: Vec::new(),
            added: Vec::new(),
        }
    }
}

/// Lines of context around each change in the unified diff.
const DIFF_CONTEXT: usize = 3;

pub(super) fn change(
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
    let mut shift: i64 = 0;
    let hunks = edits
        .iter()
        .map(|edit| {
            let old_start = edit.at as u64 + 1;
            let hunk = cox_protocol::Hunk {
                old_start,
                old_lines: edit.removed.len() as u64,
                new_start: (old_start as i64 + shift).max(1) as u64,
                new_lines: edit.added.len() as u64,
            };
            shift += edit.added.len() as i64 - edit.removed.len() as i64;
            hunk
        })
        .collect();
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
        hunks,
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

/// The whole file as one edit (for added and deleted files).
pub(super) fn whole(lines: &[&str], added: bool) -> Vec<Edit> {
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
