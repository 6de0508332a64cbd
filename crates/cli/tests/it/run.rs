//! `cox run --plan`: validation before any model call, steps in order with the plan pinned,
//! statuses written back, `--target`, and resuming a run killed mid-step.

use std::process::Stdio;

use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

use crate::harness::*;

const PLAN: &str = r#"{
  "version": 1,
  "goal": "Tidy the notes",
  "constraints": ["Never touch README.md"],
  "owner": "team-a",
  "steps": [
    {"id": "S1", "title": "Add a heading to notes.txt", "files": ["notes.txt"], "details": "First line: # Notes", "status": "pending", "risk": "low"},
    {"id": "S2", "title": "Log the tidy-up", "depends_on": ["S1"]}
  ]
}"#;

/// The patch that gives notes.txt its heading.
const ADD_HEADING: &str =
    "*** Begin Patch\n*** Update File: notes.txt\n@@\n+# Notes\n buy milk\n*** End Patch\n";

fn patch(text: &str) -> Turn {
    Turn::call(
        "apply_patch",
        &serde_json::json!({ "input": text }).to_string(),
    )
}

/// Runs `command` (a `--json --steerable` run) and, at the first event of type `event`, writes
/// `op` on its stdin and closes it: the exit status and every event line.
fn op_at_event(
    command: &mut std::process::Command,
    event: &str,
    op: &str,
) -> (std::process::ExitStatus, Vec<String>) {
    use std::io::{BufRead, Write};
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let needle = format!("\"type\":\"{event}\"");
    let mut events = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let seen = line.contains(&needle);
        events.push(line);
        if seen {
            break;
        }
    }
    writeln!(stdin, "{op}").unwrap();
    drop(stdin);
    events.extend(lines.map(|l| l.unwrap()));
    (child.wait().unwrap(), events)
}

fn read_plan(env: &Env) -> Value {
    serde_json::from_str(&fs_err::read_to_string(env.repo.join("plan.json")).unwrap()).unwrap()
}

/// A `--json --steerable` plan run (no grace hold) that gets `directive` steered in at its first
/// streamed text: the exit status and every event line.
fn steered_run(
    env: &Env,
    server: &MockServer,
    directive: &str,
) -> (std::process::ExitStatus, Vec<String>) {
    let mut command = env.cox_with(server);
    command.args([
        "run",
        "--plan",
        "plan.json",
        "--json",
        "--steerable",
        "--steer-grace",
        "0",
    ]);
    let op = serde_json::json!({"op": "steer", "text": directive}).to_string();
    op_at_event(&mut command, "agent_message_delta", &op)
}

/// A turn that streams `words` slowly enough (150 ms apart) for a directive to come in mid-way.
fn slow_words(words: &[&str]) -> Turn {
    let mut turn = Turn::text(words);
    turn.delay_ms = 150;
    turn
}

#[test]
fn invalid_plan_files_exit_2_before_any_model_call() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["never"])],
    })
    .unwrap();
    let cases = [
        (
            "{\n  \"goal\": \"x\",\n  \"steps\": [\n    {\"id\": \"S1\" \"title\": \"t\"}\n  ]\n}",
            "plan.json: line 4, column 17: expected `,` or `}`",
        ),
        (
            r#"{"goal": "x"}"#,
            "plan.json: line 1, column 13: missing field `steps`",
        ),
        (
            r#"{"goal": "x", "steps": [{"id": "A", "title": "a"}, {"id": "A", "title": "b"}]}"#,
            "steps[1].id: `A` repeats steps[0].id",
        ),
        (
            r#"{"goal": "x", "steps": [{"id": "A", "title": "a", "depends_on": ["Z"]}]}"#,
            "steps[0].depends_on: names `Z`, which is not a step id",
        ),
    ];
    for (text, message) in cases {
        fs_err::write(env.repo.join("plan.json"), text).unwrap();
        let output = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
        expect_failure(&output, 2, message);
    }
    let missing = run(env.cox_with(&server).args(["run", "--plan", "nope.json"]));
    expect_failure(&missing, 2, "cannot read the plan nope.json");
    assert!(server.requests().is_empty());
}

