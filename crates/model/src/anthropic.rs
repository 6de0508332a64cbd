//! Anthropic Messages API (`POST {base}/v1/messages`, `x-api-key`, `anthropic-version: 2023-06-01`).
//!
//! Requests alternate user and assistant turns: a response's text and `tool_use` blocks form one
//! assistant message, and the tool results that answer it form the next user message.
//! Stream: `message_start` (input usage), `content_block_start` (text or `tool_use` with id and name),
//! `content_block_delta` (`text_delta`, `input_json_delta`, `thinking_delta`), `content_block_stop`,
//! `message_delta` (stop reason, output usage), `message_stop`; `ping` and `error` may come anywhere.
//!
//! Prompt caching: `cache_control` breakpoints after the system prompt, on the newest message and
//! where the previous request ended (see [`body`]). Extended thinking (`thinking`, with the
//! interleaved-thinking beta header): `thinking` and `redacted_thinking` blocks come back as
//! [`Item::Reasoning`] with their signatures and go back verbatim, in their assistant turn, as the
//! API requires for a tool loop. Input usage is read from `message_delta` too (LiteLLM sends it
//! there). `stop_reason` `max_tokens` and `refusal` end the response as truncated or refused.

use cox_protocol::{CallId, Item, ToolCall, Usage};
use serde_json::{Value, json};

use crate::error::classify_stream_error;
use crate::sse::SseEvent;
use crate::transport::Decoder;
use crate::{Ending, ModelError, ModelRequest, ModelResponse, StreamEvent, Thinking};

/// Anthropic requires `max_tokens`; this is used when the catalog or config gives none.
pub const DEFAULT_MAX_TOKENS: u32 = 16_384;

/// The `wire` of the thinking blocks this format returns.
pub const WIRE: &str = "anthropic";

/// The beta header that lets a model think between tool calls, sent when thinking is on.
pub const INTERLEAVED_THINKING: &str = "interleaved-thinking-2025-05-14";

/// Room for the answer beside a thinking budget, when `max_tokens` would not leave it.
const ANSWER_ROOM: u32 = 4_096;

/// Headers the request needs beyond the version: the interleaved-thinking beta when it thinks.
pub fn headers(request: &ModelRequest) -> Vec<(&'static str, String)> {
    match request.reasoning.thinking {
        Some(_) => vec![("anthropic-beta", INTERLEAVED_THINKING.to_string())],
        None => Vec::new(),
    }
}

fn cache(block: &mut Value) {
    block["cache_control"] = json!({"type": "ephemeral"});
}

