//! Running what a response asked for: each tool call through rules, approval and the grace
//! window, journaled before and after, its processes registered while they run; and the person's
//! own checks (a plan run's lint and tests), run like a command but outside the conversation.

use std::sync::Arc;

use cox_protocol::{CallId, CheckKind, Event, Item, SessionStatus, ToolCall};
use cox_tools::{Described, Effect, Question, TerminalEffect, ToolContext, ToolOutput, Touches};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::turn::JournalFailed;
use super::{CHECK_TIMEOUT_MS, Outcome, Reply, Session};
use crate::journal::Record;

impl Session {
    /// A check the person configured (a plan run's lint or tests): run like a model's command —
    /// the session's sandbox and scrubbed environment, killed by an interrupt — and journaled
    /// before and after, but not part of the conversation. Rules and approvals, which guard the
    /// model's actions, do not apply to the person's own command.
    pub(super) async fn run_check(
        &mut self,
        kind: CheckKind,
        command: String,
        cancel: &CancellationToken,
    ) -> Outcome {
        let (outcome, status) = self.check(kind, command, cancel).await;
        // Always the task's end, even when the journal failed: whoever waits for it goes on.
        self.emitter
            .emit(Event::TaskCompleted {
                status,
                answer: None,
                report: None,
            })
            .await;
        outcome
    }

    async fn check(
        &mut self,
        kind: CheckKind,
        command: String,
        cancel: &CancellationToken,
    ) -> (Outcome, SessionStatus) {
        self.emitter
            .emit(Event::CheckStarted {
                kind,
                command: command.clone(),
            })
            .await;
        let started = Record::CheckStart {
            kind,
            command: command.clone(),
        };
        if self.record(&started).await.is_err() {
            return (Outcome::Failed, SessionStatus::Failed);
        }
        tracing::info!(kind = kind.name(), "check started");
        // The person's check may write (a formatter, a fixer): its changes are checkpointed too,
        // though rules, which guard the model's actions, do not judge them.
        let held = match self.before_action(None).await {
            Ok(held) => held,
            Err(reason) => {
                self.warn(reason).await;
                None
            }
        };
        let mut ctx = self.tool_context(cancel, None);
        let (watch, mut started) = self.watch(None);
        let tag = watch.tag.1.clone();
        ctx.watch = Some(watch);
        let mut processes = Vec::new();
        let running = cox_tools::shell::run_line(&command, CHECK_TIMEOUT_MS, &ctx);
        tokio::pin!(running);
        let output = loop {
            tokio::select! {
                biased;
                Some(pid) = started.recv() => {
                    processes.extend(spawned(&mut self.journal, &self.config.settings.home, &self.id, None, &tag, pid));
                }
                output = &mut running => break output,
            }
        };
        drop(processes);
        let output = self.redacted(output);
        if let Some(held) = held {
            self.after_check(held, &command).await;
        }
        tracing::info!(
            kind = kind.name(),
            ok = output.ok,
            exit_code = output.outcome.exit_code,
            "check ended"
        );
        let ended = Record::CheckEnd {
            kind,
            ok: output.ok,
            output: output.output.clone(),
        };
        let recorded = self.record(&ended).await;
        self.emitter
            .emit(Event::CheckFinished {
                kind,
                ok: output.ok,
                output: output.output,
                outcome: output.outcome,
            })
            .await;
        if cancel.is_cancelled() {
            (Outcome::Interrupted, SessionStatus::Interrupted)
        } else if recorded.is_err() {
            (Outcome::Failed, SessionStatus::Failed)
        } else {
            (Outcome::Checked, SessionStatus::Completed)
        }
    }

