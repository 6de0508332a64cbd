#![doc = include_str!("apply_patch.md")]
//!
//! ## Implementation notes
//!
//! The engine is [`crate::patch`]. The result lists each file as `A`dded, `M`odified, `D`eleted or
//! `R`enamed with its added and removed line counts; the unified diff travels beside the result
//! ([`crate::ToolOutput::diff`]) for front ends, and is not sent to the model.

use cox_protocol::{Action, FileChange, ToolKind, ToolOutcome, ToolSpec};
use serde::Deserialize;
use serde_json::json;

use crate::patch::{self, ChangeKind};
use crate::{BoxFuture, Tool, ToolContext, ToolOutput, Touches, description, parse_args};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    input: String,
}

/// The tool's name, as the model calls it.
pub const NAME: &str = "apply_patch";

pub struct ApplyPatch;

impl Tool for ApplyPatch {
    fn name(&self) -> &str {
        NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.to_string(),
            description: description(include_str!("apply_patch.md")),
            parameters: json!({
                "type": "object",
                "properties": {"input": {"type": "string", "description": "the whole patch"}},
                "required": ["input"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Write
    }

    fn describe(&self, arguments: &serde_json::Value, ctx: &ToolContext) -> (Vec<Action>, Touches) {
        match arguments["input"].as_str() {
            Some(text) => describe_patch(text, ctx),
            None => (Vec::new(), Touches::default()),
        }
    }

    fn call<'a>(
        &'a self,
        arguments: serde_json::Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            match parse_args::<Args>(NAME, arguments) {
                Ok(args) => run(&args.input, ctx),
                Err(output) => output,
            }
        })
    }
}

/// The actions and edits of a patch; shared with `shell`'s heredoc route.
pub(crate) fn describe_patch(text: &str, ctx: &ToolContext) -> (Vec<Action>, Touches) {
    let touches = Touches {
        edits: patch::edits(text).unwrap_or_default(),
        patch: Some(text.to_string()),
        ..Touches::default()
    };
    (patch::preview(text, ctx).unwrap_or_default(), touches)
}

/// Applies `patch` and renders the result; shared with `shell`'s heredoc route.
pub fn run(patch: &str, ctx: &ToolContext) -> ToolOutput {
    let applied = match patch::apply(patch, ctx) {
        Ok(applied) => applied,
        Err(message) => return ToolOutput::error(message),
    };
    let mut text = String::from("Success. Updated the following files:\n");
    let mut diff = String::new();
    for change in &applied.changes {
        let counts = match (change.added, change.removed) {
            (a, 0) => format!("+{a}"),
            (0, r) => format!("-{r}"),
            (a, r) => format!("+{a} -{r}"),
        };
        let line = match change.kind {
            ChangeKind::Added => format!("A {} ({counts})", change.path),
            ChangeKind::Modified => format!("M {} ({counts})", change.path),
            ChangeKind::Deleted => format!("D {} ({counts})", change.path),
            ChangeKind::Moved => format!(
                "R {} -> {} ({counts})",
                change.path,
                change.moved_to.as_deref().unwrap_or_default()
            ),
        };
        text.push_str(&line);
        text.push('\n');
        diff.push_str(&change.diff);
    }
    for note in &applied.notes {
        text.push_str("note: ");
        text.push_str(note);
        text.push('\n');
    }
    let changed_files = applied
        .changes
        .iter()
        .map(|change| FileChange {
            path: change
                .moved_to
                .clone()
                .unwrap_or_else(|| change.path.clone()),
            added: change.added as u64,
            removed: change.removed as u64,
            hunks: change.hunks.clone(),
        })
        .collect();
    ToolOutput {
        ok: true,
        output: text,
        effect: Some(crate::Effect::Diff(diff)),
        full: None,
        outcome: ToolOutcome {
            changed_files,
            ..ToolOutcome::default()
        },
    }
}
