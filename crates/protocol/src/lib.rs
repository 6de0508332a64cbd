//! The contract every cox crate and front end depends on: [`Op`]s go into a session, [`Event`]s come
//! out, and the conversation is a list of [`Item`]s. Only data and serde live here; no I/O, no async.
//!
//! Event names and fields are the public `--json` contract documented in `docs/contracts.md`; add
//! fields, never rename them.

mod checkpoint;
mod event;
mod item;
mod plan;
mod tool;

pub use checkpoint::{ChangedPath, CheckpointKind, PathChange, list_ids, list_paths};
pub use event::{
    CheckKind, CompactReason, ErrorKind, Event, EventEnvelope, McpServerStatus, SessionStatus,
    StepReport, Usage,
};
pub use item::{CallId, Image, Item, PlanStep, SessionId, StepStatus, ToolCall, ToolSpec};
pub use plan::{Plan, PlanStepDoc, StepState};
pub use tool::{Action, FileChange, Hunk, LineRange, ToolKind, ToolOutcome};

/// An operation sent into a running session by a front end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Start a task with this prompt (the session's first message, or a follow-up).
    UserInput { text: String },
    /// Stop the current turn at once: cancel the model request and kill a running command.
    Interrupt,
    /// The barrier: cancel the model request in flight, start no tool call until `resume` or
    /// `steer` (a command already running may finish).
    Pause,
    /// Go on where the session stopped.
    Resume,
    /// A correction: added to the conversation and pinned for the rest of the session, then go on.
    Steer { text: String },
    /// The person's answer to the question of an `ask_user` call (see `Event::QuestionAsked`).
    Answer { call_id: CallId, text: String },
    /// The person's decision on an action that needed approval (see `Event::ApprovalRequested`).
    Approve {
        call_id: CallId,
        decision: ApprovalDecision,
    },
    /// Compact the history before the next model request.
    Compact,
    /// Run a check (a plan run's linter or tests) as a task of its own: through the same path as
    /// the model's commands (sandbox, scrubbed environment, journal, interrupt), announced as
    /// `check_started` / `check_finished`. The model does not see it unless told.
    RunCheck { kind: CheckKind, command: String },
    /// Kill a terminal session the model started (`exec_command`) with everything it runs; its
    /// end comes as `terminal_exited`, and the model learns it at its next look. Works while a
    /// task runs and while the session is idle; an unknown or ended id is a `warning`.
    KillTerminal { id: u32 },
    /// Undo what the agent changed: the newest action not undone yet, or (`to`) everything from
    /// that checkpoint on. Accepted while idle and while paused (it waits for a running command to
    /// end); answered with `undone`, or a `warning` saying why not (the files the person changed
    /// since, content too large to have been kept).
    Undo {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<u32>,
    },
    /// Say how the session's MCP servers are (answered with `mcp_servers`), while idle or
    /// while a task runs.
    ListMcp,
    /// End the session after the current turn.
    Shutdown,
}

/// How the person answered an approval request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Yes, this once.
    Once,
    /// Yes, and to this command's prefix for the rest of the session.
    Session,
    /// Yes, and to this command's prefix from now on in this project (kept in `$COX_HOME/projects.toml`).
    Project,
    /// No; the reason goes to the model.
    Deny { reason: Option<String> },
}
