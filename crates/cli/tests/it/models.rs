//! Talking to real models as they expect, end to end through the binary: reasoning carried through a
//! tool loop on every wire (and through a resume), commentary apart from the answer, refusals,
//! truncation and empty answers never a silent success, retried streams taken back, and an
//! overflow that compaction cannot shrink reported instead of resent.

use cox_testkit::{Fault, MockServer, Recorded, Script, Turn};
use serde_json::Value;

use crate::harness::{Env, KEY, expect_failure, run, stderr, stdout};

/// A recorded provider answer from the model crate's fixtures.
fn recorded(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../model/tests/streams")
        .join(name);
    fs_err::read_to_string(path).unwrap()
}

fn events(output: &std::process::Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Two reasoning turns that each call a tool, then the answer.
fn reasoning_loop() -> Script {
    Script {
        turns: vec![
            Turn {
                reasoning: vec!["Reading ".into(), "the README.".into()],
                ..Turn::call("read_file", r#"{"path":"README.md"}"#)
            },
            Turn {
                reasoning: vec!["Counting its lines.".into()],
                ..Turn::call("shell", r#"{"command":["wc","-l","README.md"]}"#)
            },
            Turn::text(&["It has 2 lines."]),
        ],
    }
}

/// The conversation part of a request body, whatever the wire.
fn conversation(request: &Recorded) -> Value {
    ["input", "messages"]
        .iter()
        .find_map(|key| request.body.get(*key).cloned())
        .unwrap()
}

#[test]
fn a_reasoning_tool_loop_sends_back_what_each_wire_needs() {
    // Responses: the default model reasons, so its encrypted reasoning goes back, in place.
    let env = Env::new();
    let server = MockServer::start(reasoning_loop()).unwrap();
    let output = run(env.cox_with(&server).args(["exec", "count the lines"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "It has 2 lines.\n");
    let requests = server.requests();
    assert_eq!(
        requests[0].body["include"][0],
        "reasoning.encrypted_content"
    );
    assert_eq!(requests[0].body["reasoning"]["summary"], "auto");
    let input = conversation(&requests[2]);
    let kinds: Vec<String> = input
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "reasoning",
            "function_call",
            "function_call_output",
            "reasoning",
            "function_call",
            "function_call_output"
        ]
    );
    assert_eq!(input[1]["encrypted_content"], "gAAAA-mock-encrypted-1");
    assert_eq!(input[4]["encrypted_content"], "gAAAA-mock-encrypted-2");

    // And after a resume the journal gives them back the same way.
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["Still 2."])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["resume", "--last", "and now?"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let resumed = conversation(&server.requests()[0]).to_string();
    assert!(
        resumed.contains("gAAAA-mock-encrypted-1") && resumed.contains("gAAAA-mock-encrypted-2"),
        "{resumed}"
    );

    // Anthropic with thinking on: the signed thinking blocks go back in their assistant turns,
    // with the interleaved-thinking beta.
    let server = MockServer::start(reasoning_loop()).unwrap();
    let output = run(env
        .cox()
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", server.url())
        .args([
            "--provider",
            "anthropic",
            "-c",
            "model_thinking=2048",
            "exec",
            "count",
        ]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let requests = server.requests();
    let third = &requests[2];
    assert_eq!(
        third
            .headers
            .iter()
            .find(|(k, _)| *k == "anthropic-beta")
            .map(|(_, v)| v.as_str()),
        Some("interleaved-thinking-2025-05-14")
    );
    assert_eq!(third.body["thinking"]["budget_tokens"], 2048);
    let messages = conversation(third);
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"][0]["type"], "thinking");
    assert_eq!(messages[1]["content"][0]["signature"], "mock-signature-1");
    assert_eq!(messages[1]["content"][1]["type"], "tool_use");
    assert_eq!(messages[3]["content"][0]["signature"], "mock-signature-2");

    // Chat: the effort is sent; another wire's reasoning never is.
    let server = MockServer::start(reasoning_loop()).unwrap();
    let base = format!("providers.ollama.base_url={}/v1", server.url());
    let output = run(env.cox().args([
        "--provider",
        "ollama",
        "-m",
        "qwen3",
        "-c",
        &base,
        "-c",
        "model_reasoning_effort=low",
        "exec",
        "count",
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let third = &server.requests()[2];
    assert_eq!(third.body["reasoning_effort"], "low");
    let roles: Vec<&str> = third.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "assistant", "tool"]
    );
}

#[test]
fn per_role_reasoning_settings_are_checked_and_applied() {
    let env = Env::new();
    fs_err::create_dir_all(&env.home).unwrap();
    fs_err::write(
        env.home.join("config.toml"),
        "model_reasoning_effort = \"low\"\n[reasoning.planner]\neffort = \"xhigh\"\n",
    )
    .unwrap();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["ok"])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "hi"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(server.requests()[0].body["reasoning"]["effort"], "low");
    let output =
        run(env
            .cox_with(&server)
            .args(["-c", "model_reasoning_effort=extreme", "exec", "hi"]));
    expect_failure(&output, 2, "model_reasoning_effort");
    assert!(stderr(&output).contains("xhigh"), "{}", stderr(&output));
    let output = run(env
        .cox_with(&server)
        .args(["-c", "model_thinking=12", "exec", "hi"]));
    expect_failure(&output, 2, "model_thinking");
}

#[test]
fn commentary_is_progress_and_only_the_answer_reaches_stdout() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::replay(&recorded(
            "responses_commentary_then_final.sse",
        ))],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "options?"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Here are a few options.\n");
    assert!(stderr(&output).contains("Got it\n"), "{}", stderr(&output));
}

#[test]
fn a_refusal_is_shown_and_fails_the_task() {
    let env = Env::new();
    for (file, said) in [
        ("responses_refusal.sse", "I can't help with that."),
        ("chat_refusal.sse", "I'm sorry, I can't assist with that."),
    ] {
        let server = MockServer::start(Script {
            turns: vec![Turn::replay(&recorded(file))],
        })
        .unwrap();
        let command = &mut env.cox_with(&server);
        if file.starts_with("chat") {
            let base = format!("providers.ollama.base_url={}/v1", server.url());
            command.args(["--provider", "ollama", "-m", "llama3", "-c", &base]);
        }
        let output = run(command.args(["exec", "--json", "do it"]));
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let refused: Vec<String> = events(&output)
            .iter()
            .filter(|e| e["type"] == "error" && e["kind"] == "refused")
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(refused, [format!("the model refused: {said}")], "{file}");
    }
}

#[test]
fn a_truncated_response_is_reported_and_the_model_goes_on() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![
            Turn::replay(&recorded("responses_incomplete.sse")),
            Turn::text(&["Done."]),
        ],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "--json", "explain"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let all = events(&output);
    assert!(
        all.iter()
            .any(|e| e["type"] == "truncated" && e["reason"] == "max_output_tokens")
    );
    assert!(all.iter().any(|e| {
        e["type"] == "warning"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("cut off by the output limit")
    }));
    let last = all.last().unwrap();
    assert_eq!(last["answer"], "Done.");
    // The model was told, after its cut text.
    let second = conversation(&server.requests()[1]).to_string();
    assert!(second.contains("To get"), "{second}");
    assert!(
        second.contains("Your last response was cut off by the output limit (max_output_tokens)"),
        "{second}"
    );

    // A cut tool call never runs, and is not owed on resume.
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![
            Turn::replay(&recorded("anthropic_max_tokens.sse")),
            Turn::text(&["Stopped."]),
        ],
    })
    .unwrap();
    let output = run(env
        .cox()
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", server.url())
        .args(["--provider", "anthropic", "exec", "--json", "patch it"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !events(&output).iter().any(|e| e["type"] == "tool_call"),
        "the cut call ran"
    );
    let second = conversation(&server.requests()[1]).to_string();
    assert!(
        second.contains("The tool call apply_patch was cut off and did not run"),
        "{second}"
    );
}

#[test]
fn an_empty_answer_is_not_a_silent_success() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&[]), Turn::text(&["Here it is."])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "go"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Here it is.\n");
    assert!(stderr(&output).contains("warning: the model's response was empty"));
    assert!(
        conversation(&server.requests()[1])
            .to_string()
            .contains("Your last response was empty")
    );

    // Reasoning with nothing after it is no answer either.
    let thought_only = Turn {
        reasoning: vec!["Thinking about it.".into()],
        ..Turn::text(&[])
    };
    let server = MockServer::start(Script {
        turns: vec![thought_only, Turn::text(&[])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "go"]));
    expect_failure(&output, 1, "answered with nothing");
    assert_eq!(stdout(&output), "");
}

