//! Checkpoints: what every action really changed in the writable roots, whichever tool did it,
//! with the content to put it back (`cox undo`), and the changed files that project rules check
//! ([`crate::rules::Rules::check_changes`]).
//!
//! **Why a store of our own, not a shadow git repository.** A shadow repository (`GIT_DIR` under
//! `$COX_HOME`, the workspace as work tree) would hash every file at every snapshot, write a tree
//! per action and need `git` on the machine; it also reads the person's `.gitignore` as it is *now*,
//! which a model can edit to hide what it writes. This store:
//!
//! - **detects** by `lstat` alone ([`scan`]): device, inode, size, modification and change time
//!   per path, compared with the last known state. Only a path whose stamp moved is read, and a file
//!   rewritten with the same bytes is no change. The cost per action is two walks of the roots'
//!   metadata — the before-walk tells the person's own edits (kind `outside`) from the action's.
//! - **keeps content** in one append-only pack ([`pack`]): the baseline — every file, once — is
//!   taken in the background when the session starts (an action that may write waits for it);
//!   after that, only what changed.
//!   A file over `checkpoint_max_file_bytes`, or past the store's `checkpoint_max_bytes`, is
//!   tracked but its content is not kept: undo then refuses and names it.
//! - **never touches** `.git` (not even read), the session's protected paths, or directories the
//!   project ignored when the store was made (frozen then; see [`scan`]).
//!
//! - **knows where to look** from the kernel ([`watch`], inotify): after the first walk, a look
//!   reads only the paths the kernel names, and walks everything again when it may have lost
//!   one.
//!
//! On disk, `$COX_HOME/checkpoints/<session id>/`: `store.json` (roots and frozen ignore files),
//! `base.jsonl` (the baseline's entries), `checkpoints.jsonl` (one [`Checkpoint`] per line,
//! appended; a torn last line is dropped on reopen) and `objects.pack`. Reopened (resume, `cox
//! undo`), the known state is the baseline with every checkpoint's after-states applied. The
//! stores of the [`KEEP_SESSIONS`] newest sessions are kept, so `cox undo` works after a session
//! ended; older ones are removed when a new store is made ([`prune`]).

mod pack;
pub mod recorded;
pub mod scan;
mod undo;
mod watch;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use cox_protocol::{CallId, ChangedPath, CheckpointKind, PathChange};
use serde::{Deserialize, Serialize};

pub use pack::Blob;
pub use recorded::undo_note;
pub use scan::{Kind, Seen};
pub use undo::{Refusal, Target};

/// The store's format; a different one is refused rather than misread.
const VERSION: u32 = 1;

/// One path with what the store keeps of it: `blob` is its content (files only), `None` when it
/// was too large to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seen: Seen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<Blob>,
}

/// One path's change: absent before means created, absent after means deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub path: PathBuf,
    pub before: Option<Entry>,
    pub after: Option<Entry>,
}

/// What changed between two moments, and who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub id: u32,
    pub kind: CheckpointKind,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<CallId>,
    pub action: String,
    pub changes: Vec<Change>,
    /// For an undo or a rollback: the checkpoints it put back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undoes: Vec<u32>,
}

