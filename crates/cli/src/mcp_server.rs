//! `cox mcp-server`: cox as an MCP server on stdin/stdout (the official Rust SDK, `rmcp`), as
//! `codex mcp-server` offers. Two tools: `cox` runs a task to its end in a new session and
//! returns the answer (text, and `{session_id, status, answer, usage}` as structured content);
//! `cox-reply` goes on with a recorded session. While a task runs, each action is a progress
//! notification when the client asked for progress; the client's cancel interrupts the task (its
//! commands are killed, as on Esc). Sessions are headless: what needs approval is refused with
//! the reason, unless the call's `approval_policy` or the command line says otherwise — and even
//! then no one can answer, so `never` (the default) is the honest policy.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cox_core::{Config, RunOptions, SessionHandle};
use cox_protocol::{Event, Op, SessionStatus};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer, ServiceExt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::args::Shared;
use crate::exec::{overrides, run_options, runtime, working_dir};
use crate::exit::Failure;

pub fn run(shared: &Shared) -> Result<ExitCode, Failure> {
    let server = CoxServer {
        shared: Arc::new(shared.clone()),
        cwd: working_dir(shared)?,
        home: cox_core::config::cox_home()?,
    };
    // Checked once at start: a sandbox the kernel cannot give is an error now, not per call.
    run_options(shared)?;
    runtime()?.block_on(async move {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Failure {
                code: crate::exit::FAILED,
                message: format!("cox mcp-server: the client's initialize failed: {e}"),
                hint: None,
            })?;
        let _ = running.waiting().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Clone)]
struct CoxServer {
    shared: Arc<Shared>,
    cwd: PathBuf,
    home: PathBuf,
}

/// The arguments of `cox` (and, with `session_id`, of `cox-reply`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskArgs {
    prompt: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    sandbox: Option<String>,
    #[serde(default, rename = "approval-policy", alias = "approval_policy")]
    approval_policy: Option<String>,
    #[serde(default)]
    max_turns: Option<u32>,
}

fn schema(reply: bool) -> serde_json::Map<String, Value> {
    let mut properties = json!({
        "prompt": {"type": "string", "description": "The task, as you would type it to cox"},
    });
    if reply {
        properties["session_id"] = json!({"type": "string", "description": "The session to go on with (from `cox`'s result)"});
    } else {
        properties["cwd"] = json!({"type": "string", "description": "Where to work (default: where cox mcp-server started)"});
        properties["model"] = json!({"type": "string", "description": "The model (`-m`)"});
        properties["provider"] =
            json!({"type": "string", "description": "The provider (`--provider`)"});
        properties["sandbox"] =
            json!({"type": "string", "enum": ["read-only", "workspace-write", "full-access"]});
        properties["approval-policy"] =
            json!({"type": "string", "enum": ["untrusted", "on-request", "never"]});
        properties["max_turns"] = json!({"type": "integer", "minimum": 1});
    }
    let required = if reply {
        json!(["session_id", "prompt"])
    } else {
        json!(["prompt"])
    };
    match json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
    {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

impl rmcp::ServerHandler for CoxServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("cox", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Call `cox` with a coding task to have cox do it in a working directory (it \
                 reads, edits, runs commands in its sandbox); `cox-reply` goes on with a session.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, rmcp::ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new(
                "cox",
                "Run a coding task with cox to its end in a new session; returns the final \
                 answer and the session id.",
                Arc::new(schema(false)),
            ),
            Tool::new(
                "cox-reply",
                "Go on with a cox session (its id from `cox`'s result) with a new prompt.",
                Arc::new(schema(true)),
            ),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, rmcp::ErrorData> {
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let reply = match request.name.as_ref() {
            "cox" => false,
            "cox-reply" => true,
            other => {
                return Ok(failed(format!(
                    "unknown tool `{other}`: the tools are `cox` and `cox-reply`"
                )));
            }
        };
        let args: TaskArgs = match serde_json::from_value(arguments) {
            Ok(args) => args,
            Err(e) => {
                return Ok(failed(format!(
                    "invalid arguments for {}: {e}",
                    request.name
                )));
            }
        };
        if reply && args.session_id.is_none() {
            return Ok(failed("cox-reply needs `session_id`".to_string()));
        }
        Ok(match self.task(args, &context).await {
            Ok(result) => CallToolResponse::Complete(result),
            Err(message) => failed(message),
        })
    }
}

fn failed(message: String) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::error(vec![ContentBlock::text(message)]))
}

