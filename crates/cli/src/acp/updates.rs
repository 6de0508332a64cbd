//! What an ACP client sees of cox's events: each [`Event`] becomes zero or more
//! `session/update`s, and a task's end becomes the prompt's stop reason. Pure translation (no
//! I/O but reading a patched file back for its diff), so it is unit-tested here.
//!
//! - agent message and reasoning deltas → `agent_message_chunk` / `agent_thought_chunk`;
//! - a tool call → `tool_call` (pending) with its kind, title, locations and raw input; its
//!   result → `tool_call_update` (completed or failed) with the output the model got and, for an
//!   edit, one `diff` per file (old and new text of the whole file, rebuilt from the patch);
//! - a rule's block → the call fails with the rule's reason;
//! - `update_plan` → `plan`; a directive → `user_message_chunk` (it is the person's word);
//! - token usage → `usage_update` (context used and size, cumulative cost).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, Cost, Diff, Plan, PlanEntry, PlanEntryPriority, PlanEntryStatus,
    SessionUpdate, ToolCall, ToolCallContent, ToolCallLocation, ToolCallStatus, ToolCallUpdate,
    ToolCallUpdateFields, ToolKind as AcpKind, UsageUpdate,
};
use cox_protocol::{Action, ErrorKind, Event, PlanStep, SessionStatus, StepStatus, ToolKind};

/// The most of a tool's output one update carries (the model got it all; the journal has it).
const OUTPUT_MAX_BYTES: usize = 64 * 1024;

/// The translation state of one session: diffs waiting for their call's result, and what decides
/// the stop reason.
#[derive(Debug)]
pub struct Translator {
    cwd: PathBuf,
    diffs: HashMap<String, Vec<ToolCallContent>>,
    /// The last response was cut short by the output limit.
    truncated: bool,
    last_error: Option<(ErrorKind, String)>,
    cost_usd: f64,
    /// The tokens of this prompt's requests: input (cached included), cached, output.
    tokens: (u64, u64, u64),
}

/// How a prompt ended, for `session/prompt`'s answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Stop(agent_client_protocol::v1::schema::StopReason),
    /// The task failed for a reason ACP has no stop reason for (the provider, the journal): the
    /// prompt's answer is this error.
    Failed(String),
}

impl Translator {
    pub fn new(cwd: PathBuf) -> Self {
        Translator {
            cwd,
            diffs: HashMap::new(),
            truncated: false,
            last_error: None,
            cost_usd: 0.0,
            tokens: (0, 0, 0),
        }
    }

    /// A new prompt starts: what decided the last one's stop reason is forgotten.
    pub fn start_prompt(&mut self) {
        self.truncated = false;
        self.last_error = None;
        self.tokens = (0, 0, 0);
    }

    /// The tokens this prompt's model requests used (the prompt's answer carries them).
    pub fn usage(&self) -> agent_client_protocol::v1::schema::Usage {
        let (input, cached, output) = self.tokens;
        agent_client_protocol::v1::schema::Usage::new(input + output, input, output)
            .cached_read_tokens(cached)
    }

