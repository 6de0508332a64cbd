//! Events as lines: agent text, an action line for every tool call (read / search / list / create /
//! modify / delete / run), folded command output, coloured diffs, plan, steering notices.

use cox_protocol::{Event, SessionStatus};
use serde_json::Value;

use crate::{Mode, Ui};

/// How a line looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Prompt,
    Action,
    Dim,
    Add,
    Remove,
    Hunk,
    Warn,
    Error,
    Steer,
}

/// Output lines shown under an action before folding.
const FOLD_LINES: usize = 4;
/// Diff lines shown per patch.
const DIFF_LINES: usize = 60;

pub(crate) fn event(ui: &mut Ui, event: &Event) -> std::io::Result<()> {
    let screen = &mut ui.screen;
    match event {
        Event::SessionStarted {
            provider,
            model,
            cwd,
            ..
        } => {
            screen.line(&format!("cox · {provider} · {model} · {cwd}"), Tone::Dim)?;
        }
        Event::AgentMessageDelta { text } => {
            screen.end_reasoning()?;
            screen.stream(text)?;
        }
        Event::AgentMessage { .. } => screen.flush_partial()?,
        // Reasoning summaries stream dimmed, apart from the answer.
        Event::ReasoningDelta { text } => screen.reason(text)?,
        Event::TurnStarted { .. } => {
            ui.activity = "THINKING".to_string();
            // A task the UI did not start itself (the next step of a plan run) is work too.
            if ui.mode == Mode::Prompt {
                ui.mode = Mode::Running;
            }
        }
        Event::TurnCompleted { .. } => {}
        Event::ToolCall {
            name,
            arguments,
            preview,
            ..
        } => {
            screen.end_reasoning()?;
            screen.flush_partial()?;
            ui.activity = format!("RUNNING {name}");
            // The engine's preview knows the line ranges a patch will touch; else describe the call.
            let lines = if preview.is_empty() {
                actions(name, arguments)
            } else {
                preview.iter().map(|p| format!("● {p}")).collect()
            };
            for line in lines {
                screen.line(&line, Tone::Action)?;
            }
        }
        Event::ActionPending { name, grace_ms, .. } => {
            screen.line(
                &format!("  ({name} starts in {grace_ms} ms — SPACE to hold it)"),
                Tone::Dim,
            )?;
        }
        Event::ToolResult { ok, output, .. } => {
            ui.activity = "THINKING".to_string();
            let tone = if *ok { Tone::Dim } else { Tone::Error };
            // A command's result: its exit line, then the first lines of what it printed.
            let (head, body) = match output.split_once("\noutput:\n") {
                Some((head, body)) => (Some(head.replace('\n', " · ")), body),
                None => (None, output.as_str()),
            };
            if let Some(head) = head {
                screen.line(&format!("  │ {head}"), tone)?;
            }
            let lines: Vec<&str> = body.lines().collect();
            for line in lines.iter().take(FOLD_LINES) {
                screen.line(&format!("  │ {line}"), tone)?;
            }
            if lines.len() > FOLD_LINES {
                screen.line(
                    &format!("  │ … {} more lines", lines.len() - FOLD_LINES),
                    Tone::Dim,
                )?;
            }
        }
        Event::PatchApplied { diff, .. } => {
            let lines: Vec<&str> = diff.lines().collect();
            for line in lines.iter().take(DIFF_LINES) {
                let tone = if line.starts_with("+++") || line.starts_with("---") {
                    Tone::Prompt
                } else if line.starts_with('+') {
                    Tone::Add
                } else if line.starts_with('-') {
                    Tone::Remove
                } else if line.starts_with("@@") {
                    Tone::Hunk
                } else {
                    Tone::Dim
                };
                screen.line(&format!("  {line}"), tone)?;
            }
            if lines.len() > DIFF_LINES {
                screen.line(
                    &format!("  … {} more diff lines", lines.len() - DIFF_LINES),
                    Tone::Dim,
                )?;
            }
        }
        Event::PlanUpdated { steps, .. } => {
            ui.plan = steps
                .iter()
                .map(|step| {
                    let mark = step.status.mark();
                    format!("  {mark} {}", step.step)
                })
                .collect();
            screen.line("● Plan", Tone::Action)?;
            for step in ui.plan.clone() {
                ui.screen.line(&step, Tone::Plain)?;
            }
        }
        Event::QuestionAsked { call_id, question } => {
            screen.flush_partial()?;
            screen.line(&format!("? {question}"), Tone::Prompt)?;
            ui.mode = Mode::Answer(call_id.clone());
        }
        Event::Usage {
            input_tokens,
            output_tokens,
            context_tokens,
            context_window,
            ..
        } => {
            ui.tokens += input_tokens + output_tokens;
            ui.context = Some((*context_tokens, *context_window));
        }
        Event::Retrying {
            attempt,
            max_attempts,
            reason,
            delay_ms,
        } => {
            screen.line(
                &format!(
                    "retrying in {:.1}s ({attempt}/{max_attempts}): {reason}",
                    *delay_ms as f64 / 1000.0
                ),
                Tone::Warn,
            )?;
        }
        Event::Error { message, .. } => screen.line(&format!("error: {message}"), Tone::Error)?,
        Event::ApprovalRequested {
            call_id,
            action,
            reason,
        } => {
            screen.flush_partial()?;
            screen.line(&format!("? approve `{action}` — {reason}"), Tone::Prompt)?;
            screen.line(
                "  y: yes once · s: yes for this command, this session · p: yes, always in this project · n: no",
                Tone::Dim,
            )?;
            ui.mode = Mode::Approval(call_id.clone());
        }
        Event::RuleBlocked {
            rule_id, reason, ..
        } => screen.line(
            &format!("  ⛔ blocked by rule {rule_id}: {reason}"),
            Tone::Warn,
        )?,
        Event::Warning { message } => screen.line(&format!("warning: {message}"), Tone::Warn)?,
        Event::Paused => {
            screen.flush_partial()?;
            screen.line(
                "⏸ PAUSED — nothing new starts until you resume (Enter) or steer (type + Enter)",
                Tone::Warn,
            )?;
            if ui.mode == Mode::Running {
                ui.mode = Mode::Paused;
            }
        }
        Event::Resumed => {
            screen.line("▶ resumed", Tone::Dim)?;
            if ui.mode == Mode::Paused {
                ui.mode = Mode::Running;
            }
        }
        Event::Steered { text } => {
            screen.line(&format!("↳ steered: {text}"), Tone::Steer)?;
            if ui.mode == Mode::Paused || ui.mode == Mode::Prompt {
                ui.mode = Mode::Running;
            }
        }
        Event::Compacted {
            tokens_before,
            tokens_after,
            ..
        } => {
            screen.line(
                &format!("context compacted: {tokens_before} → {tokens_after} tokens"),
                Tone::Dim,
            )?;
        }
        Event::TaskCompleted { status, .. } => {
            screen.flush_partial()?;
            match status {
                SessionStatus::Completed => {}
                SessionStatus::Interrupted => screen.line("interrupted", Tone::Warn)?,
                SessionStatus::Failed => screen.line("the task failed", Tone::Error)?,
                SessionStatus::ProviderError => {
                    screen.line("the provider failed; see the error above", Tone::Error)?
                }
            }
            ui.task_done(*status);
        }
        Event::SessionCompleted {
            usage, cost_usd, ..
        } => {
            let cost = cost_usd.map(|c| format!(" · ≈${c:.4}")).unwrap_or_default();
            screen.line(
                &format!(
                    "tokens: {} in ({} cached) · {} out{cost}",
                    usage.input_tokens, usage.cached_input_tokens, usage.output_tokens
                ),
                Tone::Dim,
            )?;
        }
    }
    Ok(())
}

