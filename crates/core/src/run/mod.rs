//! Plan runs: a plan document executed step by step, as an engine capability behind the same
//! handle as a session ([`SessionHandle`]: ops in, events out), so the live UI, `--json` and an
//! embedder drive a run exactly as they drive a session.
//!
//! - **Steps** run in order, after the steps they `depends_on`. Each step is one session whose
//!   every request pins the plan (goal, constraints, every step's status, the current step in
//!   full), so a step starts from the plan, not from the previous steps' conversation. Directives
//!   steered in hold for the rest of the run.
//! - **The plan stays a true record**: each directive is written into the running step's
//!   `directives` as it arrives; a step whose outcome differs from its title after a directive
//!   gets the model's one-line account (`report_step`'s `changed`) in `changed`. An account is
//!   kept only for a step that was steered. A run continued later pins the directives the plan
//!   file holds from the start.
//! - **Outcome**: a step is failed when the model says so with `report_step` (the structured
//!   signal in `task_completed`), or when a check still fails after the fix rounds; a step whose
//!   model answers without reporting counts as done. The answer's text is never read.
//! - **Changed files** come from the tool calls' outcomes (`tool_result.outcome.changed_files`).
//! - **Checks** (lint, then tests) run after a step that changed files, as `Op::RunCheck` in the
//!   step's session: sandboxed, scrubbed, journaled and interruptible like the model's commands.
//!   A failing check is fed back to the model for at most `rounds` fixes when asked to.
//! - **Write-back**: each status goes into the plan file (temp file + rename, permissions and
//!   unknown fields kept) with the step's session id (`cox_session`). Running again continues with
//!   the first step not done; a step cut short (even by SIGKILL) resumes from its journal, so an
//!   edit already made is not made again; a step whose work had ended before the kill is checked
//!   again before it counts as done.
//!
//! Events: every step session's events, renumbered into one `seq`, except each step session's
//! own `session_completed` (the step's end is `step_finished`); `step_started`, `plan_updated` on
//! every status change, `step_finished`, `warning`s for the run's notes; and one
//! `session_completed` that ends the run (status, total usage). Ops go to the running step's
//! session; `shutdown` changes nothing (a run ends after its last step), `interrupt` stops the run
//! with the step in progress, to be resumed.

mod checks;

use std::path::{Path, PathBuf};

use cox_protocol::{
    Event, EventEnvelope, FileChange, Op, Plan, PlanStep, SessionStatus, StepReport, StepState,
    Usage,
};
use tokio::sync::mpsc;

pub use checks::{Check, CheckSettings, Checks};

use crate::{Config, Error, PlanRun, RunOptions, SessionHandle};

/// The step field where a run records the session that carries the step out.
pub const SESSION_FIELD: &str = "cox_session";

/// What a plan run needs besides the configuration.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The plan file, written back as steps change status.
    pub path: PathBuf,
    pub plan: Plan,
    pub cwd: PathBuf,
    /// `--target`: the only directory tools may write in.
    pub target: Option<PathBuf>,
    pub checks: Checks,
    pub options: RunOptions,
}

/// Starts a plan run on the current tokio runtime. Its handle works like a session's.
pub fn start(config: &Config, spec: RunSpec) -> Result<SessionHandle, Error> {
    let (handle, ops, events) = SessionHandle::pair(crate::session::new_id());
    // Directives an earlier run recorded in the plan hold in this one too: a run continued after
    // a failure or a kill pins what the person said before.
    let directives: Vec<String> = spec
        .plan
        .steps
        .iter()
        .flat_map(|step| step.directives.iter().cloned())
        .collect();
    let runner = Runner {
        config: config.clone(),
        spec,
        events,
        seq: 0,
        directives,
        current: None,
        usage: Usage::default(),
        cost: None,
        ops,
        ops_open: true,
    };
    let span = tracing::info_span!("plan_run", id = %handle.id);
    tokio::spawn(tracing::Instrument::instrument(runner.run(), span));
    Ok(handle)
}

