//! What the writable roots hold right now, by `lstat` alone: every file, directory and symbolic
//! link with its mode and a stamp (device, inode, size, modification and change times) that tells
//! whether it may have changed since the last look without reading it.
//!
//! The change time is in the stamp because nothing but the kernel sets it: a command that rewrites
//! a file and puts its modification time back (`touch -r`) still changes it.
//!
//! Not walked: any `.git` (the person's repository is never read or written here), the session's
//! protected paths (`.cox`), and the directories the project's ignore files (`.gitignore`,
//! `.ignore`, `.git/info/exclude`) left out when the store was made — `node_modules`, `target`.
//! Those files are frozen with the store: a model that adds `tests/` to `.gitignore` does not hide
//! what it then writes there. A directory created later that the frozen patterns ignore is skipped
//! too, unless a rule's paths could reach into it (then rules must see what it holds).

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::{Deserialize, Serialize};

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    File,
    Dir,
    Link { target: PathBuf },
}

/// Enough of `lstat` to tell "certainly the same" from "maybe changed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// Hard links: a write through one name changes every other.
    #[serde(default)]
    pub nlink: u64,
}

/// One path as the scan found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    #[serde(flatten)]
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub stamp: Stamp,
}

pub fn stamp(meta: &std::fs::Metadata) -> Stamp {
    Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        nlink: meta.nlink(),
    }
}

/// `lstat` of one path, `None` when it is not there (or is something the store does not keep,
/// such as a socket or a device).
pub fn look(path: &Path) -> Option<Seen> {
    let meta = fs_err::symlink_metadata(path).ok()?;
    seen(path, &meta)
}

fn seen(path: &Path, meta: &std::fs::Metadata) -> Option<Seen> {
    let kind = if meta.file_type().is_symlink() {
        Kind::Link {
            target: fs_err::read_link(path).ok()?,
        }
    } else if meta.is_dir() {
        Kind::Dir
    } else if meta.is_file() {
        Kind::File
    } else {
        return None;
    };
    Some(Seen {
        kind,
        mode: meta.permissions().mode() & 0o7777,
        stamp: stamp(meta),
    })
}

/// The ignore files of the project as they were when the store was made: (directory, text).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Frozen {
    pub files: Vec<(PathBuf, String)>,
    /// Directories ignored when the store was made: never walked.
    pub skipped: Vec<PathBuf>,
}

/// How a scan walks: what it leaves out.
pub struct Walker {
    roots: Vec<PathBuf>,
    protected: Vec<PathBuf>,
    skipped: HashSet<PathBuf>,
    /// Deepest directory first.
    ignores: Vec<(PathBuf, Gitignore)>,
    /// Where rules look (absolute path prefixes): ignored directories under them are walked.
    guarded: Vec<PathBuf>,
}