    /// Runs calls in order, each journaled before and after. After an interrupt the rest are not
    /// run (and recorded as such).
    pub(super) async fn run_calls(
        &mut self,
        calls: Vec<ToolCall>,
        cancel: &CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, Reply)>,
    ) -> Result<(), JournalFailed> {
        for call in calls {
            // The tool says what the call will do; rules, approvals and the grace window read that.
            let described = self.tools.describe(
                &call.name,
                &call.arguments,
                &self.tool_context(cancel, None),
            );
            self.emitter
                .emit(Event::ToolCall {
                    call_id: call.call_id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    preview: described.preview(),
                    kind: described.kind,
                    actions: described.actions.clone(),
                })
                .await;
            tracing::debug!(call_id = %call.call_id, tool = %call.name, kind = ?described.kind, "tool call");
            let command = self.command_check(&described.touches).await;
            if let Some(violation) = self.violation(&described.touches, &command) {
                tracing::info!(call_id = %call.call_id, rule = %violation.rule_id, "blocked by a rule");
                self.emitter
                    .emit(Event::RuleBlocked {
                        call_id: call.call_id.clone(),
                        rule_id: violation.rule_id.clone(),
                        reason: violation.reason.clone(),
                        path: None,
                        line: None,
                    })
                    .await;
                let output = ToolOutput::error(format!(
                    "blocked by project rule `{}`: {} ({}). Do it another way that keeps the rule.",
                    violation.rule_id, violation.rule_text, violation.reason
                ));
                self.finish_call(&call, output).await?;
                continue;
            }
            // A command the rules cannot judge before it runs needs the person's approval.
            let opaque = match command {
                crate::rules::CommandCheck::Opaque(why) => Some(format!(
                    "project rule `{}` ({}) checks commands, and cox cannot tell what this runs: {}",
                    why.rule_id, why.rule_text, why.reason
                )),
                _ => None,
            };
            let escalated = match self
                .approve(&call, &described.touches, opaque, cancel, answers)
                .await
            {
                Ok(escalated) => escalated,
                Err(refusal) => {
                    tracing::info!(call_id = %call.call_id, "not approved");
                    self.finish_call(&call, ToolOutput::error(refusal)).await?;
                    continue;
                }
            };
            let steered = self.hold(&call, &described, cancel).await?;
            let output = if cancel.is_cancelled() {
                ToolOutput::error("not run: the user interrupted before this call started")
            } else if let Some(directive) = steered {
                ToolOutput::error(format!(
                    "not run: the user steered before this call started (\"{directive}\"); decide again"
                ))
            } else {
                // What the call changes is known by looking before and after it.
                let held = if described.acts() {
                    match self.before_action(Some(&call.call_id)).await {
                        Ok(held) => held,
                        Err(reason) => {
                            self.finish_call(&call, ToolOutput::error(reason)).await?;
                            continue;
                        }
                    }
                } else {
                    None
                };
                self.record(&Record::ToolStart {
                    call_id: call.call_id.clone(),
                })
                .await?;
                self.journal_typing(&call.call_id, &described.actions)
                    .await?;
                let span = tracing::info_span!("tool", call_id = %call.call_id, name = %call.name);
                let started = std::time::Instant::now();
                let output = tracing::Instrument::instrument(
                    self.run_tool(&call, cancel, answers, escalated),
                    span,
                )
                .await;
                tracing::info!(
                    call_id = %call.call_id,
                    tool = %call.name,
                    ok = output.ok,
                    exit_code = output.outcome.exit_code,
                    changed_files = output.outcome.changed_files.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    escalated,
                    "tool call ended"
                );
                crate::crash::at("after:tool_run");
                match held {
                    Some(held) => {
                        let action = action_line(&call.name, &described.actions);
                        let effects = self.after_action(held, Some(&call.call_id), action).await;
                        self.judged(&call.call_id, effects, output).await
                    }
                    None => output,
                }
            };
            self.finish_call(&call, output).await?;
        }
        Ok(())
    }

    /// What `deny_command` says of a call's command line, read once per call: both the rule
    /// check and the approval use it. Scripts are any file cox can read as text; one was written
    /// during this session when it changed since the session started, or a checkpoint of this
    /// session changed it (the store is waited for: a baseline still being taken holds it).
    async fn command_check(&mut self, touches: &Touches) -> crate::rules::CommandCheck {
        let Some(line) = touches.command.clone() else {
            return crate::rules::CommandCheck::Clear;
        };
        if !self.config.rules.checks_commands() {
            return crate::rules::CommandCheck::Clear;
        }
        // Owned, so no borrow of the session is held across the wait.
        let (rules, cwd) = (Arc::clone(&self.config.rules), self.config.cwd.clone());
        let (checkpoints, started_ns) = (self.checkpoints.clone(), self.started_ns);
        let store = checkpoints.lock().await;
        let scripts = SessionScripts {
            started_ns,
            store: store.as_ref(),
        };
        rules.check_command(&line, &cwd, &scripts)
    }

    /// The project rule a call would break, checked before it runs.
    fn violation(
        &self,
        touches: &Touches,
        command: &crate::rules::CommandCheck,
    ) -> Option<crate::rules::Violation> {
        if self.config.rules.is_empty() {
            return None;
        }
        if let Some(violation) = command.clone().denied() {
            return Some(violation);
        }
        if let Some(external) = &touches.external
            && let Some(violation) = self.config.rules.check_tool(&external.name)
        {
            return Some(violation);
        }
        if let Some(unclear) = &touches.unclear
            && let Some(violation) = self.config.rules.check_unclear(unclear)
        {
            return Some(violation);
        }
        let edits: Vec<crate::rules::FileEdit> = touches
            .edits
            .iter()
            .map(|(path, added)| crate::rules::FileEdit {
                path: path.trim_start_matches("./").to_string(),
                added: added.clone(),
            })
            .collect();
        self.config.rules.check_edits(&edits)
    }

    /// Before a call starts: with steering on, a write or command is announced and held for the
    /// grace window (a pause in it holds the call at the barrier); every call passes the barrier.
    /// Returns a directive given meanwhile: the call is then not run.
    async fn hold(
        &mut self,
        call: &ToolCall,
        described: &Described,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, JournalFailed> {
        let options = &self.config.options;
        if options.steerable && described.acts() && options.steer_grace_ms > 0 {
            let (preview, destructive) = held(&described.touches);
            let grace_ms = match destructive {
                Some(_) => options
                    .steer_grace_destructive_ms
                    .max(options.steer_grace_ms),
                None => options.steer_grace_ms,
            };
            // Read before the announcement, so a pause that answers it is never missed.
            let epoch = self.gate.epoch();
            self.emitter
                .emit(Event::ActionPending {
                    call_id: call.call_id.clone(),
                    name: call.name.clone(),
                    grace_ms,
                    preview,
                    destructive,
                })
                .await;
            let grace = std::time::Duration::from_millis(grace_ms);
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = self.gate.changed_since(epoch) => {}
                _ = cancel.cancelled() => {}
            }
        }
        self.barrier(cancel).await
    }

    /// Journals a call's result, announces its effects and result, and adds it to the history.
    pub(super) async fn finish_call(
        &mut self,
        call: &ToolCall,
        output: ToolOutput,
    ) -> Result<(), JournalFailed> {
        crate::crash::at("before:tool_end");
        self.record(&Record::ToolEnd {
            call_id: call.call_id.clone(),
            ok: output.ok,
            output: output.output.clone(),
            full: output.full.clone(),
            changed: output.outcome.changed_files.clone(),
        })
        .await?;
        // Images go to the model only (the journal keeps the text that names them).
        let mut images = Vec::new();
        match output.effect {
            Some(Effect::Diff(diff)) => {
                self.emitter
                    .emit(Event::PatchApplied {
                        call_id: call.call_id.clone(),
                        diff,
                    })
                    .await;
            }
            Some(Effect::Plan { steps, explanation }) => {
                self.record(&Record::Plan {
                    steps: steps.clone(),
                })
                .await?;
                self.pinned.plan = Some(steps.clone());
                self.render_instructions();
                self.emitter
                    .emit(Event::PlanUpdated { steps, explanation })
                    .await;
            }
            Some(Effect::Step(report)) => {
                self.record(&Record::Step {
                    report: report.clone(),
                })
                .await?;
                self.report = Some(report);
            }
            Some(Effect::Terminal(effect)) => self.terminal_effect(&call.call_id, effect).await?,
            Some(Effect::Images(list)) => images = list,
            None => {}
        }
        self.emitter
            .emit(Event::ToolResult {
                call_id: call.call_id.clone(),
                ok: output.ok,
                output: output.output.clone(),
                outcome: output.outcome,
            })
            .await;
        self.history.push(Item::ToolResult {
            call_id: call.call_id.clone(),
            ok: output.ok,
            output: output.output,
            images,
        });
        self.report_ended_terminals().await;
        Ok(())
    }

    fn tool_context(
        &self,
        cancel: &CancellationToken,
        asker: Option<mpsc::Sender<Question>>,
    ) -> ToolContext {
        ToolContext {
            cwd: self.config.cwd.clone(),
            workspace: self.config.cwd.clone(),
            writable_roots: self.config.writable_roots.clone(),
            max_output_bytes: self.config.settings.tool_output_max_bytes,
            capture_bytes: self.config.settings.journal_output_max_bytes,
            hidden_env: self.config.credentials.hidden_env.clone(),
            sandbox: self.config.sandbox.clone(),
            protected: self.config.protected.clone(),
            asker,
            watch: None,
            terminals: Some(std::sync::Arc::clone(&self.terminals)),
            login_env: self.config.login_env.clone(),
            cancel: cancel.clone(),
        }
    }

    /// The watch a call's (or a check's) commands report their pids to, tagged with the session
    /// and the call.
    fn watch(&self, call_id: Option<&CallId>) -> (cox_tools::Watch, mpsc::UnboundedReceiver<u32>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let tag = match call_id {
            Some(call_id) => format!("{}:{call_id}", self.id),
            None => format!("{}:check", self.id),
        };
        let watch = cox_tools::Watch {
            tag: (crate::leftovers::TAG_ENV.to_string(), tag),
            started: tx,
        };
        (watch, rx)
    }

    /// Runs one tool call. When a person can answer (`interactive`), an `ask_user` question is
    /// announced as `question_asked` and the call waits for the matching `Op::Answer`.
    async fn run_tool(
        &mut self,
        call: &ToolCall,
        cancel: &CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, Reply)>,
        escalated: bool,
    ) -> ToolOutput {
        let (asker, mut questions) = mpsc::channel::<Question>(1);
        let mut ctx = self.tool_context(cancel, self.config.options.interactive.then_some(asker));
        if escalated {
            // Approved to run outside the sandbox.
            ctx.sandbox = self.config.unconfined.clone();
        }
        let (watch, mut started) = self.watch(Some(&call.call_id));
        let tag = watch.tag.1.clone();
        ctx.watch = Some(watch);
        let mut processes = Vec::new();
        let running = self.tools.call(&call.name, &call.arguments, &ctx);
        tokio::pin!(running);
        loop {
            tokio::select! {
                // Launchers reported first: one started just before the tool returned is
                // journaled (and, for a terminal session, kept) too.
                biased;
                Some(pid) = started.recv() => {
                    processes.extend(spawned(&mut self.journal, &self.config.settings.home, &self.id, Some(&call.call_id), &tag, pid));
                }
                output = &mut running => {
                    // A terminal session's launcher stays named in `running/` until it ends.
                    if let Some(Effect::Terminal(TerminalEffect { id, started: Some((_, pid)), .. })) = &output.effect
                        && let Some(at) = processes.iter().position(|p: &crate::leftovers::Running| p.pid() == *pid)
                    {
                        self.terminal_entries.insert(*id, processes.swap_remove(at));
                    }
                    return self.redacted(output);
                }
                Some(question) = questions.recv() => {
                    self.emitter
                        .emit(Event::QuestionAsked {
                            call_id: call.call_id.clone(),
                            question: question.text,
                        })
                        .await;
                    // Answers to other calls (late, or mistaken) are dropped; an interrupt stops
                    // the wait (the unanswered question then ends the tool call).
                    let answer = loop {
                        tokio::select! {
                            answer = answers.recv() => match answer {
                                Some((call_id, Reply::Text(text))) if call_id == call.call_id => break Some(text),
                                Some(_) => continue,
                                None => break None,
                            },
                            _ = cancel.cancelled() => break None,
                        }
                    };
                    if let Some(text) = answer {
                        let _ = question.reply.send(text);
                    }
                }
            }
        }
    }

    /// A tool's output with every credential value masked, before the model, an event or the
    /// journal sees it.
    fn redacted(&self, mut output: ToolOutput) -> ToolOutput {
        let credentials = &self.config.credentials;
        if credentials.values.is_empty() {
            return output;
        }
        output.output = credentials.redact(&output.output);
        output.full = output.full.map(|full| credentials.redact(&full));
        output.outcome.excerpt = output.outcome.excerpt.map(|e| credentials.redact(&e));
        output
    }
}

