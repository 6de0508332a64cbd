//! `cox mcp …`, `cox mcp-server`, and config entries as Codex writes them.

use super::*;

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
