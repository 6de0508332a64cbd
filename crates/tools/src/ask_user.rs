#![doc = include_str!("ask_user.md")]
//!
//! ## Implementation notes
//!
//! When a person can answer, the question goes to the engine through [`ToolContext::asker`]; the
//! engine emits `question_asked` and waits for `Op::Answer`. Headless (`asker` is `None`), the tool
//! answers at once with [`HEADLESS_ANSWER`].

use cox_protocol::{Action, ToolKind, ToolSpec};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use crate::{BoxFuture, Question, Tool, ToolContext, ToolOutput, Touches, description, parse_args};

pub const HEADLESS_ANSWER: &str = "No one is available to answer: this is a headless run. Proceed on \
reasonable assumptions, and state each assumption in your final answer.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    question: String,
}

/// The tool's name, as the model calls it.
pub const NAME: &str = "ask_user";

pub struct AskUser;

impl Tool for AskUser {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("ask_user.md")),
            parameters: json!({
                "type": "object",
                "properties": {"question": {"type": "string"}},
                "required": ["question"],
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
        // The question shows itself (`question_asked`).
        (Vec::new(), Touches::default())
    }

    fn call<'a>(
        &'a self,
        arguments: serde_json::Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let args = match parse_args::<Args>(NAME, arguments) {
                Ok(args) => args,
                Err(output) => return output,
            };
            if args.question.trim().is_empty() {
                return ToolOutput::error("`question` is empty");
            }
            let Some(asker) = &ctx.asker else {
                return ToolOutput::ok(HEADLESS_ANSWER);
            };
            let (reply, answer) = oneshot::channel();
            let question = Question {
                text: args.question,
                reply,
            };
            if asker.send(question).await.is_err() {
                return ToolOutput::ok(HEADLESS_ANSWER);
            }
            tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => ToolOutput::error("interrupted by the user before answering"),
                answer = answer => match answer {
                    Ok(text) if !text.trim().is_empty() => ToolOutput::ok(format!("The person answered: {text}")),
                    Ok(_) => ToolOutput::ok("The person gave an empty answer; proceed on stated assumptions."),
                    Err(_) => ToolOutput::ok(HEADLESS_ANSWER),
                },
            }
        })
    }
}
