//! `cox acp` driven by ACP clients no one here wrote: the official Python SDK's client
//! (`agent-client-protocol` from PyPI; the scenarios are `tests/fixtures/acp/client.py`) and
//! Harbor's headless ACP runner (`acp_runner.py` from the `harbor` wheel, the harness of
//! Terminal-Bench 2), both against the scripted mock model. `scripts/test` installs them under
//! `target/test-tools`.

use std::path::{Path, PathBuf};

use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

use crate::harness::*;

fn tools() -> PathBuf {
    std::env::var_os("COX_TEST_TOOLS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools"),
        PathBuf::from,
    )
}

const HOW: &str =
    "scripts/test installs the ACP Python SDK and Harbor's runner under target/test-tools (PyPI)";

/// The venv's Python with the ACP SDK, when installed.
fn python() -> Option<String> {
    let path = tools().join("venv/bin/python").display().to_string();
    if !cox_testkit::outside_tool(&path, HOW) {
        return None;
    }
    let importable = std::process::Command::new(&path)
        .args(["-c", "import acp"])
        .status()
        .is_ok_and(|s| s.success());
    // A venv without the SDK is a missing tool like any other (named so that no PATH has it).
    let sdk = if importable {
        path.clone()
    } else {
        "agent-client-protocol (Python)".into()
    };
    cox_testkit::outside_tool(&sdk, HOW).then_some(path)
}

fn serve(turns: Vec<Turn>) -> MockServer {
    MockServer::start(Script { turns }).unwrap()
}

/// Runs one scenario of the Python client against `cox acp` (with `extra` flags) and returns
/// what it saw.
fn scenario(env: &Env, server: &MockServer, name: &str, before: &[&str], extra: &[&str]) -> Value {
    let python = python().expect("checked by the caller");
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/acp/client.py");
    let command = env.cox_with(server);
    let mut driver = std::process::Command::new(&python);
    driver
        .arg(&client)
        .arg(name)
        .arg(&env.repo)
        .args(before)
        .arg(command.get_program())
        .args(command.get_args())
        .arg("acp")
        .args(extra);
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => driver.env(key, value),
            None => driver.env_remove(key),
        };
    }
    let output = driver.output().unwrap();
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the client printed no JSON ({e}): {}\n{}",
            text(&output.stdout),
            text(&output.stderr)
        )
    });
    assert!(
        seen.get("error").is_none(),
        "{seen:#}\n{}",
        text(&output.stderr)
    );
    seen
}

fn updates<'a>(seen: &'a Value, kind: &str) -> Vec<&'a Value> {
    seen["updates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["sessionUpdate"] == kind)
        .collect()
}

fn said(seen: &Value) -> String {
    updates(seen, "agent_message_chunk")
        .iter()
        .map(|u| u["content"]["text"].as_str().unwrap_or_default())
        .collect()
}

