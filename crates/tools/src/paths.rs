//! Path safety for the file tools, in process (the OS sandbox is a separate layer): a path resolves
//! against the working directory, `..` is folded lexically, symlinks are resolved, and the result
//! must lie inside the workspace (to read) or a writable root (to write), and outside the
//! protected paths (`.git`, `.cox`) to write. A symlink inside the workspace that points out of it
//! is refused like any other path outside.
//!
//! Checking a path and then using it by name could be raced (a command swaps a directory for a
//! symlink in between), so the writes themselves — and the reads apply_patch bases them on — go
//! through [`ToolContext::beneath`]: the root is opened once, and every component below it is
//! opened relative to the previous one with `O_NOFOLLOW`, so no symlink is followed at all;
//! the final create (`O_EXCL`), rename or unlink acts on a name inside that directory handle.

use std::path::{Component, Path, PathBuf};

use crate::ToolContext;

/// What the tool will do with the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Folds `.` and `..` without touching the file system (`..` at the root stays at the root).
pub fn normalise_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Resolves symlinks in the longest existing prefix of `path` and appends the rest unchanged.
fn resolve_real(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = fs_err::canonicalize(&existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn canonical_roots(roots: &[PathBuf]) -> Vec<PathBuf> {
    roots.iter().map(|root| resolve_real(root)).collect()
}

impl ToolContext {
    /// The real path to use for `raw`, or a message that says why the tool may not touch it.
    pub fn check_path(&self, raw: &str, access: Access) -> Result<PathBuf, String> {
        if raw.trim().is_empty() {
            return Err("the path is empty".to_string());
        }
        let lexical = normalise_lexically(&self.resolve(raw));
        let real = resolve_real(&lexical);
        let mut roots = self.writable_roots.clone();
        if access == Access::Read {
            roots.push(self.workspace.clone());
        }
        if access == Access::Write && roots.is_empty() {
            return Err(format!(
                "{raw} cannot be written: the sandbox is read-only, so no file may be edited"
            ));
        }
        let roots = canonical_roots(&roots);
        if access == Access::Write
            && let Some(protected) = canonical_roots(&self.protected)
                .into_iter()
                .find(|p| real.starts_with(p))
        {
            return Err(format!(
                "{raw} is inside {}, a protected path: cox's tools and commands do not change it \
                 (ask the person to, or to approve a command outside the sandbox)",
                protected.display()
            ));
        }
        if roots.iter().any(|root| real.starts_with(root)) {
            return Ok(real);
        }
        let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        let allowed = shown.join(", ");
        // Inside an allowed root by its name, outside by where it leads: a symlink points out.
        let lexically_inside = roots.iter().any(|root| lexical.starts_with(root));
        Err(match (access, lexically_inside) {
            (_, true) => format!(
                "{raw} resolves through a symlink to {}, outside {allowed}; file tools do not follow links out of the workspace",
                real.display()
            ),
            (Access::Read, false) => format!(
                "{raw} is outside the workspace ({allowed}); file tools read inside it only (use shell for other files)"
            ),
            (Access::Write, false) => format!(
                "{raw} is outside the writable roots ({allowed}); edits are allowed there only"
            ),
        })
    }

    /// `path` relative to the working directory when it is inside it, for messages and diffs.
    pub fn display_path(&self, path: &Path) -> String {
        let cwd = resolve_real(&self.cwd);
        path.strip_prefix(&cwd)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// A path opened the race-free way: a handle on its directory (reached beneath a root without
/// following any symlink) and its last component.
pub struct Beneath {
    dir: std::os::fd::OwnedFd,
    name: std::ffi::OsString,
}

fn through_symlink(path: &Path) -> std::io::Error {
    std::io::Error::other(format!(
        "{} is reached through a symlink (or a component changed while cox worked); file tools do not write through symlinks",
        path.display()
    ))
}

impl ToolContext {
    /// Opens the directory of `real` (a path `check_path` returned) beneath the root it lies in,
    /// making missing directories when `create` is set.
    pub fn beneath(&self, real: &Path, create: bool) -> std::io::Result<Beneath> {
        use rustix::fs::{Mode, OFlags};
        let mut roots = canonical_roots(&self.writable_roots);
        roots.extend(canonical_roots(std::slice::from_ref(&self.workspace)));
        let Some(root) = roots.iter().find(|root| real.starts_with(root)) else {
            return Err(std::io::Error::other(format!(
                "{} is outside the roots file tools may use",
                real.display()
            )));
        };
        let relative = real.strip_prefix(root).unwrap_or(real);
        let mut parts: Vec<std::ffi::OsString> = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_os_string()),
                _ => return Err(through_symlink(real)),
            }
        }
        let Some(name) = parts.pop() else {
            return Err(std::io::Error::other(format!(
                "{} is a root",
                real.display()
            )));
        };
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let mut dir = rustix::fs::open(root, flags, Mode::empty())?;
        for part in &parts {
            let next = match rustix::fs::openat(&dir, part, flags | OFlags::NOFOLLOW, Mode::empty())
            {
                Err(rustix::io::Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    rustix::fs::openat(&dir, part, flags | OFlags::NOFOLLOW, Mode::empty())
                }
                other => other,
            };
            dir = match next {
                Ok(next) => next,
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                    return Err(through_symlink(real));
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok(Beneath { dir, name })
    }
}

impl Beneath {
    /// Creates the file (it must not exist; a symlink in its place is not followed).
    pub fn create(&self, bytes: &[u8], mode: u32) -> std::io::Result<()> {
        use rustix::fs::{Mode, OFlags};
        use std::io::Write;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.dir, &self.name, flags, Mode::from_raw_mode(mode))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes)?;
        // The umask applies at creation; the mode asked for is the file's mode.
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
        Ok(())
    }

    /// The file, open to read (a symlink in its place is not followed).
    pub fn open(&self) -> std::io::Result<std::fs::File> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.dir, &self.name, flags, Mode::empty())?;
        Ok(std::fs::File::from(fd))
    }

    /// The file's bytes (a symlink in its place is not followed).
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut bytes = Vec::new();
        self.open()?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The file's mode, if it exists (not following a symlink).
    pub fn mode(&self) -> Option<u32> {
        rustix::fs::statat(&self.dir, &self.name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|stat| stat.st_mode & 0o7777)
    }

    /// Renames this entry to `to` (in the same or another directory handle).
    pub fn rename_to(&self, to: &Beneath) -> std::io::Result<()> {
        Ok(rustix::fs::renameat(
            &self.dir, &self.name, &to.dir, &to.name,
        )?)
    }

    /// Removes the entry (a symlink itself, never what it points to).
    pub fn remove(&self) -> std::io::Result<()> {
        Ok(rustix::fs::unlinkat(
            &self.dir,
            &self.name,
            rustix::fs::AtFlags::empty(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_dots() {
        assert_eq!(
            normalise_lexically(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(normalise_lexically(Path::new("/../x")), PathBuf::from("/x"));
    }
}
