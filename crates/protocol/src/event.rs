//! Events a session emits. One engine, many front ends: the `--json` printer, the human progress
//! printer, tests and benchmarks all read these and nothing else.

use serde::{Deserialize, Serialize};

use crate::{
    Action, CallId, ChangedPath, CheckpointKind, FileChange, PlanStep, SessionId, StepState,
    ToolKind, ToolOutcome,
};

/// An event with its sequence number and wall-clock time, as printed by `--json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub seq: u64,
    /// RFC 3339 UTC timestamp with millisecond precision.
    pub ts: String,
    #[serde(flatten)]
    pub event: Event,
}

/// Token usage of one model response, as the provider reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
}

/// Why a session or a turn failed, for scripts that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Auth,
    RateLimited,
    ContextOverflow,
    BadRequest,
    Transient,
    /// The provider could not be reached or configured (no key, bad URL).
    Provider,
    /// The model kept calling tools until `max_turns` ran out.
    MaxTurns,
    /// The session journal could not be written; the task stopped before any unrecorded effect.
    Journal,
    /// The model declined the task (the message has what it said).
    Refused,
    /// The model answered with nothing, twice in a row.
    EmptyAnswer,
    /// An MCP server marked `required` did not start.
    McpServer,
}

/// What started a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactReason {
    /// The context reached the configured fraction of the window.
    Threshold,
    /// The provider said the request did not fit.
    Overflow,
    /// Asked for (`Op::Compact`, `/compact`).
    Requested,
}

/// How a session ended; also decides the exit code of `cox exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Completed,
    Failed,
    ProviderError,
    Interrupted,
}

/// The model's word on a plan run's step (the `report_step` tool): the structured signal a run
/// reads, never the answer's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    /// Done, or failed (the step cannot be done as planned).
    pub done: bool,
    pub summary: String,
    /// When a directive made the outcome differ from the step's title: the model's one-line
    /// account of how (recorded in the plan file as the step's `changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<String>,
}

/// What a check checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Lint,
    Tests,
}

