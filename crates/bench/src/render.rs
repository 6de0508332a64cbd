//! `cox-bench render [--cox PATH] [--runs N]`: the live terminal UI's streaming render throughput,
//! plain and with Markdown, and its start-up to the prompt.
//!
//! - **Throughput**: the real binary runs in tmux against a mock that streams 40,000 deltas (a
//!   line every ten) at full speed; the time is from launch to the status line saying READY after
//!   the stream, and the scrollback is checked for every delta's word, in order. Twice: plain
//!   words, and Markdown — every word bold or code, a heading every 100 deltas, list items, and a
//!   fenced Rust block every 500 deltas (highlighted, so the syntax set is loaded on the way).
//!   Baseline in the same run: the plain stream printed by `cox exec` into a pipe.
//! - **Start-up to the prompt**: `cox` with no prompt in tmux, from launch to the composer and
//!   READY on screen. Baselines: `cox --version` (spawn and exit) and a tmux pane running `true`
//!   until its marker is on screen (what tmux and the polling cost).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script, Turn};

use crate::{median, ms};

const DELTAS: usize = 40_000;

/// The stream's word for delta `n`, as it must appear on screen.
fn word(n: usize) -> String {
    format!("w{n:05}")
}

fn plain() -> Vec<String> {
    (0..DELTAS)
        .map(|n| {
            let end = if n % 10 == 9 { "\n" } else { " " };
            format!("{}{end}", word(n))
        })
        .collect()
}

/// The same words in Markdown: headings, bold, inline code, list items and fenced code.
fn markdown() -> Vec<String> {
    (0..DELTAS)
        .map(|n| {
            let w = word(n);
            if n % 500 == 0 {
                format!("\n```rust\nlet {w} = vec![1, 2, 3];\n```\n\n")
            } else if n % 100 == 1 {
                format!("## Part {w}\n\n")
            } else if n % 10 == 2 {
                format!("- **{w}** ")
            } else if n % 10 == 9 {
                format!("`{w}`\n")
            } else if n % 2 == 0 {
                format!("*{w}* ")
            } else {
                format!("{w} ")
            }
        })
        .collect()
}

fn script(chunks: &[String]) -> Script {
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    Script {
        turns: vec![Turn::text(&refs)],
    }
}

fn tmux(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new("tmux")
        .args(args)
        .output()
        .context("tmux (apt-get install tmux)")
}

