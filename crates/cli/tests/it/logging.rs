//! The log: a file under `$COX_HOME/logs` when `COX_LOG` asks for one, never on the terminal, and
//! never a secret — even when the model puts one in a tool call.

use cox_testkit::{MockServer, Script, Turn};

use crate::harness::*;

fn log_files(env: &Env) -> Vec<std::path::PathBuf> {
    match fs_err::read_dir(env.home.join("logs")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn cox_log_writes_a_file_with_the_session_and_no_secret() {
    let env = Env::new();
    fs_err::write(env.repo.join("README.md"), "one\ntwo\n").unwrap();
    // The model puts a credential in a command; the log carries no argument or output.
    let turns = vec![
        Turn::call(
            "shell",
            r#"{"command":["echo","DB_PASSWORD=hunter2-swordfish"]}"#,
        ),
        Turn::text(&["The secret prompt answer."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .env("COX_LOG", "trace")
        .args(["exec", "Tell me the confidential plan"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let files = log_files(&env);
    assert_eq!(files.len(), 1, "{files:?}");
    let log = fs_err::read_to_string(&files[0]).unwrap();
    for needle in [
        "cox started",
        "session started",
        "model response",
        "tool call ended",
        "tool=shell",
        "exit_code=0",
        "session completed",
    ] {
        assert!(log.contains(needle), "the log lacks {needle:?}:\n{log}");
    }
    for secret in [KEY, "hunter2", "confidential plan", "secret prompt answer"] {
        assert!(!log.contains(secret), "the log carries {secret:?}:\n{log}");
    }
    let err = stderr(&output);
    assert!(
        !err.contains("session started") && !err.contains("DEBUG"),
        "{err}"
    );
}

#[test]
fn no_log_without_cox_log_and_a_bad_filter_is_an_error() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["hi"])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "hello"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(log_files(&env).is_empty());
    let bad = run(env
        .cox_with(&server)
        .env("COX_LOG", "cox_core=loud")
        .args(["exec", "hello"]));
    expect_failure(&bad, 2, "COX_LOG=`cox_core=loud` is not a log filter");
    assert_eq!(
        server.requests().len(),
        1,
        "no model call after the bad filter"
    );
}
