//! One HTTP attempt: render the request for the endpoint's wire format, POST it, classify a failed
//! status, and feed the SSE body to the wire format's decoder, with an idle timeout on every read.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::error::parse_retry_after;
use crate::sse::{SseEvent, SseParser};
use crate::{Endpoint, ModelError, ModelRequest, ModelResponse, StreamEvent, Wire};
use crate::{anthropic, chat, responses};

/// Turns SSE events of one wire format into deltas and, at the end, the completed response.
pub(crate) trait Decoder: Send {
    /// Handles one event; `Ok(true)` means the provider declared the response complete.
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<bool, ModelError>;
    /// The completed response. `completed` is false when the stream ended without the wire format's
    /// end marker; a decoder refuses that unless its format allows it.
    fn finish(self: Box<Self>, completed: bool) -> Result<ModelResponse, ModelError>;
    /// A response a server sent whole, as JSON instead of a stream (some proxies ignore
    /// `stream: true`); `Ok(true)` when it is complete.
    fn whole(
        &mut self,
        body: serde_json::Value,
        out: &mut Vec<StreamEvent>,
    ) -> Result<bool, ModelError>;
}

pub(crate) struct Transport {
    http: reqwest::Client,
    endpoint: Endpoint,
}

impl Transport {
    pub(crate) fn new(endpoint: Endpoint) -> Result<Self, ModelError> {
        // The platform verifier reads the system's root certificates when the client is built
        // (milliseconds); a plain-HTTP endpoint (a local model server) never needs them.
        crate::install_tls();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("cox/", env!("CARGO_PKG_VERSION")));
        if endpoint.base_url.starts_with("http://") {
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder
            .build()
            .map_err(|e| ModelError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Transport { http, endpoint })
    }

    pub(crate) async fn attempt(
        &self,
        request: &ModelRequest,
        idle: Duration,
        total: Duration,
        events: &mpsc::Sender<StreamEvent>,
    ) -> Result<ModelResponse, ModelError> {
        // The whole attempt, headers to completion, within the total deadline.
        match timeout(total, self.attempt_within(request, idle, events)).await {
            Ok(result) => result,
            Err(_) => Err(ModelError::Deadline(total)),
        }
    }

    async fn attempt_within(
        &self,
        request: &ModelRequest,
        idle: Duration,
        events: &mpsc::Sender<StreamEvent>,
    ) -> Result<ModelResponse, ModelError> {
        let base = self.endpoint.base_url.trim_end_matches('/');
        let (url, body, mut decoder): (String, serde_json::Value, Box<dyn Decoder>) =
            match self.endpoint.wire {
                Wire::Responses => (
                    format!("{base}/responses"),
                    responses::body(request),
                    Box::new(responses::ResponsesDecoder::default()),
                ),
                Wire::Chat => (
                    format!("{base}/chat/completions"),
                    chat::body(request),
                    Box::new(chat::ChatDecoder::default()),
                ),
                Wire::Anthropic => (
                    format!("{base}/v1/messages"),
                    anthropic::body(request),
                    Box::new(anthropic::AnthropicDecoder::default()),
                ),
            };
        let mut builder = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "text/event-stream")
            .body(body.to_string());
        if let Some(key) = &self.endpoint.api_key {
            builder = match self.endpoint.wire {
                Wire::Anthropic => builder.header("x-api-key", key.expose()),
                Wire::Responses | Wire::Chat => builder.bearer_auth(key.expose()),
            };
        }
        if self.endpoint.wire == Wire::Anthropic {
            builder = builder.header("anthropic-version", "2023-06-01");
            for (name, value) in anthropic::headers(request) {
                builder = builder.header(name, value);
            }
        }