impl Checkpoint {
    /// The changes as front ends see them, paths relative to `cwd`; a delete and a create of the
    /// same file (device and inode) are one rename.
    pub fn files(&self, cwd: &Path) -> Vec<ChangedPath> {
        let show = |p: &Path| shown(p, cwd);
        let same_file = |a: &Entry, b: &Entry| {
            a.seen.stamp.dev == b.seen.stamp.dev && a.seen.stamp.ino == b.seen.stamp.ino
        };
        let mut files = Vec::new();
        let mut paired = Vec::new();
        for change in &self.changes {
            let kind = match (&change.before, &change.after) {
                (None, Some(after)) => {
                    let from = self.changes.iter().find(|c| {
                        c.after.is_none()
                            && c.before.as_ref().is_some_and(|b| {
                                same_file(b, after) && b.seen.kind == after.seen.kind
                            })
                    });
                    match from {
                        Some(from) if after.seen.kind != Kind::Dir => {
                            paired.push(from.path.clone());
                            PathChange::Renamed {
                                from: show(&from.path),
                            }
                        }
                        _ => PathChange::Created,
                    }
                }
                (Some(_), None) => PathChange::Deleted,
                (Some(before), Some(after))
                    if before.seen.kind == after.seen.kind
                        && before.blob == after.blob
                        && before.seen.mode != after.seen.mode
                        && !content_unknown(before) =>
                {
                    PathChange::Mode {
                        from: format!("{:o}", before.seen.mode),
                        to: format!("{:o}", after.seen.mode),
                    }
                }
                _ => PathChange::Modified,
            };
            files.push(ChangedPath {
                path: show(&change.path),
                change: kind,
            });
        }
        let paired: Vec<String> = paired.iter().map(|p| show(p)).collect();
        files.retain(|f| !(f.change == PathChange::Deleted && paired.contains(&f.path)));
        files
    }
}

/// A file whose content was not kept: a change of mode may hide a change of content.
fn content_unknown(before: &Entry) -> bool {
    before.seen.kind == Kind::File && before.blob.is_none()
}

/// A path as shown: relative to `cwd` when inside it.
pub fn shown(path: &Path, cwd: &Path) -> String {
    path.strip_prefix(cwd)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

#[derive(Debug, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    roots: Vec<PathBuf>,
    protected: Vec<PathBuf>,
    frozen: scan::Frozen,
}

/// How much the store may keep.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A larger file is tracked but its content is not kept.
    pub max_file_bytes: u64,
    /// All blobs together.
    pub max_bytes: u64,
}

/// Where a session's store lives.
pub fn dir(home: &Path, session: &str) -> PathBuf {
    home.join("checkpoints").join(session)
}

/// How many sessions' stores are kept.
pub const KEEP_SESSIONS: usize = 20;

/// Removes all but the newest `keep` stores (session ids are UUIDv7: their names sort by time).
/// A store whose session is running right now is never among the old ones it removes: it was
/// made after them.
pub fn prune(home: &Path, keep: usize) {
    let Ok(entries) = fs_err::read_dir(home.join("checkpoints")) else {
        return;
    };
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    let old = names.len().saturating_sub(keep);
    for path in names.into_iter().take(old) {
        if let Err(error) = fs_err::remove_dir_all(&path) {
            tracing::warn!(%error, "cannot remove an old checkpoint store");
        }
    }
}

/// A session's checkpoint store, open.
pub struct Store {
    dir: PathBuf,
    walker: scan::Walker,
    /// The known state of every path under the roots.
    index: BTreeMap<PathBuf, Entry>,
    checkpoints: Vec<Checkpoint>,
    /// Whether the baseline was taken (it is at the first action that may write).
    based: bool,
    pack: pack::Pack,
    limits: Limits,
    /// The kernel's hint of what changed (see [`watch`]); armed once a walk set its watches.
    watch: Option<watch::Watch>,
    armed: bool,
}

fn io_error(path: &Path, source: std::io::Error) -> crate::Error {
    crate::Error::Checkpoint {
        path: path.to_path_buf(),
        source,
    }
}

fn json_error(path: &Path, error: serde_json::Error) -> crate::Error {
    io_error(path, std::io::Error::other(error))
}

