//! `cox run --plan FILE [--target DIR] [--restart]`: executes a plan document step by step.
//!
//! Each step is one session whose every request pins the plan — goal, constraints, every step's
//! status, the current step in full — so a fast model stays anchored to it; a step starts from the
//! plan, not from the previous steps' conversation. Steps run in order, after the steps they
//! `depends_on`. Each step's status is written back into the file (temp file + rename, unknown
//! fields kept), with the id of its session: running the command again continues from the first
//! step not done, and a step cut short (even by SIGKILL) is resumed from its session's journal, so
//! an edit already made is not made again. `--restart` starts over.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cox_core::{Config, PlanRun, RunOptions};
use cox_protocol::{Event, Op, Plan, PlanStep, SessionStatus, StepState, StepStatus};

use crate::args::{CheckOptions, Shared};
use crate::exec::{Role, role_overrides, runtime, working_dir};
use crate::exit::{self, Failure};
use crate::progress::Progress;

/// The step field where a run records the session that carries the step out.
const SESSION_FIELD: &str = "cox_session";

pub fn run(
    shared: &Shared,
    path: &Path,
    target: Option<&Path>,
    restart: bool,
    checks: &CheckOptions,
) -> Result<ExitCode, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(
            format!("cannot read the plan {}: {e}", path.display()),
            "cox plan \"…\" > plan.json writes one",
        )
    })?;
    let mut plan = cox_core::plan::parse(&text).map_err(|e| {
        Failure::usage(
            format!("{}: {e}", path.display()),
            "fix the plan file (or write a new one with cox plan)",
        )
    })?;
    if restart {
        for step in &mut plan.steps {
            step.status = Some(StepState::Pending);
            step.extra.remove(SESSION_FIELD);
        }
        save(path, &plan)?;
    }
    let cwd = working_dir(shared)?;
    let target = match target {
        Some(dir) => Some(std::fs::canonicalize(dir).map_err(|e| {
            Failure::usage(
                format!("--target {}: {e}", dir.display()),
                "--target takes an existing directory",
            )
        })?),
        None => None,
    };
    let home = cox_core::config::cox_home()?;
    let file = cox_core::config::read_file(&home, &shared.config)?;
    let mut checks = checks.clone();
    checks.lint_cmd = checks.lint_cmd.or(file.lint_cmd);
    checks.test_cmd = checks.test_cmd.or(file.test_cmd);
    let checks = crate::checks::Checks::from_options(&checks, &cwd)?;
    let config = Config::load(&home, &role_overrides(shared, &home, Role::Worker)?)?;
    // On a terminal, --steerable drives the run through the live UI.
    let live = shared.steerable && cox_term::available();
    let options = if live {
        RunOptions {
            interactive: true,
            steerable: true,
            steer_grace_ms: shared
                .steer_grace
                .unwrap_or(cox_core::DEFAULT_STEER_GRACE_MS),
            one_shot: false,
            planning: false,
            sandbox: crate::exec::sandbox(shared)?,
            approval: shared.approval.map(|a| a.policy()),
        }
    } else {
        crate::exec::run_options(shared)?
    };
    runtime()?.block_on(execute(
        &config,
        &home,
        cwd,
        target,
        path,
        plan,
        shared.json,
        &checks,
        options,
    ))
}

