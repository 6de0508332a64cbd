//! The launcher: `cox __sandbox … -- CMD` runs this in the process cox spawned (single-threaded,
//! before any runtime starts), and it outlives the command only to clean up after it.
//!
//! **Namespaces, where the kernel allows them** (root: a mount and a PID namespace; anyone else:
//! a user namespace too, mapping only their own ids, so nothing changes hands):
//!
//! ```text
//! launcher (cox spawned it; told to end when cox dies: PDEATHSIG = SIGTERM, caught)
//!  └─ init, PID 1 of a new PID namespace (new session: no controlling terminal; dies with the
//!     launcher; read-only binds over the protected paths, an empty read-only tmpfs over hidden
//!     ones inside writable roots, a /proc of its own)
//!      └─ the command (Landlock, seccomp, no_new_privs) and whatever it starts
//! ```
//!
//! When init's command exits, init exits, and the kernel kills everything left in the namespace:
//! `setsid`, double forks and daemons included. When cox or the launcher is killed (timeout,
//! interrupt, cox itself dying) init gets its death signal and the same happens.
//!
//! **Fallback, no namespaces** (e.g. unprivileged user namespaces switched off): the launcher is
//! the command's child subreaper; the command runs in a new session; when it exits, or the
//! launcher gets `SIGTERM`/`SIGHUP`/`SIGINT`, every descendant still alive (they were re-parented
//! to the launcher) is killed — cox dying sends it `SIGTERM` too. What it cannot do: stop
//! descendants when the launcher itself is killed with `SIGKILL` (cox sends `SIGTERM` first, and
//! the next cox kills what its journal says a dead one left running), or keep the protected paths read-only while
//! the command runs — [`crate::guard`] puts them back as they were afterwards instead.
//!
//! Both ways, the protected paths that did not exist when the command started are removed again
//! if the command made them.

#![allow(unsafe_code)] // fork and a signal handler; each use says why it is sound.

use std::ffi::CString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{ForkResult, Pid, fork, setsid};

use crate::{Error, Policy, guard::Guard};

/// How the command is contained (reported by `cox sandbox --explain` and the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containment {
    Namespaces,
    Subreaper,
}

/// Runs `argv` under `policy` and returns the exit code to leave with (a command killed by a
/// signal: the launcher kills itself with it, so cox sees the same). Returns `Err` only when the
/// command could not be started.
pub fn run(policy: &Policy, argv: &[String]) -> Result<i32, Error> {
    let (program, args) = argv.split_first().ok_or(Error::NoCommand)?;
    let command = Exec::new(program, args)?;
    // SIGTERM, not SIGKILL: caught below, it makes the launcher kill what the command started
    // (a subreaper's descendants would otherwise outlive cox).
    let parent = nix::unistd::getppid();
    COX.store(parent.as_raw(), Ordering::SeqCst);
    prctl::set_pdeathsig(Signal::SIGTERM).map_err(|e| Error::Process(format!("PDEATHSIG: {e}")))?;
    if nix::unistd::getppid() != parent {
        // cox died before the death signal was set: nobody is left to run the command for.
        return Err(Error::Process(
            "cox exited before the command started".into(),
        ));
    }
    // cox ignores SIGXFSZ (a file size limit is an error to report, not a death); the command
    // gets the default back.
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: restoring a default action is always sound.
    let _ = unsafe { sigaction(Signal::SIGXFSZ, &default) };
    // The rules' closed ports, first: for everything this launcher starts, in any mode.
    if let Some(fd) = policy.deny_tcp {
        crate::net::enforce_tcp(fd)?;
    }
    if let Some(network) = &policy.netns {
        crate::loopback::join(policy.userns.as_deref(), network)?;
    }
    let containment = enter_namespaces(policy.userns.is_some())?;
    let guard = Guard::take(&policy.protected, containment);
    if containment == Containment::Subreaper
        && let Some(inside) = hidden_inside_writable(policy)
    {
        return Err(Error::HiddenWritable(inside));
    }
    if containment == Containment::Subreaper
        && let Some(socket) = policy.deny_unix.first()
    {
        return Err(Error::UnixDenyNeedsNamespaces(socket.display().to_string()));
    }
    catch_termination()?;
    let (status, signal) = match containment {
        Containment::Namespaces => {
            // init says through this pipe which signal killed the command (PID 1 cannot die of
            // it to tell us); the pipe closes on exec, so the command never holds it.
            let (mut said, says) =
                std::io::pipe().map_err(|e| Error::Process(format!("pipe: {e}")))?;
            let status = spawn_and_wait(move || init(policy, &command, says))?;
            let mut byte = [0u8; 1];
            let signal = match std::io::Read::read(&mut said, &mut byte) {
                Ok(1) => Signal::try_from(i32::from(byte[0])).ok(),
                _ => None,
            };
            (status, signal)
        }
        Containment::Subreaper => {
            prctl::set_child_subreaper(true)
                .map_err(|e| Error::Process(format!("child subreaper: {e}")))?;
            let status = spawn_and_wait(|| {
                let _ = setsid();
                confine_and_exec(policy, &command);
            })?;
            kill_descendants();
            (status, None)
        }
    };
    for reverted in guard.restore() {
        let _ = writeln!(std::io::stderr(), "sandbox: {reverted}");
    }
    Ok(finish(status, signal))
}

