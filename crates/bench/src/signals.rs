//! `cox-bench signals [--cox PATH] [--runs N]`: how long cox takes to stop when told to, with a
//! command tree running: from SIGINT or SIGTERM to cox's exit, the tree (a shell, a background
//! and a foreground `sleep`) dead by then. For this cox with namespaces and with the fallback
//! (`COX_SANDBOX_NO_NAMESPACES=1`); the baseline in the same run is the same tree started
//! directly in a process group of its own, killed with SIGTERM to the group and reaped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script, Turn};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::{median, ms};

/// Live processes with `arg` among their arguments.
fn with_arg(arg: &str) -> usize {
    let Ok(entries) = fs_err::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let alive = fs_err::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            });
            alive
                && fs_err::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
        })
        .count()
}

fn wait_for_tree(marker: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while with_arg(marker) < 2 {
        if Instant::now() > deadline {
            bail!("the command tree did not start");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Signals `child` once its tree runs; the time to its exit. Fails if anything of the tree is
/// left when it has exited.
fn stop(mut child: Child, marker: &str, signal: Signal, group: bool) -> anyhow::Result<Duration> {
    wait_for_tree(marker)?;
    let pid = Pid::from_raw(child.id() as i32);
    let started = Instant::now();
    if group {
        killpg(pid, signal)?;
    } else {
        kill(pid, signal)?;
    }
    child.wait()?;
    let took = started.elapsed();
    if with_arg(marker) > 0 {
        bail!("processes of the tree outlived cox");
    }
    Ok(took)
}

fn through_cox(
    cox: &Path,
    dirs: (&Path, &Path),
    marker: &str,
    signal: Signal,
    fallback: bool,
) -> anyhow::Result<Duration> {
    let line = format!("sleep {marker} & sleep {marker}");
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call(
                "shell",
                &serde_json::json!({ "command": ["sh", "-c", line] }).to_string(),
            ),
            Turn::text(&["never"]),
        ],
    })?;
    let mut command = Command::new(cox);
    command
        .current_dir(dirs.0)
        .env("COX_HOME", dirs.1)
        .env("OPENAI_API_KEY", "sk-bench-000000000000")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["exec", "run a tree"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if fallback {
        command.env("COX_SANDBOX_NO_NAMESPACES", "1");
    }
    let child = command.spawn().context("cannot run cox")?;
    stop(child, marker, signal, false)
}

fn direct(marker: &str) -> anyhow::Result<Duration> {
    use std::os::unix::process::CommandExt;
    let child = Command::new("sh")
        .args(["-c", &format!("sleep {marker} & sleep {marker}")])
        .process_group(0)
        .spawn()?;
    stop(child, marker, Signal::SIGTERM, true)
}

pub fn run(cox: &Path, runs: usize) -> anyhow::Result<()> {
    // Outside /tmp: the fallback refuses a cox home inside a writable root.
    let base = Path::new("/var/tmp");
    let repo = tempfile::tempdir_in(base)?;
    let home = tempfile::tempdir_in(base)?;
    let variants = [
        ("SIGINT, namespaces", Signal::SIGINT, false),
        ("SIGTERM, namespaces", Signal::SIGTERM, false),
        ("SIGINT, fallback (subreaper)", Signal::SIGINT, true),
        ("SIGTERM, fallback (subreaper)", Signal::SIGTERM, true),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    let mut baseline = Vec::new();
    for run in 0..runs {
        for (n, (_, signal, fallback)) in variants.iter().enumerate() {
            let marker = format!("77{run}.{n}");
            times[n].push(through_cox(
                cox,
                (repo.path(), home.path()),
                &marker,
                *signal,
                *fallback,
            )?);
        }
        baseline.push(direct(&format!("78{run}.0"))?);
    }
    let baseline = median(baseline);
    println!(
        "| signal → exit with a command tree running (median of {runs} alternating runs) | median | ratio to the baseline |"
    );
    println!("|---|---|---|");
    println!(
        "| baseline: the same tree, SIGTERM to its group, reaped | {} | 1.0 |",
        ms(baseline)
    );
    for ((label, ..), times) in variants.iter().zip(times) {
        let time = median(times);
        println!(
            "| cox exec, {label} | {} | {:.1}× |",
            ms(time),
            time.as_secs_f64() / baseline.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
