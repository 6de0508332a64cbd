//! The OS sandbox for the commands cox runs. cox re-executes itself as `cox __sandbox … -- CMD`
//! (through `/proc/self/exe`, so replacing the binary on disk changes nothing), and that process
//! contains the command ([`launch`]: namespaces, or a subreaper where the kernel allows none) and
//! confines it ([`apply`]): no helper binary, no setuid.
//!
//! - **File system** (Landlock, [`fs`]): read everything but cox's home and the devices that are
//!   terminals or the kernel's; write only beneath the writable roots, never a device node.
//!   Protected paths inside writable roots (`.git`, `.cox`) are read-only binds in the
//!   namespace, or put back afterwards by [`guard`].
//! - **System calls** (seccomp, [`filter`]): no network but Unix socket pairs unless allowed, no
//!   io_uring, no typing into terminals, no device nodes, no host administration.
//! - **Capabilities** ([`caps`]): root keeps what builds software, not what administers the
//!   host (`CAP_SYS_ADMIN`, `CAP_SYS_PTRACE`, `CAP_SYS_MODULE`, `CAP_MKNOD`, `CAP_NET_ADMIN`, …).
//! - **Processes**: a new session without a controlling terminal; nothing outlives the command;
//!   no signal or ptrace to anything outside (Landlock scopes, ABI 6).
//!
//! Where the kernel lacks Landlock the sandbox refuses to pretend: [`available`] says so and the
//! caller must choose to run unsandboxed.

pub mod approval;
mod caps;
pub mod classify;
pub mod command;
pub mod destructive;
pub mod env;
mod filter;
mod fs;
mod guard;
pub mod launch;
pub mod loopback;
pub mod net;
pub mod probe;

use std::path::PathBuf;

pub use fs::available;
pub use launch::Containment;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Directories beneath which writing is allowed; empty for read-only.
    pub writable: Vec<PathBuf>,
    pub network: bool,
    /// Paths inside writable roots that commands may not create, change, rename or delete.
    pub protected: Vec<PathBuf>,
    /// Paths commands may not read (cox's home: keys, journals, settings).
    pub hidden: Vec<PathBuf>,
    /// Landlock and seccomp; `false` (approved to leave the sandbox): process containment only.
    pub confine: bool,
    /// The command's standard input is a terminal cox holds the other end of (an interactive
    /// session): the command gets it as its controlling terminal, and may open `/dev/tty` and
    /// that terminal's own device — no other.
    pub terminal: bool,
    /// `--loopback`: the network namespace to join (a [`loopback::Holder`]'s), and its user
    /// namespace when the launcher must join that first.
    pub netns: Option<PathBuf>,
    pub userns: Option<PathBuf>,
    /// The descriptor of a [`net::TcpRuleset`] closing the TCP ports of a project rule's
    /// `deny_connect`, enforced on every command, confined or not.
    pub deny_tcp: Option<i32>,
    /// Unix sockets commands may not connect to: paths, or patterns with a wildcard whose
    /// directory is covered.
    pub deny_unix: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Landlock is not available on this kernel, so the file-system sandbox cannot be enforced"
    )]
    NoLandlock,
    #[error("cannot set up the file-system sandbox: {0}")]
    Landlock(String),
    #[error("cannot set up the system-call filter: {0}")]
    Seccomp(String),
    #[error("cannot contain the command: {0}")]
    Process(String),
    #[error("no command given")]
    NoCommand,
    #[error("the argument `{0}` holds a NUL byte")]
    NulInArgument(String),
    #[error(
        "{0}: without namespaces (not available here) commands could write there; move COX_HOME out of the workspace and the temporary directories"
    )]
    HiddenWritable(String),
    #[error(
        "deny_connect closes the unix socket {0}, which only a mount namespace can do, and this host allows none; the command was not run"
    )]
    UnixDenyNeedsNamespaces(String),
}

/// Confines this process (and everything it then runs) to `policy`: root's administrative
/// capabilities dropped, then Landlock, then seccomp.
pub fn apply(policy: &Policy) -> Result<(), Error> {
    caps::drop_admin()?;
    fs::restrict(&policy.writable, &policy.hidden, policy.terminal)?;
    filter::apply(policy.network)
}
