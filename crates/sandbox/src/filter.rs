//! The seccomp filter of a confined command: what the kernel refuses (`EPERM`) whatever the
//! command's privileges, the person's root included.
//!
//! Always:
//! - `io_uring_*` — its operations (sockets, opens) bypass the checks below;
//! - `ioctl(TIOCSTI)`, `ioctl(TIOCLINUX)` — typing into a terminal, e.g. an answer to cox's own
//!   approval prompt or a line for the person's shell;
//! - `mknod`/`mknodat` of character and block devices (FIFOs and sockets stay possible);
//! - what administers the host rather than builds software: loading kernel modules, `kexec`,
//!   `reboot`, swap, the clock, the host name, `bpf`, `perf_event_open`, the kernel keyrings,
//!   `iopl`/`ioperm`, process accounting.
//!
//! Without the network (`--network` not given):
//! - `socket()` of every family but `AF_UNIX` (inet, inet6, packet, netlink, vsock, …);
//! - `connect`, `bind`, `listen`, `accept`, `accept4` — so no Unix socket reaches a helper outside
//!   (tmux, ssh-agent, docker, D-Bus);
//! - `sendto` with an address.
//!
//! Left open on purpose: `socketpair` and `sendmsg` on connected pairs (Node's child-process IPC,
//! fd passing). `sendmsg` with an address on a datagram socket cannot be told apart by seccomp
//! (the address sits in memory it cannot read); `connect` and `bind` being denied, such a socket
//! can only reach a named datagram socket (e.g. `/dev/log`), never a stream helper.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::Error;

type Rules = Vec<(i64, Vec<SeccompRule>)>;

fn fail(e: impl std::fmt::Display) -> Error {
    Error::Seccomp(e.to_string())
}

/// A rule on one argument: `arg OP value`.
fn when(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompRule, Error> {
    let condition = SeccompCondition::new(arg, len, op, value).map_err(fail)?;
    SeccompRule::new(vec![condition]).map_err(fail)
}

/// An ioctl request number as the filter compares it (glibc types it `c_ulong`, musl `c_int`; the
/// numbers are small and positive either way).
#[allow(clippy::unnecessary_cast)]
fn request(number: libc::Ioctl) -> u64 {
    number as u64
}

/// `kexec_file_load`, which the libc crate names for musl on x86_64 but not on aarch64 (the
/// kernel's generic table numbers it 294).
#[cfg(not(all(target_arch = "aarch64", target_env = "musl")))]
const SYS_KEXEC_FILE_LOAD: i64 = libc::SYS_kexec_file_load;
#[cfg(all(target_arch = "aarch64", target_env = "musl"))]
const SYS_KEXEC_FILE_LOAD: i64 = 294;

/// Syscalls refused whatever their arguments.
const ALWAYS_DENIED: &[i64] = &[
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    SYS_KEXEC_FILE_LOAD,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    libc::SYS_acct,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// Without the network: refused whatever their arguments.
const NETWORK_DENIED: &[i64] = &[
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
];

fn rules(network: bool) -> Result<Rules, Error> {
    use SeccompCmpArgLen::{Dword, Qword};
    let mut rules: Rules = ALWAYS_DENIED.iter().map(|&n| (n, Vec::new())).collect();
    rules.push((
        libc::SYS_ioctl,
        vec![
            when(1, Dword, SeccompCmpOp::Eq, request(libc::TIOCSTI))?,
            when(1, Dword, SeccompCmpOp::Eq, request(libc::TIOCLINUX))?,
        ],
    ));
    let device = |arg: u8| -> Result<Vec<SeccompRule>, Error> {
        let kind = SeccompCmpOp::MaskedEq(u64::from(libc::S_IFMT));
        Ok(vec![
            when(arg, Dword, kind.clone(), u64::from(libc::S_IFCHR))?,
            when(arg, Dword, kind, u64::from(libc::S_IFBLK))?,
        ])
    };
    #[cfg(target_arch = "x86_64")]
    rules.push((libc::SYS_mknod, device(1)?));
    rules.push((libc::SYS_mknodat, device(2)?));
    if !network {
        rules.extend(NETWORK_DENIED.iter().map(|&n| (n, Vec::new())));
        rules.push((
            libc::SYS_socket,
            vec![when(0, Dword, SeccompCmpOp::Ne, libc::AF_UNIX as u64)?],
        ));
        rules.push((libc::SYS_sendto, vec![when(4, Qword, SeccompCmpOp::Ne, 0)?]));
    }
    Ok(rules)
}

/// Installs the filter on this thread (and everything it then runs). Needs `no_new_privs`, which
/// Landlock has set already.
pub(crate) fn apply(network: bool) -> Result<(), Error> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(fail)?;
    let filter = SeccompFilter::new(
        rules(network)?.into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(fail)?;
    let program: BpfProgram = filter.try_into().map_err(fail)?;
    seccompiler::apply_filter(&program).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_with_and_without_the_network() {
        for network in [false, true] {
            let arch = TargetArch::try_from(std::env::consts::ARCH).unwrap();
            let filter = SeccompFilter::new(
                rules(network).unwrap().into_iter().collect(),
                SeccompAction::Allow,
                SeccompAction::Errno(1),
                arch,
            )
            .unwrap();
            let program: BpfProgram = filter.try_into().unwrap();
            assert!(
                program.len() > 20,
                "{network}: {} instructions",
                program.len()
            );
        }
    }
}
