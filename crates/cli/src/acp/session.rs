//! One ACP session: the cox session behind it, the prompt in flight, and the pump that turns the
//! session's events into `session/update`s, permission requests and the prompt's answer.
//!
//! Settings (mode, model, thought level) change between prompts by closing the cox session and
//! reopening it from its journal with the new settings, so the conversation, pinned rules and
//! directives carry over; a change while a prompt runs is refused, naming why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, EmbeddedResourceResource, LoadSessionRequest, LoadSessionResponse,
    McpServer, NewSessionRequest, NewSessionResponse, PermissionOption, PermissionOptionKind,
    PromptRequest, PromptResponse, RequestPermissionOutcome, RequestPermissionRequest,
    SessionConfigOption, SessionConfigOptionCategory, SessionConfigSelectOption, SessionMode,
    SessionModeState, SessionNotification, SessionUpdate, SetSessionConfigOptionRequest,
    SetSessionConfigOptionResponse, SetSessionModeRequest, SetSessionModeResponse, ToolCall,
    ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Client, Error as AcpError, ErrorCode};
use cox_core::{Config, RunOptions, SessionHandle};
use cox_protocol::{ApprovalDecision, CallId, Event, Item, Op};
use tokio::sync::{mpsc, oneshot};

use super::updates::{Ending, Translator, text_content};
use super::{Server, error, failure};
use crate::args::{ApprovalArg, SandboxArg};

/// The modes a client can pick (`session/set_mode`, and the `mode` config option): cox's sandbox
/// and approval policies together.
const MODES: [(&str, &str, &str); 4] = [
    (
        "read-only",
        "Read only",
        "Commands may read but write nothing; asks before anything else",
    ),
    (
        "workspace",
        "Workspace",
        "Edits and commands inside the workspace; asks before leaving the sandbox",
    ),
    (
        "untrusted",
        "Untrusted",
        "Like workspace, but asks before every command not known to only read",
    ),
    (
        "full-access",
        "Full access",
        "No sandbox and no questions (for a disposable container)",
    ),
];

/// Reasoning effort values of the `thought_level` option (`default`: the config's).
const EFFORTS: [&str; 6] = ["default", "minimal", "low", "medium", "high", "xhigh"];

