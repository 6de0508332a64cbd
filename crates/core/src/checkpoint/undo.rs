//! Putting checkpoints back. An undo restores, for every path the chosen checkpoints changed, the
//! state before the first of them — bytes, mode, kind — and is itself a checkpoint (kind `undo`,
//! with `undoes`), so it can be undone in turn.
//!
//! - **Which checkpoints**: `cox undo` takes the newest action not undone yet; `--to ID` every
//!   action from `ID` on that is not undone yet (or, when `ID` is an undo, that undo: a redo); a plan
//!   step, every action of its session. An action is undone when an undo that is itself not undone
//!   lists it. A rule's rollback is never undone: that would put back what the rule forbids.
//! - **Refusals** come before anything is touched: a path whose state now is not what the chosen
//!   checkpoints left (the person edited it since, or an action not being undone did) — the undo
//!   would lose that work; content too large to have been kept; a directory to remove that holds
//!   files the store does not know.
//! - **Order**: files and links removed, then directories (deepest first, never recursively),
//!   directories made (shallowest first), files written (a temporary file beside the path, its
//!   mode set, then renamed over it) and links made, and last the directories' modes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cox_protocol::CheckpointKind;

use super::{Change, Checkpoint, Entry, Kind, Store, scan};

/// What to undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The newest action not undone yet.
    Last,
    /// Everything from this checkpoint on.
    To(u32),
    /// These actions (a rollback's), where not undone yet.
    Checkpoints(Vec<u32>),
    /// Every action of the session not undone yet (a plan step's session).
    All,
}

/// Why an undo did not happen; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("nothing to undo: no action of this session changed a file, or all were undone")]
    Nothing,
    #[error("there is no checkpoint {id}; `cox checkpoints` lists them")]
    Unknown { id: u32 },
    #[error(
        "checkpoint {id} is a project rule's rollback; undoing it would put back what the rule forbids"
    )]
    RolledBack { id: u32 },
    #[error(
        "changed since the checkpoint, not by what is being undone: {}; undoing would lose that \
         work — put those files back as they were, or undo further",
        .files.join(", ")
    )]
    Conflict { files: Vec<String> },
    #[error(
        "the content of {} was not kept (larger than checkpoint_max_file_bytes, or the store was \
         full: checkpoint_max_bytes)",
        .files.join(", ")
    )]
    NotKept { files: Vec<String> },
    #[error(
        "{} would have to be removed but holds files cox does not track (ignored ones?); move them \
         away first",
        .dirs.join(", ")
    )]
    NotEmpty { dirs: Vec<String> },
}

/// One path to put back: from what it is to what it was.
struct Step {
    path: PathBuf,
    current: Option<Entry>,
    target: Option<Entry>,
}

impl Store {
    /// The checkpoints in force: those no undo in force has undone.
    fn live(&self) -> HashSet<u32> {
        let mut dead = HashSet::new();
        let mut live = HashSet::new();
        for checkpoint in self.checkpoints.iter().rev() {
            if dead.contains(&checkpoint.id) {
                continue;
            }
            live.insert(checkpoint.id);
            if matches!(
                checkpoint.kind,
                CheckpointKind::Undo | CheckpointKind::Rollback
            ) {
                dead.extend(checkpoint.undoes.iter().copied());
            }
        }
        live
    }

    /// Whether an action checkpoint is still in force.
    pub fn is_live(&self, id: u32) -> bool {
        self.live().contains(&id)
    }

    fn chosen(&self, target: &Target) -> Result<Vec<&Checkpoint>, crate::Error> {
        let live = self.live();
        let actions = |c: &&Checkpoint| live.contains(&c.id) && c.kind == CheckpointKind::Action;
        let chosen: Vec<&Checkpoint> = match target {
            Target::Last => self
                .checkpoints
                .iter()
                .rev()
                .find(actions)
                .into_iter()
                .collect(),
            Target::To(id) => {
                let Some(from) = self.checkpoints.iter().find(|c| c.id == *id) else {
                    return Err(Refusal::Unknown { id: *id }.into());
                };
                if from.kind == CheckpointKind::Rollback {
                    return Err(Refusal::RolledBack { id: *id }.into());
                }
                self.checkpoints
                    .iter()
                    .filter(|c| c.id >= *id)
                    .filter(|c| {
                        actions(c)
                            || (c.id == *id
                                && c.kind == CheckpointKind::Undo
                                && live.contains(&c.id))
                    })
                    .collect()
            }
            Target::All => self.checkpoints.iter().filter(actions).collect(),
            // A rollback's: an action's, or what a process the model left running changed.
            Target::Checkpoints(ids) => self
                .checkpoints
                .iter()
                .filter(|c| ids.contains(&c.id) && live.contains(&c.id))
                .filter(|c| matches!(c.kind, CheckpointKind::Action | CheckpointKind::Outside))
                .collect(),
        };
        if chosen.is_empty() {
            return Err(Refusal::Nothing.into());
        }
        Ok(chosen)
    }

