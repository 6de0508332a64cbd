//! Every wire format against the scripted mock model: streamed text, tool calls whose arguments
//! arrive in pieces, two calls in one response, usage, the request body (snapshot), and each fault.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cox_model::{
    Endpoint, ModelError, ModelRequest, ModelResponse, RetryPolicy, Secret, StreamEvent, Wire,
};
use cox_protocol::{CallId, ErrorKind, Item, SessionId, ToolCall, ToolSpec};
use cox_testkit::{Fault, MockServer, Script, Turn};
use serde_json::json;
use tokio::sync::mpsc;

const KEY: &str = "sk-test-0123456789abcdef";
const WIRES: [Wire; 3] = [Wire::Responses, Wire::Chat, Wire::Anthropic];

fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        idle_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_secs(20),
    }
}

fn request() -> ModelRequest {
    ModelRequest {
        model: "test-model".into(),
        instructions: "You are a test.".into(),
        items: vec![
            Item::User {
                text: "Count the lines of README.md".into(),
            },
            Item::Assistant {
                text: "Reading it.".into(),
            },
            Item::ToolCall(ToolCall {
                call_id: CallId("call_1".into()),
                name: "shell".into(),
                arguments: r#"{"command":["wc","-l","README.md"]}"#.into(),
            }),
            Item::ToolResult {
                call_id: CallId("call_1".into()),
                ok: true,
                output: "exit code: 0\noutput:\n2 README.md".into(),
                images: Vec::new(),
            },
            Item::User {
                text: "And now?".into(),
            },
        ],
        tools: vec![ToolSpec {
            name: "shell".into(),
            description: "Runs a command.".into(),
            parameters: json!({"type": "object", "properties": {"command": {"type": "array"}}, "required": ["command"]}),
        }],
        session_id: SessionId("0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000".into()),
        max_output_tokens: None,
        output_schema: None,
        reasoning: Default::default(),
        service_tier: None,
        verbosity: None,
    }
}

fn base_url(server: &MockServer, wire: Wire) -> String {
    match wire {
        Wire::Anthropic => server.url(),
        Wire::Responses | Wire::Chat => format!("{}/v1", server.url()),
    }
}

async fn run(
    wire: Wire,
    server: &MockServer,
    policy: RetryPolicy,
) -> (Result<ModelResponse, ModelError>, Vec<StreamEvent>) {
    let endpoint = Endpoint {
        provider: "test".into(),
        wire,
        base_url: base_url(server, wire),
        api_key: Some(Secret::new(KEY)),
    };
    let client = cox_model::client(endpoint, policy).expect("client");
    let (tx, mut rx) = mpsc::channel(1024);
    let request = request();
    let result = client.stream(&request, tx).await;
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    (result, events)
}

