//! The hostile server (`tests/fixtures/mcp/hostile.py`): keys, the sandbox, faults, rules,
//! project files, lazy starts, the network.

use super::*;

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
