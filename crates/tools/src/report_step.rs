#![doc = include_str!("report_step.md")]
//!
//! ## Implementation notes
//!
//! Offered only in a plan run's step sessions ([`crate::ToolRegistry::plan_step`]). The report
//! reaches the engine as an [`crate::Effect::Step`]; the session journals it and hands the last
//! one of the task to the runner in `task_completed`, so a step's outcome is a structured signal,
//! never a phrase in the answer.

use cox_protocol::{Action, StepReport, ToolKind, ToolSpec};
use serde::Deserialize;
use serde_json::json;

use crate::{BoxFuture, Effect, Tool, ToolContext, ToolOutput, Touches, description, parse_args};

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Done,
    Failed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    status: Status,
    summary: String,
    #[serde(default)]
    changed: Option<String>,
}

/// The tool's name, as the model calls it.
pub const NAME: &str = "report_step";

pub struct ReportStep;

impl Tool for ReportStep {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("report_step.md")),
            parameters: json!({
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["done", "failed"]},
                    "summary": {"type": "string", "description": "what changed, or why the step failed"},
                    "changed": {"type": "string", "description": "only when a directive from the person made the outcome differ from the step's title: one line saying how"}
                },
                "required": ["status", "summary"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Interact
    }

    fn describe(
        &self,
        arguments: &serde_json::Value,
        _ctx: &ToolContext,
    ) -> (Vec<Action>, Touches) {
        let actions = match arguments["status"].as_str() {
            Some(status) => vec![Action::Report {
                done: status == "done",
            }],
            None => Vec::new(),
        };
        (actions, Touches::default())
    }

    fn call<'a>(
        &'a self,
        arguments: serde_json::Value,
        _ctx: &'a ToolContext,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let args = match parse_args::<Args>(NAME, arguments) {
                Ok(args) => args,
                Err(output) => return output,
            };
            if args.summary.trim().is_empty() {
                return ToolOutput::error(
                    "`summary` is empty; say what you changed, or why the step failed.",
                );
            }
            let done = matches!(args.status, Status::Done);
            let mut output = ToolOutput::ok(if done {
                "Step reported done. Answer with your short summary."
            } else {
                "Step reported failed. Answer with your short summary of why."
            });
            // A blank account is no account: the plan marks a changed step only with words.
            let changed = args
                .changed
                .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|line| !line.is_empty());
            output.effect = Some(Effect::Step(StepReport {
                done,
                summary: args.summary,
                changed,
            }));
            output
        })
    }
}