#[test]
fn a_retried_stream_takes_back_what_it_streamed() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![
            // Streams its text, then goes silent past the idle timeout: the attempt fails after it showed text.
            Turn::text(&["To get"]).with_fault(Fault::Stall { ms: 1500 }),
            Turn::text(&["I'm unable to ", "reach it."]),
        ],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "--json", "go"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let all = events(&output);
    let kinds: Vec<&str> = all
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .filter(|k| {
            [
                "agent_message_delta",
                "retracted",
                "retrying",
                "agent_message",
            ]
            .contains(k)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "agent_message_delta",
            "retracted",
            "retrying",
            "agent_message_delta",
            "agent_message_delta",
            "agent_message"
        ]
    );
    let retracted = all.iter().find(|e| e["type"] == "retracted").unwrap();
    assert_eq!(retracted["text"], "To get");
    assert_eq!(all.last().unwrap()["answer"], "I'm unable to reach it.");
}

#[test]
fn an_overflow_that_compaction_cannot_shrink_is_reported_not_resent() {
    let env = Env::new();
    let overflow = Fault::Status {
        status: 400,
        retry_after: None,
        message: Some(
            "This model's maximum context length is 1000 tokens. However, your messages resulted \
             in 5000 tokens."
                .into(),
        ),
    };
    let server = MockServer::start(Script {
        turns: vec![
            Turn::text(&["never"]).with_fault(overflow),
            Turn::text(&["not sent"]),
        ],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "hi"]));
    expect_failure(&output, 3, "compaction could not shrink it");
    assert_eq!(
        server.requests().len(),
        1,
        "the same request was sent again"
    );
}
