//! `cox-bench exec-overhead [--cox PATH] [--against OLD_COX] [--runs N]`: what the harness costs
//! around the model (with `--against`, the 2-turn task on both binaries, alternating);
//! `cox-bench tools [--tree DIR] [--runs N]`: the file tools (see `tools.rs`);
//! `cox-bench context [--cox PATH] [--runs N]`: large contexts and the prompt-cache prefix (`context.rs`);
//! `cox-bench steering [--cox PATH] [--runs N]`: pause latency (`steering.rs`);
//! `cox-bench render [--cox PATH] [--runs N]`: the live UI's streaming throughput, plain and
//! Markdown, and its start-up to the prompt (`render.rs`);
//! `cox-bench plan-run [--cox PATH] [--against OLD_COX] [--runs N]`: a whole plan run, optionally
//! beside another cox binary in the same run (`plan_run.rs`);
//! `cox-bench sandbox [--cox PATH] [--against OLD_COX] [--runs N]`: the sandbox's cost per command
//! (`sandbox.rs`);
//! `cox-bench signals [--cox PATH] [--runs N]`: from SIGINT/SIGTERM to exit with a command tree
//! running (`signals.rs`);
//! `cox-bench terminal [--cox PATH] [--runs N]`: terminal sessions — write → echo latency, a
//! `write_stdin` call's cost, memory per open session (`terminal.rs`);
//! `cox-bench cache [--cox PATH] [--codex PATH]`: the share of each request a provider's prompt
//! cache would serve, per wire, over a 20-turn session, and the first request's bytes beside the
//! Codex CLI's (`cache.rs`);
//! `cox-bench mcp [--cox PATH] [--runs N]`: MCP servers' cost at start-up, per first call and
//! transport, and in schema tokens, whole and deferred (`mcp.rs`);
//! `cox-bench acp [--cox PATH] [--runs N]`: `cox acp` beside `cox exec --json` — spawn to the first
//! answer update, and the cost per streamed update (`acp.rs`);
//! `cox-bench checkpoints [--runs N]`: a checkpoint per action against `git status` on trees of
//! 1k/10k/100k files, the baseline's cost and the store's size (`checkpoints.rs`);
//! `cox-bench local --model FILE.gguf [--python PATH] [--runs N]`: the in-process `local` provider
//! against llama-cpp-python's server (`local.rs`; build with `--features local`).
//!
//! Runs the real `cox` binary against the scripted mock model at zero delay and reports medians of:
//! `cox --version`; a 2-turn task (a `shell` call running `cat README.md`, then an answer) — wall
//! time, start to first request, tool-call reply to next request, peak RSS; and a 10-tool-call
//! session — harness time per turn (from the end of one response to the next request, tool
//! included). Baselines timed in the same run: spawning `true`, and `curl` doing one streamed
//! request to the same mock. Results are printed as a Markdown table for BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script, Turn};
use nix::sys::resource::{UsageWho, getrusage};

mod acp;
mod cache;
mod checkpoints;
mod context;
#[cfg(feature = "local")]
mod local;
mod mcp;
mod plan_run;
mod render;
mod sandbox;
mod signals;
mod steering;
mod terminal;
mod tools;