/// The next step to run: not finished, with everything it depends on done.
fn next_step(plan: &Plan) -> Option<usize> {
    let done = |id: &str| {
        plan.steps
            .iter()
            .any(|s| s.id == id && matches!(s.status, Some(StepState::Done | StepState::Skipped)))
    };
    plan.steps.iter().position(|step| {
        !matches!(step.status, Some(StepState::Done | StepState::Skipped))
            && step.depends_on.iter().all(|d| done(d))
    })
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    config: &Config,
    home: &Path,
    cwd: PathBuf,
    target: Option<PathBuf>,
    path: &Path,
    mut plan: Plan,
    json: bool,
    checks: &crate::checks::Checks,
    options: RunOptions,
) -> Result<ExitCode, Failure> {
    let mut printer = Printer::new(json);
    // With --steerable, control ops go to whichever step's session is running: from the live UI's
    // keys on a terminal, else from stdin's JSON Lines.
    let live = options.interactive && options.steerable;
    let mut ui_task = None;
    let mut control = if live {
        let (ops_tx, ops_rx) = tokio::sync::mpsc::channel(32);
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        printer.ui = Some(events_tx);
        let header = cox_term::Header {
            model: config.model.clone(),
            provider: config.provider.name.clone(),
        };
        ui_task = Some(tokio::spawn(cox_term::run(
            header, ops_tx, events_rx, None, true,
        )));
        Some(ops_rx)
    } else {
        options.steerable.then(crate::exec::spawn_control_reader)
    };
    let options = &options;
    let mut directives: Vec<String> = Vec::new();
    let mut tokens = cox_protocol::Usage::default();
    let mut check_state: Vec<(&'static str, bool)> = Vec::new();
    let mut changed: Vec<(String, usize, usize)> = Vec::new();
    let mut outcome = SessionStatus::Completed;
    while let Some(index) = next_step(&plan) {
        if plan.steps[index].status == Some(StepState::Failed) {
            printer.note(&format!(
                "step {} failed before; running it again",
                plan.steps[index].id
            ));
        }
        plan.steps[index].status = Some(StepState::InProgress);
        let id = plan.steps[index].id.clone();
        let run = PlanRun {
            pinned: cox_core::plan::render_for_run(&plan, &id),
            target: target.clone(),
            directives: directives.clone(),
        };
        let options = RunOptions {
            one_shot: false,
            ..options.clone()
        };
        let earlier = plan.steps[index]
            .extra
            .get(SESSION_FIELD)
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let resumable = match earlier {
            Some(session) => Some(
                cox_core::journal::find(home, Some(&session))
                    .and_then(|p| cox_core::journal::load(&p))?,
            ),
            None => None,
        };
        let (mut session, prompt) = match resumable {
            Some(loaded) => {
                let restored = cox_core::resume::restore(&loaded.records);
                if restored.last_status == Some(SessionStatus::Completed) {
                    // Killed after the step finished but before its status was written.
                    let failed = restored.last_answer.as_deref().is_some_and(step_failed);
                    finish(&mut plan, index, failed, path, &mut printer)?;
                    continue;
                }
                printer.note(&format!("step {id}: resuming its session"));
                (cox_core::resume(config, loaded, None, options, run)?, None)
            }
            None => {
                let session = cox_core::start_with(config, cwd.clone(), options, run)?;
                plan.steps[index]
                    .extra
                    .insert(SESSION_FIELD.into(), session.id.0.clone().into());
                (session, Some(step_prompt(&plan.steps[index])))
            }
        };
        save(path, &plan)?;
        printer.plan(&plan);
        if let Some(text) = prompt {
            session.submit(Op::UserInput { text }).await;
        }
        let mut step = Step {
            session: &mut session,
            printer: &mut printer,
            changed: &mut changed,
            control: control.as_mut(),
            directives: &mut directives,
            tokens: &mut tokens,
        };
        let (mut status, mut answer, mut step_files) = step.drive().await;
        // Checks after a step that changed files: lint, then tests, each fed back to the model for
        // at most `rounds` fixes when asked to.
        let mut check_failed = None;
        if status == SessionStatus::Completed && !answer.as_deref().is_some_and(step_failed) {
            for check in &checks.list {
                if check.needs_changes && step_files.is_empty() {
                    continue;
                }
                let mut round = 0;
                loop {
                    let result = check.run(&cwd, &step_files).await;
                    step.printer.note(&format!(
                        "{}: {}",
                        check.name,
                        if result.passed { "passed" } else { "failing" }
                    ));
                    check_state.retain(|(name, _)| *name != check.name);
                    check_state.push((check.name, result.passed));
                    if result.passed {
                        break;
                    }
                    if !check.fix || round >= checks.rounds {
                        check_failed =
                            Some(format!("{} still failing:\n{}", check.name, result.output));
                        break;
                    }
                    round += 1;
                    let text = format!(
                        "`{}` ({}) fails after your changes. Fix what it reports, then answer with a short summary.\n```\n{}\n```",
                        check.command, check.name, result.output
                    );
                    step.session.submit(Op::UserInput { text }).await;
                    let (s, a, more) = step.drive().await;
                    (status, answer) = (s, a);
                    step_files.extend(more);
                    if status != SessionStatus::Completed {
                        break;
                    }
                }
                if check_failed.is_some() || status != SessionStatus::Completed {
                    break;
                }
            }
        }
        step.session.submit(Op::Shutdown).await;
        step.drain().await;
        if let Some(report) = check_failed {
            printer.note(&format!("step {id}: {report}"));
            finish(&mut plan, index, true, path, &mut printer)?;
            outcome = SessionStatus::Failed;
            break;
        }
        match status {
            SessionStatus::Completed => {
                let failed = answer.as_deref().is_some_and(step_failed);
                finish(&mut plan, index, failed, path, &mut printer)?;
                if failed {
                    outcome = SessionStatus::Failed;
                    break;
                }
            }
            other => {
                // Interrupted or failed: the step stays in progress, to be resumed by the next run.
                outcome = other;
                break;
            }
        }
    }
    if let Some(task) = ui_task {
        // The last word to the UI ends it and gives the terminal back before the summary.
        printer.finish_ui(&tokens);
        let _ = task.await;
    }
    summary(&plan, &changed, &check_state, &tokens);
    let code = match outcome {
        SessionStatus::Completed
            if plan.steps.iter().all(|s| {
                s.status == Some(StepState::Done) || s.status == Some(StepState::Skipped)
            }) =>
        {
            0
        }
        SessionStatus::Completed | SessionStatus::Failed => exit::FAILED,
        SessionStatus::ProviderError => exit::PROVIDER,
        SessionStatus::Interrupted => exit::INTERRUPTED,
    };
    Ok(ExitCode::from(code))
}

/// One step's session, as the runner drives it.
struct Step<'a> {
    session: &'a mut cox_core::SessionHandle,
    printer: &'a mut Printer,
    changed: &'a mut Vec<(String, usize, usize)>,
    control: Option<&'a mut tokio::sync::mpsc::Receiver<Op>>,
    /// Directives steered in, for the steps after this one.
    directives: &'a mut Vec<String>,
    tokens: &'a mut cox_protocol::Usage,
}

