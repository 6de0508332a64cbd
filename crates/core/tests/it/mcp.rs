//! MCP through the engine's handle, where a person answers: an elicitation from the reference
//! server (`@modelcontextprotocol/server-everything`) reaches the person as a question and their
//! answer reaches the server; an interrupt ends a call a hostile server never finishes.
//! `scripts/test` installs the servers under `target/test-tools`.

use std::path::{Path, PathBuf};

use cox_core::{RunOptions, Sandbox, SandboxMode};
use cox_protocol::{Event, Op};
use cox_testkit::{MockServer, Script, Turn};

fn tools() -> PathBuf {
    std::env::var_os("COX_TEST_TOOLS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools"),
        PathBuf::from,
    )
}

const HOW: &str = "scripts/test installs the MCP servers under target/test-tools (npm and PyPI)";

/// A session with these `[mcp_servers]` against the scripted model, a person there to answer.
fn start(server: &MockServer, servers: &str) -> (tempfile::TempDir, cox_core::SessionHandle) {
    start_with(server, servers, |_| {})
}

fn start_with(
    server: &MockServer,
    servers: &str,
    change: impl FnOnce(&mut RunOptions),
) -> (tempfile::TempDir, cox_core::SessionHandle) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let repo = dir.path().join("repo");
    fs_err::create_dir_all(&repo).unwrap();
    let mut config = crate::mock_config(&home, server);
    let file: cox_core::config::ConfigFile = toml::from_str(servers).unwrap();
    config.mcp_servers = cox_core::config::mcp_servers(&file.mcp_servers).unwrap();
    let options = RunOptions {
        interactive: true,
        one_shot: true,
        // The OS sandbox re-executes the cox binary, which a test binary is not (the binary's
        // tests run servers sandboxed).
        sandbox: Sandbox {
            mode: SandboxMode::FullAccess,
            ..Sandbox::default()
        },
        ..RunOptions::default()
    };
    let mut options = options;
    change(&mut options);
    let handle = cox_core::start(&config, repo, options).unwrap();
    (dir, handle)
}

#[tokio::test]
async fn a_servers_question_reaches_the_person_and_the_answer_reaches_the_server() {
    let everything = tools().join("mcp/node_modules/.bin/mcp-server-everything");
    if !cox_testkit::outside_tool(&everything.display().to_string(), HOW) {
        return;
    }
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call("everything__trigger-elicitation-request", "{}"),
            Turn::text(&["Thanks."]),
        ],
    })
    .unwrap();
    let servers = format!(
        "[mcp_servers.everything]\ncommand = \"{}\"\ntrusted = true\n",
        everything.display()
    );
    let (_dir, mut handle) = start(&server, &servers);
    handle
        .submit(Op::UserInput {
            text: "ask me".into(),
        })
        .await;
    let mut asked = None;
    while let Some(envelope) = handle.next_event().await {
        match envelope.event {
            Event::QuestionAsked { call_id, question } => {
                asked = Some(question);
                handle
                    .submit(Op::Answer {
                        call_id,
                        text: "Ada Lovelace".into(),
                    })
                    .await;
            }
            Event::SessionCompleted { .. } => break,
            _ => {}
        }
    }
    let asked = asked.expect("the server's question was asked");
    assert!(
        asked.contains("MCP server `everything` asks: Please provide inputs"),
        "{asked}"
    );
    assert!(asked.contains("`name` (string, required)"), "{asked}");
    let result = server.requests()[1].body.to_string();
    assert!(
        result.contains("User provided the requested information"),
        "{result}"
    );
    assert!(result.contains("Name: Ada Lovelace"), "{result}");
}

#[tokio::test]
async fn an_interrupt_ends_a_call_the_server_never_finishes() {
    let python = tools().join("venv/bin/python");
    if !cox_testkit::outside_tool(&python.display().to_string(), HOW) {
        return;
    }
    let hostile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/fixtures/mcp/hostile.py");
    let marker = tempfile::tempdir().unwrap();
    let started = marker.path().join("started");
    let arguments = serde_json::json!({"seconds": 600, "started": started.display().to_string()});
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call("hostile__slow", &arguments.to_string()),
            Turn::text(&["unreached"]),
        ],
    })
    .unwrap();
    let servers = format!(
        "[mcp_servers.hostile]\ncommand = \"{}\"\nargs = [\"{}\"]\ntrusted = true\n",
        python.display(),
        hostile.display()
    );
    let (_dir, mut handle) = start(&server, &servers);
    handle
        .submit(Op::UserInput {
            text: "wait".into(),
        })
        .await;
    let mut output = None;
    while let Some(envelope) = handle.next_event().await {
        match envelope.event {
            // Interrupted once the server is inside the call (it says so with the file).
            Event::ToolCall { .. } => {
                while !started.exists() {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                handle.submit(Op::Interrupt).await;
            }
            Event::ToolResult { output: text, .. } => output = Some(text),
            Event::TaskCompleted { .. } => {
                handle.submit(Op::Shutdown).await;
            }
            Event::SessionCompleted { .. } => break,
            _ => {}
        }
    }
    let output = output.expect("the call ended");
    assert!(
        output.contains("interrupted by the user; the server was told to stop"),
        "{output}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "nothing more was asked of the model"
    );
}