struct Options {
    cox: PathBuf,
    runs: usize,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: cox-bench exec-overhead|context|steering|render|plan-run|sandbox|signals|cache|terminal|checkpoints|mcp|acp [--cox PATH] [--codex PATH] [--against OLD_COX] [--runs N] | cox-bench tools [--tree DIR] [--runs N] | cox-bench local --model FILE.gguf [--python PATH] [--runs N]";
    let Some(command) = args.next() else {
        bail!("{usage}")
    };
    let mut options = Options {
        cox: PathBuf::from("target/release/cox"),
        runs: 20,
    };
    let mut tree = None;
    let (mut model, mut python) = (None, None);
    let mut against = None;
    let mut codex = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cox" => options.cox = PathBuf::from(args.next().context("--cox needs a path")?),
            "--tree" => {
                tree = Some(PathBuf::from(
                    args.next().context("--tree needs a directory")?,
                ))
            }
            "--model" => model = Some(PathBuf::from(args.next().context("--model needs a file")?)),
            "--python" => {
                python = Some(PathBuf::from(args.next().context("--python needs a path")?))
            }
            "--against" => {
                against = Some(fs_err::canonicalize(
                    args.next().context("--against needs a path")?,
                )?)
            }
            "--runs" => options.runs = args.next().context("--runs needs a number")?.parse()?,
            "--codex" => codex = Some(PathBuf::from(args.next().context("--codex needs a path")?)),
            other => bail!("unknown option {other:?}; {usage}"),
        }
    }
    match command.as_str() {
        "exec-overhead" => {
            if !options.cox.is_file() {
                bail!(
                    "{} does not exist; build it with `cargo build --release -p cox`",
                    options.cox.display()
                );
            }
            // The binary runs with the temp repository as its working directory.
            options.cox = fs_err::canonicalize(&options.cox)?;
            match against {
                Some(other) => exec_against(&options, &other),
                None => exec_overhead(&options),
            }
        }
        "tools" => tools::run(tree, options.runs),
        "sandbox" => {
            let cox = fs_err::canonicalize(&options.cox).with_context(|| {
                format!(
                    "{}: build it with `cargo build --release -p cox`",
                    options.cox.display()
                )
            })?;
            sandbox::run(&cox, against.as_deref(), options.runs)
        }
        #[cfg(feature = "local")]
        "local" => {
            let (model, python) = local::paths(model, python)?;
            local::run(&model, &python, options.runs)
        }
        #[cfg(not(feature = "local"))]
        "local" => {
            let _ = (model, python);
            bail!(
                "this cox-bench was built without the local provider: cargo build --release -p cox-bench --features local"
            )
        }
        "context" => {
            let cox = fs_err::canonicalize(&options.cox)?;
            context::run(&cox, options.runs)
        }
        "render" => {
            let cox = fs_err::canonicalize(&options.cox)?;
            render::run(&cox, options.runs)
        }
        "plan-run" => {
            let cox = fs_err::canonicalize(&options.cox)?;
            plan_run::run(&cox, against.as_deref(), options.runs)
        }
        "cache" => {
            let cox = fs_err::canonicalize(&options.cox)?;
            cache::run(&cox, codex.as_deref())
        }
        "signals" => {
            let cox = fs_err::canonicalize(&options.cox)?;
            signals::run(&cox, options.runs)
        }
        "steering" => {
            let cox = fs_err::canonicalize(&options.cox)?;
            steering::run(&cox, options.runs)
        }
        "terminal" => {
            let cox = fs_err::canonicalize(&options.cox)?;
            terminal::run(&cox, options.runs)
        }
        "mcp" => {
            let cox = fs_err::canonicalize(&options.cox)?;
            mcp::run(&cox, options.runs)
        }
        "acp" => {
            let cox = fs_err::canonicalize(&options.cox)?;
            acp::run(&cox, options.runs)
        }
        "checkpoints" => {
            checkpoints::run(options.runs)?;
            let cox = fs_err::canonicalize(&options.cox)?;
            checkpoints::deny_connect(&cox, options.runs)
        }
        other => bail!("unknown benchmark {other:?}; {usage}"),
    }
}