    /// Undoes `target`, after recording what changed since the last look (kind `outside`).
    /// Returns that outside checkpoint, if any, and the undo's own.
    pub fn undo(
        &mut self,
        target: &Target,
        kind: CheckpointKind,
        cwd: &Path,
    ) -> Result<(Option<Checkpoint>, Checkpoint), crate::Error> {
        let outside = self.record(CheckpointKind::Outside, None, "changed outside cox")?;
        let chosen = self.chosen(target)?;
        let ids: Vec<u32> = chosen.iter().map(|c| c.id).collect();
        // Per path: the state before the first chosen checkpoint, after the last.
        let mut first: BTreeMap<PathBuf, Option<Entry>> = BTreeMap::new();
        let mut last: BTreeMap<PathBuf, Option<Entry>> = BTreeMap::new();
        for checkpoint in &chosen {
            for change in &checkpoint.changes {
                first
                    .entry(change.path.clone())
                    .or_insert_with(|| change.before.clone());
                last.insert(change.path.clone(), change.after.clone());
            }
        }
        let mut conflicts = Vec::new();
        let mut not_kept = Vec::new();
        let mut steps = Vec::new();
        for (path, target) in first {
            let current = self.index.get(&path).cloned();
            let left = last.get(&path).cloned().flatten();
            if !self.same_state(current.as_ref(), left.as_ref()) {
                conflicts.push(super::shown(&path, cwd));
                continue;
            }
            if let Some(entry) = &target
                && entry.seen.kind == Kind::File
                && entry.blob.is_none()
            {
                not_kept.push(super::shown(&path, cwd));
            }
            if !self.same_state(current.as_ref(), target.as_ref()) {
                steps.push(Step {
                    path,
                    current,
                    target,
                });
            }
        }
        if !conflicts.is_empty() {
            return Err(Refusal::Conflict { files: conflicts }.into());
        }
        if !not_kept.is_empty() {
            return Err(Refusal::NotKept { files: not_kept }.into());
        }
        self.check_emptied(&steps, cwd)?;
        // The undo must be recordable before anything is touched (a store cox cannot write, as
        // inside the sandbox, refuses here rather than after the files were changed).
        let log = self.dir.join("checkpoints.jsonl");
        fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| super::io_error(&log, e))?;
        let action = format!(
            "{} {}",
            match kind {
                CheckpointKind::Rollback => "rollback of",
                _ => "undo of",
            },
            cox_protocol::list_ids(&ids)
        );
        let changes = self.restore(steps)?;
        let undone = self
            .commit(kind, None, &action, changes, ids.clone())?
            .unwrap_or_else(|| Checkpoint {
                // Everything was already as it had been: an empty undo, not recorded.
                id: 0,
                kind,
                at_ms: 0,
                call_id: None,
                action,
                changes: Vec::new(),
                undoes: ids,
            });
        Ok((outside, undone))
    }

    /// Whether two states are the same: kind, mode, link target and content.
    fn same_state(&self, a: Option<&Entry>, b: Option<&Entry>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.seen.kind == b.seen.kind
                    && a.seen.mode == b.seen.mode
                    && (a.seen.kind != Kind::File
                        || a.seen.stamp == b.seen.stamp
                        || match (a.blob, b.blob) {
                            (Some(x), Some(y)) => self.pack.same(x, y),
                            _ => false,
                        })
            }
            _ => false,
        }
    }

    /// A directory the undo removes may hold nothing but what the undo removes too.
    fn check_emptied(&self, steps: &[Step], cwd: &Path) -> Result<(), crate::Error> {
        let removed: BTreeSet<&Path> = steps
            .iter()
            .filter(|s| s.current.is_some() && !same_kind(s.current.as_ref(), s.target.as_ref()))
            .map(|s| s.path.as_path())
            .collect();
        let mut full = Vec::new();
        for step in steps {
            if !removed.contains(step.path.as_path())
                || step.current.as_ref().map(|c| &c.seen.kind) != Some(&Kind::Dir)
            {
                continue;
            }
            let Ok(entries) = fs_err::read_dir(&step.path) else {
                continue;
            };
            if entries
                .flatten()
                .any(|e| !removed.contains(e.path().as_path()))
            {
                full.push(super::shown(&step.path, cwd));
            }
        }
        if full.is_empty() {
            Ok(())
        } else {
            Err(Refusal::NotEmpty { dirs: full }.into())
        }
    }

    /// Puts every step's target in place; returns the changes as the undo's checkpoint holds them.
    fn restore(&mut self, steps: Vec<Step>) -> Result<Vec<Change>, crate::Error> {
        let fail = |path: &Path, e: std::io::Error| super::io_error(path, e);
        // Files and links that go, or become something else.
        for step in &steps {
            if let Some(current) = &step.current
                && current.seen.kind != Kind::Dir
                && !(current.seen.kind == Kind::File
                    && step
                        .target
                        .as_ref()
                        .is_some_and(|t| t.seen.kind == Kind::File))
            {
                fs_err::remove_file(&step.path).map_err(|e| fail(&step.path, e))?;
            }
        }
        // Directories that go: deepest first.
        for step in steps.iter().rev() {
            if step
                .current
                .as_ref()
                .is_some_and(|c| c.seen.kind == Kind::Dir)
                && !step
                    .target
                    .as_ref()
                    .is_some_and(|t| t.seen.kind == Kind::Dir)
            {
                fs_err::remove_dir(&step.path).map_err(|e| fail(&step.path, e))?;
            }
        }
        // Directories that come back: shallowest first (the steps are in path order).
        for step in &steps {
            if step
                .target
                .as_ref()
                .is_some_and(|t| t.seen.kind == Kind::Dir)
                && !step
                    .current
                    .as_ref()
                    .is_some_and(|c| c.seen.kind == Kind::Dir)
            {
                fs_err::create_dir_all(&step.path).map_err(|e| fail(&step.path, e))?;
            }
        }
        for step in &steps {
            let Some(target) = &step.target else {
                continue;
            };
            match &target.seen.kind {
                Kind::File => {
                    let Some(blob) = target.blob else {
                        continue;
                    };
                    self.put_file(&step.path, blob, target.seen.mode)?;
                }
                Kind::Link { target: to } => {
                    if let Some(parent) = step.path.parent() {
                        fs_err::create_dir_all(parent).map_err(|e| fail(parent, e))?;
                    }
                    fs_err::os::unix::fs::symlink(to, &step.path)
                        .map_err(|e| fail(&step.path, e))?;
                }
                Kind::Dir => {}
            }
        }
        for step in steps.iter().rev() {
            if let Some(target) = &step.target
                && target.seen.kind == Kind::Dir
            {
                let mode = std::fs::Permissions::from_mode(target.seen.mode);
                fs_err::set_permissions(&step.path, mode).map_err(|e| fail(&step.path, e))?;
            }
        }
        Ok(steps
            .into_iter()
            .map(|step| {
                let after = scan::look(&step.path).map(|seen| Entry {
                    blob: step
                        .target
                        .as_ref()
                        .filter(|t| t.seen.kind == seen.kind)
                        .and_then(|t| t.blob),
                    seen,
                });
                Change {
                    path: step.path,
                    before: step.current,
                    after,
                }
            })
            .collect())
    }

    /// Writes a kept blob at `path`: a temporary file beside it, its mode, then a rename.
    fn put_file(&self, path: &Path, blob: super::Blob, mode: u32) -> Result<(), crate::Error> {
        let fail = |path: &Path, e: std::io::Error| super::io_error(path, e);
        let parent = path.parent().unwrap_or(Path::new("/"));
        fs_err::create_dir_all(parent).map_err(|e| fail(parent, e))?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let temp = parent.join(format!(".{name}.cox-undo"));
        let bytes = self.blob(blob)?;
        fs_err::write(&temp, bytes).map_err(|e| fail(&temp, e))?;
        fs_err::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
            .and_then(|()| fs_err::rename(&temp, path))
            .map_err(|e| {
                let _ = fs_err::remove_file(&temp);
                fail(path, e)
            })
    }
}

fn same_kind(a: Option<&Entry>, b: Option<&Entry>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.seen.kind == b.seen.kind || (a.seen.kind == Kind::File && b.seen.kind == Kind::File)
        }
        _ => false,
    }
}
