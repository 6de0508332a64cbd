//! Issue 14: every crash point is resumable. `COX_CRASH_AT` kills cox with SIGKILL at a named
//! point of a plan run (see `cox_core::crash`); the next `cox run` then finishes the plan
//! without repeating a side effect. The model is the mock as a deterministic model: asked again
//! what it was asked before the crash, it answers alike.

use std::os::unix::process::ExitStatusExt;

use cox_testkit::{MockServer, Script, Turn};

use super::*;

/// One step's turns: create `S<n>.txt` by patch, append `S<n>` to log.txt, report, answer.
fn turns(step: &str) -> Vec<Turn> {
    let patch = format!("*** Begin Patch\n*** Add File: {step}.txt\n+{step}\n*** End Patch\n");
    let mut turns = vec![Turn::call(
        "apply_patch",
        &serde_json::json!({ "input": patch }).to_string(),
    )];
    turns.extend(step_turns(step));
    turns
}

/// Points where the side effect may be lost (the call was recorded as started, and may not have
/// run): the model is told it may have run. Never repeated, though.
const MAY_BE_LOST: &[&str] = &["after:tool_start@2", "after:spawned"];

const POINTS: &[&str] = &[
    "run:step-opened",
    "plan:temp-written",
    "run:step-saved",
    "after:user",
    "after:response",
    "after:tool_start",
    "after:tool_start@2",
    "after:spawned",
    "before:tool_end@2",
    "after:tool_end@2",
    "after:step",
    "after:task_end",
    "after:check_start",
    "after:check_end",
    "plan:temp-written@2",
    "run:step-finished",
    "run:step-opened@2",
    "after:response@5",
    "after:tool_end@5",
    "after:task_end@2",
];

#[test]
fn a_plan_run_killed_at_any_named_point_finishes_on_the_next_run_without_repeating_work_issue_14() {
    for point in POINTS {
        let env = Env::new();
        fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
        let mut script = turns("S1");
        script.extend(turns("S2"));
        // A spare answer for each turn whose question changed (a call that "may have run").
        script.extend((0..4).map(|_| Turn::text(&["Logged."])));
        let server = MockServer::start_deterministic(Script { turns: script }).unwrap();
        let run_plan = |crash: Option<&str>| {
            let mut command = env.cox_with(&server);
            command.args([
                "run",
                "--plan",
                "plan.json",
                "--lint-cmd",
                "echo linted >> lint.log",
            ]);
            if let Some(point) = crash {
                command.env(cox_core::crash::ENV, point);
            }
            command.output().unwrap()
        };
        let crashed = run_plan(Some(point));
        assert_eq!(
            crashed.status.signal(),
            Some(9),
            "{point}: the crash point was reached\n{}",
            stderr(&crashed)
        );
        let finished = run_plan(None);
        assert_eq!(
            finished.status.code(),
            Some(0),
            "{point}: the next run finishes\n{}",
            stderr(&finished)
        );
        assert_eq!(statuses(&env), ["done", "done"], "{point}");
        let log = lines(&env, "log.txt");
        for step in ["S1", "S2"] {
            let times = log.iter().filter(|l| *l == step).count();
            if MAY_BE_LOST.contains(point) && step == "S1" {
                assert!(times <= 1, "{point}: {step} ran {times} times: {log:?}");
            } else {
                assert_eq!(times, 1, "{point}: {step} ran {times} times: {log:?}");
            }
        }
        for journal in journals(&env.home) {
            let records = records(&journal);
            assert_eq!(records[0]["type"], "session", "{point}: {journal:?} loads");
            let ends = records.iter().filter(|r| r["type"] == "task_end").count();
            let tasks = records.iter().filter(|r| r["type"] == "user").count();
            assert!(ends <= tasks, "{point}: {ends} task ends for {tasks} tasks");
        }
        assert!(
            !env.repo.join(".plan.json.cox.tmp").exists(),
            "{point}: the plan's temp file was written over and renamed"
        );
        // Nothing left to do: a third run asks the model nothing.
        let asked = server.requests().len();
        let again = run_plan(None);
        assert_eq!(again.status.code(), Some(0), "{point}");
        assert_eq!(server.requests().len(), asked, "{point}");
    }
}
