//! Writing a patch's results: everything, or nothing. Every file operation goes through
//! [`ToolContext::beneath`], so none follows a symlink or lands outside the root it was checked
//! against, even if a command swaps a directory for a symlink while the patch is written.

use std::path::{Path, PathBuf};

use crate::ToolContext;
use crate::paths::Beneath;

/// What will be done to the file system once everything has matched.
pub(super) struct Planned {
    /// (real path, new content, mode to keep)
    pub(super) writes: Vec<(PathBuf, String, Option<u32>)>,
    pub(super) removes: Vec<PathBuf>,
    /// Original content of every existing file this plan overwrites or removes, for rollback.
    pub(super) originals: Vec<(PathBuf, Vec<u8>)>,
}

/// A new file's mode when the patch adds it.
const NEW_FILE_MODE: u32 = 0o644;

fn temp_of(target: &Path, n: usize) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.cox-patch-{}-{n}.tmp", std::process::id()))
}

/// Writes `bytes` to `target` by a new temporary file renamed over it.
fn replace(
    ctx: &ToolContext,
    target: &Path,
    bytes: &[u8],
    mode: u32,
    n: usize,
) -> std::io::Result<()> {
    let temp = ctx.beneath(&temp_of(target, n), true)?;
    temp.create(bytes, mode)?;
    let renamed = ctx.beneath(target, true).and_then(|to| temp.rename_to(&to));
    if renamed.is_err() {
        let _ = temp.remove();
    }
    renamed
}

/// Writes everything, or nothing.
pub(super) fn commit(planned: Planned, ctx: &ToolContext) -> Result<(), String> {
    let mut temps: Vec<(Beneath, PathBuf)> = Vec::new();
    let cleanup = |temps: &[(Beneath, PathBuf)]| {
        for (temp, _) in temps {
            let _ = temp.remove();
        }
    };
    for (n, (target, content, mode)) in planned.writes.iter().enumerate() {
        let written = ctx.beneath(&temp_of(target, n), true).and_then(|temp| {
            temp.create(content.as_bytes(), mode.unwrap_or(NEW_FILE_MODE))?;
            Ok(temp)
        });
        match written {
            Ok(temp) => temps.push((temp, target.clone())),
            Err(e) => {
                cleanup(&temps);
                return Err(format!(
                    "cannot write {}: {}",
                    target.display(),
                    crate::os_reason(&e)
                ));
            }
        }
    }
    let mut done: Vec<PathBuf> = Vec::new();
    let mut failure = None;
    for (temp, target) in &temps {
        if let Err(e) = ctx.beneath(target, true).and_then(|to| temp.rename_to(&to)) {
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
            if let Err(e) = ctx.beneath(path, false).and_then(|entry| entry.remove()) {
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
    for (n, (path, bytes)) in planned.originals.iter().enumerate() {
        let mode = planned
            .writes
            .iter()
            .find(|(p, _, _)| p == path)
            .and_then(|(_, _, mode)| *mode)
            .unwrap_or(NEW_FILE_MODE);
        let _ = replace(ctx, path, bytes, mode, planned.writes.len() + n);
    }
    for path in done {
        if !planned
            .originals
            .iter()
            .any(|(original, _)| *original == path)
            && let Ok(entry) = ctx.beneath(&path, false)
        {
            let _ = entry.remove();
        }
    }
    Err(failure)
}
