//! Project rules end to end: the "no-real-db" rule blocks a test that connects to Postgres and a
//! `psql` command before they run, the model sees the rule, and the in-memory mock goes through.

use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

use crate::harness::*;

const RULES: &str = r#"[[rule]]
id = "no-real-db"
text = "NEVER use the real database in tests; only in-memory mocks."
deny_command = ["psql *", "*DATABASE_URL=postgres*"]
deny_content = { paths = ["tests/**"], regex = "pg\\.connect|new Pool\\(" }
deny_write = ["migrations/**"]
"#;

fn add(path: &str, body: &str) -> Turn {
    let lines: String = body.lines().map(|l| format!("+{l}\n")).collect();
    let patch = format!("*** Begin Patch\n*** Add File: {path}\n{lines}*** End Patch\n");
    Turn::call(
        "apply_patch",
        &serde_json::json!({ "input": patch }).to_string(),
    )
}

/// A repository with the rules, trusted by the person.
fn trusted_env() -> Env {
    let env = Env::new();
    fs_err::create_dir_all(env.repo.join(".git")).unwrap();
    fs_err::create_dir_all(env.repo.join(".cox")).unwrap();
    fs_err::write(env.repo.join(".cox/rules.toml"), RULES).unwrap();
    let trusted = run(env.cox().arg("trust"));
    assert_eq!(trusted.status.code(), Some(0), "{}", stderr(&trusted));
    assert!(
        stderr(&trusted).contains("1 rules from"),
        "{}",
        stderr(&trusted)
    );
    env
}

