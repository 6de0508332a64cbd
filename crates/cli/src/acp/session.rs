//! One ACP session: the cox session behind it, the prompt in flight, and the pump that turns the
//! session's events into `session/update`s, permission requests and the prompt's answer.
//!
//! Settings (mode, model, thought level) change between prompts by closing the cox session and
//! reopening it from its journal with the new settings, so the conversation, pinned rules and
//! directives carry over; a change while a prompt runs is refused, naming why.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, LoadSessionRequest, LoadSessionResponse, NewSessionRequest,
    NewSessionResponse, PromptRequest, PromptResponse, RequestPermissionOutcome,
    RequestPermissionRequest, SessionNotification, SessionUpdate, SetSessionConfigOptionRequest,
    SetSessionConfigOptionResponse, SetSessionModeRequest, SetSessionModeResponse, ToolCallStatus,
    ToolCallUpdate, ToolCallUpdateFields,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Client, Error as AcpError, ErrorCode};
use cox_core::{Config, RunOptions, SessionHandle};
use cox_protocol::{ApprovalDecision, CallId, Event, Op};
use tokio::sync::{mpsc, oneshot};

use super::inputs::{mcp_servers, prompt_text, replay, workspace};
use super::settings::{EFFORTS, MODES, Settings, config_options, modes, permission_options};
use super::updates::{Ending, Translator, text_content};
use super::{Server, error, failure};
use crate::args::{ApprovalArg, SandboxArg};

/// One ACP session.
pub struct Slot {
    pub id: String,
    cwd: PathBuf,
    state: Mutex<State>,
}

struct State {
    settings: Settings,
    /// MCP servers the client gave (`session/new`, `session/load`), started with the config's.
    mcp: BTreeMap<String, cox_core::config::McpServerConfig>,
    live: Option<Live>,
    /// A plan run a `/run` prompt started: while it runs, steering and cancel go to it.
    run: Option<mpsc::Sender<Op>>,
    prompt: Option<Responder<PromptResponse>>,
    translator: Translator,
    /// Extension requests waiting for the session to confirm (the barrier is up, …).
    waiters: Vec<(super::ext::Wait, oneshot::Sender<()>)>,
}

/// The running cox session.
struct Live {
    ops: mpsc::Sender<Op>,
    ended: oneshot::Receiver<()>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data: every update is a
        // single assignment.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where ops go: the plan run while one runs, else the session.
    pub fn ops(&self) -> Option<mpsc::Sender<Op>> {
        let state = self.lock();
        state
            .run
            .clone()
            .or_else(|| state.live.as_ref().map(|l| l.ops.clone()))
    }

    pub fn prompt_running(&self) -> bool {
        self.lock().prompt.is_some()
    }

    /// Registers an extension request that waits for `wait` (see `ext`).
    pub fn wait_for(&self, wait: super::ext::Wait) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.lock().waiters.push((wait, tx));
        rx
    }

    pub fn cancel(&self) {
        if self.prompt_running()
            && let Some(ops) = self.ops()
        {
            let _ = ops.try_send(Op::Interrupt);
        }
    }

    /// Ends the cox session (its commands with it) and waits until it has.
    pub async fn close(&self) {
        // A plan run ends first: it is interrupted, and its pump answers the prompt.
        let run = self.lock().run.take();
        if let Some(run) = run {
            let _ = run.send(Op::Interrupt).await;
        }
        let live = self.lock().live.take();
        if let Some(live) = live {
            let _ = live.ops.send(Op::Interrupt).await;
            let _ = live.ops.send(Op::Shutdown).await;
            let _ = live.ended.await;
        }
    }
}

