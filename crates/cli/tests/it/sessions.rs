//! Sessions survive: the journal, `cox sessions`, `cox resume`, and SIGKILL at random moments.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::text;
use cox_testkit::{MockServer, Script, Turn};

const KEY: &str = "sk-test-sessions-0123456789";

struct Env {
    _root: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
}

impl Env {
    fn new() -> Env {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        let home = root.path().join("cox-home");
        fs_err::create_dir_all(&repo).unwrap();
        Env {
            _root: root,
            repo,
            home,
        }
    }

    fn cox(&self, server: &MockServer) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cox"));
        command
            .current_dir(&self.repo)
            .env("COX_HOME", &self.home)
            .env("OPENAI_API_KEY", KEY)
            .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
            .env_remove("ANTHROPIC_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn journals(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = fs_err::read_dir(self.home.join("sessions"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        // A journal being created is staged as `<id>.jsonl.new`: not a journal yet.
        paths.retain(|p| p.extension().is_some_and(|x| x == "jsonl"));
        paths.sort();
        paths
    }
}

fn expect(output: &Output, code: i32, needle: &str) {
    let err = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
}

#[test]
fn a_finished_session_is_listed_and_resumes_only_with_a_new_prompt() {
    let env = Env::new();
    let turns = vec![
        Turn::call("shell", r#"{"command":"echo one >> log.txt"}"#),
        Turn::text(&["First done."]),
        Turn::text(&["Second done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let first = env
        .cox(&server)
        .args(["exec", "do the first thing"])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));

    let journal = fs_err::read_to_string(&env.journals()[0]).unwrap();
    assert!(!journal.contains(KEY), "the key reached the journal");
    let kinds: Vec<String> = journal
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "session",
            "user",
            "response",
            "tool_start",
            "spawned",
            "checkpoint",
            "tool_end",
            "response",
            "task_end"
        ]
    );

    // A long output is shortened for the model but kept whole in the journal.
    let long = Env::new();
    let server_long = MockServer::start(Script {
        turns: vec![
            Turn::call("shell", r#"{"command":["seq","1","20000"]}"#),
            Turn::text(&["ok"]),
        ],
    })
    .unwrap();
    let run_long = long
        .cox(&server_long)
        .args(["exec", "count"])
        .output()
        .unwrap();
    assert_eq!(
        run_long.status.code(),
        Some(0),
        "{}",
        text(&run_long.stderr)
    );
    let records = load_journal(&long.journals()[0]);
    let end = records.iter().find(|r| r["type"] == "tool_end").unwrap();
    assert!(
        end["output"].as_str().unwrap().contains("lines ("),
        "shortened for the model"
    );
    assert!(end["full"].as_str().unwrap().ends_with("19999\n20000\n"));
    assert!(
        end["full"].as_str().unwrap().contains("\n10000\n"),
        "the middle is in the journal"
    );

    let list = env.cox(&server).arg("sessions").output().unwrap();
    let listing = text(&list.stdout);
    assert!(listing.contains("completed"), "{listing}");
    assert!(listing.contains("do the first thing"), "{listing}");

    let again = env
        .cox(&server)
        .args(["resume", "--last"])
        .output()
        .unwrap();
    expect(&again, 2, "already completed its task; give a new prompt");

    let next = env
        .cox(&server)
        .args(["resume", "--last", "now the second"])
        .output()
        .unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", text(&next.stderr));
    assert_eq!(text(&next.stdout), "Second done.\n");
    let request = &server.requests()[2].body;
    let input = request["input"].as_array().unwrap();
    let roles: Vec<String> = input
        .iter()
        .map(|i| {
            format!(
                "{}{}",
                i["type"].as_str().unwrap(),
                i["role"]
                    .as_str()
                    .map(|r| format!(":{r}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            "message:user",
            "function_call",
            "function_call_output",
            "message:assistant",
            "message:user"
        ]
    );
    assert_eq!(
        request["prompt_cache_key"],
        server.requests()[0].body["prompt_cache_key"],
        "same session id"
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("log.txt")).unwrap(),
        "one\n"
    );
}

#[test]
fn resume_errors_name_the_problem() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["ok"])],
    })
    .unwrap();
    expect(
        &env.cox(&server)
            .args(["resume", "--last"])
            .output()
            .unwrap(),
        2,
        "there is no recorded session",
    );
    let ok = env.cox(&server).args(["exec", "hi"]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
    expect(
        &env.cox(&server).args(["resume", "nope"]).output().unwrap(),
        2,
        "no session `nope`",
    );
    expect(
        &env.cox(&server).arg("resume").output().unwrap(),
        2,
        "which session? give its id or --last",
    );

    // A line broken in the middle of the file is corruption, not a torn end.
    let path = &env.journals()[0];
    let content = fs_err::read_to_string(path).unwrap();
    let mut lines: Vec<&str> = content.lines().collect();
    lines.insert(1, "{not json");
    fs_err::write(path, lines.join("\n") + "\n").unwrap();
    let id = path.file_stem().unwrap().to_string_lossy().to_string();
    let broken = env
        .cox(&server)
        .args(["resume", &id, "more"])
        .output()
        .unwrap();
    expect(&broken, 2, "line 2 is not a journal record");
}

