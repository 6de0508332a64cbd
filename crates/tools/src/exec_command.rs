#![doc = include_str!("exec_command.md")]
//!
//! ## Implementation notes
//!
//! The session is managed by [`crate::terminal::Terminals`]; this tool parses the call, builds the
//! argv (`bash -c CMD` by default: no login profile, whose start-up noise and writes outside the
//! sandbox only get in the way) and reports. `tty: false` is accepted for models trained on
//! Codex and still gets a terminal (one way to run a command keeps the sandbox and lifetime rules
//! in one place; `shell` is the way without one).

use cox_protocol::{Action, ToolKind, ToolSpec};
use serde::Deserialize;
use serde_json::json;

use crate::terminal::{self, EXEC_YIELD_MS, MAX_YIELD_MS, Spawn};
use crate::{BoxFuture, Tool, ToolContext, ToolOutput, Touches, description};

/// The tool's name, as the model calls it.
pub const NAME: &str = "exec_command";

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Cmd {
    Line(String),
    Argv(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    cmd: Cmd,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    yield_time_ms: Option<u64>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default)]
    shell: Option<String>,
    #[serde(default)]
    login: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    tty: Option<bool>,
    #[serde(default)]
    with_escalated_permissions: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    justification: Option<String>,
}

pub struct ExecCommand;

impl Args {
    /// The command line rules and approvals read, and the argv that runs.
    fn command(&self) -> Result<(String, Vec<String>), String> {
        match &self.cmd {
            Cmd::Line(line) if line.trim().is_empty() => {
                Err("`cmd` is empty; give the command to run.".to_string())
            }
            Cmd::Line(line) => {
                let shell = self.shell.clone().unwrap_or_else(|| "bash".to_string());
                let flag = if self.login.unwrap_or(false) {
                    "-lc"
                } else {
                    "-c"
                };
                Ok((line.clone(), vec![shell, flag.to_string(), line.clone()]))
            }
            Cmd::Argv(argv) if argv.is_empty() => {
                Err("`cmd` is an empty array; give at least the program name.".to_string())
            }
            Cmd::Argv(argv) => Ok((argv.join(" "), argv.clone())),
        }
    }
}

impl Tool for ExecCommand {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("exec_command.md")),
            parameters: json!({
                "type": "object",
                "properties": {
                    "cmd": {"type": "string", "description": "the command line, run with bash -c"},
                    "workdir": {"type": "string", "description": "directory to run in, inside the workspace"},
                    "yield_time_ms": {"type": "integer", "description": "how long to wait for output before returning (default 10000)"},
                    "max_output_tokens": {"type": "integer", "description": "most output to return"},
                    "shell": {"type": "string", "description": "shell to run cmd with (default bash)"},
                    "login": {"type": "boolean", "description": "run the shell as a login shell (default false)"},
                    "tty": {"type": "boolean", "description": "accepted for compatibility; sessions always get a terminal"},
                    "with_escalated_permissions": {"type": "boolean", "description": "run outside the sandbox (needs the person's approval)"},
                    "justification": {"type": "string", "description": "why it must leave the sandbox"}
                },
                "required": ["cmd"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Execute
    }

    fn describe(
        &self,
        arguments: &serde_json::Value,
        _ctx: &ToolContext,
    ) -> (Vec<Action>, Touches) {
        let Ok(args) = serde_json::from_value::<Args>(arguments.clone()) else {
            return (Vec::new(), Touches::default());
        };
        let Ok((line, _)) = args.command() else {
            return (Vec::new(), Touches::default());
        };
        let touches = Touches {
            command: Some(line.clone()),
            edits: Vec::new(),
            patch: None,
            escalate: args.with_escalated_permissions.unwrap_or(false),
            unclear: None,
            external: None,
        };
        (vec![Action::Run { command: line }], touches)
    }

    fn call<'a>(
        &'a self,
        arguments: serde_json::Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let (args, terminals) = match terminal::prepare::<Args>(NAME, arguments, ctx) {
                Ok(prepared) => prepared,
                Err(output) => return output,
            };
            let (line, argv) = match args.command() {
                Ok(command) => command,
                Err(message) => return ToolOutput::error(message),
            };
            let workdir = match crate::shell::resolve_workdir(args.workdir.as_deref(), ctx) {
                Ok(dir) => dir,
                Err(message) => return ToolOutput::error(message),
            };
            let spawn = Spawn {
                argv,
                command: line.clone(),
                workdir,
                escalated: args.with_escalated_permissions.unwrap_or(false),
            };
            let started = std::time::Instant::now();
            let term = match terminals.start(spawn, ctx).await {
                Ok(term) => term,
                Err(message) => return ToolOutput::error(message),
            };
            let yield_ms = args
                .yield_time_ms
                .unwrap_or(EXEC_YIELD_MS)
                .min(MAX_YIELD_MS);
            let budget = terminal::budget(args.max_output_tokens, ctx);
            let text = term.settle(yield_ms, budget, &ctx.cancel).await;
            terminal::report(&term, terminals, text, started.elapsed(), Some(line), None)
        })
    }
}
