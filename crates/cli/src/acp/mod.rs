//! `cox acp`: cox as an Agent Client Protocol agent on stdin/stdout (JSON-RPC, protocol v1,
//! through the official Rust SDK `agent-client-protocol`), for editors (Zed, JetBrains) and
//! harnesses (Harbor's `acp:` agent, Terminal-Bench 2).
//!
//! One ACP session is one cox session: its id is the journal's id, so `session/load` (and
//! `cox resume ID` in a terminal) continue it. A prompt is a task; its events stream as
//! `session/update`s ([`updates`]) and its end is the stop reason. `session/cancel` interrupts
//! the task as Esc does (a running command is killed with its process group). cox's approvals ask
//! through `session/request_permission`: allow once, allow always (a grant kept for the project
//! in `$COX_HOME/projects.toml`, outside the workspace), or reject. Modes and the `model` and
//! `thought_level` config options change the session between prompts: the cox session is closed
//! and reopened from its journal with the new settings ([`session`]).
//!
//! Steering, which ACP v1 lacks (it has only cancel), comes as three extension methods with the
//! terminal's barrier semantics, advertised in `initialize` under `agentCapabilities._meta`:
//! `_cox/pause` (answered once the barrier is up: no new action starts), `_cox/steer` (the
//! directive is pinned for the rest of the session and the task goes on) and `_cox/resume`.
//!
//! The client's `fs/*` and `terminal/*` capabilities are not used: cox keeps its own tools, whose
//! writes go through the patch engine, the project rules, checkpoints and the journal, and whose
//! commands run in cox's sandbox. An editor's terminal would run commands outside that sandbox,
//! and its file methods would bypass rules and checkpoints — so the default keeps containment,
//! and the editor sees every change as a diff in the tool call instead.

mod ext;
mod inputs;
mod plan_run;
mod session;
mod settings;
pub mod updates;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use agent_client_protocol::v1::schema::{
    AgentCapabilities, AuthMethod, AuthMethodAgent, AuthenticateRequest, AuthenticateResponse,
    CancelNotification, Implementation, InitializeRequest, InitializeResponse, LoadSessionRequest,
    McpCapabilities, NewSessionRequest, PromptCapabilities, PromptRequest,
    SetSessionConfigOptionRequest, SetSessionModeRequest,
};
use agent_client_protocol::{Agent, Error as AcpError, ErrorCode, Stdio};

use crate::args::Shared;
use crate::exec::{run_options, runtime};
use crate::exit::Failure;

/// What every session of this process shares: the command line and cox's home.
pub struct Server {
    shared: Shared,
    home: PathBuf,
    sessions: Mutex<HashMap<String, Arc<session::Slot>>>,
}

