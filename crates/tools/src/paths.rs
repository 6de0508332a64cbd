//! Path safety for the file tools, in process (the OS sandbox is a separate layer): a path resolves
//! against the working directory, `..` is folded lexically, symlinks are resolved, and the result
//! must lie inside the workspace (to read) or a writable root (to write). A symlink inside the
//! workspace that points out of it is refused like any other path outside.

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