impl Step<'_> {
    /// Runs the session until its current task ends: the task's status, answer, and the files its
    /// patches changed. Control ops from stdin are passed on meanwhile.
    async fn drive(&mut self) -> (SessionStatus, Option<String>, Vec<String>) {
        let mut files = Vec::new();
        loop {
            let event = match self.control.as_deref_mut() {
                Some(control) => tokio::select! {
                    event = self.session.next_event() => event,
                    op = control.recv() => {
                        if let Some(op) = op {
                            self.session.submit(op).await;
                        }
                        continue;
                    }
                },
                None => self.session.next_event().await,
            };
            let Some(envelope) = event else { break };
            match &envelope.event {
                Event::PatchApplied { diff, .. } => {
                    count_changes(diff, self.changed);
                    files.extend(
                        diff.lines()
                            .filter_map(|l| l.strip_prefix("+++ b/"))
                            .map(str::to_string),
                    );
                }
                Event::Steered { text } => self.directives.push(text.clone()),
                Event::TaskCompleted { status, answer } => {
                    let result = (*status, answer.clone(), files);
                    self.printer.event(envelope.event);
                    return result;
                }
                _ => {}
            }
            self.printer.event(envelope.event);
        }
        (SessionStatus::Failed, None, files)
    }

    /// Reads the session's remaining events (after `Shutdown`), counting its tokens.
    async fn drain(&mut self) {
        while let Some(envelope) = self.session.next_event().await {
            if let Event::SessionCompleted { usage, .. } = &envelope.event {
                self.tokens.input_tokens += usage.input_tokens;
                self.tokens.cached_input_tokens += usage.cached_input_tokens;
                self.tokens.output_tokens += usage.output_tokens;
            }
            self.printer.event(envelope.event);
        }
    }
}

fn step_failed(answer: &str) -> bool {
    answer
        .lines()
        .any(|line| line.trim_start().starts_with("STEP FAILED"))
}

fn finish(
    plan: &mut Plan,
    index: usize,
    failed: bool,
    path: &Path,
    printer: &mut Printer,
) -> Result<(), Failure> {
    plan.steps[index].status = Some(if failed {
        StepState::Failed
    } else {
        StepState::Done
    });
    save(path, plan)?;
    printer.plan(plan);
    Ok(())
}

fn step_prompt(step: &cox_protocol::PlanStepDoc) -> String {
    format!(
        "Carry out step {} of the pinned plan: {}. Do only what this step needs, respect the plan's \
         constraints, and check your work (build, tests) where you can. Then answer with a short \
         summary of what you changed. If the step cannot be done, answer with a line starting \
         `STEP FAILED:` and the reason.",
        step.id, step.title
    )
}

/// Writes the plan back: temp file in the same directory, then rename; permissions kept.
fn save(path: &Path, plan: &Plan) -> Result<(), Failure> {
    let failure = |e: std::io::Error| Failure {
        code: exit::FAILED,
        message: format!("cannot write the plan {}: {e}", path.display()),
        hint: None,
    };
    let text =
        serde_json::to_string_pretty(plan).map_err(|e| failure(std::io::Error::other(e)))? + "\n";
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.cox-{}.tmp", std::process::id()));
    std::fs::write(&temp, text).map_err(failure)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&temp, meta.permissions());
    }
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        failure(e)
    })
}

