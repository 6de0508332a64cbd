#![doc = include_str!("write_stdin.md")]
//!
//! ## Implementation notes
//!
//! What is typed is described as the command lines it holds, read after what the session has
//! not submitted yet and with line editing applied ([`crate::terminal::lines`]), so project rules
//! and the approval policy read it as they read `shell`'s command — a session
//! started outside the sandbox asks again for every line typed into it, since that line runs
//! outside too. An interrupt during the wait kills the session.

use cox_protocol::{Action, ToolKind, ToolSpec};
use serde::Deserialize;
use serde_json::json;

use crate::terminal::{self, MAX_YIELD_MS, WRITE_YIELD_MS, keys};
use crate::{BoxFuture, Tool, ToolContext, ToolOutput, Touches, description};

/// The tool's name, as the model calls it.
pub const NAME: &str = "write_stdin";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    session_id: u32,
    #[serde(default)]
    chars: String,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    yield_time_ms: Option<u64>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
}

impl Args {
    /// The bytes to type: `chars`, then each key; an unknown key name is an error.
    fn bytes(&self, application_cursor: bool) -> Result<Vec<u8>, String> {
        let mut bytes = self.chars.as_bytes().to_vec();
        for key in &self.keys {
            match keys::bytes(key, application_cursor) {
                Some(more) => bytes.extend(more),
                None => {
                    return Err(format!(
                        "unknown key `{key}` in `keys`; the keys are: {}. Send other text in `chars`.",
                        keys::KNOWN
                    ));
                }
            }
        }
        Ok(bytes)
    }
}

pub struct WriteStdin;

impl Tool for WriteStdin {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("write_stdin.md")),
            parameters: json!({
                "type": "object",
                "properties": {
                    "session_id": {"type": "integer", "description": "the session exec_command started"},
                    "chars": {"type": "string", "description": "text to type, as it is (may be empty: only read)"},
                    "keys": {"type": "array", "items": {"type": "string"}, "description": "named keys sent after chars: Enter, Tab, Esc, Up, C-c, C-d, …"},
                    "yield_time_ms": {"type": "integer", "description": "how long to wait for output before returning (default 250)"},
                    "max_output_tokens": {"type": "integer", "description": "most output to return"}
                },
                "required": ["session_id"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Execute
    }

    fn describe(&self, arguments: &serde_json::Value, ctx: &ToolContext) -> (Vec<Action>, Touches) {
        let Ok(args) = serde_json::from_value::<Args>(arguments.clone()) else {
            return (Vec::new(), Touches::default());
        };
        let term = ctx.terminals.as_ref().and_then(|t| t.get(args.session_id));
        let application = term.as_ref().is_some_and(|t| t.application_cursor());
        let Ok(bytes) = args.bytes(application) else {
            return (Vec::new(), Touches::default());
        };
        if bytes.is_empty() {
            return (Vec::new(), Touches::default());
        }
        let typed = match &term {
            Some(term) => terminal::lines::follow(&term.unsubmitted(), &bytes, term.full_screen()),
            None => terminal::lines::follow(b"", &bytes, false),
        };
        let touches = Touches {
            command: (!typed.lines.is_empty()).then_some(typed.lines),
            edits: Vec::new(),
            patch: None,
            escalate: term.is_some_and(|t| t.escalated),
            unclear: typed.unclear,
            external: None,
        };
        let action = Action::Type {
            session: args.session_id,
            text: terminal::typed_text(&bytes),
        };
        (vec![action], touches)
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
            let bytes = match args.bytes(term.application_cursor()) {
                Ok(bytes) => bytes,
                Err(message) => return ToolOutput::error(message),
            };
            let started = std::time::Instant::now();
            let wrote = if bytes.is_empty() {
                None
            } else if term.exit().is_some() {
                let text = term.look(terminal::budget(args.max_output_tokens, ctx));
                let mut output =
                    terminal::report(&term, terminals, text, started.elapsed(), None, None);
                output.ok = false;
                output.output = format!(
                    "nothing was typed: the program has ended\n{}",
                    output.output
                );
                return output;
            } else {
                if let Err(message) = term.write(&bytes).await {
                    return ToolOutput::error(message);
                }
                term.typed(&bytes);
                Some(terminal::typed_text(&bytes))
            };
            let yield_ms = args
                .yield_time_ms
                .unwrap_or(WRITE_YIELD_MS)
                .min(MAX_YIELD_MS);
            let budget = terminal::budget(args.max_output_tokens, ctx);
            let text = term.settle(yield_ms, budget, &ctx.cancel).await;
            terminal::report(&term, terminals, text, started.elapsed(), None, wrote)
        })
    }
}
