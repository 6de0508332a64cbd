//! The Landlock ruleset of a confined command.
//!
//! - Everything may be read and executed except the hidden paths (cox's home, with its keys and
//!   journals) and the devices not on [`READABLE_DEVICES`] (terminals, consoles, input devices,
//!   `/dev/kmsg`, `/dev/mem`): Landlock only adds rights, so "all but these" is granted as the
//!   siblings of each hidden path on the way down from `/`, and the hidden path itself gets
//!   nothing (its ancestors keep listing, so its name shows, never its contents).
//! - Writing — creating, removing, renaming, linking, truncating — only beneath the writable
//!   roots and on [`WRITABLE_DEVICES`], never making character or block devices. Linking a file
//!   from outside into a writable root is refused too (`REFER`), so a hard link cannot smuggle a
//!   write out.
//! - Scopes (ABI 6, where the kernel has it): no signal to a process outside the sandbox, no
//!   connection to an abstract Unix socket made outside it. Ptrace of processes outside is
//!   refused by every Landlock ABI.

use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};

use crate::Error;

/// The newest Landlock ABI this code knows; older kernels get what they support.
const TARGET_ABI: ABI = ABI::V6;

/// Device files commands may write.
const WRITABLE_DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/shm"];

/// Entries of `/dev` commands may read; every other device is hidden.
const READABLE_DEVICES: &[&str] = &[
    "null",
    "zero",
    "full",
    "random",
    "urandom",
    "shm",
    "fd",
    "stdin",
    "stdout",
    "stderr",
    "mqueue",
    "hugepages",
];

/// Whether this kernel enforces Landlock.
pub fn available() -> bool {
    let Ok(ruleset) = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
    else {
        return false;
    };
    ruleset.create().is_ok()
}

/// The directory whose entries are hidden but for [`READABLE_DEVICES`].
const DEVICES: &str = "/dev";

/// The paths to grant read on so that everything but `hidden` (and the devices not on the list)
/// is readable: `dir` whole when nothing hidden lies beneath it; otherwise its entries, one by
/// one, going down towards each hidden path (`listing` collects the directories on the way, which
/// get `ReadDir` only). `/dev` is not listed at all: its readable entries are known by name.
fn readable(dir: &Path, hidden: &[PathBuf], whole: &mut Vec<PathBuf>, listing: &mut Vec<PathBuf>) {
    if hidden.iter().any(|h| h == dir) {
        return;
    }
    if dir == Path::new(DEVICES) {
        listing.push(dir.to_path_buf());
        whole.extend(
            READABLE_DEVICES
                .iter()
                .map(|name| dir.join(name))
                .filter(|p| !hidden.contains(p) && ruled_on(p)),
        );
        return;
    }
    let devices_below = Path::new(DEVICES).starts_with(dir);
    if !devices_below && !hidden.iter().any(|h| h.starts_with(dir)) {
        whole.push(dir.to_path_buf());
        return;
    }
    listing.push(dir.to_path_buf());
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            readable(&path, hidden, whole, listing);
        } else if !hidden.contains(&path) && ruled_on(&path) {
            whole.push(path);
        }
    }
}

/// Landlock takes rules on directories and files, not on sockets or FIFOs (nothing to read there
/// without connecting, which seccomp governs).
fn ruled_on(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs_err::metadata(path).is_ok_and(|m| {
        let kind = m.file_type();
        !kind.is_socket() && !kind.is_fifo()
    })
}

fn existing(paths: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    paths.into_iter().filter(|p| p.exists()).collect()
}

pub(crate) fn restrict(
    writable: &[PathBuf],
    hidden: &[PathBuf],
    terminal: bool,
) -> Result<(), Error> {
    let fail = |e: landlock::RulesetError| Error::Landlock(e.to_string());
    let all = AccessFs::from_all(TARGET_ABI);
    let read = AccessFs::from_read(TARGET_ABI);
    let write: BitFlags<AccessFs> = all & !(AccessFs::MakeChar | AccessFs::MakeBlock);
    let (mut whole, mut listing) = (Vec::new(), Vec::new());
    let hidden: Vec<PathBuf> = hidden
        .iter()
        .map(|p| fs_err::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    readable(Path::new("/"), &hidden, &mut whole, &mut listing);
    let mut roots = existing(writable.iter().cloned());
    roots.extend(existing(WRITABLE_DEVICES.iter().map(PathBuf::from)));
    // An interactive session's own terminal: `/dev/tty` (which names the controlling terminal,
    // never another) and the device on standard input, read, written and configured — no other
    // terminal.
    let mut terminals = Vec::new();
    if terminal {
        terminals.push(PathBuf::from("/dev/tty"));
        if let Ok(own) = nix::unistd::ttyname(std::io::stdin()) {
            terminals.push(own);
        }
    }
    let terminal_access = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
    let status = Ruleset::default()
        .handle_access(all)
        .map_err(fail)?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(fail)?
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(&whole, read))
        .map_err(fail)?
        .add_rules(path_beneath_rules(&listing, AccessFs::ReadDir))
        .map_err(fail)?
        .add_rules(path_beneath_rules(&roots, write))
        .map_err(fail)?
        .add_rules(path_beneath_rules(existing(terminals), terminal_access))
        .map_err(fail)?
        .restrict_self()
        .map_err(fail)?;
    match status.ruleset {
        RulesetStatus::NotEnforced => Err(Error::NoLandlock),
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hiding_grants_the_siblings_on_the_way_down() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in ["a/secret/key", "a/open/file", "b/file"] {
            fs_err::create_dir_all(root.join(p).parent().unwrap()).unwrap();
            fs_err::write(root.join(p), "x").unwrap();
        }
        let hidden = vec![root.join("a/secret")];
        let (mut whole, mut listing) = (Vec::new(), Vec::new());
        readable(root, &hidden, &mut whole, &mut listing);
        whole.sort();
        assert_eq!(listing, [root.to_path_buf(), root.join("a")]);
        assert_eq!(whole, [root.join("a/open"), root.join("b")]);
    }
}
