//! Issue 14's soak: cycles of a random SIGKILL, SIGTERM or SIGINT at a random moment, then
//! resuming until the work is done, on `cox exec` and `cox run --plan`, with tool calls that
//! append unique lines and start grandchildren. Across every cycle: no line twice, no step lost,
//! no process left. Four tests of 50 cycles (200 in all), each well within the test timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use cox_testkit::{MockServer, Script, Turn};
use nix::sys::signal::Signal;

use super::*;

/// A call that appends `line` and leaves a grandchild (`sleep MARKER`) behind it, which the
/// command's end must take along.
fn call(line: &str, marker: &str) -> Turn {
    let mut turn = shell(&format!(
        "(sleep {marker} &); sleep 0.02; echo {line} >> log.txt"
    ));
    turn.delay_ms = 3;
    turn
}

enum Work {
    Exec,
    Plan,
}

fn soak(work: Work, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = BTreeMap::<String, usize>::new();
    for cycle in 0..50 {
        let env = Env::new();
        let marker = format!("9{seed}.{cycle:03}");
        let mut turns = Vec::new();
        match work {
            Work::Exec => {
                turns.extend((1..=4).map(|n| call(&format!("L{n}"), &marker)));
                turns.push(Turn::text(&["Done."]));
            }
            Work::Plan => {
                fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
                for step in ["S1", "S2"] {
                    turns.push(call(&format!("{step}a"), &marker));
                    turns.push(call(&format!("{step}b"), &marker));
                    turns.push(Turn::call(
                        "report_step",
                        r#"{"status":"done","summary":"logged"}"#,
                    ));
                    turns.push(Turn::text(&["Logged."]));
                }
            }
        }
        // Spare answers for questions a cut-short call changed.
        turns.extend((0..6).map(|_| Turn::text(&["Done."])));
        let server = MockServer::start_deterministic(Script { turns }).unwrap();
        let start = |env: &Env| {
            let mut command = env.cox_with(&server);
            match work {
                Work::Exec => command.args(["exec", "log four lines"]),
                Work::Plan => command.args(["run", "--plan", "plan.json"]),
            };
            command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            command
        };
        let mut child = start(&env).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(0..250)));
        let sig = [Signal::SIGKILL, Signal::SIGTERM, Signal::SIGINT][rng.usize(0..3)];
        signal(child.id(), sig);
        let first = child.wait().unwrap();
        let mut resumes = 0;
        let mut status = first;
        while !status.success() {
            resumes += 1;
            assert!(
                resumes <= 4,
                "cycle {cycle}: still not done after {resumes} resumes"
            );
            let mut command = match work {
                Work::Exec => {
                    let mut command = env.cox_with(&server);
                    if journals(&env.home).is_empty() {
                        // Killed before the session existed: start it again.
                        command.args(["exec", "log four lines"]);
                    } else {
                        command.args(["resume", "--last"]);
                    }
                    command
                }
                Work::Plan => start(&env),
            };
            let output = command.output().unwrap();
            status = output.status;
            if matches!(work, Work::Exec)
                && output.status.code() == Some(2)
                && (stderr(&output).contains("already completed")
                    || stderr(&output).contains("no recorded session with a task"))
            {
                // Its task had ended before the signal, or had not begun: nothing to resume.
                if stderr(&output).contains("no recorded session with a task") {
                    status = env
                        .cox_with(&server)
                        .args(["exec", "log four lines"])
                        .status()
                        .unwrap();
                } else {
                    break;
                }
            }
        }
        let log = lines(&env, "log.txt");
        let mut seen = std::collections::BTreeSet::new();
        for line in &log {
            assert!(
                seen.insert(line),
                "cycle {cycle} ({sig:?}): {line} twice: {log:?}"
            );
        }
        if let Work::Plan = work {
            assert_eq!(
                statuses(&env),
                ["done", "done"],
                "cycle {cycle}: no step lost"
            );
        }
        wait_for("every grandchild to be gone", || {
            pids_with_arg(&marker).is_empty()
        });
        *tally
            .entry(format!("{sig:?} then {resumes} resume(s)"))
            .or_default() += 1;
        *tally.entry("lines".into()).or_default() += log.len();
    }
    eprintln!("soak {seed}: {tally:?}");
    // The cycles must really have cut work short, not only run it to the end.
    let resumed: usize = tally
        .iter()
        .filter(|(k, _)| k.ends_with("resume(s)") && !k.contains(" 0 "))
        .map(|(_, n)| n)
        .sum();
    assert!(resumed >= 20, "{tally:?}");
}

#[test]
fn soak_exec_with_random_signals_and_resumes_a_issue_14() {
    soak(Work::Exec, 1);
}

#[test]
fn soak_exec_with_random_signals_and_resumes_b_issue_14() {
    soak(Work::Exec, 2);
}

#[test]
fn soak_plan_runs_with_random_signals_and_resumes_a_issue_14() {
    soak(Work::Plan, 3);
}

#[test]
fn soak_plan_runs_with_random_signals_and_resumes_b_issue_14() {
    soak(Work::Plan, 4);
}
