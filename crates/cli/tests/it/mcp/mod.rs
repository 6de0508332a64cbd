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

mod commands;
mod hostile;
mod reference;

fn journal_text(env: &Env) -> String {
    let dir = env.home.join("sessions");
    fs_err::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| fs_err::read_to_string(e.path()).unwrap())
        .collect()
}