pub fn run(shared: &Shared) -> Result<ExitCode, Failure> {
    // Checked once at start: a sandbox the kernel cannot give is an error now, not per session.
    run_options(shared)?;
    let home = cox_core::config::cox_home()?;
    // The provider's configuration must load (a bad config.toml is an error before any client
    // talks to us); the key is checked per session, so `authenticate` can say what is missing.
    cox_core::Config::load(&home, &crate::exec::overrides(shared))?;
    let server = Arc::new(Server {
        shared: shared.clone(),
        home,
        sessions: Mutex::new(HashMap::new()),
    });
    runtime()?.block_on(serve(server)).map_err(|e| Failure {
        code: crate::exit::FAILED,
        message: format!("cox acp: the connection failed: {}", e.message),
        hint: None,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// An error for the client: the ACP error with cox's message (and its hint, when it has one).
pub fn error(code: ErrorCode, message: impl Into<String>) -> AcpError {
    AcpError::new(code, message)
}

pub fn failure(e: impl Into<Failure>) -> AcpError {
    let failure: Failure = e.into();
    let message = match failure.hint {
        Some(hint) => format!("{}; {hint}", failure.message),
        None => failure.message,
    };
    error(ErrorCode::INTERNAL_ERROR, message)
}

async fn serve(server: Arc<Server>) -> Result<(), AcpError> {
    let (s1, s2, s3, s4, s5, s6, s7, s8) = (
        server.clone(),
        server.clone(),
        server.clone(),
        server.clone(),
        server.clone(),
        server.clone(),
        server.clone(),
        server.clone(),
    );
    let builder = Agent
        .v1()
        .name("cox")
        .on_receive_request(
            async move |request: InitializeRequest, responder, _cx| {
                responder.respond(s1.initialize(&request))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: AuthenticateRequest, responder, _cx| match s2
                .authenticate(&request)
            {
                Ok(()) => responder.respond(AuthenticateResponse::new()),
                Err(e) => responder.respond_with_error(e),
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: NewSessionRequest, responder, cx| {
                match s3.new_session(request, cx.clone()) {
                    Ok(response) => {
                        let id = response.session_id.clone();
                        responder.respond(response)?;
                        // Offered once the client knows the session.
                        cx.send_notification(
                            agent_client_protocol::v1::schema::SessionNotification::new(
                                id,
                                plan_run::advertised(),
                            ),
                        )
                    }
                    Err(e) => responder.respond_with_error(e),
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: LoadSessionRequest, responder, cx| {
                s4.load_session(request, responder, cx)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: PromptRequest, responder, cx| s5.prompt(request, responder, cx),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |notification: CancelNotification, _cx| {
                s6.cancel(&notification.session_id.0);
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |request: SetSessionModeRequest, responder, cx| {
                s7.set_mode(request, responder, cx)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: SetSessionConfigOptionRequest, responder, cx| {
                s8.set_config_option(request, responder, cx)
            },
            agent_client_protocol::on_receive_request!(),
        );
    let (s9, s10, s11) = (server.clone(), server.clone(), server.clone());
    let builder = builder
        .on_receive_request(
            async move |request: ext::Pause, responder, cx| {
                ext::handle(s9.clone(), request, responder, cx)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: ext::Steer, responder, cx| {
                ext::handle(s10.clone(), request, responder, cx)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: ext::Resume, responder, cx| {
                ext::handle(s11.clone(), request, responder, cx)
            },
            agent_client_protocol::on_receive_request!(),
        );
    let result = builder.connect_to(Stdio::new()).await;
    // The client is gone: every session ends, and with it every command it runs.
    server.close_all().await;
    result
}

impl Server {
    fn initialize(&self, _request: &InitializeRequest) -> InitializeResponse {
        let capabilities = AgentCapabilities::new()
            .load_session(true)
            .prompt_capabilities(PromptCapabilities::new().embedded_context(true))
            .mcp_capabilities(McpCapabilities::new().http(true).sse(true))
            .meta(ext::advertised());
        // cox speaks v1; a client asking for another version gets v1 and decides.
        InitializeResponse::new(agent_client_protocol::schema::ProtocolVersion::V1)
            .agent_capabilities(capabilities)
            .auth_methods(self.auth_methods())
            .agent_info(Implementation::new("cox", env!("CARGO_PKG_VERSION")).title("cox"))
    }

    /// One method for the configured provider's key, when it needs one: cox reads it from its
    /// environment variable or `cox auth login`'s store, so `authenticate` only checks it is there.
    fn auth_methods(&self) -> Vec<AuthMethod> {
        let Ok(config) = cox_core::Config::load(&self.home, &crate::exec::overrides(&self.shared))
        else {
            return Vec::new();
        };
        if !config.provider.requires_key {
            return Vec::new();
        }
        let variable = config.provider.api_key_env.clone().unwrap_or_default();
        vec![AuthMethod::Agent(
            AuthMethodAgent::new(
                auth_method_id(&config.provider.name),
                format!("{} API key", config.provider.name),
            )
            .description(format!(
                "cox reads the key from {variable} in its environment, or from `cox auth login`"
            )),
        )]
    }

    fn authenticate(&self, request: &AuthenticateRequest) -> Result<(), AcpError> {
        let config = cox_core::Config::load(&self.home, &crate::exec::overrides(&self.shared))
            .map_err(failure)?;
        if request.method_id.0.as_ref() != auth_method_id(&config.provider.name) {
            return Err(error(
                ErrorCode::INVALID_PARAMS,
                format!(
                    "unknown auth method `{}`; initialize lists the methods cox offers",
                    request.method_id.0
                ),
            ));
        }
        cox_core::AuthStore::new(&self.home)
            .require(&config.provider)
            .map(|_| ())
            .map_err(|e| error(ErrorCode::AUTH_REQUIRED, Failure::from(e).message))
    }

    fn slot(&self, id: &str) -> Result<Arc<session::Slot>, AcpError> {
        self.sessions
            .lock()
            .map_err(|_| error(ErrorCode::INTERNAL_ERROR, "the session table is poisoned"))?
            .get(id)
            .cloned()
            .ok_or_else(|| {
                error(
                    ErrorCode::INVALID_PARAMS,
                    format!("no session `{id}` in this connection; create it with session/new or session/load"),
                )
            })
    }

    fn cancel(&self, id: &str) {
        if let Ok(slot) = self.slot(id) {
            slot.cancel();
        }
    }

    async fn close_all(&self) {
        let slots: Vec<_> = match self.sessions.lock() {
            Ok(mut sessions) => sessions.drain().map(|(_, s)| s).collect(),
            Err(_) => return,
        };
        for slot in slots {
            slot.close().await;
        }
    }
}

fn auth_method_id(provider: &str) -> String {
    format!("{provider}-api-key")
}