/// The program and its arguments, ready for `execvp` (made before any fork: no allocation after).
struct Exec {
    /// The program first.
    argv: Vec<CString>,
    shown: String,
}

impl Exec {
    fn new(program: &str, args: &[String]) -> Result<Exec, Error> {
        let c = |s: &str| CString::new(s).map_err(|_| Error::NulInArgument(s.to_string()));
        let mut argv = vec![c(program)?];
        for arg in args {
            argv.push(c(arg)?);
        }
        Ok(Exec {
            argv,
            shown: program.to_string(),
        })
    }
}

/// A hidden path inside a writable root, which only a mount namespace can keep unwritable.
fn hidden_inside_writable(policy: &Policy) -> Option<String> {
    policy.hidden.iter().find_map(|h| {
        let root = policy.writable.iter().find(|w| h.starts_with(w))?;
        Some(format!("{} is inside {}", h.display(), root.display()))
    })
}

/// Set in cox's environment to get the fallback where namespaces work too: how tests (and a
/// curious person) see what hosts without them get.
pub const NO_NAMESPACES_ENV: &str = "COX_SANDBOX_NO_NAMESPACES";

fn namespaces_turned_off() -> bool {
    std::env::var_os(NO_NAMESPACES_ENV).is_some_and(|v| v == "1")
}

/// `joined_users`: the launcher is in the loopback network's user namespace already, with every
/// capability there: it needs no user namespace of its own for the mounts.
fn enter_namespaces(joined_users: bool) -> Result<Containment, Error> {
    if namespaces_turned_off() {
        return Ok(Containment::Subreaper);
    }
    match unshare_namespaces(joined_users) {
        Ok(()) => Ok(Containment::Namespaces),
        Err(Unshared::Refused(_)) => Ok(Containment::Subreaper),
        Err(Unshared::Mapping(e)) => Err(e),
    }
}

enum Unshared {
    /// The kernel refused the namespaces: the launcher falls back to a subreaper.
    Refused(nix::Error),
    /// The namespaces were made but the ids could not be mapped.
    Mapping(Error),
}

fn unshare_namespaces(joined_users: bool) -> Result<(), Unshared> {
    let root = nix::unistd::geteuid().is_root();
    // Root keeps its own ids (a user namespace would break `chown` and tar's owners); others get
    // a user namespace to be allowed the mounts.
    let flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    if root || joined_users {
        return unshare(flags).map_err(Unshared::Refused);
    }
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    unshare(flags | CloneFlags::CLONE_NEWUSER).map_err(Unshared::Refused)?;
    map_own_ids(uid, gid).map_err(Unshared::Mapping)
}

/// Whether a launcher here gets its namespaces (else the subreaper fallback), and why not.
/// Changes this process's namespaces: call it in a process of its own that then exits
/// (`cox __probe-namespaces`).
pub fn probe_namespaces() -> Result<(), String> {
    if namespaces_turned_off() {
        return Err(format!("{NO_NAMESPACES_ENV}=1 is set"));
    }
    match unshare_namespaces(false) {
        Ok(()) => Ok(()),
        Err(Unshared::Refused(errno)) => Err(format!("the kernel refuses them: {}", errno.desc())),
        Err(Unshared::Mapping(e)) => Err(e.to_string()),
    }
}

/// In a user namespace just made: maps only the person's own ids (`uid`, `gid` from outside), so
/// nothing changes hands.
pub(crate) fn map_own_ids(uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> Result<(), Error> {
    let write = |file: &str, text: String| {
        fs_err::write(file, text).map_err(|e| Error::Process(format!("cannot map ids: {e}")))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))
}

static TERMINATE: AtomicBool = AtomicBool::new(false);

/// The child being waited for (0: none yet). The handler kills it itself: a flag alone, checked
/// before each wait, is lost when the signal lands between the check and the wait — cox killed
/// just as a command started left the launcher waiting for the command to end by itself.
static WAITING_FOR: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_termination(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
    let child = WAITING_FOR.load(Ordering::SeqCst);
    if child > 0 {
        // kill(2) is async-signal-safe, and nix's wrapper allocates nothing.
        let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
    }
}

