//! OpenAI Responses API (`POST {base}/responses`), stateless: the whole conversation is sent every
//! turn (`store: false`), with the session id as `prompt_cache_key` so the shared prefix is cached.
//!
//! Stream: `response.output_item.added` opens a message or `function_call` item,
//! `response.output_text.delta` / `response.function_call_arguments.delta` fill it,
//! `response.output_item.done` closes it, and `response.completed` (or `response.incomplete`) ends the
//! response with its usage; `response.failed` and `error` carry the provider's error.

use cox_protocol::{CallId, Item, ToolCall, Usage};
use serde_json::{Value, json};

use crate::error::classify_stream_error;
use crate::sse::SseEvent;
use crate::transport::Decoder;
use crate::{ModelError, ModelRequest, ModelResponse, StreamEvent};

pub fn body(request: &ModelRequest) -> Value {
    let input: Vec<Value> = request.items.iter().map(input_item).collect();
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            json!({
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
                "strict": false,
            })
        })
        .collect();
    // What stays the same through a session comes first and the growing history last, so that
    // each request's body starts with the previous one's, byte for byte.
    let mut body = json!({
        "model": request.model,
        "instructions": request.instructions,
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "store": false,
        "stream": true,
        "prompt_cache_key": request.session_id.0,
    });
    if let Some(max) = request.max_output_tokens {
        body["max_output_tokens"] = json!(max);
    }
    if let Some((name, schema)) = &request.output_schema {
        body["text"] = json!({"format": {"type": "json_schema", "name": name, "schema": schema, "strict": false}});
    }
    body["input"] = json!(input);
    body
}

fn input_item(item: &Item) -> Value {
    match item {
        Item::User { text } => json!({
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }),
        Item::Assistant { text } => json!({
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text}],
        }),
        Item::ToolCall(call) => json!({
            "type": "function_call",
            "call_id": call.call_id.0,
            "name": call.name,
            "arguments": call.arguments,
        }),
        Item::ToolResult {
            call_id, output, ..
        } => json!({
            "type": "function_call_output",
            "call_id": call_id.0,
            "output": output,
        }),
    }
}

#[derive(Debug, Default)]
struct PendingCall {
    item_id: String,
    call_id: String,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
pub(crate) struct ResponsesDecoder {
    text: String,
    calls: Vec<PendingCall>,
    usage: Option<Usage>,
}

impl ResponsesDecoder {
    fn call_mut(&mut self, item_id: &str) -> Option<&mut PendingCall> {
        self.calls.iter_mut().find(|call| call.item_id == item_id)
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Decoder for ResponsesDecoder {
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<bool, ModelError> {
        let data = event.json("event data")?;
        let kind = match str_field(&data, "type") {
            "" => event.event.as_str(),
            kind => kind,
        };
        match kind {
            "response.output_text.delta" => {
                let delta = str_field(&data, "delta");
                self.text.push_str(delta);
                out.push(StreamEvent::TextDelta(delta.to_string()));
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                out.push(StreamEvent::ReasoningDelta(
                    str_field(&data, "delta").to_string(),
                ));
            }
            "response.output_item.added" => {
                let item = &data["item"];
                if str_field(item, "type") == "function_call" {
                    self.calls.push(PendingCall {
                        item_id: str_field(item, "id").to_string(),
                        call_id: str_field(item, "call_id").to_string(),
                        name: str_field(item, "name").to_string(),
                        arguments: str_field(item, "arguments").to_string(),
                    });
                }
            }
            "response.function_call_arguments.delta" => {
                let item_id = str_field(&data, "item_id").to_string();
                if let Some(call) = self.call_mut(&item_id) {
                    call.arguments.push_str(str_field(&data, "delta"));
                }
            }
            "response.output_item.done" => {
                let item = &data["item"];
                if str_field(item, "type") == "function_call" {
                    let item_id = str_field(item, "id").to_string();
                    let done = PendingCall {
                        item_id: item_id.clone(),
                        call_id: str_field(item, "call_id").to_string(),
                        name: str_field(item, "name").to_string(),
                        arguments: str_field(item, "arguments").to_string(),
                    };
                    // The done item is authoritative: it carries the arguments in full.
                    match self.call_mut(&item_id) {
                        Some(call) => *call = done,
                        None => self.calls.push(done),
                    }
                }
            }
            "response.completed" | "response.incomplete" => {
                self.usage = data["response"].get("usage").map(|usage| Usage {
                    input_tokens: usage["input_tokens"].as_u64().unwrap_or(0),
                    cached_input_tokens: usage["input_tokens_details"]["cached_tokens"]
                        .as_u64()
                        .unwrap_or(0),
                    output_tokens: usage["output_tokens"].as_u64().unwrap_or(0),
                });
                return Ok(true);
            }
            "response.failed" => {
                let error = &data["response"]["error"];
                return Err(classify_stream_error(
                    str_field(error, "code"),
                    str_field(error, "message").to_string(),
                ));
            }
            "error" => {
                let error = data.get("error").unwrap_or(&data);
                let code = match str_field(error, "code") {
                    "" => str_field(error, "type"),
                    code => code,
                };
                return Err(classify_stream_error(
                    code,
                    str_field(error, "message").to_string(),
                ));
            }
            _ => {}
        }
        Ok(false)
    }

    fn finish(self: Box<Self>, completed: bool) -> Result<ModelResponse, ModelError> {
        if !completed {
            return Err(ModelError::Stream(
                "the connection closed before response.completed".to_string(),
            ));
        }
        let tool_calls = self
            .calls
            .into_iter()
            .map(|call| ToolCall {
                call_id: CallId(call.call_id),
                name: call.name,
                arguments: call.arguments,
            })
            .collect();
        Ok(ModelResponse {
            text: self.text,
            tool_calls,
            usage: self.usage,
        })
    }
}