/// `--restart`: every step pending again, without its session.
pub fn restart(plan: &mut Plan) {
    for step in &mut plan.steps {
        step.status = Some(StepState::Pending);
        step.extra.remove(SESSION_FIELD);
        step.directives.clear();
        step.changed = None;
    }
}

/// Adds `more` to a tally of changed files: each file once, its lines summed, in first-seen order.
/// Hunks are dropped: those of different calls refer to different versions of the file.
pub fn tally(changed: &mut Vec<FileChange>, more: &[FileChange]) {
    for change in more {
        match changed.iter_mut().find(|c| c.path == change.path) {
            Some(known) => {
                known.added += change.added;
                known.removed += change.removed;
            }
            None => changed.push(FileChange {
                hunks: Vec::new(),
                ..change.clone()
            }),
        }
    }
}

/// The next step to run: not finished, with everything it depends on done.
pub fn next_step(plan: &Plan) -> Option<usize> {
    let finished =
        |state: Option<StepState>| matches!(state, Some(StepState::Done | StepState::Skipped));
    let done = |id: &str| plan.steps.iter().any(|s| s.id == id && finished(s.status));
    plan.steps
        .iter()
        .position(|step| !finished(step.status) && step.depends_on.iter().all(|d| done(d)))
}

/// Writes the plan back: temp file in the same directory, then rename; permissions kept.
pub fn save(path: &Path, plan: &Plan) -> Result<(), Error> {
    let failure = |source: std::io::Error| Error::PlanWrite {
        path: path.to_path_buf(),
        source,
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
    // One name: the run holds the plan's lock, so no other cox writes it, and a temp file left
    // by a crash is simply written over.
    let temp = dir.join(format!(".{name}.cox.tmp"));
    if let Err(e) = fs_err::write(&temp, text) {
        // A full disk leaves no temp file beside the plan.
        let _ = fs_err::remove_file(&temp);
        return Err(failure(e));
    }
    if let Ok(meta) = fs_err::metadata(path) {
        let _ = fs_err::set_permissions(&temp, meta.permissions());
    }
    crate::crash::at("plan:temp-written");
    fs_err::rename(&temp, path).map_err(|e| {
        let _ = fs_err::remove_file(&temp);
        failure(e)
    })
}

/// The prompt that starts a step's session.
fn step_prompt(step: &cox_protocol::PlanStepDoc) -> String {
    format!(
        "Carry out step {} of the pinned plan: {}. Do only what this step needs, respect the plan's \
         constraints, and check your work (build, tests) where you can. When you are finished, call \
         {report} with status \"done\" and a short summary of what you changed — or with status \
         \"failed\" and the reason when the step cannot be done — then answer with that summary. If \
         the person's directives made the outcome differ from the step's title, say how in one line \
         in `changed`.",
        step.id,
        step.title,
        report = cox_tools::report_step::NAME
    )
}

/// The fix request after a failing check.
fn fix_prompt(check: &Check, output: &str) -> String {
    format!(
        "`{}` ({}) fails after your changes. Fix what it reports, then call {} again and answer \
         with a short summary.\n```\n{}\n```",
        check.command,
        check.kind.name(),
        cox_tools::report_step::NAME,
        output.trim_end()
    )
}

/// How one task of a step's session ended, as the runner saw it.
struct TaskEnd {
    status: SessionStatus,
    report: Option<StepReport>,
    /// The last check's result during the task (`Op::RunCheck`).
    check: Option<(bool, String)>,
}

/// Why a step stopped the run.
enum Stop {
    /// Interrupted, a provider error or a failed task: the step stays in progress.
    Session(SessionStatus),
    /// The step failed (reported, or a check still failing).
    Failed,
}

struct Runner {
    config: Config,
    spec: RunSpec,
    events: mpsc::Sender<EventEnvelope>,
    seq: u64,
    /// Directives steered in so far: pinned in every later step.
    directives: Vec<String>,
    /// The step running now (its index in the plan): where a directive is recorded.
    current: Option<usize>,
    usage: Usage,
    cost: Option<f64>,
    ops: mpsc::Receiver<Op>,
    ops_open: bool,
}

impl Runner {
    async fn run(mut self) {
        // A step about to start announces the plan with its new status; only a run with nothing
        // left to do announces it as it stands.
        if next_step(&self.spec.plan).is_none() {
            self.announce_plan().await;
        }
        let status = match self.steps().await {
            Ok(()) if self.all_done() => SessionStatus::Completed,
            Ok(()) => SessionStatus::Failed,
            Err(Stop::Failed) => SessionStatus::Failed,
            Err(Stop::Session(status)) => status,
        };
        let (usage, cost_usd) = (self.usage, self.cost);
        self.emit(Event::SessionCompleted {
            status,
            answer: None,
            usage,
            cost_usd,
        })
        .await;
    }

    fn all_done(&self) -> bool {
        self.spec
            .plan
            .steps
            .iter()
            .all(|s| matches!(s.status, Some(StepState::Done | StepState::Skipped)))
    }

    async fn emit(&mut self, event: Event) {
        self.seq += 1;
        let envelope = EventEnvelope {
            seq: self.seq,
            ts: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            event,
        };
        // A front end that went away does not stop the run from leaving its files consistent.
        let _ = self.events.send(envelope).await;
    }

    async fn warn(&mut self, message: String) {
        self.emit(Event::Warning { message }).await;
    }

    /// Writes the plan back and tells the front ends; a plan that cannot be written stops the run.
    async fn save_plan(&mut self) -> Result<(), Stop> {
        if let Err(error) = save(&self.spec.path, &self.spec.plan) {
            self.emit(Event::Error {
                kind: cox_protocol::ErrorKind::Journal,
                message: error.to_string(),
            })
            .await;
            return Err(Stop::Session(SessionStatus::Failed));
        }
        self.announce_plan().await;
        Ok(())
    }

    /// `plan_updated` with every step's status.
    async fn announce_plan(&mut self) {
        let steps = self
            .spec
            .plan
            .steps
            .iter()
            .map(|s| PlanStep {
                step: format!("{} {}", s.id, s.title),
                status: s.status.unwrap_or(StepState::Pending).into(),
            })
            .collect();
        self.emit(Event::PlanUpdated {
            steps,
            explanation: None,
        })
        .await;
    }

    async fn steps(&mut self) -> Result<(), Stop> {
        while let Some(index) = next_step(&self.spec.plan) {
            self.step(index).await?;
        }
        Ok(())
    }

    /// Runs (or resumes) one step to its end: done, or the reason the run stops.
    async fn step(&mut self, index: usize) -> Result<(), Stop> {
        let step = self.spec.plan.steps[index].clone();
        tracing::info!(step = %step.id, "step started");
        if step.status == Some(StepState::Failed) {
            self.warn(format!("step {} failed before; running it again", step.id))
                .await;
        }
        self.spec.plan.steps[index].status = Some(StepState::InProgress);
        self.current = Some(index);
        let run = PlanRun {
            pinned: crate::plan::render_for_run(&self.spec.plan, &step.id),
            target: self.spec.target.clone(),
            directives: self.directives.clone(),
        };
        let options = RunOptions {
            one_shot: false,
            ..self.spec.options.clone()
        };
        let earlier = step
            .extra
            .get(SESSION_FIELD)
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let loaded = match earlier {
            Some(id) => Some(
                crate::journal::find(&self.config.home, Some(&id))
                    .and_then(|p| crate::journal::load(&p)),
            ),
            None => None,
        };
        let opened = match loaded {
            Some(Err(error)) => Err(error),
            Some(Ok(loaded)) => {
                let restored = crate::resume::restore(&loaded.records);
                if restored.tasks == 0 {
                    // Killed before the step's prompt was recorded: give it now.
                    let prompt = Some(step_prompt(&step));
                    crate::resume(&self.config, loaded, prompt, options, run)
                        .map(|session| (session, None, None))
                } else if restored.last_status == Some(SessionStatus::Completed) {
                    // Killed after the step's work ended: it is checked again before it counts.
                    crate::reopen(&self.config, loaded, options, run)
                        .map(|session| (session, None, Some(restored)))
                } else {
                    crate::resume(&self.config, loaded, None, options, run)
                        .map(|session| (session, None, Some(restored)))
                }
            }
            None => crate::start_with(&self.config, self.spec.cwd.clone(), options, run)
                .map(|session| (session, Some(step_prompt(&step)), None)),
        };
        let (mut session, prompt, restored) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                self.emit(Event::Error {
                    kind: cox_protocol::ErrorKind::Provider,
                    message: format!("step {}: {error}", step.id),
                })
                .await;
                return Err(Stop::Session(SessionStatus::Failed));
            }
        };
        crate::crash::at("run:step-opened");
        self.spec.plan.steps[index]
            .extra
            .insert(SESSION_FIELD.into(), session.id.0.clone().into());
        self.save_plan().await?;
        crate::crash::at("run:step-saved");
        self.emit(Event::StepStarted {
            id: step.id.clone(),
            title: step.title.clone(),
        })
        .await;
        let mut changed = Vec::new();
        let ended = match (prompt, restored) {
            (Some(text), _) => {
                session.submit(Op::UserInput { text }).await;
                self.drive(&mut session, &mut changed).await
            }
            (None, Some(restored)) => {
                tally(&mut changed, &restored.changed);
                if restored.last_status == Some(SessionStatus::Completed) {
                    if restored.check_cut_short {
                        self.warn(format!(
                            "step {}: its checks were cut short; checking again",
                            step.id
                        ))
                        .await;
                    }
                    TaskEnd {
                        status: SessionStatus::Completed,
                        report: restored.last_report,
                        check: None,
                    }
                } else {
                    self.warn(format!("step {}: resuming its session", step.id))
                        .await;
                    self.drive(&mut session, &mut changed).await
                }
            }
            // Resumed with its prompt (it had none yet): the task is under way.
            (None, None) => self.drive(&mut session, &mut changed).await,
        };
        let (outcome, ended) = self.conclude(&mut session, ended, &mut changed).await;
        session.submit(Op::Shutdown).await;
        self.drain(&mut session).await;
        self.current = None;
        let status = match outcome {
            Ok(()) => StepState::Done,
            Err(Stop::Failed) => StepState::Failed,
            // Interrupted or failed: the step stays in progress, to be resumed by the next run.
            Err(stop @ Stop::Session(_)) => return Err(stop),
        };
        tracing::info!(step = %step.id, ?status, changed_files = changed.len(), "step finished");
        let doc = &mut self.spec.plan.steps[index];
        doc.status = Some(status);
        // The model's account of a changed outcome is kept only when the person steered this
        // step: without a directive the step's title is what was asked, and a model that calls
        // its own drift a change does not get to mark it so.
        doc.changed = ended
            .report
            .and_then(|r| r.changed)
            .filter(|_| !doc.directives.is_empty());
        let (directives, changed_outcome) = (doc.directives.clone(), doc.changed.clone());
        self.save_plan().await?;
        crate::crash::at("run:step-finished");
        self.emit(Event::StepFinished {
            id: step.id,
            status,
            changed_files: changed,
            directives,
            changed: changed_outcome,
        })
        .await;
        match status {
            StepState::Failed => Err(Stop::Failed),
            _ => Ok(()),
        }
    }

    /// After the step's task: its report, then the checks and their fix rounds. Returns the
    /// outcome and how the last task ended (with the step's last report).
    async fn conclude(
        &mut self,
        session: &mut SessionHandle,
        mut ended: TaskEnd,
        changed: &mut Vec<FileChange>,
    ) -> (Result<(), Stop>, TaskEnd) {
        let checks = self.spec.checks.clone();
        for check in &checks.list {
            if ended.status != SessionStatus::Completed {
                break;
            }
            if ended.report.as_ref().is_some_and(|r| !r.done) || changed.is_empty() {
                break;
            }
            let mut round = 0;
            loop {
                let files: Vec<String> = changed.iter().map(|c| c.path.clone()).collect();
                let command = check.line(&self.spec.cwd, &files);
                session
                    .submit(Op::RunCheck {
                        kind: check.kind,
                        command,
                    })
                    .await;
                let checked = self.drive(session, changed).await;
                if checked.status != SessionStatus::Completed {
                    ended.status = checked.status;
                    break;
                }
                let (passed, output) = checked.check.unwrap_or((false, String::new()));
                if passed {
                    break;
                }
                if !check.fix || round >= checks.rounds {
                    self.warn(format!(
                        "{} still failing:\n{}",
                        check.kind.name(),
                        output.trim_end()
                    ))
                    .await;
                    return (Err(Stop::Failed), ended);
                }
                round += 1;
                let text = fix_prompt(check, &output);
                session.submit(Op::UserInput { text }).await;
                let fixed = self.drive(session, changed).await;
                ended.status = fixed.status;
                if fixed.report.is_some() {
                    ended.report = fixed.report;
                }
                if ended.status != SessionStatus::Completed {
                    break;
                }
            }
        }
        let outcome = match &ended {
            TaskEnd {
                status: SessionStatus::Completed,
                report: Some(StepReport { done: false, .. }),
                ..
            } => Err(Stop::Failed),
            TaskEnd {
                status: SessionStatus::Completed,
                ..
            } => Ok(()),
            TaskEnd { status, .. } => Err(Stop::Session(*status)),
        };
        (outcome, ended)
    }

    /// Passes events and ops between the front end and the step's session until its current
    /// task ends.
    async fn drive(
        &mut self,
        session: &mut SessionHandle,
        changed: &mut Vec<FileChange>,
    ) -> TaskEnd {
        let mut check = None;
        loop {
            let event = tokio::select! {
                event = session.next_event() => event,
                op = self.ops.recv(), if self.ops_open => {
                    match op {
                        // A run ends after its last step; there is nothing to shut down early.
                        Some(Op::Shutdown) => {}
                        Some(op) => {
                            session.submit(op).await;
                        }
                        None => {
                            // Nobody is listening any more: stop now rather than work unseen.
                            self.ops_open = false;
                            session.submit(Op::Interrupt).await;
                        }
                    }
                    continue;
                }
            };
            let Some(envelope) = event else {
                return TaskEnd {
                    status: SessionStatus::Failed,
                    report: None,
                    check,
                };
            };
            match &envelope.event {
                Event::ToolResult { outcome, .. } => tally(changed, &outcome.changed_files),
                Event::Steered { text } => self.record_directive(text.clone()).await,
                Event::CheckFinished { ok, output, .. } => check = Some((*ok, output.clone())),
                Event::SessionCompleted {
                    usage, cost_usd, ..
                } => {
                    self.count(usage, *cost_usd);
                    continue;
                }
                _ => {}
            }
            let end = match &envelope.event {
                Event::TaskCompleted { status, report, .. } => Some(TaskEnd {
                    status: *status,
                    report: report.clone(),
                    check: check.clone(),
                }),
                _ => None,
            };
            self.emit(envelope.event).await;
            if let Some(end) = end {
                return end;
            }
        }
    }

    /// A directive steered in: pinned for the rest of the run, and written into the running
    /// step's `directives` at once, so the plan file holds it even if the run is killed next.
    async fn record_directive(&mut self, text: String) {
        self.directives.push(text.clone());
        let Some(index) = self.current else { return };
        self.spec.plan.steps[index].directives.push(text);
        if let Err(error) = save(&self.spec.path, &self.spec.plan) {
            // The step goes on; the directive is written again with the step's status.
            self.warn(format!(
                "the plan file does not record the directive yet: {error}"
            ))
            .await;
        }
    }

    /// Reads the step session's last events (after `shutdown`), counting its tokens.
    async fn drain(&mut self, session: &mut SessionHandle) {
        while let Some(envelope) = session.next_event().await {
            match envelope.event {
                Event::SessionCompleted {
                    usage, cost_usd, ..
                } => self.count(&usage, cost_usd),
                event => self.emit(event).await,
            }
        }
    }

    fn count(&mut self, usage: &Usage, cost: Option<f64>) {
        self.usage.input_tokens += usage.input_tokens;
        self.usage.cached_input_tokens += usage.cached_input_tokens;
        self.usage.output_tokens += usage.output_tokens;
        if let Some(cost) = cost {
            self.cost = Some(self.cost.unwrap_or(0.0) + cost);
        }
    }
}