/// SIGTERM, SIGHUP and SIGINT interrupt the launcher's wait instead of killing it, so that it
/// can kill what the command left running first.
fn catch_termination() -> Result<(), Error> {
    let action = SigAction::new(
        SigHandler::Handler(on_termination),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }
            .map_err(|e| Error::Process(format!("signal handler: {e}")))?;
    }
    Ok(())
}

/// Forks; the child runs `body` (which never returns); the parent waits for it, killing it when
/// asked to terminate.
fn spawn_and_wait(body: impl FnOnce()) -> Result<WaitStatus, Error> {
    // SAFETY: the launcher is single-threaded (it runs before any runtime or thread starts), so
    // the child may do anything the parent could.
    match unsafe { fork() }.map_err(|e| Error::Process(format!("fork: {e}")))? {
        ForkResult::Child => {
            body();
            std::process::exit(126)
        }
        ForkResult::Parent { child } => {
            // Stored before the flag is read: a signal after this kills the child in the
            // handler, one before it is seen here.
            WAITING_FOR.store(child.as_raw(), Ordering::SeqCst);
            if TERMINATE.load(Ordering::SeqCst) {
                let _ = kill(child, Signal::SIGKILL);
            }
            wait_exited(child)?;
            WAITING_FOR.store(0, Ordering::SeqCst);
            loop {
                match waitpid(child, None) {
                    Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                        return Ok(status);
                    }
                    Ok(_) | Err(Errno::EINTR) => continue,
                    Err(e) => return Err(Error::Process(format!("waiting for the command: {e}"))),
                }
            }
        }
    }
}

/// cox's pid, read when the launcher started; 0 in init (whose parent is the launcher, outside
/// its PID namespace: its death signal is enough there).
static COX: AtomicI32 = AtomicI32::new(0);

/// How often a waiting launcher checks that cox is still its parent.
const ORPHAN_CHECK_MS: i32 = 500;

/// Returns once `child` has exited, without reaping it (`WNOWAIT`): until the handler can no
/// longer name it, its pid cannot be given to another process. While it waits, the launcher checks
/// that cox is still its parent: the death signal is the first line, but a launcher found
/// orphaned with its command running (seen under load, cox SIGKILLed as a command started: no
/// signal came) ends the command itself.
#[allow(unsafe_code)]
fn wait_exited(child: Pid) -> Result<(), Error> {
    let cox = COX.load(Ordering::SeqCst);
    // SAFETY: pidfd_open(2) with a pid and no flags; the fd is closed below.
    let pidfd = match cox {
        0 => -1,
        _ => (unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0) }) as i32,
    };
    if pidfd >= 0 {
        let mut ready = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one pollfd we own.
            let n = unsafe { libc::poll(&mut ready, 1, ORPHAN_CHECK_MS) };
            if n > 0 {
                break;
            }
            if n == 0 && nix::unistd::getppid().as_raw() != cox {
                TERMINATE.store(true, Ordering::SeqCst);
                let _ = kill(child, Signal::SIGKILL);
            }
        }
        // SAFETY: the pidfd opened above, closed once.
        unsafe { libc::close(pidfd) };
    }
    loop {
        match waitid(Id::Pid(child), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::Process(format!("waiting for the command: {e}"))),
        }
    }
}

/// PID 1 of the namespace: mounts, then the command, then its exit status as ours.
fn init(policy: &Policy, command: &Exec, mut says: std::io::PipeWriter) -> ! {
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    COX.store(0, Ordering::SeqCst);
    let _ = setsid();
    if let Err(e) = mounts(policy) {
        die(&format!("sandbox: {e}"));
    }
    let status = match spawn_and_wait(|| confine_and_exec(policy, command)) {
        Ok(status) => status,
        Err(e) => die(&format!("sandbox: {e}")),
    };
    std::process::exit(match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => {
            let _ = says.write_all(&[signal as u8]);
            128 + signal as i32
        }
        _ => 1,
    })
}

/// The launcher's exit: the command's code, or its death by the same signal.
fn finish(status: WaitStatus, from_init: Option<Signal>) -> i32 {
    let signal = match status {
        WaitStatus::Signaled(_, signal, _) => Some(signal),
        WaitStatus::Exited(..) if from_init.is_some() => from_init,
        WaitStatus::Exited(_, code) => return code,
        _ => return 1,
    };
    match signal {
        Some(signal) => {
            let _ = prctl::set_pdeathsig(None);
            let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
            // SAFETY: restoring the default action is always sound.
            let _ = unsafe { sigaction(signal, &default) };
            let _ = nix::sys::signal::raise(signal);
            128 + signal as i32
        }
        None => 1,
    }
}

fn die(message: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "{message}");
    std::process::exit(126)
}