#[test]
fn steps_run_in_order_with_the_plan_pinned_and_statuses_written_back() {
    let env = Env::new();
    fs_err::write(env.repo.join("notes.txt"), "buy milk\n").unwrap();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let turns = vec![
        patch(ADD_HEADING),
        Turn::text(&["Added the heading."]),
        Turn::call(
            "shell",
            r#"{"command":["sh","-c","echo tidied >> log.txt"]}"#,
        ),
        Turn::text(&["Logged."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        fs_err::read_to_string(env.repo.join("notes.txt")).unwrap(),
        "# Notes\nbuy milk\n"
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("log.txt")).unwrap(),
        "tidied\n"
    );
    let plan = read_plan(&env);
    assert_eq!(plan["steps"][0]["status"], "done");
    assert_eq!(plan["steps"][1]["status"], "done");
    assert_eq!(plan["owner"], "team-a", "unknown fields kept");
    assert_eq!(plan["steps"][0]["risk"], "low");
    assert!(plan["steps"][0]["cox_session"].is_string());
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let first = requests[0].body["instructions"].as_str().unwrap();
    assert!(first.contains("Goal: Tidy the notes"), "{first}");
    assert!(first.contains("- Never touch README.md"), "{first}");
    assert!(
        first.contains("- S1 Add a heading to notes.txt (in progress)  ← current"),
        "{first}"
    );
    assert!(first.contains("Details: First line: # Notes"), "{first}");
    let later = requests[2].body["instructions"].as_str().unwrap();
    assert!(
        later.contains("- S1 Add a heading to notes.txt (done)"),
        "{later}"
    );
    assert!(
        later.contains("- S2 Log the tidy-up (in progress)  ← current"),
        "{later}"
    );
    assert!(
        stderr(&output).contains("plan: 2 done, 0 failed"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("notes.txt (+1 -0)"),
        "{}",
        stderr(&output)
    );

    // Run again: nothing is left to do, no model call.
    let again = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn a_failed_step_stops_the_run_with_exit_1() {
    let env = Env::new();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call(
                "report_step",
                r#"{"status":"failed","summary":"notes.txt does not exist"}"#,
            ),
            Turn::text(&["notes.txt does not exist"]),
        ],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("step S1: failed"),
        "{}",
        stderr(&output)
    );
    let plan = read_plan(&env);
    assert_eq!(plan["steps"][0]["status"], "failed");
    assert_eq!(
        plan["steps"][1]["status"],
        Value::Null,
        "a later step never started"
    );
}

#[test]
fn a_step_outcome_is_the_report_never_the_answers_words() {
    let env = Env::new();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    // The old convention in the answer's text decides nothing; the report does.
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call(
                "report_step",
                r#"{"status":"done","summary":"heading added"}"#,
            ),
            Turn::text(&["STEP FAILED: only joking"]),
            Turn::text(&["Logged."]),
        ],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(read_plan(&env)["steps"][0]["status"], "done");
    assert_eq!(read_plan(&env)["steps"][1]["status"], "done");
}

#[test]
fn a_step_killed_before_its_prompt_was_recorded_gets_its_prompt_on_resume() {
    let env = Env::new();
    // The run recorded the step's session, then died before the prompt reached the journal.
    let id = "019ad000-0000-7000-8000-000000000001";
    fs_err::create_dir_all(env.home.join("sessions")).unwrap();
    let header = serde_json::json!({
        "type": "session", "version": 1, "id": id, "created": "2026-12-01T00:00:00Z",
        "cwd": env.repo.display().to_string(), "provider": "openai", "model": "gpt-5.3-codex"
    });
    fs_err::write(
        env.home.join(format!("sessions/{id}.jsonl")),
        format!("{header}\n"),
    )
    .unwrap();
    let mut plan: Value = serde_json::from_str(PLAN).unwrap();
    plan["steps"][0]["status"] = "in_progress".into();
    plan["steps"][0]["cox_session"] = id.into();
    fs_err::write(env.repo.join("plan.json"), plan.to_string()).unwrap();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["Heading added."]), Turn::text(&["Logged."])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = read_plan(&env);
    assert_eq!(plan["steps"][0]["status"], "done");
    assert_eq!(
        plan["steps"][0]["cox_session"], id,
        "the same session went on"
    );
    let first = server.requests()[0].body["input"].to_string();
    assert!(first.contains("Carry out step S1"), "{first}");
}

