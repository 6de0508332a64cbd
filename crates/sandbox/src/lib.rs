//! The OS sandbox for the commands cox runs, applied by the process to itself just before it execs
//! the command — cox re-executes itself as `cox __sandbox … -- CMD`, so there is no helper binary,
//! no user namespace, and nothing runs between fork and exec but the kernel.
//!
//! - **File system** (Landlock): everything may be read and executed; writing — creating,
//!   removing, renaming, linking, truncating — only beneath the writable roots (and a few device
//!   files such as `/dev/null`). Linking a file from outside into a writable root is refused too
//!   (Landlock's `REFER` right), so a hard link cannot smuggle a write out.
//! - **Network** (seccomp): `socket(AF_INET | AF_INET6, …)` fails with `EPERM` unless the network
//!   is allowed; Unix sockets keep working.
//! - `no_new_privs`, so nothing run inside can gain privileges through set-uid binaries.
//!
//! Where the kernel lacks Landlock the sandbox refuses to pretend: [`available`] says so and the
//! caller must choose to run unsandboxed.

pub mod approval;
pub mod classify;
pub mod command;

use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, path_beneath_rules,
};

/// The newest Landlock ABI this code knows; older kernels get what they support.
const TARGET_ABI: ABI = ABI::V5;

/// Device files commands commonly write to.
const WRITABLE_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Directories beneath which writing is allowed; empty for read-only.
    pub writable: Vec<PathBuf>,
    pub network: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Landlock is not available on this kernel, so the file-system sandbox cannot be enforced"
    )]
    NoLandlock,
    #[error("cannot set up the file-system sandbox: {0}")]
    Landlock(String),
    #[error("cannot set up the network filter: {0}")]
    Seccomp(String),
}

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

/// Restricts this process (and everything it then runs) to `policy`.
pub fn apply(policy: &Policy) -> Result<(), Error> {
    restrict_files(&policy.writable)?;
    if !policy.network {
        deny_network()?;
    }
    Ok(())
}

fn existing(paths: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    paths
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect()
}

fn restrict_files(writable: &[PathBuf]) -> Result<(), Error> {
    let fail = |e: landlock::RulesetError| Error::Landlock(e.to_string());
    let all = AccessFs::from_all(TARGET_ABI);
    let read = AccessFs::from_read(TARGET_ABI);
    let mut roots = existing(writable.iter().cloned());
    roots.extend(existing(WRITABLE_DEVICES.iter().map(PathBuf::from)));
    let status = Ruleset::default()
        .handle_access(all)
        .map_err(fail)?
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(["/"], read))
        .map_err(fail)?
        .add_rules(path_beneath_rules(&roots, all))
        .map_err(fail)?
        .restrict_self()
        .map_err(fail)?;
    match status.ruleset {
        RulesetStatus::NotEnforced => Err(Error::NoLandlock),
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => Ok(()),
    }
}

fn deny_network() -> Result<(), Error> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let fail = |e: &dyn std::fmt::Display| Error::Seccomp(e.to_string());
    let family = |domain: i32| -> Result<SeccompRule, Error> {
        let condition =
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, domain as u64)
                .map_err(|e| fail(&e))?;
        SeccompRule::new(vec![condition]).map_err(|e| fail(&e))
    };
    let rules = vec![(
        libc::SYS_socket,
        vec![family(libc::AF_INET)?, family(libc::AF_INET6)?],
    )];
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| fail(&e))?;
    let filter = SeccompFilter::new(
        rules.into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| fail(&e))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| fail(&e))?;
    seccompiler::apply_filter(&program).map_err(|e| fail(&e))
}