/// What a client can change in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    pub mode: String,
    pub model: String,
    pub effort: String,
}

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

    pub fn ops(&self) -> Option<mpsc::Sender<Op>> {
        self.lock().live.as_ref().map(|l| l.ops.clone())
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
        let state = self.lock();
        if state.prompt.is_some()
            && let Some(live) = &state.live
        {
            let _ = live.ops.try_send(Op::Interrupt);
        }
    }

    /// Ends the cox session (its commands with it) and waits until it has.
    pub async fn close(&self) {
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
        responder.respond_with_result(result)
    }

    pub fn prompt(
        &self,
        request: PromptRequest,
        responder: Responder<PromptResponse>,
    ) -> Result<(), AcpError> {
        let slot = match self.slot(&request.session_id.0) {
            Ok(slot) => slot,
            Err(e) => return responder.respond_with_error(e),
        };
        let text = match prompt_text(&request.prompt, &slot.cwd) {
            Ok(text) => text,
            Err(e) => return responder.respond_with_error(e),
        };
        let mut state = slot.lock();
        if state.prompt.is_some() {
            drop(state);
            return responder.respond_with_error(error(
                ErrorCode::INVALID_REQUEST,
                "a prompt is already running in this session; wait for it or send session/cancel",
            ));
        }
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
                    let _ = match ending {
                        Ending::Stop(reason) => {
                            responder.respond(PromptResponse::new(reason).usage(usage))
                        }
                        Ending::Failed(message) => {
                            responder.respond_with_error(error(ErrorCode::INTERNAL_ERROR, message))
                        }
                    };
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

fn permission_options() -> Vec<PermissionOption> {
    vec![
        PermissionOption::new("allow_once", "Allow once", PermissionOptionKind::AllowOnce),
        PermissionOption::new(
            "allow_always",
            "Always allow in this project",
            PermissionOptionKind::AllowAlways,
        ),
        PermissionOption::new("reject", "Reject", PermissionOptionKind::RejectOnce),
    ]
}

fn modes(settings: &Settings) -> SessionModeState {
    SessionModeState::new(
        settings.mode.clone(),
        MODES
            .iter()
            .map(|(id, name, description)| {
                SessionMode::new(id.to_string(), name.to_string())
                    .description(description.to_string())
            })
            .collect(),
    )
}

/// The config options: `mode` (as the modes), `model` (the session's, then the models cox's
/// catalog knows; any other name the provider serves is accepted too) and `thought_level`.
pub fn config_options(settings: &Settings) -> Vec<SessionConfigOption> {
    let mode = SessionConfigOption::select(
        "mode",
        "Mode",
        settings.mode.clone(),
        MODES
            .iter()
            .map(|(id, name, description)| {
                SessionConfigSelectOption::new(id.to_string(), name.to_string())
                    .description(description.to_string())
            })
            .collect::<Vec<_>>(),
    )
    .category(SessionConfigOptionCategory::Mode);
    let mut models = vec![settings.model.clone()];
    for model in cox_core::catalog::models() {
        if !models.iter().any(|m| m == model) {
            models.push(model.to_string());
        }
    }
    let model = SessionConfigOption::select(
        "model",
        "Model",
        settings.model.clone(),
        models
            .into_iter()
            .map(|m| SessionConfigSelectOption::new(m.clone(), m))
            .collect::<Vec<_>>(),
    )
    .description("any model the provider serves may be set, listed or not".to_string())
    .category(SessionConfigOptionCategory::Model);
    let effort = SessionConfigOption::select(
        "thought_level",
        "Reasoning effort",
        settings.effort.clone(),
        EFFORTS
            .iter()
            .map(|e| SessionConfigSelectOption::new(e.to_string(), e.to_string()))
            .collect::<Vec<_>>(),
    )
    .category(SessionConfigOptionCategory::ThoughtLevel);
    vec![mode, model, effort]
}

fn workspace(cwd: &Path) -> Result<PathBuf, AcpError> {
    if !cwd.is_absolute() {
        return Err(error(
            ErrorCode::INVALID_PARAMS,
            format!("cwd `{}` is not an absolute path", cwd.display()),
        ));
    }
    let canonical = fs_err::canonicalize(cwd).map_err(|e| {
        error(
            ErrorCode::INVALID_PARAMS,
            format!(
                "cannot use cwd {}: {}",
                cwd.display(),
                crate::exit::os_reason(&e)
            ),
        )
    })?;
    if !canonical.is_dir() {
        return Err(error(
            ErrorCode::INVALID_PARAMS,
            format!("cwd {} is not a directory", cwd.display()),
        ));
    }
    Ok(canonical)
}

/// The client's MCP servers as cox config entries (checked like `[mcp_servers]` in config.toml).
fn mcp_servers(
    servers: &[McpServer],
) -> Result<BTreeMap<String, cox_core::config::McpServerConfig>, AcpError> {
    let mut out = BTreeMap::new();
    for server in servers {
        let (name, config) = match server {
            McpServer::Stdio(stdio) => (
                stdio.name.clone(),
                cox_core::config::McpServerConfig {
                    command: Some(stdio.command.display().to_string()),
                    args: stdio.args.clone(),
                    env: stdio
                        .env
                        .iter()
                        .map(|v| (v.name.clone(), v.value.clone()))
                        .collect(),
                    ..Default::default()
                },
            ),
            McpServer::Http(http) => (
                http.name.clone(),
                cox_core::config::McpServerConfig {
                    url: Some(http.url.clone()),
                    http_headers: http
                        .headers
                        .iter()
                        .map(|h| (h.name.clone(), h.value.clone()))
                        .collect(),
                    ..Default::default()
                },
            ),
            McpServer::Sse(sse) => (
                sse.name.clone(),
                cox_core::config::McpServerConfig {
                    url: Some(sse.url.clone()),
                    transport: Some("sse".into()),
                    http_headers: sse
                        .headers
                        .iter()
                        .map(|h| (h.name.clone(), h.value.clone()))
                        .collect(),
                    ..Default::default()
                },
            ),
            _ => {
                return Err(error(
                    ErrorCode::INVALID_PARAMS,
                    "cox starts stdio, http and sse MCP servers; this kind it does not know",
                ));
            }
        };
        if out.insert(name.clone(), config).is_some() {
            return Err(error(
                ErrorCode::INVALID_PARAMS,
                format!("two MCP servers are named `{name}`; give each its own name"),
            ));
        }
    }
    // Checked now, so a bad entry fails session/new with its name.
    cox_core::config::mcp_servers(&out).map_err(failure)?;
    Ok(out)
}

/// The prompt's text: text blocks as they are, a linked file as an `@path` attachment, an
/// embedded resource's text in a fenced block under its URI.
fn prompt_text(blocks: &[ContentBlock], cwd: &Path) -> Result<String, AcpError> {
    let mut text = String::new();
    for block in blocks {
        match block {
            ContentBlock::Text(t) => text.push_str(&t.text),
            ContentBlock::ResourceLink(link) => {
                let path = link.uri.strip_prefix("file://").unwrap_or(&link.uri);
                text.push_str(&format!(" @{path} "));
            }
            ContentBlock::Resource(resource) => match &resource.resource {
                EmbeddedResourceResource::TextResourceContents(contents) => {
                    text.push_str(&format!(
                        "\n\n{}:\n```\n{}\n```\n",
                        contents.uri, contents.text
                    ));
                }
                _ => {
                    return Err(error(
                        ErrorCode::INVALID_PARAMS,
                        "cox takes text resources; a binary resource it cannot read",
                    ));
                }
            },
            _ => {
                return Err(error(
                    ErrorCode::INVALID_PARAMS,
                    "cox takes text, resource links and text resources (its prompt capabilities say so)",
                ));
            }
        }
    }
    if text.trim().is_empty() {
        return Err(error(ErrorCode::INVALID_PARAMS, "the prompt is empty"));
    }
    cox_core::prompt::expand_attachments(&text, cwd).map_err(failure)
}

/// A recorded conversation as the updates that would have shown it.
fn replay(
    cwd: &Path,
    history: &[Item],
    plan: Option<&[cox_protocol::PlanStep]>,
) -> Vec<SessionUpdate> {
    let mut out = Vec::new();
    for item in history {
        match item {
            Item::User { text } => out.push(SessionUpdate::UserMessageChunk(ContentChunk::new(
                ContentBlock::from(text.as_str()),
            ))),
            Item::Assistant { text } | Item::Commentary { text } => {
                out.push(SessionUpdate::AgentMessageChunk(ContentChunk::new(
                    ContentBlock::from(text.as_str()),
                )))
            }
            Item::ToolCall(call) => {
                let call: ToolCall = super::updates::tool_call(
                    cwd,
                    &call.call_id.0,
                    &call.name,
                    &call.arguments,
                    None,
                    &[],
                );
                out.push(SessionUpdate::ToolCall(call));
            }
            Item::ToolResult {
                call_id,
                ok,
                output,
                ..
            } => out.push(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                call_id.0.clone(),
                ToolCallUpdateFields::new()
                    .status(if *ok {
                        ToolCallStatus::Completed
                    } else {
                        ToolCallStatus::Failed
                    })
                    .content(vec![text_content(output)]),
            ))),
            Item::Reasoning { .. } => {}
        }
    }
    if let Some(steps) = plan {
        out.push(SessionUpdate::Plan(super::updates::plan(steps)));
    }
    out
}
