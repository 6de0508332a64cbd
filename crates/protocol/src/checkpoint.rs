//! What checkpoints tell front ends: which paths an action changed and how, and what an undo
//! restored. The engine's store (`cox-core`'s `checkpoint`) keeps the content; these are the
//! summaries that travel in events and `cox checkpoints --json`.

use serde::{Deserialize, Serialize};

/// Who made the changes a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// A tool call or a check.
    Action,
    /// Someone else, between two actions (the person in an editor, a build running beside cox).
    Outside,
    /// `cox undo`, `/undo` or `Op::Undo`.
    Undo,
    /// A project rule's check on what an action changed undid it at once.
    Rollback,
}

/// How one path changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum PathChange {
    Created,
    Modified,
    Deleted,
    /// Only the permission bits changed (`from` and `to` are octal, e.g. "644").
    Mode {
        from: String,
        to: String,
    },
    /// Moved here from `from` (the same file: same device and inode).
    Renamed {
        from: String,
    },
}

/// One changed path, relative to the working directory where it is inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedPath {
    pub path: String,
    #[serde(flatten)]
    pub change: PathChange,
}

/// `src/a.js (modified)`, `b.js (renamed from a.js)`, `run.sh (mode 644 → 755)`.
impl std::fmt::Display for ChangedPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.change {
            PathChange::Created => write!(f, "{} (created)", self.path),
            PathChange::Modified => write!(f, "{} (modified)", self.path),
            PathChange::Deleted => write!(f, "{} (deleted)", self.path),
            PathChange::Mode { from, to } => write!(f, "{} (mode {from} → {to})", self.path),
            PathChange::Renamed { from } => write!(f, "{} (renamed from {from})", self.path),
        }
    }
}

/// Changed paths in one line, the first `shown` of them.
pub fn list_paths(files: &[ChangedPath], shown: usize) -> String {
    let mut line = files
        .iter()
        .take(shown)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > shown {
        line.push_str(&format!(" and {} more", files.len() - shown));
    }
    line
}

/// Checkpoint ids in one line: `3, 4, 5`.
pub fn list_ids(ids: &[u32]) -> String {
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