impl Server {
    fn default_settings(&self) -> Result<Settings, AcpError> {
        let config =
            Config::load(&self.home, &crate::exec::overrides(&self.shared)).map_err(failure)?;
        let mode = match (self.shared.sandbox, self.shared.approval) {
            (SandboxArg::FullAccess, _) => "full-access",
            (SandboxArg::ReadOnly, _) => "read-only",
            (_, Some(ApprovalArg::Untrusted)) => "untrusted",
            _ => "workspace",
        };
        Ok(Settings {
            mode: mode.to_string(),
            model: config.model,
            effort: "default".to_string(),
        })
    }

    /// The configuration and run options `settings` give.
    fn launch(
        &self,
        settings: &Settings,
        mcp: &BTreeMap<String, cox_core::config::McpServerConfig>,
    ) -> Result<(Config, RunOptions), AcpError> {
        let mut overrides = crate::exec::overrides(&self.shared);
        overrides.model = Some(settings.model.clone());
        if settings.effort != "default" {
            overrides
                .settings
                .push(format!("model_reasoning_effort=\"{}\"", settings.effort));
        }
        let mut config = Config::load(&self.home, &overrides).map_err(failure)?;
        config
            .mcp_servers
            .extend(cox_core::config::mcp_servers(mcp).map_err(failure)?);
        let mut shared = self.shared.clone();
        let (sandbox, approval) = match settings.mode.as_str() {
            "read-only" => (SandboxArg::ReadOnly, ApprovalArg::OnRequest),
            "untrusted" => (SandboxArg::WorkspaceWrite, ApprovalArg::Untrusted),
            "full-access" => (SandboxArg::FullAccess, ApprovalArg::Never),
            _ => (
                SandboxArg::WorkspaceWrite,
                self.shared.approval.unwrap_or(ApprovalArg::OnRequest),
            ),
        };
        shared.sandbox = sandbox;
        shared.approval = Some(approval);
        let mut options = crate::exec::run_options(&shared).map_err(failure)?;
        // The client is the person: approvals and questions go to it.
        options.interactive = true;
        options.one_shot = false;
        Ok((config, options))
    }

    pub fn new_session(
        self: &Arc<Self>,
        request: NewSessionRequest,
        cx: ConnectionTo<Client>,
    ) -> Result<NewSessionResponse, AcpError> {
        let cwd = workspace(&request.cwd)?;
        let mcp = mcp_servers(&request.mcp_servers)?;
        let settings = self.default_settings()?;
        let (config, options) = self.launch(&settings, &mcp)?;
        let handle = cox_core::start(&config, cwd.clone(), options).map_err(failure)?;
        let id = handle.id.0.clone();
        let slot = self.insert(id.clone(), cwd, settings.clone(), mcp);
        slot.attach(handle, cx);
        Ok(NewSessionResponse::new(id)
            .modes(modes(&settings))
            .config_options(config_options(&settings)))
    }

