#![doc = include_str!("kill_session.md")]

use cox_protocol::{Action, ToolKind, ToolSpec};
use serde::Deserialize;
use serde_json::json;

use crate::{BoxFuture, Tool, ToolContext, ToolOutput, Touches, description, terminal};

/// The tool's name, as the model calls it.
pub const NAME: &str = "kill_session";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    session_id: u32,
}

pub struct KillSession;

impl Tool for KillSession {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("kill_session.md")),
            parameters: json!({
                "type": "object",
                "properties": {"session_id": {"type": "integer"}},
                "required": ["session_id"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Interact
    }

    fn describe(
        &self,
        _arguments: &serde_json::Value,
        _ctx: &ToolContext,
    ) -> (Vec<Action>, Touches) {
        (Vec::new(), Touches::default())
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
            let term = match terminal::find(terminals, args.session_id) {
                Ok(term) => term,
                Err(output) => return output,
            };
            let started = std::time::Instant::now();
            term.kill().await;
            let text = term.look(terminal::budget(None, ctx));
            let mut output =
                terminal::report(&term, terminals, text, started.elapsed(), None, None);
            output.ok = true;
            output
        })
    }
}