impl CheckKind {
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Lint => "lint",
            CheckKind::Tests => "tests",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    SessionStarted {
        session_id: SessionId,
        provider: String,
        model: String,
        cwd: String,
    },
    /// One model request begins; `turn` counts from 1 within the session.
    TurnStarted {
        turn: u32,
    },
    AgentMessageDelta {
        text: String,
    },
    AgentMessage {
        text: String,
    },
    ReasoningDelta {
        text: String,
    },
    ToolCall {
        call_id: CallId,
        name: String,
        arguments: String,
        /// For calls that edit files: what they will change, e.g. `Modify src/db.js lines 45-89`
        /// (the edit actions, as text).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        preview: Vec<String>,
        /// What the tool does (read, write, execute, interact); absent for an unknown tool.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<ToolKind>,
        /// What the call will do, as typed values a front end renders.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        actions: Vec<Action>,
    },
    ToolResult {
        call_id: CallId,
        ok: bool,
        output: String,
        /// What the call did, in fields: exit code, duration, changed files, truncation.
        #[serde(default, skip_serializing_if = "ToolOutcome::is_empty")]
        outcome: ToolOutcome,
    },
    /// A tool call changed files; `diff` is their unified diff (for display; the model sees the
    /// tool result only).
    PatchApplied {
        call_id: CallId,
        diff: String,
    },
    /// An action needs the person's approval; answer with `Op::Approve`.
    ApprovalRequested {
        call_id: CallId,
        /// The exact command (or edit) to approve.
        action: String,
        reason: String,
    },
    /// A project rule blocked a tool call: before it ran (by what it said it would do), or after
    /// (by what it changed on disk; those changes were rolled back first, and `path` and `line`
    /// say where the rule matched).
    RuleBlocked {
        call_id: CallId,
        rule_id: String,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
    },
    /// Files changed and a checkpoint holds what they were: by an action (`call_id`; a check has
    /// none), by someone else between actions (`outside`), by an undo or a rule's rollback.
    /// `cox undo --to ID` restores the state before checkpoint `id`.
    Checkpoint {
        id: u32,
        kind: CheckpointKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
        /// The action in one line (a tool call's summary, or the check's command).
        action: String,
        files: Vec<ChangedPath>,
    },
    /// An undo restored the files of checkpoints `undid` (checkpoint `id` records it, so it can be
    /// undone in turn).
    Undone {
        id: u32,
        undid: Vec<u32>,
        files: Vec<ChangedPath>,
    },
    /// The model's plan changed (`update_plan`).
    PlanUpdated {
        steps: Vec<PlanStep>,
        explanation: Option<String>,
    },
    /// The model asks the person something (`ask_user`); answer with `Op::Answer`.
    QuestionAsked {
        call_id: CallId,
        question: String,
    },
    Usage {
        input_tokens: u64,
        cached_input_tokens: u64,
        output_tokens: u64,
        /// Tokens the last request occupied in the context window.
        context_tokens: u64,
        /// The model's window (from the catalog, config, or a conservative default).
        context_window: u64,
        /// Estimated cost of this response in US dollars, when the catalog has the model's price.
        cost_usd: Option<f64>,
    },
    /// The barrier is up: from this event on, no tool call starts until `resumed` or `steered`.
    Paused,
    Resumed,
    /// A directive was applied: it is in the conversation and pinned from now on.
    Steered {
        text: String,
    },
    /// A write or command is about to run; with `--steerable` it waits `grace_ms` first, and a
    /// pause in that window stops it before it touches anything. `preview`: what it will do (the
    /// patch's removed and added lines, or `$ command`); `destructive`: why it got the longer
    /// window (it deletes or discards), if it did.
    ActionPending {
        call_id: CallId,
        name: String,
        grace_ms: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        preview: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        destructive: Option<String>,
    },
    /// Something the person should know that does not stop the session.
    Warning {
        message: String,
    },
    /// The history was compacted: old tool outputs elided and, if that was not enough, older turns
    /// replaced by a summary. The pinned block is never touched.
    Compacted {
        reason: CompactReason,
        outputs_elided: usize,
        items_summarized: usize,
        /// Recent tool outputs cut to their head and tail so that the request fits.
        #[serde(default)]
        outputs_shortened: usize,
        tokens_before: u64,
        tokens_after: u64,
    },
    /// A model request failed in a way worth trying again; the engine waits `delay_ms` first.
    Retrying {
        attempt: u32,
        max_attempts: u32,
        reason: String,
        delay_ms: u64,
    },
    /// What the failed attempt streamed is void: the last `text` of the agent message deltas and
    /// the last `reasoning` of the reasoning deltas since the turn started are to be taken back
    /// (the retry streams the response again from its start). Sent before `retrying`.
    Retracted {
        text: String,
        reasoning: String,
    },
    /// The response was cut short by a limit (`reason`: `max_output_tokens`, `length`,
    /// `max_tokens`, …): its text is incomplete, and any cut tool call was not run. The model is
    /// told and goes on while turns remain.
    Truncated {
        reason: String,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
    /// One task (a prompt, a resumed task, a check) ended; the session waits for the next op.
    TaskCompleted {
        status: SessionStatus,
        answer: Option<String>,
        /// In a plan run's step: the model's report on the step (`report_step`), the last one
        /// it gave during the task.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<StepReport>,
    },
    /// A plan run began a step (its session's events follow).
    StepStarted {
        id: String,
        title: String,
    },
    /// A plan run's step ended: its status as written back to the plan file, and the files its
    /// tool calls changed (from their outcomes).
    StepFinished {
        id: String,
        status: StepState,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed_files: Vec<FileChange>,
        /// The directives given during the step, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        directives: Vec<String>,
        /// How the outcome differs from the step's title after a directive, in the model's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changed: Option<String>,
    },
    /// A check (`Op::RunCheck`: a plan run's lint or tests) starts, in the session's sandbox.
    CheckStarted {
        kind: CheckKind,
        command: String,
    },
    /// A check ended; `output` is what it printed (head kept).
    CheckFinished {
        kind: CheckKind,
        ok: bool,
        output: String,
        #[serde(default, skip_serializing_if = "ToolOutcome::is_empty")]
        outcome: ToolOutcome,
    },
    TurnCompleted {
        turn: u32,
    },
    /// A terminal session started (`exec_command`) and keeps running after its call.
    TerminalStarted {
        call_id: CallId,
        id: u32,
        command: String,
        /// The launcher's pid, which leads the session's process group.
        pid: u32,
    },
    /// What a call working with a terminal session showed the model (the screen, or the text
    /// printed since its last look), with what it typed first.
    TerminalOutput {
        call_id: CallId,
        id: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wrote: Option<String>,
        output: String,
    },
    /// A terminal session's command ended (it exited, or was killed): `code` when it exited,
    /// `signal` when a signal ended it.
    TerminalExited {
        id: u32,
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The session's MCP servers: once when they have all started (or failed), and on
    /// `Op::ListMcp`.
    McpServers {
        servers: Vec<McpServerStatus>,
    },
    SessionCompleted {
        status: SessionStatus,
        /// The final answer, when the session completed with one.
        answer: Option<String>,
        usage: Usage,
        cost_usd: Option<f64>,
    },
}

/// One MCP server of a session, as `/mcp` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServerStatus {
    pub name: String,
    /// `stdio`, `streamable_http` or `sse`.
    pub transport: String,
    /// The command line or URL.
    pub target: String,
    /// Started and listed; `false` with no `error`: still starting, or idle.
    pub ready: bool,
    /// Not started: its tools are offered as the last session found them, and it starts at its
    /// first call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idle: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The server's name and version, as it gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The tools offered, by the names the model calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
    /// `trusted = true`: its tools run without asking.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trusted: bool,
}
