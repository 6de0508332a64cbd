//! The tools as the engine calls them: through the registry, with the model's raw arguments text.

use std::time::{Duration, Instant};

use cox_protocol::{Action, ToolKind};
use cox_tools::{ToolContext, ToolOutput, ToolRegistry};

fn context(dir: &std::path::Path) -> ToolContext {
    crate::context_at(dir, dir, 1024)
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
        lines
            .get(1)
            .is_some_and(|l| l.starts_with("duration: ") && l.ends_with(" s")),
        "no duration line in {:?}",
        output.output
    );
    output.output = output.output.replacen(&format!("{}\n", lines[1]), "", 1);
    assert!(output.outcome.duration_ms.is_some(), "{:?}", output.outcome);
    output.outcome = Default::default();
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
    let line = call(
        dir.path(),
        "shell",
        r#"{"command":"echo out; echo err >&2; echo out2; exit 3"}"#,
    )
    .await;
    // The outcome says it in fields: a front end never reads the text.
    assert_eq!(line.outcome.exit_code, Some(3));
    assert_eq!(line.outcome.excerpt.as_deref(), Some("out\nerr\nout2"));
    assert_eq!(line.outcome.printed_lines, Some(3));
    assert!(!line.outcome.truncated);
    let line = timeless(line);
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
        r#"{"command":["sh","-c","(sleep 30; echo leaked > leaked.txt) & echo started; sleep 30"],"timeout_ms":1500}"#,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(20), // not the 30 s the command would take
        "took {:?}",
        started.elapsed()
    );
    assert!(!output.ok);
    assert!(
        output.output.starts_with("timed out after 1500 ms"),
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
    let dir = fs_err::canonicalize(dir).unwrap();
    fs_err::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            (fs_err::read_link(entry.path().join("cwd")).ok()? == dir).then_some(pid)
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
        started.elapsed() < Duration::from_secs(20), // not the 30 s the command would take
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
    let output = call(dir.path(), "shell", r#"{"command":"seq 1 5000"}"#).await;
    assert!(
        output.outcome.truncated,
        "the outcome says the model got less"
    );
    let output = timeless(output);
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
    assert!(
        output
            .output
            .contains("[… 4742 lines (22869 bytes) of output omitted …]"),
        "{}",
        output.output
    );
    assert!(output.output.len() < 1200);
}

#[tokio::test]
async fn shell_refuses_workdir_outside_the_workspace_and_reports_bad_programs() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::create_dir(dir.path().join("sub")).unwrap();
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
    fs_err::write(dir.path().join("a.txt"), "alpha\nbeta\n").unwrap();
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

fn write(dir: &std::path::Path, path: &str, content: &str) {
    let full = dir.join(path);
    fs_err::create_dir_all(full.parent().unwrap()).unwrap();
    fs_err::write(full, content).unwrap();
}

#[tokio::test]
async fn list_dir_respects_gitignore_hidden_files_and_depth() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".gitignore", "target/\n*.log\n");
    write(dir.path(), "src/lib.rs", "");
    write(dir.path(), "src/deep/inner/x.rs", "");
    write(dir.path(), "target/debug/big", "");
    write(dir.path(), "run.log", "");
    write(dir.path(), ".env", "SECRET=1");
    write(dir.path(), "Cargo.toml", "");
    let output = call(dir.path(), "list_dir", r#"{"depth": 2}"#).await;
    assert_eq!(
        output,
        ToolOutput::ok("Cargo.toml\nsrc/\n  deep/\n  lib.rs\n")
    );
    let deeper = call(dir.path(), "list_dir", r#"{"path": "src", "depth": 5}"#).await;
    assert_eq!(deeper.output, "deep/\n  inner/\n    x.rs\nlib.rs\n");
}

#[tokio::test]
async fn list_dir_caps_long_listings_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..450 {
        write(dir.path(), &format!("f{n:03}.txt"), "");
    }
    let mut roomy = context(dir.path());
    roomy.max_output_bytes = 64 * 1024;
    let output = ToolRegistry::standard()
        .call("list_dir", "{}", &roomy)
        .await;
    assert_eq!(output.output.lines().count(), 401);
    assert!(
        output
            .output
            .ends_with("[… 50 more entries not shown; list a subdirectory or lower depth]\n")
    );
    // Issue 14: within a small budget the listing stops early and counts the rest.
    let small = call(dir.path(), "list_dir", "{}").await;
    assert!(small.output.len() <= 1024, "{}", small.output.len());
    let shown = small.output.lines().count() - 1;
    assert!(shown > 50, "{shown}");
    assert!(
        small.output.ends_with(&format!(
            "[… {} more entries not shown; list a subdirectory or lower depth]\n",
            450 - shown
        )),
        "{}",
        small.output
    );
}

