//! The conversation as the engine keeps it, independent of any provider's wire format.

use serde::{Deserialize, Serialize};

/// A session's id: a UUIDv7 string, also used as the provider's prompt-cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The provider's id for one tool call; a tool result answers the call with the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub String);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tool call as the model made it. `arguments` is the raw JSON text the model produced: it may be
/// invalid, and the engine tells the model so rather than guessing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub call_id: CallId,
    pub name: String,
    pub arguments: String,
}

/// One entry of the conversation history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    User {
        text: String,
    },
    Assistant {
        text: String,
    },
    ToolCall(ToolCall),
    ToolResult {
        call_id: CallId,
        ok: bool,
        output: String,
        /// Images that came with the result (an MCP tool's), sent where the wire takes them
        /// (Responses, Anthropic); `output` names each, so a wire that takes only text still says
        /// they were there.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<Image>,
    },
    /// Text the model wrote while working, marked by the provider as commentary rather than its
    /// final answer (the Responses API's `phase: "commentary"`): progress, not the answer.
    Commentary {
        text: String,
    },
    /// The model's reasoning as the provider returned it — a Responses `reasoning` item with its
    /// `encrypted_content`, an Anthropic `thinking` or `redacted_thinking` block with its signature —
    /// kept verbatim and sent back, in place, to the wire it came from (`wire`: `responses` or
    /// `anthropic`); other wires leave it out.
    Reasoning {
        wire: String,
        item: serde_json::Value,
    },
}

/// What the model is told about one tool: its name, what it does, and a JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// An image as a tool returned it: its MIME type and base64 data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub mime_type: String,
    pub data: String,
}

/// One step of the model's working plan (`update_plan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStep {
    pub step: String,
    pub status: StepStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    InProgress,
    Completed,
    /// Plan runs only: the step was skipped, or failed.
    Skipped,
    Failed,
}

impl StepStatus {
    /// The checkbox shown for a step in every rendering of a plan (terminal, progress, context).
    pub fn mark(self) -> &'static str {
        match self {
            StepStatus::Completed => "[x]",
            StepStatus::InProgress => "[>]",
            StepStatus::Pending => "[ ]",
            StepStatus::Skipped => "[-]",
            StepStatus::Failed => "[!]",
        }
    }
}
