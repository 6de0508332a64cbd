//! Input is checked before anything is created; what cannot be written leaves nothing behind.

use cox_testkit::{MockServer, Script, Turn};

use super::*;

/// Issue 14: nonsense settings were accepted (`stream_idle_timeout_ms=0` made every stream
/// "stall"). Each is refused with exit 2, naming the key, the value and what is allowed, before
/// any session exists.
#[test]
fn nonsense_settings_exit_2_naming_key_value_and_range_issue_14() {
    let env = Env::new();
    let server = MockServer::start(Script::default()).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["max_turns=0"], "max_turns = 0 is not allowed: at least 1"),
        (
            &["stream_idle_timeout_ms=0"],
            "stream_idle_timeout_ms = 0 is not allowed: at least 100 ms",
        ),
        (
            &["stream_total_timeout_ms=500"],
            "stream_total_timeout_ms = 500 is not allowed: at least 1000 ms",
        ),
        (
            &[
                "stream_idle_timeout_ms=5000",
                "stream_total_timeout_ms=2000",
            ],
            "stream_total_timeout_ms = 2000 is not allowed: at least stream_idle_timeout_ms (5000)",
        ),
        (
            &["tool_output_max_tokens=0"],
            "tool_output_max_tokens = 0 is not allowed: at least 100 tokens",
        ),
        (
            &["model_context_window=0"],
            "model_context_window = 0 is not allowed: at least 1000 tokens",
        ),
        (
            &["compact_threshold=0"],
            "compact_threshold = 0 is not allowed: a fraction of the context window in (0, 1]",
        ),
        (
            &["compact_threshold=1.5"],
            "compact_threshold = 1.5 is not allowed",
        ),
        (
            &["max_output_tokens=0"],
            "max_output_tokens = 0 is not allowed: at least 1 token",
        ),
        (
            &["model_context_window=8000", "max_output_tokens=6000"],
            "max_output_tokens = 6000 is not allowed: less than half the context window (8000 tokens)",
        ),
        (
            &["model_context_window=8000", "tool_output_max_tokens=4000"],
            "tool_output_max_tokens = 4000 is not allowed: at most a quarter of the context window",
        ),
        (
            &["journal_output_max_bytes=10"],
            "journal_output_max_bytes = 10 is not allowed: at least 1024 bytes",
        ),
        (
            &["max_terminal_sessions=0"],
            "max_terminal_sessions = 0 is not allowed: 1 to 64 (default 8)",
        ),
        (
            &["max_terminal_sessions=65"],
            "max_terminal_sessions = 65 is not allowed: 1 to 64",
        ),
    ];
    for (settings, needle) in cases {
        let mut command = env.cox_with(&server);
        for setting in *settings {
            command.args(["-c", setting]);
        }
        let output = run(command.args(["exec", "hi"]));
        expect_failure(&output, 2, needle);
    }
    // `--max-turns 0` on the command line is the same setting.
    let output = run(env
        .cox_with(&server)
        .args(["exec", "--max-turns", "0", "hi"]));
    expect_failure(&output, 2, "max_turns = 0 is not allowed");
    assert!(server.requests().is_empty(), "no model call");
    assert!(
        files_under(&env.home.join("sessions")).is_empty(),
        "no journal, no lock: {:?}",
        files_under(&env.home)
    );
}

/// Issue 14: a start rejected after the journal was created left an empty session that
/// `cox resume --last` then picked. Now a broken `projects.toml` (read at start) is refused
/// before the journal exists, and `--last` passes over a session that never got its task.
#[test]
fn rejected_starts_leave_no_session_and_resume_last_skips_taskless_ones_issue_14() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["First answer."]), Turn::text(&["Continued."])],
    })
    .unwrap();
    let first = run(env.cox_with(&server).args(["exec", "first task"]));
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let before = files_under(&env.home.join("sessions"));

    fs_err::write(env.home.join("projects.toml"), "[projects\n").unwrap();
    let output = run(env.cox_with(&server).args(["exec", "second task"]));
    expect_failure(&output, 2, "projects.toml");
    assert_eq!(
        files_under(&env.home.join("sessions")),
        before,
        "nothing new"
    );
    fs_err::remove_file(env.home.join("projects.toml")).unwrap();

    // A session whose process died before its prompt was recorded (the crash point right
    // after a plan step's session was opened): it has a journal but no task.
    fs_err::write(env.repo.join("plan.json"), PLAN).unwrap();
    let crashed = env
        .cox_with(&server)
        .env(cox_core::crash::ENV, "run:step-opened")
        .args(["run", "--plan", "plan.json"])
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(crashed.status.signal(), Some(9), "{}", stderr(&crashed));
    let all = journals(&env.home);
    assert_eq!(all.len(), 2);
    assert!(!records(&all[1]).iter().any(|r| r["type"] == "user"));

    // `--last` continues the newest session that has a task: the first one.
    let resumed = run(env.cox_with(&server).args(["resume", "--last", "go on"]));
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_eq!(stdout(&resumed), "Continued.\n");
    assert!(records(&all[0]).iter().any(|r| r["text"] == "go on"));
}

/// Issue 14: a full disk left `<id>.jsonl.new` behind. With a file size limit of zero every
/// write fails (EFBIG; cox does not die of SIGXFSZ): the start fails naming the journal, and no
/// temp file stays.
#[test]
fn a_journal_that_cannot_be_written_leaves_no_temp_file_issue_14() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["never"])],
    })
    .unwrap();
    fs_err::create_dir_all(env.home.join("sessions")).unwrap();
    // `prlimit -- cox …` with cox's environment: the limit applies to cox alone.
    let cox = env.cox_with(&server);
    let mut limited = std::process::Command::new("prlimit");
    limited
        .arg("--fsize=0")
        .arg("--")
        .arg(cox.get_program())
        .args(cox.get_args())
        .args(["exec", "hi"])
        .current_dir(&env.repo)
        .stdin(std::process::Stdio::null());
    for (name, value) in cox.get_envs() {
        match value {
            Some(value) => limited.env(name, value),
            None => limited.env_remove(name),
        };
    }
    let output = run(&mut limited);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("sessions/"), "{}", stderr(&output));
    assert_eq!(
        files_under(&env.home.join("sessions")),
        Vec::<PathBuf>::new(),
        "neither a journal nor its temp file nor a lock"
    );
    assert!(server.requests().is_empty());
}

/// Issue 14: the README said the journal keeps a command's whole output; it keeps at most
/// `journal_output_max_bytes` (1 MiB by default), now a setting, and says so.
#[test]
fn the_journal_keeps_output_up_to_its_configured_cap_issue_14() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![shell("seq 1 20000"), Turn::text(&["Counted."])],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args([
            "-c",
            "journal_output_max_bytes=4096",
            "-c",
            "tool_output_max_tokens=200",
        ])
        .args(["exec", "count"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = records(&journals(&env.home)[0]);
    let end = records.iter().find(|r| r["type"] == "tool_end").unwrap();
    let full = end["full"].as_str().unwrap();
    assert!(full.len() < 4096 + 200, "{}", full.len());
    assert!(
        full.contains("\n1\n2\n3\n") && full.contains("19999\n20000"),
        "head and tail"
    );
    assert!(end["output"].as_str().unwrap().len() < full.len());
    let readme =
        fs_err::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(readme.contains("journal_output_max_bytes"));
    assert!(!readme.contains("whole output is kept"));
}
