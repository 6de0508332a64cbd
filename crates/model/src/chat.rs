//! Chat Completions (`POST {base}/chat/completions`), the wire format every OpenAI-compatible
//! server speaks: Ollama, vLLM, llama.cpp's server, LM Studio, OpenRouter.
//!
//! Stream: `chat.completion.chunk` objects whose `choices[0].delta` carries `content` or
//! `tool_calls` pieces keyed by `index` (the first piece of a call has its `id` and name), a
//! `finish_reason`, a last chunk with `usage` (asked for with `stream_options.include_usage`), then
//! `data: [DONE]`. A call without `index` (Gemini-style servers) is told apart by its `id`;
//! `delta.refusal` and `finish_reason` `length` / `content_filter` end the response as refused or
//! truncated; a non-streamed `chat.completion` body is read as one chunk.

use cox_protocol::{CallId, Item, ToolCall, Usage};
use serde_json::{Value, json};

use crate::sse::SseEvent;
use crate::transport::Decoder;
use crate::{Ending, ModelError, ModelRequest, ModelResponse, StreamEvent};

pub fn body(request: &ModelRequest) -> Value {
    let mut messages = vec![json!({"role": "system", "content": request.instructions})];
    for item in crate::in_wire_order(&request.items) {
        match item {
            Item::User { text } => messages.push(json!({"role": "user", "content": text})),
            Item::Assistant { text } | Item::Commentary { text } => {
                messages.push(json!({"role": "assistant", "content": text}));
            }
            // Chat has no field for another wire's reasoning.
            Item::Reasoning { .. } => {}
            Item::ToolCall(call) => {
                let entry = json!({
                    "id": call.call_id.0,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                });
                // Calls made in the same response belong to one assistant message, together with
                // the text that preceded them.
                match messages.last_mut() {
                    Some(last) if last["role"] == "assistant" => {
                        if let Some(calls) =
                            last.get_mut("tool_calls").and_then(Value::as_array_mut)
                        {
                            calls.push(entry);
                        } else {
                            last["tool_calls"] = json!([entry]);
                        }
                    }
                    _ => messages.push(json!({
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [entry],
                    })),
                }
            }
            // Chat Completions tool messages take text only: the images are left out, and the
            // model is told so (the output names each).
            Item::ToolResult {
                call_id,
                output,
                images,
                ..
            } => messages.push(json!({
                "role": "tool",
                "tool_call_id": call_id.0,
                "content": if images.is_empty() {
                    output.clone()
                } else {
                    format!("{output}\n[{} image(s) not sent: this provider's tool results take text only]", images.len())
                },
            })),
        }
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            json!({
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                },
            })
        })
        .collect();
    // Fixed parts first, the growing conversation last (see `responses::body`).
    let mut body = json!({
        "model": request.model,
        "tools": tools,
        "tool_choice": "auto",
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(max) = request.max_output_tokens {
        body["max_tokens"] = json!(max);
    }
    if let Some(effort) = &request.reasoning.effort {
        body["reasoning_effort"] = json!(effort);
    }
    if let Some((name, schema)) = &request.output_schema {
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": false}});
    }
    body["messages"] = json!(messages);
    body
}

#[derive(Debug, Default)]
struct PendingCall {
    index: u64,
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
pub(crate) struct ChatDecoder {
    text: String,
    refusal: String,
    calls: Vec<PendingCall>,
    usage: Option<Usage>,
    finished: bool,
    ending: Ending,
}

impl ChatDecoder {
    /// The call a piece belongs to. By `index` when the server sends one; otherwise (Gemini-style
    /// servers send each call whole, in its own chunk) a piece with a new `id` starts a new call
    /// and a piece without one continues the last.
    fn call_for(&mut self, piece: &Value) -> &mut PendingCall {
        let id = piece["id"].as_str().filter(|id| !id.is_empty());
        let found = match piece["index"].as_u64() {
            Some(index) => self.calls.iter().position(|c| c.index == index),
            None => match id {
                Some(id) => self.calls.iter().position(|c| c.id == id),
                None => self.calls.len().checked_sub(1),
            },
        };
        let at = match found {
            Some(at) => at,
            None => {
                let index = piece["index"]
                    .as_u64()
                    .unwrap_or_else(|| self.calls.iter().map(|c| c.index + 1).max().unwrap_or(0));
                self.calls.push(PendingCall {
                    index,
                    ..PendingCall::default()
                });
                self.calls.len() - 1
            }
        };
        &mut self.calls[at]
    }
}

impl Decoder for ChatDecoder {
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<bool, ModelError> {
        if event.data.trim() == "[DONE]" {
            return Ok(true);
        }
        let data = event.json("chunk")?;
        if let Some(error) = data.get("error") {
            let code = error["code"]
                .as_str()
                .or(error["type"].as_str())
                .unwrap_or_default();
            let message = error["message"].as_str().unwrap_or_default().to_string();
            return Err(crate::error::classify_stream_error(code, message));
        }
        if let Some(usage) = data.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(Usage {
                input_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
                cached_input_tokens: usage["prompt_tokens_details"]["cached_tokens"]
                    .as_u64()
                    .unwrap_or(0),
                output_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
            });
        }
        let Some(choice) = data["choices"].as_array().and_then(|c| c.first()) else {
            return Ok(false);
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text.push_str(text);
            out.push(StreamEvent::TextDelta(text.to_string()));
        }
        // vLLM and llama.cpp send reasoning models' thoughts as `reasoning_content`.
        if let Some(text) = delta["reasoning_content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            out.push(StreamEvent::ReasoningDelta(text.to_string()));
        }
        if let Some(text) = delta["refusal"].as_str() {
            self.refusal.push_str(text);
        }
        for piece in delta["tool_calls"].as_array().into_iter().flatten() {
            let call = self.call_for(piece);
            if let Some(id) = piece["id"].as_str().filter(|id| !id.is_empty()) {
                call.id = id.to_string();
            }
            if let Some(name) = piece["function"]["name"].as_str().filter(|n| !n.is_empty()) {
                call.name = name.to_string();
            }
            if let Some(arguments) = piece["function"]["arguments"].as_str() {
                call.arguments.push_str(arguments);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finished = true;
            self.ending = match reason {
                "length" => Ending::Truncated {
                    reason: "length".into(),
                },
                "content_filter" => Ending::Refused {
                    text: "the provider's content filter stopped the response".into(),
                },
                _ => Ending::Complete,
            };
        }
        Ok(false)
    }

    fn whole(&mut self, body: Value, out: &mut Vec<StreamEvent>) -> Result<bool, ModelError> {
        // A `chat.completion` object: its message is the one delta a stream of it would carry.
        let mut chunk = body;
        if let Some(choices) = chunk["choices"].as_array_mut() {
            for choice in choices {
                choice["delta"] = choice["message"].take();
            }
        }
        let event = SseEvent {
            event: String::new(),
            data: chunk.to_string(),
        };
        self.on_event(&event, out)?;
        Ok(true)
    }

    fn finish(self: Box<Self>, completed: bool) -> Result<ModelResponse, ModelError> {
        // Some servers close the stream after the finish reason without `[DONE]`; that response
        // is complete. A stream that ends before any finish reason is not.
        if !completed && !self.finished {
            return Err(ModelError::Stream(
                "the connection closed before the response finished".to_string(),
            ));
        }
        let this = *self;
        let mut calls = this.calls;
        calls.sort_by_key(|call| call.index);
        let tool_calls = calls
            .into_iter()
            .enumerate()
            .map(|(n, call)| ToolCall {
                // Some local servers omit call ids; the engine needs one to pair the result.
                call_id: CallId(if call.id.is_empty() {
                    format!("call_{n}")
                } else {
                    call.id
                }),
                name: call.name,
                arguments: call.arguments,
            })
            .collect();
        let ending = this.ending.or_refused(this.refusal);
        Ok(ModelResponse {
            text: this.text,
            tool_calls,
            usage: this.usage,
            output: Vec::new(),
            ending,
        })
    }
}
