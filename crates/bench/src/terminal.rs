//! `cox-bench terminal [--cox PATH] [--runs N]`: terminal sessions (`exec_command`,
//! `write_stdin`).
//!
//! 1. **Write → echo**, in process: a session running `cat` in cox's pseudo-terminal
//!    ([`cox_tools::terminal`], no sandbox), a line typed and the time until its echo is on the
//!    session's screen — the pty, the reader task and the terminal emulator. Baseline in the same
//!    run: the same line through plain pipes to `cat`, read blocking.
//! 2. **A `write_stdin` call**, through the real binary and its sandbox: the gap from the mock's
//!    reply with the call to cox's next request, minus the call's yield time — what cox adds to a
//!    write (launcher-side nothing: the session already runs), the echo, the journal, the next
//!    request. Baseline: the same gap for a `shell` call running `true`.
//! 3. **Memory per open session**: cox with 8 sessions of `cat` open against cox with none, both
//!    sampled while a later `shell` call runs — cox's own RSS, and the PSS of every process under
//!    it (launchers, their namespace init, the shells), per session.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script, Turn};
use cox_tools::terminal::{Spawn, Terminals};

use crate::{median, ms};

/// How long a `write_stdin` call of part 2 waits for output.
const WRITE_YIELD_MS: u64 = 50;
/// Sessions part 3 opens.
const SESSIONS: usize = 8;

pub fn run(cox: &Path, runs: usize) -> anyhow::Result<()> {
    let (echo, pipe) = echo_latency(runs.max(20) * 5)?;
    println!(
        "| terminal sessions (median of {} lines) | median | p90 | ratio to the baseline |",
        echo.len()
    );
    println!("|---|---|---|---|");
    let (echo_median, pipe_median) = (median(echo.clone()), median(pipe.clone()));
    println!(
        "| baseline: a line through pipes to `cat`, read blocking | {} | {} | 1.0 |",
        us(pipe_median),
        us(p90(pipe))
    );
    println!(
        "| a line typed into a `cat` session until its echo is on the screen | {} | {} | {:.1}× |",
        us(echo_median),
        us(p90(echo)),
        ratio(echo_median, pipe_median)
    );
    let base = Path::new("/var/tmp");
    let repo = tempfile::tempdir_in(base)?;
    let home = tempfile::tempdir_in(base)?;
    let mut writes = Vec::new();
    let mut shells = Vec::new();
    for _ in 0..runs {
        writes.extend(write_gaps(cox, repo.path(), home.path())?);
        shells.push(shell_gap(cox, repo.path(), home.path())?);
    }
    let (write, shell) = (median(writes), median(shells));
    println!(
        "| baseline: a `shell` call running `true`, reply → next request (sandboxed, {runs} runs) | {} | | 1.0 |",
        ms(shell)
    );
    println!(
        "| a `write_stdin` call to a `cat` session, reply → next request minus its {WRITE_YIELD_MS} ms yield | {} | | {:.1}× |",
        ms(write),
        ratio(write, shell)
    );
    let empty = memory(cox, repo.path(), home.path(), 0)?;
    let open = memory(cox, repo.path(), home.path(), SESSIONS)?;
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / SESSIONS as f64 / 1024.0;
    println!(
        "| memory per open session: cox's RSS (8 open vs none) | {:.2} MiB | | |",
        per(open.cox_rss_kib, empty.cox_rss_kib)
    );
    println!(
        "| memory per open session: PSS of its processes (launcher, init, shell, `cat`) | {:.2} MiB | | |",
        per(open.tree_pss_kib, empty.tree_pss_kib)
    );
    println!(
        "\n(cox RSS with none open: {:.1} MiB; with {SESSIONS}: {:.1} MiB)",
        empty.cox_rss_kib as f64 / 1024.0,
        open.cox_rss_kib as f64 / 1024.0
    );
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn p90(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() * 9 / 10]
}

/// Part 1: (typed → on the screen, through pipes) for `lines` lines each.
fn echo_latency(lines: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let echo = runtime.block_on(async {
        let terminals = Terminals::new(1, 1);
        let ctx = cox_tools::ToolContext {
            terminals: Some(Arc::clone(&terminals)),
            login_env: None,
            ..crate::tools::context(dir.path())
        };
        let spawn = Spawn {
            argv: vec!["cat".into()],
            command: "cat".into(),
            workdir: dir.path().to_path_buf(),
            escalated: false,
        };
        let term = terminals
            .start(spawn, &ctx)
            .await
            .map_err(anyhow::Error::msg)?;
        let mut times = Vec::new();
        for n in 0..lines {
            let marker = format!("ping-{n:05}");
            term.look(64 * 1024);
            let start = Instant::now();
            term.write(format!("{marker}\n").as_bytes())
                .await
                .map_err(anyhow::Error::msg)?;
            let mut seen = String::new();
            // `cat` echoes the line twice (the terminal's echo, then cat's copy): the first is
            // the write's echo.
            while !seen.contains(&marker) {
                if start.elapsed() > Duration::from_secs(5) {
                    bail!("no echo of {marker} after 5 s: {seen:?}");
                }
                tokio::task::yield_now().await;
                seen.push_str(&term.look(64 * 1024));
            }
            times.push(start.elapsed());
        }
        terminals.kill_all().await;
        anyhow::Ok(times)
    })?;
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut input = cat.stdin.take().context("cat's stdin")?;
    let mut output = std::io::BufReader::new(cat.stdout.take().context("cat's stdout")?);
    let mut pipe = Vec::new();
    let mut line = String::new();
    for n in 0..lines {
        let start = Instant::now();
        writeln!(input, "ping-{n:05}")?;
        input.flush()?;
        line.clear();
        output.read_line(&mut line)?;
        pipe.push(start.elapsed());
    }
    drop(input);
    cat.wait()?;
    Ok((echo, pipe))
}