pub(crate) fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The 2-turn task on this cox and on `other`, alternating run by run so both see the same
/// machine state: medians of each, and their ratio.
fn exec_against(options: &Options, other: &Path) -> anyhow::Result<()> {
    let repo = tempfile::tempdir()?;
    fs_err::write(
        repo.path().join("README.md"),
        "# Bench\nA small file to cat.\n",
    )?;
    let binaries = [options.cox.clone(), other.to_path_buf()];
    let mut times: [Vec<[Duration; 3]>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..options.runs {
        for (which, cox) in binaries.iter().enumerate() {
            let home = tempfile::tempdir()?;
            let one = Options {
                cox: cox.clone(),
                runs: 1,
            };
            times[which].push(two_turn(&one, repo.path(), home.path())?);
        }
    }
    let column = |which: usize, at: usize| median(times[which].iter().map(|t| t[at]).collect());
    println!(
        "| 2-turn task (median of {} alternating runs) | this cox | {} | ratio |",
        options.runs,
        other.display()
    );
    println!("|---|---|---|---|");
    for (at, label) in [
        "wall",
        "start → first request",
        "tool-call reply → next request",
    ]
    .iter()
    .enumerate()
    {
        let (new, old) = (column(0, at), column(1, at));
        println!(
            "| {label} | {} | {} | {:.2}× |",
            ms(new),
            ms(old),
            ratio(new, old)
        );
    }
    Ok(())
}

/// One 2-turn task (`cat README.md`, then an answer): wall, start → first request, tool-call reply
/// → next request.
fn two_turn(options: &Options, repo: &Path, home: &Path) -> anyhow::Result<[Duration; 3]> {
    let script = Script {
        turns: vec![
            Turn::call("shell", r#"{"command":["cat","README.md"]}"#),
            Turn::text(&["Done."]),
        ],
    };
    let server = MockServer::start(script)?;
    let start = Instant::now();
    let wall = timed(cox_exec(options, &server, repo, home))?;
    let requests = server.requests();
    if requests.len() != 2 {
        bail!("expected 2 requests, saw {}", requests.len());
    }
    let answered = requests[0]
        .answered_at
        .context("first response not finished")?;
    Ok([
        wall,
        requests[0].received_at - start,
        requests[1].received_at - answered,
    ])
}

fn exec_overhead(options: &Options) -> anyhow::Result<()> {
    let repo = tempfile::tempdir()?;
    let home = tempfile::tempdir()?;
    fs_err::write(
        repo.path().join("README.md"),
        "# Bench\nA small file to cat.\n",
    )?;

    let mut version = Command::new(&options.cox);
    version.arg("--version");
    let version_time = median(
        (0..options.runs)
            .map(|_| timed(clone(&version)))
            .collect::<anyhow::Result<_>>()?,
    );

    let mut walls = Vec::new();
    let mut first_requests = Vec::new();
    let mut tool_gaps = Vec::new();
    for _ in 0..options.runs {
        let [wall, first, gap] = two_turn(options, repo.path(), home.path())?;
        walls.push(wall);
        first_requests.push(first);
        tool_gaps.push(gap);
    }

    let mut per_turn = Vec::new();
    for _ in 0..options.runs.min(10) {
        let mut turns: Vec<Turn> = (0..10)
            .map(|_| Turn::call("read_file", r#"{"path":"README.md"}"#))
            .collect();
        turns.push(Turn::text(&["Done."]));
        let server = MockServer::start(Script { turns })?;
        timed(cox_exec(options, &server, repo.path(), home.path()))?;
        let requests = server.requests();
        for pair in requests.windows(2) {
            let answered = pair[0].answered_at.context("response not finished")?;
            per_turn.push(pair[1].received_at - answered);
        }
    }

    // Only cox has run so far, so the children's peak is cox's own.
    let peak_rss_kib = getrusage(UsageWho::RUSAGE_CHILDREN)?.max_rss();
    let spawn_true = median(
        (0..options.runs)
            .map(|_| timed(Command::new("true")))
            .collect::<anyhow::Result<_>>()?,
    );
    let curl = curl_baseline(options.runs)?;

    let two_turn = median(walls);
    println!("| measure | median | ratio |");
    println!("|---|---|---|");
    println!("| baseline: spawn `true` | {} | 1.0 |", ms(spawn_true));
    println!(
        "| baseline: `curl` one streamed request to the mock | {} | {:.1}× true |",
        ms(curl),
        ratio(curl, spawn_true)
    );
    println!(
        "| `cox --version` | {} | {:.1}× true |",
        ms(version_time),
        ratio(version_time, spawn_true)
    );
    println!(
        "| 2-turn task, wall | {} | {:.1}× curl |",
        ms(two_turn),
        ratio(two_turn, curl)
    );
    println!(
        "| 2-turn task, start → first request | {} | {:.1}× curl |",
        ms(median(first_requests.clone())),
        ratio(median(first_requests), curl)
    );
    println!(
        "| 2-turn task, tool-call reply → next request (runs `cat`) | {} | {:.1}× true |",
        ms(median(tool_gaps.clone())),
        ratio(median(tool_gaps), spawn_true)
    );
    println!(
        "| 10-tool-call session, per turn (read_file) | {} | |",
        ms(median(per_turn))
    );
    println!(
        "| peak RSS of cox (max over all runs above) | {:.1} MiB | |",
        peak_rss_kib as f64 / 1024.0
    );
    Ok(())
}

pub(crate) fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn clone(command: &Command) -> Command {
    let mut copy = Command::new(command.get_program());
    copy.args(command.get_args());
    copy
}

fn cox_exec(options: &Options, server: &MockServer, repo: &Path, home: &Path) -> Command {
    let mut command = Command::new(&options.cox);
    command
        .current_dir(repo)
        .env("COX_HOME", home)
        .env("OPENAI_API_KEY", "sk-bench-000000000000")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["exec", "cat the readme"]);
    command
}

fn timed(mut command: Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    let elapsed = start.elapsed();
    if !status.success() {
        bail!("{:?} failed: {status}", command.get_program());
    }
    Ok(elapsed)
}

fn curl_baseline(runs: usize) -> anyhow::Result<Duration> {
    let turns = (0..runs).map(|_| Turn::text(&["Done."])).collect();
    let server = MockServer::start(Script { turns })?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let mut command = Command::new("curl");
        command.args([
            "-sN",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data",
            r#"{"model":"m","input":[],"stream":true}"#,
            &format!("{}/v1/responses", server.url()),
        ]);
        times.push(timed(command)?);
    }
    Ok(median(times))
}