fn texts(events: &[StreamEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn retries(events: &[StreamEvent]) -> Vec<(u32, Duration)> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Retrying { attempt, delay, .. } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn streams_text_deltas_and_usage() {
    for wire in WIRES {
        let turn = Turn::text(&["Hel", "lo, ", "world"]).with_usage(1200, 1000, 35);
        let server = MockServer::start(Script { turns: vec![turn] }).unwrap();
        let (result, events) = run(wire, &server, quick_policy()).await;
        let response = result.unwrap_or_else(|e| panic!("{wire:?}: {e}"));
        assert_eq!(texts(&events), ["Hel", "lo, ", "world"], "{wire:?}");
        assert_eq!(response.text, "Hello, world", "{wire:?}");
        assert!(response.tool_calls.is_empty());
        let usage = response.usage.expect("usage");
        assert_eq!(
            (
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens
            ),
            (1200, 1000, 35),
            "{wire:?}"
        );
    }
}

#[tokio::test]
async fn tool_call_arguments_in_pieces_and_two_calls_in_one_response() {
    for wire in WIRES {
        let turn = Turn::text(&["Checking."])
            .with_call(
                "shell",
                r#"{"command":["cat","README.md"],"timeout_ms":5000}"#,
                7,
            )
            .with_call("read_file", r#"{"path":"src/main.rs"}"#, 3);
        let server = MockServer::start(Script { turns: vec![turn] }).unwrap();
        let (result, _) = run(wire, &server, quick_policy()).await;
        let response = result.unwrap_or_else(|e| panic!("{wire:?}: {e}"));
        assert_eq!(response.text, "Checking.");
        let calls: Vec<(&str, &str, &str)> = response
            .tool_calls
            .iter()
            .map(|c| (c.call_id.0.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                (
                    "call_1_0",
                    "shell",
                    r#"{"command":["cat","README.md"],"timeout_ms":5000}"#
                ),
                ("call_1_1", "read_file", r#"{"path":"src/main.rs"}"#),
            ],
            "{wire:?}"
        );
    }
}

#[tokio::test]
async fn request_bodies_match_each_wire_format() {
    for wire in WIRES {
        let server = MockServer::start(Script {
            turns: vec![Turn::text(&["ok"])],
        })
        .unwrap();
        let (result, _) = run(wire, &server, quick_policy()).await;
        result.unwrap_or_else(|e| panic!("{wire:?}: {e}"));
        let recorded = &server.requests()[0];
        match wire {
            Wire::Responses => assert_eq!(recorded.path, "/v1/responses"),
            Wire::Chat => assert_eq!(recorded.path, "/v1/chat/completions"),
            Wire::Anthropic => assert_eq!(recorded.path, "/v1/messages"),
        }
        match wire {
            Wire::Anthropic => {
                assert_eq!(
                    recorded.headers.get("x-api-key").map(String::as_str),
                    Some(KEY)
                );
                assert_eq!(
                    recorded
                        .headers
                        .get("anthropic-version")
                        .map(String::as_str),
                    Some("2023-06-01")
                );
                assert!(!recorded.headers.contains_key("authorization"));
            }
            Wire::Responses | Wire::Chat => {
                let expected = format!("Bearer {KEY}");
                assert_eq!(recorded.headers.get("authorization"), Some(&expected));
            }
        }
        let body = serde_json::to_string_pretty(&recorded.body).unwrap();
        assert!(!body.contains(KEY), "the key must never be in a body");
        insta::assert_snapshot!(format!("request_body_{}", wire.as_str()), body);
    }
}

#[tokio::test]
async fn rate_limit_honours_retry_after_then_succeeds() {
    for wire in WIRES {
        let limited = Turn::default().with_fault(Fault::Status {
            status: 429,
            retry_after: Some("0.2".into()),
            message: None,
        });
        let server = MockServer::start(Script {
            turns: vec![limited, Turn::text(&["done"])],
        })
        .unwrap();
        let (result, events) = run(wire, &server, quick_policy()).await;
        assert_eq!(result.unwrap().text, "done", "{wire:?}");
        assert_eq!(
            retries(&events),
            [(1, Duration::from_millis(200))],
            "{wire:?}"
        );
        assert_eq!(server.requests().len(), 2);
    }
}

#[tokio::test]
async fn rate_limit_delay_read_from_try_again_message() {
    let limited = Turn::default().with_fault(Fault::Status {
        status: 429,
        retry_after: None,
        message: Some("Rate limit reached for gpt-5.3-codex. Please try again in 150ms.".into()),
    });
    let server = MockServer::start(Script {
        turns: vec![limited, Turn::text(&["done"])],
    })
    .unwrap();
    let (result, events) = run(Wire::Responses, &server, quick_policy()).await;
    assert_eq!(result.unwrap().text, "done");
    assert_eq!(retries(&events), [(1, Duration::from_millis(150))]);
}

#[tokio::test]
async fn server_error_is_retried_with_backoff_until_the_bound() {
    for wire in WIRES {
        let failing = || {
            Turn::default().with_fault(Fault::Status {
                status: 500,
                retry_after: None,
                message: None,
            })
        };
        let server = MockServer::start(Script {
            turns: vec![
                failing(),
                failing(),
                failing(),
                failing(),
                Turn::text(&["late"]),
            ],
        })
        .unwrap();
        let (result, events) = run(wire, &server, quick_policy()).await;
        let error = result.expect_err("four 500s exceed three retries");
        assert_eq!(error.kind(), ErrorKind::Transient, "{wire:?}");
        assert!(error.to_string().contains("HTTP 500"), "{error}");
        assert_eq!(
            retries(&events).iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(server.requests().len(), 4, "one attempt and three retries");
    }
}

#[tokio::test]
async fn auth_failure_is_not_retried_and_never_shows_the_key() {
    for wire in WIRES {
        let denied = Turn::default().with_fault(Fault::Status {
            status: 401,
            retry_after: None,
            message: Some(format!("Incorrect API key provided: {KEY}.")),
        });
        let server = MockServer::start(Script {
            turns: vec![denied, Turn::text(&["never"])],
        })
        .unwrap();
        let (result, events) = run(wire, &server, quick_policy()).await;
        let error = result.expect_err("401");
        assert_eq!(error.kind(), ErrorKind::Auth);
        assert!(!error.to_string().contains(KEY), "{error}");
        assert!(error.to_string().contains("sk-…cdef"), "{error}");
        assert!(retries(&events).is_empty());
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn context_overflow_is_classified() {
    let overflow = Turn::default().with_fault(Fault::Status {
        status: 400,
        retry_after: None,
        message: Some("This model's maximum context length is 400000 tokens.".into()),
    });
    let server = MockServer::start(Script {
        turns: vec![overflow],
    })
    .unwrap();
    let (result, _) = run(Wire::Chat, &server, quick_policy()).await;
    assert_eq!(
        result.expect_err("overflow").kind(),
        ErrorKind::ContextOverflow
    );
}

/// The dropped, malformed and stalled attempts all stream a tool call before failing; only the
/// call of the completed retry may come out.
#[tokio::test]
async fn broken_streams_are_retried_whole_and_their_calls_discarded() {
    let faults = [
        Fault::DropMidStream,
        Fault::MalformedSse,
        Fault::Stall { ms: 1500 },
    ];
    for wire in WIRES {
        for fault in faults.clone() {
            let broken = Turn::text(&["partial"])
                .with_call("shell", r#"{"command":"echo first >> side-effect.txt"}"#, 2)
                .with_fault(fault.clone());
            let good = Turn::text(&["whole"]).with_call("shell", r#"{"command":"echo second"}"#, 2);
            let server = MockServer::start(Script {
                turns: vec![broken, good],
            })
            .unwrap();
            let (result, events) = run(wire, &server, quick_policy()).await;
            let response = result.unwrap_or_else(|e| panic!("{wire:?} {fault:?}: {e}"));
            assert_eq!(response.text, "whole", "{wire:?} {fault:?}");
            assert_eq!(response.tool_calls.len(), 1);
            assert_eq!(
                response.tool_calls[0].arguments,
                r#"{"command":"echo second"}"#
            );
            assert_eq!(retries(&events).len(), 1, "{wire:?} {fault:?}");
            assert_eq!(server.requests().len(), 2);
        }
    }
}

#[tokio::test]
async fn stall_reports_the_idle_timeout() {
    let stalled = Turn::text(&["partial"]).with_fault(Fault::Stall { ms: 2000 });
    let server = MockServer::start(Script {
        turns: vec![stalled],
    })
    .unwrap();
    let policy = RetryPolicy {
        max_retries: 0,
        ..quick_policy()
    };
    let (result, _) = run(Wire::Responses, &server, policy).await;
    let error = result.expect_err("stall");
    assert!(matches!(error, ModelError::Idle(_)), "{error}");
    assert!(error.to_string().contains("no event for 0.3s"), "{error}");
}

/// Issue 14: keep-alive comments every 50 ms used to reset the idle timer forever.
#[tokio::test]
async fn keep_alive_comments_do_not_count_as_activity_issue_14() {
    for wire in [Wire::Responses, Wire::Chat, Wire::Anthropic] {
        let alive = Turn::text(&["partial"]).with_fault(Fault::KeepAlive {
            ms: 5000,
            every_ms: 50,
        });
        let server = MockServer::start(Script { turns: vec![alive] }).unwrap();
        let policy = RetryPolicy {
            max_retries: 0,
            ..quick_policy()
        };
        let started = std::time::Instant::now();
        let (result, _) = run(wire, &server, policy).await;
        let error = result.expect_err("only comments after the text");
        assert!(matches!(error, ModelError::Idle(_)), "{wire:?}: {error}");
        // Ended by the idle timer (300 ms), not by the server closing after 5 s.
        assert!(started.elapsed() < Duration::from_secs(4), "{wire:?}");
        assert!(error.is_retryable());
    }
}

/// Issue 14: a response that keeps sending events but never completes ends at the total
/// deadline, as a retryable error; the retry then gets the whole answer.
#[tokio::test]
async fn a_response_that_never_completes_ends_at_the_total_deadline_issue_14() {
    let endless = Turn {
        text: (0..400).map(|n| format!("{n} ")).collect(),
        delay_ms: 20,
        ..Turn::default()
    };
    let server = MockServer::start(Script {
        turns: vec![endless, Turn::text(&["whole"])],
    })
    .unwrap();
    let policy = RetryPolicy {
        max_retries: 1,
        total_timeout: Duration::from_millis(600),
        ..quick_policy()
    };
    let (result, events) = run(Wire::Responses, &server, policy).await;
    assert_eq!(result.expect("retried after the deadline").text, "whole");
    let reasons: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Retrying { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("stream_total_timeout_ms"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn invalid_tool_arguments_are_passed_through_verbatim() {
    for wire in [Wire::Responses, Wire::Chat] {
        let turn = Turn::call("shell", r#"{"command": ["ls", "#);
        let server = MockServer::start(Script { turns: vec![turn] }).unwrap();
        let (result, _) = run(wire, &server, quick_policy()).await;
        let response = result.unwrap();
        assert_eq!(
            response.tool_calls[0].arguments, r#"{"command": ["ls", "#,
            "{wire:?}"
        );
    }
}

#[tokio::test]
async fn connection_refused_is_a_transient_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let endpoint = Endpoint {
        provider: "test".into(),
        wire: Wire::Chat,
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: None,
    };
    let policy = RetryPolicy {
        max_retries: 1,
        ..quick_policy()
    };
    let client = cox_model::client(endpoint, policy).unwrap();
    let (tx, _rx) = mpsc::channel(16);
    let error = client.stream(&request(), tx).await.expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    assert!(
        error.to_string().to_lowercase().contains("refused"),
        "{error}"
    );
}
