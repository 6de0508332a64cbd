//! The reference servers from npm and PyPI: stdio, streamable HTTP, SSE, deferral, images.

use super::*;

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

#[test]
fn a_python_reference_server_works_on_the_repository() {
    let Some(_) = python() else { return };
    let git_server = tools()
        .join("venv/bin/mcp-server-git")
        .display()
        .to_string();
    let env = Env::new();
    commit_everything(&env.repo);
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
