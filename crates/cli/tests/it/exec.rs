//! Exec end to end: answers, JSON events, every fault, tool errors, limits.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use cox_testkit::{Fault, MockServer, Script, Turn};
use serde_json::Value;

use crate::harness::*;

#[test]
fn three_turn_task_prints_only_the_answer() {
    let env = Env::new();
    let server = MockServer::start(three_turn_script()).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "How long is the README?"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "README.md has 2 lines: a title and one sentence.\n"
    );
    let progress = stderr(&output);
    assert!(
        progress.contains("› read_file: Read README.md"),
        "{progress}"
    );
    assert!(
        progress.contains("› shell: Run wc -l README.md"),
        "{progress}"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let last_input = requests[2].body["input"].as_array().unwrap();
    let outputs: Vec<String> = last_input
        .iter()
        .filter(|item| item["type"] == "function_call_output")
        .map(|item| timeless(item["output"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outputs,
        [
            "     1\t# Demo\n     2\tA tiny repository.\n",
            "exit code: 0\nduration: [d]\noutput:\n2 README.md\n"
        ]
    );
    // Stateless Responses requests keyed for the prompt cache by the session id.
    let key = requests[0].body["prompt_cache_key"].as_str().unwrap();
    assert!(
        requests
            .iter()
            .all(|r| r.body["prompt_cache_key"] == key && r.body["store"] == false)
    );
}

#[test]
fn prompt_without_subcommand_and_stdout_not_a_tty_behaves_like_exec() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["{\"plan\": true}"])],
    })
    .unwrap();
    let output = run(env.cox_with(&server).arg("Output a plan as JSON."));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "{\"plan\": true}\n");
}

/// Replaces what changes from run to run (ids, times, paths) so the sequence can be snapshotted.
fn redact(event: &mut Value) {
    let Some(object) = event.as_object_mut() else {
        return;
    };
    for (key, value) in object.iter_mut() {
        match key.as_str() {
            "ts" => *value = Value::String("[ts]".into()),
            "session_id" => *value = Value::String("[session-id]".into()),
            "cwd" => *value = Value::String("[cwd]".into()),
            "output" => *value = Value::String(timeless(value.as_str().unwrap_or_default())),
            "outcome" => {
                if let Some(ms) = value.get_mut("duration_ms") {
                    *ms = Value::String("[ms]".into());
                }
            }
            _ => {}
        }
    }
}

#[test]
fn json_event_sequence_of_a_three_turn_task() {
    let env = Env::new();
    let server = MockServer::start(three_turn_script()).unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "--json", "How long is the README?"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut events: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON event"))
        .collect();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "seq increases: {seqs:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')))
    );
    events.iter_mut().for_each(redact);
    let text = events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("json_three_turn_events", text);
}

