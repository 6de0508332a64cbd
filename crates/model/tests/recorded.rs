//! Real providers' answers, replayed byte for byte from `tests/streams/` through the mock server on
//! 127.0.0.1, on each wire: reasoning and thinking kept to be sent back, commentary apart from the
//! answer, refusals and truncation reported, calls without `index`, usage where LiteLLM puts it,
//! bodies sent whole as JSON. And the requests each wire builds from such a history: reasoning sent
//! back in place, cache breakpoints, thinking settings, tool results straight after their calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cox_model::{
    Ending, Endpoint, ModelError, ModelRequest, ModelResponse, Reasoning, RetryPolicy, Secret,
    StreamEvent, Thinking, Wire,
};
use cox_protocol::{CallId, Item, SessionId, ToolCall, ToolSpec, Usage};
use cox_testkit::{MockServer, Script, Turn};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn recorded(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/streams")
        .join(name);
    fs_err::read_to_string(path).unwrap()
}

fn request() -> ModelRequest {
    ModelRequest {
        model: "gpt-5.3-codex".into(),
        instructions: "You are a test.".into(),
        items: vec![Item::User {
            text: "Fix the tests".into(),
        }],
        tools: vec![ToolSpec {
            name: "shell".into(),
            description: "Runs a command.".into(),
            parameters: json!({"type": "object", "properties": {"command": {"type": "array"}}}),
        }],
        session_id: SessionId("0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000".into()),
        max_output_tokens: None,
        output_schema: None,
        reasoning: Reasoning::default(),
        service_tier: None,
        verbosity: None,
    }
}

/// Streams `request()` from a server that answers with `turn`.
async fn answer(wire: Wire, turn: Turn) -> (Result<ModelResponse, ModelError>, Vec<StreamEvent>) {
    let server = MockServer::start(Script { turns: vec![turn] }).unwrap();
    let base_url = match wire {
        Wire::Anthropic => server.url(),
        Wire::Responses | Wire::Chat => format!("{}/v1", server.url()),
    };
    let endpoint = Endpoint {
        provider: "test".into(),
        wire,
        base_url,
        api_key: Some(Secret::new("sk-test-recorded")),
    };
    let policy = RetryPolicy {
        max_retries: 0,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        idle_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_secs(20),
    };
    let client = cox_model::client(endpoint, policy).unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let result = client.stream(&request(), tx).await;
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    (result, events)
}

async fn replay(wire: Wire, file: &str) -> (ModelResponse, Vec<StreamEvent>) {
    let (result, events) = answer(wire, Turn::replay(&recorded(file))).await;
    (result.unwrap(), events)
}

fn streamed(events: &[StreamEvent], reasoning: bool) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) if !reasoning => Some(t.as_str()),
            StreamEvent::ReasoningDelta(t) if reasoning => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        call_id: CallId(id.into()),
        name: name.into(),
        arguments: arguments.into(),
    }
}

#[tokio::test]
async fn responses_reasoning_is_kept_verbatim_and_its_summary_streams() {
    let (response, events) = replay(Wire::Responses, "responses_reasoning_tool_call.sse").await;
    assert_eq!(
        streamed(&events, true),
        "**Inspecting the failing test**\n\nRunning the suite first."
    );
    let reasoning = json!({"id": "rs_68c1a", "type": "reasoning",
        "encrypted_content": "gAAAAABowB3xENCRYPTEDREASONING0001==",
        "summary": [{"type": "summary_text", "text": "**Inspecting the failing test**"},
                    {"type": "summary_text", "text": "Running the suite first."}]});
    let shell = call("call_Qm2X", "shell", r#"{"command":["cargo","test"]}"#);
    assert_eq!(
        response.output,
        [
            Item::Reasoning {
                wire: "responses".into(),
                item: reasoning
            },
            Item::ToolCall(shell.clone())
        ]
    );
    assert_eq!(response.tool_calls, [shell]);
    assert_eq!(response.text, "");
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 2210,
            cached_input_tokens: 1920,
            output_tokens: 188
        })
    );
    assert_eq!(response.ending, Ending::Complete);
}