/// The action line(s) announcing a tool call.
pub(crate) fn actions(name: &str, arguments: &str) -> Vec<String> {
    let args: Value = serde_json::from_str(arguments).unwrap_or(Value::Null);
    let text = |key: &str| args[key].as_str().unwrap_or("").to_string();
    match name {
        "read_file" => {
            let range = match (args["offset"].as_u64(), args["limit"].as_u64()) {
                (Some(from), Some(count)) => {
                    format!(" lines {from}-{}", from + count.saturating_sub(1))
                }
                (Some(from), None) => format!(" from line {from}"),
                _ => String::new(),
            };
            vec![format!("● Read {}{range}", text("path"))]
        }
        "grep" => vec![format!(
            "● Search /{}/ in {}",
            text("pattern"),
            args["path"].as_str().unwrap_or(".")
        )],
        "list_dir" => vec![format!("● List {}", args["path"].as_str().unwrap_or("."))],
        "apply_patch" => patch_actions(&text("input")),
        "shell" => {
            let command = match &args["command"] {
                Value::Array(argv) => argv
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                Value::String(line) => line.clone(),
                _ => arguments.to_string(),
            };
            if command.contains("*** Begin Patch") {
                patch_actions(&command)
            } else {
                vec![format!(
                    "● Run {}",
                    command.lines().next().unwrap_or_default()
                )]
            }
        }
        "update_plan" | "ask_user" => Vec::new(),
        other => vec![format!("● {other} {arguments}")],
    }
}

/// One line per file a patch touches: create, delete, modify (with where the hunks' first lines
/// are, as the `@@` hints give them), move.
fn patch_actions(patch: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in patch.lines() {
        let headers = [
            ("*** Add File: ", "● Create "),
            ("*** Delete File: ", "● Delete "),
            ("*** Update File: ", "● Modify "),
        ];
        if let Some((path, verb)) = headers
            .iter()
            .find_map(|(header, verb)| line.strip_prefix(header).map(|path| (path, verb)))
        {
            out.push(format!("{verb}{}", path.trim()));
            continue;
        }
        let suffix = match (line.strip_prefix("*** Move to: "), line.strip_prefix("@@ ")) {
            (Some(path), _) => format!(" → {}", path.trim()),
            (None, Some(hint)) if !hint.trim().is_empty() => format!(" @ {}", hint.trim()),
            _ => continue,
        };
        if let Some(last) = out.last_mut() {
            last.push_str(&suffix);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_lines() {
        assert_eq!(
            actions("read_file", r#"{"path":"src/a.rs","offset":45,"limit":45}"#),
            ["● Read src/a.rs lines 45-89"]
        );
        assert_eq!(
            actions("shell", r#"{"command":["cargo","test"]}"#),
            ["● Run cargo test"]
        );
        let patch = serde_json::json!({"input": "*** Begin Patch\n*** Update File: src/db.js\n@@ function connect() {\n-a\n+b\n*** Add File: t.js\n+x\n*** End Patch"});
        assert_eq!(
            actions("apply_patch", &patch.to_string()),
            ["● Modify src/db.js @ function connect() {", "● Create t.js"]
        );
    }
}
