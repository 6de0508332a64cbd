//! The tools cox offers a model, and the [`ToolRegistry`] that dispatches a model's call to one.
//!
//! Each tool is a module whose `//!` documentation is also the description sent to the model (one
//! markdown file serves both), so what the model is told and what a reader sees cannot drift apart.
//! Adding a tool is local: write the module, add it to [`ToolRegistry::standard`].
//!
//! A tool never fails the session: bad arguments, a missing file or a failed command come back as a
//! [`ToolOutput`] with `ok: false` and a message that tells the model exactly what was wrong.

pub mod apply_patch;
pub mod ask_user;
pub mod grep;
pub mod list_dir;
mod patch;
mod paths;
pub mod read_file;
pub mod shell;
mod truncate;
pub mod update_plan;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use cox_protocol::ToolSpec;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

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
        }
    }

    pub fn error(output: impl Into<String>) -> Self {
        ToolOutput {
            ok: false,
            output: output.into(),
            effect: None,
            full: None,
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
    /// Where file tools may write (the workspace, or `--target`).
    pub writable_roots: Vec<PathBuf>,
    /// Budget for a command's output as the model sees it, in bytes; head and tail kept beyond it.
    pub max_output_bytes: usize,
    /// Budget for the same output as the journal keeps it (larger).
    pub capture_bytes: usize,
    /// Environment variables removed from every child process (provider keys).
    pub hidden_env: Vec<String>,
    /// Run commands through this launcher (`cox __sandbox … --`), which applies the OS sandbox to
    /// itself and then execs the command; `None` runs them directly (full access).
    pub sandbox: Option<Vec<String>>,
    /// Where `ask_user` sends its question when a person can answer; `None` when headless.
    pub asker: Option<tokio::sync::mpsc::Sender<Question>>,
    pub cancel: CancellationToken,
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

/// What a tool call would do (see [`ToolRegistry::intent`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intent {
    pub command: Option<String>,
    /// (path as given, lines added)
    pub edits: Vec<(String, String)>,
}

/// One tool.
pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;
    fn call<'a>(
        &'a self,
        arguments: serde_json::Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, ToolOutput>;
}

/// Parses a tool's arguments, or says which argument is wrong in terms the model can act on.
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
                Box::new(apply_patch::ApplyPatch),
                Box::new(read_file::ReadFile),
                Box::new(list_dir::ListDir),
                Box::new(grep::Grep),
                Box::new(update_plan::UpdatePlan),
                Box::new(ask_user::AskUser),
            ],
        }
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

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|tool| tool.spec()).collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.tools.iter().map(|tool| tool.spec().name).collect()
    }

    /// What a call will change, for the action line shown before it runs: only calls that edit
    /// files (`apply_patch`, or a patch sent through `shell`) have one.
    pub fn preview(&self, name: &str, arguments: &str, ctx: &ToolContext) -> Vec<String> {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(arguments) else {
            return Vec::new();
        };
        let patch = match name {
            "apply_patch" => value["input"].as_str().map(str::to_string),
            "shell" => shell::patch_text(&value),
            _ => None,
        };
        patch
            .and_then(|text| patch::preview(&text, ctx))
            .unwrap_or_default()
    }

    /// What a call would do, for rule checks: the shell line it runs, and the files it edits with
    /// the lines it adds.
    pub fn intent(&self, name: &str, arguments: &str) -> Intent {
        let mut intent = Intent::default();
        let Ok(value) = serde_json::from_str::<serde_json::Value>(arguments) else {
            return intent;
        };
        match name {
            "shell" => {
                intent.command = shell::command_line(&value);
                if let Some(text) = shell::patch_text(&value) {
                    intent.edits = patch::edits(&text).unwrap_or_default();
                }
            }
            "apply_patch" => {
                if let Some(text) = value["input"].as_str() {
                    intent.edits = patch::edits(text).unwrap_or_default();
                }
            }
            _ => {}
        }
        intent
    }

    /// Runs the named tool with the model's raw arguments text.
    pub async fn call(&self, name: &str, arguments: &str, ctx: &ToolContext) -> ToolOutput {
        let Some(tool) = self.tools.iter().find(|tool| tool.spec().name == name) else {
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
        tool.call(value, ctx).await
    }
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
