//! What root keeps inside the sandbox: the capabilities that build software (owning and reading
//! files, changing ids, binding low ports when the network is allowed), not those that administer
//! the host. Dropped from every set, the bounding set included, so nothing the command runs —
//! set-uid or not — gets them back. For anyone but root this changes nothing (they hold none).

use caps::{CapSet, Capability};

use crate::Error;

/// Never inside the sandbox.
const DROPPED: &[Capability] = &[
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_SYS_MODULE,
    Capability::CAP_SYS_RAWIO,
    Capability::CAP_SYS_PTRACE,
    Capability::CAP_SYS_BOOT,
    Capability::CAP_SYS_TIME,
    Capability::CAP_SYS_RESOURCE,
    Capability::CAP_SYS_PACCT,
    Capability::CAP_SYS_TTY_CONFIG,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_ADMIN,
    Capability::CAP_NET_RAW,
    Capability::CAP_SYSLOG,
    Capability::CAP_MAC_ADMIN,
    Capability::CAP_MAC_OVERRIDE,
    Capability::CAP_LINUX_IMMUTABLE,
    Capability::CAP_BPF,
    Capability::CAP_PERFMON,
    Capability::CAP_CHECKPOINT_RESTORE,
    Capability::CAP_AUDIT_CONTROL,
    Capability::CAP_AUDIT_READ,
    Capability::CAP_WAKE_ALARM,
    Capability::CAP_BLOCK_SUSPEND,
    Capability::CAP_LEASE,
    Capability::CAP_IPC_LOCK,
    Capability::CAP_IPC_OWNER,
    Capability::CAP_SETFCAP,
    // Last: dropping from the bounding set needs it.
    Capability::CAP_SETPCAP,
];

pub(crate) fn drop_admin() -> Result<(), Error> {
    // Anyone but root holds none of them (file capabilities aside, which no_new_privs disarms).
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let fail = |e: caps::errors::CapsError| Error::Process(format!("dropping capabilities: {e}"));
    let held = caps::read(None, CapSet::Bounding).map_err(fail)?;
    for cap in DROPPED {
        if held.contains(cap) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(fail)?;
        }
    }
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        let mut current = caps::read(None, set).map_err(fail)?;
        for cap in DROPPED {
            current.remove(cap);
        }
        caps::set(None, set, &current).map_err(fail)?;
    }
    caps::clear(None, CapSet::Ambient).map_err(fail)
}
