//! One process per session; every signal stops cox the same way; nothing of a dead cox acts on.

use std::process::Stdio;

use cox_testkit::{MockServer, Script, Turn};
use nix::sys::signal::Signal;

use super::*;

/// A command tree that runs until killed: a shell with a background and a foreground `sleep`,
/// each carrying `marker` as its argument so the host can find them.
fn tree(marker: u32) -> Turn {
    shell(&format!(
        "sleep {marker} & sleep {marker}; echo finished >> log.txt"
    ))
}

fn wait_for_tree(marker: u32) {
    wait_for("the command tree to start", || {
        pids_with_arg(&marker.to_string()).len() >= 2
    });
}

fn wait_gone(marker: u32) {
    wait_for("every process of the command tree to be gone", || {
        pids_with_arg(&marker.to_string()).is_empty()
    });
}

/// Issue 14: two `cox resume` of one session both did the remaining work. The second is refused
/// (exit 2, naming the first's pid) while the first runs; the lock a killed cox left is taken
/// over; the work is done once.
#[test]
fn a_session_is_worked_on_by_one_process_at_a_time_issue_14() {
    let env = Env::new();
    let marker = 3101;
    let slow = Turn {
        delay_ms: 300,
        ..Turn::text(&["Resumed ", "slowly ", "and ", "done."])
    };
    let server = MockServer::start(Script {
        turns: vec![tree(marker), slow, Turn::text(&["extra"])],
    })
    .unwrap();
    // The first process dies by SIGKILL with its command running: its lock stays on disk.
    let mut first = env
        .cox_with(&server)
        .args(["exec", "work"])
        .spawn()
        .unwrap();
    wait_for_tree(marker);
    first.kill().unwrap();
    first.wait().unwrap();
    wait_gone(marker);
    let journal = journals(&env.home).remove(0);
    let id = journal.file_stem().unwrap().to_string_lossy().into_owned();
    assert!(
        journal.with_extension("lock").exists(),
        "a dead holder's lock"
    );

    let resuming = env
        .cox_with(&server)
        .args(["resume", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let holder = resuming.id();
    wait_for("the resume to hold the lock", || {
        fs_err::read_to_string(journal.with_extension("lock"))
            .is_ok_and(|t| t.starts_with(&format!("{holder} ")))
    });
    let second = run(env.cox_with(&server).args(["resume", &id]));
    expect_failure(
        &second,
        2,
        &format!("is in use by another cox (pid {holder})"),
    );
    let last = run(env.cox_with(&server).args(["resume", "--last"]));
    expect_failure(&last, 2, &format!("(pid {holder})"));

    let done = resuming.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0));
    assert_eq!(text(&done.stdout), "Resumed slowly and done.\n");
    let ends = records(&journal)
        .iter()
        .filter(|r| r["type"] == "task_end")
        .count();
    assert_eq!(ends, 1, "the remaining work done once");
    assert_eq!(
        server.turns_used(),
        2,
        "the refused ones asked the model nothing"
    );
    assert!(!journal.with_extension("lock").exists(), "released");
}

