//! Protected paths that a mount cannot keep read-only: those that do not exist yet (no mount
//! point to bind), and, without namespaces, all of them. The guard takes what they are before the
//! command and, once the command and everything it started are dead (so nothing races it), puts
//! them back: a protected path the command made is removed; a changed one is restored, entry by
//! entry, without following symlinks.
//!
//! Content-addressed data (`.git/objects`, `.git/lfs`) is neither copied nor restored: adding to
//! it runs nothing, and copying it would cost as much as the repository.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::launch::Containment;

/// Subtrees of a protected path the guard leaves alone.
const SKIPPED: &[&str] = &["objects", "lfs"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir(u32),
    File(Vec<u8>, u32),
    Link(PathBuf),
}

enum Entry {
    Absent(PathBuf),
    /// The path, its (device, inode), and what was beneath it.
    Tree(PathBuf, (u64, u64), Vec<(PathBuf, Node)>),
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs_err::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// A protected directory renamed away keeps its inode: finds it among the entries of its old
/// parent (where `mv .git .git-old` leaves it) and moves it back over whatever took its place.
fn bring_back(path: &Path, id: (u64, u64)) -> bool {
    if identity(path) == Some(id) {
        return false;
    }
    let Some(parent) = path.parent() else {
        return false;
    };
    let Ok(entries) = fs_err::read_dir(parent) else {
        return false;
    };
    let found = entries
        .flatten()
        .map(|e| e.path())
        .find(|p| identity(p) == Some(id));
    let Some(found) = found else {
        return false;
    };
    remove(path);
    fs_err::rename(&found, path).is_ok()
}

pub(crate) struct Guard {
    entries: Vec<Entry>,
}

impl Guard {
    pub(crate) fn take(protected: &[PathBuf], containment: Containment) -> Guard {
        let entries = protected
            .iter()
            .filter_map(|path| match fs_err::symlink_metadata(path) {
                Err(_) => Some(Entry::Absent(path.clone())),
                Ok(_) if containment == Containment::Subreaper => Some(Entry::Tree(
                    path.clone(),
                    identity(path).unwrap_or_default(),
                    snapshot(path),
                )),
                Ok(_) => None,
            })
            .collect();
        Guard { entries }
    }

    /// Puts every protected path back; says what it had to undo.
    pub(crate) fn restore(self) -> Vec<String> {
        let mut undone = Vec::new();
        for entry in self.entries {
            match entry {
                Entry::Absent(path) => {
                    if fs_err::symlink_metadata(&path).is_ok() {
                        remove(&path);
                        undone.push(format!(
                            "removed {}, which the command created: it is a protected path",
                            path.display()
                        ));
                    }
                }
                Entry::Tree(path, id, before) => {
                    let moved = bring_back(&path, id);
                    if moved || snapshot(&path) != before {
                        put_back(&path, &before);
                        undone.push(format!(
                            "put {} back as it was before the command: it is a protected path",
                            path.display()
                        ));
                    }
                }
            }
        }
        undone
    }
}

fn node(path: &Path) -> Option<Node> {
    let meta = fs_err::symlink_metadata(path).ok()?;
    let mode = meta.permissions().mode();
    let kind = meta.file_type();
    Some(if kind.is_symlink() {
        Node::Link(fs_err::read_link(path).ok()?)
    } else if kind.is_dir() {
        Node::Dir(mode)
    } else {
        Node::File(fs_err::read(path).unwrap_or_default(), mode)
    })
}

/// Every entry beneath `root` (relative paths, parents first), `root` itself as "".
fn snapshot(root: &Path) -> Vec<(PathBuf, Node)> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let path = root.join(&rel);
        let Some(found) = node(&path) else { continue };
        if matches!(found, Node::Dir(_))
            && let Ok(entries) = fs_err::read_dir(&path)
        {
            let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            names.sort();
            for name in names.into_iter().rev() {
                if rel.as_os_str().is_empty() && SKIPPED.iter().any(|s| name == *s) {
                    continue;
                }
                pending.push(rel.join(name));
            }
        }
        out.push((rel, found));
    }
    out
}

fn remove(path: &Path) {
    match fs_err::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let _ = fs_err::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs_err::remove_file(path);
        }
        Err(_) => {}
    }
}

fn create(path: &Path, node: &Node) {
    let _ = match node {
        Node::Dir(mode) => fs_err::create_dir(path)
            .and_then(|()| fs_err::set_permissions(path, PermissionsExt::from_mode(*mode))),
        Node::File(bytes, mode) => fs_err::write(path, bytes)
            .and_then(|()| fs_err::set_permissions(path, PermissionsExt::from_mode(*mode))),
        Node::Link(target) => fs_err::os::unix::fs::symlink(target, path),
    };
}

fn put_back(root: &Path, before: &[(PathBuf, Node)]) {
    // What is there now and was not before goes (deepest first, so directories empty out).
    let now = snapshot(root);
    for (rel, _) in now.iter().rev() {
        if !before.iter().any(|(b, _)| b == rel) {
            remove(&root.join(rel));
        }
    }
    // What was there and differs is made anew (parents first).
    for (rel, node) in before {
        let path = root.join(rel);
        match self::node(&path) {
            Some(current) if current == *node => {}
            Some(Node::Dir(_)) if matches!(node, Node::Dir(_)) => {
                if let Node::Dir(mode) = node {
                    let _ = fs_err::set_permissions(&path, PermissionsExt::from_mode(*mode));
                }
            }
            Some(_) => {
                remove(&path);
                create(&path, node);
            }
            None => create(&path, node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_back_what_a_command_changed() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        fs_err::create_dir_all(git.join("hooks")).unwrap();
        fs_err::create_dir_all(git.join("objects")).unwrap();
        fs_err::write(git.join("config"), "[core]\n").unwrap();
        let absent = dir.path().join(".cox");
        let guard = Guard::take(&[git.clone(), absent.clone()], Containment::Subreaper);
        fs_err::write(git.join("config"), "[core]\nfsmonitor = evil\n").unwrap();
        fs_err::write(git.join("hooks/pre-commit"), "evil").unwrap();
        fs_err::write(git.join("objects/ab"), "blob").unwrap();
        fs_err::remove_dir_all(git.join("hooks")).unwrap();
        fs_err::os::unix::fs::symlink("/etc", git.join("hooks")).unwrap();
        fs_err::create_dir_all(absent.join("x")).unwrap();
        let undone = guard.restore();
        assert_eq!(undone.len(), 2, "{undone:?}");
        assert_eq!(
            fs_err::read_to_string(git.join("config")).unwrap(),
            "[core]\n"
        );
        assert!(
            fs_err::symlink_metadata(git.join("hooks"))
                .unwrap()
                .is_dir()
        );
        assert!(!git.join("hooks/pre-commit").exists());
        assert!(git.join("objects/ab").exists(), "objects are left alone");
        assert!(!absent.exists());
        // Renamed away and replaced: the original comes back, with what the guard leaves alone.
        let guard = Guard::take(std::slice::from_ref(&git), Containment::Subreaper);
        fs_err::rename(&git, dir.path().join(".git-old")).unwrap();
        fs_err::create_dir_all(git.join("hooks")).unwrap();
        fs_err::write(git.join("hooks/post-checkout"), "evil").unwrap();
        let undone = guard.restore();
        assert_eq!(undone.len(), 1, "{undone:?}");
        assert!(!dir.path().join(".git-old").exists());
        assert!(
            git.join("objects/ab").exists(),
            "the objects came back with it"
        );
        assert!(!git.join("hooks/post-checkout").exists());
    }
}
