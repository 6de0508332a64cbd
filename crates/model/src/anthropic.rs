//! Anthropic Messages API (`POST {base}/v1/messages`, `x-api-key`, `anthropic-version: 2023-06-01`).
//!
//! Requests alternate user and assistant turns: a response's text and `tool_use` blocks form one
//! assistant message, and the tool results that answer it form the next user message.
//! Stream: `message_start` (input usage), `content_block_start` (text or `tool_use` with id and name),
//! `content_block_delta` (`text_delta`, `input_json_delta`, `thinking_delta`), `content_block_stop`,
//! `message_delta` (stop reason, output usage), `message_stop`; `ping` and `error` may come anywhere.

use cox_protocol::{CallId, Item, ToolCall, Usage};
use serde_json::{Value, json};

use crate::error::classify_stream_error;
use crate::sse::SseEvent;
use crate::transport::Decoder;
use crate::{ModelError, ModelRequest, ModelResponse, StreamEvent};

/// Anthropic requires `max_tokens`; this is used when the catalog or config gives none.
pub const DEFAULT_MAX_TOKENS: u32 = 16_384;

pub fn body(request: &ModelRequest) -> Value {
    let mut messages: Vec<Value> = Vec::new();
    for item in &request.items {
        let (role, block) = match item {
            Item::User { text } => ("user", json!({"type": "text", "text": text})),
            Item::Assistant { text } => ("assistant", json!({"type": "text", "text": text})),
            Item::ToolCall(call) => {
                // Invalid arguments were already reported to the model as a tool error; the
                // history still needs an object here.
                let input = serde_json::from_str::<Value>(&call.arguments)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({}));
                (
                    "assistant",
                    json!({"type": "tool_use", "id": call.call_id.0, "name": call.name, "input": input}),
                )
            }
            Item::ToolResult {
                call_id,
                ok,
                output,
            } => (
                "user",
                json!({
                    "type": "tool_result",
                    "tool_use_id": call_id.0,
                    "content": output,
                    "is_error": !ok,
                }),
            ),
        };
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(content) = last["content"].as_array_mut() {
                    content.push(block);
                }
            }
            _ => messages.push(json!({"role": role, "content": [block]})),
        }
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            json!({
                "name": tool.name,
                "description": tool.description,
                "input_schema": tool.parameters,
            })
        })
        .collect();
    // Fixed parts first, the growing conversation last (see `responses::body`).
    json!({
        "model": request.model,
        "max_tokens": request.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "system": request.instructions,
        "tools": tools,
        "stream": true,
        "messages": messages,
    })
}

#[derive(Debug)]
enum Block {
    Text,
    ToolUse {
        id: String,
        name: String,
        json: String,
        initial: Value,
    },
    Other,
}

#[derive(Debug, Default)]
pub(crate) struct AnthropicDecoder {
    text: String,
    blocks: Vec<(u64, Block)>,
    usage: Usage,
    saw_usage: bool,
}

impl Decoder for AnthropicDecoder {
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<bool, ModelError> {
        let data = event.json("event data")?;
        let kind = data["type"].as_str().unwrap_or(event.event.as_str());
        match kind {
            "message_start" => {
                let usage = &data["message"]["usage"];
                let cached = usage["cache_read_input_tokens"].as_u64().unwrap_or(0);
                let created = usage["cache_creation_input_tokens"].as_u64().unwrap_or(0);
                // Anthropic's input_tokens excludes cached and cache-writing tokens; ours is all input.
                self.usage.input_tokens =
                    usage["input_tokens"].as_u64().unwrap_or(0) + cached + created;
                self.usage.cached_input_tokens = cached;
                self.usage.output_tokens = usage["output_tokens"].as_u64().unwrap_or(0);
                self.saw_usage = usage.is_object();
            }
            "content_block_start" => {
                let index = data["index"].as_u64().unwrap_or(self.blocks.len() as u64);
                let start = &data["content_block"];
                let block = match start["type"].as_str() {
                    Some("text") => {
                        if let Some(text) = start["text"].as_str().filter(|t| !t.is_empty()) {
                            self.text.push_str(text);
                            out.push(StreamEvent::TextDelta(text.to_string()));
                        }
                        Block::Text
                    }
                    Some("tool_use") => Block::ToolUse {
                        id: start["id"].as_str().unwrap_or_default().to_string(),
                        name: start["name"].as_str().unwrap_or_default().to_string(),
                        json: String::new(),
                        initial: start.get("input").cloned().unwrap_or_else(|| json!({})),
                    },
                    _ => Block::Other,
                };
                self.blocks.push((index, block));
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap_or(0);
                let delta = &data["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let text = delta["text"].as_str().unwrap_or_default();
                        self.text.push_str(text);
                        out.push(StreamEvent::TextDelta(text.to_string()));
                    }
                    Some("thinking_delta") => {
                        let text = delta["thinking"].as_str().unwrap_or_default();
                        out.push(StreamEvent::ReasoningDelta(text.to_string()));
                    }
                    Some("input_json_delta") => {
                        let piece = delta["partial_json"].as_str().unwrap_or_default();
                        if let Some((_, Block::ToolUse { json, .. })) =
                            self.blocks.iter_mut().find(|(i, _)| *i == index)
                        {
                            json.push_str(piece);
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(output) = data["usage"]["output_tokens"].as_u64() {
                    self.usage.output_tokens = output;
                    self.saw_usage = true;
                }
            }
            "message_stop" => return Ok(true),
            "error" => {
                let error = &data["error"];
                return Err(classify_stream_error(
                    error["type"].as_str().unwrap_or_default(),
                    error["message"].as_str().unwrap_or_default().to_string(),
                ));
            }
            _ => {}
        }
        Ok(false)
    }

    fn finish(self: Box<Self>, completed: bool) -> Result<ModelResponse, ModelError> {
        if !completed {
            return Err(ModelError::Stream(
                "the connection closed before message_stop".to_string(),
            ));
        }
        let mut blocks = self.blocks;
        blocks.sort_by_key(|(index, _)| *index);
        let tool_calls = blocks
            .into_iter()
            .filter_map(|(_, block)| match block {
                Block::ToolUse {
                    id,
                    name,
                    json,
                    initial,
                } => Some(ToolCall {
                    call_id: CallId(id),
                    name,
                    // A call with no input deltas has its whole input in the start block.
                    arguments: if json.is_empty() {
                        initial.to_string()
                    } else {
                        json
                    },
                }),
                Block::Text | Block::Other => None,
            })
            .collect();
        Ok(ModelResponse {
            text: self.text,
            tool_calls,
            usage: self.saw_usage.then_some(self.usage),
        })
    }
}
