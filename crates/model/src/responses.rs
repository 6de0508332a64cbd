//! OpenAI Responses API (`POST {base}/responses`), stateless: the whole conversation is sent every
//! turn (`store: false`), with the session id as `prompt_cache_key` so the shared prefix is cached.
//!
//! Stream: `response.output_item.added` opens a message or `function_call` item,
//! `response.output_text.delta` / `response.function_call_arguments.delta` fill it,
//! `response.output_item.done` closes it, and `response.completed` (or `response.incomplete`) ends the
//! response with its usage; `response.failed` and `error` carry the provider's error.
//!
//! Reasoning models: the request asks for `reasoning.encrypted_content`, and each response's
//! `reasoning` items come back as [`Item::Reasoning`] and are sent again, verbatim and in place, in
//! every later request — so the model keeps its chain of thought through a tool loop although
//! nothing is stored. Messages keep their `phase`: `commentary` becomes [`Item::Commentary`]
//! (progress, never the answer), and once a model used phases its answers go back marked
//! `final_answer`. A refusal part, `response.incomplete` and a non-streamed JSON body (the
//! response object) are read too.

use cox_protocol::{CallId, Item, ToolCall, Usage};
use serde_json::{Value, json};

use crate::error::classify_stream_error;
use crate::sse::SseEvent;
use crate::transport::Decoder;
use crate::{Ending, ModelError, ModelRequest, ModelResponse, StreamEvent};

pub fn body(request: &ModelRequest) -> Value {
    // A model that used phases gets its answers back marked as final answers.
    let phased = request
        .items
        .iter()
        .any(|item| matches!(item, Item::Commentary { .. }));
    let input: Vec<Value> = crate::in_wire_order(&request.items)
        .into_iter()
        .filter_map(|item| input_item(item, phased, request.reasoning.carry))
        .collect();
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
    let reasoning = &request.reasoning;
    if reasoning.effort.is_some() || reasoning.summary.is_some() {
        let mut settings = json!({});
        if let Some(effort) = &reasoning.effort {
            settings["effort"] = json!(effort);
        }
        if let Some(summary) = &reasoning.summary {
            settings["summary"] = json!(summary);
        }
        body["reasoning"] = settings;
    }
    if reasoning.carry {
        body["include"] = json!(["reasoning.encrypted_content"]);
    }
    if let Some(tier) = &request.service_tier {
        body["service_tier"] = json!(tier);
    }
    if let Some(max) = request.max_output_tokens {
        body["max_output_tokens"] = json!(max);
    }
    let mut text = json!({});
    if let Some((name, schema)) = &request.output_schema {
        text["format"] =
            json!({"type": "json_schema", "name": name, "schema": schema, "strict": false});
    }
    if let Some(verbosity) = &request.verbosity {
        text["verbosity"] = json!(verbosity);
    }
    if text.as_object().is_some_and(|t| !t.is_empty()) {
        body["text"] = text;
    }
    body["input"] = json!(input);
    body
}

fn assistant_message(text: &str, phase: Option<&str>) -> Value {
    let mut message = json!({
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    });
    if let Some(phase) = phase {
        message["phase"] = json!(phase);
    }
    message
}

/// One history item as a Responses input item; reasoning from another wire, or without the
/// encrypted content that `store: false` needs to resolve it, is left out.
fn input_item(item: &Item, phased: bool, carry: bool) -> Option<Value> {
    Some(match item {
        Item::User { text } => json!({
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }),
        Item::Assistant { text } => assistant_message(text, phased.then_some("final_answer")),
        Item::Commentary { text } => assistant_message(text, Some("commentary")),
        Item::ToolCall(call) => json!({
            "type": "function_call",
            "call_id": call.call_id.0,
            "name": call.name,
            "arguments": call.arguments,
        }),
        Item::ToolResult {
            call_id,
            output,
            images,
            ..
        } if !images.is_empty() => {
            // The output as content parts: the text, then each image as a data URL.
            let mut parts = vec![json!({"type": "input_text", "text": output})];
            parts.extend(images.iter().map(|image| {
                json!({
                    "type": "input_image",
                    "image_url": format!("data:{};base64,{}", image.mime_type, image.data),
                })
            }));
            json!({
                "type": "function_call_output",
                "call_id": call_id.0,
                "output": parts,
            })
        }
        Item::ToolResult {
            call_id, output, ..
        } => json!({
            "type": "function_call_output",
            "call_id": call_id.0,
            "output": output,
        }),
        Item::Reasoning { wire, item }
            if carry
                && wire == WIRE
                && item.get("encrypted_content").is_some_and(Value::is_string) =>
        {
            item.clone()
        }
        Item::Reasoning { .. } => return None,
    })
}