impl Store {
    /// Opens the session's store, or makes it (freezing the project's ignore files now).
    /// `guarded`: absolute path prefixes project rules look at, walked even where ignored.
    pub fn open(
        home: &Path,
        session: &str,
        roots: &[PathBuf],
        protected: &[PathBuf],
        guarded: Vec<PathBuf>,
        limits: Limits,
    ) -> Result<Store, crate::Error> {
        let dir = dir(home, session);
        let meta = dir.join("store.json");
        let walker = if meta.is_file() {
            let text = fs_err::read_to_string(&meta).map_err(|e| io_error(&meta, e))?;
            let file: StoreFile = serde_json::from_str(&text).map_err(|e| json_error(&meta, e))?;
            if file.version != VERSION {
                return Err(io_error(
                    &meta,
                    std::io::Error::other(format!(
                        "checkpoint store version {} is not {VERSION}; remove {} to start afresh",
                        file.version,
                        dir.display()
                    )),
                ));
            }
            scan::Walker::thaw(&file.roots, &file.protected, guarded, &file.frozen)
        } else {
            let (walker, frozen) = scan::Walker::freeze(roots, protected, guarded);
            let file = StoreFile {
                version: VERSION,
                roots: roots.to_vec(),
                protected: protected.to_vec(),
                frozen,
            };
            prune(home, KEEP_SESSIONS - 1);
            fs_err::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
            let text = serde_json::to_string(&file).map_err(|e| json_error(&meta, e))?;
            write_atomic(&meta, text.as_bytes())?;
            walker
        };
        let pack_path = dir.join("objects.pack");
        let pack = pack::Pack::open(&pack_path).map_err(|e| io_error(&pack_path, e))?;
        let mut store = Store {
            pack,
            dir,
            walker,
            index: BTreeMap::new(),
            checkpoints: Vec::new(),
            based: false,
            limits,
            watch: watch::Watch::new(),
            armed: false,
        };
        store.load()?;
        Ok(store)
    }

    fn load(&mut self) -> Result<(), crate::Error> {
        let base = self.dir.join("base.jsonl");
        if let Ok(text) = fs_err::read_to_string(&base) {
            for line in text.lines() {
                let (path, entry): (PathBuf, Entry) =
                    serde_json::from_str(line).map_err(|e| json_error(&base, e))?;
                self.index.insert(path, entry);
            }
            self.based = true;
        }
        let log = self.dir.join("checkpoints.jsonl");
        if let Ok(text) = fs_err::read_to_string(&log) {
            let lines: Vec<&str> = text.lines().collect();
            for (n, line) in lines.iter().enumerate() {
                let checkpoint: Checkpoint = match serde_json::from_str(line) {
                    Ok(checkpoint) => checkpoint,
                    // Torn by a kill mid-append: that checkpoint never finished.
                    Err(_) if n + 1 == lines.len() => break,
                    Err(e) => return Err(json_error(&log, e)),
                };
                self.apply(&checkpoint);
                self.checkpoints.push(checkpoint);
            }
        }
        Ok(())
    }

    fn apply(&mut self, checkpoint: &Checkpoint) {
        for change in &checkpoint.changes {
            match &change.after {
                Some(after) => self.index.insert(change.path.clone(), after.clone()),
                None => self.index.remove(&change.path),
            };
        }
    }

    /// Never asks the kernel what changed: every look walks everything (what a host without
    /// inotify gets; for measuring).
    pub fn walk_only(&mut self) {
        self.watch = None;
        self.armed = false;
    }

    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// Whether an action checkpoint (not undone) left `path` as it is.
    pub fn changed_by_action(&self, path: &Path) -> bool {
        self.checkpoints.iter().any(|c| {
            c.kind == CheckpointKind::Action
                && c.changes
                    .iter()
                    .any(|ch| ch.path == path && ch.after.is_some())
        }) && self.index.contains_key(path)
    }

    /// Bytes of content kept.
    pub fn used_bytes(&self) -> u64 {
        self.pack.len()
    }

    /// Takes the baseline if there is none yet: every path's state and every file's content.
    pub fn ensure_base(&mut self) -> Result<(), crate::Error> {
        self.ensure_base_unless(&std::sync::atomic::AtomicBool::new(false))
    }

