//! The errors a person meets first, and configuration: each names the problem, with its exit code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use cox_testkit::{MockServer, Script, Turn};

use crate::harness::*;

#[test]
fn missing_key_exits_3_and_says_how_to_set_one() {
    let env = Env::new();
    let output = run(env.cox().args(["exec", "hi"]));
    assert_eq!(output.status.code(), Some(3));
    let err = stderr(&output);
    assert!(err.contains("no API key for provider `openai`"), "{err}");
    assert!(
        err.contains("set OPENAI_API_KEY, or run `cox auth login --provider openai`"),
        "{err}"
    );
}

#[test]
fn connection_refused_exits_3_naming_the_address() {
    let env = Env::new();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = run(env
        .cox()
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("http://127.0.0.1:{port}/v1"))
        .args(["-c", "max_retries=0", "exec", "hi"]));
    assert_eq!(output.status.code(), Some(3));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "cannot reach http://127.0.0.1:{port}/v1/responses"
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
}

#[test]
fn unknown_provider_exits_2() {
    let env = Env::new();
    let output = run(env.cox().args(["--provider", "nope", "exec", "hi"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output)
            .contains("unknown provider `nope`; known providers: openai, openai-chat, anthropic"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_flag_exits_2() {
    let env = Env::new();
    let output = run(env.cox().args(["exec", "--frobnicate", "hi"]));
    expect_failure(&output, 2, "--frobnicate");
}

#[test]
fn missing_attachment_exits_2_before_any_model_call() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["never"])],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "summarise @docs/missing.md please"]));
    expect_failure(&output, 2, "docs/missing.md");
    assert!(
        stderr(&output).contains("no such file"),
        "{}",
        stderr(&output)
    );
    assert!(server.requests().is_empty());
}

#[test]
fn prompt_from_stdin_with_attachment_and_cd() {
    let env = Env::new();
    fs_err::create_dir_all(env.repo.join("docs")).unwrap();
    fs_err::write(env.repo.join("docs/arch.md"), "Layers: a, b.\n").unwrap();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["ok"])],
    })
    .unwrap();
    let mut child = env
        .cox_with(&server)
        .current_dir(env.home.parent().unwrap())
        .args(["-C", env.repo.to_str().unwrap(), "exec", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Explain @docs/arch.md")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let body = &server.requests()[0].body;
    let prompt = body["input"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        prompt,
        "Explain @docs/arch.md\n\n<file path=\"docs/arch.md\">\nLayers: a, b.\n</file>"
    );
    let instructions = body["instructions"].as_str().unwrap();
    assert!(
        instructions.contains(&format!(
            "Working directory: {}",
            canonical(&env.repo).display()
        )),
        "{instructions}"
    );
}

fn canonical(path: &Path) -> PathBuf {
    fs_err::canonicalize(path).unwrap()
}
