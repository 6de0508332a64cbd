//! What a tool says about itself and about one call: its [`ToolKind`], the [`Action`]s a call
//! will take (a typed value a front end renders, e.g. "Modify src/db.js lines 45-89"), and the
//! [`ToolOutcome`] of a call that ran (exit code, duration, files changed, truncation). Front ends
//! render these and never parse a tool's arguments or output text.

use serde::{Deserialize, Serialize};

/// What a tool does to the world, for the engine's grace window and for front ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    /// Only reads (files, the directory tree, search).
    Read,
    /// Changes files.
    Write,
    /// Runs a command (which may do anything the sandbox allows).
    Execute,
    /// Talks to the person or the engine (plan, questions, step reports); touches nothing.
    Interact,
}

impl ToolKind {
    /// Writes and commands act on the world: with steering on they are announced and held for the
    /// grace window first.
    pub fn acts(self) -> bool {
        matches!(self, ToolKind::Write | ToolKind::Execute)
    }
}

/// Lines `start..=end` (1-based); `end` is `None` for "from `start` on".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// One thing a tool call will do, as a person should see it before it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Read {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<LineRange>,
    },
    List {
        path: String,
    },
    Search {
        pattern: String,
        path: String,
    },
    Run {
        command: String,
    },
    Create {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<u64>,
    },
    Delete {
        path: String,
    },
    /// `lines` where the edits are (known when the patch was matched against the file); `hint`
    /// the patch's `@@` context when they are not.
    Modify {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<LineRange>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    Move {
        from: String,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<LineRange>,
    },
    /// Updates the visible plan.
    Plan,
    Ask {
        question: String,
    },
    /// Reports the outcome of a plan run's step.
    Report {
        done: bool,
    },
    /// Types into a terminal session (control keys shown as `<C-c>`, `<Esc>`).
    Type {
        session: u32,
        text: String,
    },
    /// Calls a tool of an MCP server (`arguments`: the call's JSON, shortened to show).
    Call {
        server: String,
        tool: String,
        arguments: String,
    },
}

impl Action {
    /// Whether this action changes files (these are shown as the call's `preview`).
    pub fn edits(&self) -> bool {
        matches!(
            self,
            Action::Create { .. }
                | Action::Delete { .. }
                | Action::Modify { .. }
                | Action::Move { .. }
        )
    }
}

impl std::fmt::Display for LineRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.end {
            Some(end) if end == self.start => write!(f, "line {end}"),
            Some(end) => write!(f, "lines {}-{end}", self.start),
            None => write!(f, "from line {}", self.start),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines = |range: &Option<LineRange>| range.map(|r| format!(" {r}")).unwrap_or_default();
        match self {
            Action::Read { path, lines: range } => write!(f, "Read {path}{}", lines(range)),
            Action::List { path } => write!(f, "List {path}"),
            Action::Search { pattern, path } => write!(f, "Search /{pattern}/ in {path}"),
            Action::Run { command } => {
                write!(f, "Run {}", command.lines().next().unwrap_or_default())
            }
            Action::Create { path, lines: None } => write!(f, "Create {path}"),
            Action::Create {
                path,
                lines: Some(1),
            } => write!(f, "Create {path} (1 line)"),
            Action::Create {
                path,
                lines: Some(count),
            } => write!(f, "Create {path} ({count} lines)"),
            Action::Delete { path } => write!(f, "Delete {path}"),
            Action::Modify {
                path,
                lines: range,
                hint,
            } => {
                write!(f, "Modify {path}{}", lines(range))?;
                match hint {
                    Some(hint) if range.is_none() => write!(f, " @ {hint}"),
                    _ => Ok(()),
                }
            }
            Action::Move {
                from,
                to,
                lines: range,
            } => write!(f, "Move {from} → {to}{}", lines(range)),
            Action::Plan => write!(f, "Update the plan"),
            Action::Ask { question } => write!(f, "Ask: {question}"),
            Action::Report { done: true } => write!(f, "Report the step done"),
            Action::Report { done: false } => write!(f, "Report the step failed"),
            Action::Type { session, text } => {
                let shown: String = text.replace('\n', "⏎").chars().take(120).collect();
                write!(f, "Type into session {session}: {shown}")
            }
            Action::Call {
                server,
                tool,
                arguments,
            } => write!(f, "Call {server}.{tool} {arguments}"),
        }
    }
}

/// A file a call changed, with its line counts and where the changes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// As shown to the person (relative to the working directory where it is inside it).
    pub path: String,
    pub added: u64,
    pub removed: u64,
    /// The changed regions, as a unified diff's `@@` ranges would give them (one call's edits;
    /// a tally over several calls keeps only the counts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hunks: Vec<Hunk>,
}

/// One changed region: `old_lines` lines from old line `old_start` became `new_lines` lines from
/// new line `new_start` (1-based; a count of 0 means an insertion or deletion at that place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    pub old_start: u64,
    pub old_lines: u64,
    pub new_start: u64,
    pub new_lines: u64,
}

/// What a call that ran did, in fields rather than text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolOutcome {
    /// A command's exit code (`None` when it was killed or the tool runs no command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_files: Vec<FileChange>,
    /// The output the model got was shortened (the journal keeps more).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// For people: the first lines of what a command printed, and how many lines it printed in
    /// all (the model gets the whole output; a front end shows this much).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printed_lines: Option<u64>,
}

impl ToolOutcome {
    pub fn is_empty(&self) -> bool {
        *self == ToolOutcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_as_before() {
        let range = |start, end| Some(LineRange { start, end });
        let cases = [
            (
                Action::Read {
                    path: "src/a.rs".into(),
                    lines: range(45, Some(89)),
                },
                "Read src/a.rs lines 45-89",
            ),
            (
                Action::Modify {
                    path: "src/db.js".into(),
                    lines: range(45, Some(45)),
                    hint: None,
                },
                "Modify src/db.js line 45",
            ),
            (
                Action::Modify {
                    path: "src/db.js".into(),
                    lines: None,
                    hint: Some("function connect() {".into()),
                },
                "Modify src/db.js @ function connect() {",
            ),
            (
                Action::Run {
                    command: "cargo test\necho done".into(),
                },
                "Run cargo test",
            ),
            (
                Action::Create {
                    path: "t.js".into(),
                    lines: Some(3),
                },
                "Create t.js (3 lines)",
            ),
        ];
        for (action, text) in cases {
            assert_eq!(action.to_string(), text);
        }
        let json = serde_json::to_string(&Action::Delete { path: "x".into() }).unwrap_or_default();
        assert_eq!(json, r#"{"action":"delete","path":"x"}"#);
    }
}
