//! Nothing of a dead cox keeps acting. While a command runs, `$COX_HOME/running/` holds an entry
//! naming it — the session, the launcher's pid (which leads the command's process group), that
//! process's start time, and the tag every process of the call carries in its environment
//! (`COX_CALL`) — and the journal records the same (`spawned`). The entry goes when the command
//! ends (a terminal session's when the session ends, not when the call that started it does).
//!
//! An entry whose session is no longer locked (see [`crate::lock`]) belonged to a cox that died.
//! Every cox that starts or resumes a session sweeps them first: the group is killed when its
//! leader is provably the process recorded (same pid *and* start time), and so is every process
//! that still carries the call's tag (a `setsid` or a double fork leaves the group, not its
//! environment). Namespaces and death signals already end a command with cox; this is what holds
//! when those could not (the fallback sandbox with its launcher killed outright, or an embedder
//! without a launcher).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The variable that tags every process a call starts.
pub const TAG_ENV: &str = "COX_CALL";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    session: String,
    pid: u32,
    start: u64,
    tag: String,
}

/// A running command's entry; removed when dropped.
#[derive(Debug)]
pub struct Running {
    path: PathBuf,
    pid: u32,
}

impl Running {
    /// The launcher's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = fs_err::remove_file(&self.path);
    }
}

fn dir(home: &Path) -> PathBuf {
    home.join("running")
}

/// Records a command that has just started (best effort: a sweep is a safety net, and a command
/// must not fail for want of it).
pub fn register(home: &Path, session: &str, pid: u32, start: u64, tag: &str) -> Option<Running> {
    let entry = Entry {
        session: session.to_string(),
        pid,
        start,
        tag: tag.to_string(),
    };
    let dir = dir(home);
    fs_err::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("{session}-{pid}-{start}.json"));
    fs_err::write(&path, serde_json::to_string(&entry).ok()?).ok()?;
    Some(Running { path, pid })
}

/// Kills what dead sessions left running; one note per session that left something.
pub fn sweep(home: &Path) -> Vec<String> {
    let Ok(entries) = fs_err::read_dir(dir(home)) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        let Some(entry) = fs_err::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Entry>(&text).ok())
        else {
            // Torn by a crash mid-write: it names nothing that can be proven ours.
            let _ = fs_err::remove_file(&path);
            continue;
        };
        if crate::lock::session_busy(home, &entry.session) {
            continue;
        }
        let killed = kill(&entry);
        let _ = fs_err::remove_file(&path);
        if killed > 0 {
            tracing::warn!(session = %entry.session, killed, "killed processes a dead cox left running");
            notes.push(format!(
                "killed {killed} process(es) that session {} left running when it died",
                entry.session
            ));
        }
    }
    notes
}

/// Kills the entry's group (if its leader is the recorded process) and every tagged process.
fn kill(entry: &Entry) -> usize {
    use rustix::process::{Pid, Signal, kill_process, kill_process_group};
    let mut killed = 0;
    if crate::lock::start_time(entry.pid) == Some(entry.start)
        && let Some(pid) = Pid::from_raw(entry.pid as i32)
        && kill_process_group(pid, Signal::KILL).is_ok()
    {
        killed += 1;
    }
    let marker = format!("{TAG_ENV}={}", entry.tag);
    for pid in tagged(&marker) {
        if let Some(pid) = Pid::from_raw(pid as i32)
            && kill_process(pid, Signal::KILL).is_ok()
        {
            killed += 1;
        }
    }
    killed
}

/// Live processes whose environment holds `marker` exactly.
fn tagged(marker: &str) -> Vec<u32> {
    let Ok(entries) = fs_err::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id())
        .filter(|pid| {
            fs_err::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == marker.as_bytes()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_sessions_command_is_killed_and_a_live_ones_left_alone() {
        let home = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(TAG_ENV, "dead-session:call")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = crate::lock::start_time(pid).unwrap();
        // A live session (its lock held) keeps its command.
        let lock = crate::lock::Lock::acquire(
            &crate::lock::session_path(home.path(), "dead-session"),
            "session",
        )
        .unwrap();
        let entry = register(home.path(), "dead-session", pid, start, "dead-session:call").unwrap();
        assert!(sweep(home.path()).is_empty());
        assert!(
            child.try_wait().unwrap().is_none(),
            "alive while its session is"
        );
        drop(lock);
        let notes = sweep(home.path());
        assert_eq!(notes.len(), 1, "{notes:?}");
        let status = child.wait().unwrap();
        assert!(!status.success());
        std::mem::forget(entry);
        assert!(
            fs_err::read_dir(dir(home.path())).unwrap().next().is_none(),
            "the entry is gone"
        );
    }
}