/// Inside the namespace: nothing propagates out; protected paths read-only; hidden paths inside
/// writable roots covered; a /proc that shows only this namespace.
fn mounts(policy: &Policy) -> Result<(), Error> {
    let fail = |what: &str, path: &Path, e: Errno| {
        Error::Process(format!("cannot {what} {}: {e}", path.display()))
    };
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| fail("make private", Path::new("/"), e))?;
    for path in policy.protected.iter().filter(|p| p.exists()) {
        mount(
            Some(path),
            path,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .map_err(|e| fail("bind", path, e))?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked(path);
        mount(none, path, none, flags, none).map_err(|e| fail("make read-only", path, e))?;
    }
    for path in policy
        .hidden
        .iter()
        .filter(|h| h.is_dir() && policy.writable.iter().any(|w| h.starts_with(w)))
    {
        let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(Some("tmpfs"), path, Some("tmpfs"), flags, Some("size=4k"))
            .map_err(|e| fail("cover", path, e))?;
    }
    // Closed unix sockets: nothing to connect to where they were.
    for pattern in &policy.deny_unix {
        let cover = crate::net::unix_cover(pattern);
        let Ok(meta) = fs_err::symlink_metadata(&cover) else {
            continue;
        };
        if meta.is_dir() {
            let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            mount(Some("tmpfs"), &cover, Some("tmpfs"), flags, Some("size=4k"))
                .map_err(|e| fail("cover", &cover, e))?;
        } else {
            mount(Some("/dev/null"), &cover, none, MsFlags::MS_BIND, none)
                .map_err(|e| fail("cover", &cover, e))?;
        }
    }
    // Where the host's /proc cannot be replaced (some containers), the old one stays: the
    // processes outside are then listed, but Landlock still refuses to read or trace them.
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let _ = mount(Some("proc"), "/proc", Some("proc"), proc_flags, none);
    Ok(())
}

/// The flags of the mount `path` is on that a remount inside a user namespace must keep.
fn locked(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let Ok(stat) = statvfs(path) else {
        return MsFlags::empty();
    };
    let flags = stat.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        // The kernel's ST_RELATIME, which nix names only for glibc.
        (FsFlags::from_bits_retain(0x1000), MsFlags::MS_RELATIME),
    ] {
        if flags.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// Landlock and seccomp (unless full access), then the command in this process's place.
fn confine_and_exec(policy: &Policy, command: &Exec) -> ! {
    if policy.terminal
        && let Err(e) = take_terminal()
    {
        die(&format!("sandbox: {e}"));
    }
    if policy.confine
        && let Err(e) = crate::apply(policy)
    {
        die(&format!("sandbox: {e}"));
    }

    let error = nix::unistd::execvp(&command.argv[0], &command.argv).err();
    let reason = error.map_or_else(String::new, |e| e.desc().to_string());
    die(&format!("cannot run `{}`: {reason}", command.shown))
}

/// An interactive session's command leads a session of its own whose controlling terminal is
/// the one on its standard input (cox holds the other end): Ctrl-C typed there interrupts the
/// command's foreground job, and programs that open `/dev/tty` get this terminal.
fn take_terminal() -> Result<(), Error> {
    // In the subreaper's child this process leads its session already; in the namespace, init
    // does, and the command starts one of its own.
    let _ = setsid();
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal a terminal from another session)
    // and touches no memory of ours.
    let done = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0) };
    if done != 0 {
        return Err(Error::Process(format!(
            "cannot make standard input the controlling terminal: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Kills every process re-parented to this subreaper, until none is left.
fn kill_descendants() {
    loop {
        let children = children();
        for &pid in &children {
            let _ = kill(pid, Signal::SIGKILL);
        }
        match waitpid(Pid::from_raw(-1), None) {
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => break, // ECHILD: none left
        }
    }
}

/// This process's children, from /proc (every thread's list).
fn children() -> Vec<Pid> {
    let mut out = Vec::new();
    let tasks = PathBuf::from("/proc/self/task");
    let Ok(entries) = fs_err::read_dir(&tasks) else {
        return out;
    };
    for task in entries.flatten() {
        if let Ok(text) = fs_err::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .map(Pid::from_raw),
            );
        }
    }
    out
}

/// Makes this process undumpable: no other process of the same user — a sandboxed command among
/// them — may read its memory or `/proc/PID/environ`, where the keys it was given sit.
pub fn keep_memory_private() -> Result<(), Error> {
    prctl::set_dumpable(false).map_err(|e| Error::Process(format!("PR_SET_DUMPABLE: {e}")))
}

/// Makes writing past a file size limit (`ulimit -f`) an error (`EFBIG`) cox reports, instead of
/// the SIGXFSZ that would kill it mid-record. The launcher restores the default for commands.
pub fn ignore_file_size_signal() {
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring a signal installs no handler code.
    let _ = unsafe { sigaction(Signal::SIGXFSZ, &ignore) };
}