pub fn body(request: &ModelRequest) -> Value {
    let thinking = request.reasoning.thinking;
    let mut messages: Vec<Value> = Vec::new();
    for item in crate::in_wire_order(&request.items) {
        let (role, block) = match item {
            Item::User { text } => ("user", json!({"type": "text", "text": text})),
            Item::Assistant { text } | Item::Commentary { text } => {
                ("assistant", json!({"type": "text", "text": text}))
            }
            // Thinking goes back, signed, only to a request that thinks (and only Anthropic's).
            Item::Reasoning { wire, item } if wire == WIRE && thinking.is_some() => {
                ("assistant", item.clone())
            }
            Item::Reasoning { .. } => continue,
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
                images,
            } => {
                // With images, the content is blocks: the text, then each image.
                let content = if images.is_empty() {
                    json!(output)
                } else {
                    let mut blocks = vec![json!({"type": "text", "text": output})];
                    blocks.extend(images.iter().map(|image| {
                        json!({
                            "type": "image",
                            "source": {"type": "base64", "media_type": image.mime_type, "data": image.data},
                        })
                    }));
                    Value::Array(blocks)
                };
                (
                    "user",
                    json!({
                        "type": "tool_result",
                        "tool_use_id": call_id.0,
                        "content": content,
                        "is_error": !ok,
                    }),
                )
            }
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
    // Prompt caching: a breakpoint after the system prompt (tools and system, the same all
    // session), one on the newest message, and one where the previous request ended (the user
    // message before the last answer), so each request reads its predecessor's prefix exactly.
    let mut marks = vec![messages.len().checked_sub(1)];
    if let Some(answer) = messages.iter().rposition(|m| m["role"] == "assistant") {
        marks.push(answer.checked_sub(1));
    }
    for at in marks.into_iter().flatten() {
        if let Some(last) = messages[at]["content"]
            .as_array_mut()
            .and_then(|content| content.last_mut())
            .filter(|block| {
                !matches!(
                    block["type"].as_str(),
                    Some("thinking" | "redacted_thinking")
                )
            })
        {
            cache(last);
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
    let mut system = json!({"type": "text", "text": request.instructions});
    cache(&mut system);
    let mut max_tokens = request.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    // Fixed parts first, the growing conversation last (see `responses::body`).
    let mut body = json!({
        "model": request.model,
        "max_tokens": max_tokens,
        "system": [system],
        "tools": tools,
        "stream": true,
    });
    match thinking {
        Some(Thinking::Budget(budget)) => {
            // The budget is part of max_tokens, which must exceed it.
            if max_tokens <= budget {
                max_tokens = budget.saturating_add(ANSWER_ROOM);
                body["max_tokens"] = json!(max_tokens);
            }
            body["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
        }
        Some(Thinking::Adaptive) => body["thinking"] = json!({"type": "adaptive"}),
        None => {}
    }
    body["messages"] = json!(messages);
    body
}

#[derive(Debug)]
enum Block {
    Text(String),
    Thinking {
        thinking: String,
        signature: String,
    },
    Redacted(Value),
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
    blocks: Vec<(u64, Block)>,
    usage: Usage,
    saw_usage: bool,
    /// Input as `message_start` gave it (uncached, cache read, cache write), updated by
    /// `message_delta` when that carries counts (LiteLLM sends zeros first).
    input: [u64; 3],
    ending: Ending,
}

impl AnthropicDecoder {
    fn block_mut(&mut self, index: u64) -> Option<&mut Block> {
        self.blocks
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, block)| block)
    }

    fn read_usage(&mut self, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        self.saw_usage = true;
        for (slot, key) in [
            "input_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ]
        .iter()
        .enumerate()
        {
            if let Some(value) = usage[key]
                .as_u64()
                .filter(|v| *v > 0 || self.input[slot] == 0)
            {
                self.input[slot] = value;
            }
        }
        // Anthropic's input_tokens excludes cached and cache-writing tokens; ours is all input.
        self.usage.input_tokens = self.input.iter().sum();
        self.usage.cached_input_tokens = self.input[1];
        if let Some(output) = usage["output_tokens"].as_u64() {
            self.usage.output_tokens = output;
        }
    }

    fn on_data(
        &mut self,
        kind: &str,
        data: &Value,
        out: &mut Vec<StreamEvent>,
    ) -> Result<bool, ModelError> {
        match kind {
            "message_start" => self.read_usage(&data["message"]["usage"]),
            "content_block_start" => {
                let index = data["index"].as_u64().unwrap_or(self.blocks.len() as u64);
                let start = &data["content_block"];
                let text_of = |key: &str| start[key].as_str().unwrap_or_default().to_string();
                let block = match start["type"].as_str() {
                    Some("text") => {
                        let text = text_of("text");
                        if !text.is_empty() {
                            out.push(StreamEvent::TextDelta(text.clone()));
                        }
                        Block::Text(text)
                    }
                    Some("thinking") => {
                        let thinking = text_of("thinking");
                        if !thinking.is_empty() {
                            out.push(StreamEvent::ReasoningDelta(thinking.clone()));
                        }
                        Block::Thinking {
                            thinking,
                            signature: text_of("signature"),
                        }
                    }
                    Some("redacted_thinking") => Block::Redacted(start.clone()),
                    Some("tool_use") => Block::ToolUse {
                        id: text_of("id"),
                        name: text_of("name"),
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
                let piece = |key: &str| delta[key].as_str().unwrap_or_default();
                match (delta["type"].as_str(), self.block_mut(index)) {
                    (Some("text_delta"), block) => {
                        let text = piece("text");
                        if let Some(Block::Text(kept)) = block {
                            kept.push_str(text);
                        } else {
                            self.blocks.push((index, Block::Text(text.to_string())));
                        }
                        out.push(StreamEvent::TextDelta(text.to_string()));
                    }
                    (Some("thinking_delta"), block) => {
                        let text = piece("thinking");
                        if let Some(Block::Thinking { thinking, .. }) = block {
                            thinking.push_str(text);
                        }
                        out.push(StreamEvent::ReasoningDelta(text.to_string()));
                    }
                    (Some("signature_delta"), Some(Block::Thinking { signature, .. })) => {
                        signature.push_str(piece("signature"));
                    }
                    (Some("input_json_delta"), Some(Block::ToolUse { json, .. })) => {
                        json.push_str(piece("partial_json"));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                self.read_usage(&data["usage"]);
                match data["delta"]["stop_reason"].as_str() {
                    Some(reason @ ("max_tokens" | "model_context_window_exceeded")) => {
                        self.ending = Ending::Truncated {
                            reason: reason.into(),
                        }
                    }
                    Some("refusal") => {
                        self.ending = Ending::Refused {
                            text: String::new(),
                        }
                    }
                    _ => {}
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
}

impl Decoder for AnthropicDecoder {
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<bool, ModelError> {
        let data = event.json("event data")?;
        let kind = data["type"].as_str().unwrap_or(event.event.as_str());
        self.on_data(kind, &data, out)
    }

    fn whole(&mut self, body: Value, out: &mut Vec<StreamEvent>) -> Result<bool, ModelError> {
        // A non-streamed message: the events a stream of it would have carried.
        if body["type"] == "error" {
            return self.on_data("error", &body, out);
        }
        self.on_data(
            "message_start",
            &json!({"message": {"usage": body["usage"]}}),
            out,
        )?;
        for (index, block) in body["content"].as_array().into_iter().flatten().enumerate() {
            self.on_data(
                "content_block_start",
                &json!({"index": index, "content_block": block}),
                out,
            )?;
        }
        self.on_data(
            "message_delta",
            &json!({"delta": {"stop_reason": body["stop_reason"]}, "usage": {"output_tokens": body["usage"]["output_tokens"]}}),
            out,
        )?;
        self.on_data("message_stop", &json!({}), out)
    }

    fn finish(self: Box<Self>, completed: bool) -> Result<ModelResponse, ModelError> {
        if !completed {
            return Err(ModelError::Stream(
                "the connection closed before message_stop".to_string(),
            ));
        }
        let this = *self;
        let mut blocks = this.blocks;
        blocks.sort_by_key(|(index, _)| *index);
        let mut output = Vec::new();
        let mut texts = Vec::new();
        let mut tool_calls = Vec::new();
        for (_, block) in blocks {
            match block {
                Block::Text(text) if text.is_empty() => {}
                Block::Text(text) => {
                    texts.push(text.clone());
                    output.push(Item::Assistant { text });
                }
                Block::Thinking {
                    thinking,
                    signature,
                } => output.push(Item::Reasoning {
                    wire: WIRE.to_string(),
                    item: json!({"type": "thinking", "thinking": thinking, "signature": signature}),
                }),
                Block::Redacted(item) => output.push(Item::Reasoning {
                    wire: WIRE.to_string(),
                    item,
                }),
                Block::ToolUse {
                    id,
                    name,
                    json,
                    initial,
                } => {
                    let call = ToolCall {
                        call_id: CallId(id),
                        name,
                        // A call with no input deltas has its whole input in the start block.
                        arguments: if json.is_empty() {
                            initial.to_string()
                        } else {
                            json
                        },
                    };
                    tool_calls.push(call.clone());
                    output.push(Item::ToolCall(call));
                }
                Block::Other => {}
            }
        }
        let ending = match this.ending {
            Ending::Refused { text } if text.is_empty() => Ending::Refused {
                text: texts.join(""),
            },
            ending => ending,
        };
        Ok(ModelResponse {
            text: texts.join(""),
            tool_calls,
            usage: this.saw_usage.then_some(this.usage),
            output,
            ending,
        })
    }
}
