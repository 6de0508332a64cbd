//! The tools as the engine calls them: through the registry, with the model's raw arguments text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cox_tools::{ToolContext, ToolOutput, ToolRegistry};
use tokio_util::sync::CancellationToken;

fn context(dir: &std::path::Path) -> ToolContext {
    ToolContext {
        cwd: dir.to_path_buf(),
        workspace: dir.to_path_buf(),
        writable_roots: vec![dir.to_path_buf()],
        max_output_bytes: 1024,
        hidden_env: vec![],
        cancel: CancellationToken::new(),
    }
}

async fn call(dir: &std::path::Path, name: &str, arguments: &str) -> ToolOutput {
    ToolRegistry::standard()
        .call(name, arguments, &context(dir))
        .await
}

/// The output with its `duration: N s` line removed (after checking it is there), for exact checks.
fn timeless(mut output: ToolOutput) -> ToolOutput {
    let lines: Vec<&str> = output.output.lines().collect();
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("duration: ") && l.ends_with(" s")),
        "no duration line in {:?}",
        output.output
    );
    output.output = output.output.replacen(&format!("{}\n", lines[1]), "", 1);
    output
}

async fn call_hiding(dir: &std::path::Path, hidden: &str, arguments: &str) -> ToolOutput {
    let mut ctx = context(dir);
    ctx.hidden_env = vec![hidden.to_string()];
    ToolRegistry::standard()
        .call("shell", arguments, &ctx)
        .await
}

#[tokio::test]
async fn shell_runs_argv_and_strings_with_interleaved_output() {
    let dir = tempfile::tempdir().unwrap();
    let argv = timeless(call(dir.path(), "shell", r#"{"command":["echo","hello"]}"#).await);
    assert_eq!(argv, ToolOutput::ok("exit code: 0\noutput:\nhello\n"));
    let line = timeless(call(
        dir.path(),
        "shell",
        r#"{"command":"echo out; echo err >&2; echo out2; exit 3"}"#,
    )
    .await);
    assert_eq!(
        line,
        ToolOutput::error("exit code: 3\noutput:\nout\nerr\nout2\n")
    );
}

#[tokio::test]
async fn shell_closes_stdin_and_hides_provider_keys() {
    let dir = tempfile::tempdir().unwrap();
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    // CARGO_MANIFEST_DIR stands in for a key variable: it is set here, and hidden from the child.
    let output = timeless(
        call_hiding(
            dir.path(),
            "CARGO_MANIFEST_DIR",
            r#"{"command":["/bin/sh","-c","cat; echo \"[${CARGO_MANIFEST_DIR:-unset}]\""]}"#,
        )
        .await,
    );
    assert_eq!(output.output, "exit code: 0\noutput:\n[unset]\n");
}

#[tokio::test]
async fn shell_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = call(
        dir.path(),
        "shell",
        r#"{"command":"(sleep 30; echo leaked > leaked.txt) & echo started; sleep 30","timeout_ms":300}"#,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(!output.ok);
    assert!(
        output.output.starts_with("timed out after 300 ms"),
        "{}",
        output.output
    );
    assert!(output.output.contains("started"), "{}", output.output);
    // The backgrounded subshell and its sleep died with the group.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_in(dir.path()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "survivors: {:?}",
            processes_in(dir.path())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live processes whose working directory is `dir`.
fn processes_in(dir: &std::path::Path) -> Vec<u32> {
    let dir = std::fs::canonicalize(dir).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            (std::fs::read_link(entry.path().join("cwd")).ok()? == dir).then_some(pid)
        })
        .collect()
}

#[tokio::test]
async fn shell_cancel_stops_a_running_command() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let cancel = ctx.cancel.clone();
    let registry = ToolRegistry::standard();
    let started = Instant::now();
    let (output, ()) = tokio::join!(
        registry.call("shell", r#"{"command":["sleep","30"]}"#, &ctx),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        output.output.starts_with("interrupted by the user"),
        "{}",
        output.output
    );
}

#[tokio::test]
async fn shell_keeps_head_and_tail_of_long_output() {
    let dir = tempfile::tempdir().unwrap();
    let output = timeless(call(dir.path(), "shell", r#"{"command":"seq 1 5000"}"#).await);
    assert!(output.ok);
    assert!(
        output
            .output
            .starts_with("exit code: 0\noutput:\n1\n2\n3\n"),
        "{}",
        output.output
    );
    assert!(output.output.ends_with("4999\n5000\n"));
    // 1024 of 23,893 bytes kept (155 lines of head, 103 line ends in the tail): the rest is counted.
    assert!(output.output.contains("[… 4742 lines (22869 bytes) of output omitted …]"), "{}", output.output);
    assert!(output.output.len() < 1200);
}

#[tokio::test]
async fn shell_refuses_workdir_outside_the_workspace_and_reports_bad_programs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let inside = call(
        dir.path(),
        "shell",
        r#"{"command":["pwd"],"workdir":"sub"}"#,
    )
    .await;
    assert!(
        inside.output.trim_end().ends_with("/sub"),
        "{}",
        inside.output
    );
    let outside = call(dir.path(), "shell", r#"{"command":["pwd"],"workdir":"/"}"#).await;
    assert!(!outside.ok);
    assert!(
        outside.output.contains("is outside the workspace"),
        "{}",
        outside.output
    );
    let missing = call(
        dir.path(),
        "shell",
        r#"{"command":["no-such-program-cox"]}"#,
    )
    .await;
    assert!(
        missing
            .output
            .starts_with("cannot run `no-such-program-cox`"),
        "{}",
        missing.output
    );
    let empty = call(dir.path(), "shell", r#"{"command":[]}"#).await;
    assert!(empty.output.contains("empty array"), "{}", empty.output);
}

#[tokio::test]
async fn registry_reports_bad_arguments_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = call(dir.path(), "read_file", r#"{"path": "#).await;
    assert!(
        not_json
            .output
            .starts_with("the arguments for read_file are not valid JSON"),
        "{}",
        not_json.output
    );
    let missing = call(dir.path(), "read_file", r#"{"offset": 2}"#).await;
    assert!(
        missing.output.contains("missing field `path`"),
        "{}",
        missing.output
    );
    let unknown = call(dir.path(), "read_file", r#"{"path": "a", "colour": 1}"#).await;
    assert!(
        unknown.output.contains("unknown field `colour`"),
        "{}",
        unknown.output
    );
}

#[tokio::test]
async fn read_file_through_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha\nbeta\n").unwrap();
    let output = call(dir.path(), "read_file", r#"{"path":"a.txt","offset":2}"#).await;
    assert_eq!(output, ToolOutput::ok("     2\tbeta\n"));
}

#[test]
fn tool_descriptions_come_from_the_module_docs() {
    let specs = ToolRegistry::standard().specs();
    let shell = specs.iter().find(|s| s.name == "shell").unwrap();
    assert!(
        shell
            .description
            .starts_with("Runs a command in the workspace")
    );
    assert!(!shell.description.contains("# shell"));
    assert_eq!(shell.parameters["required"][0], "command");
}
