//! The tools cox offers a model, and the [`ToolRegistry`] that dispatches a model's call to one.
//!
//! Each tool is a module whose `//!` documentation is also the description sent to the model (one
//! markdown file serves both), so what the model is told and what a reader sees cannot drift apart.
//! A tool describes itself ([`Tool`]): its [`ToolKind`], what a call will do ([`Described`]: the
//! actions a front end shows, and what it touches for rules, approvals and the grace window), and
//! what a call did ([`ToolOutput::outcome`]). The engine and the front ends learn about tools only
//! from these, never from a tool's name, so adding a tool is local: write the module, add it to
//! [`ToolRegistry::standard`].
//!
//! A tool never fails the session: bad arguments, a missing file or a failed command come back as a
//! [`ToolOutput`] with `ok: false` and a message that tells the model exactly what was wrong.

pub mod apply_patch;
pub mod ask_user;
pub mod budget;
pub mod exec_command;
pub mod grep;
pub mod kill_session;
pub mod list_dir;
pub mod list_sessions;
pub mod login_env;
mod patch;
mod paths;
pub mod read_file;
pub mod report_step;
pub mod shell;
pub mod terminal;
mod truncate;
pub mod update_plan;
pub mod write_stdin;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use cox_protocol::{Action, ToolKind, ToolOutcome, ToolSpec};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub use patch::held::{Held, held as held_patch};
pub use paths::Access;
pub use truncate::HeadTail;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a tool call produced, as the model will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub ok: bool,
    /// What the model sees.
    pub output: String,
    /// What the call did besides its result, for the engine to announce.
    pub effect: Option<Effect>,
    /// The longer output kept for the journal when `output` was shortened for the model.
    pub full: Option<String>,
    /// What the call did, in fields (exit code, duration, changed files, truncation).
    pub outcome: ToolOutcome,
}

/// A tool call's consequence that front ends hear about as an event (not sent to the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Files changed; the unified diff.
    Diff(String),
    /// The model's plan.
    Plan {
        steps: Vec<cox_protocol::PlanStep>,
        explanation: Option<String>,
    },
    /// The model's report on a plan run's step.
    Step(cox_protocol::StepReport),
    /// A terminal session started, was typed into, or was read.
    Terminal(TerminalEffect),
    /// Images that go with the result to the model (an MCP tool's), where the wire takes them.
    Images(Vec<cox_protocol::Image>),
}

/// What a call did with a terminal session (its end is told by [`terminal::Terminals::take_ended`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalEffect {
    pub id: u32,
    /// The session started: its command line and the launcher's pid.
    pub started: Option<(String, u32)>,
    /// What was typed, as a person reads it.
    pub wrote: Option<String>,
    /// What the model was shown.
    pub output: String,
}

/// A question from `ask_user` for the person, with where to send the answer.
#[derive(Debug)]
pub struct Question {
    pub text: String,
    pub reply: tokio::sync::oneshot::Sender<String>,
}

impl ToolOutput {
    pub fn ok(output: impl Into<String>) -> Self {
        ToolOutput {
            ok: true,
            output: output.into(),
            effect: None,
            full: None,
            outcome: ToolOutcome::default(),
        }
    }

    pub fn error(output: impl Into<String>) -> Self {
        ToolOutput {
            ok: false,
            output: output.into(),
            effect: None,
            full: None,
            outcome: ToolOutcome::default(),
        }
    }
}

/// What every tool call may use: where the session works, and the token that says "stop now".
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The session's working directory; relative paths are resolved against it.
    pub cwd: PathBuf,
    /// The workspace root: file tools read inside it, commands start inside it.
    pub workspace: PathBuf,
    /// Where file tools may write (the workspace, or `--target`); empty in read-only mode.
    pub writable_roots: Vec<PathBuf>,
    /// Paths inside writable roots that file tools may not write (`.git`, `.cox`).
    pub protected: Vec<PathBuf>,
    /// Budget for a command's output as the model sees it, in bytes; head and tail kept beyond it.
    pub max_output_bytes: usize,
    /// Budget for the same output as the journal keeps it (larger).
    pub capture_bytes: usize,
    /// Environment variables removed from every child process: the session computes them with
    /// `cox_sandbox::env` (provider keys, the credential rule, the person's `[sandbox.env]`).
    pub hidden_env: Vec<String>,
    /// Run commands through this launcher (`cox __sandbox … --`), which applies the OS sandbox to
    /// itself and then execs the command; `None` runs them directly (full access).
    pub sandbox: Option<Vec<String>>,
    /// Where `ask_user` sends its question when a person can answer; `None` when headless.
    pub asker: Option<tokio::sync::mpsc::Sender<Question>>,
    /// Told each command's pid as it starts (the session journals it, so a later cox can kill
    /// what a dead one left); its tag goes into the command's environment.
    pub watch: Option<Watch>,
    /// The session's terminal sessions (`exec_command`); `None` where there are none to have.
    pub terminals: Option<std::sync::Arc<terminal::Terminals>>,
    /// What the person's login profile adds to the environment (see [`login_env`]): string
    /// commands run with `bash -c` and these; `None`: cox's environment as it is.
    pub login_env: Option<std::sync::Arc<login_env::LoginEnv>>,
    pub cancel: CancellationToken,
}

