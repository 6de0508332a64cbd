//! `cox-bench steering [--cox PATH] [--runs N]`: pause latency, over N pause/resume trials in one
//! headless steerable session against a mock that streams text slowly.
//!
//! - *pause → barrier*: from writing `{"op":"pause"}` on cox's stdin to reading the `paused` event on
//!   its stdout (the event is emitted once the barrier is up).
//! - *pause → request cancelled*: from the same write to the mock noticing that the client dropped
//!   the streaming response. This includes the mock's own detection (it notices on its next frame,
//!   sent every 5 ms), so it is an upper bound.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script, Turn};

pub fn run(cox: &Path, runs: usize) -> anyhow::Result<()> {
    let turns = (0..runs + 2)
        .map(|_| {
            let chunks: Vec<String> = (0..2000).map(|n| format!("word{n} ")).collect();
            let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
            let mut turn = Turn::text(&refs);
            turn.delay_ms = 5;
            turn
        })
        .collect();
    let server = MockServer::start(Script { turns })?;
    let repo = tempfile::tempdir()?;
    let home = tempfile::tempdir()?;
    let mut child = Command::new(cox)
        .current_dir(repo.path())
        .env("COX_HOME", home.path())
        .env("OPENAI_API_KEY", "sk-bench-000000000000")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args([
            "exec",
            "--json",
            "--steerable",
            "--steer-grace",
            "0",
            "talk",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let events = read_events(child.stdout.take().context("stdout")?);

    let mut barrier = Vec::new();
    let mut cancelled = Vec::new();
    for trial in 0..runs {
        wait(&events, "\"agent_message_delta\"")?;
        let request = server.requests().len() - 1;
        let sent = Instant::now();
        writeln!(stdin, "{{\"op\":\"pause\"}}")?;
        stdin.flush()?;
        let paused = wait(&events, "\"paused\"")?;
        barrier.push(paused - sent);
        let deadline = Instant::now() + Duration::from_secs(5);
        let aborted = loop {
            if let Some(at) = server.requests()[request].aborted_at {
                break at;
            }
            if Instant::now() > deadline {
                bail!("trial {trial}: the mock never saw request {request} cancelled");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        cancelled.push(aborted.saturating_duration_since(sent));
        writeln!(stdin, "{{\"op\":\"resume\"}}")?;
        stdin.flush()?;
        wait(&events, "\"resumed\"")?;
    }
    writeln!(stdin, "{{\"op\":\"interrupt\"}}")?;
    drop(stdin);
    let _ = child.wait();

    println!("| measure ({runs} trials) | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for (name, mut values) in [
        ("pause → barrier (`paused` event read)", barrier),
        ("pause → request cancelled (seen by the mock)", cancelled),
    ] {
        values.sort();
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {name} | {} | {} | {} |",
            us(at(0.5)),
            us(at(0.99)),
            us(at(1.0))
        );
    }
    Ok(())
}

fn us(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Lines from cox's stdout, each with the time it was read.
fn read_events(stdout: std::process::ChildStdout) -> Receiver<(Instant, String)> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// The time the next line containing `needle` was read.
fn wait(events: &Receiver<(Instant, String)>, needle: &str) -> anyhow::Result<Instant> {
    loop {
        let (at, line) = events
            .recv_timeout(Duration::from_secs(10))
            .with_context(|| format!("no {needle} event"))?;
        if line.contains(&format!("\"type\":{needle}")) {
            return Ok(at);
        }
    }
}