#[test]
fn the_no_real_db_rule_blocks_before_anything_runs() {
    let env = trusted_env();
    let turns = vec![
        add("tests/db.test.js", "const pg = require('pg');\nconst client = pg.connect(process.env.DATABASE_URL);"),
        Turn::call("shell", r#"{"command":"git status && psql -c 'select 1' > out.txt"}"#),
        Turn::call("shell", r#"{"command":["sh","-c","echo applying > migrations.log"]}"#)
            .with_call("apply_patch", &serde_json::json!({"input": "*** Begin Patch\n*** Add File: migrations/002.sql\n+drop table users;\n*** End Patch\n"}).to_string(), 1),
        add("tests/db.test.js", "const db = createInMemoryDb();\ntest('finds a user', () => db.find(1));"),
        Turn::text(&["The test uses an in-memory mock."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "--json", "write a db test"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        fs_err::read_to_string(env.repo.join("tests/db.test.js")).unwrap(),
        "const db = createInMemoryDb();\ntest('finds a user', () => db.find(1));\n"
    );
    assert!(!env.repo.join("out.txt").exists(), "psql's line never ran");
    assert!(!env.repo.join("migrations/002.sql").exists());
    assert!(
        env.repo.join("migrations.log").exists(),
        "an unrelated command in the same response ran"
    );
    let events: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let blocked: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "rule_blocked")
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        blocked,
        [
            "`pg.connect` may not appear in tests/db.test.js",
            "the command `psql -c select 1` is denied",
            "writing migrations/002.sql is denied"
        ]
    );
    let requests = server.requests();
    for request in &requests {
        let instructions = request.body["instructions"].as_str().unwrap();
        assert!(instructions.contains(
            "- [no-real-db] NEVER use the real database in tests; only in-memory mocks."
        ));
    }
    let seen = requests[1].body["input"].to_string();
    assert!(
        seen.contains("blocked by project rule `no-real-db`: NEVER use the real database in tests"),
        "{seen}"
    );
}

/// A hostile model sends its patches through `shell` after `cd DIR &&` (quoted or not), so the
/// paths in the patch do not name the protected directory: the rules see the paths as they land.
#[test]
fn patches_sent_after_cd_are_checked_where_they_land() {
    let env = trusted_env();
    fs_err::create_dir_all(env.repo.join("tests")).unwrap();
    fs_err::create_dir_all(env.repo.join("migrations")).unwrap();
    let heredoc = |cd: &str, path: &str, line: &str| {
        let script = format!(
            "cd {cd} && apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: {path}\n+{line}\n*** End Patch\nEOF\n"
        );
        Turn::call(
            "shell",
            &serde_json::json!({ "command": script }).to_string(),
        )
    };
    let turns = vec![
        heredoc("tests", "db.test.js", "const client = pg.connect(process.env.DATABASE_URL);"),
        heredoc("'migrations'", "003.sql", "drop table users;"),
        Turn::call(
            "shell",
            &serde_json::json!({
                "command": ["bash", "-lc", "cd \"tests\" && apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: ../migrations/004.sql\n+drop table orders;\n*** End Patch\nEOF"],
            })
            .to_string(),
        ),
        heredoc("tests", "ok.test.js", "const db = createInMemoryDb();"),
        Turn::text(&["done"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "--json", "write a db test"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let blocked = blocked_reasons(&output);
    assert_eq!(
        blocked,
        [
            "`pg.connect` may not appear in tests/db.test.js",
            "writing migrations/003.sql is denied",
            "writing migrations/004.sql is denied"
        ]
    );
    assert!(!env.repo.join("tests/db.test.js").exists());
    assert!(!env.repo.join("migrations/003.sql").exists());
    assert!(!env.repo.join("migrations/004.sql").exists());
    assert_eq!(
        fs_err::read_to_string(env.repo.join("tests/ok.test.js")).unwrap(),
        "const db = createInMemoryDb();\n",
        "the allowed patch after `cd` applied"
    );
}

#[test]
fn a_malformed_rules_file_is_never_confirmed_and_an_untrusted_one_is_not_in_force() {
    let env = Env::new();
    fs_err::create_dir_all(env.repo.join(".cox")).unwrap();
    fs_err::write(
        env.repo.join(".cox/rules.toml"),
        "[[rule]]\nid = \"x\"\ntext = \"t\"\ndeny_comand = [\"a\"]\n",
    )
    .unwrap();
    // Trusting checks the file first: nothing malformed is ever confirmed.
    let output = run(env.cox().arg("trust"));
    expect_failure(
        &output,
        2,
        ".cox/rules.toml: line 4: unknown field `deny_comand`",
    );
    let projects = env.home.join("projects.toml");
    assert!(!projects.exists(), "nothing recorded");
    // Untrusted, the file configures nothing, and the session says so before any model call.
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["never"])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "hi"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is not in force") && stderr(&output).contains("cox trust"),
        "{}",
        stderr(&output)
    );
    assert!(
        !server.requests()[0].body["instructions"]
            .to_string()
            .contains("deny_comand")
    );
}

/// A rules file changed after the person trusted the project (a pull, a command in a fallback
/// sandbox, anyone) is not obeyed until `cox trust` runs again: the confirmed rules stay in force,
/// and the session says so.
#[test]
fn a_changed_rules_file_waits_for_the_person() {
    let env = trusted_env();
    fs_err::write(env.repo.join(".cox/rules.toml"), "").unwrap();
    let turns = vec![
        Turn::call("shell", r#"{"command":"psql -c 'select 1' > out.txt"}"#),
        Turn::text(&["ok"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args(["exec", "--json", "query"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !env.repo.join("out.txt").exists(),
        "the confirmed rule still blocks"
    );
    assert!(
        stdout(&output).contains("changed since you trusted"),
        "{}",
        stdout(&output)
    );
    // Confirming the new file lifts the rule.
    let trusted = run(env.cox().arg("trust"));
    assert!(stderr(&trusted).contains("0 rules"), "{}", stderr(&trusted));
    let turns = vec![
        Turn::call("shell", r#"{"command":"echo ran > out.txt"}"#),
        Turn::text(&["ok"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args(["exec", "--json", "query"]));
    assert!(!stdout(&output).contains("changed since you trusted"));
    assert!(env.repo.join("out.txt").exists());
}

/// A hostile model starts an interactive shell (allowed) and types the denied command into it:
/// what is typed is checked like a command, so the rule holds and nothing runs.
#[test]
fn a_denied_command_typed_into_a_terminal_session_is_blocked() {
    let env = trusted_env();
    let start = serde_json::json!({"cmd": "bash --norc -i", "yield_time_ms": 800});
    let typed = serde_json::json!({"session_id": 1, "chars": "psql -c 'select 1' > out.txt\n", "yield_time_ms": 500});
    let harmless =
        serde_json::json!({"session_id": 1, "chars": "echo fine > ok.txt\n", "yield_time_ms": 800});
    let turns = vec![
        Turn::call("exec_command", &start.to_string()),
        Turn::call("write_stdin", &typed.to_string()),
        Turn::call("write_stdin", &harmless.to_string()),
        Turn::text(&["done"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "--json", "query the db"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !env.repo.join("out.txt").exists(),
        "the typed psql line never ran"
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("ok.txt")).unwrap(),
        "fine\n",
        "the session itself works"
    );
    let blocked = blocked_reasons(&output);
    assert_eq!(blocked, ["the command `psql -c select 1` is denied"]);
}

/// A hostile model tries to get the denied command past the rule by typing it in pieces (`psq`,
/// then `l …⏎`), by editing it on the line (`psqx`, Backspace, `l`), and by typing `sql …` and
/// moving the cursor to put the `p` in front (Home): each is read as the line the shell will run,
/// or refused as unreadable, so nothing runs — and plain typing still works.
#[test]
fn a_denied_command_cannot_be_typed_in_pieces_or_edited_into_a_session() {
    let env = trusted_env();
    let write = |chars: &str, keys: &[&str]| {
        serde_json::json!({"session_id": 1, "chars": chars, "keys": keys, "yield_time_ms": 300})
            .to_string()
    };
    let turns = vec![
        Turn::call(
            "exec_command",
            &serde_json::json!({"cmd": "bash --norc -i", "yield_time_ms": 800}).to_string(),
        ),
        Turn::call("write_stdin", &write("psq", &[])),
        Turn::call("write_stdin", &write("l -c 1 > split.txt\n", &[])),
        Turn::call("write_stdin", &write("", &["C-c"])),
        Turn::call(
            "write_stdin",
            &write("psqx\u{7f}l -c 1 > edited.txt\n", &[]),
        ),
        Turn::call("write_stdin", &write("sql -c 1 > moved.txt", &[])),
        Turn::call("write_stdin", &write("", &["Home"])),
        Turn::call("write_stdin", &write("", &["C-c"])),
        Turn::call("write_stdin", &write("echo fine > ok.txt\n", &[])),
        Turn::text(&["done"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "--json", "query the db"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for file in ["split.txt", "edited.txt", "moved.txt"] {
        assert!(!env.repo.join(file).exists(), "{file}: the psql line ran");
    }
    assert_eq!(
        fs_err::read_to_string(env.repo.join("ok.txt")).unwrap(),
        "fine\n",
        "the session itself works"
    );
    let blocked = blocked_reasons(&output);
    assert_eq!(blocked.len(), 3, "{blocked:?}");
    assert_eq!(blocked[0], "the command `psql -c 1` is denied");
    assert_eq!(blocked[1], "the command `psql -c 1` is denied");
    assert!(
        blocked[2]
            .starts_with("cox cannot tell which command this runs: it holds Esc or a cursor key"),
        "{}",
        blocked[2]
    );
}

/// The reasons of every `rule_blocked` event a `--json` run printed.
fn blocked_reasons(output: &std::process::Output) -> Vec<String> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "rule_blocked")
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect()
}