/// How a session learns of the processes a call starts.
#[derive(Debug, Clone)]
pub struct Watch {
    /// `NAME=VALUE` set in the environment of the command and so of all it starts.
    pub tag: (String, String),
    pub started: tokio::sync::mpsc::UnboundedSender<u32>,
}

impl ToolContext {
    /// Resolves a path argument against the working directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.cwd.join(path)
        }
    }
}

/// What a call touches, for rule checks and approvals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touches {
    /// The shell line a command runs.
    pub command: Option<String>,
    /// (path as given, lines added) of each file an edit changes.
    pub edits: Vec<(String, String)>,
    /// The patch text of an edit, as the model wrote it (what the grace window shows).
    pub patch: Option<String>,
    /// The call asks to run outside the sandbox (`with_escalated_permissions`).
    pub escalate: bool,
    /// Why `command` may not be what runs (keys typed into a terminal session that edit the line
    /// in ways cox cannot follow, see [`terminal::lines`]): rules on commands then block the
    /// call, and a policy that asks about commands asks.
    pub unclear: Option<String>,
    /// A tool of an MCP server: what cox cannot see into, so the person decides (unless they
    /// trusted the server or the tool).
    pub external: Option<External>,
}

/// The MCP tool a call runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    pub server: String,
    /// The server's own name for the tool.
    pub tool: String,
    /// The name the model called (`server__tool`): what rules and grants match.
    pub name: String,
    /// `trusted = true` on the server, or the tool in its `trusted_tools`.
    pub trusted: bool,
}

/// What a call will do, before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// `None` for a tool the registry does not have.
    pub kind: Option<ToolKind>,
    /// What a front end shows (e.g. "Modify src/db.js lines 45-89").
    pub actions: Vec<Action>,
    pub touches: Touches,
}

impl Described {
    /// Writes and commands (unknown tools do nothing, so they do not act).
    pub fn acts(&self) -> bool {
        self.kind.is_some_and(ToolKind::acts)
    }

    /// The edit actions as text: the `preview` of a `tool_call` event.
    pub fn preview(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter(|a| a.edits())
            .map(ToString::to_string)
            .collect()
    }
}

/// One tool.
pub trait Tool: Send + Sync {
    /// The name the model calls it by (the spec's `name`); looked up on every call, so it costs
    /// nothing, unlike building the spec.
    fn name(&self) -> &str;
    fn spec(&self) -> ToolSpec;
    fn kind(&self) -> ToolKind;
    /// What a call with these arguments will do: the actions to show and what it touches.
    /// Arguments that do not parse describe nothing (the call itself then says what is wrong).
    fn describe(&self, arguments: &serde_json::Value, ctx: &ToolContext) -> (Vec<Action>, Touches);
    /// Whether the spec goes into requests now (a deferred MCP tool is offered once the model
    /// found it with the search tool); a tool not offered can still be called.
    fn offered(&self) -> bool {
        true
    }
    fn call<'a>(
        &'a self,
        arguments: serde_json::Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, ToolOutput>;
}

/// Parses a tool's arguments, or says which argument is wrong in terms the model can act on.
// The error is the call's whole result, made once per bad call: its size costs nothing.
#[allow(clippy::result_large_err)]
pub fn parse_args<T: DeserializeOwned>(
    tool: &str,
    arguments: serde_json::Value,
) -> Result<T, ToolOutput> {
    serde_json::from_value(arguments).map_err(|e| {
        ToolOutput::error(format!(
            "invalid arguments for {tool}: {e}. Call {tool} again with arguments that match its schema."
        ))
    })
}

/// The tools of a session, by name.
pub struct ToolRegistry {
    tools: Vec<Box<dyn Tool>>,
}

