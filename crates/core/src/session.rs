//! The session actor: it alone owns the conversation. Front ends talk to it through a
//! [`SessionHandle`] — [`Op`]s in, [`EventEnvelope`]s out — and learn everything from events.
//!
//! The turn loop: send the history and tool schemas, stream the response (deltas become events),
//! and when the response is complete run its tool calls in order, append their results and go
//! again, until the model answers without calling a tool or `max_turns` is reached. An interrupt
//! cancels the model request or kills the running command at once.

use std::collections::VecDeque;
use std::path::PathBuf;

use cox_model::{ModelClient, ModelError, ModelRequest, ModelResponse, StreamEvent};
use cox_protocol::{
    CallId, ErrorKind, Event, EventEnvelope, Item, Op, SessionId, SessionStatus, ToolCall, Usage,
};
use cox_tools::{Effect, Question, ToolContext, ToolOutput, ToolRegistry};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Everything a session needs besides its model client and tools.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub provider: String,
    pub model: String,
    pub cwd: PathBuf,
    pub max_turns: u32,
    pub max_output_tokens: Option<u32>,
    pub tool_output_max_bytes: usize,
    pub context_window: Option<u64>,
    /// Environment variables kept from tool processes (provider keys).
    pub hidden_env: Vec<String>,
    /// A person is there to answer `ask_user` (through `Op::Answer`).
    pub interactive: bool,
}

/// A front end's end of a session.
pub struct SessionHandle {
    pub id: SessionId,
    ops: mpsc::Sender<Op>,
    events: mpsc::Receiver<EventEnvelope>,
}

impl SessionHandle {
    /// Sends an operation; false when the session has ended.
    pub async fn submit(&self, op: Op) -> bool {
        self.ops.send(op).await.is_ok()
    }

    /// The next event; `None` once the session has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<EventEnvelope> {
        self.events.recv().await
    }

    /// A sender for ops that can be moved to another task (a signal handler, a stdin reader).
    pub fn op_sender(&self) -> mpsc::Sender<Op> {
        self.ops.clone()
    }
}

/// Starts a session actor on the current tokio runtime.
pub fn spawn(
    config: SessionConfig,
    client: Box<dyn ModelClient>,
    tools: ToolRegistry,
) -> SessionHandle {
    let id = SessionId(uuid::Uuid::now_v7().to_string());
    let (ops_tx, ops_rx) = mpsc::channel(32);
    let (events_tx, events_rx) = mpsc::channel(256);
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let instructions = crate::prompt::system_prompt(&config.cwd, &tools.names(), &date[..10]);
    let session = Session {
        id: id.clone(),
        config,
        client,
        tools,
        instructions,
        history: Vec::new(),
        emitter: Emitter {
            tx: events_tx,
            seq: 0,
        },
        turn: 0,
        usage: Usage::default(),
    };
    tokio::spawn(session.run(ops_rx));
    SessionHandle {
        id,
        ops: ops_tx,
        events: events_rx,
    }
}

struct Emitter {
    tx: mpsc::Sender<EventEnvelope>,
    seq: u64,
}

impl Emitter {
    async fn emit(&mut self, event: Event) {
        self.seq += 1;
        let envelope = EventEnvelope {
            seq: self.seq,
            ts: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            event,
        };
        // A front end that went away does not stop the session from finishing its work cleanly.
        let _ = self.tx.send(envelope).await;
    }
}

/// How one task (one user input) ended.
enum Outcome {
    Completed(String),
    Failed,
    ProviderError,
    Interrupted,
}

enum StreamEnd {
    Cancelled,
    Failed(ModelError),
}

struct Session {
    id: SessionId,
    config: SessionConfig,
    client: Box<dyn ModelClient>,
    tools: ToolRegistry,
    instructions: String,
    history: Vec<Item>,
    emitter: Emitter,
    turn: u32,
    usage: Usage,
}

impl Session {
    async fn run(mut self, mut ops: mpsc::Receiver<Op>) {
        self.emitter
            .emit(Event::SessionStarted {
                session_id: self.id.clone(),
                provider: self.config.provider.clone(),
                model: self.config.model.clone(),
                cwd: self.config.cwd.display().to_string(),
            })
            .await;
        let mut status = SessionStatus::Completed;
        let mut answer = None;
        let mut queued: VecDeque<String> = VecDeque::new();
        let mut shutting_down = false;
        let mut ops_open = true;
        loop {
            let text = match queued.pop_front() {
                Some(text) => text,
                None if shutting_down || !ops_open => break,
                None => match ops.recv().await {
                    Some(Op::UserInput { text }) => text,
                    Some(Op::Interrupt | Op::Answer { .. }) => continue,
                    Some(Op::Shutdown) | None => break,
                },
            };
            let cancel = CancellationToken::new();
            let (answers_tx, mut answers_rx) = mpsc::channel(4);
            let outcome = {
                let task = self.run_task(text, cancel.clone(), &mut answers_rx);
                tokio::pin!(task);
                loop {
                    tokio::select! {
                        outcome = &mut task => break outcome,
                        op = ops.recv(), if ops_open => match op {
                            Some(Op::Interrupt) => cancel.cancel(),
                            Some(Op::Answer { call_id, text }) => {
                                let _ = answers_tx.try_send((call_id, text));
                            }
                            Some(Op::UserInput { text }) => queued.push_back(text),
                            Some(Op::Shutdown) => shutting_down = true,
                            None => {
                                // Nobody is listening any more: stop now rather than work unseen.
                                ops_open = false;
                                cancel.cancel();
                            }
                        },
                    }
                }
            };
            (status, answer) = match outcome {
                Outcome::Completed(text) => (SessionStatus::Completed, Some(text)),
                Outcome::Failed => (SessionStatus::Failed, None),
                Outcome::ProviderError => (SessionStatus::ProviderError, None),
                Outcome::Interrupted => {
                    // An interrupted task ends a headless session; the queued input is dropped.
                    queued.clear();
                    (SessionStatus::Interrupted, None)
                }
            };
        }
        let usage = self.usage;
        self.emitter
            .emit(Event::SessionCompleted {
                status,
                answer,
                usage,
            })
            .await;
    }