        let mut response = match timeout(idle, builder.send()).await {
            Err(_) => return Err(ModelError::Idle(idle)),
            Ok(Err(e)) => return Err(self.send_error(&url, &e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let body = match timeout(idle, response.text()).await {
                Ok(Ok(text)) => text,
                _ => String::new(),
            };
            let body = self.redact(&body);
            return Err(crate::classify_http(status.as_u16(), retry_after, &body));
        }

        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("application/json") {
            let text = match timeout(idle, response.text()).await {
                Err(_) => return Err(ModelError::Idle(idle)),
                Ok(Err(e)) => return Err(ModelError::Stream(self.redact(&error_chain(&e)))),
                Ok(Ok(text)) => text,
            };
            let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                ModelError::Protocol(format!(
                    "the server answered with a JSON body (not a stream) that does not parse: {e}"
                ))
            })?;
            let mut deltas = Vec::new();
            let completed = decoder.whole(body, &mut deltas)?;
            for delta in deltas {
                let _ = events.send(delta).await;
            }
            return decoder.finish(completed);
        }
        if !content_type.is_empty() && !content_type.starts_with("text/event-stream") {
            return Err(ModelError::Protocol(format!(
                "the server answered {url} with content type `{content_type}`, neither an event \
                 stream nor JSON; check the provider's base_url"
            )));
        }
        let mut parser = SseParser::default();
        let mut parsed = Vec::new();
        let mut deltas = Vec::new();
        // The idle timer counts events: bytes that complete no event (keep-alive comments, a
        // trickle of a partial line) do not reset it.
        let mut idle_until = tokio::time::Instant::now() + idle;
        loop {
            let chunk = match tokio::time::timeout_at(idle_until, response.chunk()).await {
                Err(_) => return Err(ModelError::Idle(idle)),
                Ok(Err(e)) => return Err(ModelError::Stream(self.redact(&error_chain(&e)))),
                Ok(Ok(chunk)) => chunk,
            };
            let Some(bytes) = chunk else { break };
            parser.feed(&bytes, &mut parsed);
            if !parsed.is_empty() {
                idle_until = tokio::time::Instant::now() + idle;
            }
            if self
                .dispatch(&mut decoder, &mut parsed, &mut deltas, events)
                .await?
            {
                return decoder.finish(true);
            }
        }
        parser.finish(&mut parsed);
        let completed = self
            .dispatch(&mut decoder, &mut parsed, &mut deltas, events)
            .await?;
        decoder.finish(completed)
    }

    /// Feeds parsed events to the decoder and forwards the deltas it produced.
    async fn dispatch(
        &self,
        decoder: &mut Box<dyn Decoder>,
        parsed: &mut Vec<SseEvent>,
        deltas: &mut Vec<StreamEvent>,
        events: &mpsc::Sender<StreamEvent>,
    ) -> Result<bool, ModelError> {
        let mut completed = false;
        for event in parsed.drain(..) {
            if decoder.on_event(&event, deltas)? {
                completed = true;
            }
            for delta in deltas.drain(..) {
                // A front end that stopped listening does not stop the request.
                let _ = events.send(delta).await;
            }
            if completed {
                break;
            }
        }
        Ok(completed)
    }

    fn send_error(&self, url: &str, error: &reqwest::Error) -> ModelError {
        let detail = self.redact(&error_chain(error));
        if error.is_connect() {
            ModelError::Connect {
                url: url.to_string(),
                detail,
            }
        } else if error.is_builder() {
            ModelError::Config(format!("invalid request URL {url}: {detail}"))
        } else {
            ModelError::Stream(detail)
        }
    }

    fn redact(&self, text: &str) -> String {
        match &self.endpoint.api_key {
            Some(key) => key.redact(text),
            None => text.to_string(),
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let millis = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(ms) = millis.filter(|ms| ms.is_finite() && *ms >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    header(RETRY_AFTER.as_str()).and_then(parse_retry_after)
}

/// The error and its sources, innermost last: reqwest's own message alone says little
/// ("error sending request"); the cause ("Connection refused") is what the person needs.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