/// Issue 14: every tool's result fits the budget; grep stops at it and says how many it left.
#[tokio::test]
async fn grep_and_read_file_stay_within_the_output_budget_issue_14() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..600).map(|n| format!("needle number {n}\n")).collect();
    write(dir.path(), "many.txt", &text);
    let found = call(
        dir.path(),
        "grep",
        r#"{"pattern":"needle","max_results":1000}"#,
    )
    .await;
    assert!(found.ok);
    assert!(found.output.len() <= 1024, "{}", found.output.len());
    assert!(
        found.output.contains("more matches not shown"),
        "{}",
        found.output
    );
    let read = call(dir.path(), "read_file", r#"{"path":"many.txt"}"#).await;
    assert!(read.output.len() <= 1024, "{}", read.output.len());
    assert!(
        read.output.contains("call read_file with offset="),
        "{}",
        read.output
    );
}

#[tokio::test]
async fn grep_finds_sorted_matches_with_glob_and_skips_binary_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".gitignore", "ignored/\n");
    write(dir.path(), "b.rs", "fn beta() {}\nlet x = beta();\n");
    write(dir.path(), "a.rs", "fn alpha() {}\n");
    write(dir.path(), "notes.md", "beta in prose\n");
    write(dir.path(), "ignored/c.rs", "fn beta_ignored() {}\n");
    fs_err::write(dir.path().join("blob.bin"), b"beta\0\x01\x02").unwrap();
    let all = call(dir.path(), "grep", r#"{"pattern": "beta"}"#).await;
    assert_eq!(
        all.output,
        "b.rs:1:fn beta() {}\nb.rs:2:let x = beta();\nnotes.md:1:beta in prose\n"
    );
    let rust = call(
        dir.path(),
        "grep",
        r#"{"pattern": "fn \\w+", "glob": "*.rs"}"#,
    )
    .await;
    assert_eq!(rust.output, "a.rs:1:fn alpha() {}\nb.rs:1:fn beta() {}\n");
    let capped = call(
        dir.path(),
        "grep",
        r#"{"pattern": "beta", "max_results": 2}"#,
    )
    .await;
    assert_eq!(capped.output.lines().count(), 3, "{}", capped.output);
    assert!(capped.output.contains("more than 2 matches"));
    let insensitive = call(
        dir.path(),
        "grep",
        r#"{"pattern": "ALPHA", "ignore_case": true}"#,
    )
    .await;
    assert_eq!(insensitive.output, "a.rs:1:fn alpha() {}\n");
    let none = call(dir.path(), "grep", r#"{"pattern": "gamma"}"#).await;
    assert_eq!(none, ToolOutput::ok("no matches for `gamma`"));
    let bad = call(dir.path(), "grep", r#"{"pattern": "("}"#).await;
    assert!(
        !bad.ok && bad.output.starts_with("invalid regular expression `(`"),
        "{}",
        bad.output
    );
}

#[tokio::test]
async fn file_tools_refuse_paths_outside_the_workspace() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", "top secret\n");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    let escape = call(dir.path(), "read_file", r#"{"path": "../x.txt"}"#).await;
    assert!(
        escape.output.contains("is outside the workspace"),
        "{}",
        escape.output
    );
    let via_link = call(dir.path(), "read_file", r#"{"path": "link/secret.txt"}"#).await;
    assert!(!via_link.ok);
    assert!(
        via_link.output.contains("resolves through a symlink"),
        "{}",
        via_link.output
    );
    let grep = call(
        dir.path(),
        "grep",
        r#"{"pattern": "secret", "path": "/etc"}"#,
    )
    .await;
    assert!(
        grep.output.contains("is outside the workspace"),
        "{}",
        grep.output
    );
    let patch = "*** Begin Patch\n*** Add File: link/evil.txt\n+x\n*** End Patch\n";
    let write_through_link = call(
        dir.path(),
        "apply_patch",
        &serde_json::json!({"input": patch}).to_string(),
    )
    .await;
    assert!(
        write_through_link
            .output
            .contains("resolves through a symlink"),
        "{}",
        write_through_link.output
    );
    assert!(!outside.path().join("evil.txt").exists());
}

#[tokio::test]
async fn apply_patch_keeps_permissions_and_reports_a_diff() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "run.sh", "#!/bin/sh\necho old\n");
    write(dir.path(), "b.txt", "b\n");
    fs_err::set_permissions(
        dir.path().join("run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let patch = "*** Begin Patch\n*** Update File: run.sh\n@@\n #!/bin/sh\n-echo old\n+echo new\n*** Update File: b.txt\n*** Move to: c.txt\n@@\n-b\n+c\n*** End Patch\n";
    let output = call(
        dir.path(),
        "apply_patch",
        &serde_json::json!({"input": patch}).to_string(),
    )
    .await;
    assert_eq!(
        output.output,
        "Success. Updated the following files:\nM run.sh (+1 -1)\nR b.txt -> c.txt (+1 -1)\n"
    );
    let changed: Vec<(&str, u64, u64)> = output
        .outcome
        .changed_files
        .iter()
        .map(|c| (c.path.as_str(), c.added, c.removed))
        .collect();
    assert_eq!(changed, [("run.sh", 1, 1), ("c.txt", 1, 1)]);
    let hunks: Vec<cox_protocol::Hunk> = output.outcome.changed_files[0].hunks.clone();
    assert_eq!(
        hunks,
        [cox_protocol::Hunk {
            old_start: 2,
            old_lines: 1,
            new_start: 2,
            new_lines: 1
        }],
        "`echo old` on line 2 became `echo new`"
    );
    let mode = fs_err::metadata(dir.path().join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let Some(cox_tools::Effect::Diff(diff)) = output.effect else {
        panic!("no diff")
    };
    assert_eq!(
        diff,
        "--- a/run.sh\n+++ b/run.sh\n@@ -1,2 +1,2 @@\n #!/bin/sh\n-echo old\n+echo new\n--- a/b.txt\n+++ b/c.txt\n@@ -1 +1 @@\n-b\n+c\n"
    );
}

#[tokio::test]
async fn shell_heredoc_goes_to_the_patch_engine() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sub/a.txt", "one\n");
    let script = "cd sub && apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: a.txt\n-one\n+two\n*** End Patch\nEOF\n";
    let output = call(
        dir.path(),
        "shell",
        &serde_json::json!({"command": script}).to_string(),
    )
    .await;
    assert_eq!(
        output.output,
        "Success. Updated the following files:\nM a.txt (+1 -1)\n"
    );
    assert_eq!(
        fs_err::read_to_string(dir.path().join("sub/a.txt")).unwrap(),
        "two\n"
    );
    let argv = serde_json::json!({"command": ["apply_patch", "*** Begin Patch\n*** Delete File: sub/a.txt\n*** End Patch\n"]});
    let deleted = call(dir.path(), "shell", &argv.to_string()).await;
    assert!(deleted.ok, "{}", deleted.output);
    assert!(!dir.path().join("sub/a.txt").exists());
}

#[tokio::test]
async fn update_plan_validates_and_hands_over_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"plan":[{"step":"read","status":"completed"},{"step":"fix","status":"in_progress"},{"step":"test","status":"pending"}],"explanation":"found it"}"#;
    let output = call(dir.path(), "update_plan", good).await;
    assert_eq!(output.output, "Plan updated: 1 of 3 steps completed.");
    let Some(cox_tools::Effect::Plan { steps, explanation }) = output.effect else {
        panic!("no plan")
    };
    assert_eq!(steps.len(), 3);
    assert_eq!(explanation.as_deref(), Some("found it"));
    let two_active =
        r#"{"plan":[{"step":"a","status":"in_progress"},{"step":"b","status":"in_progress"}]}"#;
    assert!(
        call(dir.path(), "update_plan", two_active)
            .await
            .output
            .contains("at most one step")
    );
    let bad_status = r#"{"plan":[{"step":"a","status":"done"}]}"#;
    assert!(
        call(dir.path(), "update_plan", bad_status)
            .await
            .output
            .contains("unknown variant `done`")
    );
}