fn cox_command(cox: &Path, repo: &Path, home: &Path, server: &MockServer) -> Command {
    let mut command = Command::new(cox);
    command
        .current_dir(repo)
        .env("COX_HOME", home)
        .env("OPENAI_API_KEY", "sk-bench-000000000000")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Runs `turns` as one `cox exec` task; the gap from each reply with a call to the request after
/// it, in order.
fn call_gaps(
    cox: &Path,
    repo: &Path,
    home: &Path,
    turns: Vec<Turn>,
) -> anyhow::Result<Vec<Duration>> {
    let expected = turns.len();
    let server = MockServer::start(Script { turns })?;
    let status = cox_command(cox, repo, home, &server)
        .args(["exec", "work in a terminal"])
        .status()?;
    if !status.success() {
        bail!("cox failed: {status}");
    }
    let requests = server.requests();
    if requests.len() != expected {
        bail!("expected {expected} requests, saw {}", requests.len());
    }
    requests
        .windows(2)
        .map(|pair| {
            let answered = pair[0].answered_at.context("response not finished")?;
            Ok(pair[1].received_at - answered)
        })
        .collect()
}

/// Part 2: one session of `cat`, then ten writes; each write's gap minus its yield.
fn write_gaps(cox: &Path, repo: &Path, home: &Path) -> anyhow::Result<Vec<Duration>> {
    let mut turns = vec![Turn::call(
        "exec_command",
        r#"{"cmd":"cat","yield_time_ms":200}"#,
    )];
    let write = format!(r#"{{"session_id":1,"chars":"ping\n","yield_time_ms":{WRITE_YIELD_MS}}}"#);
    for _ in 0..10 {
        turns.push(Turn::call("write_stdin", &write));
    }
    turns.push(Turn::text(&["Done."]));
    let gaps = call_gaps(cox, repo, home, turns)?;
    // The first gap is the exec_command call's.
    Ok(gaps[1..]
        .iter()
        .map(|gap| gap.saturating_sub(Duration::from_millis(WRITE_YIELD_MS)))
        .collect())
}

/// The baseline of part 2: a `shell` call running `true`.
fn shell_gap(cox: &Path, repo: &Path, home: &Path) -> anyhow::Result<Duration> {
    let turns = vec![
        Turn::call("shell", r#"{"command":["true"]}"#),
        Turn::text(&["Done."]),
    ];
    Ok(call_gaps(cox, repo, home, turns)?[0])
}

struct Memory {
    cox_rss_kib: u64,
    tree_pss_kib: u64,
}

/// Part 3: `sessions` sessions of `cat`, then a `shell` call sleeping, sampled while it sleeps.
fn memory(cox: &Path, repo: &Path, home: &Path, sessions: usize) -> anyhow::Result<Memory> {
    let marker = "3.04711";
    let mut turns: Vec<Turn> = (0..sessions)
        .map(|_| Turn::call("exec_command", r#"{"cmd":"cat","yield_time_ms":100}"#))
        .collect();
    turns.push(Turn::call(
        "shell",
        &format!(r#"{{"command":["sleep","{marker}"]}}"#),
    ));
    turns.push(Turn::text(&["Done."]));
    let server = MockServer::start(Script { turns })?;
    let mut child = cox_command(cox, repo, home, &server)
        .args(["exec", "open sessions"])
        .spawn()?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    let sample = loop {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the sleeping shell call never started");
        }
        let tree = descendants(pid);
        if tree.iter().any(|p| has_arg(*p, marker)) {
            // Let the sampled processes settle (the shell call's launcher is still starting).
            std::thread::sleep(Duration::from_millis(300));
            let tree = descendants(pid);
            let pss = tree
                .iter()
                .filter(|p| !in_shell_call(**p, marker, &tree))
                .map(|p| kib(&format!("/proc/{p}/smaps_rollup"), "Pss:"))
                .sum();
            break Memory {
                cox_rss_kib: kib(&format!("/proc/{pid}/status"), "VmRSS:"),
                tree_pss_kib: pss,
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = child.wait()?;
    if !status.success() {
        bail!("cox failed: {status}");
    }
    Ok(sample)
}

/// Every process under `root`, from each process's parent in `/proc/<pid>/stat`.
fn descendants(root: u32) -> Vec<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for pid in all_pids() {
        if let Some(parent) = parent(pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            found.push(*child);
            queue.push(*child);
        }
    }
    found
}

fn all_pids() -> Vec<u32> {
    fs_err::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parent(pid: u32) -> Option<u32> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn has_arg(pid: u32, arg: &str) -> bool {
    fs_err::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
}

/// Whether `pid` belongs to the sampling `shell` call (its launcher's tree), not to a session.
fn in_shell_call(pid: u32, marker: &str, tree: &[u32]) -> bool {
    let mut at = Some(pid);
    while let Some(p) = at {
        if !tree.contains(&p) {
            return false;
        }
        if descendants(p).iter().any(|d| has_arg(*d, marker)) || has_arg(p, marker) {
            return true;
        }
        at = parent(p);
    }
    false
}

/// A `key:` line's value in kB from a `/proc` file (0 when unreadable).
fn kib(path: &str, key: &str) -> u64 {
    fs_err::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(key))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