struct SessionScripts<'a> {
    started_ns: i64,
    store: Option<&'a crate::checkpoint::Store>,
}

/// Scripts larger than this are not read: they count as unreadable (so opaque).
const MAX_SCRIPT_BYTES: u64 = 1 << 20;

impl crate::rules::Scripts for SessionScripts<'_> {
    fn read(&self, path: &std::path::Path) -> Option<String> {
        let meta = fs_err::metadata(path).ok()?;
        if !meta.is_file() || meta.len() > MAX_SCRIPT_BYTES {
            return None;
        }
        String::from_utf8(fs_err::read(path).ok()?).ok()
    }

    fn written(&self, path: &std::path::Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = fs_err::metadata(path) else {
            return false;
        };
        if meta.ctime() * 1_000_000_000 + meta.ctime_nsec() >= self.started_ns {
            return true;
        }
        self.store
            .is_some_and(|store| store.changed_by_action(path))
    }
}

/// An action in one line, for its checkpoint: what the tool said it does, or its name.
fn action_line(name: &str, actions: &[cox_protocol::Action]) -> String {
    if actions.is_empty() {
        return name.to_string();
    }
    let line = actions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let mut line = line.replace('\n', " ");
    if line.chars().count() > 200 {
        line = line.chars().take(199).collect::<String>() + "…";
    }
    line
}