    async fn run_task(
        &mut self,
        text: String,
        cancel: CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, String)>,
    ) -> Outcome {
        self.history.push(Item::User { text });
        for _ in 0..self.config.max_turns {
            self.turn += 1;
            let turn = self.turn;
            self.emitter.emit(Event::TurnStarted { turn }).await;
            let request = ModelRequest {
                model: self.config.model.clone(),
                instructions: self.instructions.clone(),
                items: self.history.clone(),
                tools: self.tools.specs(),
                session_id: self.id.clone(),
                max_output_tokens: self.config.max_output_tokens,
            };
            let response = match self.stream(&request, &cancel).await {
                Ok(response) => response,
                Err(StreamEnd::Cancelled) => {
                    self.emitter.emit(Event::TurnCompleted { turn }).await;
                    return Outcome::Interrupted;
                }
                Err(StreamEnd::Failed(error)) => {
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
            let ModelResponse {
                text,
                tool_calls,
                usage,
            } = response;
            if !text.is_empty() {
                self.emitter
                    .emit(Event::AgentMessage { text: text.clone() })
                    .await;
                self.history.push(Item::Assistant { text: text.clone() });
            }
            if let Some(usage) = usage {
                self.record_usage(usage).await;
            }
            if tool_calls.is_empty() {
                self.emitter.emit(Event::TurnCompleted { turn }).await;
                return Outcome::Completed(text);
            }
            for call in tool_calls {
                self.history.push(Item::ToolCall(call.clone()));
                self.emitter
                    .emit(Event::ToolCall {
                        call_id: call.call_id.clone(),
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                    })
                    .await;
                let result = if cancel.is_cancelled() {
                    cox_tools::ToolOutput::error(
                        "not run: the user interrupted before this call started",
                    )
                } else {
                    self.run_tool(&call, &cancel, answers).await
                };
                match result.effect.clone() {
                    Some(Effect::Diff(diff)) => {
                        self.emitter
                            .emit(Event::PatchApplied {
                                call_id: call.call_id.clone(),
                                diff,
                            })
                            .await;
                    }
                    Some(Effect::Plan { steps, explanation }) => {
                        self.emitter
                            .emit(Event::PlanUpdated { steps, explanation })
                            .await;
                    }
                    None => {}
                }
                self.emitter
                    .emit(Event::ToolResult {
                        call_id: call.call_id.clone(),
                        ok: result.ok,
                        output: result.output.clone(),
                    })
                    .await;
                self.history.push(Item::ToolResult {
                    call_id: call.call_id,
                    ok: result.ok,
                    output: result.output,
                });
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
                    self.config.max_turns
                ),
            })
            .await;
        Outcome::Failed
    }

    /// One model request, its deltas forwarded as events, abandoned at once on interrupt.
    async fn stream(
        &mut self,
        request: &ModelRequest,
        cancel: &CancellationToken,
    ) -> Result<ModelResponse, StreamEnd> {
        let (tx, mut rx) = mpsc::channel(64);
        let client = &self.client;
        let emitter = &mut self.emitter;
        let response = client.stream(request, tx);
        let forward = async move {
            while let Some(event) = rx.recv().await {
                let event = match event {
                    StreamEvent::TextDelta(text) => Event::AgentMessageDelta { text },
                    StreamEvent::ReasoningDelta(text) => Event::ReasoningDelta { text },
                    StreamEvent::Retrying {
                        attempt,
                        max_attempts,
                        reason,
                        delay,
                    } => Event::Retrying {
                        attempt,
                        max_attempts,
                        reason,
                        delay_ms: delay.as_millis() as u64,
                    },
                };
                emitter.emit(event).await;
            }
        };
        tokio::select! {
            (result, ()) = async { tokio::join!(response, forward) } => result.map_err(StreamEnd::Failed),
            _ = cancel.cancelled() => Err(StreamEnd::Cancelled),
        }
    }

    /// Runs one tool call. When a person can answer (`interactive`), an `ask_user` question is
    /// announced as `question_asked` and the call waits for the matching `Op::Answer`.
    async fn run_tool(
        &mut self,
        call: &ToolCall,
        cancel: &CancellationToken,
        answers: &mut mpsc::Receiver<(CallId, String)>,
    ) -> ToolOutput {
        let (asker, mut questions) = mpsc::channel::<Question>(1);
        let ctx = ToolContext {
            cwd: self.config.cwd.clone(),
            workspace: self.config.cwd.clone(),
            writable_roots: vec![self.config.cwd.clone()],
            max_output_bytes: self.config.tool_output_max_bytes,
            hidden_env: self.config.hidden_env.clone(),
            asker: self.config.interactive.then_some(asker),
            cancel: cancel.clone(),
        };
        let running = self.tools.call(&call.name, &call.arguments, &ctx);
        tokio::pin!(running);
        loop {
            tokio::select! {
                output = &mut running => return output,
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
                                Some((call_id, text)) if call_id == call.call_id => break Some(text),
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
            })
            .await;
    }
}
