//! A plan run driven through the engine's handle, not the binary: the same ops in and events out
//! as a session, with the run's own events, structured step outcomes and checks.

use cox_core::run::{CheckSettings, Checks, RunSpec};
use cox_core::{Config, RunOptions, Sandbox, SandboxMode};
use cox_protocol::{CheckKind, Event, FileChange, Op, SessionStatus, StepState};
use cox_testkit::{MockServer, Script, Turn};

const PLAN: &str = r#"{
  "goal": "Tidy the notes",
  "steps": [
    {"id": "S1", "title": "Add a heading to notes.txt"},
    {"id": "S2", "title": "Delete the notes", "depends_on": ["S1"]}
  ]
}"#;

struct Place {
    _dir: tempfile::TempDir,
    config: Config,
    repo: std::path::PathBuf,
}

fn place(server: &MockServer) -> Place {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let repo = dir.path().join("repo");
    fs_err::create_dir_all(&repo).unwrap();
    let config = crate::mock_config(&home, server);
    fs_err::write(repo.join("notes.txt"), "buy milk\n").unwrap();
    fs_err::write(repo.join("plan.json"), PLAN).unwrap();
    let repo = fs_err::canonicalize(repo).unwrap();
    Place {
        _dir: dir,
        config,
        repo,
    }
}

fn spec(place: &Place, checks: Checks) -> RunSpec {
    let path = place.repo.join("plan.json");
    let plan = cox_core::plan::parse(&fs_err::read_to_string(&path).unwrap()).unwrap();
    RunSpec {
        path,
        plan,
        cwd: place.repo.clone(),
        target: None,
        checks,
        options: RunOptions {
            // The OS sandbox re-executes the cox binary, which a test binary is not; the
            // binary's tests cover checks in the sandbox.
            sandbox: Sandbox {
                mode: SandboxMode::FullAccess,
                ..Sandbox::default()
            },
            ..RunOptions::default()
        },
    }
}

async fn events_of(handle: &mut cox_core::SessionHandle) -> Vec<Event> {
    let mut events = Vec::new();
    let mut last = 0;
    while let Some(envelope) = handle.next_event().await {
        assert!(envelope.seq > last, "one increasing seq across the run");
        last = envelope.seq;
        events.push(envelope.event);
    }
    events
}

#[tokio::test]
async fn a_plan_run_through_the_core_handle_reports_steps_checks_and_outcomes() {
    let patch =
        "*** Begin Patch\n*** Update File: notes.txt\n@@\n+# Notes\n buy milk\n*** End Patch\n";
    let turns = vec![
        Turn::call(
            "apply_patch",
            &serde_json::json!({ "input": patch }).to_string(),
        ),
        Turn::call(
            "report_step",
            r#"{"status":"done","summary":"Added the heading."}"#,
        ),
        Turn::text(&["Added the heading."]),
        // Step 2: the model reports failure; its answer's words do not matter.
        Turn::call(
            "report_step",
            r#"{"status":"failed","summary":"Deleting the notes would lose the list."}"#,
        ),
        Turn::text(&["All good, step complete!"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let place = place(&server);
    let checks = Checks::from_settings(
        &CheckSettings {
            test_cmd: Some("grep -q '# Notes' notes.txt".into()),
            fix_rounds: 1,
            ..CheckSettings::default()
        },
        &place.repo,
    )
    .unwrap();
    let mut handle = cox_core::run::start(&place.config, spec(&place, checks)).unwrap();
    // A front end that has nothing more to say: the run still goes to its end.
    handle.submit(Op::Shutdown).await;
    let events = events_of(&mut handle).await;

    let finished: Vec<(String, StepState, Vec<FileChange>)> = events
        .iter()
        .filter_map(|e| match e {
            Event::StepFinished {
                id,
                status,
                changed_files,
                ..
            } => Some((id.clone(), *status, changed_files.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        finished,
        [
            (
                "S1".to_string(),
                StepState::Done,
                vec![FileChange {
                    path: "notes.txt".into(),
                    added: 1,
                    removed: 0,
                    hunks: Vec::new(),
                }]
            ),
            ("S2".to_string(), StepState::Failed, vec![]),
        ]
    );
    let started: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::StepStarted { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(started, ["S1", "S2"]);
    let checks: Vec<(CheckKind, bool)> = events
        .iter()
        .filter_map(|e| match e {
            Event::CheckFinished { kind, ok, .. } => Some((*kind, *ok)),
            _ => None,
        })
        .collect();
    assert_eq!(
        checks,
        [(CheckKind::Tests, true)],
        "checked after the step that changed a file, not after the one that failed"
    );
    let completed: Vec<SessionStatus> = events
        .iter()
        .filter_map(|e| match e {
            Event::SessionCompleted { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(
        completed,
        [SessionStatus::Failed],
        "one session_completed ends the run"
    );
    assert!(matches!(
        events.last(),
        Some(Event::SessionCompleted { .. })
    ));

    let plan: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(place.repo.join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(plan["steps"][0]["status"], "done");
    assert_eq!(plan["steps"][1]["status"], "failed");
    assert!(plan["steps"][1]["cox_session"].is_string());
    // The step's session offered report_step; a plain session does not.
    let tools = server.requests()[0].body["tools"].to_string();
    assert!(tools.contains("report_step"), "{tools}");
}

#[tokio::test]
async fn a_failing_check_goes_back_to_the_model_then_fails_the_step() {
    let patch =
        "*** Begin Patch\n*** Update File: notes.txt\n@@\n+# Notes\n buy milk\n*** End Patch\n";
    let turns = vec![
        Turn::call(
            "apply_patch",
            &serde_json::json!({ "input": patch }).to_string(),
        ),
        Turn::text(&["Done."]),
        Turn::text(&["I cannot fix that."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let place = place(&server);
    let checks = Checks::from_settings(
        &CheckSettings {
            test_cmd: Some("echo 'expected 3 notes'; false".into()),
            auto_fix_test: true,
            fix_rounds: 1,
            ..CheckSettings::default()
        },
        &place.repo,
    )
    .unwrap();
    let mut handle = cox_core::run::start(&place.config, spec(&place, checks)).unwrap();
    let events = events_of(&mut handle).await;
    let checks = events
        .iter()
        .filter(|e| matches!(e, Event::CheckFinished { ok: false, .. }))
        .count();
    assert_eq!(checks, 2, "checked, fixed once, checked again");
    let feedback = server.requests()[2].body["messages"].to_string();
    assert!(feedback.contains("expected 3 notes"), "{feedback}");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::StepFinished {
            status: StepState::Failed,
            ..
        }
    )));
    assert!(matches!(
        events.last(),
        Some(Event::SessionCompleted {
            status: SessionStatus::Failed,
            ..
        })
    ));
}
