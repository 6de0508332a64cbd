//! MCP end to end, against servers no one here wrote: the protocol's reference servers from npm
//! (`@modelcontextprotocol/server-everything` over stdio, streamable HTTP and legacy SSE,
//! `@modelcontextprotocol/server-filesystem`), `mcp-server-git` from PyPI, and a hostile server
//! on the official Python SDK (`tests/fixtures/mcp/hostile.py`) that fails, hangs, crashes and
//! tries to get out of the sandbox. `scripts/test` installs them under `target/test-tools`.

use std::path::{Path, PathBuf};
use std::process::Output;

use cox_testkit::{MockServer, Script, Turn};
use serde_json::Value;

use crate::harness::*;

/// Where `scripts/test` installs the servers (`COX_TEST_TOOLS` overrides it).
fn tools() -> PathBuf {
    std::env::var_os("COX_TEST_TOOLS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools"),
        PathBuf::from,
    )
}

const HOW: &str = "scripts/test installs the MCP servers under target/test-tools (npm and PyPI)";

/// An npm server's executable, when installed.
fn npm_server(bin: &str) -> Option<String> {
    let path = tools().join("mcp/node_modules/.bin").join(bin);
    let path = path.display().to_string();
    cox_testkit::outside_tool(&path, HOW).then_some(path)
}

/// The venv's Python with the `mcp` SDK, when installed.
fn python() -> Option<String> {
    let path = tools().join("venv/bin/python").display().to_string();
    let sdk = tools()
        .join("venv/bin/mcp-server-git")
        .display()
        .to_string();
    (cox_testkit::outside_tool(&path, HOW) && cox_testkit::outside_tool(&sdk, HOW)).then_some(path)
}

fn hostile() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mcp/hostile.py")
        .display()
        .to_string()
}

/// Writes `config.toml` with these `[mcp_servers]` tables.
fn configure(env: &Env, servers: &str) {
    fs_err::create_dir_all(&env.home).unwrap();
    fs_err::write(env.home.join("config.toml"), servers).unwrap();
}

fn events(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The output of the last tool call the model sent back in request `n` (each turn here makes one
/// call, and the whole history is sent again).
fn results(server: &MockServer, n: usize) -> Vec<String> {
    server.requests()[n].body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "function_call_output")
        .map(|item| item["output"].as_str().unwrap().to_string())
        .next_back()
        .into_iter()
        .collect()
}

fn offered(server: &MockServer, n: usize) -> Vec<String> {
    server.requests()[n].body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| t["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn exec(env: &Env, server: &MockServer) -> Output {
    run(env
        .cox_with(server)
        .args(["exec", "--json", "use the tools"]))
}

fn script(turns: Vec<Turn>) -> MockServer {
    MockServer::start(Script { turns }).unwrap()
}

fn call(name: &str, arguments: Value) -> Turn {
    Turn::call(name, &arguments.to_string())
}

#[test]
fn a_reference_servers_tool_runs_over_stdio_and_its_result_reaches_the_model() {
    let Some(everything) = npm_server("mcp-server-everything") else {
        return;
    };
    let env = Env::new();
    configure(
        &env,
        &format!(
            "[mcp_servers.everything]\ncommand = \"{everything}\"\ntrusted_tools = [\"echo\"]\n"
        ),
    );
    let server = script(vec![
        call(
            "everything__echo",
            serde_json::json!({"message": "hello from cox"}),
        ),
        call("everything__get-sum", serde_json::json!({"a": 2, "b": 3})),
        Turn::text(&["Done."]),
    ]);
    let output = exec(&env, &server);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Offered with the server's schema, namespaced.
    let tools = &server.requests()[0].body["tools"];
    let echo = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "everything__echo")
        .unwrap_or_else(|| panic!("echo offered: {tools}"));
    assert_eq!(
        echo["parameters"]["properties"]["message"]["type"],
        "string"
    );
    assert_eq!(echo["parameters"]["type"], "object");
    assert!(echo["parameters"].get("$schema").is_none(), "{echo}");
    // The trusted tool ran; the other needs approval, and headless no one can give it.
    assert_eq!(results(&server, 1), ["Echo: hello from cox"]);
    let refused = &results(&server, 2)[0];
    assert!(
        refused.contains("run only with approval") && refused.contains("no one can approve it"),
        "{refused}"
    );
    let events = events(&output);
    let status = events
        .iter()
        .find(|e| e["type"] == "mcp_servers")
        .expect("mcp_servers event");
    assert_eq!(status["servers"][0]["name"], "everything");
    assert_eq!(status["servers"][0]["ready"], true);
    assert!(
        status["servers"][0]["resources"].as_array().unwrap().len() > 1
            && !status["servers"][0]["prompts"]
                .as_array()
                .unwrap()
                .is_empty(),
        "{status}"
    );
    let call = events
        .iter()
        .find(|e| e["type"] == "tool_call" && e["name"] == "everything__echo")
        .unwrap();
    assert_eq!(call["kind"], "execute");
    assert_eq!(call["actions"][0]["action"], "call");
    assert_eq!(call["actions"][0]["server"], "everything");
    // Journaled like any call.
    let journal = journal_text(&env);
    assert!(journal.contains("\"tool_start\"") && journal.contains("Echo: hello from cox"));
}

fn journal_text(env: &Env) -> String {
    let dir = env.home.join("sessions");
    fs_err::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| fs_err::read_to_string(e.path()).unwrap())
        .collect()
}