    fn insert(
        &self,
        id: String,
        cwd: PathBuf,
        settings: Settings,
        mcp: BTreeMap<String, cox_core::config::McpServerConfig>,
    ) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            id: id.clone(),
            cwd: cwd.clone(),
            state: Mutex::new(State {
                settings,
                mcp,
                live: None,
                run: None,
                prompt: None,
                translator: Translator::new(cwd),
                waiters: Vec::new(),
            }),
        });
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(id, slot.clone());
        }
        slot
    }

    /// `session/load`: the recorded conversation is replayed as updates, then the session is
    /// open again for prompts (answered after the replay, as the protocol asks).
    pub fn load_session(
        self: &Arc<Self>,
        request: LoadSessionRequest,
        responder: Responder<LoadSessionResponse>,
        cx: ConnectionTo<Client>,
    ) -> Result<(), AcpError> {
        let result = (|| {
            let id = request.session_id.0.to_string();
            if self.slot(&id).is_ok() {
                return Err(error(
                    ErrorCode::INVALID_PARAMS,
                    format!("session `{id}` is already open in this connection"),
                ));
            }
            let path = cox_core::journal::find(&self.home, Some(&id)).map_err(|e| {
                error(
                    ErrorCode::RESOURCE_NOT_FOUND,
                    crate::exit::Failure::from(e).message,
                )
            })?;
            let loaded = cox_core::journal::load(&path).map_err(failure)?;
            let Some((_, _, recorded_cwd, _, _)) = loaded.header() else {
                return Err(error(
                    ErrorCode::INTERNAL_ERROR,
                    format!("{} has no session header", path.display()),
                ));
            };
            let cwd = PathBuf::from(recorded_cwd);
            let mcp = mcp_servers(&request.mcp_servers)?;
            let settings = self.default_settings()?;
            let (config, options) = self.launch(&settings, &mcp)?;
            let restored = cox_core::resume::restore(&loaded.records);
            for update in replay(&cwd, &restored.history, restored.plan.as_deref()) {
                cx.send_notification(SessionNotification::new(id.clone(), update))?;
            }
            let handle = cox_core::reopen(&config, loaded, options, cox_core::PlanRun::default())
                .map_err(failure)?;
            let slot = self.insert(id, cwd, settings.clone(), mcp);
            slot.attach(handle, cx.clone());
            Ok(LoadSessionResponse::new()
                .modes(modes(&settings))
                .config_options(config_options(&settings)))
        })();
        let loaded = result.is_ok();
        responder.respond_with_result(result)?;
        if loaded {
            let id = request.session_id.0.to_string();
            cx.send_notification(SessionNotification::new(id, super::plan_run::advertised()))?;
        }
        Ok(())
    }

    pub fn prompt(
        &self,
        request: PromptRequest,
        responder: Responder<PromptResponse>,
        cx: ConnectionTo<Client>,
    ) -> Result<(), AcpError> {
        let slot = match self.slot(&request.session_id.0) {
            Ok(slot) => slot,
            Err(e) => return responder.respond_with_error(e),
        };
        let text = match prompt_text(&request.prompt, &slot.cwd) {
            Ok(text) => text,
            Err(e) => return responder.respond_with_error(e),
        };
        if slot.prompt_running() {
            return responder.respond_with_error(error(
                ErrorCode::INVALID_REQUEST,
                "a prompt is already running in this session; wait for it or send session/cancel",
            ));
        }
        if let Some(request) = super::plan_run::parse(&text, &slot.cwd) {
            return match request.and_then(|r| self.start_plan_run(&slot, &r)) {
                Ok((handle, lock)) => {
                    let mut state = slot.lock();
                    state.translator.start_prompt();
                    state.prompt = Some(responder);
                    drop(state);
                    slot.attach_run(handle, lock, cx);
                    Ok(())
                }
                Err(e) => responder.respond_with_error(e),
            };
        }
        let mut state = slot.lock();
        let Some(ops) = state.live.as_ref().map(|l| l.ops.clone()) else {
            drop(state);
            return responder.respond_with_error(error(
                ErrorCode::INTERNAL_ERROR,
                "the session is not running (it is being reopened, or it ended)",
            ));
        };
        if ops.try_send(Op::UserInput { text }).is_err() {
            drop(state);
            return responder.respond_with_error(error(
                ErrorCode::INTERNAL_ERROR,
                "the session stopped taking prompts",
            ));
        }
        state.translator.start_prompt();
        state.prompt = Some(responder);
        Ok(())
    }

    /// Starts a `/run` prompt's plan run with the session's settings.
    fn start_plan_run(
        &self,
        slot: &Slot,
        request: &super::plan_run::Request,
    ) -> Result<(SessionHandle, cox_core::lock::Lock), AcpError> {
        let (settings, mcp) = {
            let state = slot.lock();
            (state.settings.clone(), state.mcp.clone())
        };
        let (config, options) = self.launch(&settings, &mcp)?;
        super::plan_run::start(request, &slot.cwd, &config, options)
    }

    pub fn set_mode(
        self: &Arc<Self>,
        request: SetSessionModeRequest,
        responder: Responder<SetSessionModeResponse>,
        cx: ConnectionTo<Client>,
    ) -> Result<(), AcpError> {
        let mode = request.mode_id.0.to_string();
        if !MODES.iter().any(|(id, ..)| *id == mode) {
            return responder.respond_with_error(error(
                ErrorCode::INVALID_PARAMS,
                format!("unknown mode `{mode}`; the session's modes list the ones cox has"),
            ));
        }
        let server = self.clone();
        let id = request.session_id.0.to_string();
        cx.clone().spawn(async move {
            let result = server
                .change(&id, cx, |s| s.mode = mode)
                .await
                .map(|_| SetSessionModeResponse::new());
            responder.respond_with_result(result)
        })
    }

    pub fn set_config_option(
        self: &Arc<Self>,
        request: SetSessionConfigOptionRequest,
        responder: Responder<SetSessionConfigOptionResponse>,
        cx: ConnectionTo<Client>,
    ) -> Result<(), AcpError> {
        let Some(value) = request.value.as_value_id().map(|v| v.0.to_string()) else {
            return responder.respond_with_error(error(
                ErrorCode::INVALID_PARAMS,
                "cox's config options take a value id, not a boolean",
            ));
        };
        let option = request.config_id.0.to_string();
        let change: Box<dyn FnOnce(&mut Settings) + Send> = match option.as_str() {
            "mode" if MODES.iter().any(|(id, ..)| *id == value) => {
                Box::new(move |s| s.mode = value)
            }
            // Any model the provider serves: local servers name their own.
            "model" if !value.trim().is_empty() => Box::new(move |s| s.model = value),
            "thought_level" if EFFORTS.contains(&value.as_str()) => {
                Box::new(move |s| s.effort = value)
            }
            "mode" | "model" | "thought_level" => {
                return responder.respond_with_error(error(
                    ErrorCode::INVALID_PARAMS,
                    format!("`{value}` is not a value of `{option}`; the session's config options list them"),
                ));
            }
            _ => {
                return responder.respond_with_error(error(
                    ErrorCode::INVALID_PARAMS,
                    format!(
                        "cox has no config option `{option}` (it has mode, model, thought_level)"
                    ),
                ));
            }
        };
        let server = self.clone();
        let id = request.session_id.0.to_string();
        cx.clone().spawn(async move {
            let result = server
                .change(&id, cx, change)
                .await
                .map(|settings| SetSessionConfigOptionResponse::new(config_options(&settings)));
            responder.respond_with_result(result)
        })
    }

    /// Applies a settings change: the cox session is closed and reopened from its journal.
    async fn change(
        &self,
        id: &str,
        cx: ConnectionTo<Client>,
        change: impl FnOnce(&mut Settings),
    ) -> Result<Settings, AcpError> {
        let slot = self.slot(id)?;
        let (settings, mcp) = {
            let state = slot.lock();
            if state.prompt.is_some() {
                return Err(error(
                    ErrorCode::INVALID_REQUEST,
                    "a prompt is running; change the session's settings between prompts",
                ));
            }
            let mut settings = state.settings.clone();
            change(&mut settings);
            (settings, state.mcp.clone())
        };
        // Checked before the running session is closed: a bad model name keeps the old one.
        let (config, options) = self.launch(&settings, &mcp)?;
        slot.close().await;
        let path = cox_core::journal::find(&self.home, Some(id)).map_err(failure)?;
        let loaded = cox_core::journal::load(&path).map_err(failure)?;
        let handle = cox_core::reopen(&config, loaded, options, cox_core::PlanRun::default())
            .map_err(failure)?;
        slot.lock().settings = settings.clone();
        slot.clone().attach(handle, cx);
        Ok(settings)
    }
}