#[test]
fn a_prompt_streams_its_tool_calls_usage_and_answer_and_ends_the_turn() {
    let Some(_) = python() else { return };
    let env = Env::new();
    let server = serve(vec![
        Turn::text(&["Let me read it."])
            .with_call("read_file", r#"{"path":"README.md"}"#, 2)
            .with_usage(100, 0, 5),
        Turn::call(
            "apply_patch",
            &serde_json::json!({ "input": "*** Begin Patch\n*** Update File: README.md\n@@\n-A tiny repository.\n+A tiny repository, now edited.\n*** End Patch\n" })
                .to_string(),
        ),
        Turn::text(&["It is ", "a tiny repository."]).with_usage(120, 0, 6),
        Turn::text(&["Nothing else."]),
    ]);
    let seen = scenario(&env, &server, "tools", &[], &[]);

    let init = &seen["initialize"];
    assert_eq!(init["protocolVersion"], 1);
    assert_eq!(init["agentInfo"]["name"], "cox");
    assert_eq!(init["agentCapabilities"]["loadSession"], true);
    let steering = &init["agentCapabilities"]["_meta"]["cox.steering"];
    assert_eq!(steering["pause"], "_cox/pause");
    assert_eq!(steering["steer"], "_cox/steer");
    assert_eq!(steering["resume"], "_cox/resume");
    assert_eq!(init["authMethods"][0]["id"], "openai-api-key");
    // The key is there (the environment has it): authenticate succeeds; an unknown method not.
    assert!(seen["authenticate"].is_object(), "{seen:#}");
    assert_eq!(seen["bad_auth"]["code"], -32602, "{seen:#}");

    // Modes and the model are advertised; the client's pick reached the model.
    let session = &seen["session"];
    assert_eq!(session["modes"]["currentModeId"], "workspace");
    let options = session["configOptions"].as_array().unwrap();
    let model = options.iter().find(|o| o["category"] == "model").unwrap();
    assert_eq!(model["id"], "model");
    assert!(model["options"].as_array().unwrap().len() > 3, "{model}");
    let picked = seen["set_model"]["configOptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "model")
        .unwrap();
    assert_eq!(picked["currentValue"], "gpt-acp-test");
    assert_eq!(server.requests()[0].body["model"], "gpt-acp-test");
    assert_eq!(seen["bad_option"]["code"], -32602);
    assert!(
        seen["bad_option"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );

    // The tool call: kind, title, location, input, then its result.
    let call = updates(&seen, "tool_call")[0];
    assert_eq!(call["kind"], "read");
    assert_eq!(call["title"], "Read README.md");
    let readme = env.repo.join("README.md");
    assert_eq!(call["locations"][0]["path"], readme.display().to_string());
    assert_eq!(call["rawInput"]["path"], "README.md");
    let result = updates(&seen, "tool_call_update")[0];
    assert_eq!(result["toolCallId"], call["toolCallId"]);
    assert_eq!(result["status"], "completed");
    let output = result["content"][0]["content"]["text"].as_str().unwrap();
    assert!(output.contains("A tiny repository."), "{result}");
    // The edit: its kind, and the whole file before and after as a diff.
    let edit = updates(&seen, "tool_call")[1];
    assert_eq!(edit["kind"], "edit");
    assert_eq!(edit["locations"][0]["path"], readme.display().to_string());
    let edited = updates(&seen, "tool_call_update")[1];
    assert_eq!(edited["status"], "completed");
    let diff = &edited["content"][0];
    assert_eq!(diff["type"], "diff", "{edited}");
    assert_eq!(diff["path"], readme.display().to_string());
    assert_eq!(diff["oldText"], "# Demo\nA tiny repository.\n");
    assert_eq!(diff["newText"], "# Demo\nA tiny repository, now edited.\n");
    assert_eq!(said(&seen), "Let me read it.It is a tiny repository.");
    let usage = updates(&seen, "usage_update");
    assert_eq!(usage.len(), 3, "{usage:?}");
    assert_eq!(usage[2]["used"], 126);
    assert_eq!(seen["stop_reason"], "end_turn");

    // The session is cox's own: `session/load` in a new connection replays it and goes on.
    let id = seen["session_id"].as_str().unwrap();
    let loaded = scenario(&env, &server, "load", &[id], &[]);
    let replayed: Vec<Value> = loaded["replayed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["sessionUpdate"] != "available_commands_update")
        .cloned()
        .collect();
    let kinds: Vec<&str> = replayed
        .iter()
        .map(|u| u["sessionUpdate"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "user_message_chunk",
            "agent_message_chunk",
            "tool_call",
            "tool_call_update",
            "tool_call",
            "tool_call_update",
            "agent_message_chunk"
        ],
        "{replayed:?}"
    );
    assert!(
        replayed[0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("What is in README.md?")
    );
    assert_eq!(replayed[6]["content"]["text"], "It is a tiny repository.");
    assert_eq!(loaded["stop_reason"], "end_turn");
    let mut after = loaded.clone();
    let all = loaded["updates"].as_array().unwrap();
    let fresh: Vec<Value> = all[loaded["replayed"].as_array().unwrap().len()..].to_vec();
    after["updates"] = Value::Array(fresh);
    assert_eq!(said(&after), "Nothing else.");
    // The loaded session's request carried the whole history.
    let history = server.requests()[3].body["input"].to_string();
    assert!(history.contains("It is a tiny repository."), "{history}");
    assert_eq!(loaded["unknown"]["code"], -32002, "{loaded:#}");
}

#[test]
fn approvals_ask_the_client_and_each_answer_holds() {
    let Some(_) = python() else { return };
    let env = Env::new();
    let server = serve(vec![
        Turn::call("shell", r#"{"command":"touch one.txt"}"#),
        Turn::text(&["Made one."]),
        Turn::call("shell", r#"{"command":"touch two.txt"}"#),
        Turn::text(&["Two was refused."]),
        Turn::call("shell", r#"{"command":"touch three.txt"}"#),
        Turn::text(&["Made three."]),
    ]);
    let seen = scenario(&env, &server, "permission", &[], &[]);
    assert_eq!(
        seen["stop_reasons"],
        serde_json::json!(["end_turn", "end_turn", "end_turn"])
    );
    let asked = seen["permissions"].as_array().unwrap();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(
        asked[0]["tool_call"]["title"]
            .as_str()
            .unwrap()
            .contains("touch one.txt"),
        "{asked:?}"
    );
    let kinds: Vec<&str> = asked[0]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["allow_once", "allow_always", "reject_once"]);
    // Allowed once: it ran. Rejected: it did not, and the model was told.
    assert!(env.repo.join("one.txt").exists());
    assert!(!env.repo.join("two.txt").exists());
    let told = server.requests()[3].body["input"].to_string();
    assert!(told.contains("rejected"), "{told}");
    // Allowed always: it ran, and the grant is kept outside the workspace.
    assert!(env.repo.join("three.txt").exists());
    let grants = fs_err::read_to_string(env.home.join("projects.toml")).unwrap();
    assert!(grants.contains("touch"), "{grants}");
    assert_eq!(seen["bad_mode"]["code"], -32602);
    // The rejected call failed, the allowed ones completed.
    let statuses: Vec<&str> = updates(&seen, "tool_call_update")
        .iter()
        .filter_map(|u| u["status"].as_str())
        .filter(|s| *s == "completed" || *s == "failed")
        .collect();
    assert_eq!(statuses, ["completed", "failed", "completed"]);
}

#[test]
fn cancel_during_a_command_kills_it_and_the_session_goes_on() {
    let Some(_) = python() else { return };
    let env = Env::new();
    let server = serve(vec![
        Turn::call(
            "shell",
            r#"{"command":"echo $$ > pid; exec sleep 4242.25"}"#,
        ),
        Turn::text(&["Back."]),
    ]);
    let seen = scenario(&env, &server, "cancel", &[], &[]);
    assert_eq!(seen["stop_reason"], "cancelled");
    assert_eq!(seen["running_before"], true, "{seen:#}");
    assert_eq!(
        seen["running_after"], false,
        "the command outlived the cancel"
    );
    assert!(pids_with_arg("4242.25").is_empty());
    assert_eq!(seen["after"], "end_turn");
    assert_eq!(said(&seen), "Back.");
}

#[test]
fn pause_steer_and_resume_hold_the_barrier_over_acp() {
    let Some(_) = python() else { return };
    let env = Env::new();
    let words: Vec<String> = (0..30).map(|i| format!("word{i} ")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut slow = Turn::text(&words).with_call("shell", r#"{"command":"touch note.txt"}"#, 1);
    slow.delay_ms = 60;
    let mut second = Turn::text(
        &(0..30)
            .map(|i| if i == 0 { "Second " } else { "more " })
            .collect::<Vec<_>>(),
    );
    second.delay_ms = 60;
    let server = serve(vec![
        slow,
        Turn::call("shell", r#"{"command":"touch steered.txt"}"#),
        Turn::text(&["Done."]),
        second,
        Turn::text(&["Resumed."]),
    ]);
    let seen = scenario(&env, &server, "steer", &[], &[]);
    assert_eq!(seen["nothing_to_pause"]["code"], -32600, "{seen:#}");
    assert_eq!(seen["pause"]["paused"], true);
    assert_eq!(seen["steer"]["steered"], true);
    assert_eq!(seen["stop_reason"], "end_turn");
    // The paused stream's tool call never ran; the directive reached the model and was followed.
    assert!(!env.repo.join("note.txt").exists());
    assert!(env.repo.join("steered.txt").exists());
    let after = server.requests()[1].body.to_string();
    assert!(
        after.contains("Name the file steered.txt instead."),
        "{after}"
    );
    let directive = updates(&seen, "user_message_chunk");
    assert_eq!(
        directive[0]["content"]["text"],
        "Name the file steered.txt instead."
    );
    // Paused and resumed: the session went on to the end.
    assert_eq!(seen["pause2"]["paused"], true);
    assert_eq!(seen["resume"]["resumed"], true);
    assert_eq!(seen["second_stop_reason"], "end_turn");
    assert!(said(&seen).ends_with("Resumed."), "{}", said(&seen));
}

/// Harbor's runner, when `scripts/test` fetched it.
fn harbor_runner() -> Option<String> {
    let path = tools().join("harbor/acp_runner.py").display().to_string();
    cox_testkit::outside_tool(&path, HOW).then_some(path)
}

#[test]
fn harbors_acp_runner_picks_the_model_and_completes_the_task() {
    let Some(python) = python() else { return };
    let Some(runner) = harbor_runner() else {
        return;
    };
    let env = Env::new();
    let server = serve(vec![
        Turn::text(&["On it."])
            .with_call("shell", r#"{"command":"touch done.txt"}"#, 1)
            .with_usage(100, 40, 20),
        Turn::text(&["Done: done.txt exists."]).with_usage(300, 0, 9),
    ]);
    let command = env.cox_with(&server);
    // Harbor starts the agent through a launcher command (its registry entry's `cmd` and `args`).
    let launcher = env.home.join("launch-cox");
    fs_err::create_dir_all(&env.home).unwrap();
    let mut line = format!(
        "#!/bin/sh\nexec '{}'",
        command.get_program().to_string_lossy()
    );
    for arg in command.get_args() {
        line.push_str(&format!(" '{}'", arg.to_string_lossy()));
    }
    // Untrusted: the command asks, and Harbor's runner (in its default `allow` mode) allows it.
    line.push_str(" acp --approval untrusted\n");
    fs_err::write(&launcher, line).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
    let logs = env.home.join("harbor-logs");
    let mut driver = std::process::Command::new(&python);
    driver
        .arg(&runner)
        .args(["--instruction", "Create done.txt.", "--logs-dir"])
        .arg(&logs)
        .arg("--launcher")
        .arg(&launcher)
        .current_dir(&env.repo)
        .env("ACP_RUNNER_REQUESTED_MODEL", "openai/gpt-5.2-codex");
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => driver.env(key, value),
            None => driver.env_remove(key),
        };
    }
    let output = driver.output().unwrap();
    let summary: Value =
        serde_json::from_str(&fs_err::read_to_string(logs.join("acp-summary.json")).unwrap())
            .unwrap();
    assert!(
        output.status.success(),
        "{summary:#}\n{}",
        text(&output.stderr)
    );
    assert_eq!(
        summary["set_model_mechanism"], "session_config_option",
        "{summary:#}"
    );
    assert_eq!(summary["resolved_session_model_id"], "gpt-5.2-codex");
    assert_eq!(server.requests()[0].body["model"], "gpt-5.2-codex");
    assert_eq!(
        summary["prompt_response"]["stopReason"], "end_turn",
        "{summary:#}"
    );
    assert_eq!(summary["permissions_requested"], 1);
    assert_eq!(summary["latest_usage_update"]["used"], 309, "{summary:#}");
    // The prompt's answer carries its tokens (what Harbor records as the trial's).
    let usage = &summary["prompt_response"]["usage"];
    assert_eq!(usage["inputTokens"], 400, "{usage}");
    assert_eq!(usage["outputTokens"], 29, "{usage}");
    assert_eq!(usage["cachedReadTokens"], 40, "{usage}");
    assert!(env.repo.join("done.txt").exists());
    let events = fs_err::read_to_string(logs.join("acp-events.jsonl")).unwrap();
    let calls: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["payload"]["update"]["sessionUpdate"] == "tool_call")
        .collect();
    assert_eq!(calls.len(), 1, "{events}");
    assert_eq!(calls[0]["payload"]["update"]["kind"], "execute");
}

#[test]
fn the_plan_shows_and_running_out_of_turns_is_max_turn_requests() {
    let Some(_) = python() else { return };
    let env = Env::new();
    let plan = r#"{"plan":[{"step":"Look around","status":"in_progress"},{"step":"Fix it","status":"pending"}]}"#;
    let server = serve(vec![
        Turn::call("update_plan", plan),
        Turn::call("shell", r#"{"command":["true"]}"#),
        Turn::call("shell", r#"{"command":["true"]}"#),
    ]);
    let seen = scenario(&env, &server, "once", &[], &["--max-turns", "2"]);
    assert_eq!(seen["stop_reason"], "max_turn_requests", "{seen:#}");
    let plans = updates(&seen, "plan");
    assert_eq!(plans.len(), 1, "{seen:#}");
    let entries = plans[0]["entries"].as_array().unwrap();
    assert_eq!(entries[0]["content"], "Look around");
    assert_eq!(entries[0]["status"], "in_progress");
    assert_eq!(entries[1]["status"], "pending");
    assert_eq!(updates(&seen, "tool_call")[0]["kind"], "think");
}

#[test]
fn an_mcp_server_the_client_gives_is_started_by_cox_and_asks_before_its_tools_run() {
    let Some(_) = python() else { return };
    let git_server = tools().join("venv/bin/mcp-server-git");
    if !cox_testkit::outside_tool(&git_server.display().to_string(), HOW) {
        return;
    }
    let env = Env::new();
    commit_everything(&env.repo);
    fs_err::write(env.repo.join("README.md"), "# Demo\nChanged.\n").unwrap();
    let repo = env.repo.display().to_string();
    let server = serve(vec![
        Turn::call(
            "git__git_status",
            &serde_json::json!({ "repo_path": repo }).to_string(),
        ),
        Turn::text(&["README.md changed."]),
    ]);
    let seen = scenario(
        &env,
        &server,
        "mcp",
        &[&git_server.display().to_string()],
        &[],
    );
    assert_eq!(seen["stop_reason"], "end_turn", "{seen:#}");
    // The server's tools were offered to the model, and its call asked first (the client's
    // servers are not trusted).
    let tools = server.requests()[0].body["tools"].to_string();
    assert!(tools.contains("git__git_status"), "{tools}");
    assert_eq!(seen["permissions"].as_array().unwrap().len(), 1, "{seen:#}");
    let result = server.requests()[1].body["input"].to_string();
    assert!(result.contains("README.md"), "{result}");
    // An MCP call's kind is ACP's default, `other` (left out on the wire).
    let call = updates(&seen, "tool_call")[0];
    assert!(
        call["title"].as_str().unwrap().contains("git_status"),
        "{call}"
    );
    assert!(call.get("kind").is_none_or(|k| k == "other"), "{call}");
}

#[test]
fn a_client_that_goes_away_takes_the_running_command_with_it() {
    let Some(_) = python() else { return };
    let env = Env::new();
    let server = serve(vec![Turn::call(
        "shell",
        r#"{"command":"exec sleep 4343.25"}"#,
    )]);
    let seen = scenario(&env, &server, "hangup", &[], &[]);
    assert_eq!(seen["running_before"], true, "{seen:#}");
    // cox ended by itself when its stdin closed (no signal from the SDK was needed).
    assert_eq!(seen["exit"], 0, "{seen:#}");
    // The connection closed under a running command: cox ends the session and the command.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pids_with_arg("4343.25").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        pids_with_arg("4343.25").is_empty(),
        "the command outlived the client"
    );
    let acp: Vec<u32> = pids_with_arg("acp")
        .into_iter()
        .filter(|pid| {
            fs_err::read_to_string(format!("/proc/{pid}/environ"))
                .is_ok_and(|e| e.contains(&env.home.display().to_string()))
        })
        .collect();
    assert!(acp.is_empty(), "cox acp outlived its client: {acp:?}");
}

#[test]
fn a_run_prompt_runs_the_plan_file_step_by_step() {
    let Some(_) = python() else { return };
    let env = Env::new();
    fs_err::write(
        env.repo.join("plan.json"),
        r#"{"goal": "Two files", "steps": [
            {"id": "S1", "title": "Create a.txt"},
            {"id": "S2", "title": "Say it is done", "depends_on": ["S1"]}
        ]}"#,
    )
    .unwrap();
    let server = serve(vec![
        Turn::call("shell", r#"{"command":"touch a.txt"}"#),
        Turn::text(&["Created a.txt."]),
        Turn::text(&["Both done."]),
    ]);
    let seen = scenario(&env, &server, "planrun", &[], &[]);
    assert_eq!(seen["stop_reason"], "end_turn", "{seen:#}");
    // The session offers the command.
    let offered = updates(&seen, "available_commands_update");
    assert_eq!(
        offered[0]["availableCommands"][0]["name"], "run",
        "{seen:#}"
    );
    // Each step ran in order, the plan's statuses streamed and were written back.
    assert!(env.repo.join("a.txt").exists());
    let plans = updates(&seen, "plan");
    let last = plans.last().unwrap()["entries"].as_array().unwrap();
    assert_eq!(last.len(), 2, "{plans:?}");
    assert!(last.iter().all(|e| e["status"] == "completed"), "{plans:?}");
    assert!(
        plans
            .iter()
            .any(|p| p["entries"][0]["status"] == "in_progress"),
        "{plans:?}"
    );
    let plan: Value =
        serde_json::from_str(&fs_err::read_to_string(env.repo.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["steps"][0]["status"], "done");
    assert_eq!(plan["steps"][1]["status"], "done");
    assert!(said(&seen).contains("Created a.txt."), "{}", said(&seen));
    assert!(said(&seen).ends_with("Both done."), "{}", said(&seen));
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn cancel_reaches_a_plan_run_and_kills_its_steps_command() {
    let Some(_) = python() else { return };
    let env = Env::new();
    fs_err::write(
        env.repo.join("plan.json"),
        r#"{"goal": "Wait", "steps": [{"id": "S1", "title": "Wait a long time"}]}"#,
    )
    .unwrap();
    let server = serve(vec![Turn::call(
        "shell",
        r#"{"command":"exec sleep 4444.25"}"#,
    )]);
    let seen = scenario(&env, &server, "plancancel", &[], &[]);
    assert_eq!(seen["running_before"], true, "{seen:#}");
    assert_eq!(seen["stop_reason"], "cancelled", "{seen:#}");
    assert_eq!(
        seen["running_after"], false,
        "the step's command outlived the cancel"
    );
    assert!(pids_with_arg("4444.25").is_empty());
}