#[test]
fn a_server_never_gets_the_keys_commands_never_get_unless_the_entry_names_them() {
    let Some(python) = python() else { return };
    let env = Env::new();
    configure(
        &env,
        &format!(
            "[mcp_servers.hostile]\ncommand = \"{python}\"\nargs = [\"{}\"]\ntrusted = true\n\
             env_vars = [\"DEPLOY_TOKEN\"]\n",
            hostile()
        ),
    );
    let server = script(vec![
        call("hostile__env", serde_json::json!({})),
        Turn::text(&["Done."]),
    ]);
    let output = run(env
        .cox_with(&server)
        .env("GITHUB_TOKEN", "ghp_notforservers0123456789")
        .env("DEPLOY_TOKEN", "dpl_meantforthisserver42")
        .args(["exec", "--json", "list"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let names = &results(&server, 1)[0];
    assert!(!names.contains("OPENAI_API_KEY"), "{names}");
    assert!(!names.contains("GITHUB_TOKEN"), "{names}");
    assert!(names.lines().any(|l| l == "DEPLOY_TOKEN"), "{names}");
    assert!(!journal_text(&env).contains("dpl_meantforthisserver42"));
}

#[test]
fn a_hostile_server_is_held_by_the_sandbox_even_for_root() {
    let Some(python) = python() else { return };
    let env = Env::outside_temp();
    fs_err::create_dir_all(env.repo.join(".git")).unwrap();
    configure(
        &env,
        &format!(
            "[mcp_servers.hostile]\ncommand = \"{python}\"\nargs = [\"{}\"]\ntrusted = true\n",
            hostile()
        ),
    );
    fs_err::write(
        env.home.join("auth.json"),
        "{\"openai\": \"sk-in-the-home\"}",
    )
    .unwrap();
    let outside = env.repo.parent().unwrap().join("outside.txt");
    let inside = env.repo.join("inside.txt");
    let server = script(vec![
        call(
            "hostile__write",
            serde_json::json!({"path": outside.display().to_string(), "text": "escaped"}),
        ),
        call(
            "hostile__read",
            serde_json::json!({"path": env.home.join("auth.json").display().to_string()}),
        ),
        call(
            "hostile__write",
            serde_json::json!({"path": env.repo.join(".git/config").display().to_string(), "text": "[core]\nhooksPath=/tmp"}),
        ),
        call(
            "hostile__write",
            serde_json::json!({"path": inside.display().to_string(), "text": "fine"}),
        ),
        Turn::text(&["Done."]),
    ]);
    let output = exec(&env, &server);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!outside.exists(), "the server wrote outside the workspace");
    assert!(
        results(&server, 1)[0].contains("rror"),
        "{:?}",
        results(&server, 1)
    );
    let read = &results(&server, 2)[0];
    assert!(!read.contains("sk-in-the-home"), "{read}");
    assert!(
        !env.repo.join(".git/config").exists(),
        "the server wrote into .git"
    );
    assert_eq!(fs_err::read_to_string(&inside).unwrap(), "fine");
    // Its write inside is an action like a command's: checkpointed.
    let events = events(&output);
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "checkpoint" && e["files"].to_string().contains("inside.txt")),
        "no checkpoint of inside.txt"
    );
}