#[tokio::test]
async fn an_untrusted_servers_tool_is_asked_about_and_a_session_grant_holds() {
    let everything = tools().join("mcp/node_modules/.bin/mcp-server-everything");
    if !cox_testkit::outside_tool(&everything.display().to_string(), HOW) {
        return;
    }
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call("everything__echo", r#"{"message": "one"}"#),
            Turn::call("everything__echo", r#"{"message": "two"}"#),
            Turn::call("everything__get-sum", r#"{"a": 1, "b": 2}"#),
            Turn::text(&["Done."]),
        ],
    })
    .unwrap();
    let servers = format!(
        "[mcp_servers.everything]\ncommand = \"{}\"\n",
        everything.display()
    );
    let (_dir, mut handle) = start(&server, &servers);
    handle
        .submit(Op::UserInput {
            text: "echo".into(),
        })
        .await;
    let mut asked = Vec::new();
    let mut results = Vec::new();
    while let Some(envelope) = handle.next_event().await {
        match envelope.event {
            Event::ApprovalRequested {
                call_id,
                action,
                reason,
            } => {
                assert!(reason.contains("trusted_tools"), "{reason}");
                let decision = if action.ends_with("echo") {
                    cox_protocol::ApprovalDecision::Session
                } else {
                    cox_protocol::ApprovalDecision::Deny {
                        reason: Some("not now".into()),
                    }
                };
                asked.push(action);
                handle.submit(Op::Approve { call_id, decision }).await;
            }
            Event::ToolResult { output, .. } => results.push(output),
            Event::SessionCompleted { .. } => break,
            _ => {}
        }
    }
    // Asked once for echo (the session grant covers the second call), once for get-sum.
    assert_eq!(asked, ["call everything.echo", "call everything.get-sum"]);
    assert_eq!(results[0], "Echo: one");
    assert_eq!(results[1], "Echo: two");
    assert_eq!(results[2], "not run: the person declined: not now");
}

/// With steering on, an MCP call is announced and held for the grace window like a command, and
/// a directive in the window keeps it from running.
#[tokio::test]
async fn a_steer_in_the_grace_window_keeps_an_mcp_call_from_running() {
    let python = tools().join("venv/bin/python");
    if !cox_testkit::outside_tool(&python.display().to_string(), HOW) {
        return;
    }
    let hostile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/fixtures/mcp/hostile.py");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("written");
    let arguments = serde_json::json!({"path": target.display().to_string(), "text": "x"});
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call("hostile__write", &arguments.to_string()),
            Turn::text(&["Understood."]),
        ],
    })
    .unwrap();
    let servers = format!(
        "[mcp_servers.hostile]\ncommand = \"{}\"\nargs = [\"{}\"]\ntrusted = true\n",
        python.display(),
        hostile.display()
    );
    let (_dir, mut handle) = start_with(&server, &servers, |options| {
        options.steerable = true;
        // Long enough that only the directive ends it.
        options.steer_grace_ms = 60_000;
    });
    handle
        .submit(Op::UserInput {
            text: "write".into(),
        })
        .await;
    let mut pending = None;
    let mut output = None;
    while let Some(envelope) = handle.next_event().await {
        match envelope.event {
            Event::ActionPending { name, .. } => {
                pending = Some(name);
                handle
                    .submit(Op::Steer {
                        text: "do not write anything".into(),
                    })
                    .await;
            }
            Event::ToolResult { output: text, .. } => output = Some(text),
            Event::SessionCompleted { .. } => break,
            _ => {}
        }
    }
    assert_eq!(pending.as_deref(), Some("hostile__write"));
    let output = output.expect("the call ended");
    assert!(output.contains("not run: the user steered"), "{output}");
    assert!(!target.exists(), "the held call ran");
}
