//! Endpoints a project's rules close (`deny_connect`), for every command — confined or not:
//!
//! - **TCP ports** by Landlock's network rights (ABI 4+): the ruleset handles `connect` and
//!   allows every port but the denied ones. Landlock only grants, so "all but these" is 65,535
//!   rules, which the kernel takes a tenth of a second to add: cox builds the ruleset once per
//!   session ([`TcpRuleset::build`]) and hands its descriptor to each command's launcher, which
//!   enforces it on itself first thing ([`enforce_tcp`]) and closes it, so no command holds it
//!   (a holder could add rules to it). Any address: `127.0.0.1`, `::1`, a host name. A kernel
//!   without network rights refuses the command rather than run it open.
//! - **Unix sockets** by the mount namespace (see `launch::mounts`): an empty read-only tmpfs
//!   over a denied directory (or the directory a wildcard pattern names), `/dev/null` over a
//!   denied socket file; `connect` then finds nothing. Without namespaces the command is refused.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use landlock::{
    ABI, Access, AccessNet, CompatLevel, Compatible, NetPort, Ruleset, RulesetAttr,
    RulesetCreatedAttr,
};

use crate::Error;

fn needs(e: impl std::fmt::Display) -> Error {
    Error::Landlock(format!(
        "deny_connect needs Landlock's network rights (Linux 6.7, ABI 4): {e}"
    ))
}

/// A Landlock ruleset that closes TCP `connect` to some ports, built once and inherited by the
/// launchers (its descriptor stays open across `exec`).
#[derive(Debug)]
pub struct TcpRuleset {
    fd: OwnedFd,
}

impl TcpRuleset {
    pub fn build(ports: &[u16]) -> Result<TcpRuleset, Error> {
        let connect = AccessNet::from_all(ABI::V4) & AccessNet::ConnectTcp;
        let open = (0..=u16::MAX)
            .filter(|port| !ports.contains(port))
            .map(|port| Ok::<_, landlock::RulesetError>(NetPort::new(port, connect)));
        let created = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(connect)
            .map_err(needs)?
            .create()
            .map_err(needs)?
            .add_rules(open)
            .map_err(needs)?;
        let fd: Option<OwnedFd> = created.into();
        let fd = fd.ok_or_else(|| needs("the kernel gave no ruleset"))?;
        // Inherited by the launcher (it closes it before anything else runs).
        nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .map_err(|e| needs(format!("cannot pass the ruleset on: {e}")))?;
        Ok(TcpRuleset { fd })
    }

    /// The descriptor the launcher gets (`--deny-tcp-fd`).
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// In the launcher, first thing: enforces the inherited ruleset `fd` on this process (and so on
/// everything it runs), then closes it.
#[allow(unsafe_code)]
pub fn enforce_tcp(fd: RawFd) -> Result<(), Error> {
    // SAFETY: the launcher owns this descriptor (cox passed it on for this purpose); it is
    // closed here and never used again.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    nix::sys::prctl::set_no_new_privs().map_err(|e| needs(format!("no_new_privs: {e}")))?;
    // SAFETY: a plain system call on a descriptor we own; no memory is passed.
    let done = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, owned.as_raw_fd(), 0) };
    drop(owned);
    if done != 0 {
        return Err(needs(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// What to cover for a denied unix-socket pattern: the directory a wildcard pattern names (or
/// the pattern itself when it has none).
pub(crate) fn unix_cover(pattern: &std::path::Path) -> std::path::PathBuf {
    let mut cover = std::path::PathBuf::new();
    for part in pattern.components() {
        if part.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        cover.push(part);
    }
    cover
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_covers_the_directory_before_its_wildcard() {
        assert_eq!(
            unix_cover(std::path::Path::new("/var/run/postgresql/*")),
            std::path::Path::new("/var/run/postgresql")
        );
        assert_eq!(
            unix_cover(std::path::Path::new("/tmp/.s.PGSQL.5432")),
            std::path::Path::new("/tmp/.s.PGSQL.5432")
        );
    }
}