/// The `wire` of the reasoning items this format returns.
pub const WIRE: &str = "responses";

/// One output item of the response, in output order.
#[derive(Debug)]
enum Slot {
    Message {
        id: String,
        phase: Option<String>,
        text: String,
    },
    Call(PendingCall),
    Reasoning {
        id: String,
        item: Value,
    },
}

#[derive(Debug, Default)]
struct PendingCall {
    item_id: String,
    call_id: String,
    name: String,
    arguments: String,
}

impl PendingCall {
    fn from_item(item: &Value) -> Self {
        PendingCall {
            item_id: str_field(item, "id").to_string(),
            call_id: str_field(item, "call_id").to_string(),
            name: str_field(item, "name").to_string(),
            arguments: str_field(item, "arguments").to_string(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct ResponsesDecoder {
    slots: Vec<Slot>,
    refusal: String,
    usage: Option<Usage>,
    ending: Ending,
    /// The message whose text streamed last (`None` before any text).
    streaming: Option<String>,
}

impl ResponsesDecoder {
    fn call_mut(&mut self, item_id: &str) -> Option<&mut PendingCall> {
        self.slots.iter_mut().find_map(|slot| match slot {
            Slot::Call(call) if call.item_id == item_id => Some(call),
            _ => None,
        })
    }

    fn message_mut(&mut self, item_id: &str) -> Option<&mut String> {
        self.slots.iter_mut().find_map(|slot| match slot {
            Slot::Message { id, text, .. } if id == item_id => Some(text),
            _ => None,
        })
    }

    /// Streams text of message `item_id`; a message's first text after another's starts after a
    /// blank line, so two messages never run together.
    fn show(&mut self, item_id: &str, text: &str, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        if self.streaming.as_deref() != Some(item_id) {
            if self.streaming.is_some() {
                out.push(StreamEvent::TextDelta("\n\n".to_string()));
            }
            self.streaming = Some(item_id.to_string());
        }
        out.push(StreamEvent::TextDelta(text.to_string()));
    }

    fn added(&mut self, item: &Value) {
        let id = str_field(item, "id").to_string();
        match str_field(item, "type") {
            "function_call" => self.slots.push(Slot::Call(PendingCall::from_item(item))),
            "message" => self.slots.push(Slot::Message {
                id,
                phase: item
                    .get("phase")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                text: String::new(),
            }),
            "reasoning" => self.slots.push(Slot::Reasoning {
                id,
                item: item.clone(),
            }),
            _ => {}
        }
    }

    /// A finished output item is authoritative: a call's arguments in full, a reasoning item
    /// with its encrypted content, a message's whole text (for servers that stream none).
    fn done(&mut self, item: &Value, out: &mut Vec<StreamEvent>) {
        let item_id = str_field(item, "id").to_string();
        let known = self.slots.iter().any(|slot| match slot {
            Slot::Message { id, .. } | Slot::Reasoning { id, .. } => *id == item_id,
            Slot::Call(call) => call.item_id == item_id,
        });
        if !known || item_id.is_empty() {
            self.added(item);
        }
        match str_field(item, "type") {
            "function_call" => {
                let done = PendingCall::from_item(item);
                if let Some(call) = self.call_mut(&item_id) {
                    *call = done;
                } else if let Some(Slot::Call(call)) = self.slots.last_mut() {
                    *call = done;
                }
            }
            "reasoning" => {
                if let Some(Slot::Reasoning { item: kept, .. }) = self
                    .slots
                    .iter_mut()
                    .rev()
                    .find(|slot| matches!(slot, Slot::Reasoning { id, .. } if *id == item_id))
                {
                    *kept = item.clone();
                }
            }
            "message" => {
                let mut whole = String::new();
                for part in item["content"].as_array().into_iter().flatten() {
                    match str_field(part, "type") {
                        "output_text" => whole.push_str(str_field(part, "text")),
                        "refusal" if self.refusal.is_empty() => {
                            self.refusal = str_field(part, "refusal").to_string()
                        }
                        _ => {}
                    }
                }
                let slot = self.slots.iter_mut().rev().find_map(|slot| match slot {
                    Slot::Message { id, text, .. } if *id == item_id => Some(text),
                    _ => None,
                });
                if let Some(text) = slot
                    && text.is_empty()
                    && !whole.is_empty()
                {
                    // Nothing of it streamed: it shows now.
                    text.clone_from(&whole);
                    self.show(&item_id, &whole, out);
                }
            }
            _ => {}
        }
    }

    fn on_data(
        &mut self,
        data: &Value,
        sse_event: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<bool, ModelError> {
        let kind = match str_field(data, "type") {
            "" => sse_event,
            kind => kind,
        };
        match kind {
            "response.output_text.delta" => {
                let item_id = str_field(data, "item_id").to_string();
                let delta = str_field(data, "delta");
                self.show(&item_id, delta, out);
                match self.message_mut(&item_id) {
                    Some(text) => text.push_str(delta),
                    // A server that sends no `output_item.added`: one message, as it streams.
                    None => self.slots.push(Slot::Message {
                        id: item_id,
                        phase: None,
                        text: delta.to_string(),
                    }),
                }
            }
            "response.refusal.delta" => self.refusal.push_str(str_field(data, "delta")),
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                out.push(StreamEvent::ReasoningDelta(
                    str_field(data, "delta").to_string(),
                ));
            }
            // Summary parts are paragraphs of their own.
            "response.reasoning_summary_part.added"
                if data["summary_index"].as_u64().is_some_and(|i| i > 0) =>
            {
                out.push(StreamEvent::ReasoningDelta("\n\n".to_string()));
            }
            "response.output_item.added" => self.added(&data["item"]),
            "response.function_call_arguments.delta" => {
                let item_id = str_field(data, "item_id").to_string();
                if let Some(call) = self.call_mut(&item_id) {
                    call.arguments.push_str(str_field(data, "delta"));
                }
            }
            "response.output_item.done" => self.done(&data["item"], out),
            "response.completed" | "response.incomplete" => {
                let response = &data["response"];
                // A response delivered whole (no item events) is read from its output list.
                if self.slots.is_empty() {
                    for item in response["output"].as_array().into_iter().flatten() {
                        self.done(item, out);
                    }
                }
                self.usage = response
                    .get("usage")
                    .filter(|u| u.is_object())
                    .map(|usage| Usage {
                        input_tokens: usage["input_tokens"].as_u64().unwrap_or(0),
                        cached_input_tokens: usage["input_tokens_details"]["cached_tokens"]
                            .as_u64()
                            .unwrap_or(0),
                        output_tokens: usage["output_tokens"].as_u64().unwrap_or(0),
                    });
                if kind == "response.incomplete" {
                    let reason = match str_field(&response["incomplete_details"], "reason") {
                        "" => "incomplete",
                        reason => reason,
                    };
                    self.ending = if reason == "content_filter" {
                        Ending::Refused {
                            text: "the provider's content filter stopped the response".into(),
                        }
                    } else {
                        Ending::Truncated {
                            reason: reason.to_string(),
                        }
                    };
                }
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
                let error = data.get("error").unwrap_or(data);
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
        self.on_data(&data, event.event.as_str(), out)
    }

    fn whole(&mut self, body: Value, out: &mut Vec<StreamEvent>) -> Result<bool, ModelError> {
        // A non-streamed response is the object `response.completed` would carry.
        let kind = match str_field(&body, "status") {
            "incomplete" => "response.incomplete",
            "failed" => "response.failed",
            _ => "response.completed",
        };
        self.on_data(&json!({"type": kind, "response": body}), "", out)
    }

    fn finish(self: Box<Self>, completed: bool) -> Result<ModelResponse, ModelError> {
        if !completed {
            return Err(ModelError::Stream(
                "the connection closed before response.completed".to_string(),
            ));
        }
        let this = *self;
        let has_calls = this.slots.iter().any(|s| matches!(s, Slot::Call(_)));
        let has_answer = this
            .slots
            .iter()
            .any(|s| matches!(s, Slot::Message { phase, text, .. } if phase.as_deref() != Some("commentary") && !text.is_empty()));
        let mut output = Vec::new();
        let mut answers: Vec<String> = Vec::new();
        let mut tool_calls = Vec::new();
        for slot in this.slots {
            match slot {
                Slot::Reasoning { item, .. } => output.push(Item::Reasoning {
                    wire: WIRE.to_string(),
                    item,
                }),
                Slot::Message { text, .. } if text.is_empty() => {}
                // Commentary is progress; but a response that is nothing else answers with it.
                Slot::Message { phase, text, .. }
                    if phase.as_deref() == Some("commentary") && (has_calls || has_answer) =>
                {
                    output.push(Item::Commentary { text })
                }
                Slot::Message { text, .. } => {
                    answers.push(text.clone());
                    output.push(Item::Assistant { text });
                }
                Slot::Call(call) => {
                    let call = ToolCall {
                        call_id: CallId(call.call_id),
                        name: call.name,
                        arguments: call.arguments,
                    };
                    tool_calls.push(call.clone());
                    output.push(Item::ToolCall(call));
                }
            }
        }
        let ending = this.ending.or_refused(this.refusal);
        Ok(ModelResponse {
            text: answers.join("\n\n"),
            tool_calls,
            usage: this.usage,
            output,
            ending,
        })
    }
}
