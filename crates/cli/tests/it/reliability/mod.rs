//! Issue 14, one test per promise, against the real binary: one process per session, every
//! signal handled, nothing of a dead cox left acting, every crash point resumable, input checked
//! before anything is created, streams with deadlines, results within their budget, requests that
//! fit the window — and a soak of random signals and resumes.

mod crash_points;
mod inputs;
mod limits;
mod processes;
mod soak;

use std::path::{Path, PathBuf};

use cox_testkit::Turn;

use crate::harness::*;

/// A two-step plan whose steps each append one line to `log.txt`.
pub const PLAN: &str = r#"{
  "version": 1,
  "goal": "Log both steps",
  "steps": [
    {"id": "S1", "title": "Log step one"},
    {"id": "S2", "title": "Log step two", "depends_on": ["S1"]}
  ]
}"#;

/// A shell call, as the model writes it.
pub fn shell(line: &str) -> Turn {
    Turn::call(
        "shell",
        &serde_json::json!({ "command": ["sh", "-c", line] }).to_string(),
    )
}

/// One step's turns: append `line` to log.txt, report done, answer.
pub fn step_turns(line: &str) -> Vec<Turn> {
    vec![
        shell(&format!("echo {line} >> log.txt")),
        Turn::call("report_step", r#"{"status":"done","summary":"logged"}"#),
        Turn::text(&["Logged."]),
    ]
}

/// The session journals in COX_HOME, oldest first.
pub fn journals(home: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs_err::read_dir(home.join("sessions"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|x| x == "jsonl"));
    paths.sort();
    paths
}

/// The records of a journal, as JSON.
pub fn records(path: &Path) -> Vec<serde_json::Value> {
    fs_err::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every file under `dir`, recursively (what a rejected command must not have left).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The lines of a file in the repository (none when it does not exist).
pub fn lines(env: &Env, file: &str) -> Vec<String> {
    fs_err::read_to_string(env.repo.join(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The plan's step statuses, in order.
pub fn statuses(env: &Env) -> Vec<String> {
    let plan: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(env.repo.join("plan.json")).unwrap()).unwrap();
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap_or("pending").to_string())
        .collect()
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}