impl Walker {
    /// Reads the ignore files under `roots` (outside ignored directories) and freezes them.
    pub fn freeze(
        roots: &[PathBuf],
        protected: &[PathBuf],
        guarded: Vec<PathBuf>,
    ) -> (Walker, Frozen) {
        let mut frozen = Frozen::default();
        for root in roots {
            if let Some(repo) = root.ancestors().find(|d| d.join(".git").is_dir())
                && let Ok(text) = fs_err::read_to_string(repo.join(".git/info/exclude"))
            {
                frozen.files.push((repo.to_path_buf(), text));
            }
        }
        let mut walker = Walker::thaw(roots, protected, guarded, &frozen);
        // Walk once, reading ignore files as directories are entered and noting what they skip.
        let mut pending: Vec<PathBuf> = walker.roots.clone();
        while let Some(dir) = pending.pop() {
            for name in [".gitignore", ".ignore"] {
                if let Ok(text) = fs_err::read_to_string(dir.join(name)) {
                    frozen.files.push((dir.clone(), text.clone()));
                    walker.add_ignore(&dir, &text);
                }
            }
            let Ok(entries) = fs_err::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if !kind.is_dir() || walker.left_out(&path) {
                    continue;
                }
                if walker.ignored(&path) {
                    frozen.skipped.push(path.clone());
                    walker.skipped.insert(path);
                    continue;
                }
                pending.push(path);
            }
        }
        (walker, frozen)
    }

    /// A walker from frozen ignore files (a store reopened).
    pub fn thaw(
        roots: &[PathBuf],
        protected: &[PathBuf],
        guarded: Vec<PathBuf>,
        frozen: &Frozen,
    ) -> Walker {
        let mut roots: Vec<PathBuf> = roots.to_vec();
        roots.sort();
        roots.dedup();
        // A root inside another is walked as part of it.
        let nested: Vec<PathBuf> = roots
            .iter()
            .filter(|r| roots.iter().any(|o| o != *r && r.starts_with(o)))
            .cloned()
            .collect();
        roots.retain(|r| !nested.contains(r));
        let mut walker = Walker {
            roots,
            protected: protected.to_vec(),
            skipped: frozen.skipped.iter().cloned().collect(),
            ignores: Vec::new(),
            guarded,
        };
        for (dir, text) in &frozen.files {
            walker.add_ignore(dir, text);
        }
        walker
    }

    fn add_ignore(&mut self, dir: &Path, text: &str) {
        let mut builder = GitignoreBuilder::new(dir);
        for line in text.lines() {
            // A line the matcher cannot read ignores nothing, as git does.
            let _ = builder.add_line(None, line);
        }
        if let Ok(matcher) = builder.build() {
            self.ignores.push((dir.to_path_buf(), matcher));
            self.ignores
                .sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
        }
    }

    /// Whether the frozen patterns ignore directory `path` (the deepest file that speaks decides).
    fn ignored(&self, path: &Path) -> bool {
        for (dir, matcher) in &self.ignores {
            if !path.starts_with(dir) {
                continue;
            }
            let matched = matcher.matched(path, true);
            if matched.is_ignore() {
                return true;
            }
            if matched.is_whitelist() {
                return false;
            }
        }
        false
    }

    /// Never looked at: `.git`, protected paths, directories ignored when the store was made.
    fn left_out(&self, path: &Path) -> bool {
        path.file_name().is_some_and(|n| n == ".git")
            || self.protected.iter().any(|p| path.starts_with(p))
            || self.skipped.contains(path)
    }

    fn guarded(&self, dir: &Path) -> bool {
        self.guarded
            .iter()
            .any(|g| dir.starts_with(g) || g.starts_with(dir))
    }

    /// Everything under the roots now.
    pub fn scan(&self) -> BTreeMap<PathBuf, Seen> {
        self.scan_watching(&mut |_| {})
    }

    /// [`Walker::scan`], telling `on_dir` of each directory before it is read (so a watch set
    /// there misses nothing that changes after).
    pub fn scan_watching(&self, on_dir: &mut dyn FnMut(&Path)) -> BTreeMap<PathBuf, Seen> {
        let mut found = BTreeMap::new();
        for root in &self.roots {
            if let Some(seen) = look(root) {
                found.insert(root.clone(), seen);
            }
            self.walk(root, &mut found, on_dir);
        }
        found
    }

    /// A directory that appeared since the last look, with everything under it.
    pub fn scan_under(
        &self,
        dir: &Path,
        seen: Seen,
        on_dir: &mut dyn FnMut(&Path),
    ) -> BTreeMap<PathBuf, Seen> {
        let mut found = BTreeMap::new();
        found.insert(dir.to_path_buf(), seen);
        self.walk(dir, &mut found, on_dir);
        found
    }

    /// Whether a path an event named is outside what the store tracks: not under a root, left
    /// out, or a directory the frozen ignore files skip (and no rule looks into).
    pub fn untracked(&self, path: &Path, is_dir: bool) -> bool {
        !self.roots.iter().any(|r| path.starts_with(r))
            || path.ancestors().any(|a| self.left_out(a))
            || (is_dir && self.ignored(path) && !self.guarded(path))
    }

    fn walk(&self, dir: &Path, found: &mut BTreeMap<PathBuf, Seen>, on_dir: &mut dyn FnMut(&Path)) {
        on_dir(dir);
        // A directory that vanished mid-scan holds nothing now.
        let Ok(entries) = fs_err::read_dir(dir) else {
            return;
        };
        let mut dirs = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            // Protected and skipped paths are directories (a `.git` file goes by its name): a
            // file needs no more than the name check.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if entry.file_name() == ".git" || (is_dir && self.left_out(&path)) {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let Some(seen) = seen(&path, &meta) else {
                continue;
            };
            if seen.kind == Kind::Dir {
                if self.ignored(&path) && !self.guarded(&path) {
                    continue;
                }
                dirs.push(path.clone());
            }
            found.insert(path, seen);
        }
        for dir in dirs {
            self.walk(&dir, found, on_dir);
        }
    }
}
