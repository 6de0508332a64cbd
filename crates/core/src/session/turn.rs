//! The turn loop: send the history and tool schemas, stream the response (deltas become events),
//! and when the response is complete, journal it and run its tool calls in order — each journaled as
//! started before it runs and as ended after — then go again, until the model answers without
//! calling a tool or `max_turns` is reached.

use cox_model::{ModelError, ModelRequest, ModelResponse, StreamEvent};
use cox_protocol::{
    CallId, CheckKind, CompactReason, ErrorKind, Event, Item, SessionStatus, ToolCall, Usage,
};
use cox_tools::{Effect, Question, ToolContext, ToolOutput, Touches};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{CHECK_TIMEOUT_MS, Outcome, Reply, Resume, Session, Task};
use crate::journal::Record;
use crate::resume::CUT_SHORT;

enum StreamEnd {
    /// Interrupted; the response's text so far.
    Cancelled(String),
    /// A pause or steer cut the response short; its text so far.
    Paused(String),
    Failed(ModelError),
}

/// The task must stop: the journal could not record what was about to happen.
pub(super) struct JournalFailed;

impl Session {
    pub(super) async fn run_task(
        &mut self,
        task: Task,
        cancel: CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, Reply)>,
    ) -> Outcome {
        if let Task::Check { kind, command } = task {
            return self.run_check(kind, command, &cancel).await;
        }
        self.report = None;
        let outcome = match self.begin(task, &cancel, answers).await {
            Ok(()) if cancel.is_cancelled() => Outcome::Interrupted,
            Ok(()) => self.run_turns(&cancel, answers).await,
            Err(JournalFailed) => Outcome::Failed,
        };
        if matches!(outcome, Outcome::Interrupted) {
            // The model learns it was stopped, not that it finished.
            let _ = self.record(&Record::Interrupted).await;
            self.history.push(Item::User {
                text: crate::context::INTERRUPTED_NOTE.to_string(),
            });
        }
        let (status, answer) = match &outcome {
            Outcome::Completed(text) => (SessionStatus::Completed, Some(text.clone())),
            Outcome::Failed => (SessionStatus::Failed, None),
            Outcome::ProviderError => (SessionStatus::ProviderError, None),
            Outcome::Interrupted => (SessionStatus::Interrupted, None),
            Outcome::Checked => (SessionStatus::Completed, None),
        };
        // Best effort: a journal that cannot take the end marker was already reported.
        let _ = self
            .record(&Record::TaskEnd {
                status,
                answer: answer.clone(),
            })
            .await;
        let report = self.report.take();
        self.emitter
            .emit(Event::TaskCompleted {
                status,
                answer,
                report,
            })
            .await;
        outcome
    }

    /// A check the person configured (a plan run's lint or tests): run like a model's command —
    /// the session's sandbox and scrubbed environment, killed by an interrupt — and journaled
    /// before and after, but not part of the conversation. Rules and approvals, which guard the
    /// model's actions, do not apply to the person's own command.
    async fn run_check(
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
        let mut ctx = self.tool_context(cancel, None);
        let (watch, mut started) = self.watch(None);
        let tag = watch.tag.1.clone();
        ctx.watch = Some(watch);
        let mut processes = Vec::new();
        let running = cox_tools::shell::run_line(&command, CHECK_TIMEOUT_MS, &ctx);
        tokio::pin!(running);
        let output = loop {
            tokio::select! {
                output = &mut running => break output,
                Some(pid) = started.recv() => {
                    processes.extend(spawned(&mut self.journal, &self.config.settings.home, &self.id, None, &tag, pid));
                }
            }
        };
        drop(processes);
        let output = self.redacted(output);
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

    /// Puts the task's input into the conversation: a prompt, or a resumed session's pending calls
    /// (cut-short calls get their notice, owed calls run) and optional prompt.
    async fn begin(
        &mut self,
        task: Task,
        cancel: &CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, Reply)>,
    ) -> Result<(), JournalFailed> {
        let prompt = match task {
            Task::Prompt(text) => Some(text),
            // Checks never reach here (`run_task` runs them apart).
            Task::Check { .. } => None,
            Task::Resume(Resume { pending, prompt }) => {
                let mut owed = Vec::new();
                for (call, started) in pending {
                    if started {
                        let output = ToolOutput::error(CUT_SHORT);
                        self.finish_call(&call, output).await?;
                    } else {
                        owed.push(call);
                    }
                }
                self.run_calls(owed, cancel, answers).await?;
                prompt
            }
        };
        if let Some(text) = prompt {
            self.record(&Record::User { text: text.clone() }).await?;
            if self.pinned.task.is_none() {
                self.pinned.task = Some(text.clone());
                self.render_instructions();
            }
            self.history.push(Item::User { text });
        }
        Ok(())
    }

    async fn run_turns(
        &mut self,
        cancel: &CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, Reply)>,
    ) -> Outcome {
        // Responses cut short by a pause do not count: the limit is on the model's own turns.
        let mut used = 0;
        let mut empty_in_a_row = 0;
        while used < self.config.settings.max_turns {
            self.turn += 1;
            let turn = self.turn;
            self.emitter.emit(Event::TurnStarted { turn }).await;
            // Read before the barrier: a pause or steer from here on cuts the request short.
            let epoch = self.gate.epoch();
            if self.barrier(cancel).await.is_err() {
                return Outcome::Failed;
            }
            if cancel.is_cancelled() {
                self.emitter.emit(Event::TurnCompleted { turn }).await;
                return Outcome::Interrupted;
            }
            if let Err(message) = self.maybe_compact().await {
                // Sent, it would only come back as a context-length error.
                self.emitter
                    .emit(Event::Error {
                        kind: ErrorKind::ContextOverflow,
                        message,
                    })
                    .await;
                self.emitter.emit(Event::TurnCompleted { turn }).await;
                return Outcome::Failed;
            }
            tracing::debug!(turn, items = self.history.len(), "model request");
            let mut result = self.stream(&self.request(), cancel, epoch).await;
            if let Err(StreamEnd::Failed(ModelError::ContextOverflow { message })) = &result {
                // The provider counts differently than we estimated: compact, and try once more
                // — unless compaction could not shrink it, when the same request would only fail
                // the same way.
                let message = message.clone();
                let before = self.request_size();
                self.compact(CompactReason::Overflow).await;
                if self.request_size() >= before {
                    self.emitter
                        .emit(Event::Error {
                            kind: ErrorKind::ContextOverflow,
                            message: format!(
                                "the provider says the request does not fit ({message}), and \
                                 compaction could not shrink it; nothing more was sent. Start a new \
                                 session, lower max_output_tokens, or use a model with a larger window"
                            ),
                        })
                        .await;
                    self.emitter.emit(Event::TurnCompleted { turn }).await;
                    return Outcome::ProviderError;
                }
                result = self.stream(&self.request(), cancel, epoch).await;
            }
            let response = match result {
                Ok(response) => response,
                Err(StreamEnd::Paused(partial)) => {
                    // The next turn waits at the barrier.
                    if self.keep_cut(partial).await.is_err() {
                        return Outcome::Failed;
                    }
                    self.emitter.emit(Event::TurnCompleted { turn }).await;
                    continue;
                }
                Err(StreamEnd::Cancelled(partial)) => {
                    if self.keep_cut(partial).await.is_err() {
                        return Outcome::Failed;
                    }
                    self.emitter.emit(Event::TurnCompleted { turn }).await;
                    return Outcome::Interrupted;
                }
                Err(StreamEnd::Failed(error)) => {
                    tracing::warn!(turn, kind = ?error.kind(), "model request failed");
                    self.emitter
                        .emit(Event::Error {
                            kind: error.kind(),
                            message: error.to_string(),
                        })
                        .await;
                    self.emitter.emit(Event::TurnCompleted { turn }).await;
                    return Outcome::ProviderError;
                }
            };
            used += 1;
            let mut items = response.items();
            let ModelResponse {
                text,
                mut tool_calls,
                usage,
                mut output,
                ending,
            } = response;
            tracing::info!(
                turn,
                tool_calls = tool_calls.len(),
                input_tokens = usage.map(|u| u.input_tokens),
                output_tokens = usage.map(|u| u.output_tokens),
                ending = match &ending {
                    cox_model::Ending::Complete => "complete",
                    cox_model::Ending::Truncated { .. } => "truncated",
                    cox_model::Ending::Refused { .. } => "refused",
                },
                "model response"
            );
            // A call cut off by the output limit has arguments that do not parse: it never runs
            // (nor is it owed on resume); the model is told which.
            let mut cut_calls = Vec::new();
            if matches!(ending, cox_model::Ending::Truncated { .. }) {
                let whole = |call: &ToolCall| {
                    serde_json::from_str::<serde_json::Value>(&call.arguments).is_ok()
                };
                cut_calls = tool_calls
                    .iter()
                    .filter(|c| !whole(c))
                    .map(|c| c.name.clone())
                    .collect();
                tool_calls.retain(whole);
                let kept = |item: &Item| !matches!(item, Item::ToolCall(c) if !whole(c));
                items.retain(kept);
                output.retain(kept);
            }
            let record = Record::Response {
                text: text.clone(),
                tool_calls: tool_calls.clone(),
                usage,
                output,
            };
            if self.record(&record).await.is_err() {
                return Outcome::Failed;
            }
            let refused = matches!(ending, cox_model::Ending::Refused { .. });
            // Commentary is progress, each message on its own; then the answer.
            for item in &items {
                if let Item::Commentary { text } = item {
                    self.emitter
                        .emit(Event::AgentMessage { text: text.clone() })
                        .await;
                }
            }
            if !text.is_empty() && !refused {
                self.emitter
                    .emit(Event::AgentMessage { text: text.clone() })
                    .await;
            }
            // Reasoning alone is no answer.
            let said_anything = items
                .iter()
                .any(|item| !matches!(item, Item::Reasoning { .. }));
            // The calls of one response stay together, as the model made them; results follow.
            self.history.extend(items);
            // The provider's count covers everything up to and including this response.
            self.baseline = usage.map(|u| u.input_tokens + u.output_tokens);
            self.counted_items = self.history.len();
            if let Some(usage) = usage {
                self.record_usage(usage).await;
            }
            match ending {
                cox_model::Ending::Refused { text: said } => {
                    let said = if said.trim().is_empty() { text } else { said };
                    self.emitter
                        .emit(Event::Error {
                            kind: ErrorKind::Refused,
                            message: match said.trim() {
                                "" => "the model refused the request (it said nothing more)"
                                    .to_string(),
                                said => format!("the model refused: {said}"),
                            },
                        })
                        .await;
                    self.emitter.emit(Event::TurnCompleted { turn }).await;
                    return Outcome::Failed;
                }
                cox_model::Ending::Truncated { reason } => {
                    self.emitter
                        .emit(Event::Truncated {
                            reason: reason.clone(),
                        })
                        .await;
                    self.warn_model(format!(
                        "the response was cut off by the output limit ({reason}); the model is told and goes on{}",
                        if cut_calls.is_empty() {
                            String::new()
                        } else {
                            format!(" (cut tool calls not run: {})", cut_calls.join(", "))
                        }
                    ))
                    .await;
                    if !tool_calls.is_empty()
                        && self.run_calls(tool_calls, cancel, answers).await.is_err()
                    {
                        return Outcome::Failed;
                    }
                    let note = crate::context::truncated_note(&reason, &cut_calls);
                    if self.note(note).await.is_err() {
                        return Outcome::Failed;
                    }
                    self.emitter.emit(Event::TurnCompleted { turn }).await;
                    if cancel.is_cancelled() {
                        return Outcome::Interrupted;
                    }
                    continue;
                }
                cox_model::Ending::Complete => {}
            }
            if !said_anything {
                empty_in_a_row += 1;
                if empty_in_a_row >= 2 {
                    self.emitter
                        .emit(Event::Error {
                            kind: ErrorKind::EmptyAnswer,
                            message: "the model answered with nothing (no text, no tool call) twice in a row".to_string(),
                        })
                        .await;
                    self.emitter.emit(Event::TurnCompleted { turn }).await;
                    return Outcome::Failed;
                }
                self.warn_model("the model's response was empty; it is asked to go on".to_string())
                    .await;
                if self
                    .note(crate::context::EMPTY_NOTE.to_string())
                    .await
                    .is_err()
                {
                    return Outcome::Failed;
                }
                self.emitter.emit(Event::TurnCompleted { turn }).await;
                continue;
            }
            empty_in_a_row = 0;
            if tool_calls.is_empty() {
                self.emitter.emit(Event::TurnCompleted { turn }).await;
                return Outcome::Completed(text);
            }
            if self.run_calls(tool_calls, cancel, answers).await.is_err() {
                return Outcome::Failed;
            }
            self.emitter.emit(Event::TurnCompleted { turn }).await;
            if cancel.is_cancelled() {
                return Outcome::Interrupted;
            }
        }
        self.emitter
            .emit(Event::Error {
                kind: ErrorKind::MaxTurns,
                message: format!(
                    "stopped after {} model turns without a final answer; allow more with --max-turns N \
                     or -c max_turns=N",
                    self.config.settings.max_turns
                ),
            })
            .await;
        Outcome::Failed
    }

    /// Runs calls in order, each journaled before and after. After an interrupt the rest are not
    /// run (and recorded as such).
    async fn run_calls(
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
            if let Some(violation) = self.violation(&described.touches) {
                tracing::info!(call_id = %call.call_id, rule = %violation.rule_id, "blocked by a rule");
                self.emitter
                    .emit(Event::RuleBlocked {
                        call_id: call.call_id.clone(),
                        rule_id: violation.rule_id.clone(),
                        reason: violation.reason.clone(),
                    })
                    .await;
                let output = ToolOutput::error(format!(
                    "blocked by project rule `{}`: {} ({}). Do it another way that keeps the rule.",
                    violation.rule_id, violation.rule_text, violation.reason
                ));
                self.finish_call(&call, output).await?;
                continue;
            }
            let escalated = match self
                .approve(&call, &described.touches, cancel, answers)
                .await
            {
                Ok(escalated) => escalated,
                Err(refusal) => {
                    tracing::info!(call_id = %call.call_id, "not approved");
                    self.finish_call(&call, ToolOutput::error(refusal)).await?;
                    continue;
                }
            };
            let steered = self.hold(&call, described.acts(), cancel).await?;
            let output = if cancel.is_cancelled() {
                ToolOutput::error("not run: the user interrupted before this call started")
            } else if let Some(directive) = steered {
                ToolOutput::error(format!(
                    "not run: the user steered before this call started (\"{directive}\"); decide again"
                ))
            } else {
                self.record(&Record::ToolStart {
                    call_id: call.call_id.clone(),
                })
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
                output
            };
            self.finish_call(&call, output).await?;
        }
        Ok(())
    }

    /// The project rule a call would break, checked before it runs.
    fn violation(&self, touches: &Touches) -> Option<crate::rules::Violation> {
        if self.config.rules.is_empty() {
            return None;
        }
        if let Some(line) = &touches.command
            && let Some(violation) = self.config.rules.check_command(line)
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

    /// Keeps the text of a response cut short (by a pause or an interrupt) in the conversation,
    /// marked as cut, and journaled.
    async fn keep_cut(&mut self, partial: String) -> Result<(), JournalFailed> {
        if partial.is_empty() {
            return Ok(());
        }
        let text = format!("{partial}{}", crate::context::CUT_MARKER);
        self.record(&Record::Cut { text: text.clone() }).await?;
        self.history.push(Item::Assistant { text });
        Ok(())
    }

    /// Waits at the steering gate, then applies the directives given meanwhile. Returns the last
    /// directive applied, if any.
    async fn barrier(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, JournalFailed> {
        if self.gate.is_paused() {
            self.gate.wait_open(cancel).await;
        }
        let mut last = None;
        for text in self.gate.take_directives() {
            self.record(&Record::Steer { text: text.clone() }).await?;
            self.history.push(Item::User {
                text: crate::context::directive_message(&text),
            });
            self.pinned.directives.push(text.clone());
            self.render_instructions();
            last = Some(text);
        }
        Ok(last)
    }

    /// Before a call starts: with steering on, a write or command is announced and held for the
    /// grace window (a pause in it holds the call at the barrier); every call passes the barrier.
    /// Returns a directive given meanwhile: the call is then not run.
    async fn hold(
        &mut self,
        call: &ToolCall,
        acts: bool,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, JournalFailed> {
        if self.config.options.steerable && acts && self.config.options.steer_grace_ms > 0 {
            // Read before the announcement, so a pause that answers it is never missed.
            let epoch = self.gate.epoch();
            self.emitter
                .emit(Event::ActionPending {
                    call_id: call.call_id.clone(),
                    name: call.name.clone(),
                    grace_ms: self.config.options.steer_grace_ms,
                })
                .await;
            let grace = std::time::Duration::from_millis(self.config.options.steer_grace_ms);
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = self.gate.changed_since(epoch) => {}
                _ = cancel.cancelled() => {}
            }
        }
        self.barrier(cancel).await
    }

    /// Journals a call's result, announces its effects and result, and adds it to the history.
    async fn finish_call(
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
        });
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

    fn request(&self) -> ModelRequest {
        ModelRequest {
            model: self.config.settings.model.clone(),
            instructions: self.instructions.clone(),
            items: self.history.clone(),
            tools: self.tools.specs(),
            session_id: self.id.clone(),
            max_output_tokens: self.config.settings.max_output_tokens,
            output_schema: self.config.output_schema(),
            reasoning: self.config.settings.reasoning.clone(),
            service_tier: self.config.settings.service_tier.clone(),
            verbosity: self.config.settings.verbosity.clone(),
        }
    }

    /// The bytes of the next request's instructions and history, to tell whether compaction
    /// changed anything.
    fn request_size(&self) -> usize {
        self.instructions.len()
            + self
                .history
                .iter()
                .map(crate::context::item_bytes)
                .sum::<usize>()
    }

    /// A note for the model (journaled, so a resumed session has it too).
    async fn note(&mut self, text: String) -> Result<(), JournalFailed> {
        self.record(&Record::Note { text: text.clone() }).await?;
        self.history.push(Item::User { text });
        Ok(())
    }

    /// A warning for the person about the model's response.
    async fn warn_model(&mut self, message: String) {
        tracing::warn!(%message, "model response");
        self.emitter.emit(Event::Warning { message }).await;
    }

    /// Re-renders the system prompt after the pinned block changed.
    fn render_instructions(&mut self) {
        self.instructions = format!("{}{}", self.base_instructions, self.pinned.render());
        self.whole_count.set(None);
    }

    /// Appends to the journal; a failure is reported as an `error` event and stops the task.
    pub(super) async fn record(&mut self, record: &Record) -> Result<(), JournalFailed> {
        match self.journal.append(record) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.emitter
                    .emit(Event::Error {
                        kind: ErrorKind::Journal,
                        message: format!("{error}; stopping before anything goes unrecorded"),
                    })
                    .await;
                Err(JournalFailed)
            }
        }
    }

    /// One model request, its deltas forwarded as events, abandoned at once on interrupt or pause.
    async fn stream(
        &mut self,
        request: &ModelRequest,
        cancel: &CancellationToken,
        epoch: u64,
    ) -> Result<ModelResponse, StreamEnd> {
        let (tx, mut rx) = mpsc::channel(64);
        let client = &self.client;
        let emitter = &mut self.emitter;
        let gate = std::sync::Arc::clone(&self.gate);
        let mut partial = String::new();
        let mut thinking = String::new();
        let response = client.stream(request, tx);
        let forward = async {
            while let Some(event) = rx.recv().await {
                let event = match event {
                    StreamEvent::TextDelta(text) => {
                        partial.push_str(&text);
                        Event::AgentMessageDelta { text }
                    }
                    StreamEvent::ReasoningDelta(text) => {
                        thinking.push_str(&text);
                        Event::ReasoningDelta { text }
                    }
                    StreamEvent::Retrying {
                        attempt,
                        max_attempts,
                        reason,
                        delay,
                    } => {
                        // What the failed attempt streamed is void; the retry streams anew.
                        if !partial.is_empty() || !thinking.is_empty() {
                            emitter
                                .emit(Event::Retracted {
                                    text: std::mem::take(&mut partial),
                                    reasoning: std::mem::take(&mut thinking),
                                })
                                .await;
                        }
                        Event::Retrying {
                            attempt,
                            max_attempts,
                            reason,
                            delay_ms: delay.as_millis() as u64,
                        }
                    }
                };
                emitter.emit(event).await;
            }
        };
        let outcome = tokio::select! {
            (result, ()) = async { tokio::join!(response, forward) } => Some(result),
            _ = cancel.cancelled() => None,
            _ = gate.changed_since(epoch) => None,
        };
        match outcome {
            Some(result) => result.map_err(StreamEnd::Failed),
            None if cancel.is_cancelled() => Err(StreamEnd::Cancelled(partial)),
            None => Err(StreamEnd::Paused(partial)),
        }
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
                output = &mut running => return self.redacted(output),
                Some(pid) = started.recv() => {
                    processes.extend(spawned(&mut self.journal, &self.config.settings.home, &self.id, Some(&call.call_id), &tag, pid));
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

    async fn record_usage(&mut self, usage: Usage) {
        self.usage.input_tokens += usage.input_tokens;
        self.usage.cached_input_tokens += usage.cached_input_tokens;
        self.usage.output_tokens += usage.output_tokens;
        self.emitter
            .emit(Event::Usage {
                input_tokens: usage.input_tokens,
                cached_input_tokens: usage.cached_input_tokens,
                output_tokens: usage.output_tokens,
                context_tokens: usage.input_tokens + usage.output_tokens,
                context_window: self.config.context_window,
                cost_usd: crate::catalog::cost(&self.config.settings.model, &usage),
            })
            .await;
    }
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
