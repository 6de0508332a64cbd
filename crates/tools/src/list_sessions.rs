#![doc = include_str!("list_sessions.md")]

use cox_protocol::{Action, ToolKind, ToolSpec};
use serde_json::json;

use crate::{BoxFuture, Tool, ToolContext, ToolOutput, Touches, description, terminal};

/// The tool's name, as the model calls it.
pub const NAME: &str = "list_sessions";

pub struct ListSessions;

impl Tool for ListSessions {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("list_sessions.md")),
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Read
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
        _arguments: serde_json::Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let terminals = match terminal::of(ctx) {
                Ok(terminals) => terminals,
                Err(output) => return output,
            };
            let listed = terminals.list();
            if listed.is_empty() {
                return ToolOutput::ok("no terminal sessions");
            }
            let lines: Vec<String> = listed
                .iter()
                .map(|t| {
                    let state = match t.exit {
                        None => "running".to_string(),
                        Some(exit) => exit.to_string(),
                    };
                    format!("session {}: {} ({state}, {} s)", t.id, t.command, t.seconds)
                })
                .collect();
            ToolOutput::ok(format!(
                "{} of at most {} running\n{}",
                terminals.running(),
                terminals.max(),
                lines.join("\n")
            ))
        })
    }
}
