//! `--loopback`: a network of the session's own. One process per cox session (`cox __loopback`,
//! [`hold`]) makes a network namespace holding nothing but `lo`, brings it up, and waits; every
//! sandboxed command of the session joins that namespace (the launcher's `--netns`, and
//! `--userns` where it had to make a user namespace to get one). So a dev server a terminal
//! session starts on 127.0.0.1 answers the `curl` of a later call, while no command reaches the
//! internet, the host's own 127.0.0.1 (the person's databases, dev servers, cloud-metadata
//! proxies) or an abstract Unix socket outside (those are per namespace).
//!
//! **Decided:** internet sockets are allowed (the system-call filter as with `--network`:
//! seccomp cannot tell an inet `connect` from a Unix one, so Unix sockets on the file system
//! are open as with `--network`); commands approved to leave the sandbox get the host's network;
//! the namespace ends with cox (the holder dies with its parent and when its stdin closes).
//! Checked by hand without root too (`setpriv --reuid=65534 … cox --loopback sandbox -- …`: only
//! `lo`, and a server reached from the same namespace); the test suite runs as root.

use std::io::{BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl;
use nix::sys::signal::Signal;

use crate::Error;

/// The line the holder prints once its namespace is up.
const READY: &str = "ready";

/// `cox __loopback`: makes the namespace, says so on stdout, and holds it until stdin closes (or
/// cox dies). Call before any thread starts.
pub fn hold() -> Result<(), Error> {
    let fail = |what: &str, e: nix::Error| Error::Process(format!("loopback network: {what}: {e}"));
    let parent = nix::unistd::getppid();
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| fail("death signal", e))?;
    if nix::unistd::getppid() != parent {
        return Err(Error::Process("loopback network: cox exited".into()));
    }
    let root = nix::unistd::geteuid().is_root();
    if root {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| fail("network namespace", e))?;
    } else {
        let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
            .map_err(|e| fail("user and network namespaces", e))?;
        crate::launch::map_own_ids(uid, gid)?;
    }
    loopback_up()?;
    let mut out = std::io::stdout();
    writeln!(out, "{READY}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::Process(format!("loopback network: {e}")))?;
    // Held until cox closes our stdin or dies.
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    Ok(())
}

// The interface ioctls, typed as `ioctl` takes them here (glibc: `c_ulong`, musl: `c_int`).
#[allow(clippy::unnecessary_cast)]
const SIOCGIFFLAGS: libc::Ioctl = libc::SIOCGIFFLAGS as libc::Ioctl;
#[allow(clippy::unnecessary_cast)]
const SIOCSIFFLAGS: libc::Ioctl = libc::SIOCSIFFLAGS as libc::Ioctl;

/// Brings `lo` up in this network namespace (`SIOCSIFFLAGS`, as `ip link set lo up` does).
#[allow(unsafe_code)]
fn loopback_up() -> Result<(), Error> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let fail = || {
        Error::Process(format!(
            "loopback network: lo: {}",
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(fail());
    }
    // SAFETY: a new fd this function alone holds; closed when `socket` drops.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `ifreq` is plain data; zeroed is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS writes the `ifreq` we own, on a socket fd.
    if unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGIFFLAGS, &mut request) } < 0 {
        return Err(fail());
    }
    // SAFETY: reading and setting the flags member SIOCGIFFLAGS filled in.
    unsafe {
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the `ifreq` we own, on a socket fd.
    if unsafe { libc::ioctl(socket.as_raw_fd(), SIOCSIFFLAGS, &request) } < 0 {
        return Err(fail());
    }
    Ok(())
}

/// A running holder: its namespaces, for the launchers; killed when dropped.
#[derive(Debug)]
pub struct Holder {
    child: std::process::Child,
    /// Its user namespace is one the launchers must join first (not root).
    own_users: bool,
}

impl Holder {
    /// Starts `program __loopback` and waits until its namespace is up.
    pub fn start(program: &Path) -> Result<Holder, Error> {
        let fail =
            |e: std::io::Error| Error::Process(format!("cannot start the loopback network: {e}"));
        let mut child = std::process::Command::new(program)
            .arg("__loopback")
            // It needs nothing of cox's environment, credentials least of all.
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(fail)?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        if line.trim() != READY {
            let mut why = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut why);
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Process(format!(
                "cannot start the loopback network: {}",
                why.trim().trim_start_matches("sandbox: ")
            )));
        }
        Ok(Holder {
            child,
            own_users: !nix::unistd::geteuid().is_root(),
        })
    }

    /// The network namespace every sandboxed command joins.
    pub fn network(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.child.id()))
    }

    /// The user namespace that owns it, when the launchers must join it first.
    pub fn users(&self) -> Option<PathBuf> {
        self.own_users
            .then(|| PathBuf::from(format!("/proc/{}/ns/user", self.child.id())))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the launcher, before its own namespaces: joins the holder's user namespace (if given) and
/// network namespace.
pub(crate) fn join(users: Option<&Path>, network: &Path) -> Result<(), Error> {
    let enter = |path: &Path, kind: CloneFlags| -> Result<(), Error> {
        let file = fs_err::File::open(path).map_err(|e| {
            Error::Process(format!(
                "the loopback network is gone ({e}); start cox again"
            ))
        })?;
        nix::sched::setns(&file, kind)
            .map_err(|e| Error::Process(format!("cannot join the loopback network: {e}")))
    };
    if let Some(users) = users {
        enter(users, CloneFlags::CLONE_NEWUSER)?;
    }
    enter(network, CloneFlags::CLONE_NEWNET)
}