/// Launches `command` in a new 120×40 tmux pane named `name`; polls the pane every 2 ms until
/// `done` says yes. The time from launch to then.
fn until_on_screen(
    name: &str,
    command: &str,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "120",
            "-y",
            "40",
            command,
        ])
        .status()
        .context("tmux (apt-get install tmux)")?;
    if !status.success() {
        bail!("tmux failed");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", name])?;
        if done(&String::from_utf8_lossy(&screen.stdout)) {
            return Ok(start.elapsed());
        }
        if Instant::now() > deadline {
            let _ = tmux(&["kill-session", "-t", name]);
            bail!("{name}: what was awaited never appeared on screen");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The shell line a pane runs: `cox` (with `args`, already quoted) in `home` against the mock at
/// `url`, the pane kept open afterwards.
fn pane_command(cox: &Path, home: &Path, url: &str, args: &str) -> String {
    format!(
        "cd '{home}' && COX_HOME='{home}' OPENAI_API_KEY=sk-bench-000000000000 OPENAI_BASE_URL='{url}/v1' NO_COLOR=1 '{}' {args}; sleep 30",
        cox.display(),
        home = home.display(),
    )
}

/// The stream in `chunks` through the live UI: launch → complete on screen, with every word in
/// the scrollback once and in order.
fn streamed(cox: &Path, chunks: &[String], name: &str) -> anyhow::Result<Duration> {
    let home = tempfile::tempdir()?;
    let server = MockServer::start(script(chunks))?;
    let command = pane_command(cox, home.path(), &server.url(), "'stream'");
    let last = word(DELTAS - 1);
    let took = until_on_screen(name, &command, |text| {
        text.contains("READY") && text.contains(&last)
    })?;
    let all = tmux(&["capture-pane", "-p", "-S", "-", "-t", name])?;
    let _ = tmux(&["kill-session", "-t", name]);
    let text = String::from_utf8_lossy(&all.stdout);
    let words: Vec<usize> = regex::Regex::new(r"w(\d{5})")?
        .captures_iter(&text)
        .map(|c| c[1].parse().unwrap_or(usize::MAX))
        .collect();
    if words.len() != DELTAS {
        bail!(
            "{name}: {} of {DELTAS} deltas reached the scrollback",
            words.len()
        );
    }
    if let Some(at) = (0..DELTAS).find(|&n| words[n] != n) {
        bail!(
            "{name}: delta {at} is out of order ({} there)",
            word(words[at])
        );
    }
    Ok(took)
}

pub fn run(cox: &Path, runs: usize) -> anyhow::Result<()> {
    let (mut tui, mut md, mut piped) = (Vec::new(), Vec::new(), Vec::new());
    let (mut prompt, mut version, mut pane) = (Vec::new(), Vec::new(), Vec::new());
    // A pane's scrollback size is fixed when it is created: raise the global limit first, with a
    // placeholder session keeping the tmux server alive.
    let keeper = format!("cox-bench-keeper-{}", std::process::id());
    tmux(&["new-session", "-d", "-s", &keeper])?;
    tmux(&["set-option", "-g", "history-limit", "60000"])?;
    let (plain, markdown) = (plain(), markdown());
    let pid = std::process::id();
    for run in 0..runs {
        tui.push(streamed(
            cox,
            &plain,
            &format!("cox-bench-plain-{pid}-{run}"),
        )?);
        md.push(streamed(
            cox,
            &markdown,
            &format!("cox-bench-md-{pid}-{run}"),
        )?);

        let home = tempfile::tempdir()?;
        let server = MockServer::start(script(&plain))?;
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

        // Start-up: the composer and READY on screen, nothing asked of the model.
        let name = format!("cox-bench-prompt-{pid}-{run}");
        let command = pane_command(cox, home.path(), &server.url(), "");
        prompt.push(until_on_screen(&name, &command, |text| {
            text.contains("READY") && text.contains('›')
        })?);
        let _ = tmux(&["kill-session", "-t", &name]);
        let name = format!("cox-bench-pane-{pid}-{run}");
        pane.push(until_on_screen(
            &name,
            "true && echo pane-ready; sleep 30",
            |text| text.contains("pane-ready"),
        )?);
        let _ = tmux(&["kill-session", "-t", &name]);
        let start = Instant::now();
        Command::new(cox)
            .arg("--version")
            .stdout(Stdio::null())
            .status()?;
        version.push(start.elapsed());
    }
    let _ = tmux(&["kill-session", "-t", &keeper]);
    let rate = |d: Duration| DELTAS as f64 / d.as_secs_f64();
    let (tui, md, piped) = (median(tui), median(md), median(piped));
    println!("| measure ({DELTAS} deltas, {runs} runs) | median | deltas/s |");
    println!("|---|---|---|");
    println!(
        "| live UI in tmux, plain text: launch → stream complete on screen (all deltas in order) | {} | {:.0} |",
        ms(tui),
        rate(tui)
    );
    println!(
        "| live UI in tmux, Markdown (headings, emphasis, lists, highlighted code): same | {} | {:.0} |",
        ms(md),
        rate(md)
    );
    println!(
        "| baseline: `cox exec` into a pipe, plain stream | {} | {:.0} |",
        ms(piped),
        rate(piped)
    );
    println!();
    println!("| start-up ({runs} runs) | median |");
    println!("|---|---|");
    println!(
        "| `cox` in tmux: launch → composer and READY on screen | {} |",
        ms(median(prompt))
    );
    println!(
        "| baseline: a tmux pane running `true` → its marker on screen | {} |",
        ms(median(pane))
    );
    println!(
        "| baseline: `cox --version` (spawn, exit) | {} |",
        ms(median(version))
    );
    Ok(())
}