    /// [`Store::ensure_base`], given up (nothing kept) as soon as `stop` is set: a session that
    /// ends before its first action does not wait for its baseline.
    pub fn ensure_base_unless(
        &mut self,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<(), crate::Error> {
        if self.based {
            return Ok(());
        }
        let now = self.walk_all();
        let mut lines = String::new();
        let mut index = BTreeMap::new();
        for (path, seen) in now {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
            }
            let blob = match seen.kind {
                Kind::File => self.keep(&path, seen.stamp.size)?,
                _ => None,
            };
            let entry = Entry { seen, blob };
            lines.push_str(
                &serde_json::to_string(&(&path, &entry)).map_err(|e| json_error(&path, e))?,
            );
            lines.push('\n');
            index.insert(path, entry);
        }
        write_atomic(&self.dir.join("base.jsonl"), lines.as_bytes())?;
        self.index = index;
        self.based = true;
        Ok(())
    }

    /// Whether the baseline was taken.
    pub fn is_based(&self) -> bool {
        self.based
    }

    /// Where the store lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copies a file's content into the store, if the limits allow.
    fn keep(&mut self, path: &Path, size: u64) -> Result<Option<Blob>, crate::Error> {
        if size > self.limits.max_file_bytes || self.pack.len() + size > self.limits.max_bytes {
            return Ok(None);
        }
        let bytes = match fs_err::read(path) {
            Ok(bytes) => bytes,
            // Gone (or unreadable) since the look: nothing to keep.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(io_error(path, e)),
        };
        let blob = self
            .pack
            .put(&bytes)
            .map_err(|e| io_error(self.pack.path(), e))?;
        Ok(Some(blob))
    }

    /// A kept blob's bytes.
    pub fn blob(&self, blob: Blob) -> Result<Vec<u8>, crate::Error> {
        self.pack
            .get(blob)
            .map_err(|e| io_error(self.pack.path(), e))
    }

    /// Records what changed since the last look as a checkpoint of `kind`; `None` when nothing did.
    pub fn record(
        &mut self,
        kind: CheckpointKind,
        call_id: Option<&CallId>,
        action: &str,
    ) -> Result<Option<Checkpoint>, crate::Error> {
        let changes = match self.dirty() {
            Some(paths) => self.diff_paths(paths)?,
            None => {
                let now = self.walk_all();
                // Only the paths whose state moved are compared in full.
                let mut keys = std::collections::BTreeSet::new();
                for (path, seen) in &now {
                    if self.index.get(path).is_none_or(|known| known.seen != *seen) {
                        keys.insert(path.clone());
                    }
                }
                keys.extend(
                    self.index
                        .keys()
                        .filter(|path| !now.contains_key(*path))
                        .cloned(),
                );
                self.compare(keys, &now)?
            }
        };
        self.commit(kind, call_id, action, changes, Vec::new())
    }