fn load_journal(path: &Path) -> Vec<serde_json::Value> {
    let content = fs_err::read_to_string(path).unwrap();
    content
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Kills `cox exec` with SIGKILL at 50 random moments of a six-call session, then resumes it:
/// every journal loads, the resumed run finishes, and no call's side effect happens twice.
#[test]
fn sigkill_at_random_moments_then_resume_repeats_no_side_effect() {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for round in 0..50 {
        let env = Env::new();
        let mut turns: Vec<Turn> = (1..=6)
            .map(|n| {
                // argv with `sh -c`: a login shell (`bash -lc`) would spend most of the round reading profiles.
                let command =
                    format!(r#"{{"command":["sh","-c","sleep 0.01; echo {n} >> log.txt"]}}"#);
                let mut turn = Turn::call("shell", &command);
                turn.delay_ms = 2;
                turn
            })
            .collect();
        // Spare answers: a run killed while the final answer streamed has used one up unrecorded,
        // and its resumed run asks again.
        turns.extend((0..3).map(|_| Turn::text(&["Done."])));
        let server = MockServer::start(Script { turns }).unwrap();
        let mut child = env
            .cox(&server)
            .args(["exec", "count to six"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(0..160)));
        let _ = child.kill();
        let killed = child.wait_with_output().unwrap();

        let journals = env.journals();
        let resumed = env
            .cox(&server)
            .args(["resume", "--last"])
            .output()
            .unwrap();
        let outcome = if killed.status.success() {
            expect(&resumed, 2, "already completed");
            "finished before the kill"
        } else if journals.is_empty() {
            expect(&resumed, 2, "there is no recorded session");
            "killed before the journal existed"
        } else if !load_journal(&journals[0])
            .iter()
            .any(|r| r["type"] == "user")
        {
            // Killed between creating the journal and recording the prompt: nothing to continue,
            // and `--last` passes it over.
            expect(&resumed, 2, "there is no recorded session with a task");
            "killed before the task was recorded"
        } else if resumed.status.code() == Some(2)
            && text(&resumed.stderr).contains("already completed")
        {
            // Killed after the final answer was recorded: the task was done.
            let records = load_journal(&journals[0]);
            let last_response = records
                .iter()
                .rev()
                .find(|r| r["type"] == "response")
                .unwrap();
            assert_eq!(last_response["text"], "Done.", "round {round}");
            "killed after the answer"
        } else {
            let records = load_journal(&journals[0]);
            assert_eq!(
                records[0]["type"], "session",
                "round {round}: the journal still loads"
            );
            assert_eq!(
                resumed.status.code(),
                Some(0),
                "round {round}: {}",
                text(&resumed.stderr)
            );
            assert_eq!(text(&resumed.stdout), "Done.\n", "round {round}");
            "killed, then resumed"
        };
        *outcomes.entry(outcome).or_default() += 1;
        let log = fs_err::read_to_string(env.repo.join("log.txt")).unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        for line in log.lines() {
            assert!(
                seen.insert(line.to_string()),
                "round {round}: step {line} ran twice:\n{log}"
            );
        }
    }
    assert!(
        outcomes.get("killed, then resumed").copied().unwrap_or(0) >= 25,
        "{outcomes:?}"
    );
}