/// A command started: journaled (pid and start time), and registered as running until the call
/// ends, so that a cox started after this one died kills it (see [`crate::leftovers`]).
fn spawned(
    journal: &mut crate::journal::Journal,
    home: &std::path::Path,
    session: &cox_protocol::SessionId,
    call_id: Option<&CallId>,
    tag: &str,
    pid: u32,
) -> Option<crate::leftovers::Running> {
    let start = crate::lock::start_time(pid)?;
    let record = Record::Spawned {
        call_id: call_id.cloned(),
        pid,
        start,
    };
    if let Err(error) = journal.append(&record) {
        tracing::warn!(%error, "cannot journal a started command");
    }
    crate::leftovers::register(home, &session.0, pid, start, tag)
}

/// What the grace window shows of a call, and why it is destructive (if it is): a patch's lines
/// (whether the model sent it to `apply_patch` or through the shell), else the command.
fn held(touches: &Touches) -> (Vec<String>, Option<String>) {
    if let Some(held) = touches.patch.as_deref().and_then(cox_tools::held_patch) {
        return (held.preview, held.deletion);
    }
    match &touches.command {
        Some(line) => (
            vec![format!("$ {line}")],
            cox_sandbox::destructive::destructive(line),
        ),
        None => (Vec::new(), None),
    }
}
