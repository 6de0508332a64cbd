//! `cox run --plan FILE [--target DIR] [--restart]`: reads the plan and the run's settings, hands
//! them to the engine's plan runner ([`cox_core::run`]), and drives its handle exactly like a
//! session's — through the live UI whenever it is on a terminal (without `--json`), else headless
//! (`--json` events or progress on stderr, steering ops from stdin with `--steerable`).
//! Afterwards a summary on stderr: steps by status, the steps a directive changed, the files
//! changed, the checks, and (headless; the live UI has shown them) the tokens, all from the run's
//! events.

use std::path::Path;
use std::process::ExitCode;

use cox_core::Config;
use cox_core::run::{CheckSettings, Checks, RunSpec};
use cox_protocol::{CheckKind, Event, FileChange, PlanStep, StepStatus, Usage};

use crate::args::{CheckOptions, Shared};
use crate::exec::{Role, role_overrides, runtime, working_dir};
use crate::exit::Failure;

pub fn run(
    shared: &Shared,
    path: &Path,
    target: Option<&Path>,
    restart: bool,
    checks: &CheckOptions,
) -> Result<ExitCode, Failure> {
    let text = fs_err::read_to_string(path).map_err(|e| {
        Failure::usage(
            format!(
                "cannot read the plan {}: {}",
                path.display(),
                crate::exit::os_reason(&e)
            ),
            "cox plan \"…\" > plan.json writes one",
        )
    })?;
    let mut plan = cox_core::plan::parse(&text).map_err(|e| {
        Failure::usage(
            format!("{}: {e}", path.display()),
            "fix the plan file (or write a new one with cox plan)",
        )
    })?;
    let home = cox_core::config::cox_home()?;
    // One run of a plan at a time: a second would redo the steps the first is doing.
    let _lock = cox_core::lock::Lock::acquire(
        &cox_core::lock::plan_path(&home, path),
        &format!("the plan {}", path.display()),
    )?;
    if restart {
        cox_core::run::restart(&mut plan);
        cox_core::run::save(path, &plan)?;
    }
    let cwd = working_dir(shared)?;
    let target = match target {
        Some(dir) => Some(fs_err::canonicalize(dir).map_err(|e| {
            Failure::usage(
                format!("--target {}: {}", dir.display(), crate::exit::os_reason(&e)),
                "--target takes an existing directory",
            )
        })?),
        None => None,
    };
    let file = cox_core::config::read_file(&home, &shared.config)?;
    let settings = CheckSettings {
        auto_fix_lint: checks.auto_fix_lint,
        lint_cmd: checks.lint_cmd.clone().or(file.lint_cmd),
        test_cmd: checks.test_cmd.clone().or(file.test_cmd),
        auto_fix_test: checks.auto_fix_test,
        fix_rounds: checks.fix_rounds,
    };
    let checks = Checks::from_settings(&settings, &cwd)?;
    let config = Config::load(&home, &role_overrides(shared, &home, Role::Worker, None)?)?;
    // On a terminal the run is shown live (SPACE, any key, Esc) whatever the flags; `--json` or a
    // pipe on either end runs it headless.
    let live = !shared.json && cox_term::available();
    let options = if live {
        crate::interactive::live_options(shared, true)?
    } else {
        crate::exec::run_options(shared)?
    };
    let spec = RunSpec {
        path: path.to_path_buf(),
        plan,
        cwd,
        target,
        checks,
        options,
    };
    runtime()?.block_on(async {
        let start = |spec: RunSpec| cox_core::run::start(&config, spec);
        let (code, summary) = if live {
            let header = crate::interactive::header(&config, shared);
            let live =
                crate::interactive::live(header, start(spec)?, None, true, Summary::default())
                    .await?;
            let summary = live.observer;
            let code = match (live.signal, live.exit, live.ended) {
                (Some(signal), ..) => ExitCode::from(crate::signals::code(signal)),
                (None, cox_term::Exit::Interrupted, _) => ExitCode::from(crate::exit::INTERRUPTED),
                (None, cox_term::Exit::Done, Some(status)) => crate::exit::status_code(status),
                // Left before the run ended: the step in progress resumes next time.
                (None, cox_term::Exit::Done, None) => ExitCode::from(crate::exit::INTERRUPTED),
            };
            (code, summary)
        } else {
            let json = shared.json;
            let options = spec.options.clone();
            crate::exec::drive(|_| start(spec), options, None, json, Summary::default()).await?
        };
        // The live UI has shown the run's tokens already.
        summary.print(!live);
        Ok(code)
    })
}

/// The run's summary, gathered from its events.
#[derive(Debug, Default)]
pub struct Summary {
    steps: Vec<PlanStep>,
    changed: Vec<FileChange>,
    checks: Vec<(CheckKind, bool)>,
    /// Steps whose outcome a directive changed, with the model's account.
    steered: Vec<(String, String)>,
    usage: Usage,
}

impl crate::exec::Observer for Summary {
    fn observe(&mut self, event: &Event) {
        match event {
            Event::PlanUpdated { steps, .. } => self.steps = steps.clone(),
            Event::StepFinished {
                id,
                changed_files,
                changed,
                ..
            } => {
                cox_core::run::tally(&mut self.changed, changed_files);
                if let Some(how) = changed {
                    self.steered.push((id.clone(), how.clone()));
                }
            }
            Event::CheckFinished { kind, ok, .. } => {
                self.checks.retain(|(k, _)| k != kind);
                self.checks.push((*kind, *ok));
            }
            Event::SessionCompleted { usage, .. } => self.usage = *usage,
            _ => {}
        }
    }
}

impl Summary {
    /// Prints the summary on stderr; `tokens` adds the token line.
    fn print(&self, tokens: bool) {
        let count = |status: StepStatus| self.steps.iter().filter(|s| s.status == status).count();
        eprintln!(
            "plan: {} done, {} failed, {} in progress, {} pending (of {})",
            count(StepStatus::Completed),
            count(StepStatus::Failed),
            count(StepStatus::InProgress),
            count(StepStatus::Pending),
            self.steps.len()
        );
        for (id, how) in &self.steered {
            eprintln!("  {id} changed by a directive: {how}");
        }
        for change in &self.changed {
            eprintln!("  {} (+{} -{})", change.path, change.added, change.removed);
        }
        for (kind, passed) in &self.checks {
            let state = if *passed { "passing" } else { "failing" };
            eprintln!("{}: {state}", kind.name());
        }
        if tokens {
            eprintln!(
                "tokens: {} in ({} cached) · {} out",
                self.usage.input_tokens, self.usage.cached_input_tokens, self.usage.output_tokens
            );
        }
    }
}