/// Two `cox run` of one plan at once: the second is refused before it touches the plan.
#[test]
fn a_plan_is_run_by_one_process_at_a_time_issue_14() {
    let env = Env::new();
    let marker = 3102;
    let server = MockServer::start(Script {
        turns: vec![tree(marker)],
    })
    .unwrap();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let mut first = env
        .cox_with(&server)
        .args(["run", "--plan", "plan.json"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_tree(marker);
    let plan_before = fs_err::read_to_string(env.repo.join("plan.json")).unwrap();
    let second = run(env
        .cox_with(&server)
        .args(["run", "--plan", "./plan.json", "--restart"]));
    expect_failure(
        &second,
        2,
        &format!(
            "the plan ./plan.json is in use by another cox (pid {})",
            first.id()
        ),
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("plan.json")).unwrap(),
        plan_before,
        "--restart of the refused run changed nothing"
    );
    signal(first.id(), Signal::SIGTERM);
    assert_eq!(first.wait().unwrap().code(), Some(143));
    wait_gone(marker);
}

/// Issue 14: only `cox exec` handled SIGINT, and none handled SIGTERM or SIGHUP. Now each of
/// them, sent to `exec`, `run --plan` and `plan`, interrupts the work, kills the command tree,
/// journals `interrupted`, and exits 128 + the signal.
#[test]
fn every_subcommand_handles_sigint_sigterm_and_sighup_issue_14() {
    let mut marker = 3200;
    for (sig, code) in [
        (Signal::SIGINT, 130),
        (Signal::SIGTERM, 143),
        (Signal::SIGHUP, 129),
    ] {
        for subcommand in ["exec", "run"] {
            marker += 1;
            let env = Env::new();
            let server = MockServer::start(Script {
                turns: vec![tree(marker), Turn::text(&["never"])],
            })
            .unwrap();
            fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
            let mut command = env.cox_with(&server);
            match subcommand {
                "exec" => command.args(["exec", "work"]),
                _ => command.args(["run", "--plan", "plan.json"]),
            };
            let mut child = command.stderr(Stdio::null()).spawn().unwrap();
            wait_for_tree(marker);
            signal(child.id(), sig);
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(code), "{subcommand} {sig:?}");
            assert!(
                pids_with_arg(&marker.to_string()).is_empty(),
                "{subcommand} {sig:?}: the command tree died before cox exited"
            );
            assert!(lines(&env, "log.txt").is_empty(), "{subcommand} {sig:?}");
            let journal = journals(&env.home).remove(0);
            let kinds: Vec<_> = records(&journal)
                .iter()
                .map(|r| r["type"].as_str().unwrap_or("").to_string())
                .collect();
            assert!(
                kinds.contains(&"interrupted".into()),
                "{subcommand} {sig:?}: {kinds:?}"
            );
            assert_eq!(kinds.last().map(String::as_str), Some("task_end"));
            if subcommand == "run" {
                assert_eq!(
                    statuses(&env),
                    ["in_progress", "pending"],
                    "{sig:?}: to be resumed"
                );
            }
        }
        // `cox plan`: a slow answer, stopped mid-stream.
        let env = Env::new();
        let slow = Turn {
            delay_ms: 2000,
            ..Turn::text(&["{", "}"])
        };
        let server = MockServer::start(Script { turns: vec![slow] }).unwrap();
        let child = env
            .cox_with(&server)
            .args(["plan", "anything"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the planning request", || !server.requests().is_empty());
        signal(child.id(), sig);
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(code), "plan {sig:?}");
        assert!(output.stdout.is_empty(), "no plan printed");
        assert!(text(&output.stderr).contains(&format!("stopped by signal {}", sig as i32)));
    }
}

/// Issue 14: after a SIGKILL, the killed command went on acting (`B-late` landed in the file
/// after `cox resume` had finished). Its launcher now dies with cox and takes it along, with
/// namespaces and without.
#[test]
fn a_command_does_nothing_more_once_cox_is_killed_issue_14() {
    for (fallback, marker) in [(false, 3301), (true, 3302)] {
        let env = Env::outside_temp();
        let server = MockServer::start(Script {
            turns: vec![
                shell(&format!(
                    "echo A >> log.txt; sleep {marker}; echo B-late >> log.txt"
                )),
                Turn::text(&["Resumed."]),
            ],
        })
        .unwrap();
        let mut command = env.cox_with(&server);
        if fallback {
            command.env("COX_SANDBOX_NO_NAMESPACES", "1");
        }
        let mut child = command.args(["exec", "work"]).spawn().unwrap();
        wait_for("A", || lines(&env, "log.txt") == ["A"]);
        wait_for("the sleep", || {
            !pids_with_arg(&marker.to_string()).is_empty()
        });
        child.kill().unwrap();
        child.wait().unwrap();
        // Once every process of the call is gone, nothing can write B-late any more.
        wait_for("the command to die with cox", || {
            pids_with_arg(&marker.to_string()).is_empty()
        });
        assert_eq!(lines(&env, "log.txt"), ["A"], "fallback: {fallback}");
        let resumed = run(env.cox_with(&server).args(["resume", "--last"]));
        assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
        assert_eq!(lines(&env, "log.txt"), ["A"]);
    }
}

/// What a dead cox could not take along (fallback sandbox, its launcher killed outright too, so
/// the command was orphaned) is killed by the next cox before it does anything, identified by
/// the journaled pid and start time and its `COX_CALL` tag; another session's command is left
/// alone while that session lives.
#[test]
fn the_next_cox_kills_what_a_dead_one_left_running_issue_14() {
    let env = Env::outside_temp();
    let marker = 3401;
    let server = MockServer::start(Script {
        turns: vec![
            shell(&format!("setsid sleep {marker} & sleep {marker}")),
            Turn::text(&["Fresh."]),
        ],
    })
    .unwrap();
    let mut child = env
        .cox_with(&server)
        .env("COX_SANDBOX_NO_NAMESPACES", "1")
        .args(["exec", "work"])
        .spawn()
        .unwrap();
    wait_for("both sleeps", || {
        pids_with_arg(&marker.to_string()).len() >= 2
    });
    let journal = journals(&env.home).remove(0);
    let spawned = records(&journal)
        .into_iter()
        .find(|r| r["type"] == "spawned")
        .expect("the journal records the command's process");
    let launcher = spawned["pid"].as_u64().unwrap() as u32;
    // cox and its launcher, killed at once: nothing is left to clean up after the command.
    signal(launcher, Signal::SIGKILL);
    child.kill().unwrap();
    child.wait().unwrap();
    let orphans = pids_with_arg(&marker.to_string());
    assert!(!orphans.is_empty(), "the command outlived both");

    let fresh = run(env.cox_with(&server).args(["exec", "--json", "hello"]));
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));
    assert!(
        stdout(&fresh).contains("process(es) that session"),
        "a warning says what was killed: {}",
        stdout(&fresh)
    );
    wait_for("the orphans to be killed", || {
        pids_with_arg(&marker.to_string()).is_empty()
    });
    assert!(
        files_under(&env.home.join("running")).is_empty(),
        "no entry left"
    );
}
