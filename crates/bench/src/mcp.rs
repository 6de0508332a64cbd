//! `cox-bench mcp [--cox PATH] [--runs N]`: what MCP servers cost a session, with the reference
//! servers `scripts/test` installs under `target/test-tools` (`COX_TEST_TOOLS` overrides it):
//!
//! - start → first request of a one-turn task with no servers (the baseline), with three stdio
//!   servers configured and none used — `server-everything`, `server-filesystem` (npm) and
//!   `mcp-server-git` (PyPI) — first with nothing known about them (each run a fresh home: they
//!   start and are waited for), then known from an earlier session (they stay idle);
//! - a first call's cost per transport: the gap from the mock's reply with the call to cox's next
//!   request, for `echo` over stdio (started with the session), stdio started by the call (known
//!   from an earlier session), streamable HTTP and legacy SSE, beside `read_file` (in-process) as
//!   the baseline;
//! - the tokens (o200k_base) the three servers' tool schemas add to every request, offered whole
//!   and deferred behind `mcp_search_tools`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script, Turn};

use crate::{median, ms};

fn tools_dir() -> PathBuf {
    std::env::var_os("COX_TEST_TOOLS")
        .map_or_else(|| PathBuf::from("target/test-tools"), PathBuf::from)
}

struct Servers {
    everything: String,
    filesystem: String,
    git: String,
}

fn servers() -> anyhow::Result<Servers> {
    let dir = fs_err::canonicalize(tools_dir())
        .context("no target/test-tools: run scripts/test once (it installs the MCP servers)")?;
    let find = |path: PathBuf| -> anyhow::Result<String> {
        if !path.exists() {
            bail!("{} is missing: run scripts/test once", path.display());
        }
        Ok(path.display().to_string())
    };
    Ok(Servers {
        everything: find(dir.join("mcp/node_modules/.bin/mcp-server-everything"))?,
        filesystem: find(dir.join("mcp/node_modules/.bin/mcp-server-filesystem"))?,
        git: find(dir.join("venv/bin/mcp-server-git"))?,
    })
}

fn three(servers: &Servers, repo: &Path, extra: &str) -> String {
    format!(
        "{extra}[mcp_servers.everything]\ncommand = \"{}\"\ntrusted = true\n\n\
         [mcp_servers.fs]\ncommand = \"{}\"\nargs = [\"{}\"]\n\n\
         [mcp_servers.git]\ncommand = \"{}\"\nargs = [\"--repository\", \"{}\"]\n",
        servers.everything,
        servers.filesystem,
        repo.display(),
        servers.git,
        repo.display()
    )
}

