//! Writing a patch's results: everything, or nothing.

use std::path::{Path, PathBuf};

/// What will be done to the file system once everything has matched.
pub(super) struct Planned {
    /// (real path, new content, mode to keep)
    pub(super) writes: Vec<(PathBuf, String, Option<std::fs::Permissions>)>,
    pub(super) removes: Vec<PathBuf>,
    /// Original content of every existing file this plan overwrites or removes, for rollback.
    pub(super) originals: Vec<(PathBuf, Vec<u8>)>,
}

/// Writes everything, or nothing.
pub(super) fn commit(planned: Planned) -> Result<(), String> {
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
    let cleanup = |temps: &[(PathBuf, PathBuf)]| {
        for (temp, _) in temps {
            let _ = fs_err::remove_file(temp);
        }
    };
    for (n, (target, content, permissions)) in planned.writes.iter().enumerate() {
        let dir = target.parent().unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.cox-patch-{}-{n}.tmp", std::process::id()));
        let written = fs_err::create_dir_all(dir)
            .and_then(|()| fs_err::write(&temp, content))
            .and_then(|()| match permissions {
                Some(permissions) => fs_err::set_permissions(&temp, permissions.clone()),
                None => Ok(()),
            });
        if let Err(e) = written {
            let _ = fs_err::remove_file(&temp);
            cleanup(&temps);
            return Err(format!(
                "cannot write {}: {}",
                target.display(),
                crate::os_reason(&e)
            ));
        }
        temps.push((temp, target.clone()));
    }
    let mut done: Vec<PathBuf> = Vec::new();
    let mut failure = None;
    for (temp, target) in &temps {
        if let Err(e) = fs_err::rename(temp, target) {
            failure = Some(format!(
                "cannot replace {}: {}",
                target.display(),
                crate::os_reason(&e)
            ));
            break;
        }
        done.push(target.clone());
    }
    if failure.is_none() {
        for path in &planned.removes {
            if let Err(e) = fs_err::remove_file(path) {
                failure = Some(format!(
                    "cannot remove {}: {}",
                    path.display(),
                    crate::os_reason(&e)
                ));
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
        let _ = fs_err::write(path, bytes);
    }
    for path in done {
        if !planned
            .originals
            .iter()
            .any(|(original, _)| *original == path)
        {
            let _ = fs_err::remove_file(path);
        }
    }
    Err(failure)
}
