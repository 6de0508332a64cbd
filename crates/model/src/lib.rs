//! Model providers: one [`ModelClient`] per wire format — OpenAI Responses ([`responses`]), Chat
//! Completions for any OpenAI-compatible server ([`chat`]), Anthropic Messages ([`anthropic`]) — all
//! streaming over SSE, sharing one transport ([`transport`]) and one retry policy ([`retry`]) — and a
//! GGUF model run in-process ([`local`], behind the `local` feature).
//!
//! This crate owns wire formats and error classification. It must not know about tools, sessions or
//! terminals: it turns a [`ModelRequest`] into deltas and a completed [`ModelResponse`].
//! A response's tool calls are handed out only once the provider said the response is complete, so a
//! stream that fails half-way and is retried never causes a tool to run twice.

pub mod anthropic;
pub mod chat;
mod error;
pub mod local;
pub mod responses;
pub mod retry;
mod secret;
mod sse;
mod transport;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use cox_protocol::{Item, SessionId, ToolCall, ToolSpec, Usage};
use tokio::sync::mpsc;

pub use error::{ModelError, classify_http};
pub use retry::RetryPolicy;
pub use secret::Secret;

/// A boxed future, so [`ModelClient`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything one model request needs; each wire format renders it in full (requests are stateless).
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub model: String,
    /// The system prompt.
    pub instructions: String,
    pub items: Vec<Item>,
    pub tools: Vec<ToolSpec>,
    /// Sent as the prompt-cache key where the provider has one.
    pub session_id: SessionId,
    pub max_output_tokens: Option<u32>,
    /// Structured output: the answer must be JSON matching this schema (name, schema), where the
    /// provider supports it (Responses `text.format`, Chat `response_format`).
    pub output_schema: Option<(String, serde_json::Value)>,
    /// How the model reasons, for the wires that take it.
    pub reasoning: Reasoning,
    /// Responses `service_tier` (`auto`, `default`, `flex`, `priority`), passed through when set.
    pub service_tier: Option<String>,
    /// Responses `text.verbosity` (`low`, `medium`, `high`), passed through when set.
    pub verbosity: Option<String>,
}

/// Reasoning settings of one request; each wire sends what it has a field for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reasoning {
    /// Responses `reasoning.effort`, Chat `reasoning_effort` (`minimal` … `xhigh`).
    pub effort: Option<String>,
    /// Responses `reasoning.summary` (`auto`, `concise`, `detailed`).
    pub summary: Option<String>,
    /// Responses: the model reasons, so ask for `reasoning.encrypted_content` and send its
    /// reasoning items back (with `store: false` nothing else carries them between turns).
    pub carry: bool,
    /// Anthropic extended thinking.
    pub thinking: Option<Thinking>,
}

/// Anthropic extended thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    /// `{"type": "enabled", "budget_tokens": N}`.
    Budget(u32),
    /// `{"type": "adaptive"}`: the model decides (Claude Opus 4.6 and later).
    Adaptive,
}

/// What arrives while a response streams.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    TextDelta(String),
    ReasoningDelta(String),
    /// The request failed and will be sent again after `delay`: the text and reasoning this
    /// attempt streamed are void (the next attempt streams the response from its start).
    Retrying {
        attempt: u32,
        max_attempts: u32,
        reason: String,
        delay: Duration,
    },
}

/// A completed response: the only place tool calls come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelResponse {
    /// The final answer's text (commentary and reasoning apart).
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
    /// The response as history items in the provider's order — reasoning, commentary, text, calls —
    /// where the wire has more than text and calls; empty means `[text, calls…]` (see
    /// [`ModelResponse::items`]).
    pub output: Vec<Item>,
    /// How the response ended.
    pub ending: Ending,
}

impl ModelResponse {
    /// The history items this response adds, in order.
    pub fn items(&self) -> Vec<Item> {
        if !self.output.is_empty() {
            return self.output.clone();
        }
        let mut items = Vec::new();
        if !self.text.is_empty() {
            items.push(Item::Assistant {
                text: self.text.clone(),
            });
        }
        items.extend(self.tool_calls.iter().cloned().map(Item::ToolCall));
        items
    }
}

