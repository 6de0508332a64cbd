//! The session actor driven directly through its handle, as a front end would: ops in, events out.

use cox_core::session::{self, SessionConfig};
use cox_model::{Endpoint, RetryPolicy, Wire};
use cox_protocol::{Event, Op, SessionStatus};
use cox_testkit::{MockServer, Script, Turn};

fn start(server: &MockServer, dir: &std::path::Path, interactive: bool) -> cox_core::SessionHandle {
    start_with_grants(server, dir, interactive, None)
}

fn start_with_grants(
    server: &MockServer,
    dir: &std::path::Path,
    interactive: bool,
    grants: Option<session::GrantStore>,
) -> cox_core::SessionHandle {
    let endpoint = Endpoint {
        provider: "mock".into(),
        wire: Wire::Chat,
        base_url: format!("{}/v1", server.url()),
        api_key: None,
    };
    let client = cox_model::client(endpoint, RetryPolicy::default()).unwrap();
    let mut settings = crate::mock_config(&dir.join("home"), server);
    settings.max_turns = 10;
    settings.tool_output_max_bytes = 4096;
    let options = cox_core::RunOptions {
        interactive,
        ..cox_core::RunOptions::default()
    };
    let config = SessionConfig {
        settings,
        options,
        cwd: fs_err::canonicalize(dir).unwrap(),
        context_window: 100_000,
        context_window_assumed: false,
        writable_roots: vec![fs_err::canonicalize(dir).unwrap()],
        credentials: Default::default(),
        sandbox: None,
        unconfined: None,
        protected: Vec::new(),
        rules: Default::default(),
        approval: cox_core::ApprovalPolicy::OnRequest,
        grants,
        notes: Vec::new(),
        loopback: None,
        tcp_ruleset: None,
        mcp: None,
        login_env: None,
    };
    let id = session::new_id();
    let header = cox_core::journal::Record::Session {
        version: cox_core::journal::VERSION,
        id: id.clone(),
        created: "2026-11-25T00:00:00Z".into(),
        cwd: dir.display().to_string(),
        provider: "mock".into(),
        model: "mock-model".into(),
    };
    let journal = cox_core::journal::Journal::create(dir, &header, Vec::new()).unwrap();
    session::spawn(
        id,
        config,
        client,
        cox_tools::ToolRegistry::standard(),
        journal,
        session::Start::default(),
    )
}

