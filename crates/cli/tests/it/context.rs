//! The context under pressure: compaction keeps every pinned item verbatim, and the request prefix
//! stays byte-identical from turn to turn.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

const TASK: &str = "Migrate src/routes to async/await; keep public names.";
const AGENTS: &str = "NEVER use the real database in tests; only in-memory mocks.";

struct Env {
    _root: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
}

fn env() -> Env {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    let home = root.path().join("cox-home");
    fs_err::create_dir_all(repo.join(".git")).unwrap();
    fs_err::write(repo.join("AGENTS.md"), format!("{AGENTS}\n")).unwrap();
    Env {
        _root: root,
        repo,
        home,
    }
}

fn cox(env: &Env, server: &MockServer, window: u64) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cox"));
    command
        .current_dir(&env.repo)
        .env("COX_HOME", &env.home)
        .env("OPENAI_API_KEY", "sk-test-context-000000001")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["-c", &format!("model_context_window={window}")])
        .stdin(Stdio::null());
    command
}

fn seq(n: u32) -> Turn {
    Turn::call("shell", &format!(r#"{{"command":["seq","1","{n}"]}}"#))
}

const PLAN: &str = r#"{"plan":[{"step":"Convert getUser","status":"in_progress"},{"step":"Run the tests","status":"pending"}]}"#;

fn pinned_items_present(body: &Value) {
    let instructions = body["instructions"].as_str().unwrap();
    for item in [TASK, AGENTS, "- [>] Convert getUser", "- [ ] Run the tests"] {
        assert!(
            instructions.contains(item),
            "pinned item {item:?} missing from:\n{instructions}"
        );
    }
}

/// Everything of a request body that differs between machines and runs, made constant.
fn redact(body: &Value, env: &Env) -> String {
    let text = serde_json::to_string_pretty(body).unwrap();
    let repo = fs_err::canonicalize(&env.repo)
        .unwrap()
        .display()
        .to_string();
    text.lines()
        .map(|line| {
            let mut line = line.replace(&repo, "[repo]");
            // The machine's shell and OS appear in the system prompt.
            for field in ["- Shell: ", "- OS: "] {
                if let Some(at) = line.find(field) {
                    let start = at + field.len();
                    let end = line[start..].find("\\n").map_or(line.len(), |e| start + e);
                    line = format!(
                        "{}[{}]{}",
                        &line[..start],
                        field.trim_matches(['-', ' ', ':']),
                        &line[end..]
                    );
                }
            }
            match line.find("Date: ") {
                Some(at) => format!("{}Date: [date]{}", &line[..at], &line[at + 16..]),
                None => line,
            }
        })
        .filter(|line| !line.contains("\"prompt_cache_key\""))
        .map(|line| {
            // The shell's `duration: 0.01 s` line varies.
            match line.find("duration: ") {
                Some(at) => {
                    let end = line[at..].find(" s\\n").map_or(line.len(), |e| at + e + 2);
                    format!("{}duration: [d]{}", &line[..at], &line[end..])
                }
                None => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn elision_keeps_pinned_items_and_recent_turns_verbatim() {
    let env = env();
    let turns = vec![
        Turn::call("update_plan", PLAN).with_call("shell", r#"{"command":["seq","1","1500"]}"#, 1),
        seq(5),
        // The provider's count passes the threshold: cox's own count of the request (it takes
        // the larger) stays below it until then.
        seq(6).with_usage(7_200, 0, 20),
        Turn::text(&["Done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = cox(&env, &server, 8_000)
        .args(["exec", "--json", TASK])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let last = &requests[3].body;
    pinned_items_present(last);
    insta::assert_snapshot!("request_after_elision", redact(last, &env));
    let events: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let compacted = events
        .iter()
        .find(|e| e["type"] == "compacted")
        .expect("a compacted event");
    assert_eq!(compacted["reason"], "threshold");
    assert_eq!(compacted["outputs_elided"], 1);
    assert_eq!(compacted["items_summarized"], 0);
    assert!(
        compacted["tokens_after"].as_u64() < compacted["tokens_before"].as_u64(),
        "{compacted}"
    );
}

#[test]
fn repeated_summaries_keep_every_pinned_item_byte_for_byte() {
    let env = env();
    // Each output larger than the one before, so that after the oldest is elided the request
    // is still over the threshold (and a summary is needed), while before it was under.
    let turns = vec![
        Turn::call("update_plan", PLAN).with_call("shell", r#"{"command":["seq","1","200"]}"#, 1),
        seq(800),
        seq(1200).with_usage(5_400, 0, 20),
        Turn::text(&["Summary one: converted getUser; tests pending."]),
        seq(1300).with_usage(5_400, 0, 20),
        Turn::text(&["Summary two: all routes converted."]),
        Turn::text(&["Done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = cox(&env, &server, 6_000)
        .args(["exec", "--json", TASK])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        7,
        "three turns, a summary, a turn, a summary, the answer"
    );
    // The summary requests carry no tools and their own instructions.
    for summary in [&requests[3].body, &requests[5].body] {
        assert!(
            summary["instructions"]
                .as_str()
                .unwrap()
                .starts_with("You are compacting")
        );
        assert_eq!(summary["tools"].as_array().unwrap().len(), 0);
    }
    for after in [&requests[4].body, &requests[6].body] {
        pinned_items_present(after);
        let first = after["input"][0]["content"][0]["text"].as_str().unwrap();
        assert!(
            first.starts_with("[Summary of the earlier conversation"),
            "{first}"
        );
    }
    assert!(
        requests[6].body["input"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Summary two")
    );
    insta::assert_snapshot!(
        "request_after_second_summary",
        redact(&requests[6].body, &env)
    );
    let compactions = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains("\"type\":\"compacted\""))
        .count();
    assert_eq!(compactions, 2);
}

#[test]
fn the_request_prefix_is_identical_across_turns() {
    let env = env();
    let turns = vec![seq(3), seq(4), seq(5), Turn::text(&["Done."])];
    let server = MockServer::start(Script { turns }).unwrap();
    let output = cox(&env, &server, 400_000)
        .args(["exec", TASK])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let requests = server.requests();
    let bodies: Vec<String> = requests.iter().map(|r| r.body.to_string()).collect();
    for pair in bodies.windows(2) {
        // The history comes last in the body, so each request starts with the whole previous
        // request but its closing `]}`: a provider's prefix cache can reuse all of it.
        let (a, b) = (&pair[0], &pair[1]);
        let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        assert_eq!(
            common,
            a.len() - 2,
            "prefix diverges at byte {common} of {}: …{}…",
            a.len(),
            &a[common.saturating_sub(40)..(common + 40).min(a.len())]
        );
    }
    let first = &requests[0].body;
    for request in &requests[1..] {
        assert_eq!(request.body["instructions"], first["instructions"]);
        assert_eq!(request.body["tools"], first["tools"]);
    }
}