/// How a response ended, as the provider said it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Ending {
    /// It finished on its own.
    #[default]
    Complete,
    /// The output limit (or a provider limit) cut it: Chat `finish_reason: "length"`, Responses
    /// `response.incomplete`, Anthropic `stop_reason: "max_tokens"`.
    Truncated { reason: String },
    /// The model declined: Chat `delta.refusal`, a Responses `refusal` part, Anthropic
    /// `stop_reason: "refusal"`; `text` is what it said, if anything.
    Refused { text: String },
}

impl Ending {
    /// The ending's name, for logs (never the refusal's text).
    pub fn name(&self) -> &str {
        match self {
            Ending::Complete => "complete",
            Ending::Truncated { .. } => "truncated",
            Ending::Refused { .. } => "refused",
        }
    }

    /// This ending, or a refusal when the response was only a refusal's text (Chat's
    /// `delta.refusal`, a Responses refusal part) and nothing else ended it.
    pub(crate) fn or_refused(self, refusal: String) -> Ending {
        match self {
            Ending::Complete if !refusal.is_empty() => Ending::Refused { text: refusal },
            ending => ending,
        }
    }
}

/// The items in the order every wire accepts: a tool call's result comes straight after the call,
/// so text that joined the conversation while calls were running (a directive, an interrupt note,
/// a cut response) moves to just after the last of their results. Nothing is dropped.
pub(crate) fn in_wire_order(items: &[Item]) -> Vec<&Item> {
    let mut ordered = Vec::with_capacity(items.len());
    let mut waiting: Vec<&Item> = Vec::new();
    let mut open: Vec<&cox_protocol::CallId> = Vec::new();
    for item in items {
        match item {
            Item::ToolCall(call) => {
                open.push(&call.call_id);
                ordered.push(item);
            }
            Item::ToolResult { call_id, .. } => {
                open.retain(|id| *id != call_id);
                ordered.push(item);
                if open.is_empty() {
                    ordered.append(&mut waiting);
                }
            }
            Item::User { .. } | Item::Assistant { .. } | Item::Commentary { .. }
                if !open.is_empty() =>
            {
                waiting.push(item)
            }
            _ => {
                // A new response (or reasoning) while calls are still open: they never got
                // results; keep what waited before it.
                if !open.is_empty() && matches!(item, Item::Reasoning { .. }) {
                    open.clear();
                    ordered.append(&mut waiting);
                }
                ordered.push(item);
            }
        }
    }
    ordered.append(&mut waiting);
    ordered
}

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    Responses,
    Chat,
    Anthropic,
}

impl Wire {
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::Responses => "responses",
            Wire::Chat => "chat",
            Wire::Anthropic => "anthropic",
        }
    }
}

/// Where and how to reach one provider.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The provider's name as the user knows it (`openai`, `ollama`, a custom name).
    pub provider: String,
    pub wire: Wire,
    /// Base URL without the trailing path (`https://api.openai.com/v1`).
    pub base_url: String,
    pub api_key: Option<Secret>,
}

/// A model provider. One call is one complete request, retried inside as the policy allows.
pub trait ModelClient: Send + Sync {
    /// Streams one response. Deltas and retry notices go to `events` as they happen; the result is
    /// the completed response or the error that ended the attempts.
    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        events: mpsc::Sender<StreamEvent>,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>>;

    /// The context size the client itself imposes (an in-process model allocates a fixed one);
    /// `None` when the catalog or config knows the window.
    fn context_window(&self) -> Option<u64> {
        None
    }
}

/// Builds the client for an endpoint.
pub fn client(endpoint: Endpoint, policy: RetryPolicy) -> Result<Box<dyn ModelClient>, ModelError> {
    Ok(Box::new(retry::Retrying::new(
        transport::Transport::new(endpoint)?,
        policy,
    )))
}

/// Makes ring the process's TLS provider, once, before any HTTP client is built (reqwest is built
/// without a provider of its own, so no C crypto library is compiled; it panics at `build()` when
/// none is installed). Every crate of cox that builds a client calls this first.
pub fn install_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another provider installed first (by an embedder) serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