/// Every fault, with a tool whose side effect appends a line to a file: the broken response streams
/// the call, the retry streams it again, and the line is written exactly once.
#[test]
fn faults_recover_and_the_side_effect_happens_once() {
    let append = r#"{"command":"echo ran >> side-effect.txt"}"#;
    let faults = [
        Fault::Status {
            status: 429,
            retry_after: Some("1".into()),
            message: None,
        },
        Fault::Status {
            status: 500,
            retry_after: None,
            message: None,
        },
        Fault::DropMidStream,
        Fault::MalformedSse,
        Fault::Stall { ms: 1500 },
    ];
    for fault in faults {
        let env = Env::new();
        let broken = Turn::text(&["Appending."])
            .with_call("shell", append, 3)
            .with_fault(fault.clone());
        let good = Turn::text(&["Appending."]).with_call("shell", append, 3);
        let server = MockServer::start(Script {
            turns: vec![broken, good, Turn::text(&["Done."])],
        })
        .unwrap();
        let output = run(env.cox_with(&server).args(["exec", "append a line"]));
        assert_eq!(
            output.status.code(),
            Some(0),
            "{fault:?}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "Done.\n", "{fault:?}");
        assert_eq!(
            env.lines_of("side-effect.txt"),
            1,
            "{fault:?}: the tool ran once"
        );
        assert!(
            stderr(&output).contains("retrying in"),
            "{fault:?}: {}",
            stderr(&output)
        );
        assert_eq!(server.requests().len(), 3, "{fault:?}");
    }
}

#[test]
fn invalid_tool_arguments_go_back_to_the_model() {
    let env = Env::new();
    let script = Script {
        turns: vec![
            Turn::call("shell", r#"{"command": "echo ran >> side-effect.txt"#),
            Turn::call("shell", r#"{"command":"echo ran >> side-effect.txt"}"#),
            Turn::text(&["Recovered."]),
        ],
    };
    let server = MockServer::start(script).unwrap();
    let output = run(env.cox_with(&server).args(["exec", "append"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Recovered.\n");
    assert_eq!(env.lines_of("side-effect.txt"), 1);
    let second = &server.requests()[1].body["input"];
    let result = second
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["type"] == "function_call_output")
        .unwrap();
    let text = result["output"].as_str().unwrap();
    assert!(
        text.starts_with("the arguments for shell are not valid JSON"),
        "{text}"
    );
}

#[test]
fn unknown_tool_and_failed_command_do_not_end_the_session() {
    let env = Env::new();
    let script = Script {
        turns: vec![
            Turn::call("teleport", r#"{"to":"mars"}"#),
            Turn::call("shell", r#"{"command":["false"]}"#),
            Turn::text(&["Handled."]),
        ],
    };
    let server = MockServer::start(script).unwrap();
    let output = run(env.cox_with(&server).args(["exec", "go"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let outputs: Vec<String> = server.requests()[2].body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "function_call_output")
        .map(|item| item["output"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outputs[0],
        "unknown tool `teleport`. The available tools are: shell, exec_command, write_stdin, list_sessions, kill_session, apply_patch, read_file, list_dir, grep, update_plan, ask_user."
    );
    assert_eq!(
        timeless(&outputs[1]),
        "exit code: 1\nduration: [d]\noutput:\n(no output)"
    );
}

#[test]
fn retries_exhausted_exit_3_with_the_reason() {
    let env = Env::new();
    let failing = || {
        Turn::default().with_fault(Fault::Status {
            status: 503,
            retry_after: None,
            message: None,
        })
    };
    let server = MockServer::start(Script {
        turns: vec![failing(), failing(), failing()],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["-c", "max_retries=2", "exec", "hi"]));
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("server error (HTTP 503)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(server.requests().len(), 3);
    assert_eq!(stdout(&output), "");
}

#[test]
fn auth_failure_exits_3_without_retrying() {
    let env = Env::new();
    let denied = Turn::default().with_fault(Fault::Status {
        status: 401,
        retry_after: None,
        message: Some(format!("Incorrect API key provided: {KEY}")),
    });
    let server = MockServer::start(Script {
        turns: vec![denied],
    })
    .unwrap();
    let output = run(env.cox_with(&server).args(["exec", "hi"]));
    expect_failure(&output, 3, "authentication failed (HTTP 401)");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn max_turns_exits_1() {
    let env = Env::new();
    let call = || Turn::call("shell", r#"{"command":["true"]}"#);
    let server = MockServer::start(Script {
        turns: vec![call(), call(), call()],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["exec", "--max-turns", "2", "loop"]));
    expect_failure(&output, 1, "stopped after 2 model turns");
}

#[test]
fn provider_keys_are_hidden_from_commands() {
    let env = Env::new();
    let script = Script {
        turns: vec![
            Turn::call(
                "shell",
                r#"{"command":"echo \"key=[$OPENAI_API_KEY] token=[$DEPLOY_TOKEN] home=[${HOME:+set}]\""}"#,
            ),
            Turn::text(&["ok"]),
        ],
    };
    let server = MockServer::start(script).unwrap();
    let output = run(env
        .cox_with(&server)
        .env("DEPLOY_TOKEN", "tok-123")
        .args(["exec", "show env"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let body = server.requests()[1].body.to_string();
    assert!(body.contains("key=[] token=[] home=[set]"), "{body}");
}

#[test]
fn anthropic_and_chat_providers_end_to_end() {
    let env = Env::new();
    let script = || Script {
        turns: vec![
            Turn::call("read_file", r#"{"path":"README.md"}"#),
            Turn::text(&["Read ", "it."]),
        ],
    };
    let server = MockServer::start(script()).unwrap();
    let output = run(env
        .cox()
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", server.url())
        .args(["--provider", "anthropic", "exec", "read"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Read it.\n");
    assert_eq!(server.requests()[0].path, "/v1/messages");
    assert_eq!(server.requests()[0].body["model"], "claude-opus-4-6");

    // A local OpenAI-compatible server: the ollama preset needs no key, only a model.
    let server = MockServer::start(script()).unwrap();
    let base = format!("providers.ollama.base_url={}/v1", server.url());
    let output = run(env.cox().args([
        "--provider",
        "ollama",
        "-m",
        "qwen2.5-coder",
        "-c",
        &base,
        "exec",
        "read",
    ]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Read it.\n");
    let request = &server.requests()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.body["model"], "qwen2.5-coder");
    assert!(!request.headers.contains_key("authorization"));
}

#[test]
fn custom_provider_from_config_file() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["custom ok"])],
    })
    .unwrap();
    fs_err::create_dir_all(&env.home).unwrap();
    let config = format!(
        "provider = \"corp\"\n[providers.corp]\nwire = \"chat\"\nbase_url = \"{}/v1\"\napi_key_env = \"CORP_KEY\"\nmodel = \"corp-coder\"\n",
        server.url()
    );
    fs_err::write(env.home.join("config.toml"), config).unwrap();
    let output = run(env.cox().env("CORP_KEY", KEY).args(["exec", "hi"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "custom ok\n");
    let request = &server.requests()[0];
    assert_eq!(request.body["model"], "corp-coder");
    assert_eq!(
        request.headers.get("authorization"),
        Some(&format!("Bearer {KEY}"))
    );

    let output = run(env.cox().args(["exec", "hi"]));
    expect_failure(&output, 3, "set CORP_KEY");
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let env = Env::new();
    let output = run(env
        .cox()
        .env("OPENAI_API_KEY", KEY)
        .args(["-c", "max_turn=5", "exec", "hi"]));
    expect_failure(&output, 2, "unknown field `max_turn`");
}

#[test]
fn auth_login_status_logout() {
    let env = Env::new();
    let mut login = env
        .cox()
        .args(["auth", "login", "--provider", "anthropic"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{KEY}\n").as_bytes())
        .unwrap();
    let output = login.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("saved the key sk-…wxyz for anthropic"),
        "{}",
        stderr(&output)
    );
    let auth = env.home.join("auth.json");
    assert_eq!(
        fs_err::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let status = run(env.cox().args(["auth", "status"]));
    let text = stdout(&status);
    assert!(
        text.contains(&format!("anthropic    file {} · sk-…wxyz", auth.display())),
        "{text}"
    );
    assert!(
        text.contains(
            "openai       not set (set OPENAI_API_KEY or run `cox auth login --provider openai`)"
        ),
        "{text}"
    );
    assert!(text.contains("ollama       no key needed"), "{text}");

    // The environment wins over the stored key.
    let status = run(env
        .cox()
        .env("ANTHROPIC_API_KEY", "sk-env-key-000000009999")
        .args(["auth", "status", "--provider", "anthropic"]));
    assert_eq!(
        stdout(&status),
        "anthropic    env ANTHROPIC_API_KEY · sk-…9999\n"
    );

    let logout = run(env
        .cox()
        .args(["auth", "logout", "--provider", "anthropic"]));
    assert_eq!(logout.status.code(), Some(0));
    assert!(stderr(&logout).contains("removed the stored key for anthropic"));
    let status = run(env
        .cox()
        .args(["auth", "status", "--provider", "anthropic"]));
    assert!(stdout(&status).contains("not set"), "{}", stdout(&status));
}

#[test]
fn stored_key_is_used_for_requests() {
    let env = Env::new();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["ok"])],
    })
    .unwrap();
    let mut login = env
        .cox()
        .args(["auth", "login"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(KEY.as_bytes())
        .unwrap();
    assert!(login.wait().unwrap().success());
    let output = run(env
        .cox()
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["exec", "hi"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        server.requests()[0].headers.get("authorization"),
        Some(&format!("Bearer {KEY}"))
    );
}

#[test]
fn ctrl_c_interrupts_the_task_kills_the_command_tree_and_exits_130() {
    let env = Env::new();
    let command = r#"{"command":"sleep 60.4711 & echo started > grandchild.pid; wait"}"#;
    let script = Script {
        turns: vec![Turn::call("shell", command), Turn::text(&["never asked"])],
    };
    let server = MockServer::start(script).unwrap();
    let child = env
        .cox_with(&server)
        .args(["exec", "--json", "wait a minute"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = env.repo.join("grandchild.pid");
    wait_for("the command to start", || {
        fs_err::read_to_string(&pid_file).is_ok_and(|t| t.ends_with('\n'))
    });
    wait_for("the grandchild to run", || {
        !pids_with_arg("60.4711").is_empty()
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    // cox must not wait for the 60 s command: it kills the command's process group and exits.
    let mut child = child;
    wait_for("cox to exit after the interrupt", || {
        child.try_wait().unwrap().is_some()
    });
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    wait_for("the grandchild to be killed", || {
        pids_with_arg("60.4711").is_empty()
    });
    let last: Value = serde_json::from_str(stdout(&output).lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "session_completed");
    assert_eq!(last["status"], "interrupted");
    let result = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|event| event["type"] == "tool_result")
        .unwrap();
    assert!(
        result["output"]
            .as_str()
            .unwrap()
            .starts_with("interrupted by the user"),
        "{result}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "no model request after the interrupt"
    );
}

/// cox killed outright (SIGKILL: no chance to clean up) takes its command with it: the launcher
/// dies with cox, init with the launcher, and the kernel ends the command's PID namespace —
/// daemons the command started with `setsid` included.
#[test]
fn a_killed_cox_leaves_no_command_running() {
    let env = Env::new();
    let command = r#"{"command":"setsid -f sleep 61.4713; sleep 61.4714"}"#;
    let server = MockServer::start(Script {
        turns: vec![Turn::call("shell", command), Turn::text(&["never"])],
    })
    .unwrap();
    let mut child = env
        .cox_with(&server)
        .args(["exec", "--json", "wait"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the command and its daemon to run", || {
        !pids_with_arg("61.4713").is_empty() && !pids_with_arg("61.4714").is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("the command and its daemon to die with cox", || {
        pids_with_arg("61.4713").is_empty() && pids_with_arg("61.4714").is_empty()
    });
}

/// `[sandbox.env]` in config.toml adds names to the credential rule and takes some out of it:
/// commands see what is kept, never what is scrubbed, and a scrubbed value printed by a command
/// is masked before the model sees it.
#[test]
fn the_environment_scrub_follows_config() {
    let env = Env::new();
    fs_err::create_dir_all(&env.home).unwrap();
    fs_err::write(
        env.home.join("config.toml"),
        "[sandbox.env]\nscrub = [\"CORP_*\"]\nkeep = [\"GH_TOKEN\"]\n",
    )
    .unwrap();
    let command =
        r#"{"command":"echo corp=$CORP_LICENSE gh=$GH_TOKEN gl=$GITLAB_TOKEN; cat value.txt"}"#;
    fs_err::write(env.repo.join("value.txt"), "license-value-0042\n").unwrap();
    let server = MockServer::start(Script {
        turns: vec![Turn::call("shell", command), Turn::text(&["ok"])],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .env("CORP_LICENSE", "license-value-0042")
        .env("GH_TOKEN", "gh-kept-token-1")
        .env("GITLAB_TOKEN", "gl-hidden-token-2")
        .args(["exec", "--json", "look"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen = server.requests()[1].body["input"].to_string();
    assert!(seen.contains("corp= gh=gh-kept-token-1 gl="), "{seen}");
    assert!(!seen.contains("license-value-0042"), "{seen}");
    assert!(!stdout(&output).contains("license-value-0042"));
    assert!(!seen.contains("gl-hidden-token-2"));
}

#[test]
fn the_prompt_gives_today_or_the_day_source_date_epoch_names() {
    let env = Env::new();
    let instructions = |epoch: Option<&str>| {
        let server = MockServer::start(Script {
            turns: vec![Turn::text(&["ok"])],
        })
        .unwrap();
        let mut command = env.cox_with(&server);
        if let Some(epoch) = epoch {
            command.env("SOURCE_DATE_EPOCH", epoch);
        }
        let output = run(command.args(["exec", "hi"]));
        assert!(output.status.success(), "{}", stderr(&output));
        server.requests()[0].body["instructions"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(instructions(Some("1796169600")).contains("Date: 2026-12-02"));
    let day = || {
        let out = std::process::Command::new("date")
            .args(["-u", "+%F"])
            .output()
            .unwrap();
        format!("Date: {}", String::from_utf8_lossy(&out.stdout).trim())
    };
    let before = day();
    let today = instructions(None);
    let not_a_number = instructions(Some("next tuesday"));
    let after = day();
    for text in [today, not_a_number] {
        assert!(
            text.contains(&before) || text.contains(&after),
            "{before}: {text}"
        );
    }
}