#[tokio::test]
async fn responses_commentary_and_the_final_answer_stay_apart() {
    let (response, events) = replay(Wire::Responses, "responses_commentary_then_final.sse").await;
    // Streamed as two paragraphs, not "Got itHere are…".
    assert_eq!(
        streamed(&events, false),
        "Got it\n\nHere are a few options."
    );
    assert_eq!(response.text, "Here are a few options.");
    assert_eq!(
        response.output,
        [
            Item::Commentary {
                text: "Got it".into()
            },
            Item::Assistant {
                text: "Here are a few options.".into()
            }
        ]
    );
}

#[tokio::test]
async fn refusals_are_reported_on_every_wire() {
    for (wire, file, said) in [
        (
            Wire::Responses,
            "responses_refusal.sse",
            "I can't help with that.",
        ),
        (
            Wire::Chat,
            "chat_refusal.sse",
            "I'm sorry, I can't assist with that.",
        ),
        (
            Wire::Anthropic,
            "anthropic_refusal.sse",
            "I won't write that.",
        ),
    ] {
        let (response, _) = replay(wire, file).await;
        assert_eq!(
            response.ending,
            Ending::Refused { text: said.into() },
            "{file}"
        );
        assert!(response.tool_calls.is_empty());
    }
}

#[tokio::test]
async fn truncation_is_reported_on_every_wire() {
    for (wire, file, reason, text) in [
        (
            Wire::Responses,
            "responses_incomplete.sse",
            "max_output_tokens",
            "To get",
        ),
        (
            Wire::Chat,
            "chat_length.sse",
            "length",
            "The function reads the",
        ),
        (
            Wire::Anthropic,
            "anthropic_max_tokens.sse",
            "max_tokens",
            "Step one is to",
        ),
    ] {
        let (response, _) = replay(wire, file).await;
        assert_eq!(
            response.ending,
            Ending::Truncated {
                reason: reason.into()
            },
            "{file}"
        );
        assert_eq!(response.text, text, "{file}");
    }
    // The cut call comes back as cut (its JSON unfinished); the engine does not run it.
    let (response, _) = replay(Wire::Anthropic, "anthropic_max_tokens.sse").await;
    assert_eq!(
        response.tool_calls[0].arguments,
        r#"{"input": "*** Begin Pa"#
    );
}

#[tokio::test]
async fn chat_calls_without_index_are_told_apart_by_id() {
    let (response, _) = replay(Wire::Chat, "chat_calls_without_index.sse").await;
    assert_eq!(
        response.tool_calls,
        [
            call("function-call-1", "read_file", r#"{"path":"a.txt"}"#),
            call("function-call-2", "read_file", r#"{"path":"b.txt"}"#)
        ]
    );
}

#[tokio::test]
async fn anthropic_thinking_blocks_keep_their_signatures_in_order() {
    let (response, events) = replay(Wire::Anthropic, "anthropic_thinking_tool_use.sse").await;
    assert_eq!(
        streamed(&events, true),
        "The user wants the tests fixed. First run them."
    );
    let shell = call("toolu_01T1x", "shell", r#"{"command": ["npm", "test"]}"#);
    assert_eq!(
        response.output,
        [
            Item::Reasoning {
                wire: "anthropic".into(),
                item: json!({"type": "thinking",
                    "thinking": "The user wants the tests fixed. First run them.",
                    "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"})
            },
            Item::Reasoning {
                wire: "anthropic".into(),
                item: json!({"type": "redacted_thinking",
                    "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"})
            },
            Item::Assistant {
                text: "Running the tests.".into()
            },
            Item::ToolCall(shell.clone())
        ]
    );
    assert_eq!(response.tool_calls, [shell]);
    // Cached input counts as input: 472 uncached + 3100 read from cache.
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 3572,
            cached_input_tokens: 3100,
            output_tokens: 89
        })
    );
}