/// Adds a diff's files and line counts to the run's tally.
fn count_changes(diff: &str, changed: &mut Vec<(String, usize, usize)>) {
    let mut current: Option<usize> = None;
    for line in diff.lines() {
        if let Some(path) = line.strip_prefix("+++ ") {
            let path = path.strip_prefix("b/").unwrap_or(path).to_string();
            current = Some(match changed.iter().position(|(p, _, _)| *p == path) {
                Some(at) => at,
                None => {
                    changed.push((path, 0, 0));
                    changed.len() - 1
                }
            });
        } else if line.starts_with("--- ") || line.starts_with("@@") {
        } else if let Some(at) = current {
            if line.starts_with('+') {
                changed[at].1 += 1;
            } else if line.starts_with('-') {
                changed[at].2 += 1;
            }
        }
    }
}

fn summary(
    plan: &Plan,
    changed: &[(String, usize, usize)],
    checks: &[(&str, bool)],
    tokens: &cox_protocol::Usage,
) {
    let count = |state: StepState| {
        plan.steps
            .iter()
            .filter(|s| s.status == Some(state))
            .count()
    };
    eprintln!(
        "plan: {} done, {} failed, {} in progress, {} pending (of {})",
        count(StepState::Done),
        count(StepState::Failed),
        count(StepState::InProgress),
        plan.steps
            .iter()
            .filter(|s| matches!(s.status, None | Some(StepState::Pending)))
            .count(),
        plan.steps.len()
    );
    for (path, added, removed) in changed {
        eprintln!("  {path} (+{added} -{removed})");
    }
    for (name, passed) in checks {
        eprintln!("{name}: {}", if *passed { "passing" } else { "failing" });
    }
    eprintln!(
        "tokens: {} in ({} cached) · {} out",
        tokens.input_tokens, tokens.cached_input_tokens, tokens.output_tokens
    );
}

/// Progress on stderr, or, with `--json`, the events of every step's session on stdout with one
/// increasing `seq`, and a `plan_updated` event for every status change.
struct Printer {
    json: bool,
    seq: u64,
    progress: Progress,
    /// The live UI's event channel, when the run is shown there.
    ui: Option<tokio::sync::mpsc::UnboundedSender<cox_protocol::EventEnvelope>>,
}

impl Printer {
    fn new(json: bool) -> Self {
        Printer {
            json,
            seq: 0,
            progress: Progress::default(),
            ui: None,
        }
    }

    fn event(&mut self, event: Event) {
        if let Some(ui) = &self.ui {
            // A step's session ending is not the run ending: the UI stays.
            if !matches!(event, Event::SessionCompleted { .. }) {
                self.seq += 1;
                let _ = ui.send(cox_protocol::EventEnvelope {
                    seq: self.seq,
                    ts: now(),
                    event,
                });
            }
            return;
        }
        if self.json {
            self.seq += 1;
            let envelope = cox_protocol::EventEnvelope {
                seq: self.seq,
                ts: now(),
                event,
            };
            println!("{}", serde_json::to_string(&envelope).unwrap_or_default());
        } else {
            self.progress
                .on_event(&event, &mut std::io::stderr().lock());
        }
    }

    /// A line of the run's own (lint, test) on stderr, or a warning event with `--json`.
    fn finish_ui(&mut self, usage: &cox_protocol::Usage) {
        if let Some(ui) = self.ui.take() {
            let _ = ui.send(cox_protocol::EventEnvelope {
                seq: self.seq + 1,
                ts: now(),
                event: Event::SessionCompleted {
                    status: SessionStatus::Completed,
                    answer: None,
                    usage: *usage,
                    cost_usd: None,
                },
            });
        }
    }

    fn note(&mut self, message: &str) {
        if self.json || self.ui.is_some() {
            self.event(Event::Warning {
                message: message.to_string(),
            });
        } else {
            eprintln!("{message}");
        }
    }

    fn plan(&mut self, plan: &Plan) {
        let steps = plan
            .steps
            .iter()
            .map(|s| PlanStep {
                step: format!("{} {}", s.id, s.title),
                status: match s.status.unwrap_or(StepState::Pending) {
                    StepState::Pending => StepStatus::Pending,
                    StepState::InProgress => StepStatus::InProgress,
                    StepState::Done => StepStatus::Completed,
                    StepState::Skipped => StepStatus::Skipped,
                    StepState::Failed => StepStatus::Failed,
                },
            })
            .collect();
        self.event(Event::PlanUpdated {
            steps,
            explanation: None,
        });
    }
}

fn now() -> String {
    // RFC 3339 with milliseconds, like the session's own events.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    cox_core::timestamp(since)
}