#[test]
fn a_check_runs_without_the_credentials_in_its_environment() {
    let env = Env::new();
    fs_err::write(env.repo.join("notes.txt"), "buy milk\n").unwrap();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let turns = vec![
        patch(ADD_HEADING),
        Turn::text(&["Added the heading."]),
        Turn::text(&["Nothing to log."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    // The check passes only when neither the provider's key nor a token-looking variable reached it.
    let output = run(env
        .cox_with(&server)
        .env("MY_SERVICE_TOKEN", "tok-should-not-leak")
        .args(["run", "--plan", "plan.json", "--json"])
        .args([
            "--test-cmd",
            "test -z \"$OPENAI_API_KEY\" && test -z \"$MY_SERVICE_TOKEN\" && echo clean",
        ]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let check = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["type"] == "check_finished")
        .expect("the check ran");
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["output"].as_str().unwrap().contains("clean"));
}

#[test]
fn an_interrupt_stops_a_running_check_and_the_step_resumes_later() {
    let env = Env::new();
    fs_err::write(env.repo.join("notes.txt"), "buy milk\n").unwrap();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let turns = vec![patch(ADD_HEADING), Turn::text(&["Added the heading."])];
    let server = MockServer::start(Script { turns }).unwrap();
    let marker = env.repo.join("check-finished");
    let mut command = env.cox_with(&server);
    command
        .args(["run", "--plan", "plan.json", "--json", "--steerable"])
        .args([
            "--test-cmd",
            &format!("sleep 60; touch {}", marker.display()),
        ]);
    let (status, events) = op_at_event(&mut command, "check_started", r#"{"op":"interrupt"}"#);
    assert_eq!(status.code(), Some(130), "{events:#?}");
    let finished: Value = events
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["type"] == "check_finished")
        .expect("the check ended");
    assert_eq!(finished["ok"], false);
    assert!(
        finished["output"]
            .as_str()
            .unwrap()
            .contains("interrupted by the user"),
        "{finished}"
    );
    assert!(
        !marker.exists(),
        "the check's command was killed, not left running"
    );
    assert_eq!(read_plan(&env)["steps"][0]["status"], "in_progress");
    // The journal recorded the check before and after.
    let session = read_plan(&env)["steps"][0]["cox_session"]
        .as_str()
        .unwrap()
        .to_string();
    let journal =
        fs_err::read_to_string(env.home.join(format!("sessions/{session}.jsonl"))).unwrap();
    assert!(journal.contains("\"type\":\"check_start\""), "{journal}");
    assert!(journal.contains("\"type\":\"check_end\""), "{journal}");
}

#[test]
fn target_confines_writes() {
    let env = Env::new();
    fs_err::create_dir_all(env.repo.join("src")).unwrap();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let turns = vec![
        patch("*** Begin Patch\n*** Add File: outside.txt\n+x\n*** End Patch\n"),
        patch("*** Begin Patch\n*** Add File: src/inside.txt\n+x\n*** End Patch\n"),
        Turn::text(&["Done."]),
        Turn::text(&["Done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["run", "--plan", "plan.json", "--target", "src"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!env.repo.join("outside.txt").exists());
    assert!(env.repo.join("src/inside.txt").exists());
    let refused = server.requests()[1].body["input"].to_string();
    assert!(
        refused.contains("is outside the writable roots"),
        "{refused}"
    );
}

#[test]
fn a_run_killed_mid_step_resumes_without_repeating_an_edit() {
    let env = Env::new();
    fs_err::write(env.repo.join("notes.txt"), "buy milk\n").unwrap();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let turns = vec![
        patch(ADD_HEADING),
        Turn::text(&["Added the heading."]),
        Turn::call(
            "shell",
            r#"{"command":["sh","-c","echo tidied >> log.txt; sleep 30"]}"#,
        ),
        Turn::text(&["The log line was written before the stop; leaving it."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut child = env
        .cox_with(&server)
        .args(["run", "--plan", "plan.json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("step 2's command to run", || {
        fs_err::read_to_string(env.repo.join("log.txt")).is_ok_and(|t| t == "tidied\n")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(read_plan(&env)["steps"][0]["status"], "done");
    assert_eq!(read_plan(&env)["steps"][1]["status"], "in_progress");

    let output = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("step S2: resuming its session"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("notes.txt")).unwrap(),
        "# Notes\nbuy milk\n",
        "step 1 not redone"
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("log.txt")).unwrap(),
        "tidied\n",
        "the command was not run again"
    );
    let plan = read_plan(&env);
    assert_eq!(plan["steps"][1]["status"], "done");
    let resumed = server.requests()[3].body["input"].to_string();
    assert!(
        resumed.contains("The session was stopped while this call was running"),
        "{resumed}"
    );
}

const PY_PLAN: &str = r#"{"goal": "Add a greeting", "steps": [{"id": "S1", "title": "Add greet() to app.py", "files": ["app.py"]}]}"#;

/// A Python project linted by ruff; false (the test is skipped, loudly) where ruff is missing.
fn python_project(env: &Env) -> bool {
    if !cox_testkit::outside_tool("ruff", "pip install ruff; scripts/test installs it") {
        return false;
    }
    fs_err::write(env.repo.join("ruff.toml"), "").unwrap();
    fs_err::write(env.repo.join("app.py"), "def main():\n    return 1\n").unwrap();
    fs_err::write(env.repo.join("plan.json"), PY_PLAN).unwrap();
    true
}

const ADD_WITH_UNUSED_IMPORT: &str = "*** Begin Patch\n*** Update File: app.py\n@@\n+import os\n+\n+\n+def greet():\n+    return \"hi\"\n+\n+\n def main():\n*** End Patch\n";
const REMOVE_IMPORT: &str = "*** Begin Patch\n*** Update File: app.py\n@@\n-import os\n-\n-\n def greet():\n*** End Patch\n";

#[test]
fn auto_fix_lint_feeds_a_real_linter_back_until_it_passes() {
    let env = Env::new();
    if !python_project(&env) {
        return;
    }
    let turns = vec![
        patch(ADD_WITH_UNUSED_IMPORT),
        Turn::text(&["Added greet()."]),
        patch(REMOVE_IMPORT),
        Turn::text(&["Removed the unused import."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["run", "--plan", "plan.json", "--auto-fix-lint"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        fs_err::read_to_string(env.repo.join("app.py")).unwrap(),
        "def greet():\n    return \"hi\"\n\n\ndef main():\n    return 1\n"
    );
    let feedback = server.requests()[2].body["input"].to_string();
    assert!(
        feedback.contains("`ruff check` (lint) fails after your changes"),
        "{feedback}"
    );
    assert!(
        feedback.contains("F401"),
        "ruff's own report reaches the model: {feedback}"
    );
    assert!(
        stderr(&output).contains("lint: failing"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("lint: passed"),
        "{}",
        stderr(&output)
    );
    assert_eq!(read_plan(&env)["steps"][0]["status"], "done");
}

#[test]
fn lint_still_failing_after_the_rounds_fails_the_run() {
    let env = Env::new();
    if !python_project(&env) {
        return;
    }
    let turns = vec![
        patch(ADD_WITH_UNUSED_IMPORT),
        Turn::text(&["Added greet()."]),
        Turn::text(&["I believe it is fine."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args([
        "run",
        "--plan",
        "plan.json",
        "--auto-fix-lint",
        "--fix-rounds",
        "1",
    ]));
    expect_failure(&output, 1, "lint still failing");
    assert!(stderr(&output).contains("F401"), "{}", stderr(&output));
    assert_eq!(read_plan(&env)["steps"][0]["status"], "failed");
}

#[test]
fn test_command_failures_are_reported_and_fixed_with_auto_fix_test() {
    let env = Env::new();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    fs_err::write(env.repo.join("notes.txt"), "buy milk\n").unwrap();
    let turns = vec![
        patch(ADD_HEADING),
        Turn::text(&["Added the heading."]),
        patch("*** Begin Patch\n*** Add File: ok.txt\n+ok\n*** End Patch\n"),
        Turn::text(&["Made the test pass."]),
        Turn::call(
            "shell",
            r#"{"command":["sh","-c","echo tidied >> log.txt"]}"#,
        ),
        Turn::text(&["Logged."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args([
        "run",
        "--plan",
        "plan.json",
        "--test-cmd",
        "test -f ok.txt || (echo 'ok.txt missing'; exit 1)",
        "--auto-fix-test",
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let feedback = server.requests()[2].body["input"].to_string();
    assert!(feedback.contains("ok.txt missing"), "{feedback}");
    assert!(env.repo.join("ok.txt").exists());
}

#[test]
fn auto_fix_lint_without_a_linter_is_a_usage_error() {
    let env = Env::new();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let server = MockServer::start(Script { turns: vec![] }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["run", "--plan", "plan.json", "--auto-fix-lint"]));
    expect_failure(&output, 2, "--auto-fix-lint: no linter found");
}

#[test]
fn a_directive_steered_into_a_run_holds_for_the_later_steps() {
    let env = Env::new();
    fs_err::write(env.repo.join("notes.txt"), "buy milk\n").unwrap();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let turns = vec![
        slow_words(&[
            "Working ", "on ", "the ", "heading ", "now ", "and ", "more.",
        ]),
        Turn::text(&["Heading added, keeping it short."]),
        Turn::text(&["Logged."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let (status, events) = steered_run(&env, &server, "Use British spelling throughout");
    assert_eq!(status.code(), Some(0), "{events:?}");
    let seqs: Vec<u64> = events
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "one increasing seq across the run's sessions"
    );
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        3,
        "step 1 cut by the steer and sent again, then step 2"
    );
    for request in &requests[1..] {
        let instructions = request.body["instructions"].as_str().unwrap();
        assert!(
            instructions.contains("- Use British spelling throughout"),
            "pinned for the rest of the run"
        );
    }
    assert!(
        requests[2].body["instructions"]
            .as_str()
            .unwrap()
            .contains("← current\nCurrent step S2")
    );
}

/// The seed's story: step S1 says one thing, the person steers it to another, and the plan file
/// keeps both the directive (written as it arrives) and the model's account of the changed outcome,
/// so "done" is not read as "done as titled". A step nobody steered gets no mark, even when the
/// model claims one (issue 18).
#[test]
fn the_plan_records_each_steps_directives_and_a_changed_outcome() {
    let env = Env::new();
    fs_err::write(env.repo.join("notes.txt"), "buy milk\n").unwrap();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let turns = vec![
        slow_words(&[
            "Adding ", "the ", "heading ", "now ", "and ", "more ", "words.",
        ]),
        Turn::call(
            "report_step",
            r#"{"status":"done","summary":"left notes.txt as it was","changed":"No heading added:   kept notes.txt\nunchanged as directed"}"#,
        ),
        Turn::text(&["Kept notes.txt as it was."]),
        // S2 was not steered: its claim of a change is not recorded.
        Turn::call(
            "report_step",
            r#"{"status":"done","summary":"logged","changed":"did something else"}"#,
        ),
        Turn::text(&["Logged."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let (status, events) = steered_run(
        &env,
        &server,
        "Do not add a heading; leave notes.txt as it is",
    );
    assert_eq!(status.code(), Some(0), "{events:?}");
    let plan = read_plan(&env);
    assert_eq!(
        plan["steps"][0]["directives"],
        serde_json::json!(["Do not add a heading; leave notes.txt as it is"])
    );
    assert_eq!(plan["steps"][0]["status"], "done");
    assert_eq!(
        plan["steps"][0]["changed"], "No heading added: kept notes.txt unchanged as directed",
        "one line, in the model's words"
    );
    assert_eq!(plan["steps"][0]["risk"], "low", "unknown fields kept");
    assert_eq!(plan["steps"][1]["directives"], Value::Null);
    assert_eq!(
        plan["steps"][1]["changed"],
        Value::Null,
        "S2 was not steered"
    );
    let finished: Vec<Value> = events
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "step_finished")
        .collect();
    assert_eq!(finished.len(), 2, "{events:?}");
    assert_eq!(
        finished[0]["changed"],
        "No heading added: kept notes.txt unchanged as directed"
    );
    assert_eq!(finished[1].get("changed"), None);
    // The step prompt tells the model how to report a changed outcome.
    let prompt = server.requests()[0].body.to_string();
    assert!(prompt.contains("in `changed`"), "{prompt}");

    // --restart forgets the old run's directives and marks.
    let turns = vec![Turn::text(&["one"]), Turn::text(&["two"])];
    let server = MockServer::start(Script { turns }).unwrap();
    let again = run(env
        .cox_with(&server)
        .args(["run", "--plan", "plan.json", "--restart"]));
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let plan = read_plan(&env);
    assert_eq!(plan["steps"][0]["directives"], Value::Null);
    assert_eq!(plan["steps"][0]["changed"], Value::Null);
}

/// A run continued later (after a failure, a kill, or by hand) pins the directives the plan file
/// recorded for earlier steps: what the person said holds for the rest of the plan.
#[test]
fn a_continued_run_pins_the_directives_the_plan_recorded() {
    let env = Env::new();
    let plan = r#"{"goal": "Tidy", "steps": [
      {"id": "S1", "title": "Add a heading", "status": "done", "directives": ["Use British spelling throughout"]},
      {"id": "S2", "title": "Log the tidy-up", "depends_on": ["S1"]}
    ]}"#;
    fs_err::write(env.repo.join("plan.json"), plan).unwrap();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["Logged."])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "only S2 ran");
    let instructions = requests[0].body["instructions"].as_str().unwrap();
    assert_eq!(
        instructions
            .matches("- Use British spelling throughout")
            .count(),
        1,
        "{instructions}"
    );
    let plan = read_plan(&env);
    assert_eq!(
        plan["steps"][0]["directives"],
        serde_json::json!(["Use British spelling throughout"]),
        "S1's record kept"
    );
    assert_eq!(
        plan["steps"][1]["directives"],
        Value::Null,
        "nothing given in S2"
    );
}

#[test]
fn lint_and_test_commands_from_config_and_the_summary() {
    let env = Env::new();
    fs_err::create_dir_all(&env.home).unwrap();
    fs_err::write(
        env.home.join("config.toml"),
        "test_cmd = \"test -f notes.txt\"\n",
    )
    .unwrap();
    fs_err::write(env.repo.join("notes.txt"), "buy milk\n").unwrap();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let turns = vec![
        patch(ADD_HEADING),
        Turn::text(&["Added."]).with_usage(1000, 400, 50),
        Turn::text(&["Nothing to change."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args(["run", "--plan", "plan.json"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("tests: passing"), "{err}");
    assert!(
        err.contains("tokens: 1200 in (400 cached) · 90 out"),
        "{err}"
    );
}

#[test]
fn restart_runs_every_step_again() {
    let env = Env::new();
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let turns = vec![
        Turn::text(&["one"]),
        Turn::text(&["two"]),
        Turn::text(&["one again"]),
        Turn::text(&["two again"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    assert_eq!(
        run(env.cox_with(&server).args(["run", "--plan", "plan.json"]))
            .status
            .code(),
        Some(0)
    );
    let first_session = read_plan(&env)["steps"][0]["cox_session"].clone();
    assert_eq!(server.requests().len(), 2);
    let again = run(env
        .cox_with(&server)
        .args(["run", "--plan", "plan.json", "--restart"]));
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(server.requests().len(), 4, "both steps ran again");
    let plan = read_plan(&env);
    assert_eq!(plan["steps"][1]["status"], "done");
    assert_ne!(
        plan["steps"][0]["cox_session"], first_session,
        "a new session per step"
    );
}