impl CoxServer {
    /// Starts (or resumes) the session, forwards its progress, and returns its end.
    async fn task(
        &self,
        args: TaskArgs,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, String> {
        let mut shared = (*self.shared).clone();
        if args.model.is_some() {
            shared.model = args.model.clone();
        }
        if args.provider.is_some() {
            shared.provider = args.provider.clone();
        }
        if args.max_turns.is_some() {
            shared.max_turns = args.max_turns;
        }
        if let Some(sandbox) = &args.sandbox {
            shared.sandbox = match sandbox.as_str() {
                "read-only" => crate::args::SandboxArg::ReadOnly,
                "workspace-write" => crate::args::SandboxArg::WorkspaceWrite,
                "full-access" => crate::args::SandboxArg::FullAccess,
                other => {
                    return Err(format!(
                        "sandbox `{other}` is not read-only, workspace-write or full-access"
                    ));
                }
            };
        }
        let mut options: RunOptions = run_options(&shared).map_err(|f| f.message)?;
        options.interactive = false;
        options.one_shot = true;
        options.steerable = false;
        if let Some(policy) = &args.approval_policy {
            options.approval = Some(match policy.as_str() {
                "untrusted" => cox_core::ApprovalPolicy::Untrusted,
                "on-request" => cox_core::ApprovalPolicy::OnRequest,
                "never" => cox_core::ApprovalPolicy::Never,
                other => {
                    return Err(format!(
                        "approval-policy `{other}` is not untrusted, on-request or never"
                    ));
                }
            });
        }
        let cwd = match &args.cwd {
            Some(dir) => fs_err::canonicalize(dir).map_err(|e| format!("cwd: {e}"))?,
            None => self.cwd.clone(),
        };
        let handle = match &args.session_id {
            None => {
                let config =
                    Config::load(&self.home, &overrides(&shared)).map_err(|e| e.to_string())?;
                let prompt = cox_core::prompt::expand_attachments(&args.prompt, &cwd)
                    .map_err(|e| e.to_string())?;
                let handle = cox_core::start(&config, cwd, options).map_err(|e| e.to_string())?;
                handle.submit(Op::UserInput { text: prompt }).await;
                handle
            }
            Some(id) => {
                let path =
                    cox_core::journal::find(&self.home, Some(id)).map_err(|e| e.to_string())?;
                let loaded = cox_core::journal::load(&path).map_err(|e| e.to_string())?;
                let mut wanted = overrides(&shared);
                if let Some((_, _, _, provider, model)) = loaded.header()
                    && wanted.provider.is_none()
                {
                    wanted.provider = Some(provider.to_string());
                    wanted.model = wanted.model.or(Some(model.to_string()));
                }
                let config = Config::load(&self.home, &wanted).map_err(|e| e.to_string())?;
                cox_core::resume(
                    &config,
                    loaded,
                    Some(args.prompt.clone()),
                    options,
                    cox_core::PlanRun::default(),
                )
                .map_err(|e| e.to_string())?
            }
        };
        Ok(follow(handle, context).await)
    }
}

/// Reads the session's events to its end: actions become progress notifications (when the
/// client gave a progress token); the client's cancel interrupts it.
async fn follow(mut handle: SessionHandle, context: &RequestContext<RoleServer>) -> CallToolResult {
    let token = context.meta.get_progress_token();
    let session_id = handle.id.0.clone();
    let mut progress = 0.0;
    let mut cancelled = false;
    loop {
        let envelope = tokio::select! {
            envelope = handle.next_event() => envelope,
            _ = context.ct.cancelled(), if !cancelled => {
                cancelled = true;
                handle.submit(Op::Interrupt).await;
                handle.submit(Op::Shutdown).await;
                continue;
            }
        };
        let Some(envelope) = envelope else {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "session {session_id} ended without saying how"
            ))]);
        };
        let message = match &envelope.event {
            Event::ToolCall { actions, name, .. } => Some(
                actions
                    .first()
                    .map_or_else(|| name.clone(), ToString::to_string),
            ),
            Event::Warning { message } => Some(format!("warning: {message}")),
            Event::Error { message, .. } => Some(format!("error: {message}")),
            Event::SessionCompleted {
                status,
                answer,
                usage,
                cost_usd,
            } => {
                let structured = json!({
                    "session_id": session_id,
                    "status": status,
                    "answer": answer,
                    "usage": usage,
                    "cost_usd": cost_usd,
                });
                let text = answer
                    .clone()
                    .unwrap_or_else(|| format!("the task ended {status:?} without an answer"));
                let mut result = if *status == SessionStatus::Completed {
                    CallToolResult::success(vec![ContentBlock::text(text)])
                } else {
                    CallToolResult::error(vec![ContentBlock::text(text)])
                };
                result.structured_content = Some(structured);
                return result;
            }
            _ => None,
        };
        if let (Some(token), Some(message)) = (&token, message) {
            progress += 1.0;
            let mut note = ProgressNotificationParam::new(token.clone(), progress);
            note.message = Some(message);
            let _ = context.peer.notify_progress(note).await;
        }
    }
}
