//! `cox-bench sandbox [--cox PATH] [--against OLD_COX] [--runs N]`: what containing and confining
//! a command costs, per command: the gap from the mock's reply with the tool call to cox's next
//! request, with the command being `true`, so the gap is all cox (spawn, launcher, namespaces,
//! Landlock, seccomp, output, the next request). Run for this cox with namespaces, with the
//! fallback (`COX_SANDBOX_NO_NAMESPACES=1`), with `--sandbox full-access` (contained, not
//! confined), and for an older cox (sandboxed, and in full access, where it spawned the command
//! directly), alternating run by run; and spawning `true` directly in the same run, as the
//! baseline the ratios are against.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Script, Turn};

use crate::{median, ms};

struct Variant {
    label: String,
    cox: std::path::PathBuf,
    env: Vec<(&'static str, &'static str)>,
    args: Vec<&'static str>,
}

/// The tool-call reply → next request gap of one session running `true`.
fn gap(variant: &Variant, repo: &Path, home: &Path) -> anyhow::Result<Duration> {
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call("shell", r#"{"command":["true"]}"#),
            Turn::text(&["Done."]),
        ],
    })?;
    let mut command = Command::new(&variant.cox);
    command
        .current_dir(repo)
        .env("COX_HOME", home)
        .env("OPENAI_API_KEY", "sk-bench-000000000000")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(&variant.args)
        .args(["exec", "run true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in &variant.env {
        command.env(name, value);
    }
    let status = command.status().context("cannot run cox")?;
    if !status.success() {
        bail!("{} failed: {status}", variant.label);
    }
    let requests = server.requests();
    if requests.len() != 2 {
        bail!(
            "{}: expected 2 requests, saw {}",
            variant.label,
            requests.len()
        );
    }
    let answered = requests[0].answered_at.context("response not finished")?;
    Ok(requests[1].received_at - answered)
}

pub fn run(cox: &Path, against: Option<&Path>, runs: usize) -> anyhow::Result<()> {
    // Outside /tmp: the fallback refuses a cox home inside a writable root.
    let base = Path::new("/var/tmp");
    let repo = tempfile::tempdir_in(base)?;
    let home = tempfile::tempdir_in(base)?;
    let mut variants = vec![
        Variant {
            label: "this cox, workspace-write, namespaces".into(),
            cox: cox.to_path_buf(),
            env: Vec::new(),
            args: Vec::new(),
        },
        Variant {
            label: "this cox, workspace-write, fallback (subreaper)".into(),
            cox: cox.to_path_buf(),
            env: vec![("COX_SANDBOX_NO_NAMESPACES", "1")],
            args: Vec::new(),
        },
        Variant {
            label: "this cox, full access (contained, not confined)".into(),
            cox: cox.to_path_buf(),
            env: Vec::new(),
            args: vec!["--sandbox", "full-access"],
        },
    ];
    if let Some(old) = against {
        variants.push(Variant {
            label: format!("{}, workspace-write", old.display()),
            cox: old.to_path_buf(),
            env: Vec::new(),
            args: Vec::new(),
        });
        variants.push(Variant {
            label: format!("{}, full access (spawned directly)", old.display()),
            cox: old.to_path_buf(),
            env: Vec::new(),
            args: vec!["--sandbox", "full-access"],
        });
    }
    let mut gaps: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    let mut spawn_true = Vec::new();
    for _ in 0..runs {
        for (n, variant) in variants.iter().enumerate() {
            gaps[n].push(gap(variant, repo.path(), home.path())?);
        }
        let start = Instant::now();
        Command::new("true").status()?;
        spawn_true.push(start.elapsed());
    }
    let baseline = median(spawn_true);
    println!(
        "| per command, tool-call reply → next request (median of {runs} alternating runs) | median | ratio to spawning `true` | minus spawning `true` |"
    );
    println!("|---|---|---|---|");
    println!("| baseline: spawn `true` | {} | 1.0 | |", ms(baseline));
    for (variant, gaps) in variants.iter().zip(gaps) {
        let gap = median(gaps);
        println!(
            "| {} | {} | {:.1}× | {} |",
            variant.label,
            ms(gap),
            gap.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
            ms(gap.saturating_sub(baseline))
        );
    }
    Ok(())
}
