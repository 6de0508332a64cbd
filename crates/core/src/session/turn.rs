//! The turn loop: send the history and tool schemas, stream the response (deltas become events),
//! and when the response is complete, journal it, see how it ended, and run its tool calls in
//! order (`calls.rs`) — then go again, until the model answers without calling a tool or
//! `max_turns` is reached.

use cox_model::{ModelError, ModelRequest, ModelResponse, StreamEvent};
use cox_protocol::{CallId, CompactReason, ErrorKind, Event, Item, SessionStatus, ToolCall, Usage};
use cox_tools::ToolOutput;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Outcome, Reply, Resume, Session, Task};
use crate::journal::Record;
use crate::resume::CUT_SHORT;

enum StreamEnd {
    /// Interrupted; the response's text so far.
    Cancelled(String),
    /// A pause or steer cut the response short; its text so far.
    Paused(String),
    Failed(ModelError),
}

/// Drops the calls a truncated response cut off (their arguments do not parse): they never run,
/// nor are they owed on resume. Their names, for the model.
fn drop_cut_calls(items: &mut Vec<Item>) -> Vec<String> {
    let cut = |item: &Item| {
        matches!(item, Item::ToolCall(call)
            if serde_json::from_str::<serde_json::Value>(&call.arguments).is_err())
    };
    let names = items
        .iter()
        .filter(|item| cut(item))
        .filter_map(|item| match item {
            Item::ToolCall(call) => Some(call.name.clone()),
            _ => None,
        })
        .collect();
    items.retain(|item| !cut(item));
    names
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
        if let Err(outcome) = self.mcp_ready(&cancel).await {
            return outcome;
        }
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
                        let mut output = ToolOutput::error(CUT_SHORT);
                        // What it changed before cox stopped is its own, rules and all.
                        if let Some(held) = self.hold_store().await {
                            let action = format!("{} (cut short when cox stopped)", call.name);
                            let effects =
                                self.after_action(held, Some(&call.call_id), action).await;
                            output = self.judged(&call.call_id, effects, output).await;
                        }
                        self.finish_call(&call, output).await?;
                    } else {
                        owed.push(call);
                    }
                }
                self.run_calls(owed, cancel, answers).await?;
                prompt
            }
        };
        self.tell_lost_terminals().await?;
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
            self.mcp_refresh();
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
            let had_output = !response.output.is_empty();
            let mut items = response.items();
            tracing::info!(
                turn,
                tool_calls = response.tool_calls.len(),
                input_tokens = response.usage.map(|u| u.input_tokens),
                output_tokens = response.usage.map(|u| u.output_tokens),
                ending = response.ending.name(),
                "model response"
            );
            let ModelResponse {
                text,
                usage,
                ending,
                ..
            } = response;
            let truncated = matches!(ending, cox_model::Ending::Truncated { .. });
            let cut_calls = if truncated {
                drop_cut_calls(&mut items)
            } else {
                Vec::new()
            };
            let tool_calls: Vec<ToolCall> = items
                .iter()
                .filter_map(|item| match item {
                    Item::ToolCall(call) => Some(call.clone()),
                    _ => None,
                })
                .collect();
            let record = Record::Response {
                text: text.clone(),
                tool_calls: tool_calls.clone(),
                usage,
                output: if had_output {
                    items.clone()
                } else {
                    Vec::new()
                },
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
                    self.refused(if said.trim().is_empty() { text } else { said })
                        .await;
                    self.emitter.emit(Event::TurnCompleted { turn }).await;
                    return Outcome::Failed;
                }
                cox_model::Ending::Truncated { reason } => {
                    let went_on = self
                        .go_on_after_truncation(&reason, &cut_calls, tool_calls, cancel, answers)
                        .await;
                    if went_on.is_err() {
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

    /// The model declined: an error that says what it said.
    async fn refused(&mut self, said: String) {
        self.emitter
            .emit(Event::Error {
                kind: ErrorKind::Refused,
                message: match said.trim() {
                    "" => "the model refused the request (it said nothing more)".to_string(),
                    said => format!("the model refused: {said}"),
                },
            })
            .await;
    }

    /// A response cut by the output limit: say so, run the calls that came whole, and tell the
    /// model, which goes on in the next turn.
    async fn go_on_after_truncation(
        &mut self,
        reason: &str,
        cut_calls: &[String],
        tool_calls: Vec<ToolCall>,
        cancel: &CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, Reply)>,
    ) -> Result<(), JournalFailed> {
        self.emitter
            .emit(Event::Truncated {
                reason: reason.to_string(),
            })
            .await;
        let not_run = if cut_calls.is_empty() {
            String::new()
        } else {
            format!(" (cut tool calls not run: {})", cut_calls.join(", "))
        };
        self.warn_model(format!(
            "the response was cut off by the output limit ({reason}); the model is told and goes on{not_run}"
        ))
        .await;
        if !tool_calls.is_empty() {
            self.run_calls(tool_calls, cancel, answers).await?;
        }
        self.note(crate::context::truncated_note(reason, cut_calls))
            .await
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
    pub(super) async fn barrier(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, JournalFailed> {
        if self.gate.is_paused() {
            self.gate.wait_open(cancel).await;
        }
        for record in self.gate.take_records() {
            self.record(&record).await?;
        }
        for text in self.gate.take_notes() {
            self.note(text).await?;
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
    pub(super) async fn note(&mut self, text: String) -> Result<(), JournalFailed> {
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
    pub(super) fn render_instructions(&mut self) {
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
