//! Terminal sessions (`exec_command`, `write_stdin`) driven by a scripted model through the real
//! binary and its sandbox: a REPL, a prompt, vim, Ctrl-C, and nothing left running afterwards.

use cox_testkit::{MockServer, Script, Turn};
use serde_json::json;

use crate::harness::*;

/// Runs the calls (tool name, arguments) as one task; returns what the model was shown for each.
fn drive(env: &Env, calls: &[(&str, serde_json::Value)]) -> Vec<String> {
    let mut turns: Vec<Turn> = calls
        .iter()
        .map(|(name, args)| Turn::call(name, &args.to_string()))
        .collect();
    turns.push(Turn::text(&["done"]));
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args(["exec", "use the terminal"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let requests = server.requests();
    let last = &requests.last().unwrap().body;
    last["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .map(|i| i["output"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_python_repl_keeps_its_state_between_calls_and_ends_on_ctrl_d() {
    if !cox_testkit::outside_tool("/usr/bin/python3", "apt-get install python3") {
        return;
    }
    let env = Env::new();
    let seen = drive(
        &env,
        &[
            (
                "exec_command",
                json!({"cmd": "/usr/bin/python3 -i -q", "yield_time_ms": 1500}),
            ),
            (
                "write_stdin",
                json!({"session_id": 1, "chars": "x = 41 + 1\n", "yield_time_ms": 500}),
            ),
            (
                "write_stdin",
                json!({"session_id": 1, "chars": "print(x * 10)", "keys": ["Enter"], "yield_time_ms": 500}),
            ),
            (
                "write_stdin",
                json!({"session_id": 1, "keys": ["C-d"], "yield_time_ms": 3000}),
            ),
        ],
    );
    assert!(
        seen[0].contains("Process running with session ID 1"),
        "{}",
        seen[0]
    );
    assert!(seen[0].contains(">>>"), "{}", seen[0]);
    assert!(seen[2].contains("420"), "{}", seen[2]);
    assert!(
        !seen[2].contains("\u{1b}"),
        "no escape codes: {:?}",
        seen[2]
    );
    assert!(
        seen[3].contains("Process exited with code 0"),
        "{}",
        seen[3]
    );
}

#[test]
fn a_prompt_gets_its_answer() {
    let env = Env::new();
    let seen = drive(
        &env,
        &[
            (
                "exec_command",
                json!({"cmd": "read -p 'name? ' n; echo hi $n", "yield_time_ms": 800}),
            ),
            (
                "write_stdin",
                json!({"session_id": 1, "chars": "cox\n", "yield_time_ms": 3000}),
            ),
        ],
    );
    assert!(seen[0].contains("name? "), "{}", seen[0]);
    assert!(seen[0].contains("Process running"), "{}", seen[0]);
    assert!(seen[1].contains("hi cox"), "{}", seen[1]);
    assert!(
        seen[1].contains("Process exited with code 0"),
        "{}",
        seen[1]
    );
}

#[test]
fn vim_edits_a_file_through_keys_and_shows_its_screen() {
    if !cox_testkit::outside_tool("vim", "apt-get install vim") {
        return;
    }
    let env = Env::new();
    let seen = drive(
        &env,
        &[
            (
                "exec_command",
                json!({"cmd": "vim -u NONE -N -n notes.txt", "yield_time_ms": 1500}),
            ),
            (
                "write_stdin",
                json!({"session_id": 1, "chars": "ifoo", "keys": ["Esc"], "yield_time_ms": 500}),
            ),
            (
                "write_stdin",
                json!({"session_id": 1, "chars": ":wq", "keys": ["Enter"], "yield_time_ms": 3000}),
            ),
        ],
    );
    assert!(
        seen[0].contains("[full-screen program: the screen (24x80)"),
        "{}",
        seen[0]
    );
    assert!(seen[1].contains("foo"), "{}", seen[1]);
    assert!(
        seen[2].contains("Process exited with code 0"),
        "{}",
        seen[2]
    );
    assert_eq!(
        fs_err::read_to_string(env.repo.join("notes.txt")).unwrap(),
        "foo\n"
    );
}

#[test]
fn ctrl_c_interrupts_the_running_program() {
    let env = Env::new();
    let seen = drive(
        &env,
        &[
            (
                "exec_command",
                json!({"cmd": "echo started; sleep 30", "yield_time_ms": 500}),
            ),
            (
                "write_stdin",
                json!({"session_id": 1, "keys": ["C-c"], "yield_time_ms": 5000}),
            ),
        ],
    );
    assert!(
        seen[0].contains("started") && seen[0].contains("Process running"),
        "{}",
        seen[0]
    );
    assert!(
        seen[1].contains("was killed by signal 2") || seen[1].contains("exited with code 130"),
        "{}",
        seen[1]
    );
    assert!(
        !seen[1].contains("Wall time: 5."),
        "it returned when sleep died: {}",
        seen[1]
    );
}

#[test]
fn a_session_left_running_ends_with_cox_and_so_do_its_children() {
    let env = Env::new();
    let marker = format!("cox-left-{}", std::process::id());
    let seen = drive(
        &env,
        &[(
            "exec_command",
            json!({
                "cmd": format!("bash -c 'exec -a {marker} sleep 300' & exec -a {marker}-leader sleep 300"),
                "yield_time_ms": 500
            }),
        )],
    );
    assert!(
        seen[0].contains("Process running with session ID 1"),
        "{}",
        seen[0]
    );
    wait_for("the session's processes to end with cox", || {
        pids_with_arg(&marker).is_empty() && pids_with_arg(&format!("{marker}-leader")).is_empty()
    });
}

#[test]
fn bad_calls_are_explained() {
    let env = Env::new();
    let seen = drive(
        &env,
        &[
            ("write_stdin", json!({"session_id": 7, "chars": "x"})),
            ("exec_command", json!({"cmd": "cat", "yield_time_ms": 100})),
            ("write_stdin", json!({"session_id": 1, "keys": ["Hyper"]})),
        ],
    );
    assert!(
        seen[0].contains("there is no terminal session 7"),
        "{}",
        seen[0]
    );
    assert!(seen[2].contains("unknown key `Hyper`"), "{}", seen[2]);
}

/// A python http.server started with exec_command, queried by curl from a shell call, its log
/// read back with write_stdin, with `flag` (`--network` or `--loopback`); then curl at a server
/// of the host's own 127.0.0.1. Returns what the model saw for each call; `None` (skipped,
/// loudly) where python3 or curl is missing.
fn serve_and_fetch(flag: &str) -> Option<Vec<String>> {
    if !cox_testkit::outside_tool("/usr/bin/python3", "apt-get install python3")
        || !cox_testkit::outside_tool("curl", "apt-get install curl")
    {
        return None;
    }
    let env = Env::new();
    fs_err::write(env.repo.join("hello.txt"), "hello from the server\n").unwrap();
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let port = free_port();
    // The person's own server on this machine's loopback.
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    let serve = json!({"cmd": format!("/usr/bin/python3 -m http.server {port} --bind 127.0.0.1"), "yield_time_ms": 1500});
    let fetch = json!({"command": ["curl", "-s", "--retry", "5", "--retry-connrefused", "--retry-delay", "1", format!("http://127.0.0.1:{port}/hello.txt")]});
    let host_fetch = json!({"command": ["sh", "-c", format!("curl -s -m 3 -o /dev/null http://127.0.0.1:{host_port}/; echo curl exit $?")]});
    let turns = vec![
        Turn::call("exec_command", &serve.to_string()),
        Turn::call("shell", &fetch.to_string()),
        Turn::call(
            "write_stdin",
            &json!({"session_id": 1, "yield_time_ms": 300}).to_string(),
        ),
        Turn::call("shell", &host_fetch.to_string()),
        Turn::text(&["done"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env.cox_with(&server).args([flag, "exec", "serve it"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    drop(host);
    let requests = server.requests();
    let seen: Vec<String> = requests.last().unwrap().body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .map(|i| i["output"].as_str().unwrap().to_string())
        .collect();
    assert!(
        seen[0].contains("Process running with session ID 1"),
        "{}",
        seen[0]
    );
    assert!(seen[1].contains("hello from the server"), "{}", seen[1]);
    assert!(
        seen[2].contains("GET /hello.txt"),
        "the server logged the request: {}",
        seen[2]
    );
    Some(seen)
}

#[test]
fn a_server_started_in_one_call_answers_curl_in_another_with_the_network_allowed() {
    let Some(seen) = serve_and_fetch("--network") else {
        return;
    };
    // With the whole network, the host's loopback is reachable too (curl times out waiting for
    // an answer the test's listener never gives: exit 28, not a refused connection).
    assert!(seen[3].contains("curl exit 28"), "{}", seen[3]);
}

/// `--loopback`: the session's commands share a loopback network of their own — the server in
/// the terminal session answers the shell call's curl — and the host's 127.0.0.1 is out of reach
/// (refused: nothing listens there in the session's network).
#[test]
fn on_the_loopback_network_commands_reach_each_other_and_not_the_host() {
    let Some(seen) = serve_and_fetch("--loopback") else {
        return;
    };
    assert!(seen[3].contains("curl exit 7"), "{}", seen[3]);
    wait_for("the loopback network's holder to end with cox", || {
        pids_with_arg("__loopback").is_empty()
    });
}

/// The journal's records of a task's terminal session, in order (type and the fields that
/// matter).
fn terminal_records(env: &Env) -> Vec<serde_json::Value> {
    let journal = only_journal(env);
    fs_err::read_to_string(journal)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|r| {
            r["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("terminal_"))
        })
        .collect()
}

fn only_journal(env: &Env) -> std::path::PathBuf {
    let mut journals: Vec<_> = fs_err::read_dir(env.home.join("sessions"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(journals.len(), 1, "{journals:?}");
    journals.remove(0)
}

/// Issue 17: `--json` tells a session's start, what each call showed, and its end; the journal
/// has its start, each write (before the keys go) and its end — a session left running is killed
/// with the cox session, and that end is told too.
#[test]
fn json_events_and_the_journal_follow_a_session_from_start_to_end() {
    let env = Env::new();
    let turns = vec![
        Turn::call(
            "exec_command",
            &json!({"cmd": "cat", "yield_time_ms": 300}).to_string(),
        ),
        Turn::call(
            "write_stdin",
            &json!({"session_id": 1, "chars": "hello there", "keys": ["Enter"], "yield_time_ms": 500}).to_string(),
        ),
        Turn::text(&["left it running"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "--json", "echo something"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let events: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("terminal_"))
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "terminal_started",
            "terminal_output",
            "terminal_output",
            "terminal_exited"
        ],
        "{events:?}"
    );
    assert_eq!(events[0]["command"], "cat");
    assert!(events[0]["pid"].as_u64().unwrap() > 1);
    assert_eq!(events[2]["wrote"], "hello there\n", "{}", events[2]);
    assert!(
        events[2]["output"]
            .as_str()
            .unwrap()
            .contains("hello there"),
        "{}",
        events[2]
    );
    // Killed when the cox session ended: by a signal (SIGTERM, or SIGHUP as its terminal closed).
    assert_eq!(events[3]["id"], 1);
    assert!(events[3]["signal"].is_number(), "{}", events[3]);

    let records = terminal_records(&env);
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["terminal_start", "terminal_write", "terminal_end"],
        "{records:?}"
    );
    assert_eq!(records[0]["command"], "cat");
    assert_eq!(records[1]["text"], "hello there\n");
    assert_eq!(
        records[2]["gone"],
        serde_json::Value::Null,
        "it ended normally"
    );
    // No `running/` entry outlives the session.
    let running = fs_err::read_dir(env.home.join("running"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(running, 0);
}

/// Issue 17: cox killed outright (SIGKILL) with a terminal session running takes the session and
/// its children with it; while it ran, the session was named in `$COX_HOME/running/` beyond the
/// call that started it; on resume the model is told the session is gone (once), and new sessions
/// are numbered after it.
#[test]
fn a_session_left_when_cox_is_killed_is_gone_and_resume_says_so() {
    let env = Env::new();
    let marker = format!("cox-killed-{}", std::process::id());
    // Unique too: another run of the suite may be sleeping beside this one.
    let sleeping = format!("61.{}", std::process::id());
    let start_it = json!({
        "cmd": format!("bash -c 'exec -a {marker}-child sleep 300' & exec -a {marker} sleep 300"),
        "yield_time_ms": 300
    });
    let turns = vec![
        Turn::call("exec_command", &start_it.to_string()),
        Turn::call(
            "shell",
            &json!({"command": ["sleep", &sleeping]}).to_string(),
        ),
        Turn::text(&["never"]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let mut child = Killed(
        env.cox_with(&server)
            .args(["exec", "--json", "start a server"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the session and the next call to run", || {
        !pids_with_arg(&marker).is_empty()
            && !pids_with_arg(&format!("{marker}-child")).is_empty()
            && !pids_with_arg(&sleeping).is_empty()
    });
    // The exec_command call is over; its session is still named (and so is the running shell).
    // (The shell call's entry is written as its launcher is reported, a moment after it runs.)
    wait_for(
        "the session's entry and the shell call's in running/",
        || fs_err::read_dir(env.home.join("running")).map_or(0, |d| d.count()) == 2,
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let left = || -> Vec<String> {
        [marker.clone(), format!("{marker}-child"), sleeping.clone()]
            .into_iter()
            .filter(|arg| !pids_with_arg(arg).is_empty())
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !left().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "still running after cox was killed: {:?}",
            left()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let id = only_journal(&env)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let resumed = MockServer::start(Script {
        turns: vec![
            Turn::call("exec_command", r#"{"cmd":"true","yield_time_ms":2000}"#),
            Turn::text(&["noted"]),
        ],
    })
    .unwrap();
    let output = run(env.cox_with(&resumed).args(["resume", &id, "go on"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = resumed.requests()[0].body["input"].to_string();
    assert!(
        first.contains(&format!(
            "terminal session 1 (`bash -c 'exec -a {marker}-child sleep 300' & exec -a {marker} sleep 300`) ended with it"
        )),
        "{first}"
    );
    let second = resumed.requests()[1].body["input"].to_string();
    assert!(second.contains("session 2 ended"), "numbered on: {second}");
    let records = terminal_records(&env);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "terminal_end" && r["id"] == 1 && r["gone"] == true),
        "{records:?}"
    );
    // Told once: a second resume does not say it again.
    let again = MockServer::start(Script {
        turns: vec![Turn::text(&["fine"])],
    })
    .unwrap();
    let output = run(env.cox_with(&again).args(["resume", &id, "and now?"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = again.requests()[0].body["input"].to_string();
    assert_eq!(text.matches("ended with it").count(), 1, "{text}");
}

/// A cox killed when the test is done with it, failed or not (a failed assertion must not leave
/// it running into the next test).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
