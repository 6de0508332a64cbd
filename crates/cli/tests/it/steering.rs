//! Headless steering: `--steerable` with JSON Lines control ops on stdin, against a mock model that
//! streams slowly. The barrier guarantee — after `paused`, no tool call starts until `resume` or
//! `steer` — is checked on the file system and on the mock's request log.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::harness::{alive, pids_with_arg};
use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

struct Run {
    _root: tempfile::TempDir,
    repo: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    seen: Vec<Value>,
}

fn start(server: &MockServer, extra: &[&str]) -> Run {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    fs_err::create_dir_all(&repo).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cox"))
        .current_dir(&repo)
        .env("COX_HOME", root.path().join("home"))
        .env("OPENAI_API_KEY", "sk-test-steering-0000001")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["exec", "--json", "--steerable"])
        .args(extra)
        .arg("do the work")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, events) = channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(event);
            }
        }
    });
    let stdin = child.stdin.take();
    Run {
        _root: root,
        repo,
        child,
        stdin,
        events,
        seen: Vec::new(),
    }
}

impl Run {
    /// Waits for the next event of `kind` (bounded: a missing event fails the test, it never hangs).
    fn wait(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{kind}` event; saw {:?}", self.kinds()));
            self.seen.push(event.clone());
            if event["type"] == kind {
                return event;
            }
        }
    }

    fn kinds(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    fn send(&mut self, op: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{op}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin (the end of control input) and waits for cox to exit. The run (and its temp
    /// directory) stays alive for inspection.
    fn finish(&mut self) -> (i32, Vec<String>, PathBuf) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        while let Ok(event) = self.events.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(event);
        }
        let kinds = self.kinds();
        (status.code().unwrap_or(-1), kinds, self.repo.clone())
    }

    fn file(&self, name: &str) -> Option<String> {
        fs_err::read_to_string(self.repo.join(name)).ok()
    }
}

fn slow_text(chunks: &[&str], delay_ms: u64) -> Turn {
    let mut turn = Turn::text(chunks);
    turn.delay_ms = delay_ms;
    turn
}

fn append(word: &str) -> String {
    format!(r#"{{"command":["sh","-c","echo {word} >> log.txt"]}}"#)
}

#[test]
fn pause_during_text_stops_everything_and_a_steer_is_pinned_from_then_on() {
    let first = slow_text(&["I will ", "delete ", "the ", "wrapper ", "now."], 150).with_call(
        "shell",
        &append("deleted"),
        1,
    );
    let after =
        Turn::text(&["Acknowledged: keeping the wrapper."]).with_call("shell", &append("kept"), 1);
    let server = MockServer::start(Script {
        turns: vec![first, after, Turn::text(&["Done."])],
    })
    .unwrap();
    let mut run = start(&server, &["--steer-grace", "0"]);
    run.wait("agent_message_delta");
    run.send(r#"{"op":"pause"}"#);
    run.wait("paused");
    assert_eq!(run.file("log.txt"), None, "nothing ran");
    run.send(r#"{"op":"steer","text":"Keep the wrapper, mark it @deprecated"}"#);
    run.wait("steered");
    let (code, kinds, repo) = run.finish();
    assert_eq!(code, 0, "{kinds:?}");
    // The cut response's call never ran; the steered one did.
    assert_eq!(
        fs_err::read_to_string(repo.join("log.txt")).unwrap(),
        "kept\n"
    );
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        3,
        "the cut request, the steered one, the last"
    );
    for request in &requests[1..] {
        let instructions = request.body["instructions"].as_str().unwrap();
        assert!(
            instructions.contains("- Keep the wrapper, mark it @deprecated"),
            "pinned in every later request"
        );
    }
    let input = requests[1].body["input"].to_string();
    assert!(
        input.contains("[cut short: the user paused here]"),
        "{input}"
    );
    assert!(
        input.contains("[Correction from the user, from now on] Keep the wrapper"),
        "{input}"
    );
}

#[test]
fn pause_while_tool_call_arguments_stream_then_resume() {
    let mut first = Turn::text(&["Working."]).with_call("shell", &append("first"), 12);
    first.delay_ms = 120;
    let again = Turn::call("shell", &append("second"));
    let server = MockServer::start(Script {
        turns: vec![first, again, Turn::text(&["Done."])],
    })
    .unwrap();
    let mut run = start(&server, &["--steer-grace", "0"]);
    run.wait("agent_message_delta");
    run.send(r#"{"op":"pause"}"#);
    run.wait("paused");
    run.send(r#"{"op":"resume"}"#);
    run.wait("resumed");
    let (code, kinds, repo) = run.finish();
    assert_eq!(code, 0, "{kinds:?}");
    // The call whose arguments were streaming when the pause came was never completed, never run.
    assert_eq!(
        fs_err::read_to_string(repo.join("log.txt")).unwrap(),
        "second\n"
    );
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_pause_in_the_grace_window_holds_the_command_until_resume() {
    let turns = vec![Turn::call("shell", &append("held")), Turn::text(&["Done."])];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut run = start(&server, &["--steer-grace", "400"]);
    run.wait("action_pending");
    run.send(r#"{"op":"pause"}"#);
    run.wait("paused");
    // Well past the grace window: the command is held at the barrier, not run.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        run.file("log.txt"),
        None,
        "the held command ran while paused"
    );
    assert!(!run.kinds().contains(&"tool_result".to_string()));
    run.send(r#"{"op":"resume"}"#);
    let (code, kinds, repo) = run.finish();
    assert_eq!(code, 0, "{kinds:?}");
    assert_eq!(
        fs_err::read_to_string(repo.join("log.txt")).unwrap(),
        "held\n"
    );
}

#[test]
fn a_steer_in_the_grace_window_cancels_the_command() {
    let turns = vec![
        Turn::call("shell", &append("unwanted")),
        Turn::call("shell", &append("wanted")),
        Turn::text(&["Done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut run = start(&server, &["--steer-grace", "2000"]);
    run.wait("action_pending");
    run.send(r#"{"op":"steer","text":"Do not touch log.txt that way"}"#);
    let (code, kinds, repo) = run.finish();
    assert_eq!(code, 0, "{kinds:?}");
    assert_eq!(
        fs_err::read_to_string(repo.join("log.txt")).unwrap(),
        "wanted\n"
    );
    let outputs = server.requests()[1].body["input"].to_string();
    assert!(
        outputs.contains("not run: the user steered before this call started"),
        "{outputs}"
    );
}

#[test]
fn interrupt_kills_the_command_tree_and_the_session_waits_for_a_directive() {
    let command =
        r#"{"command":["sh","-c","sleep 100.4712 & echo up > child.pid; wait","shell-4712"]}"#;
    let turns = vec![
        Turn::call("shell", command),
        Turn::text(&["Stopped as asked."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut run = start(&server, &["--steer-grace", "0"]);
    run.wait("tool_call");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pids = Vec::new();
    while run.file("child.pid").is_none_or(|t| !t.ends_with('\n')) || pids.len() < 2 {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(10));
        pids = [pids_with_arg("100.4712"), pids_with_arg("shell-4712")].concat();
    }
    run.send(r#"{"op":"interrupt"}"#);
    let result = run.wait("tool_result");
    assert!(
        result["output"]
            .as_str()
            .unwrap()
            .starts_with("interrupted by the user"),
        "{result}"
    );
    // Killed with the process group: gone at once (allowing the kernel a moment under load).
    let deadline = Instant::now() + Duration::from_secs(2);
    for pid in &pids {
        while alive(*pid) {
            assert!(
                Instant::now() < deadline,
                "process {pid} survived the interrupt"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // The session did not end: a directive starts the next turn, which sees the interrupted call.
    run.send(r#"{"op":"steer","text":"Leave the server alone."}"#);
    let (code, kinds, _) = run.finish();
    assert_eq!(code, 0, "{kinds:?}");
    let next = server.requests()[1].body["input"].to_string();
    assert!(next.contains("interrupted by the user"), "{next}");
    assert!(next.contains("Leave the server alone."), "{next}");
    assert!(
        next.contains("The user interrupted the work here."),
        "{next}"
    );
}

/// Issue 17: the person kills a terminal session the model left running (`kill_terminal`, what
/// `/kill N` sends) while the model goes on with something else: it ends with what it started,
/// `terminal_exited` says so (once) before the session ends, and an id that is not running is a
/// warning.
#[test]
fn kill_terminal_ends_a_session_while_the_model_works() {
    let start_it = r#"{"cmd":"bash -c 'exec -a term-5121-child sleep 300' & exec -a term-5121 sleep 300","yield_time_ms":300}"#;
    let turns = vec![
        Turn::call("exec_command", start_it),
        slow_text(&["It ", "runs ", "on ", "and ", "on ", "and ", "on."], 400),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut run = start(&server, &["--steer-grace", "0"]);
    let started = run.wait("terminal_started");
    assert_eq!(started["id"], 1, "{started}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids_with_arg("term-5121").is_empty() || pids_with_arg("term-5121-child").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the session's processes never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run.wait("agent_message_delta");
    run.send(r#"{"op":"kill_terminal","id":9}"#);
    let warning = run.wait("warning");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("no running terminal session 9"),
        "{warning}"
    );
    run.send(r#"{"op":"kill_terminal","id":1}"#);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids_with_arg("term-5121").is_empty() || !pids_with_arg("term-5121-child").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the session or its child survived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let still_streaming = run.wait("agent_message_delta");
    assert_eq!(still_streaming["type"], "agent_message_delta");
    let exited = run.wait("terminal_exited");
    assert_eq!(exited["id"], 1, "{exited}");
    assert!(exited["signal"].is_number(), "{exited}");
    let (code, kinds, _) = run.finish();
    assert_eq!(code, 0, "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| *k == "terminal_exited").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("session_completed"));
}

/// Issue 17: typing into a terminal session is an action like a command — announced and held for
/// the grace window — so a steer in that window keeps the keys from the session: the shell in it
/// never runs the line, and the model hears why.
#[test]
fn a_steer_in_the_grace_window_keeps_keys_from_a_terminal_session() {
    let turns = vec![
        Turn::call(
            "exec_command",
            r#"{"cmd":"bash --norc -i","yield_time_ms":500}"#,
        ),
        Turn::call(
            "write_stdin",
            r#"{"session_id":1,"chars":"echo typed >> log.txt\n","yield_time_ms":500}"#,
        ),
        Turn::call(
            "write_stdin",
            r#"{"session_id":1,"chars":"echo wanted >> log.txt\n","yield_time_ms":1000}"#,
        ),
        Turn::text(&["Done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut run = start(&server, &["--steer-grace", "1500"]);
    // The exec_command call's own window passes; the first write's is answered by a steer.
    run.wait("terminal_started");
    run.wait("action_pending");
    run.send(r#"{"op":"steer","text":"Do not type that"}"#);
    let (code, kinds, repo) = run.finish();
    assert_eq!(code, 0, "{kinds:?}");
    assert_eq!(
        fs_err::read_to_string(repo.join("log.txt")).unwrap(),
        "wanted\n"
    );
    let outputs = server.requests()[2].body["input"].to_string();
    assert!(
        outputs.contains("not run: the user steered before this call started"),
        "{outputs}"
    );
}

/// Issue 21: while paused, `undo` puts back the last action before the person steers; the
/// model hears of it at its next request. Asked while the agent runs, it is refused with a
/// warning saying to pause first.
#[test]
fn undo_while_paused_puts_back_the_last_action_and_the_model_is_told_issue_21() {
    let turns = vec![
        Turn::call(
            "shell",
            r#"{"command":"echo draft > notes.txt && echo kept >> log.txt"}"#,
        ),
        slow_text(&["Looking ", "at ", "it ", "now ", "slowly."], 400),
        Turn::text(&["Understood, I left it."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut run = start(&server, &[]);
    let checkpoint = run.wait("checkpoint");
    assert_eq!(checkpoint["kind"], "action");
    assert_eq!(run.file("notes.txt").as_deref(), Some("draft\n"));
    run.wait("agent_message_delta");
    run.send(r#"{"op":"undo"}"#);
    let refused = run.wait("warning");
    assert!(
        refused["message"].as_str().unwrap().contains("pause first"),
        "{refused}"
    );
    run.send(r#"{"op":"pause"}"#);
    run.wait("paused");
    run.send(r#"{"op":"undo"}"#);
    let undone = run.wait("undone");
    assert_eq!(undone["undid"], serde_json::json!([checkpoint["id"]]));
    assert_eq!(
        run.file("notes.txt"),
        None,
        "the file the action made is gone"
    );
    assert_eq!(run.file("log.txt"), None);
    run.send(r#"{"op":"steer","text":"Do not write notes at all."}"#);
    let (code, kinds, _) = run.finish();
    assert_eq!(code, 0, "{kinds:?}");
    let last = server.requests().last().unwrap().body["input"].to_string();
    assert!(last.contains("The user undid your change"), "{last}");
    assert!(last.contains("notes.txt"), "{last}");
}
