//! The legacy HTTP+SSE transport (protocol version 2024-11-05), which `rmcp` no longer ships: the
//! client opens a GET event stream; its first event, `endpoint`, names the URL to POST each
//! message to; the server's messages arrive on the stream as `message` events. Servers that have
//! not moved to streamable HTTP (and the reference servers' `sse` mode) still speak it.

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use rmcp::RoleClient;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("the event stream at {url} failed: {source}")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the event stream at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the event stream at {url} ended before naming its endpoint")]
    NoEndpoint { url: String },
    #[error("the endpoint `{endpoint}` the server named is not a URL: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error("the endpoint `{endpoint}` is on another host than the stream; refused")]
    OtherOrigin { endpoint: String },
    #[error("posting to {url} failed: {reason}")]
    Post { url: String, reason: String },
}

/// A connected legacy SSE transport.
pub struct SseTransport {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    headers: HeaderMap,
    incoming: mpsc::Receiver<ServerJsonRpcMessage>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One event of a `text/event-stream` body.
#[derive(Debug, Default, PartialEq, Eq)]
struct Event {
    name: String,
    data: String,
}

/// Splits an event stream into events (the fields cox needs: `event` and `data`).
#[derive(Default)]
struct Parser {
    buffer: Vec<u8>,
    event: Event,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Event>) {
        self.buffer.extend_from_slice(bytes);
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let event = std::mem::take(&mut self.event);
                if !event.data.is_empty() || !event.name.is_empty() {
                    out.push(event);
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event.name = value.to_string(),
                "data" => {
                    if !self.event.data.is_empty() {
                        self.event.data.push('\n');
                    }
                    self.event.data.push_str(value);
                }
                _ => {}
            }
        }
    }
}

impl SseTransport {
    /// Opens the stream and waits for its `endpoint` event (bounded by the caller's start-up
    /// timeout). The endpoint must be on the stream's own origin: a server cannot send cox's
    /// headers (a bearer token) to another host.
    pub async fn connect(
        client: reqwest::Client,
        url: &str,
        headers: HeaderMap,
    ) -> Result<SseTransport, SseError> {
        let response = client
            .get(url)
            .headers(headers.clone())
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|source| SseError::Connect {
                url: url.to_string(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(SseError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let base = response.url().clone();
        let mut body = response.bytes_stream();
        let mut parser = Parser::default();
        let mut events = Vec::new();
        let endpoint = 'found: loop {
            let Some(chunk) = body.next().await else {
                return Err(SseError::NoEndpoint {
                    url: url.to_string(),
                });
            };
            let chunk = chunk.map_err(|source| SseError::Connect {
                url: url.to_string(),
                source,
            })?;
            parser.feed(&chunk, &mut events);
            while !events.is_empty() {
                let event = events.remove(0);
                if event.name == "endpoint" {
                    break 'found event.data;
                }
            }
        };
        let resolved = base
            .join(endpoint.trim())
            .map_err(|e| SseError::BadEndpoint {
                endpoint: endpoint.clone(),
                reason: e.to_string(),
            })?;
        if resolved.origin() != base.origin() {
            return Err(SseError::OtherOrigin { endpoint });
        }
        let (sender, incoming) = mpsc::channel(64);
        let reader = tokio::spawn(async move {
            let mut pending = events;
            loop {
                for event in pending.drain(..) {
                    if !(event.name.is_empty() || event.name == "message") {
                        continue;
                    }
                    match serde_json::from_str::<ServerJsonRpcMessage>(&event.data) {
                        Ok(message) => {
                            if sender.send(message).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "an SSE message that is not JSON-RPC"),
                    }
                }
                match body.next().await {
                    Some(Ok(chunk)) => parser.feed(&chunk, &mut pending),
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "the SSE stream failed");
                        return;
                    }
                    None => return,
                }
            }
        });
        Ok(SseTransport {
            client,
            endpoint: resolved,
            headers,
            incoming,
            reader,
        })
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let request = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(Duration::from_secs(30))
            .json(&item);
        let url = self.endpoint.to_string();
        async move {
            let response = request.send().await.map_err(|e| SseError::Post {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(SseError::Post {
                    url,
                    reason: format!("HTTP {}", response.status().as_u16()),
                })
            }
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.reader.abort();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_blank_lines_across_chunks() {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        parser.feed(b"event: endpoint\r\ndata: /messages?session", &mut out);
        assert!(out.is_empty());
        parser.feed(
            b"_id=1\r\n\r\n: comment\n\ndata: {\"a\":\ndata: 1}\n\n",
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                Event {
                    name: "endpoint".into(),
                    data: "/messages?session_id=1".into()
                },
                Event {
                    name: String::new(),
                    data: "{\"a\":\n1}".into()
                },
            ]
        );
    }
}
