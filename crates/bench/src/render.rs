//! `cox-bench render [--cox PATH] [--runs N]`: streaming render throughput of the live terminal UI.
//! The real binary runs in tmux against a mock that streams 40,000 deltas (a line every ten) at full
//! speed; the time is from launch to the status line saying READY after the stream, and the
//! scrollback is checked for every delta, in order. Baseline in the same run: the same stream
//! printed by `cox exec` into a pipe (no terminal rendering).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script, Turn};

use crate::{median, ms};

const DELTAS: usize = 40_000;

fn script() -> Script {
    let chunks: Vec<String> = (0..DELTAS)
        .map(|n| {
            if n % 10 == 9 {
                format!("w{n:05}\n")
            } else {
                format!("w{n:05} ")
            }
        })
        .collect();
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    Script {
        turns: vec![Turn::text(&refs)],
    }
}

pub fn run(cox: &Path, runs: usize) -> anyhow::Result<()> {
    let mut tui = Vec::new();
    let mut piped = Vec::new();
    // A pane's scrollback size is fixed when it is created: raise the global limit first, with a
    // placeholder session keeping the tmux server alive.
    let keeper = format!("cox-bench-keeper-{}", std::process::id());
    Command::new("tmux")
        .args(["new-session", "-d", "-s", &keeper])
        .status()
        .context("tmux (apt-get install tmux)")?;
    Command::new("tmux")
        .args(["set-option", "-g", "history-limit", "50000"])
        .status()?;
    for run in 0..runs {
        let home = tempfile::tempdir()?;
        let server = MockServer::start(script())?;
        let name = format!("cox-bench-render-{}-{run}", std::process::id());
        let command = format!(
            "cd '{}' && COX_HOME='{}' OPENAI_API_KEY=sk-bench-000000000000 OPENAI_BASE_URL='{}/v1' NO_COLOR=1 '{}' 'stream'; sleep 30",
            home.path().display(),
            home.path().display(),
            server.url(),
            cox.display()
        );
        let start = Instant::now();
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "40",
                &command,
            ])
            .status()
            .context("tmux (apt-get install tmux)")?;
        if !status.success() {
            bail!("tmux failed");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = Command::new("tmux")
                .args(["capture-pane", "-p", "-t", &name])
                .output()?;
            let text = String::from_utf8_lossy(&screen.stdout);
            if text.contains("READY") && text.contains(&format!("w{:05}", DELTAS - 1)) {
                break;
            }
            if Instant::now() > deadline {
                bail!("the stream never finished on screen");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        tui.push(start.elapsed());
        let all = Command::new("tmux")
            .args(["capture-pane", "-p", "-S", "-", "-t", &name])
            .output()?;
        let words = String::from_utf8_lossy(&all.stdout)
            .split_whitespace()
            .filter(|w| w.len() == 6 && w.starts_with('w'))
            .count();
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &name])
            .status();
        if words != DELTAS {
            bail!("{words} of {DELTAS} deltas reached the scrollback");
        }

        let server = MockServer::start(script())?;
        let start = Instant::now();
        let status = Command::new(cox)
            .current_dir(home.path())
            .env("COX_HOME", home.path())
            .env("OPENAI_API_KEY", "sk-bench-000000000000")
            .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
            .args(["exec", "stream"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        piped.push(start.elapsed());
        if !status.success() {
            bail!("cox exec failed");
        }
    }
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &keeper])
        .status();
    let tui = median(tui);
    let piped = median(piped);
    println!("| measure ({DELTAS} deltas, {runs} runs) | median | deltas/s |");
    println!("|---|---|---|");
    println!(
        "| live UI in tmux, launch → stream complete on screen (all deltas in order) | {} | {:.0} |",
        ms(tui),
        DELTAS as f64 / tui.as_secs_f64()
    );
    println!(
        "| baseline: `cox exec` into a pipe, same stream | {} | {:.0} |",
        ms(piped),
        DELTAS as f64 / piped.as_secs_f64()
    );
    Ok(())
}