    pub fn updates(&mut self, event: &Event) -> Vec<SessionUpdate> {
        match event {
            Event::AgentMessageDelta { text } => vec![SessionUpdate::AgentMessageChunk(
                ContentChunk::new(ContentBlock::from(text.as_str())),
            )],
            Event::ReasoningDelta { text } => vec![SessionUpdate::AgentThoughtChunk(
                ContentChunk::new(ContentBlock::from(text.as_str())),
            )],
            Event::ToolCall {
                call_id,
                name,
                arguments,
                kind,
                actions,
                ..
            } => vec![SessionUpdate::ToolCall(tool_call(
                &self.cwd, &call_id.0, name, arguments, *kind, actions,
            ))],
            Event::PatchApplied { call_id, diff } => {
                let diffs = file_diffs(diff, &self.cwd);
                self.diffs
                    .entry(call_id.0.clone())
                    .or_default()
                    .extend(diffs.into_iter().map(ToolCallContent::Diff));
                Vec::new()
            }
            Event::ToolResult {
                call_id,
                ok,
                output,
                ..
            } => {
                let mut content = self.diffs.remove(&call_id.0).unwrap_or_default();
                if !output.is_empty() {
                    content.push(text_content(output));
                }
                let status = if *ok {
                    ToolCallStatus::Completed
                } else {
                    ToolCallStatus::Failed
                };
                vec![update(
                    &call_id.0,
                    ToolCallUpdateFields::new().status(status).content(content),
                )]
            }
            Event::RuleBlocked {
                call_id,
                rule_id,
                reason,
                ..
            } => vec![update(
                &call_id.0,
                ToolCallUpdateFields::new()
                    .status(ToolCallStatus::Failed)
                    .content(vec![text_content(&format!(
                        "blocked by project rule {rule_id}: {reason}"
                    ))]),
            )],
            Event::PlanUpdated { steps, .. } => vec![SessionUpdate::Plan(plan(steps))],
            Event::Steered { text } => vec![SessionUpdate::UserMessageChunk(ContentChunk::new(
                ContentBlock::from(text.as_str()),
            ))],
            Event::Usage {
                input_tokens,
                cached_input_tokens,
                output_tokens,
                context_tokens,
                context_window,
                cost_usd,
            } => {
                self.tokens.0 += input_tokens;
                self.tokens.1 += cached_input_tokens;
                self.tokens.2 += output_tokens;
                let mut usage = UsageUpdate::new(*context_tokens, *context_window);
                if let Some(cost) = cost_usd {
                    self.cost_usd += cost;
                    usage = usage.cost(Cost::new(self.cost_usd, "USD"));
                }
                vec![SessionUpdate::UsageUpdate(usage)]
            }
            Event::TurnStarted { .. } => {
                self.truncated = false;
                Vec::new()
            }
            Event::Truncated { .. } => {
                self.truncated = true;
                Vec::new()
            }
            Event::Error { kind, message } => {
                self.last_error = Some((*kind, message.clone()));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The stop reason of a task that ended with `status`.
    pub fn ending(&self, status: SessionStatus) -> Ending {
        use agent_client_protocol::v1::schema::StopReason;
        match status {
            SessionStatus::Completed if self.truncated => Ending::Stop(StopReason::MaxTokens),
            SessionStatus::Completed => Ending::Stop(StopReason::EndTurn),
            SessionStatus::Interrupted => Ending::Stop(StopReason::Cancelled),
            SessionStatus::Failed | SessionStatus::ProviderError => match &self.last_error {
                Some((ErrorKind::MaxTurns, _)) => Ending::Stop(StopReason::MaxTurnRequests),
                Some((ErrorKind::Refused, _)) => Ending::Stop(StopReason::Refusal),
                _ if self.truncated => Ending::Stop(StopReason::MaxTokens),
                Some((_, message)) => Ending::Failed(message.clone()),
                None => Ending::Failed("the task failed".into()),
            },
        }
    }
}

fn update(call_id: &str, fields: ToolCallUpdateFields) -> SessionUpdate {
    SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(call_id.to_string(), fields))
}

pub fn text_content(text: &str) -> ToolCallContent {
    let mut end = text.len().min(OUTPUT_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let shown = if end < text.len() {
        format!("{}\n… ({} more bytes)", &text[..end], text.len() - end)
    } else {
        text.to_string()
    };
    ToolCallContent::from(ContentBlock::from(shown))
}

/// The `tool_call` announcing a call (pending: it has not run yet).
pub fn tool_call(
    cwd: &Path,
    call_id: &str,
    name: &str,
    arguments: &str,
    kind: Option<ToolKind>,
    actions: &[Action],
) -> ToolCall {
    let title = if actions.is_empty() {
        name.to_string()
    } else {
        actions
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let raw_input = serde_json::from_str::<serde_json::Value>(arguments)
        .unwrap_or_else(|_| serde_json::Value::String(arguments.to_string()));
    ToolCall::new(call_id.to_string(), title)
        .name(name.to_string())
        .kind(acp_kind(kind, actions))
        .status(ToolCallStatus::Pending)
        .locations(locations(cwd, actions))
        .raw_input(raw_input)
}

/// ACP's kind of a call: from its first action (what it does), else from the tool's kind.
pub fn acp_kind(kind: Option<ToolKind>, actions: &[Action]) -> AcpKind {
    match actions.first() {
        Some(Action::Read { .. } | Action::List { .. }) => AcpKind::Read,
        Some(Action::Search { .. }) => AcpKind::Search,
        Some(Action::Run { .. } | Action::Type { .. }) => AcpKind::Execute,
        Some(Action::Create { .. } | Action::Modify { .. }) => AcpKind::Edit,
        Some(Action::Delete { .. }) => AcpKind::Delete,
        Some(Action::Move { .. }) => AcpKind::Move,
        Some(Action::Plan | Action::Ask { .. } | Action::Report { .. }) => AcpKind::Think,
        Some(Action::Call { .. }) => AcpKind::Other,
        None => match kind {
            Some(ToolKind::Read) => AcpKind::Read,
            Some(ToolKind::Write) => AcpKind::Edit,
            Some(ToolKind::Execute) => AcpKind::Execute,
            Some(ToolKind::Interact) => AcpKind::Think,
            None => AcpKind::Other,
        },
    }
}

/// The files a call touches, as absolute paths with the first line where known ("follow along").
pub fn locations(cwd: &Path, actions: &[Action]) -> Vec<ToolCallLocation> {
    let mut out = Vec::new();
    for action in actions {
        let (path, line) = match action {
            Action::Read { path, lines } | Action::Modify { path, lines, .. } => {
                (path, lines.map(|l| l.start))
            }
            Action::Move { to, lines, .. } => (to, lines.map(|l| l.start)),
            Action::List { path }
            | Action::Search { path, .. }
            | Action::Create { path, .. }
            | Action::Delete { path } => (path, None),
            _ => continue,
        };
        let location =
            ToolCallLocation::new(cwd.join(path)).line(line.and_then(|l| u32::try_from(l).ok()));
        out.push(location);
    }
    out
}

pub fn plan(steps: &[PlanStep]) -> Plan {
    Plan::new(
        steps
            .iter()
            .map(|step| {
                let (status, note) = match step.status {
                    StepStatus::Pending => (PlanEntryStatus::Pending, ""),
                    StepStatus::InProgress => (PlanEntryStatus::InProgress, ""),
                    StepStatus::Completed => (PlanEntryStatus::Completed, ""),
                    // ACP's plan has no such statuses: the entry is done, and says how.
                    StepStatus::Skipped => (PlanEntryStatus::Completed, " (skipped)"),
                    StepStatus::Failed => (PlanEntryStatus::Completed, " (failed)"),
                };
                PlanEntry::new(
                    format!("{}{note}", step.step),
                    PlanEntryPriority::Medium,
                    status,
                )
            })
            .collect(),
    )
}

/// One hunk of a unified diff: where its new side starts (as the header says) and its lines.
struct Hunk {
    new_start: usize,
    new_len: usize,
    old: Vec<String>,
    new: Vec<String>,
}

/// The diffs of a patch (cox's unified diff, `--- a/PATH` / `+++ b/PATH` per file) as ACP wants
/// them: the whole file before and after. The new text is the file as it is now; the old text is
/// rebuilt by undoing the hunks on it. A file that changed again since (or cannot be read) gets
/// the hunks' own lines instead, which still show the change.
pub fn file_diffs(diff: &str, cwd: &Path) -> Vec<Diff> {
    let mut files: Vec<(Option<String>, Option<String>, Vec<Hunk>)> = Vec::new();
    for line in diff.lines() {
        if let Some(from) = line.strip_prefix("--- ") {
            let from = from.strip_prefix("a/").map(str::to_string);
            files.push((from, None, Vec::new()));
        } else if let Some(to) = line.strip_prefix("+++ ") {
            if let Some(file) = files.last_mut() {
                file.1 = to.strip_prefix("b/").map(str::to_string);
            }
        } else if let Some(header) = line.strip_prefix("@@ ") {
            if let (Some(file), Some((new_start, new_len))) = (files.last_mut(), new_range(header))
            {
                file.2.push(Hunk {
                    new_start,
                    new_len,
                    old: Vec::new(),
                    new: Vec::new(),
                });
            }
        } else if let Some(hunk) = files.last_mut().and_then(|f| f.2.last_mut()) {
            let (mark, text) = line.split_at(line.len().min(1));
            match mark {
                " " => {
                    hunk.old.push(text.to_string());
                    hunk.new.push(text.to_string());
                }
                "-" => hunk.old.push(text.to_string()),
                "+" => hunk.new.push(text.to_string()),
                _ => {}
            }
        }
    }
    files
        .into_iter()
        .filter_map(|(from, to, hunks)| {
            let path = to.clone().or(from.clone())?;
            let absolute = cwd.join(&path);
            if to.is_none() {
                // Deleted: the old text is every removed line.
                let old = join(hunks.iter().flat_map(|h| h.old.iter()));
                return Some(Diff::new(absolute, "").old_text(old));
            }
            let current = fs_err::read_to_string(&absolute).ok();
            let rebuilt = current.as_deref().and_then(|now| undo(now, &hunks));
            let diff = match (current, rebuilt) {
                (Some(now), Some(old)) => {
                    Diff::new(absolute, now).old_text(from.is_some().then_some(old))
                }
                _ => Diff::new(absolute, join(hunks.iter().flat_map(|h| h.new.iter()))).old_text(
                    from.is_some()
                        .then(|| join(hunks.iter().flat_map(|h| h.old.iter()))),
                ),
            };
            Some(diff)
        })
        .collect()
}

/// `-a,b +c,d @@`: the new side's start and length (a missing length is 1).
fn new_range(header: &str) -> Option<(usize, usize)> {
    let new = header.split_whitespace().find(|w| w.starts_with('+'))?;
    let new = new.trim_start_matches('+');
    let (start, len) = match new.split_once(',') {
        Some((start, len)) => (start.parse().ok()?, len.parse().ok()?),
        None => (new.parse().ok()?, 1),
    };
    Some((start, len))
}

/// The file before the hunks, from the file after them; `None` when the file no longer has a
/// hunk's new lines where the hunk put them.
fn undo(now: &str, hunks: &[Hunk]) -> Option<String> {
    let lines: Vec<&str> = now.split_inclusive('\n').collect();
    let mut old = String::new();
    let mut at = 0;
    for hunk in hunks {
        // An empty range names the line before it; a non-empty one its first line (1-based).
        let start = if hunk.new_len == 0 {
            hunk.new_start
        } else {
            hunk.new_start.checked_sub(1)?
        };
        if start < at || start + hunk.new.len() > lines.len() || hunk.new.len() != hunk.new_len {
            return None;
        }
        let here = &lines[start..start + hunk.new.len()];
        if here
            .iter()
            .zip(&hunk.new)
            .any(|(line, want)| line.trim_end_matches(['\n', '\r']) != want)
        {
            return None;
        }
        old.extend(lines[at..start].iter().copied());
        for line in &hunk.old {
            old.push_str(line);
            old.push('\n');
        }
        at = start + hunk.new.len();
    }
    old.extend(lines[at..].iter().copied());
    Some(old)
}

fn join<'a>(lines: impl Iterator<Item = &'a String>) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_client_protocol::v1::schema::StopReason;
    use cox_protocol::{CallId, LineRange};

    #[test]
    fn a_patch_becomes_whole_file_diffs_rebuilt_from_the_hunks() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("a.txt"), "one\nTWO\nthree\nfour\nadded\n").unwrap();
        fs_err::write(dir.path().join("new.txt"), "fresh\n").unwrap();
        let diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n\
                    @@ -4,0 +5 @@\n+added\n\
                    --- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+fresh\n\
                    --- a/gone.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x\n-y\n";
        let diffs = file_diffs(diff, dir.path());
        assert_eq!(diffs.len(), 3);
        assert_eq!(diffs[0].path, dir.path().join("a.txt"));
        assert_eq!(diffs[0].new_text, "one\nTWO\nthree\nfour\nadded\n");
        assert_eq!(
            diffs[0].old_text.as_deref(),
            Some("one\ntwo\nthree\nfour\n")
        );
        assert_eq!(diffs[1].new_text, "fresh\n");
        assert_eq!(diffs[1].old_text, None, "a new file has no old text");
        assert_eq!(diffs[2].new_text, "");
        assert_eq!(diffs[2].old_text.as_deref(), Some("x\ny\n"));
    }