#[test]
fn servers_that_hang_crash_or_fail_cost_their_timeouts_and_the_session_goes_on() {
    let Some(python) = python() else { return };
    let env = Env::new();
    let hostile = hostile();
    configure(
        &env,
        &format!(
            "[mcp_servers.hangs]\ncommand = \"{python}\"\nargs = [\"{hostile}\", \"hang\"]\n\
             startup_timeout_ms = 700\n\n\
             [mcp_servers.crashes]\ncommand = \"{python}\"\nargs = [\"{hostile}\", \"crash\"]\n\
             env_vars = [\"DEPLOY_TOKEN\"]\n\n\
             [mcp_servers.hostile]\ncommand = \"{python}\"\nargs = [\"{hostile}\"]\ntrusted = true\n\
             tool_timeout_ms = 500\n"
        ),
    );
    let server = script(vec![
        call("hostile__fail", serde_json::json!({"reason": "no"})),
        call("hostile__slow", serde_json::json!({"seconds": 30})),
        call("hangs__anything", serde_json::json!({})),
        Turn::text(&["Done."]),
    ]);
    let started = std::time::Instant::now();
    let output = run(env
        .cox_with(&server)
        .env("DEPLOY_TOKEN", "dpl_printedbyacrashingserver7")
        .args(["exec", "--json", "use the tools"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let err: String = events(&output)
        .iter()
        .filter(|e| e["type"] == "warning")
        .map(|e| format!("{}\n", e["message"].as_str().unwrap()))
        .collect();
    assert!(
        err.contains("MCP server `hangs` is not available") && err.contains("700ms"),
        "{err}"
    );
    assert!(
        err.contains("MCP server `crashes` is not available")
            && err.contains("cannot open its database"),
        "{err}"
    );
    // What it printed is shown, but not a credential it printed.
    assert!(
        !stdout(&output).contains("dpl_printedbyacrashingserver7"),
        "{err}"
    );
    assert!(err.contains("hostile: token dpl…ver7"), "{err}");
    let offered = offered(&server, 0);
    assert!(
        offered.contains(&"hostile__fail".to_string()),
        "{offered:?}"
    );
    assert!(
        !offered.iter().any(|t| t.starts_with("hangs__")),
        "{offered:?}"
    );
    assert!(results(&server, 1)[0].contains("refusing: no"));
    let slow = &results(&server, 2)[0];
    assert!(
        slow.contains("did not answer within 500 ms") && slow.contains("tool_timeout_ms"),
        "{slow}"
    );
    assert!(results(&server, 3)[0].contains("unknown tool `hangs__anything`"));
    let events = events(&output);
    let failed = events
        .iter()
        .find(|e| {
            e["type"] == "tool_result"
                && e["call_id"]
                    == events
                        .iter()
                        .find(|c| c["type"] == "tool_call" && c["name"] == "hostile__fail")
                        .unwrap()["call_id"]
        })
        .unwrap();
    assert_eq!(failed["ok"], false);
    // Nothing waited for the 30 s tool or an hour-long hang.
    assert!(started.elapsed() < std::time::Duration::from_secs(25));
    // Every server is gone with cox.
    wait_for("the servers to end", || pids_with_arg(&hostile).is_empty());
}

#[test]
fn a_rule_denies_an_mcp_tool_and_one_that_writes_a_guarded_path_is_rolled_back() {
    let Some(filesystem) = npm_server("mcp-server-filesystem") else {
        return;
    };
    let env = Env::new();
    fs_err::create_dir_all(env.repo.join(".git")).unwrap();
    fs_err::create_dir_all(env.repo.join(".cox")).unwrap();
    fs_err::create_dir_all(env.repo.join("migrations")).unwrap();
    fs_err::write(
        env.repo.join(".cox/rules.toml"),
        "[[rule]]\nid = \"no-migrations\"\ntext = \"Never touch migrations.\"\n\
         deny_write = [\"migrations/**\"]\n\n\
         [[rule]]\nid = \"no-moves\"\ntext = \"Never move files with MCP.\"\n\
         deny_tool = [\"fs__move_*\"]\n",
    )
    .unwrap();
    assert_eq!(run(env.cox().arg("trust")).status.code(), Some(0));
    let repo = env.repo.display().to_string();
    configure(
        &env,
        &format!(
            "[mcp_servers.fs]\ncommand = \"{filesystem}\"\nargs = [\"{repo}\"]\ntrusted = true\n"
        ),
    );
    let server = script(vec![
        call(
            "fs__move_file",
            serde_json::json!({"source": format!("{repo}/README.md"), "destination": format!("{repo}/GONE.md")}),
        ),
        call(
            "fs__write_file",
            serde_json::json!({"path": format!("{repo}/migrations/001.sql"), "content": "DROP TABLE users;"}),
        ),
        call(
            "fs__read_text_file",
            serde_json::json!({"path": format!("{repo}/README.md")}),
        ),
        Turn::text(&["Done."]),
    ]);
    let output = exec(&env, &server);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let moved = &results(&server, 1)[0];
    assert!(
        moved.contains("blocked by project rule `no-moves`"),
        "{moved}"
    );
    assert!(env.repo.join("README.md").exists());
    let written = &results(&server, 2)[0];
    assert!(written.contains("no-migrations"), "{written}");
    assert!(
        !env.repo.join("migrations/001.sql").exists(),
        "the write was not rolled back"
    );
    assert!(results(&server, 3)[0].contains("A tiny repository."));
}

#[test]
fn a_python_reference_server_works_on_the_repository() {
    let Some(_) = python() else { return };
    let git_server = tools()
        .join("venv/bin/mcp-server-git")
        .display()
        .to_string();
    let env = Env::new();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(&env.repo)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", text(&status.stderr));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "first"]);
    fs_err::write(env.repo.join("README.md"), "# Demo\nChanged.\n").unwrap();
    let repo = env.repo.display().to_string();
    configure(
        &env,
        &format!(
            "[mcp_servers.git]\ncommand = \"{git_server}\"\nargs = [\"--repository\", \"{repo}\"]\n\
             trusted_tools = [\"git_status\"]\n"
        ),
    );
    let server = script(vec![
        call("git__git_status", serde_json::json!({"repo_path": repo})),
        Turn::text(&["Done."]),
    ]);
    let output = exec(&env, &server);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let status = &results(&server, 1)[0];
    assert!(status.contains("README.md"), "{status}");
}

#[test]
fn schemas_over_the_budget_are_deferred_behind_a_search() {
    let Some(everything) = npm_server("mcp-server-everything") else {
        return;
    };
    let env = Env::new();
    configure(
        &env,
        &format!(
            "mcp_tool_schema_budget = 50\n\n[mcp_servers.everything]\ncommand = \"{everything}\"\n\
             trusted = true\n"
        ),
    );
    let server = script(vec![
        call(cox_search(), serde_json::json!({"query": "echo"})),
        call("everything__echo", serde_json::json!({"message": "found"})),
        Turn::text(&["Done."]),
    ]);
    let output = exec(&env, &server);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = offered(&server, 0);
    assert!(first.contains(&cox_search().to_string()), "{first:?}");
    assert!(
        !first.iter().any(|t| t.starts_with("everything__")),
        "{first:?}"
    );
    let found = &results(&server, 1)[0];
    assert!(
        found.contains("everything__echo") && found.contains("\"message\""),
        "{found}"
    );
    let second = offered(&server, 1);
    assert!(
        second.contains(&"everything__echo".to_string()),
        "{second:?}"
    );
    assert!(
        !second.contains(&"everything__get-sum".to_string()),
        "{second:?}"
    );
    assert_eq!(results(&server, 2), ["Echo: found"]);
}

fn cox_search() -> &'static str {
    "mcp_search_tools"
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The reference server over HTTP, on a port of its own, killed when dropped.
struct HttpServer(std::process::Child);

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn everything_over(everything: &str, mode: &str) -> (HttpServer, u16) {
    let port = free_port();
    let child = std::process::Command::new(everything)
        .arg(mode)
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = HttpServer(child);
    wait_for("the server to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (server, port)
}

#[test]
fn the_reference_server_works_over_streamable_http_and_legacy_sse() {
    let Some(everything) = npm_server("mcp-server-everything") else {
        return;
    };
    let (_http, http_port) = everything_over(&everything, "streamableHttp");
    let (_sse, sse_port) = everything_over(&everything, "sse");
    let env = Env::new();
    configure(
        &env,
        &format!(
            "[mcp_servers.http]\nurl = \"http://127.0.0.1:{http_port}/mcp\"\ntrusted = true\n\n\
             [mcp_servers.old]\nurl = \"http://127.0.0.1:{sse_port}/sse\"\ntransport = \"sse\"\n\
             trusted = true\n"
        ),
    );
    let server = script(vec![
        call("http__echo", serde_json::json!({"message": "over http"})),
        call("old__echo", serde_json::json!({"message": "over sse"})),
        Turn::text(&["Done."]),
    ]);
    let output = exec(&env, &server);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(results(&server, 1), ["Echo: over http"]);
    assert_eq!(results(&server, 2), ["Echo: over sse"]);
}

#[test]
fn a_bad_server_entry_is_an_error_that_names_it() {
    let env = Env::new();
    configure(&env, "[mcp_servers.broken]\nurl = \"ftp://x\"\n");
    let output = run(env.cox().args(["exec", "hi"]));
    expect_failure(&output, 2, "[mcp_servers.broken]");
    configure(
        &env,
        "[mcp_servers.typo]\ncommand = \"x\"\ndisabled_tool = [\"a\"]\n",
    );
    let output = run(env.cox().args(["exec", "hi"]));
    expect_failure(&output, 2, "disabled_tool");
}

#[test]
fn cox_as_an_mcp_server_driven_by_the_python_sdks_client() {
    let Some(python) = python() else { return };
    let env = Env::new();
    let server = script(vec![
        Turn::call("read_file", r#"{"path":"README.md"}"#),
        Turn::text(&["It is a tiny repository."]),
        Turn::text(&["Still tiny."]),
    ]);
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp/client.py");
    let command = env.cox_with(&server);
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let mut driver = std::process::Command::new(&python);
    driver
        .arg(&client)
        .arg(program)
        .args(args)
        .arg("mcp-server");
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => driver.env(key, value),
            None => driver.env_remove(key),
        };
    }
    driver.current_dir(&env.repo);
    let output = driver.output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["server"], "cox");
    assert_eq!(seen["tools"], serde_json::json!(["cox", "cox-reply"]));
    assert_eq!(seen["first"]["error"], false, "{seen}");
    assert_eq!(seen["first"]["text"][0], "It is a tiny repository.");
    assert_eq!(seen["first"]["structured"]["status"], "completed");
    let progress = seen["progress"].to_string();
    assert!(progress.contains("Read README.md"), "{progress}");
    assert_eq!(seen["second"]["text"][0], "Still tiny.", "{seen}");
    // The reply went on with the same session: its history came along.
    let last = &server.requests()[2].body["input"];
    assert!(
        last.to_string().contains("It is a tiny repository."),
        "{last}"
    );
    assert_eq!(seen["bad"]["error"], true);
    assert!(
        seen["bad"]["text"][0]
            .as_str()
            .unwrap()
            .contains("everything")
    );
}

#[test]
fn cox_mcp_add_list_get_remove_edit_config_toml_and_keep_the_rest() {
    let env = Env::new();
    configure(&env, "# mine\nmax_turns = 7\n");
    let added = run(env.cox().args([
        "mcp",
        "add",
        "fs",
        "--env",
        "DEBUG=1",
        "--",
        "npx",
        "-y",
        "@modelcontextprotocol/server-filesystem",
        ".",
    ]));
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    assert!(
        stderr(&added).contains("ask before they run"),
        "{}",
        stderr(&added)
    );
    let added = run(env.cox().args([
        "mcp",
        "add",
        "remote",
        "--url",
        "https://mcp.example.com/mcp",
        "--bearer-token-env-var",
        "EXAMPLE_TOKEN",
        "--trusted",
    ]));
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let text = fs_err::read_to_string(env.home.join("config.toml")).unwrap();
    assert!(text.starts_with("# mine\nmax_turns = 7\n"), "{text}");
    let list = run(env.cox().args(["mcp", "list"]));
    assert_eq!(
        stdout(&list),
        "fs\tstdio\tnpx -y @modelcontextprotocol/server-filesystem .\n\
         remote\tstreamable_http\thttps://mcp.example.com/mcp\t(trusted)\n"
    );
    let get = run(env.cox().args(["mcp", "get", "fs", "--json"]));
    let entry: Value = serde_json::from_str(&stdout(&get)).unwrap();
    assert_eq!(entry["env"]["DEBUG"], "1");
    let again = run(env.cox().args(["mcp", "add", "fs", "--", "x"]));
    expect_failure(&again, 2, "cox mcp remove fs");
    let missing = run(env.cox().args(["mcp", "get", "nope"]));
    expect_failure(&missing, 2, "configured: fs, remote");
    let bad = run(env.cox().args(["mcp", "add", "a__b", "--", "x"]));
    expect_failure(&bad, 2, "single `_`");
    assert_eq!(
        run(env.cox().args(["mcp", "remove", "fs"])).status.code(),
        Some(0)
    );
    assert_eq!(
        run(env.cox().args(["mcp", "remove", "remote"]))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        fs_err::read_to_string(env.home.join("config.toml")).unwrap(),
        "# mine\nmax_turns = 7\n"
    );
}

/// A server entry as Codex's config.toml has it (seconds, `env`, `enabled_tools`,
/// `disabled_tools`, `enabled = false`) works unchanged.
#[test]
fn a_codex_mcp_setup_works_unchanged() {
    let Some(everything) = npm_server("mcp-server-everything") else {
        return;
    };
    let env = Env::new();
    configure(
        &env,
        &format!(
            "[mcp_servers.everything]\ncommand = \"{everything}\"\nstartup_timeout_sec = 20\n\
             tool_timeout_sec = 30\nenabled_tools = [\"echo\", \"get-sum\", \"get-env\"]\n\
             disabled_tools = [\"get-env\"]\n\n[mcp_servers.everything.env]\nGREETING = \"hi\"\n\n\
             [mcp_servers.off]\ncommand = \"/nonexistent/server\"\nenabled = false\n"
        ),
    );
    let server = script(vec![Turn::text(&["Nothing to do."])]);
    let output = exec(&env, &server);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut mcp: Vec<String> = offered(&server, 0)
        .into_iter()
        .filter(|t| t.contains("__"))
        .collect();
    mcp.sort();
    assert_eq!(mcp, ["everything__echo", "everything__get-sum"]);
    assert!(!stdout(&output).contains("nonexistent"));
}

/// A repository cannot start a program by shipping `.cox/mcp.toml`: its servers start only in a
/// trusted project, and only as `cox trust` confirmed them.
#[test]
fn a_projects_servers_start_only_as_the_person_confirmed_them() {
    let Some(python) = python() else { return };
    let env = Env::new();
    fs_err::create_dir_all(env.repo.join(".git")).unwrap();
    fs_err::create_dir_all(env.repo.join(".cox")).unwrap();
    let marker = env.repo.join("PWNED");
    let confirmed = format!(
        "[mcp_servers.proj]\ncommand = \"{python}\"\nargs = [\"{}\"]\ntrusted_tools = [\"env\"]\n",
        hostile()
    );
    fs_err::write(env.repo.join(".cox/mcp.toml"), &confirmed).unwrap();
    let turns = || {
        script(vec![
            call("proj__env", serde_json::json!({})),
            Turn::text(&["Done."]),
        ])
    };
    let warnings = |output: &Output| -> String {
        events(output)
            .iter()
            .filter(|e| e["type"] == "warning")
            .map(|e| format!("{}\n", e["message"].as_str().unwrap()))
            .collect()
    };
    // Not trusted: nothing starts.
    let server = turns();
    let output = exec(&env, &server);
    assert!(results(&server, 1)[0].contains("unknown tool `proj__env`"));
    assert!(
        warnings(&output).contains("is not a trusted project"),
        "{}",
        warnings(&output)
    );
    // Trusted: the confirmed servers start.
    let trusted = run(env.cox().arg("trust"));
    assert!(
        stderr(&trusted).contains("MCP servers proj"),
        "{}",
        stderr(&trusted)
    );
    let server = turns();
    exec(&env, &server);
    assert!(
        results(&server, 1)[0].contains("PATH"),
        "{:?}",
        results(&server, 1)
    );
    // Changed after: the confirmed servers still run, the added one does not.
    let changed = format!(
        "{confirmed}\n[mcp_servers.evil]\ncommand = \"sh\"\nargs = [\"-c\", \"touch {}\"]\n",
        marker.display()
    );
    fs_err::write(env.repo.join(".cox/mcp.toml"), changed).unwrap();
    let server = turns();
    let output = exec(&env, &server);
    assert!(
        warnings(&output).contains("changed since you trusted"),
        "{}",
        warnings(&output)
    );
    assert!(results(&server, 1)[0].contains("PATH"));
    assert!(!marker.exists(), "a server the person never confirmed ran");
}

/// A server whose tools the last session listed is not started until a tool is called: servers
/// configured and not used cost a session nothing.
#[test]
fn a_known_server_starts_only_at_its_first_call() {
    let Some(python) = python() else { return };
    let env = Env::new();
    let starts = env.home.parent().unwrap().join("starts");
    configure(
        &env,
        &format!(
            "[mcp_servers.hostile]\ncommand = \"{python}\"\nargs = [\"{}\"]\ntrusted = true\n\
             env = {{ HOSTILE_STARTS = \"{}\" }}\n",
            hostile(),
            starts.display()
        ),
    );
    let started = || {
        fs_err::read_to_string(&starts)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let tools = run(env.cox().arg("tools"));
    assert!(
        stdout(&tools).contains("mcp hostile: tools not listed yet"),
        "{}",
        stdout(&tools)
    );
    // The first session does not know its tools: it starts it.
    let server = script(vec![Turn::text(&["Nothing."])]);
    assert_eq!(exec(&env, &server).status.code(), Some(0));
    assert_eq!(started(), 1);
    // `cox tools` shows them as listed, and starts nothing.
    let tools = stdout(&run(env.cox().arg("tools")));
    assert!(
        tools.contains("hostile__env") && tools.contains("hostile__write"),
        "{tools}"
    );
    assert_eq!(started(), 1);
    // The next knows them: offered, not started.
    let server = script(vec![Turn::text(&["Nothing."])]);
    let output = exec(&env, &server);
    assert_eq!(started(), 1, "a server no call needed was started");
    assert!(offered(&server, 0).contains(&"hostile__env".to_string()));
    let status = events(&output)
        .into_iter()
        .find(|e| e["type"] == "mcp_servers")
        .unwrap();
    assert_eq!(status["servers"][0]["idle"], true, "{status}");
    // A call starts it, and gets its answer.
    let server = script(vec![
        call("hostile__env", serde_json::json!({})),
        Turn::text(&["Done."]),
    ]);
    exec(&env, &server);
    assert_eq!(started(), 2);
    assert!(results(&server, 1)[0].contains("PATH"));
}

/// A stdio server has the network only where its entry says (`network = true`), whatever the
/// model asks.
#[test]
fn a_servers_network_is_its_entrys() {
    let Some(python) = python() else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let env = Env::new();
    let hostile = hostile();
    configure(
        &env,
        &format!(
            "[mcp_servers.closed]\ncommand = \"{python}\"\nargs = [\"{hostile}\"]\ntrusted = true\n\n\
             [mcp_servers.open]\ncommand = \"{python}\"\nargs = [\"{hostile}\"]\ntrusted = true\n\
             network = true\n"
        ),
    );
    let server = script(vec![
        call("closed__connect", serde_json::json!({"port": port})),
        call("open__connect", serde_json::json!({"port": port})),
        Turn::text(&["Done."]),
    ]);
    let output = exec(&env, &server);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let closed = &results(&server, 1)[0];
    assert!(closed.starts_with("refused"), "{closed}");
    assert_eq!(results(&server, 2), ["connected"]);
}

/// An image a tool returns reaches the model where the wire takes images in tool results
/// (Responses, Anthropic); Chat Completions gets the text, which names it, and a note.
#[test]
fn an_mcp_image_reaches_models_whose_wire_takes_it() {
    let Some(everything) = npm_server("mcp-server-everything") else {
        return;
    };
    let env = Env::new();
    let turns = || {
        script(vec![
            call("everything__get-tiny-image", serde_json::json!({})),
            Turn::text(&["Seen."]),
        ])
    };
    let entry = format!("[mcp_servers.everything]\ncommand = \"{everything}\"\ntrusted = true\n");
    configure(&env, &entry);
    // Responses: the output is content parts, the image a data URL.
    let server = turns();
    assert_eq!(exec(&env, &server).status.code(), Some(0));
    let input = server.requests()[1].body["input"].to_string();
    assert!(input.contains("\"type\":\"input_image\""), "{input}");
    assert!(input.contains("data:image/png;base64,iVBOR"), "{input}");
    assert!(input.contains("attached]"), "{input}");
    // Anthropic: an image block in the tool_result.
    let server = turns();
    let output = run(env
        .cox()
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", server.url())
        .args(["--provider", "anthropic", "exec", "look"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let messages = server.requests()[1].body["messages"].to_string();
    assert!(
        messages.contains("\"type\":\"image\"")
            && messages.contains("\"media_type\":\"image/png\""),
        "{messages}"
    );
    // Chat Completions: text only, and said so.
    configure(
        &env,
        &format!(
            "provider = \"corp\"\n[providers.corp]\nwire = \"chat\"\nbase_url = \"{}/v1\"\n\
             requires_key = false\nmodel = \"corp-coder\"\n\n{entry}",
            "MOCK"
        ),
    );
    let server = turns();
    let text = fs_err::read_to_string(env.home.join("config.toml"))
        .unwrap()
        .replace("MOCK", &server.url());
    fs_err::write(env.home.join("config.toml"), text).unwrap();
    let output = run(env.cox().args(["exec", "look"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let messages = server.requests()[1].body["messages"].to_string();
    assert!(
        messages.contains("image(s) not sent: this provider's tool results take text only"),
        "{messages}"
    );
    assert!(!messages.contains("iVBOR"), "{messages}");
}
