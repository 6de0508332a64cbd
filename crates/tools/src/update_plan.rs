#![doc = include_str!("update_plan.md")]
//!
//! ## Implementation notes
//!
//! The tool validates and hands the plan to the engine as an [`crate::Effect::Plan`], which emits
//! `plan_updated`; the model gets a one-line acknowledgement.

use cox_protocol::{Action, PlanStep, StepStatus, ToolKind, ToolSpec};
use serde::Deserialize;
use serde_json::json;

use crate::{BoxFuture, Effect, Tool, ToolContext, ToolOutput, Touches, description, parse_args};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    plan: Vec<PlanStep>,
    #[serde(default)]
    explanation: Option<String>,
}

/// The tool's name, as the model calls it.
pub const NAME: &str = "update_plan";

pub struct UpdatePlan;

impl Tool for UpdatePlan {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("update_plan.md")),
            parameters: json!({
                "type": "object",
                "properties": {
                    "plan": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "step": {"type": "string"},
                                "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}
                            },
                            "required": ["step", "status"],
                            "additionalProperties": false
                        }
                    },
                    "explanation": {"type": "string"}
                },
                "required": ["plan"],
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
        // The plan shows itself (`plan_updated`).
        (Vec::new(), Touches::default())
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
            if args.plan.is_empty() {
                return ToolOutput::error("`plan` is empty; send every step of the plan");
            }
            if let Some(blank) = args.plan.iter().position(|s| s.step.trim().is_empty()) {
                return ToolOutput::error(format!("step {} has no text", blank + 1));
            }
            let active = args
                .plan
                .iter()
                .filter(|s| s.status == StepStatus::InProgress)
                .count();
            if active > 1 {
                return ToolOutput::error(format!(
                    "{active} steps are in_progress; at most one step may be in progress at a time"
                ));
            }
            let done = args
                .plan
                .iter()
                .filter(|s| s.status == StepStatus::Completed)
                .count();
            ToolOutput {
                ok: true,
                output: format!(
                    "Plan updated: {done} of {} steps completed.",
                    args.plan.len()
                ),
                effect: Some(Effect::Plan {
                    steps: args.plan,
                    explanation: args.explanation,
                }),
                full: None,
                outcome: Default::default(),
            }
        })
    }
}