impl Slot {
    /// Runs the cox session: its events go to the client until it ends.
    fn attach(self: Arc<Self>, mut handle: SessionHandle, cx: ConnectionTo<Client>) {
        let (ended_tx, ended) = oneshot::channel();
        let ops = handle.op_sender();
        self.lock().live = Some(Live {
            ops: ops.clone(),
            ended,
        });
        tokio::spawn(async move {
            while let Some(envelope) = handle.next_event().await {
                if !self.on_event(envelope.event, &ops, &cx) {
                    break;
                }
            }
            // The session is over: a prompt still waiting learns it.
            if let Some(responder) = self.lock().prompt.take() {
                let _ = responder.respond_with_error(error(
                    ErrorCode::INTERNAL_ERROR,
                    "the session ended before the prompt finished",
                ));
            }
            let _ = ended_tx.send(());
        });
    }

    /// Runs a plan run: its events go to the client, and its end answers the prompt.
    fn attach_run(
        self: Arc<Self>,
        mut handle: SessionHandle,
        lock: cox_core::lock::Lock,
        cx: ConnectionTo<Client>,
    ) {
        let ops = handle.op_sender();
        self.lock().run = Some(ops.clone());
        tokio::spawn(async move {
            let mut failed_step = None;
            let mut ended = None;
            while let Some(envelope) = handle.next_event().await {
                match &envelope.event {
                    Event::StepFinished {
                        id,
                        status: cox_protocol::StepState::Failed,
                        ..
                    } => failed_step = Some(id.clone()),
                    Event::SessionCompleted { status, .. } => ended = Some(*status),
                    // A step's task is not the prompt's: the run goes on to the next step.
                    Event::TaskCompleted { .. } => {
                        self.on_step_event(&envelope.event, &cx);
                        continue;
                    }
                    _ => {}
                }
                if !self.on_event(envelope.event, &ops, &cx) {
                    break;
                }
            }
            drop(lock);
            let (responder, mut ending, usage) = {
                let mut state = self.lock();
                state.run = None;
                state.waiters.clear();
                let ending = state
                    .translator
                    .ending(ended.unwrap_or(cox_protocol::SessionStatus::Failed));
                (state.prompt.take(), ending, state.translator.usage())
            };
            if let (Ending::Failed(message), Some(step)) = (&ending, &failed_step) {
                ending = Ending::Failed(format!(
                    "the plan run stopped: step {step} failed ({message})"
                ));
            }
            if let Some(responder) = responder {
                answer(responder, ending, usage);
            }
        });
    }

