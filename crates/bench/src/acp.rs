//! `cox-bench acp [--cox PATH] [--runs N]`: `cox acp` against `cox exec --json` (the baseline,
//! same binary, same scripted mock model, same run), each run alternating the two:
//!
//! - start → first update: from spawning the process to the first `session/update` carrying the
//!   answer (ACP: `initialize`, `session/new`, `session/prompt`, each sent when the one before is
//!   answered, as a client must) against spawning `cox exec --json` to its first `agent_message_delta` line;
//! - per-update cost: one answer streamed as 4000 deltas at no delay, the time from the first to
//!   the last delta on the client's side divided by the deltas between — JSON-RPC notifications
//!   against JSON Lines events.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script, Turn};
use serde_json::{Value, json};

use crate::{median, ms};

const DELTAS: usize = 4000;

/// When the first and last answer delta arrived, from spawning the process.
struct Timing {
    first: Duration,
    last: Duration,
    deltas: usize,
}

fn script(deltas: usize) -> Script {
    let words: Vec<String> = (0..deltas).map(|i| format!("w{i} ")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    Script {
        turns: vec![Turn::text(&words)],
    }
}

fn command(cox: &Path, dir: &Path, server: &MockServer) -> Command {
    let mut command = Command::new(cox);
    command
        .current_dir(dir)
        .env("COX_HOME", dir.join("home"))
        .env("OPENAI_API_KEY", "sk-bench-000000000000")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

fn acp(cox: &Path, deltas: usize) -> anyhow::Result<Timing> {
    let dir = tempfile::tempdir()?;
    let server = MockServer::start(script(deltas))?;
    let start = Instant::now();
    let mut child = command(cox, dir.path(), &server).arg("acp").spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let send = |stdin: &mut std::process::ChildStdin, message: Value| -> anyhow::Result<()> {
        writeln!(stdin, "{message}")?;
        stdin.flush()?;
        Ok(())
    };
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}),
    )?;
    let cwd = dir.path().display().to_string();
    let (mut first, mut last, mut seen) = (None, None, 0);
    for line in stdout.lines() {
        let line = line?;
        let at = start.elapsed();
        let message: Value = serde_json::from_str(&line)?;
        if message["id"] == 1 {
            // The SDK takes requests only once initialize has been answered.
            send(
                &mut stdin,
                json!({"jsonrpc": "2.0", "id": 2, "method": "session/new",
                       "params": {"cwd": cwd, "mcpServers": []}}),
            )?;
        } else if message["id"] == 2 {
            let session = message["result"]["sessionId"].clone();
            send(
                &mut stdin,
                json!({"jsonrpc": "2.0", "id": 3, "method": "session/prompt",
                       "params": {"sessionId": session, "prompt": [{"type": "text", "text": "go"}]}}),
            )?;
        } else if message["params"]["update"]["sessionUpdate"] == "agent_message_chunk" {
            first.get_or_insert(at);
            last = Some(at);
            seen += 1;
        } else if message["id"] == 3 {
            break;
        }
    }
    drop(stdin);
    child.wait()?;
    timing(first, last, seen, deltas)
}

fn exec(cox: &Path, deltas: usize) -> anyhow::Result<Timing> {
    let dir = tempfile::tempdir()?;
    let server = MockServer::start(script(deltas))?;
    let start = Instant::now();
    let mut child = command(cox, dir.path(), &server)
        .args(["exec", "--json", "go"])
        .spawn()?;
    let stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let (mut first, mut last, mut seen) = (None, None, 0);
    for line in stdout.lines() {
        let line = line?;
        let at = start.elapsed();
        let event: Value = serde_json::from_str(&line)?;
        match event["type"].as_str() {
            Some("agent_message_delta") => {
                first.get_or_insert(at);
                last = Some(at);
                seen += 1;
            }
            Some("session_completed") => break,
            _ => {}
        }
    }
    child.wait()?;
    timing(first, last, seen, deltas)
}

fn timing(
    first: Option<Duration>,
    last: Option<Duration>,
    seen: usize,
    deltas: usize,
) -> anyhow::Result<Timing> {
    let (Some(first), Some(last)) = (first, last) else {
        bail!("no answer delta arrived");
    };
    if seen != deltas {
        bail!("{seen} of {deltas} deltas arrived");
    }
    Ok(Timing {
        first,
        last,
        deltas: seen,
    })
}

fn per_update(t: &Timing) -> Duration {
    (t.last - t.first) / (t.deltas as u32 - 1).max(1)
}

pub fn run(cox: &Path, runs: usize) -> anyhow::Result<()> {
    let (mut acp_first, mut exec_first, mut acp_each, mut exec_each) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // Start-up: a one-delta answer, so the first update is the whole task's latency.
        acp_first.push(acp(cox, 1)?.first);
        exec_first.push(exec(cox, 1)?.first);
        acp_each.push(per_update(&acp(cox, DELTAS)?));
        exec_each.push(per_update(&exec(cox, DELTAS)?));
    }
    let (af, ef) = (median(acp_first), median(exec_first));
    let (ae, ee) = (median(acp_each), median(exec_each));
    let us = |d: Duration| format!("{:.2} µs", d.as_secs_f64() * 1e6);
    println!("| measure ({runs} runs, medians) | cox acp | cox exec --json | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| spawn → first answer update | {} | {} | {:.2}× |",
        ms(af),
        ms(ef),
        af.as_secs_f64() / ef.as_secs_f64()
    );
    println!(
        "| per answer delta ({DELTAS} deltas) | {} | {} | {:.2}× |",
        us(ae),
        us(ee),
        ae.as_secs_f64() / ee.as_secs_f64()
    );
    Ok(())
}
