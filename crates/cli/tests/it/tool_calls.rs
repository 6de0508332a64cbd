//! The tool set end to end: patches, heredocs, plans, questions, `cox tools`.

use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

use crate::harness::*;

fn patch_call(patch: &str) -> Turn {
    Turn::call(
        "apply_patch",
        &serde_json::json!({ "input": patch }).to_string(),
    )
}

#[test]
fn a_patch_edits_two_files_and_the_diff_is_an_event() {
    let env = Env::new();
    fs_err::write(
        env.repo.join("src.rs"),
        "fn main() {\n    println!(\"hi\");\n}\n",
    )
    .unwrap();
    let patch = "*** Begin Patch\n*** Update File: src.rs\n@@ fn main() {\n-    println!(\"hi\");\n+    println!(\"hello\");\n*** Update File: README.md\n@@\n # Demo\n-A tiny repository.\n+A tiny, friendly repository.\n*** End Patch\n";
    let server = MockServer::start(Script {
        turns: vec![patch_call(patch), Turn::text(&["Edited."])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "--json", "edit"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        fs_err::read_to_string(env.repo.join("src.rs")).unwrap(),
        "fn main() {\n    println!(\"hello\");\n}\n"
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("README.md")).unwrap(),
        "# Demo\nA tiny, friendly repository.\n"
    );
    assert_eq!(
        tool_outputs(&server, 1),
        ["Success. Updated the following files:\nM src.rs (+1 -1)\nM README.md (+1 -1)\n"]
    );
    let events: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let call = events
        .iter()
        .find(|e| e["type"] == "tool_call")
        .expect("tool_call event");
    assert_eq!(
        call["preview"],
        serde_json::json!(["Modify src.rs line 2", "Modify README.md line 2"])
    );
    let diff = events
        .iter()
        .find(|e| e["type"] == "patch_applied")
        .expect("patch_applied event");
    let diff = diff["diff"].as_str().unwrap();
    assert!(diff.contains("--- a/src.rs\n+++ b/src.rs\n"), "{diff}");
    assert!(diff.contains("+A tiny, friendly repository.\n"), "{diff}");
}

#[test]
fn a_bad_patch_gets_a_precise_error_and_the_corrected_patch_applies() {
    let env = Env::new();
    let wrong = "*** Begin Patch\n*** Update File: README.md\n@@\n # Demo\n-A small repository.\n+A big repository.\n*** Add File: NEW.md\n+new\n*** End Patch\n";
    let right = "*** Begin Patch\n*** Update File: README.md\n@@\n # Demo\n-A tiny repository.\n+A big repository.\n*** Add File: NEW.md\n+new\n*** End Patch\n";
    let script = Script {
        turns: vec![
            patch_call(wrong),
            patch_call(right),
            Turn::text(&["Fixed."]),
        ],
    };
    let server = MockServer::start(script).unwrap();
    let output = run(env.cox_with(&server).args(["exec", "edit"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = &tool_outputs(&server, 1)[0];
    assert_eq!(
        first,
        "apply_patch failed; no file was changed.\nREADME.md, hunk 1 (patch line 3): these lines were not found:\n  | # Demo\n  | A small repository.\nClosest lines in README.md (1 of 2 agree), lines 1-2:\n      1 | # Demo\n      2 | A tiny repository.\nFirst difference, line 2: the patch has `A small repository.`, the file has `A tiny repository.`.\nRead the file again and resend the patch with the context and `-` lines copied exactly."
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("README.md")).unwrap(),
        "# Demo\nA big repository.\n"
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("NEW.md")).unwrap(),
        "new\n"
    );
}

#[test]
fn apply_patch_through_a_shell_heredoc() {
    let env = Env::new();
    let script = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: notes/todo.md\n+- ship it\n*** End Patch\nEOF";
    let turns = vec![
        Turn::call(
            "shell",
            &serde_json::json!({ "command": ["bash", "-lc", script] }).to_string(),
        ),
        Turn::text(&["Added."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args(["exec", "add a todo"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        fs_err::read_to_string(env.repo.join("notes/todo.md")).unwrap(),
        "- ship it\n"
    );
    assert_eq!(
        tool_outputs(&server, 1),
        ["Success. Updated the following files:\nA notes/todo.md (+1)\n"]
    );
}

#[test]
fn plan_updates_are_events_and_ask_user_headless_proceeds() {
    let env = Env::new();
    let plan = r#"{"plan":[{"step":"Read README","status":"completed"},{"step":"Answer","status":"in_progress"}]}"#;
    let turns = vec![
        Turn::call("update_plan", plan).with_call(
            "ask_user",
            r#"{"question":"Short or long?"}"#,
            1,
        ),
        Turn::text(&["Short answer."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args(["exec", "--json", "summarise"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let events: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let plan = events
        .iter()
        .find(|e| e["type"] == "plan_updated")
        .expect("plan_updated");
    assert_eq!(
        plan["steps"][1],
        serde_json::json!({"step": "Answer", "status": "in_progress"})
    );
    assert!(
        events.iter().all(|e| e["type"] != "question_asked"),
        "headless runs never ask"
    );
    let outputs = tool_outputs(&server, 1);
    assert_eq!(outputs[0], "Plan updated: 1 of 2 steps completed.");
    assert!(
        outputs[1].starts_with("No one is available to answer"),
        "{}",
        outputs[1]
    );
}

#[test]
fn tools_lists_every_tool_with_its_schema_size() {
    let env = Env::new();
    let output = run(env.cox().arg("tools"));
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let names: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "shell",
            "exec_command",
            "write_stdin",
            "list_sessions",
            "kill_session",
            "apply_patch",
            "read_file",
            "list_dir",
            "grep",
            "update_plan",
            "ask_user",
            "total"
        ]
    );
    assert!(
        text.lines().last().unwrap().contains("tokens per request"),
        "{text}"
    );
    let json: Value =
        serde_json::from_str(&stdout(&run(env.cox().args(["tools", "--json"])))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 11);
    assert_eq!(json[1]["name"], "exec_command");
}