#[tokio::test]
async fn ask_user_headless_says_no_one_can_answer() {
    let dir = tempfile::tempdir().unwrap();
    let output = call(dir.path(), "ask_user", r#"{"question":"Which database?"}"#).await;
    assert_eq!(output, ToolOutput::ok(cox_tools::ask_user::HEADLESS_ANSWER));
}

#[test]
fn tool_schemas_stay_small() {
    // Tool schemas are paid for on every request; BENCHMARKS.md has the token count.
    let specs = ToolRegistry::standard().specs();
    let bytes: usize = specs
        .iter()
        .map(|s| serde_json::to_string(s).unwrap().len())
        .sum();
    assert_eq!(specs.len(), 11);
    assert!(bytes < 11_000, "tool schemas grew to {bytes} bytes");
}

#[test]
fn patch_preview_names_files_and_line_ranges_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (1..=100).map(|n| format!("line {n}\n")).collect();
    write(dir.path(), "big.txt", &lines);
    write(dir.path(), "old.txt", "x\n");
    let patch = "*** Begin Patch\n*** Update File: big.txt\n@@\n line 44\n-line 45\n+LINE 45\n@@\n line 88\n-line 89\n+LINE 89\n*** Add File: new.txt\n+a\n+b\n*** Delete File: old.txt\n*** End Patch\n";
    let args = serde_json::json!({ "input": patch }).to_string();
    let preview = ToolRegistry::standard()
        .describe("apply_patch", &args, &context(dir.path()))
        .preview();
    assert_eq!(
        preview,
        [
            "Modify big.txt lines 45-89",
            "Create new.txt (2 lines)",
            "Delete old.txt"
        ]
    );
    assert_eq!(
        fs_err::read_to_string(dir.path().join("big.txt")).unwrap(),
        lines,
        "nothing written"
    );
    assert!(dir.path().join("old.txt").exists());
    let heredoc =
        serde_json::json!({ "command": format!("apply_patch <<'EOF'\n{patch}EOF") }).to_string();
    assert_eq!(
        ToolRegistry::standard()
            .describe("shell", &heredoc, &context(dir.path()))
            .preview()
            .len(),
        3
    );
    let ls =
        ToolRegistry::standard().describe("shell", r#"{"command":["ls"]}"#, &context(dir.path()));
    assert!(ls.preview().is_empty());
    assert_eq!(ls.kind, Some(ToolKind::Execute));
    assert_eq!(
        ls.actions,
        [Action::Run {
            command: "ls".into()
        }]
    );
    assert_eq!(ls.touches.command.as_deref(), Some("ls"));
}

/// A patch sent after `cd DIR &&` (and in a `workdir`) is described with the paths it will
/// write, seen from the working directory; a directory that does not exist is joined as written.
#[test]
fn a_shell_patch_after_cd_is_described_where_it_lands() {
    let dir = tempfile::tempdir().unwrap();
    let root = fs_err::canonicalize(dir.path()).unwrap();
    write(&root, "sub/my dir/a.txt", "one\n");
    let describe = |command: serde_json::Value| {
        ToolRegistry::standard().describe("shell", &command.to_string(), &context(&root))
    };
    let patch = "*** Begin Patch\n*** Update File: a.txt\n-one\n+two\n*** Add File: ../b.txt\n+b\n*** End Patch\n";
    let described = describe(serde_json::json!({
        "command": format!("cd 'my dir' && apply_patch <<'EOF'\n{patch}EOF\n"),
        "workdir": "sub",
    }));
    assert_eq!(
        described.preview(),
        [
            "Modify sub/my dir/a.txt line 1",
            "Create sub/b.txt (1 line)"
        ]
    );
    assert_eq!(
        described.touches.edits,
        [
            ("sub/my dir/a.txt".to_string(), "two\n".to_string()),
            ("sub/b.txt".to_string(), "b\n".to_string())
        ]
    );
    let missing = describe(serde_json::json!({
        "command": format!("cd nope/x && apply_patch <<'EOF'\n{patch}EOF\n"),
    }));
    assert_eq!(
        missing.touches.edits,
        [
            ("nope/x/a.txt".to_string(), "two\n".to_string()),
            ("nope/b.txt".to_string(), "b\n".to_string())
        ]
    );
}

#[test]
fn a_patch_that_does_not_match_is_described_by_its_headers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.js", "one\n");
    let patch = "*** Begin Patch\n*** Update File: a.js\n@@ function connect() {\n-missing\n+b\n*** End Patch\n";
    let args = serde_json::json!({ "input": patch }).to_string();
    let described = ToolRegistry::standard().describe("apply_patch", &args, &context(dir.path()));
    assert_eq!(described.preview(), ["Modify a.js @ function connect() {"]);
    assert_eq!(
        described.touches.edits,
        [("a.js".to_string(), "b\n".to_string())]
    );
}

