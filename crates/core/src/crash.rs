//! Fault injection for tests: `COX_CRASH_AT=POINT` (or `POINT@N`, the N-th time it is reached)
//! makes cox kill itself with SIGKILL at that named point, as a power cut or the OOM killer
//! would. The tests that prove every crash point resumable set it; nothing else reads it.
//!
//! The points: `after:RECORD` once a journal record of that type (`user`, `response`,
//! `tool_start`, `spawned`, `tool_end`, `task_end`, `check_start`, `check_end`, `step`, …) has
//! reached the kernel; `after:tool_run` when a tool has run but what it changed is not looked at
//! yet; `before:tool_end` when a tool has run but its result is not recorded;
//! `run:step-opened` when a plan step's session exists but the plan does not name it yet;
//! `run:step-saved` once it does; `run:step-finished` once a step's status is written;
//! `plan:temp-written` between writing the plan's temp file and renaming it over the plan.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The variable that arms a crash point.
pub const ENV: &str = "COX_CRASH_AT";

fn armed() -> Option<&'static (String, usize)> {
    static ARMED: OnceLock<Option<(String, usize)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let value = std::env::var(ENV).ok()?;
            Some(match value.rsplit_once('@') {
                Some((point, n)) => (point.to_string(), n.parse().unwrap_or(1)),
                None => (value, 1),
            })
        })
        .as_ref()
}

/// Whether any point is armed (to skip computing a point's name when none is).
pub fn is_armed() -> bool {
    armed().is_some()
}

/// Dies here if this is the armed point (reached for the armed time).
pub fn at(point: &str) {
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let Some((armed, nth)) = armed() else {
        return;
    };
    if armed == point && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
        tracing::warn!(point, "crash point reached: killing cox");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