    #[test]
    fn a_file_changed_again_since_its_patch_gets_the_hunks_lines() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("a.txt"), "something else entirely\n").unwrap();
        let diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-old\n+new\n";
        let diffs = file_diffs(diff, dir.path());
        assert_eq!(diffs[0].new_text, "new\n");
        assert_eq!(diffs[0].old_text.as_deref(), Some("old\n"));
    }

    #[test]
    fn kinds_and_locations_come_from_the_actions() {
        let cwd = Path::new("/work");
        let read = [Action::Read {
            path: "src/a.rs".into(),
            lines: Some(LineRange {
                start: 7,
                end: Some(9),
            }),
        }];
        assert_eq!(acp_kind(Some(ToolKind::Read), &read), AcpKind::Read);
        let found = locations(cwd, &read);
        assert_eq!(found[0].path, PathBuf::from("/work/src/a.rs"));
        assert_eq!(found[0].line, Some(7));
        let run = [Action::Run {
            command: "ls".into(),
        }];
        assert_eq!(acp_kind(Some(ToolKind::Execute), &run), AcpKind::Execute);
        assert!(locations(cwd, &run).is_empty());
        let edit = [Action::Modify {
            path: "b.rs".into(),
            lines: None,
            hint: None,
        }];
        assert_eq!(acp_kind(Some(ToolKind::Write), &edit), AcpKind::Edit);
        assert_eq!(
            acp_kind(
                Some(ToolKind::Write),
                &[Action::Delete { path: "c".into() }]
            ),
            AcpKind::Delete
        );
        assert_eq!(acp_kind(Some(ToolKind::Interact), &[]), AcpKind::Think);
        assert_eq!(acp_kind(None, &[]), AcpKind::Other);
    }

    #[test]
    fn stop_reasons_follow_how_the_task_ended() {
        let mut t = Translator::new(PathBuf::from("/w"));
        assert_eq!(
            t.ending(SessionStatus::Completed),
            Ending::Stop(StopReason::EndTurn)
        );
        assert_eq!(
            t.ending(SessionStatus::Interrupted),
            Ending::Stop(StopReason::Cancelled)
        );
        t.updates(&Event::Error {
            kind: ErrorKind::MaxTurns,
            message: "max turns".into(),
        });
        assert_eq!(
            t.ending(SessionStatus::Failed),
            Ending::Stop(StopReason::MaxTurnRequests)
        );
        t.start_prompt();
        t.updates(&Event::Error {
            kind: ErrorKind::Refused,
            message: "no".into(),
        });
        assert_eq!(
            t.ending(SessionStatus::Failed),
            Ending::Stop(StopReason::Refusal)
        );
        t.start_prompt();
        t.updates(&Event::Truncated {
            reason: "max_output_tokens".into(),
        });
        assert_eq!(
            t.ending(SessionStatus::Completed),
            Ending::Stop(StopReason::MaxTokens)
        );
        t.start_prompt();
        t.updates(&Event::Error {
            kind: ErrorKind::Auth,
            message: "bad key".into(),
        });
        assert_eq!(
            t.ending(SessionStatus::ProviderError),
            Ending::Failed("bad key".into())
        );
    }

    #[test]
    fn a_result_carries_its_patch_diffs_and_output_and_costs_add_up() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("f"), "b\n").unwrap();
        let mut t = Translator::new(dir.path().to_path_buf());
        let call = CallId("c1".into());
        assert!(
            t.updates(&Event::PatchApplied {
                call_id: call.clone(),
                diff: "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n".into(),
            })
            .is_empty()
        );
        let out = t.updates(&Event::ToolResult {
            call_id: call,
            ok: true,
            output: "patched f".into(),
            outcome: Default::default(),
        });
        let SessionUpdate::ToolCallUpdate(update) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(update.fields.status, Some(ToolCallStatus::Completed));
        let content = update.fields.content.as_ref().unwrap();
        assert!(
            matches!(&content[0], ToolCallContent::Diff(d) if d.old_text.as_deref() == Some("a\n"))
        );
        assert!(matches!(&content[1], ToolCallContent::Content(_)));
        for _ in 0..2 {
            t.updates(&Event::Usage {
                input_tokens: 1,
                cached_input_tokens: 0,
                output_tokens: 1,
                context_tokens: 10,
                context_window: 100,
                cost_usd: Some(0.25),
            });
        }
        assert_eq!(t.cost_usd, 0.5);
        let usage = t.usage();
        assert_eq!(
            (usage.input_tokens, usage.output_tokens, usage.total_tokens),
            (2, 2, 4)
        );
        t.start_prompt();
        assert_eq!(t.usage().total_tokens, 0, "each prompt counts its own");
    }
}