#[test]
fn every_tool_has_a_kind_and_unknown_tools_none() {
    let registry = ToolRegistry::standard();
    let ctx = context(std::path::Path::new("/"));
    let kinds: Vec<(String, Option<ToolKind>)> = registry
        .names()
        .into_iter()
        .map(|name| {
            let kind = registry.describe(&name, "{}", &ctx).kind;
            (name, kind)
        })
        .collect();
    assert!(kinds.iter().all(|(_, kind)| kind.is_some()), "{kinds:?}");
    let writes = kinds
        .iter()
        .filter(|(_, k)| *k == Some(ToolKind::Write))
        .count();
    let executes = kinds
        .iter()
        .filter(|(_, k)| *k == Some(ToolKind::Execute))
        .count();
    // shell, exec_command and write_stdin run commands.
    assert_eq!((writes, executes), (1, 3), "{kinds:?}");
    // The name a call is looked up by is the name in the schema the model was sent.
    for registry in [ToolRegistry::plan_step(), ToolRegistry::read_only()] {
        let in_specs: Vec<String> = registry.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(registry.names(), in_specs);
    }
    let unknown = registry.describe("rm_rf", "{}", &ctx);
    assert_eq!(unknown.kind, None);
    assert!(!unknown.acts());
}

#[tokio::test]
async fn hunks_give_old_and_new_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f.txt", "a\nb\nc\nd\ne\nf\ng\nh\n");
    // Two lines inserted after `a`, then `e` replaced: the second hunk moves down by two.
    let patch = "*** Begin Patch\n*** Update File: f.txt\n@@\n a\n+x\n+y\n b\n@@\n d\n-e\n+E\n f\n*** End Patch\n";
    let output = call(
        dir.path(),
        "apply_patch",
        &serde_json::json!({ "input": patch }).to_string(),
    )
    .await;
    assert!(output.ok, "{}", output.output);
    let spans: Vec<(u64, u64, u64, u64)> = output.outcome.changed_files[0]
        .hunks
        .iter()
        .map(|h| (h.old_start, h.old_lines, h.new_start, h.new_lines))
        .collect();
    assert_eq!(spans, [(2, 0, 2, 2), (5, 1, 7, 1)]);
}