    /// A step's own end: its status shows in the plan; only its updates are sent.
    fn on_step_event(&self, event: &Event, cx: &ConnectionTo<Client>) {
        let updates = self.lock().translator.updates(event);
        for update in updates {
            self.notify(cx, update);
        }
    }

    /// Handles one event; false once the session has completed.
    fn on_event(
        self: &Arc<Self>,
        event: Event,
        ops: &mpsc::Sender<Op>,
        cx: &ConnectionTo<Client>,
    ) -> bool {
        let updates = self.lock().translator.updates(&event);
        for update in updates {
            self.notify(cx, update);
        }
        match event {
            Event::ApprovalRequested {
                call_id,
                action,
                reason,
            } => self.ask_permission(call_id, action, reason, ops.clone(), cx.clone()),
            Event::QuestionAsked { call_id, question } => {
                // ACP v1 has no way to ask the person for text mid-prompt: the question is shown,
                // and the model is told to go on with its best judgement.
                self.notify(
                    cx,
                    SessionUpdate::AgentMessageChunk(ContentChunk::new(ContentBlock::from(
                        format!("\n\n> {question}\n\n"),
                    ))),
                );
                let _ = ops.try_send(Op::Answer {
                    call_id,
                    text: "(no answer: this client cannot reply to questions during a prompt; \
                           go on with your best judgement and say what you assumed)"
                        .into(),
                });
            }
            Event::Paused => self.wake(super::ext::Wait::Paused),
            Event::Resumed => self.wake(super::ext::Wait::Resumed),
            Event::Steered { .. } => self.wake(super::ext::Wait::Steered),
            // Not part of the conversation: for the client's log (editors show an agent's stderr).
            Event::Warning { message } => eprintln!("cox: warning: {message}"),
            Event::Error { kind, message } => eprintln!("cox: error ({kind:?}): {message}"),
            Event::TaskCompleted { status, .. } => {
                let (responder, ending, usage) = {
                    let mut state = self.lock();
                    // An extension request still waiting learns that the prompt ended first.
                    state.waiters.clear();
                    (
                        state.prompt.take(),
                        state.translator.ending(status),
                        state.translator.usage(),
                    )
                };
                if let Some(responder) = responder {
                    answer(responder, ending, usage);
                }
            }
            Event::SessionCompleted { .. } => return false,
            _ => {}
        }
        true
    }

