//! One process at a time: an exclusive `flock` on a lock file beside what it guards (a session's
//! journal, `sessions/<id>.lock`; a plan file, `locks/run-<hash>.lock`), held for as long as the
//! process works on it.
//!
//! The kernel releases a `flock` when its holder dies, however it dies, so a lock left by a
//! killed cox is simply taken over. The file holds the holder's pid and start time, to name it
//! in the refusal. Released, the file is removed while still locked; whoever opened it meanwhile
//! finds after locking that the path no longer names the file it holds, and tries again.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::Error;

/// How long a lock whose recorded holder is dead is waited for, and how often it is tried.
const DEAD_HOLDER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
const DEAD_HOLDER_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// A held lock; released (and its file removed) when dropped.
#[derive(Debug)]
pub struct Lock {
    file: fs_err::File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock at `path` for `what` (named in the refusal), or says who holds it.
    pub fn acquire(path: &Path, what: &str) -> Result<Lock, Error> {
        let failed = |e: std::io::Error| Error::Journal(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir).map_err(failed)?;
        }
        let mut waited = std::time::Duration::ZERO;
        loop {
            let mut file = fs_err::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(path)
                .map_err(failed)?;
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let mut fields = holder.split_whitespace();
                let pid = fields.next().unwrap_or("?").to_string();
                let start = fields.next().and_then(|s| s.parse::<u64>().ok());
                // A holder that is gone (killed) leaves the lock with whatever it was starting
                // at that moment: a child between fork and exec still has the descriptor, and
                // lets go of it at its exec, in milliseconds. That is waited for, briefly; a
                // live holder is refused at once.
                // (No pid yet: killed between its lock and its write, or a live one about to
                // write; either is waited for.)
                let gone = match pid.parse::<u32>() {
                    Ok(p) => start.is_none_or(|s| start_time(p) != Some(s)),
                    Err(_) => true,
                };
                if gone && waited < DEAD_HOLDER_WAIT {
                    std::thread::sleep(DEAD_HOLDER_POLL);
                    waited += DEAD_HOLDER_POLL;
                    continue;
                }
                return Err(Error::Locked {
                    what: what.to_string(),
                    pid,
                });
            }
            // Removed by its last holder between our open and our lock: lock the new one.
            let same = match (file.metadata(), fs_err::metadata(path)) {
                (Ok(held), Ok(named)) => held.ino() == named.ino() && held.dev() == named.dev(),
                _ => false,
            };
            if !same {
                continue;
            }
            let me = format!(
                "{} {}\n",
                std::process::id(),
                start_time(std::process::id()).unwrap_or(0)
            );
            // Only to name the holder: a full disk does not stop the lock from holding.
            let _ = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(me.as_bytes()));
            return Ok(Lock {
                file,
                path: path.to_path_buf(),
            });
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held; the lock goes with the descriptor right after.
        let _ = fs_err::remove_file(&self.path);
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

/// The lock of a session, beside its journal.
pub fn session_path(home: &Path, id: &str) -> PathBuf {
    crate::journal::sessions_dir(home).join(format!("{id}.lock"))
}

/// The lock of a plan file, by its canonical path, under `$COX_HOME/locks/`.
pub fn plan_path(home: &Path, plan: &Path) -> PathBuf {
    let canonical = fs_err::canonicalize(plan).unwrap_or_else(|_| plan.to_path_buf());
    home.join("locks").join(format!(
        "run-{:016x}.lock",
        fnv1a(canonical.as_os_str().as_encoded_bytes())
    ))
}

/// Whether a session's lock is held by a live process (its journal is being written).
pub fn session_busy(home: &Path, id: &str) -> bool {
    let path = session_path(home, id);
    let Ok(file) = fs_err::File::open(&path) else {
        return false;
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(&file, FlockOperation::Unlock);
            false
        }
        Err(_) => true,
    }
}

/// A process's start time in clock ticks since boot (`/proc/PID/stat` field 22): with the pid, it
/// names one process for good, whatever later reuses the pid.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last `)`.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_and_may_take_it_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.lock");
        let first = Lock::acquire(&path, "session s").unwrap();
        let refused = Lock::acquire(&path, "session s").unwrap_err().to_string();
        assert!(
            refused.contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        drop(first);
        assert!(!path.exists(), "released locks leave no file");
        let _again = Lock::acquire(&path, "session s").unwrap();
    }

    /// `kill -9` of a cox, then `cox resume` at once: a child the dead cox was starting still has
    /// the lock's descriptor until its exec; the next cox waits for that instead of refusing.
    #[test]
    fn a_lock_a_dead_holder_left_with_a_starting_child_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.lock");
        // As the dead holder left it: its pid and start time, which no live process has.
        fs_err::write(&path, format!("{} 1\n", u32::MAX - 1)).unwrap();
        let child_fd = fs_err::File::open(&path).unwrap();
        flock(&child_fd, FlockOperation::NonBlockingLockExclusive).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(child_fd);
        });
        let _taken = Lock::acquire(&path, "session s").unwrap();
        release.join().unwrap();
    }

    #[test]
    fn start_time_names_this_process() {
        let mine = start_time(std::process::id()).unwrap();
        assert!(mine > 0);
        assert_eq!(start_time(std::process::id()), Some(mine));
        assert_eq!(start_time(u32::MAX), None);
    }
}
