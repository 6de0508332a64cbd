//! Rebuilding a session from its journal: the conversation as the model last saw it, and what was
//! under way when the process stopped.
//!
//! A tool call journaled as started but never as ended may have run, partly or wholly: it is never
//! run again; the model is told so. A call of the last response that never started is still owed
//! and runs on resume. Nothing else is replayed: a side effect happens once.

use cox_protocol::{CallId, FileChange, Item, PlanStep, SessionStatus, StepReport, ToolCall};

use crate::journal::Record;

/// The message the model gets for a call cut short by the end of the process.
pub const CUT_SHORT: &str = "The session was stopped while this call was running: it may have run partly or \
completely. Check the current state before doing it again.";

/// A session's state, rebuilt.
#[derive(Debug, Default)]
pub struct Restored {
    pub history: Vec<Item>,
    /// Calls of the last response without a result, with whether each had started.
    pub pending: Vec<(ToolCall, bool)>,
    /// How the last task ended; `None` when it was cut short (killed mid-task).
    pub last_status: Option<SessionStatus>,
    pub last_answer: Option<String>,
    pub tasks: usize,
    /// The first prompt (pinned as the task) and the latest plan.
    pub task: Option<String>,
    pub plan: Option<Vec<PlanStep>>,
    pub directives: Vec<String>,
    /// The last task's step report (`report_step`), if the model gave one.
    pub last_report: Option<StepReport>,
    /// Files the session's tool calls changed, in order, each once with its lines summed.
    pub changed: Vec<FileChange>,
    /// A check started after the last task and never ended (killed mid-check).
    pub check_cut_short: bool,
    /// Terminal sessions started and never ended: cox stopped while they ran, and they are gone
    /// (id, command).
    pub lost_terminals: Vec<(u32, String)>,
    /// The highest terminal session id the session used (a resumed session numbers on from it,
    /// so an old id never names a new session).
    pub last_terminal: u32,
}

/// What the model is told on resume about terminal sessions that were running when cox stopped.
pub fn lost_terminals_note(lost: &[(u32, String)]) -> String {
    let list: Vec<String> = lost
        .iter()
        .map(|(id, command)| format!("{id} (`{command}`)"))
        .collect();
    format!(
        "cox was stopped and restarted: terminal session{} {} ended with it, with everything \
         {} ran. Check what they left behind and start them again with exec_command if you still \
         need them.",
        if lost.len() == 1 { "" } else { "s" },
        list.join(", "),
        if lost.len() == 1 { "it" } else { "they" },
    )
}