#[tokio::test]
async fn anthropic_input_usage_is_read_from_message_delta_too() {
    let (response, _) = replay(Wire::Anthropic, "anthropic_usage_in_message_delta.sse").await;
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 2554,
            cached_input_tokens: 1024,
            output_tokens: 4
        })
    );
}

#[tokio::test]
async fn json_bodies_are_read_as_whole_responses_on_every_wire() {
    let (response, events) = answer(
        Wire::Responses,
        Turn::json_body(&recorded("responses_body.json")),
    )
    .await;
    let response = response.unwrap();
    assert_eq!(response.text, "All tests pass.");
    // Shown although nothing of it streamed.
    assert_eq!(streamed(&events, false), "All tests pass.");
    assert!(
        matches!(&response.output[0], Item::Reasoning { item, .. } if item["encrypted_content"] == "gAAAAABjson==")
    );
    assert_eq!(response.usage.unwrap().output_tokens, 87);

    let (response, _) = answer(Wire::Chat, Turn::json_body(&recorded("chat_body.json"))).await;
    let response = response.unwrap();
    assert_eq!(
        response.tool_calls,
        [
            call("call_j1", "list_dir", r#"{"path":"."}"#),
            call("call_j2", "read_file", r#"{"path":"README.md"}"#)
        ]
    );
    assert_eq!(response.usage.unwrap().input_tokens, 321);

    let (response, events) = answer(
        Wire::Anthropic,
        Turn::json_body(&recorded("anthropic_body.json")),
    )
    .await;
    let response = response.unwrap();
    assert_eq!(response.text, "Listing files.");
    assert_eq!(streamed(&events, false), "Listing files.");
    assert_eq!(
        response.tool_calls,
        [call("toolu_01J", "list_dir", r#"{"path":"."}"#)]
    );
    assert!(matches!(&response.output[0], Item::Reasoning { item, .. }
        if item["signature"] == "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve"));
}

#[tokio::test]
async fn an_answer_that_is_neither_a_stream_nor_json_names_its_content_type() {
    let mut turn = Turn::replay("<html><body>Welcome to nginx!</body></html>");
    turn.raw.as_mut().unwrap().content_type = "text/html".into();
    let (result, _) = answer(Wire::Chat, turn).await;
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("content type `text/html`") && error.contains("base_url"),
        "{error}"
    );
    // Not retried: the same request gets the same page.
    let mut turn = Turn::json_body("{\"oops\": ");
    turn.raw.as_mut().unwrap().content_type = "application/json".into();
    let (result, _) = answer(Wire::Responses, turn).await;
    let error = result.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
}

/// A tool loop's history as a reasoning model leaves it, with a directive that arrived while the
/// call ran (between the call and its result).
fn loop_history(wire: &str) -> Vec<Item> {
    let reasoning = match wire {
        "responses" => json!({"id": "rs_1", "type": "reasoning", "summary": [],
            "encrypted_content": "gAAAA-one"}),
        _ => json!({"type": "thinking", "thinking": "Run them.", "signature": "sig-one"}),
    };
    vec![
        Item::User {
            text: "Fix the tests".into(),
        },
        Item::Reasoning {
            wire: wire.into(),
            item: reasoning,
        },
        Item::Commentary {
            text: "Running the tests first.".into(),
        },
        Item::ToolCall(call("call_1", "shell", r#"{"command":["npm","test"]}"#)),
        Item::ToolCall(call("call_2", "shell", r#"{"command":["git","status"]}"#)),
        Item::User {
            text: "[directive] Do not touch the database.".into(),
        },
        Item::ToolResult {
            call_id: CallId("call_1".into()),
            ok: false,
            output: "1 failing".into(),
            images: Vec::new(),
        },
        Item::ToolResult {
            call_id: CallId("call_2".into()),
            ok: true,
            output: "clean".into(),
            images: Vec::new(),
        },
    ]
}

fn with_reasoning(wire: &str, reasoning: Reasoning) -> ModelRequest {
    ModelRequest {
        items: loop_history(wire),
        reasoning,
        service_tier: Some("flex".into()),
        verbosity: Some("low".into()),
        ..request()
    }
}

#[test]
fn responses_sends_reasoning_back_in_place_with_its_settings() {
    let reasoning = Reasoning {
        effort: Some("high".into()),
        summary: Some("auto".into()),
        carry: true,
        thinking: None,
    };
    let body = cox_model::responses::body(&with_reasoning("responses", reasoning));
    insta::assert_snapshot!(
        "responses_reasoning_request",
        serde_json::to_string_pretty(&body).unwrap()
    );
    let types: Vec<&str> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    // The results follow their calls; the directive comes after them.
    assert_eq!(
        types,
        [
            "message",
            "reasoning",
            "message",
            "function_call",
            "function_call",
            "function_call_output",
            "function_call_output",
            "message"
        ]
    );
    // Without carrying (a model that does not reason), no reasoning goes out.
    let plain = cox_model::responses::body(&with_reasoning("responses", Reasoning::default()));
    assert!(plain.get("include").is_none() && plain.get("reasoning").is_none());
    assert!(!plain.to_string().contains("gAAAA-one"));
}

#[test]
fn anthropic_sends_signed_thinking_back_in_its_turn_and_caches_the_prefix() {
    let reasoning = Reasoning {
        thinking: Some(Thinking::Budget(20_000)),
        ..Reasoning::default()
    };
    let request = with_reasoning("anthropic", reasoning);
    let body = cox_model::anthropic::body(&request);
    insta::assert_snapshot!(
        "anthropic_thinking_request",
        serde_json::to_string_pretty(&body).unwrap()
    );
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 20000})
    );
    // max_tokens must exceed the budget.
    assert!(body["max_tokens"].as_u64().unwrap() > 20_000);
    assert_eq!(
        cox_model::anthropic::headers(&request),
        [(
            "anthropic-beta",
            cox_model::anthropic::INTERLEAVED_THINKING.to_string()
        )]
    );
    let messages = body["messages"].as_array().unwrap();
    // user; assistant [thinking, commentary, tool_use, tool_use]; user [results…, directive].
    assert_eq!(messages.len(), 3);
    let kinds = |m: &Value| -> Vec<String> {
        m["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        kinds(&messages[1]),
        ["thinking", "text", "tool_use", "tool_use"]
    );
    assert_eq!(kinds(&messages[2]), ["tool_result", "tool_result", "text"]);
    assert_eq!(messages[1]["content"][0]["signature"], "sig-one");
    // Breakpoints: the system prompt, the newest message, and where the previous request ended.
    assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
    assert_eq!(
        messages[2]["content"][2]["cache_control"]["type"],
        "ephemeral"
    );
    assert_eq!(
        messages[0]["content"][0]["cache_control"]["type"],
        "ephemeral"
    );
    assert_eq!(body.to_string().matches("cache_control").count(), 3);
    // Thinking off: no thinking block goes back, and no beta header.
    let off = with_reasoning("anthropic", Reasoning::default());
    assert!(
        !cox_model::anthropic::body(&off)
            .to_string()
            .contains("sig-one")
    );
    assert!(cox_model::anthropic::headers(&off).is_empty());
    let adaptive = Reasoning {
        thinking: Some(Thinking::Adaptive),
        ..Reasoning::default()
    };
    assert_eq!(
        cox_model::anthropic::body(&with_reasoning("anthropic", adaptive))["thinking"],
        json!({"type": "adaptive"})
    );
}

#[test]
fn chat_puts_tool_messages_straight_after_the_calls_and_sends_the_effort() {
    let reasoning = Reasoning {
        effort: Some("low".into()),
        ..Reasoning::default()
    };
    let body = cox_model::chat::body(&with_reasoning("responses", reasoning));
    insta::assert_snapshot!(
        "chat_reasoning_request",
        serde_json::to_string_pretty(&body).unwrap()
    );
    assert_eq!(body["reasoning_effort"], "low");
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    // OpenAI-compatible servers reject a user message between `tool_calls` and its `tool`s.
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "tool", "user"]
    );
    assert!(!body.to_string().contains("gAAAA-one"));
}
