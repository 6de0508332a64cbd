//! Dev-only test kit: [`MockServer`], a scripted model server on 127.0.0.1 that speaks the OpenAI
//! Responses, Chat Completions and Anthropic Messages wire formats over SSE, records every request,
//! and injects faults on cue (see [`Fault`]).
//!
//! It is written from the providers' documented wire formats, independently of `cox-model`, so the
//! tests that drive one with the other check both against the documented shapes.
//!
//! [`schema::validate`] checks a value against a JSON schema, for tests of output that must match
//! one (tool calls from a local model, plans).

mod frames;
pub mod schema;
mod script;
mod server;

pub use frames::{Wire, split};
pub use script::{Fault, Script, ScriptedCall, ScriptedUsage, Turn};
pub use server::{MockServer, Recorded};

/// The GGUF model the `local` provider's tests run: `COX_TEST_GGUF`, else where
/// `scripts/fetch-test-model` puts SmolLM2-135M-Instruct. Panics with how to get it when absent:
/// a test that needs the model must not pass without it.
pub fn test_model() -> std::path::PathBuf {
    let path = std::env::var_os("COX_TEST_GGUF").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/test-models/SmolLM2-135M-Instruct.Q4_1.gguf")
        },
        std::path::PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no test model at {}: run scripts/fetch-test-model (or set COX_TEST_GGUF)",
        path.display()
    );
    path
}

/// Whether `program` — a name looked up on `PATH`, or an absolute path — is here, for a test that
/// needs a tool from outside the project (tmux, vim, ruff, …). Where it is missing the test is
/// skipped, loudly: a line on stderr names the tool and how to get it (`how`), and the line is
/// added to the file `COX_TEST_SKIPS` names, which `scripts/test` prints at the end. Under CI
/// (`CI` set to anything but `false`) a missing tool fails the test instead: CI installs every
/// tool (`.ci/run`), so there a skip would hide a broken setup.
pub fn outside_tool(program: &str, how: &str) -> bool {
    outside_tool_for(program, how, "the test")
}

/// [`outside_tool`] for part of a test: `skipped` says what is left out (the rest runs).
pub fn outside_tool_for(program: &str, how: &str, skipped: &str) -> bool {
    let path = std::path::Path::new(program);
    let found = if path.is_absolute() {
        path.is_file()
    } else {
        std::env::var_os("PATH").is_some_and(|dirs| {
            std::env::split_paths(&dirs).any(|dir| {
                use std::os::unix::fs::PermissionsExt;
                dir.join(program)
                    .metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
    };
    if found {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(
        !ci,
        "{program} is not installed, and CI must have it: {how}"
    );
    let test = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(str::to_string)
        .or_else(|| std::env::args().nth(1).filter(|a| !a.starts_with('-')))
        .unwrap_or_else(|| "a test".to_string());
    let line =
        format!("SKIPPED {skipped} in {test}: needs {program}, which is not installed ({how})");
    eprintln!("{line}");
    if let Some(file) = std::env::var_os("COX_TEST_SKIPS") {
        use std::io::Write;
        if let Ok(mut f) = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            // One write of the whole line: O_APPEND keeps concurrent tests' lines whole.
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
    false
}
