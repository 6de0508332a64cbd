//! `cox-bench checkpoints [--runs N]`: what checkpoints cost (issue 21). On generated, committed
//! git trees of 1,000, 10,000 and 100,000 small files (100 per directory), in this process:
//!
//! - *per action*: what every acting call adds — the look before it (someone else's changes)
//!   and the look after it (its own), with one file changed in between and its content kept —
//!   against `git status --porcelain` on the same tree, timed alternately in the same run;
//! - *baseline*: the one-time copy of every file before a session's first acting call;
//! - *storage*: the store's size on disk after the baseline and ten actions that each change one
//!   file, beside the tree's own size;
//! - *`deny_connect`*: building the TCP ruleset (once per session) and what enforcing it adds to
//!   a command's launch (`cox __sandbox … -- true` with and without it, alternating).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use cox_core::checkpoint::{Limits, Store};
use cox_protocol::CheckpointKind;

use crate::{median, ms};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn tree(root: &Path, files: usize) -> anyhow::Result<u64> {
    let mut bytes = 0;
    for n in 0..files {
        let dir = root.join(format!("src/m{:03}", n / 100));
        if n % 100 == 0 {
            fs_err::create_dir_all(&dir)?;
        }
        let text = format!("// file {n}\nexport const value{n} = {n};\n");
        bytes += text.len() as u64;
        fs_err::write(dir.join(format!("f{n}.js")), text)?;
    }
    let git = |args: &[&str]| -> anyhow::Result<()> {
        let status = Command::new("git")
            .args(args)
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("git runs")?;
        anyhow::ensure!(status.success(), "git {args:?} failed");
        Ok(())
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&[
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@localhost",
        "commit",
        "-qm",
        "tree",
    ])?;
    Ok(bytes)
}

fn du(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = fs_err::read_dir(path) {
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += if meta.is_dir() {
                du(&entry.path())
            } else {
                meta.len()
            };
        }
    }
    total
}

pub fn run(runs: usize) -> anyhow::Result<()> {
    println!(
        "| files | `git status` | checkpoint per action | ratio | without inotify (walks) | ratio | baseline (once, in the background) | store after 10 actions | tree |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for files in SIZES {
        let work = tempfile::tempdir()?;
        let home = tempfile::tempdir()?;
        let root = fs_err::canonicalize(work.path())?;
        let tree_bytes = tree(&root, files)?;
        let limits = Limits {
            max_file_bytes: 16 << 20,
            max_bytes: 2 << 30,
        };
        let mut store = Store::open(
            home.path(),
            "bench",
            std::slice::from_ref(&root),
            &[root.join(".cox")],
            Vec::new(),
            limits,
        )?;
        let started = Instant::now();
        store.ensure_base()?;
        let baseline = started.elapsed();
        let (mut git, mut ours) = (Vec::new(), Vec::new());
        for run in 0..runs.max(10) {
            let started = Instant::now();
            let status = Command::new("git")
                .args(["status", "--porcelain"])
                .current_dir(&root)
                .stdout(Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "git status failed");
            git.push(started.elapsed());
            let started = Instant::now();
            store.record(CheckpointKind::Outside, None, "outside")?;
            // The action itself (not timed): one file changed.
            let paused = Instant::now();
            let changed = root.join(format!("src/m000/f{}.js", run % 100));
            fs_err::write(&changed, format!("// changed in run {run}\n"))?;
            let action = paused.elapsed();
            let found = store.record(CheckpointKind::Action, None, "bench")?;
            anyhow::ensure!(found.is_some(), "the change was not seen");
            ours.push(started.elapsed().saturating_sub(action));
        }
        let store_bytes = du(home.path());
        // The same with every look a walk.
        store.walk_only();
        let mut walking = Vec::new();
        for run in 0..runs.max(10) {
            let started = Instant::now();
            store.record(CheckpointKind::Outside, None, "outside")?;
            let paused = Instant::now();
            let changed = root.join(format!("src/m001/f{}.js", 100 + run % 100));
            fs_err::write(&changed, format!("// walked in run {run}\n"))?;
            let action = paused.elapsed();
            let found = store.record(CheckpointKind::Action, None, "bench")?;
            anyhow::ensure!(found.is_some(), "the change was not seen");
            walking.push(started.elapsed().saturating_sub(action));
        }
        let (git, ours, walking) = (median(git), median(ours), median(walking));
        println!(
            "| {files} | {} | {} | {:.2}× | {} | {:.2}× | {} | {:.1} MiB | {:.1} MiB |",
            ms(git),
            ms(ours),
            ours.as_secs_f64() / git.as_secs_f64().max(1e-9),
            ms(walking),
            walking.as_secs_f64() / git.as_secs_f64().max(1e-9),
            ms(baseline),
            store_bytes as f64 / (1 << 20) as f64,
            tree_bytes as f64 / (1 << 20) as f64,
        );
    }
    Ok(())
}

/// The cost of a rule's `deny_connect = ["tcp:5432"]`: the ruleset, and a launch with it.
pub fn deny_connect(cox: &Path, runs: usize) -> anyhow::Result<()> {
    let mut builds = Vec::new();
    let mut ruleset = None;
    for _ in 0..5 {
        let started = Instant::now();
        ruleset = Some(cox_sandbox::net::TcpRuleset::build(&[5432])?);
        builds.push(started.elapsed());
    }
    let fd = ruleset
        .as_ref()
        .map(|r| r.raw())
        .context("a ruleset")?
        .to_string();
    let dir = tempfile::tempdir()?;
    let write = dir.path().display().to_string();
    let launch = |deny: bool| -> anyhow::Result<std::time::Duration> {
        let mut command = Command::new(cox);
        command.args(["__sandbox", "--write", &write]);
        if deny {
            command.args(["--deny-tcp-fd", &fd]);
        }
        let started = Instant::now();
        let status = command.args(["--", "true"]).status()?;
        anyhow::ensure!(status.success(), "the launcher failed");
        Ok(started.elapsed())
    };
    let (mut plain, mut denied) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(10) {
        plain.push(launch(false)?);
        denied.push(launch(true)?);
    }
    let (plain, denied) = (median(plain), median(denied));
    println!();
    println!("| `deny_connect` | median |");
    println!("|---|---|");
    println!(
        "| building the TCP ruleset (once per session) | {} |",
        ms(median(builds))
    );
    println!("| a sandboxed `true` | {} |", ms(plain));
    println!(
        "| a sandboxed `true` with the ports closed | {} ({:.2}×) |",
        ms(denied),
        denied.as_secs_f64() / plain.as_secs_f64()
    );
    Ok(())
}