impl ToolRegistry {
    /// The tool set of an ordinary session.
    pub fn standard() -> Self {
        ToolRegistry {
            tools: vec![
                Box::new(shell::Shell { read_only: false }),
                Box::new(exec_command::ExecCommand),
                Box::new(write_stdin::WriteStdin),
                Box::new(list_sessions::ListSessions),
                Box::new(kill_session::KillSession),
                Box::new(apply_patch::ApplyPatch),
                Box::new(read_file::ReadFile),
                Box::new(list_dir::ListDir),
                Box::new(grep::Grep),
                Box::new(update_plan::UpdatePlan),
                Box::new(ask_user::AskUser),
            ],
        }
    }

    /// The tool set of a plan run's step: the standard tools and `report_step`.
    pub fn plan_step() -> Self {
        let mut registry = Self::standard();
        registry.tools.push(Box::new(report_step::ReportStep));
        registry
    }

    /// The tool set of planning: nothing that writes; `shell` runs only commands that read.
    pub fn read_only() -> Self {
        ToolRegistry {
            tools: vec![
                Box::new(shell::Shell { read_only: true }),
                Box::new(read_file::ReadFile),
                Box::new(list_dir::ListDir),
                Box::new(grep::Grep),
                Box::new(ask_user::AskUser),
            ],
        }
    }

    /// The specs offered now, in the registry's order.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .filter(|tool| tool.offered())
            .map(|tool| tool.spec())
            .collect()
    }

    /// Removes the tools of these names (an MCP server's, when what it offers changed).
    pub fn remove(&mut self, names: &[String]) {
        self.tools
            .retain(|tool| !names.iter().any(|n| n == tool.name()));
    }

    /// Adds tools from outside this crate (an MCP server's), after the built-in ones. A name
    /// the registry has already is not added twice: the first tool keeps it.
    pub fn extend(&mut self, tools: Vec<Box<dyn Tool>>) -> Vec<String> {
        let mut refused = Vec::new();
        for tool in tools {
            if self.find(tool.name()).is_some() {
                refused.push(tool.name().to_string());
            } else {
                self.tools.push(tool);
            }
        }
        refused
    }

    pub fn names(&self) -> Vec<String> {
        self.tools
            .iter()
            .map(|tool| tool.name().to_string())
            .collect()
    }

    fn find(&self, name: &str) -> Option<&dyn Tool> {
        self.tools
            .iter()
            .find(|tool| tool.name() == name)
            .map(|tool| tool.as_ref())
    }

    /// What a call will do, from the tool itself: its kind, the actions to show, and what it
    /// touches (for rules, approvals and the grace window).
    pub fn describe(&self, name: &str, arguments: &str, ctx: &ToolContext) -> Described {
        let Some(tool) = self.find(name) else {
            return Described {
                kind: None,
                actions: Vec::new(),
                touches: Touches::default(),
            };
        };
        let (actions, touches) = match serde_json::from_str::<serde_json::Value>(arguments) {
            Ok(value) => tool.describe(&value, ctx),
            Err(_) => (Vec::new(), Touches::default()),
        };
        Described {
            kind: Some(tool.kind()),
            actions,
            touches,
        }
    }

    /// Runs the named tool with the model's raw arguments text.
    pub async fn call(&self, name: &str, arguments: &str, ctx: &ToolContext) -> ToolOutput {
        let Some(tool) = self.find(name) else {
            return ToolOutput::error(format!(
                "unknown tool `{name}`. The available tools are: {}.",
                self.names().join(", ")
            ));
        };
        let arguments = if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        };
        let value: serde_json::Value = match serde_json::from_str(arguments) {
            Ok(value) => value,
            Err(e) => {
                return ToolOutput::error(format!(
                    "the arguments for {name} are not valid JSON ({e}): {arguments}. \
                     Call {name} again with a JSON object that matches its schema."
                ));
            }
        };
        budget::within_budget(tool.call(value, ctx).await, ctx.max_output_bytes)
    }
}

/// The operating system's reason in an I/O error, without the path `fs-err` adds (for messages
/// that name the file themselves — the one the model knows, not a temp file beside it).
pub(crate) fn os_reason(error: &std::io::Error) -> String {
    std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string)
}

/// Parses a tool's markdown: the first line names the tool; the rest is its description.
pub(crate) fn description(markdown: &str) -> String {
    markdown
        .lines()
        .skip_while(|line| line.starts_with('#') || line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}
