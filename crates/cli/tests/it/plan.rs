//! `cox plan`: read-only analysis, structured output, validation with corrections, a plan document
//! on stdout and nothing else.

use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

use crate::harness::*;

const VALID: &str = r#"{"goal": "Migrate routes to async/await", "constraints": ["Keep public names"], "steps": [{"id": "S1", "title": "Convert getUser", "files": ["src/routes/users.js"]}, {"id": "S2", "title": "Convert listUsers", "depends_on": ["S1"], "reviewer": "ana"}]}"#;

#[test]
fn an_invalid_plan_is_corrected_and_only_the_valid_plan_reaches_stdout() {
    let env = Env::new();
    let turns = vec![
        Turn::call("read_file", r#"{"path":"README.md"}"#),
        Turn::text(&[r#"{"goal": "Migrate routes"}"#]),
        Turn::text(&["Here is the plan:\n```json\n", VALID, "\n```"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["plan", "Analyze src/routes and plan the migration"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan: Value = serde_json::from_str(&stdout(&output)).expect("stdout is exactly the plan");
    assert_eq!(plan["version"], 1);
    assert_eq!(plan["steps"][0]["status"], "pending");
    assert_eq!(
        plan["steps"][1]["reviewer"], "ana",
        "unknown fields are kept"
    );
    assert!(
        stdout(&output).starts_with("{\n  \"version\": 1,\n  \"goal\""),
        "pretty JSON"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let first = &requests[0].body;
    assert_eq!(first["text"]["format"]["type"], "json_schema");
    assert_eq!(first["text"]["format"]["name"], "plan");
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        ["shell", "read_file", "list_dir", "grep", "ask_user"],
        "no tool that writes"
    );
    assert!(
        first["instructions"]
            .as_str()
            .unwrap()
            .contains("PLANNING mode")
    );
    let correction = requests[2].body["input"].to_string();
    assert!(
        correction.contains("Your plan is not valid: line 1, column 26: missing field `steps`"),
        "{correction}"
    );
}

#[test]
fn planning_refuses_commands_that_write() {
    let env = Env::new();
    let turns = vec![
        Turn::call("shell", r#"{"command":"rm README.md"}"#).with_call(
            "apply_patch",
            r#"{"input":"*** Begin Patch\n*** Delete File: README.md\n*** End Patch\n"}"#,
            1,
        ),
        Turn::text(&[VALID]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args(["plan", "plan it"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        env.repo.join("README.md").exists(),
        "planning changed a file"
    );
    let outputs = server.requests()[1].body["input"].to_string();
    assert!(
        outputs.contains("planning mode is read-only: `rm README.md` was not run"),
        "{outputs}"
    );
    assert!(outputs.contains("unknown tool `apply_patch`"), "{outputs}");
}

#[test]
fn three_invalid_plans_fail_with_exit_1_and_print_nothing() {
    let env = Env::new();
    let bad = || Turn::text(&["I think we should refactor things."]);
    let server = MockServer::start(Script {
        turns: vec![bad(), bad(), bad()],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["plan", "plan it"]));
    expect_failure(&output, 1, "did not produce a valid plan in 3 attempts");
    assert_eq!(stdout(&output), "");
}

#[test]
fn chat_providers_get_response_format() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&[VALID])],
    })
    .unwrap();
    let base = format!("providers.ollama.base_url={}/v1", server.url());
    let output = run(env.cox().args([
        "--provider",
        "ollama",
        "-m",
        "qwen2.5-coder",
        "-c",
        &base,
        "plan",
        "plan it",
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let body = &server.requests()[0].body;
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["required"],
        serde_json::json!(["goal", "steps"])
    );
}

#[test]
fn roles_pick_the_planner_for_plan_and_the_worker_for_run() {
    let env = Env::new();
    fs_err::create_dir_all(&env.home).unwrap();
    fs_err::write(
        env.home.join("config.toml"),
        "[roles]\nplanner = \"anthropic:claude-opus-4-6\"\nworker = \"openai:gpt-5.3-codex\"\n",
    )
    .unwrap();
    let planner = MockServer::start(Script {
        turns: vec![Turn::text(&[VALID])],
    })
    .unwrap();
    let worker = MockServer::start(Script {
        turns: vec![Turn::text(&["S1 done."]), Turn::text(&["S2 done."])],
    })
    .unwrap();
    let output = run(env
        .cox_with(&worker)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", planner.url())
        .args(["plan", "plan it"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(planner.requests()[0].body["model"], "claude-opus-4-6");
    assert!(worker.requests().is_empty());
    fs_err::write(env.repo.join("plan.json"), stdout(&output)).unwrap();

    let output = run(env.cox_with(&worker).args(["run", "--plan", "plan.json"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(worker.requests()[0].body["model"], "gpt-5.3-codex");
    assert_eq!(planner.requests().len(), 1);

    let other = MockServer::start(Script {
        turns: vec![Turn::text(&[VALID])],
    })
    .unwrap();
    let base = format!("providers.ollama.base_url={}/v1", other.url());
    let output = run(env.cox().args([
        "-c",
        &base,
        "plan",
        "--planner-model",
        "ollama:qwen2.5-coder",
        "plan it",
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(other.requests()[0].body["model"], "qwen2.5-coder");
    let bad = run(env
        .cox()
        .args(["plan", "--planner-model", "ollama:", "plan it"]));
    expect_failure(&bad, 2, "`ollama:` is not a model");
}

/// `cox plan "…" > plan.json` does not finish in silence: stderr lists the steps and names the
/// file with the command that runs it; a pipe is told the plan is on stdout (issue 18).
#[test]
fn the_plan_written_to_a_file_is_named_on_stderr() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&[VALID]), Turn::text(&[VALID])],
    })
    .unwrap();
    let file = fs_err::File::create(env.repo.join("plan.json")).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["plan", "plan it"])
        .stdout(std::process::Stdio::from(file.into_parts().0)));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(
            "plan: 2 steps — Migrate routes to async/await\n  S1 Convert getUser\n  S2 Convert listUsers\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("wrote plan.json; run it with: cox run --plan plan.json"),
        "{err}"
    );
    let written: Value =
        serde_json::from_str(&fs_err::read_to_string(env.repo.join("plan.json")).unwrap()).unwrap();
    assert_eq!(written["steps"][1]["id"], "S2", "the file holds the plan");

    let piped = run(env.cox_with(&server).args(["plan", "plan it"]));
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    assert!(
        stderr(&piped).contains("the plan is on stdout; save it with: cox plan \"…\" > plan.json"),
        "{}",
        stderr(&piped)
    );
    assert!(
        serde_json::from_str::<Value>(&stdout(&piped)).is_ok(),
        "stdout stays the plan alone"
    );
}