/// One session: the requests the mock saw and when it started.
fn session(
    cox: &Path,
    repo: &Path,
    home: &Path,
    config: &str,
    turns: Vec<Turn>,
) -> anyhow::Result<(Instant, Vec<cox_testkit::Recorded>)> {
    fs_err::create_dir_all(home)?;
    fs_err::write(home.join("config.toml"), config)?;
    let expected = turns.len();
    let server = MockServer::start(Script { turns })?;
    let start = Instant::now();
    let status = Command::new(cox)
        .current_dir(repo)
        .env("COX_HOME", home)
        .env("OPENAI_API_KEY", "sk-bench-000000000000")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["exec", "go"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run cox")?;
    if !status.success() {
        bail!("cox failed: {status}");
    }
    let requests = server.requests();
    if requests.len() != expected {
        bail!("expected {expected} requests, saw {}", requests.len());
    }
    Ok((start, requests))
}

fn first_request(cox: &Path, repo: &Path, home: &Path, config: &str) -> anyhow::Result<Duration> {
    let (start, requests) = session(cox, repo, home, config, vec![Turn::text(&["Done."])])?;
    Ok(requests[0].received_at - start)
}

/// The reply-with-the-call → next request gap of a session making one call.
fn call_gap(
    cox: &Path,
    repo: &Path,
    home: &Path,
    config: &str,
    name: &str,
    arguments: &str,
) -> anyhow::Result<Duration> {
    let (_, requests) = session(
        cox,
        repo,
        home,
        config,
        vec![Turn::call(name, arguments), Turn::text(&["Done."])],
    )?;
    let output = requests[1].body["input"].to_string();
    if output.contains("not available") || output.contains("unknown tool") {
        bail!("{name} did not run: {output}");
    }
    let answered = requests[0].answered_at.context("response not finished")?;
    Ok(requests[1].received_at - answered)
}

/// An HTTP mode of the reference server on a free port, killed when dropped.
struct Http(std::process::Child, u16);

impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(everything: &str, mode: &str) -> anyhow::Result<Http> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(everything)
        .arg(mode)
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = Http(child, port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("the reference server's {mode} mode did not listen");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

pub fn run(cox: &Path, runs: usize) -> anyhow::Result<()> {
    let servers = servers()?;
    let root = tempfile::tempdir()?;
    let repo = root.path().join("repo");
    fs_err::create_dir_all(repo.join(".git"))?;
    fs_err::write(repo.join("README.md"), "# Bench\n")?;
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "b")
            .env("GIT_AUTHOR_EMAIL", "b@example.com")
            .env("GIT_COMMITTER_NAME", "b")
            .env("GIT_COMMITTER_EMAIL", "b@example.com")
            .output()
    };
    fs_err::remove_dir_all(repo.join(".git"))?;
    git(&["init", "-q"])?;
    git(&["add", "."])?;
    git(&["commit", "-q", "-m", "bench"])?;
    let config = three(&servers, &repo, "");
    let warm_home = root.path().join("warm");
    first_request(cox, &repo, &warm_home, &config)?;

    let (mut none, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let home = root.path().join(format!("none-{run}"));
        none.push(first_request(cox, &repo, &home, "")?);
        let home = root.path().join(format!("cold-{run}"));
        cold.push(first_request(cox, &repo, &home, &config)?);
        warm.push(first_request(cox, &repo, &warm_home, &config)?);
    }
    let base = median(none);
    println!("| start → first request, one-turn task (median of {runs}) | time | ratio |");
    println!("|---|---|---|");
    println!("| no MCP servers (baseline) | {} | 1.00× |", ms(base));
    for (label, times) in [
        (
            "3 stdio servers configured, none used, unknown (they start and are waited for)",
            cold,
        ),
        (
            "3 stdio servers configured, none used, known from an earlier session (idle)",
            warm,
        ),
    ] {
        let time = median(times);
        println!(
            "| {label} | {} | {:.2}× |",
            ms(time),
            crate::ratio(time, base)
        );
    }

    let echo = r#"{"message":"hi"}"#;
    let stdio = format!(
        "[mcp_servers.everything]\ncommand = \"{}\"\ntrusted = true\n",
        servers.everything
    );
    let streamable = http(&servers.everything, "streamableHttp")?;
    let sse = http(&servers.everything, "sse")?;
    let lazy_home = root.path().join("lazy");
    call_gap(cox, &repo, &lazy_home, &stdio, "everything__echo", echo)?;
    let mut gaps: [Vec<Duration>; 5] = Default::default();
    for run in 0..runs {
        let fresh = |name: &str| root.path().join(format!("{name}-{run}"));
        gaps[0].push(call_gap(
            cox,
            &repo,
            &fresh("read"),
            "",
            "read_file",
            r#"{"path":"README.md"}"#,
        )?);
        gaps[1].push(call_gap(
            cox,
            &repo,
            &fresh("stdio"),
            &stdio,
            "everything__echo",
            echo,
        )?);
        gaps[2].push(call_gap(
            cox,
            &repo,
            &lazy_home,
            &stdio,
            "everything__echo",
            echo,
        )?);
        let url = |port: u16, path: &str, sse: bool| {
            format!(
                "[mcp_servers.everything]\nurl = \"http://127.0.0.1:{port}{path}\"\ntrusted = true\n{}",
                if sse { "transport = \"sse\"\n" } else { "" }
            )
        };
        gaps[3].push(call_gap(
            cox,
            &repo,
            &fresh("http"),
            &url(streamable.1, "/mcp", false),
            "everything__echo",
            echo,
        )?);
        gaps[4].push(call_gap(
            cox,
            &repo,
            &fresh("sse"),
            &url(sse.1, "/sse", true),
            "everything__echo",
            echo,
        )?);
    }
    let [read, on_stdio, on_lazy, on_http, on_sse] = gaps.map(median);
    println!();
    println!(
        "| first call: reply with the call → next request (median of {runs}) | time | ratio |"
    );
    println!("|---|---|---|");
    println!(
        "| `read_file` (in-process, baseline) | {} | 1.00× |",
        ms(read)
    );
    for (label, time) in [
        (
            "`everything__echo` over stdio, server started with the session",
            on_stdio,
        ),
        (
            "`everything__echo` over stdio, server started by the call (idle before)",
            on_lazy,
        ),
        (
            "`everything__echo` over streamable HTTP (connected with the session)",
            on_http,
        ),
        (
            "`everything__echo` over legacy SSE (connected with the session)",
            on_sse,
        ),
    ] {
        println!(
            "| {label} | {} | {:.1}× |",
            ms(time),
            crate::ratio(time, read)
        );
    }

    let bpe = tiktoken_rs::o200k_base()?;
    let tokens = |config: &str, name: &str| -> anyhow::Result<usize> {
        let home = root.path().join(name);
        let (_, requests) = session(cox, &repo, &home, config, vec![Turn::text(&["Done."])])?;
        Ok(bpe
            .encode_ordinary(&requests[0].body["tools"].to_string())
            .len())
    };
    let builtin = tokens("", "tokens-none")?;
    let whole = tokens(
        &three(&servers, &repo, "mcp_tool_schema_budget = 1000000\n"),
        "tokens-whole",
    )?;
    let deferred = tokens(
        &three(&servers, &repo, "mcp_tool_schema_budget = 1\n"),
        "tokens-deferred",
    )?;
    println!();
    println!("| tool schemas in every request (o200k_base tokens) | tokens | added by MCP |");
    println!("|---|---|---|");
    println!("| built-in tools only | {builtin} | 0 |");
    println!(
        "| with the 3 servers' tools offered whole | {whole} | {} |",
        whole - builtin
    );
    println!(
        "| with them deferred behind `mcp_search_tools` | {deferred} | {} |",
        deferred - builtin
    );
    Ok(())
}