    fn notify(&self, cx: &ConnectionTo<Client>, update: SessionUpdate) {
        if let Err(e) = cx.send_notification(SessionNotification::new(self.id.clone(), update)) {
            tracing::debug!(session = %self.id, error = %e.message, "acp: an update could not be sent");
        }
    }

    fn wake(&self, wait: super::ext::Wait) {
        let mut state = self.lock();
        let (woken, kept): (Vec<_>, Vec<_>) =
            state.waiters.drain(..).partition(|(w, _)| *w == wait);
        state.waiters = kept;
        for (_, tx) in woken {
            let _ = tx.send(());
        }
    }

    /// Asks the client to approve an action; its answer becomes cox's decision.
    fn ask_permission(
        &self,
        call_id: CallId,
        action: String,
        reason: String,
        ops: mpsc::Sender<Op>,
        cx: ConnectionTo<Client>,
    ) {
        let request = RequestPermissionRequest::new(
            self.id.clone(),
            ToolCallUpdate::new(
                call_id.0.clone(),
                ToolCallUpdateFields::new()
                    .title(action.clone())
                    .content(vec![text_content(&format!(
                        "{action}\n\nwhy it asks: {reason}"
                    ))]),
            ),
            permission_options(),
        );
        let sent = cx.send_request(request);
        let in_progress = ToolCallUpdate::new(
            call_id.0.clone(),
            ToolCallUpdateFields::new().status(ToolCallStatus::InProgress),
        );
        let id = self.id.clone();
        let notify = cx.clone();
        let _ = cx.spawn(async move {
            let decision = match sent.block_task().await {
                Ok(response) => match response.outcome {
                    RequestPermissionOutcome::Selected(selected) => {
                        match selected.option_id.0.as_ref() {
                            "allow_once" => ApprovalDecision::Once,
                            "allow_always" => ApprovalDecision::Project,
                            _ => ApprovalDecision::Deny {
                                reason: Some("the person rejected it".into()),
                            },
                        }
                    }
                    RequestPermissionOutcome::Cancelled => ApprovalDecision::Deny {
                        reason: Some("the prompt was cancelled".into()),
                    },
                    _ => ApprovalDecision::Deny { reason: None },
                },
                Err(e) => ApprovalDecision::Deny {
                    reason: Some(format!("the client did not answer: {}", e.message)),
                },
            };
            if !matches!(decision, ApprovalDecision::Deny { .. }) {
                let _ = notify.send_notification(SessionNotification::new(
                    id,
                    SessionUpdate::ToolCallUpdate(in_progress),
                ));
            }
            let _ = ops.send(Op::Approve { call_id, decision }).await;
            Ok(())
        });
    }
}

/// Answers a prompt as its task or run ended: the stop reason with the prompt's usage, or the error.
fn answer(
    responder: Responder<PromptResponse>,
    ending: Ending,
    usage: agent_client_protocol::v1::schema::Usage,
) {
    let _ = match ending {
        Ending::Stop(reason) => responder.respond(PromptResponse::new(reason).usage(usage)),
        Ending::Failed(message) => {
            responder.respond_with_error(error(ErrorCode::INTERNAL_ERROR, message))
        }
    };
}
