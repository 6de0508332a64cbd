//! Human-readable progress on stderr for headless runs: one plain line per action, so a log of a
//! run reads like what happened. (The live terminal UI is `cox-term`'s job.)

use std::io::Write;

use cox_protocol::{Event, SessionStatus, StepState, Usage};

/// Lines of a failing check's output shown under it.
const CHECK_LINES: usize = 12;

/// Prints events as progress lines. An agent message is held back until we know whether it is the
/// final answer (which goes to stdout, not here) or commentary before tool calls.
#[derive(Default)]
pub struct Progress {
    pending_message: Option<String>,
}

impl Progress {
    pub fn on_event(&mut self, event: &Event, err: &mut impl Write) {
        let _ = self.write(event, err);
    }

    fn write(&mut self, event: &Event, err: &mut impl Write) -> std::io::Result<()> {
        match event {
            Event::SessionStarted {
                provider,
                model,
                cwd,
                ..
            } => writeln!(err, "cox · {provider} · {model} · {cwd}")?,
            // A message after another (commentary, then the answer): the first was progress.
            Event::AgentMessage { text } => {
                if let Some(before) = self.pending_message.replace(text.clone()) {
                    writeln!(err, "{}", before.trim_end())?;
                }
            }
            Event::ToolCall { name, actions, .. } => {
                if let Some(text) = self.pending_message.take() {
                    writeln!(err, "{}", text.trim_end())?;
                }
                // What the tool said the call does; a call it could not describe by its name.
                let described: Vec<String> = actions.iter().map(ToString::to_string).collect();
                let detail = if described.is_empty() {
                    String::new()
                } else {
                    format!(": {}", described.join("; "))
                };
                writeln!(err, "› {name}{}", cut(&detail, 100))?;
            }
            Event::ToolResult {
                ok,
                output,
                outcome,
                ..
            } => {
                let first = output.lines().next().unwrap_or_default();
                let lines = outcome
                    .printed_lines
                    .unwrap_or_else(|| output.lines().count() as u64);
                let mark = if *ok { "ok" } else { "failed" };
                let head = match outcome.exit_code {
                    Some(code) => format!("exit code: {code}"),
                    None => cut(first, 100),
                };
                writeln!(err, "  {mark} · {head} · {lines} lines")?;
            }
            Event::PlanUpdated { steps, explanation } => {
                writeln!(err, "plan:")?;
                for step in steps {
                    let mark = step.status.mark();
                    writeln!(err, "  {mark} {}", step.step)?;
                }
                if let Some(explanation) = explanation {
                    writeln!(err, "  ({explanation})")?;
                }
            }
            Event::QuestionAsked { question, .. } => writeln!(err, "question: {question}")?,
            Event::StepStarted { id, title } => writeln!(err, "step {id}: {title}")?,
            Event::StepFinished {
                id,
                status,
                changed,
                ..
            } => {
                let word = match status {
                    StepState::Done => "done",
                    StepState::Failed => "failed",
                    StepState::Skipped => "skipped",
                    StepState::Pending | StepState::InProgress => "stopped",
                };
                match changed {
                    Some(how) => writeln!(err, "step {id}: {word}, changed by a directive: {how}")?,
                    None => writeln!(err, "step {id}: {word}")?,
                }
            }
            Event::CheckStarted { kind, command } => {
                writeln!(err, "{}: running `{command}`", kind.name())?
            }
            Event::CheckFinished {
                kind, ok, output, ..
            } => {
                let verdict = if *ok { "passed" } else { "failing" };
                writeln!(err, "{}: {verdict}", kind.name())?;
                if !*ok {
                    for line in output.lines().take(CHECK_LINES) {
                        writeln!(err, "    {line}")?;
                    }
                }
            }
            Event::PatchApplied { diff, .. } => {
                for line in diff.lines() {
                    writeln!(err, "    {line}")?;
                }
            }
            Event::Retrying {
                attempt,
                max_attempts,
                reason,
                delay_ms,
            } => writeln!(
                err,
                "retrying in {:.1}s ({attempt}/{max_attempts}): {reason}",
                *delay_ms as f64 / 1000.0
            )?,
            Event::Error { message, .. } => writeln!(err, "error: {message}")?,
            Event::Warning { message } => writeln!(err, "warning: {message}")?,
            Event::ApprovalRequested { action, reason, .. } => {
                writeln!(err, "approval needed for `{action}`: {reason}")?
            }
            Event::RuleBlocked {
                rule_id, reason, ..
            } => writeln!(err, "  blocked by rule {rule_id}: {reason}")?,
            Event::Checkpoint {
                id, kind, files, ..
            } => match kind {
                cox_protocol::CheckpointKind::Outside => writeln!(
                    err,
                    "  checkpoint {id}: changed outside cox: {}",
                    cox_protocol::list_paths(files, 5)
                )?,
                cox_protocol::CheckpointKind::Action => writeln!(
                    err,
                    "  checkpoint {id}: {}",
                    cox_protocol::list_paths(files, 5)
                )?,
                // `undone` says it.
                cox_protocol::CheckpointKind::Undo | cox_protocol::CheckpointKind::Rollback => {}
            },
            Event::Undone { id, undid, files } => writeln!(
                err,
                "undone (checkpoint {id} undid {}): {}",
                cox_protocol::list_ids(undid),
                cox_protocol::list_paths(files, 5)
            )?,
            Event::Paused => writeln!(err, "PAUSED — nothing new starts until resume or steer")?,
            Event::Resumed => writeln!(err, "resumed")?,
            Event::Steered { text } => writeln!(err, "steered: {text}")?,
            Event::ActionPending { name, grace_ms, .. } => {
                writeln!(err, "  ({name} starts in {grace_ms} ms; pause to hold it)")?
            }
            Event::Compacted {
                outputs_elided,
                items_summarized,
                outputs_shortened,
                tokens_before,
                tokens_after,
                ..
            } => writeln!(
                err,
                "compacted: {tokens_before} → {tokens_after} tokens ({outputs_elided} outputs elided, \
                 {items_summarized} items summarised, {outputs_shortened} outputs shortened)"
            )?,
            Event::SessionCompleted {
                status,
                usage,
                cost_usd,
                ..
            } => {
                if *status == SessionStatus::Interrupted {
                    writeln!(err, "interrupted")?;
                }
                match cost_usd {
                    Some(cost) => writeln!(err, "{} · ≈${cost:.4}", usage_line(usage))?,
                    None => writeln!(err, "{}", usage_line(usage))?,
                }
            }
            Event::TerminalStarted { id, command, .. } => {
                writeln!(err, "terminal {id} running: {command}")?
            }
            Event::TerminalExited { id, code, signal } => match (code, signal) {
                (Some(code), _) => writeln!(err, "terminal {id} exited with code {code}")?,
                (None, Some(signal)) => writeln!(err, "terminal {id} killed by signal {signal}")?,
                (None, None) => writeln!(err, "terminal {id} ended")?,
            },
            // A failed server is also a warning; a started one is said in one line.
            Event::McpServers { servers } => {
                for server in servers.iter().filter(|s| s.ready) {
                    writeln!(
                        err,
                        "mcp {}: {} tools ({})",
                        server.name,
                        server.tools.len(),
                        server.transport
                    )?
                }
            }
            // The tool result shows it.
            Event::TerminalOutput { .. }
            | Event::TaskCompleted { .. }
            | Event::TurnStarted { .. }
            | Event::AgentMessageDelta { .. }
            | Event::ReasoningDelta { .. }
            // Deltas are not printed here; the `warning` that comes with a truncation says it.
            | Event::Retracted { .. }
            | Event::Truncated { .. }
            | Event::Usage { .. }
            | Event::TurnCompleted { .. } => {}
        }
        Ok(())
    }
}

fn usage_line(usage: &Usage) -> String {
    format!(
        "tokens: {} in ({} cached) · {} out",
        usage.input_tokens, usage.cached_input_tokens, usage.output_tokens
    )
}

/// `shell: cargo test` / `read_file: src/lib.rs` — the essentials of a call on one line.
fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(limit).collect::<String>())
    }
}
