//! `cox-bench plan-run [--cox PATH] [--against OLD_COX] [--runs N]`: a whole `cox run --plan` of
//! three steps, each a sandboxed `cat README.md` and an answer, with `--test-cmd true` checked after
//! the step that edits a file — the plan-run workflow end to end, against the mock at zero delay.
//!
//! Reports the median wall time and the peak RSS of `cox` (`getrusage` of the children), with the
//! cost of spawning `true` as the baseline of the same run; with `--against`, the same workload on
//! another cox binary (e.g. an older release) in the same run, and the ratio between the two.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::bail;
use cox_testkit::{MockServer, Script, Turn};
use nix::sys::resource::{UsageWho, getrusage};

use crate::{median, ms, timed};

const PLAN: &str = r#"{
  "goal": "Tidy the notes",
  "steps": [
    {"id": "S1", "title": "Read the README"},
    {"id": "S2", "title": "Add a heading to notes.txt"},
    {"id": "S3", "title": "Read the README again"}
  ]
}"#;

fn script() -> Script {
    let cat = r#"{"command":["cat","README.md"]}"#;
    let patch = serde_json::json!({
        "input": "*** Begin Patch\n*** Update File: notes.txt\n@@\n+# Notes\n buy milk\n*** End Patch\n"
    })
    .to_string();
    Script {
        turns: vec![
            Turn::call("shell", cat),
            Turn::text(&["Read it."]),
            Turn::call("apply_patch", &patch),
            Turn::text(&["Added the heading."]),
            Turn::call("shell", cat),
            Turn::text(&["Read it again."]),
        ],
    }
}

/// One timed plan run of `cox` in a fresh repository, with the `true` test check or without.
fn once(cox: &Path, check: bool) -> anyhow::Result<Duration> {
    let server = MockServer::start(script())?;
    let repo = tempfile::tempdir()?;
    let home = tempfile::tempdir()?;
    fs_err::write(repo.path().join("README.md"), "one\ntwo\n")?;
    fs_err::write(repo.path().join("notes.txt"), "buy milk\n")?;
    fs_err::write(repo.path().join("plan.json"), PLAN)?;
    let mut command = Command::new(cox);
    command
        .current_dir(repo.path())
        .env("COX_HOME", home.path())
        .env("OPENAI_API_KEY", "sk-bench-000000000000")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["run", "--plan", "plan.json"]);
    if check {
        command.args(["--test-cmd", "true"]);
    }
    let elapsed = timed(command)?;
    let plan = fs_err::read_to_string(repo.path().join("plan.json"))?;
    if plan.matches("\"done\"").count() != 3 || server.requests().len() != 6 {
        bail!(
            "{} did not finish the plan as scripted:\n{plan}",
            cox.display()
        );
    }
    Ok(elapsed)
}

pub fn run(cox: &Path, against: Option<&Path>, runs: usize) -> anyhow::Result<()> {
    let spawn_true = median(
        (0..runs)
            .map(|_| timed(Command::new("true")))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    println!("| measure | median | ratio |");
    println!("|---|---|---|");
    println!("| baseline: spawn `true` | {} | 1.0 |", ms(spawn_true));
    for check in [false, true] {
        let label = if check {
            "3-step plan run, `--test-cmd true`"
        } else {
            "3-step plan run, no checks"
        };
        // Interleaved, so both binaries see the same machine state.
        let (mut new, mut old) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            new.push(once(cox, check)?);
            if let Some(old_cox) = against {
                old.push(once(old_cox, check)?);
            }
        }
        let new = median(new);
        let times_true = |d: Duration| d.as_secs_f64() / spawn_true.as_secs_f64();
        match against {
            Some(old_cox) => {
                let old = median(old);
                println!(
                    "| {label}, {} | {} | {:.1}× true |",
                    old_cox.display(),
                    ms(old),
                    times_true(old)
                );
                println!(
                    "| {label}, this cox | {} | {:.1}× true, {:.2}× the other |",
                    ms(new),
                    times_true(new),
                    new.as_secs_f64() / old.as_secs_f64()
                );
            }
            None => println!("| {label} | {} | {:.1}× true |", ms(new), times_true(new)),
        }
    }
    let rss = getrusage(UsageWho::RUSAGE_CHILDREN)?.max_rss() as f64 / 1024.0;
    println!("| peak RSS of cox (max over all runs above) | {rss:.1} MiB | |");
    Ok(())
}