    /// The known paths under `path` (not itself).
    fn known_under(&self, path: &Path) -> Vec<PathBuf> {
        self.index
            .range(path.to_path_buf()..)
            .skip(1)
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Every path under the roots, setting a watch on each directory before it is read.
    fn walk_all(&mut self) -> BTreeMap<PathBuf, Seen> {
        if let Some(watch) = self.watch.as_mut() {
            // Whatever was queued is about what this walk reads anyway.
            let _ = watch.drain();
        }
        let Store { walker, watch, .. } = self;
        let now = walker.scan_watching(&mut |dir| {
            if let Some(watch) = watch.as_mut() {
                watch.add(dir);
            }
        });
        self.armed = self.watch.is_some();
        now
    }

    /// What the kernel says may have changed since the last look; `None`: walk everything.
    fn dirty(&mut self) -> Option<std::collections::BTreeSet<PathBuf>> {
        if !self.armed {
            return None;
        }
        let dirty = self.watch.as_mut()?.drain();
        if dirty.is_none() {
            self.armed = false;
        }
        dirty
    }

    /// The changes among the paths the kernel named: each looked at again; a directory that
    /// appeared is walked (and watched), one that went takes everything under it along.
    fn diff_paths(
        &mut self,
        mut dirty: std::collections::BTreeSet<PathBuf>,
    ) -> Result<Vec<Change>, crate::Error> {
        // A file with other names (hard links): a write through one is a change of all, and the
        // kernel names only the one written through.
        let linked: Vec<(u64, u64)> = dirty
            .iter()
            .filter_map(|path| scan::look(path))
            .filter(|seen| seen.kind == Kind::File && seen.stamp.nlink > 1)
            .map(|seen| (seen.stamp.dev, seen.stamp.ino))
            .collect();
        if !linked.is_empty() {
            let others: Vec<PathBuf> = self
                .index
                .iter()
                .filter(|(_, e)| linked.contains(&(e.seen.stamp.dev, e.seen.stamp.ino)))
                .map(|(p, _)| p.clone())
                .collect();
            dirty.extend(others);
        }
        let mut now = BTreeMap::new();
        let mut keys = std::collections::BTreeSet::new();
        for path in dirty {
            let seen = scan::look(&path);
            let is_dir = seen.as_ref().is_some_and(|s| s.kind == Kind::Dir);
            if self.walker.untracked(&path, is_dir) {
                continue;
            }
            // The same directory (not one made anew under the old name, which has no watch).
            let known_dir = match (self.index.get(&path), &seen) {
                (Some(known), Some(seen)) => {
                    known.seen.kind == Kind::Dir
                        && known.seen.stamp.dev == seen.stamp.dev
                        && known.seen.stamp.ino == seen.stamp.ino
                }
                _ => false,
            };
            keys.insert(path.clone());
            match seen {
                // A directory already known: its entries have watches of their own.
                Some(seen) if is_dir && known_dir => {
                    now.insert(path, seen);
                }
                Some(seen) => {
                    // What the index holds under this path is decided by this look.
                    keys.extend(self.known_under(&path));
                    if is_dir {
                        let Store { walker, watch, .. } = self;
                        let found = walker.scan_under(&path, seen, &mut |dir| {
                            if let Some(watch) = watch.as_mut() {
                                watch.add(dir);
                            }
                        });
                        keys.extend(found.keys().cloned());
                        now.extend(found);
                    } else {
                        now.insert(path, seen);
                    }
                }
                None => keys.extend(self.known_under(&path)),
            }
        }
        self.compare(keys, &now)
    }

    fn commit(
        &mut self,
        kind: CheckpointKind,
        call_id: Option<&CallId>,
        action: &str,
        changes: Vec<Change>,
        undoes: Vec<u32>,
    ) -> Result<Option<Checkpoint>, crate::Error> {
        if changes.is_empty() {
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            id: self.checkpoints.last().map_or(1, |c| c.id + 1),
            kind,
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            call_id: call_id.cloned(),
            action: action.to_string(),
            changes,
            undoes,
        };
        let log = self.dir.join("checkpoints.jsonl");
        let mut line = serde_json::to_string(&checkpoint).map_err(|e| json_error(&log, e))?;
        line.push('\n');
        let mut file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| io_error(&log, e))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| io_error(&log, e))?;
        self.apply(&checkpoint);
        self.checkpoints.push(checkpoint.clone());
        Ok(Some(checkpoint))
    }

    /// The changes from the known state to `now` over `keys` (a key absent from `now` is gone),
    /// with the new content kept. Stamps that moved without a change (a directory's times, a
    /// file rewritten with the same bytes) update the known state silently.
    fn compare(
        &mut self,
        keys: std::collections::BTreeSet<PathBuf>,
        now: &BTreeMap<PathBuf, Seen>,
    ) -> Result<Vec<Change>, crate::Error> {
        let mut changes = Vec::new();
        for path in keys {
            let before = self.index.get(&path).cloned();
            let Some(seen) = now.get(&path).cloned() else {
                if let Some(before) = before {
                    changes.push(Change {
                        path,
                        before: Some(before),
                        after: None,
                    });
                }
                continue;
            };
            match &before {
                Some(known) if known.seen == seen => continue,
                Some(known) if known.seen.kind == seen.kind && known.seen.mode == seen.mode => {
                    let same = match seen.kind {
                        // A directory's stamp moves with every entry made in it.
                        Kind::Dir | Kind::Link { .. } => true,
                        Kind::File => self.same_bytes(known, &path, seen.stamp.size),
                    };
                    if same {
                        if let Some(entry) = self.index.get_mut(&path) {
                            entry.seen.stamp = seen.stamp;
                        }
                        continue;
                    }
                }
                _ => {}
            }
            let blob = match (&seen.kind, &before) {
                // Only the mode changed: the kept content still holds.
                (Kind::File, Some(known))
                    if known.seen.kind == Kind::File
                        && known.seen.stamp.size == seen.stamp.size
                        && known.seen.mode != seen.mode
                        && self.same_bytes(known, &path, seen.stamp.size) =>
                {
                    known.blob
                }
                (Kind::File, _) => self.keep(&path, seen.stamp.size)?,
                _ => None,
            };
            // The index is updated when the checkpoint is committed.
            changes.push(Change {
                path,
                before,
                after: Some(Entry { seen, blob }),
            });
        }
        Ok(changes)
    }

    /// The files a checkpoint changed, for the rules: named relative to the repository `root` as
    /// the file system has them, each with its whole content now (read through a link). A link
    /// anywhere in the roots that leads to a changed file counts as changed too: `tests/db.js ->
    /// ../src/db.js` puts what is written to `src/db.js` in `tests/`.
    pub fn changed_files(
        &self,
        checkpoint: &Checkpoint,
        root: &Path,
    ) -> Vec<crate::rules::ChangedFile> {
        let real_root = fs_err::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let relative = |path: &Path| {
            path.strip_prefix(root)
                .or_else(|_| path.strip_prefix(&real_root))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| path.display().to_string())
        };
        let read = |path: &Path| fs_err::read(path).ok();
        let mut files: Vec<crate::rules::ChangedFile> = checkpoint
            .changes
            .iter()
            .map(|change| crate::rules::ChangedFile {
                path: relative(&change.path),
                content: match change.after.as_ref().map(|a| &a.seen.kind) {
                    Some(Kind::File | Kind::Link { .. }) => read(&change.path),
                    _ => None,
                },
            })
            .collect();
        let changed: Vec<PathBuf> = checkpoint
            .changes
            .iter()
            .filter(|c| c.after.as_ref().is_some_and(|a| a.seen.kind == Kind::File))
            .filter_map(|c| fs_err::canonicalize(&c.path).ok())
            .collect();
        if !changed.is_empty() {
            for (path, entry) in &self.index {
                if matches!(entry.seen.kind, Kind::Link { .. })
                    && fs_err::canonicalize(path).is_ok_and(|to| changed.contains(&to))
                    && !checkpoint.changes.iter().any(|c| &c.path == path)
                {
                    files.push(crate::rules::ChangedFile {
                        path: relative(path),
                        content: read(path),
                    });
                }
            }
        }
        files
    }

    /// Whether the file at `path` holds exactly the kept content of `known`.
    fn same_bytes(&self, known: &Entry, path: &Path, size: u64) -> bool {
        let Some(blob) = known.blob else {
            return false;
        };
        if known.seen.stamp.size != size {
            return false;
        }
        self.pack.same_as_file(blob, path)
    }
}

/// Writes a file whole: a temporary file beside it, then a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), crate::Error> {
    let temp = path.with_extension("tmp");
    fs_err::write(&temp, bytes)
        .and_then(|()| fs_err::rename(&temp, path))
        .map_err(|e| io_error(path, e))
}

#[cfg(test)]
mod tests;