/// Replays journal records (after the header) into a [`Restored`].
pub fn restore(records: &[Record]) -> Restored {
    let mut restored = Restored::default();
    let mut started: Vec<CallId> = Vec::new();
    // A final answer recorded without its task end (killed in between) still ended the task.
    let mut answered: Option<String> = None;
    for record in records {
        match record {
            Record::Session { .. }
            | Record::Spawned { .. }
            | Record::TerminalWrite { .. }
            | Record::Checkpoint { .. } => {}
            Record::User { text } => {
                answered = None;
                restored.task.get_or_insert_with(|| text.clone());
                restored.history.push(Item::User { text: text.clone() });
                restored.last_status = None;
                restored.last_report = None;
                restored.tasks += 1;
            }
            Record::Response {
                text,
                tool_calls,
                output,
                ..
            } => {
                if !output.is_empty() {
                    restored.history.extend(output.iter().cloned());
                } else {
                    if !text.is_empty() {
                        restored
                            .history
                            .push(Item::Assistant { text: text.clone() });
                    }
                    for call in tool_calls {
                        restored.history.push(Item::ToolCall(call.clone()));
                    }
                }
                restored.pending = tool_calls.iter().map(|c| (c.clone(), false)).collect();
                started.clear();
                answered = tool_calls.is_empty().then(|| text.clone());
            }
            Record::ToolStart { call_id } => {
                started.push(call_id.clone());
                for (call, was_started) in &mut restored.pending {
                    if call.call_id == *call_id {
                        *was_started = true;
                    }
                }
            }
            Record::ToolEnd {
                call_id,
                ok,
                output,
                changed,
                ..
            } => {
                crate::run::tally(&mut restored.changed, changed);
                restored.history.push(Item::ToolResult {
                    call_id: call_id.clone(),
                    ok: *ok,
                    output: output.clone(),
                    images: Vec::new(),
                });
                restored
                    .pending
                    .retain(|(call, _)| call.call_id != *call_id);
            }
            Record::Plan { steps } => restored.plan = Some(steps.clone()),
            Record::Compacted { history } => restored.history = history.clone(),
            Record::Note { text } => restored.history.push(Item::User { text: text.clone() }),
            Record::Interrupted => restored.history.push(Item::User {
                text: crate::context::INTERRUPTED_NOTE.to_string(),
            }),
            Record::Cut { text } => restored
                .history
                .push(Item::Assistant { text: text.clone() }),
            Record::Steer { text } => {
                restored.history.push(Item::User {
                    text: crate::context::directive_message(text),
                });
                restored.directives.push(text.clone());
            }
            Record::Step { report } => restored.last_report = Some(report.clone()),
            Record::CheckStart { .. } => restored.check_cut_short = true,
            Record::CheckEnd { .. } => restored.check_cut_short = false,
            Record::TerminalStart { id, command, .. } => {
                restored.last_terminal = restored.last_terminal.max(*id);
                restored.lost_terminals.push((*id, command.clone()));
            }
            Record::TerminalEnd { id, .. } => restored.lost_terminals.retain(|(t, _)| t != id),
            Record::TaskEnd { status, answer } => {
                answered = None;
                restored.last_status = Some(*status);
                restored.last_answer = answer.clone();
                restored.pending.clear();
            }
        }
    }
    if let Some(text) = answered.filter(|_| restored.last_status.is_none()) {
        restored.last_status = Some(SessionStatus::Completed);
        restored.last_answer = Some(text);
    }
    restored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            call_id: CallId(id.into()),
            name: "shell".into(),
            arguments: "{}".into(),
        }
    }

    #[test]
    fn a_task_killed_mid_call_leaves_the_call_started_and_the_next_owed() {
        let records = vec![
            Record::User { text: "go".into() },
            Record::Response {
                text: "two calls".into(),
                tool_calls: vec![call("a"), call("b"), call("c")],
                usage: None,
                output: Vec::new(),
            },
            Record::ToolStart {
                call_id: CallId("a".into()),
            },
            Record::ToolEnd {
                call_id: CallId("a".into()),
                ok: true,
                output: "done".into(),
                full: None,
                changed: Vec::new(),
            },
            Record::ToolStart {
                call_id: CallId("b".into()),
            },
        ];
        let restored = restore(&records);
        assert_eq!(restored.last_status, None);
        assert_eq!(restored.history.len(), 6);
        let pending: Vec<(&str, bool)> = restored
            .pending
            .iter()
            .map(|(c, started)| (c.call_id.0.as_str(), *started))
            .collect();
        assert_eq!(pending, [("b", true), ("c", false)]);
    }

    #[test]
    fn a_final_answer_without_its_task_end_completed_the_task() {
        let records = vec![
            Record::User { text: "go".into() },
            Record::Response {
                text: "the answer".into(),
                tool_calls: vec![],
                usage: None,
                output: Vec::new(),
            },
        ];
        let restored = restore(&records);
        assert_eq!(restored.last_status, Some(SessionStatus::Completed));
        assert_eq!(restored.last_answer.as_deref(), Some("the answer"));
    }

    #[test]
    fn terminal_sessions_started_and_never_ended_are_lost_and_ids_go_on() {
        let start = |id: u32, command: &str| Record::TerminalStart {
            call_id: CallId(format!("c{id}")),
            id,
            command: command.into(),
            pid: 100 + id,
        };
        let records = vec![
            Record::User { text: "go".into() },
            start(1, "python3 -i"),
            start(2, "npm run dev"),
            Record::TerminalWrite {
                call_id: CallId("c3".into()),
                id: 1,
                text: "x = 1⏎".into(),
            },
            Record::TerminalEnd {
                id: 1,
                code: Some(0),
                signal: None,
                gone: false,
            },
            start(3, "vim a.txt"),
        ];
        let restored = restore(&records);
        assert_eq!(
            restored.lost_terminals,
            [(2, "npm run dev".to_string()), (3, "vim a.txt".to_string())]
        );
        assert_eq!(restored.last_terminal, 3);
        let note = lost_terminals_note(&restored.lost_terminals);
        assert!(
            note.contains("sessions 2 (`npm run dev`), 3 (`vim a.txt`) ended"),
            "{note}"
        );
    }

    #[test]
    fn a_finished_task_has_nothing_pending() {
        let records = vec![
            Record::User { text: "go".into() },
            Record::Response {
                text: "done".into(),
                tool_calls: vec![],
                usage: None,
                output: Vec::new(),
            },
            Record::TaskEnd {
                status: SessionStatus::Completed,
                answer: Some("done".into()),
            },
        ];
        let restored = restore(&records);
        assert_eq!(restored.last_status, Some(SessionStatus::Completed));
        assert!(restored.pending.is_empty());
        assert_eq!(restored.tasks, 1);
    }
}
