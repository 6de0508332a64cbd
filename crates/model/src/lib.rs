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
}

/// What arrives while a response streams.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    TextDelta(String),
    ReasoningDelta(String),
    /// The request failed and will be sent again after `delay`.
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
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
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