#[tokio::test]
async fn ask_user_waits_for_the_persons_answer() {
    let dir = tempfile::tempdir().unwrap();
    let turns = vec![
        Turn::call("ask_user", r#"{"question":"Which port?"}"#),
        Turn::text(&["Using 8080."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut session = start(&server, dir.path(), true);
    session
        .submit(Op::UserInput {
            text: "start the server".into(),
        })
        .await;
    session.submit(Op::Shutdown).await;
    let mut asked = None;
    let status = loop {
        let event = session
            .next_event()
            .await
            .expect("events until completion")
            .event;
        match event {
            Event::QuestionAsked { call_id, question } => {
                assert_eq!(question, "Which port?");
                asked = Some(call_id.clone());
                session
                    .submit(Op::Answer {
                        call_id,
                        text: "8080".into(),
                    })
                    .await;
            }
            Event::SessionCompleted { status, answer, .. } => {
                assert_eq!(answer.as_deref(), Some("Using 8080."));
                break status;
            }
            _ => {}
        }
    };
    assert_eq!(status, SessionStatus::Completed);
    assert!(asked.is_some());
    let messages = server.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool["content"], "The person answered: 8080");
}

#[tokio::test]
async fn interrupt_while_waiting_for_an_answer_ends_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let turns = vec![
        Turn::call("ask_user", r#"{"question":"Proceed?"}"#),
        Turn::text(&["never"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut session = start(&server, dir.path(), true);
    session.submit(Op::UserInput { text: "go".into() }).await;
    session.submit(Op::Shutdown).await;
    let status = loop {
        match session.next_event().await.expect("events").event {
            Event::QuestionAsked { .. } => {
                session.submit(Op::Interrupt).await;
            }
            Event::SessionCompleted { status, .. } => break status,
            _ => {}
        }
    };
    assert_eq!(status, SessionStatus::Interrupted);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn compact_on_request_elides_old_outputs_before_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let big = |n: u32| Turn::call("shell", &format!(r#"{{"command":["seq","1","{n}"]}}"#));
    let turns = vec![
        big(300),
        big(2),
        big(3),
        Turn::text(&["First done."]),
        Turn::text(&["Second done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut session = start(&server, dir.path(), false);
    session
        .submit(Op::UserInput {
            text: "first".into(),
        })
        .await;
    let mut compactions = Vec::new();
    loop {
        match session.next_event().await.expect("events").event {
            Event::AgentMessage { text } if text == "First done." => {
                // Asked for between tasks: applies before the next request.
                session.submit(Op::Compact).await;
                session
                    .submit(Op::UserInput {
                        text: "second".into(),
                    })
                    .await;
                session.submit(Op::Shutdown).await;
            }
            Event::Compacted {
                reason,
                outputs_elided,
                ..
            } => compactions.push((reason, outputs_elided)),
            Event::SessionCompleted { status, .. } => {
                assert_eq!(status, SessionStatus::Completed);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(compactions.len(), 1, "{compactions:?}");
    assert_eq!(compactions[0].0, cox_protocol::CompactReason::Requested);
    let requests = server.requests();
    let elided = requests
        .iter()
        .filter(|r| {
            r.body
                .to_string()
                .contains("[output elided when the context was compacted")
        })
        .count();
    assert!(elided >= 1, "no request carried an elided output");
}

#[tokio::test]
async fn escalation_is_asked_for_and_a_session_grant_covers_the_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let escalated = r#"{"command":["sh","-c","echo out > escalated.txt"],"with_escalated_permissions":true,"justification":"needs to"}"#;
    let turns = vec![
        Turn::call("shell", escalated),
        Turn::call("shell", escalated),
        Turn::text(&["Done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut session = start(&server, dir.path(), true);
    session.submit(Op::UserInput { text: "go".into() }).await;
    session.submit(Op::Shutdown).await;
    let mut asked = 0;
    loop {
        match session.next_event().await.expect("events").event {
            Event::ApprovalRequested {
                call_id,
                action,
                reason,
            } => {
                asked += 1;
                assert_eq!(
                    action, "echo out > escalated.txt",
                    "the script `sh -c` runs"
                );
                assert_eq!(reason, "the command asks to run outside the sandbox");
                let decision = cox_protocol::ApprovalDecision::Session;
                session.submit(Op::Approve { call_id, decision }).await;
            }
            Event::SessionCompleted { status, .. } => {
                assert_eq!(status, SessionStatus::Completed);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(asked, 1, "the session grant covered the second call");
    assert!(dir.path().join("escalated.txt").exists());
}

#[tokio::test]
async fn a_declined_approval_reaches_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let escalated = r#"{"command":["rm","-rf","build"],"with_escalated_permissions":true}"#;
    let turns = vec![
        Turn::call("shell", escalated),
        Turn::text(&["OK, not deleting."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut session = start(&server, dir.path(), true);
    session
        .submit(Op::UserInput {
            text: "clean".into(),
        })
        .await;
    session.submit(Op::Shutdown).await;
    loop {
        match session.next_event().await.expect("events").event {
            Event::ApprovalRequested { call_id, .. } => {
                let decision = cox_protocol::ApprovalDecision::Deny {
                    reason: Some("keep the build".into()),
                };
                session.submit(Op::Approve { call_id, decision }).await;
            }
            Event::SessionCompleted { .. } => break,
            _ => {}
        }
    }
    let messages = server.requests()[1].body["messages"].to_string();
    assert!(
        messages.contains("not run: the person declined: keep the build"),
        "{messages}"
    );
}

/// "Yes for this project" is kept in the cox home, keyed by the project, never in the workspace;
/// the next session of the project finds it and does not ask again.
#[tokio::test]
async fn a_project_grant_is_kept_outside_the_workspace_and_holds_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let root = fs_err::canonicalize(dir.path()).unwrap();
    let store = session::GrantStore {
        projects: cox_core::projects::Projects::new(home.path()),
        root: root.clone(),
    };
    let escalated = r#"{"command":["make","deploy"],"with_escalated_permissions":true}"#;
    let mut asked = 0;
    for round in 0..2 {
        let turns = vec![Turn::call("shell", escalated), Turn::text(&["Done."])];
        let server = MockServer::start(Script { turns }).unwrap();
        let mut session = start_with_grants(&server, dir.path(), true, Some(store.clone()));
        session.submit(Op::UserInput { text: "go".into() }).await;
        session.submit(Op::Shutdown).await;
        loop {
            match session.next_event().await.expect("events").event {
                Event::ApprovalRequested { call_id, .. } => {
                    asked += 1;
                    assert_eq!(round, 0, "asked again in the second session");
                    let decision = cox_protocol::ApprovalDecision::Project;
                    session.submit(Op::Approve { call_id, decision }).await;
                }
                Event::SessionCompleted { .. } => break,
                _ => {}
            }
        }
    }
    assert_eq!(asked, 1);
    let project = store.projects.get(&root).unwrap();
    assert_eq!(project.grants, [["make", "deploy"]]);
    assert!(
        !dir.path().join(".cox").exists(),
        "nothing written in the workspace"
    );
}
