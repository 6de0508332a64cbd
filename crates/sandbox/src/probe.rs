//! What this kernel offers the sandbox, for `cox doctor`: the Landlock ABI, seccomp filters, and
//! whether the launcher gets its namespaces or falls back to a subreaper.

/// The Landlock ABI the kernel speaks (1, 2, …), or `None` where Landlock is missing or disabled.
#[allow(unsafe_code)]
pub fn landlock_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer, a size of 0 and the VERSION flag the kernel reads no
    // memory; it returns the ABI version or -1 with errno set. Nothing is created.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(version).ok().filter(|v| *v > 0)
}

/// Seccomp as this process finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seccomp {
    /// The kernel can install filters (`/proc/sys/kernel/seccomp/actions_avail` lists `errno`,
    /// which the sandbox's filter returns).
    pub filters: bool,
    /// This process runs under a filter already (a container's, say): `Seccomp:` in its status.
    pub already_filtered: bool,
}

pub fn seccomp() -> Seccomp {
    let actions =
        fs_err::read_to_string("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    let status = fs_err::read_to_string("/proc/self/status").unwrap_or_default();
    let mode = status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .map(str::trim)
        .unwrap_or("0");
    Seccomp {
        filters: actions.split_whitespace().any(|a| a == "errno"),
        already_filtered: mode != "0",
    }
}
