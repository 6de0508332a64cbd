//! Events as lines: agent text, an action line for every tool call (read / search / list / create /
//! modify / delete / run), folded command output, coloured diffs, plan, steering notices.

use cox_protocol::{Action, Event, SessionStatus, StepState, ToolKind, ToolOutcome};

use crate::{Mode, Ui};

/// How a line looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    #[default]
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
    let ran = match event {
        Event::ToolResult { call_id, .. } | Event::PatchApplied { call_id, .. } => {
            ui.pending.as_ref().is_some_and(|p| &p.call_id == call_id)
        }
        Event::ToolCall { .. }
        | Event::Resumed
        | Event::Steered { .. }
        | Event::TaskCompleted { .. } => true,
        _ => false,
    };
    if ran {
        ui.pending = None;
    }
    let screen = &mut ui.screen;
    match event {
        Event::SessionStarted {
            session_id,
            provider,
            model,
            cwd,
        } => {
            ui.session_id = Some(session_id.0.clone());
            let header = format!("cox · {provider} · {model} · {cwd}");
            if ui.shown_header.as_ref() != Some(&header) {
                screen.line(&header, Tone::Dim)?;
                ui.shown_header = Some(header);
            }
        }
        Event::AgentMessageDelta { text } => {
            screen.end_reasoning()?;
            screen.stream(text)?;
        }
        Event::AgentMessage { .. } => screen.flush_partial()?,
        // Reasoning summaries stream dimmed, apart from the answer.
        Event::ReasoningDelta { text } => screen.reason(text)?,
        Event::Retracted { text, reasoning } => screen.retract(text, reasoning)?,
        // The `warning` that comes with it says so.
        Event::Truncated { .. } => {}
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
            kind,
            actions,
            ..
        } => {
            screen.end_reasoning()?;
            screen.flush_partial()?;
            ui.activity = format!("RUNNING {name}");
            // The tool described the call (with the line ranges a patch will touch); a tool that
            // only talks (plan, question) shows itself through its own events.
            for line in action_lines(name, *kind, actions) {
                screen.line(&line, Tone::Action)?;
            }
        }
        Event::ActionPending {
            call_id,
            name,
            grace_ms,
            preview,
            destructive,
        } => {
            ui.pending = Some(crate::ui::Pending {
                call_id: call_id.clone(),
                name: name.clone(),
                until: std::time::Instant::now() + std::time::Duration::from_millis(*grace_ms),
                destructive: destructive.clone(),
                preview: preview.clone(),
            });
        }
        Event::ToolResult {
            ok,
            output,
            outcome,
            ..
        } => {
            ui.activity = "THINKING".to_string();
            let tone = if *ok { Tone::Dim } else { Tone::Error };
            for (line, dim) in result_lines(*ok, output, outcome) {
                screen.line(&line, if dim { Tone::Dim } else { tone })?;
            }
        }
        Event::StepStarted { id, title } => {
            ui.plan_run = true;
            screen.flush_partial()?;
            screen.line(&format!("▶ step {id}: {title}"), Tone::Prompt)?;
        }
        Event::StepFinished {
            id,
            status,
            changed_files,
            changed,
            ..
        } => {
            let files = match changed_files.len() {
                0 => String::new(),
                1 => " · 1 file changed".to_string(),
                n => format!(" · {n} files changed"),
            };
            let (word, tone) = match status {
                StepState::Done => ("done", Tone::Dim),
                StepState::Failed => ("failed", Tone::Error),
                StepState::Skipped => ("skipped", Tone::Dim),
                StepState::Pending | StepState::InProgress => ("stopped", Tone::Warn),
            };
            screen.line(&format!("step {id} {word}{files}"), tone)?;
            if let Some(changed) = changed {
                // Done, but not as titled: the person steered it, and the plan file says so.
                screen.line(
                    &format!("  ↳ changed by a directive: {changed}"),
                    Tone::Warn,
                )?;
            }
        }
        Event::CheckStarted { kind, command } => {
            ui.activity = format!("CHECKING {}", kind.name());
            screen.line(&format!("● Check {}: {command}", kind.name()), Tone::Action)?;
        }
        Event::CheckFinished {
            kind,
            ok,
            output,
            outcome,
        } => {
            ui.activity = "THINKING".to_string();
            let tone = if *ok { Tone::Dim } else { Tone::Error };
            let verdict = if *ok { "passed" } else { "failing" };
            screen.line(&format!("  {}: {verdict}", kind.name()), tone)?;
            if !*ok {
                for (line, dim) in result_lines(*ok, output, outcome) {
                    screen.line(&line, if dim { Tone::Dim } else { tone })?;
                }
            }
        }
        Event::PatchApplied { diff, .. } => {
            ui.diffs.push(diff.clone());
            let lines: Vec<&str> = diff.lines().collect();
            for line in lines.iter().take(DIFF_LINES) {
                ui.screen.line(&format!("  {line}"), diff_tone(line))?;
            }
            if lines.len() > DIFF_LINES {
                ui.screen.line(
                    &format!("  … {} more diff lines", lines.len() - DIFF_LINES),
                    Tone::Dim,
                )?;
            }
        }
        Event::PlanUpdated { steps, .. } => {
            let before = std::mem::replace(&mut ui.plan, steps.clone());
            let same_steps = before.len() == steps.len()
                && steps
                    .iter()
                    .zip(&before)
                    .all(|(now, was)| now.step == was.step);
            // The whole plan when it is new or its steps changed; otherwise only the steps whose
            // status moved — and in a plan run not even those, as its step lines say it.
            let shown: Vec<String> = if !same_steps {
                steps.iter().map(plan_line).collect()
            } else if ui.plan_run {
                Vec::new()
            } else {
                steps
                    .iter()
                    .zip(&before)
                    .filter(|(now, was)| now.status != was.status)
                    .map(|(now, _)| plan_line(now))
                    .collect()
            };
            if !shown.is_empty() {
                screen.line("● Plan", Tone::Action)?;
                for line in shown {
                    ui.screen.line(&line, Tone::Plain)?;
                }
            }
        }
        Event::QuestionAsked { call_id, question } => {
            screen.flush_partial()?;
            screen.line(&format!("? {question}"), Tone::Prompt)?;
            ui.mode = Mode::Answer(call_id.clone());
        }
        Event::Usage {
            input_tokens,
            cached_input_tokens,
            output_tokens,
            context_tokens,
            context_window,
            cost_usd,
        } => {
            ui.tokens.input += input_tokens;
            ui.tokens.cached += cached_input_tokens;
            ui.tokens.output += output_tokens;
            if let Some(cost) = cost_usd {
                ui.tokens.cost_usd = Some(ui.tokens.cost_usd.unwrap_or(0.0) + cost);
            }
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
        Event::Checkpoint {
            id, kind, files, ..
        } => match kind {
            cox_protocol::CheckpointKind::Action => screen.line(
                &format!(
                    "  ◇ checkpoint {id}: {} — /undo puts it back",
                    cox_protocol::list_paths(files, 3)
                ),
                Tone::Dim,
            )?,
            cox_protocol::CheckpointKind::Outside => screen.line(
                &format!(
                    "  ◇ checkpoint {id}: changed outside cox: {}",
                    cox_protocol::list_paths(files, 3)
                ),
                Tone::Dim,
            )?,
            // `undone` says it.
            cox_protocol::CheckpointKind::Undo | cox_protocol::CheckpointKind::Rollback => {}
        },
        Event::Undone { undid, files, .. } => screen.line(
            &format!(
                "↶ undid checkpoint{} {}: {}",
                if undid.len() == 1 { "" } else { "s" },
                cox_protocol::list_ids(undid),
                cox_protocol::list_paths(files, 5)
            ),
            Tone::Steer,
        )?,
        // A warning each step's session repeats (an unknown model's catalog note) is shown once.
        Event::Warning { message } => {
            if ui.shown_warnings.insert(message.clone()) {
                screen.line(&format!("warning: {message}"), Tone::Warn)?;
            }
        }
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
        Event::TerminalStarted { id, command, .. } => {
            ui.terminals
                .insert(*id, (command.clone(), std::time::Instant::now()));
            screen.line(
                &format!("  ▣ terminal {id} running: {command} (/ps lists, /kill {id} ends it)"),
                Tone::Dim,
            )?;
        }
        // The tool result under the call shows it.
        Event::TerminalOutput { .. } => {}
        Event::McpServers { servers } => {
            if servers.is_empty() {
                screen.line(
                    "  no MCP servers configured ([mcp_servers.NAME] in config.toml)",
                    Tone::Dim,
                )?;
            }
            for server in servers {
                let state = match (&server.error, server.ready) {
                    (Some(error), _) => {
                        format!("failed: {}", error.lines().next().unwrap_or_default())
                    }
                    (None, true) => format!(
                        "{} tools, {} resources, {} prompts{}",
                        server.tools.len(),
                        server.resources.len(),
                        server.prompts.len(),
                        if server.trusted { " · trusted" } else { "" }
                    ),
                    (None, false) if server.idle => format!(
                        "{} tools (from the last session), starts at its first call",
                        server.tools.len()
                    ),
                    (None, false) => "starting".to_string(),
                };
                let tone = if server.error.is_some() {
                    Tone::Warn
                } else {
                    Tone::Dim
                };
                screen.line(
                    &format!(
                        "  ◆ mcp {} ({}, {}): {state}",
                        server.name, server.transport, server.target
                    ),
                    tone,
                )?;
                for (label, items) in [
                    ("tools", &server.tools),
                    ("resources", &server.resources),
                    ("prompts", &server.prompts),
                ] {
                    if !items.is_empty() {
                        let shown: Vec<&str> = items.iter().take(12).map(String::as_str).collect();
                        let more = items.len().saturating_sub(shown.len());
                        let tail = if more > 0 {
                            format!(" … and {more} more")
                        } else {
                            String::new()
                        };
                        screen.line(
                            &format!("      {label}: {}{tail}", shown.join(", ")),
                            Tone::Dim,
                        )?;
                    }
                }
            }
        }
        Event::TerminalExited { id, code, signal } => {
            let command = ui.terminals.remove(id).map(|(c, _)| c).unwrap_or_default();
            let how = match (code, signal) {
                (Some(code), _) => format!("exited with code {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => "ended".to_string(),
            };
            screen.line(&format!("  ▣ terminal {id} {how}: {command}"), Tone::Dim)?;
        }
        Event::TaskCompleted { status, .. } => {
            // A stream cut off says so, so a half word is not taken for the answer.
            if *status == SessionStatus::Interrupted && screen.streaming() {
                screen.end_stream(" …⟨cancelled⟩")?;
            }
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

/// A plan step as a line: its status mark and its text.
pub(crate) fn plan_line(step: &cox_protocol::PlanStep) -> String {
    format!("  {} {}", step.status.mark(), step.step)
}

/// How a diff line looks.
pub(crate) fn diff_tone(line: &str) -> Tone {
    if line.starts_with("+++") || line.starts_with("---") {
        Tone::Prompt
    } else if line.starts_with('+') {
        Tone::Add
    } else if line.starts_with('-') {
        Tone::Remove
    } else if line.starts_with("@@") {
        Tone::Hunk
    } else {
        Tone::Dim
    }
}

/// The action line(s) announcing a tool call.
fn action_lines(name: &str, kind: Option<ToolKind>, actions: &[Action]) -> Vec<String> {
    match (actions.is_empty(), kind) {
        (false, _) => actions.iter().map(|a| format!("● {a}")).collect(),
        (true, Some(ToolKind::Interact)) => Vec::new(),
        (true, _) => vec![format!("● {name}")],
    }
}

/// The lines under a finished call: a command's exit line, then the first lines of what it
/// printed, from its outcome (`true`: shown dimmed whatever the result); another tool's result
/// text, folded.
fn result_lines(ok: bool, output: &str, outcome: &ToolOutcome) -> Vec<(String, bool)> {
    let mut lines = Vec::new();
    let (body, total) = match (&outcome.excerpt, outcome.printed_lines) {
        (Some(excerpt), Some(total)) => {
            let exit = match outcome.exit_code {
                Some(code) => format!("exit code: {code}"),
                None if ok => "done".to_string(),
                None => "stopped (killed, timed out or interrupted)".to_string(),
            };
            let duration = outcome
                .duration_ms
                .map(|ms| format!(" · duration: {:.2} s", ms as f64 / 1000.0))
                .unwrap_or_default();
            lines.push((format!("  │ {exit}{duration}"), false));
            (excerpt.as_str(), total as usize)
        }
        _ => (output, output.lines().count()),
    };
    lines.extend(
        body.lines()
            .take(FOLD_LINES)
            .map(|line| (format!("  │ {line}"), false)),
    );
    if total > FOLD_LINES {
        lines.push((format!("  │ … {} more lines", total - FOLD_LINES), true));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_lines_come_from_the_typed_actions() {
        let read = Action::Read {
            path: "src/a.rs".into(),
            lines: Some(cox_protocol::LineRange {
                start: 45,
                end: Some(89),
            }),
        };
        assert_eq!(
            action_lines("read_file", Some(ToolKind::Read), &[read]),
            ["● Read src/a.rs lines 45-89"]
        );
        assert!(action_lines("update_plan", Some(ToolKind::Interact), &[]).is_empty());
        assert_eq!(action_lines("mystery", None, &[]), ["● mystery"]);
    }

    #[test]
    fn command_results_fold_from_the_outcome() {
        let outcome = ToolOutcome {
            exit_code: Some(1),
            duration_ms: Some(1250),
            excerpt: Some("a\nb\nc\nd\ne".into()),
            printed_lines: Some(40),
            ..ToolOutcome::default()
        };
        let lines: Vec<String> = result_lines(false, "whatever the model saw", &outcome)
            .into_iter()
            .map(|(line, _)| line)
            .collect();
        assert_eq!(
            lines,
            [
                "  │ exit code: 1 · duration: 1.25 s",
                "  │ a",
                "  │ b",
                "  │ c",
                "  │ d",
                "  │ … 36 more lines"
            ]
        );
        let plain = result_lines(true, "Plan updated.", &ToolOutcome::default());
        assert_eq!(plain, [("  │ Plan updated.".to_string(), false)]);
    }
}
