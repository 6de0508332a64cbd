//! Renders a scripted turn as the SSE frames of each wire format. The frames are split into the body
//! and the completion (the frames that tell a client the response is complete), so faults can send
//! everything but the completion.

use serde_json::{Value, json};

use crate::script::{ScriptedCall, Turn};

/// The wire formats the mock speaks, chosen by request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Responses,
    Chat,
    Anthropic,
}

impl Wire {
    pub fn from_path(path: &str) -> Option<Wire> {
        if path.ends_with("/responses") {
            Some(Wire::Responses)
        } else if path.ends_with("/chat/completions") {
            Some(Wire::Chat)
        } else if path.ends_with("/messages") {
            Some(Wire::Anthropic)
        } else {
            None
        }
    }
}

/// One turn's frames.
#[derive(Debug, Default)]
pub struct Frames {
    pub body: Vec<String>,
    pub completion: Vec<String>,
}

fn frame(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(name) => format!("event: {name}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// Splits `text` into `n` pieces on character boundaries (fewer when the text is shorter).
pub fn split(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    let size = chars.len().div_ceil(n).max(1);
    let pieces: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
    if pieces.is_empty() {
        vec![String::new()]
    } else {
        pieces
    }
}

fn call_id(call: &ScriptedCall, turn_no: usize, i: usize) -> String {
    call.call_id
        .clone()
        .unwrap_or_else(|| format!("call_{turn_no}_{i}"))
}

pub fn render(wire: Wire, turn: &Turn, turn_no: usize) -> Frames {
    match wire {
        Wire::Responses => responses(turn, turn_no),
        Wire::Chat => chat(turn, turn_no),
        Wire::Anthropic => anthropic(turn, turn_no),
    }
}

fn responses(turn: &Turn, turn_no: usize) -> Frames {
    let mut body = Vec::new();
    let id = format!("resp_{turn_no}");
    let ev = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        frame(Some(name), &data)
    };
    body.push(ev(
        "response.created",
        json!({"response": {"id": id, "status": "in_progress"}}),
    ));
    let mut output = Vec::new();
    let mut index = 0;
    if !turn.reasoning.is_empty() {
        // As a reasoning model streams it: the item, its summary, then the item again with the
        // encrypted content a stateless client must send back.
        let item_id = format!("rs_{turn_no}");
        body.push(ev(
            "response.output_item.added",
            json!({"output_index": index, "item": {"type": "reasoning", "id": item_id, "summary": []}}),
        ));
        for piece in &turn.reasoning {
            body.push(ev(
                "response.reasoning_summary_text.delta",
                json!({"item_id": item_id, "output_index": index, "summary_index": 0, "delta": piece}),
            ));
        }
        let item = json!({"type": "reasoning", "id": item_id,
            "summary": [{"type": "summary_text", "text": turn.reasoning.concat()}],
            "encrypted_content": format!("gAAAA-mock-encrypted-{turn_no}")});
        body.push(ev(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
        output.push(item);
        index += 1;
    }
    if !turn.text.is_empty() {
        let item_id = format!("msg_{turn_no}");
        body.push(ev(
            "response.output_item.added",
            json!({"output_index": index, "item": {"type": "message", "id": item_id, "role": "assistant", "content": []}}),
        ));
        for piece in &turn.text {
            body.push(ev(
                "response.output_text.delta",
                json!({"item_id": item_id, "output_index": index, "content_index": 0, "delta": piece}),
            ));
        }
        let item = json!({"type": "message", "id": item_id, "role": "assistant",
            "content": [{"type": "output_text", "text": turn.text.concat(), "annotations": []}]});
        body.push(ev(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
        output.push(item);
        index += 1;
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        let item_id = format!("fc_{turn_no}_{i}");
        let call_id = call_id(call, turn_no, i);
        body.push(ev(
            "response.output_item.added",
            json!({"output_index": index, "item": {"type": "function_call", "id": item_id,
                "call_id": call_id, "name": call.name, "arguments": "", "status": "in_progress"}}),
        ));
        for piece in split(&call.arguments, call.chunks) {
            body.push(ev(
                "response.function_call_arguments.delta",
                json!({"item_id": item_id, "output_index": index, "delta": piece}),
            ));
        }
        body.push(ev(
            "response.function_call_arguments.done",
            json!({"item_id": item_id, "output_index": index, "arguments": call.arguments}),
        ));
        let item = json!({"type": "function_call", "id": item_id, "call_id": call_id,
            "name": call.name, "arguments": call.arguments, "status": "completed"});
        body.push(ev(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
        output.push(item);
        index += 1;
    }
    let usage = turn.usage;
    let completion = vec![ev(
        "response.completed",
        json!({"response": {"id": id, "status": "completed", "output": output, "usage": {
            "input_tokens": usage.input_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.input_tokens + usage.output_tokens,
        }}}),
    )];
    Frames { body, completion }
}

fn chat(turn: &Turn, turn_no: usize) -> Frames {
    let id = format!("chatcmpl-{turn_no}");
    let chunk = |delta: Value, finish: Value| {
        frame(
            None,
            &json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": "mock",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
    };
    let mut body = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for piece in &turn.reasoning {
        body.push(chunk(json!({"reasoning_content": piece}), Value::Null));
    }
    for piece in &turn.text {
        body.push(chunk(json!({"content": piece}), Value::Null));
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        body.push(chunk(
            json!({"tool_calls": [{"index": i, "id": call_id(call, turn_no, i), "type": "function",
                "function": {"name": call.name, "arguments": ""}}]}),
            Value::Null,
        ));
        for piece in split(&call.arguments, call.chunks) {
            body.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    let finish = if turn.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let usage = turn.usage;
    let completion = vec![
        chunk(json!({}), json!(finish)),
        frame(
            None,
            &json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": "mock",
            "choices": [], "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
            }}),
        ),
        "data: [DONE]\n\n".to_string(),
    ];
    Frames { body, completion }
}

fn anthropic(turn: &Turn, turn_no: usize) -> Frames {
    let ev = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        frame(Some(name), &data)
    };
    let usage = turn.usage;
    let mut body = vec![ev(
        "message_start",
        json!({"message": {"id": format!("msg_{turn_no}"), "type": "message", "role": "assistant",
        "model": "mock", "content": [], "stop_reason": null, "usage": {
            "input_tokens": usage.input_tokens.saturating_sub(usage.cached_input_tokens),
            "cache_read_input_tokens": usage.cached_input_tokens,
            "cache_creation_input_tokens": 0,
            "output_tokens": 1,
        }}}),
    )];
    let mut index = 0;
    if !turn.reasoning.is_empty() {
        body.push(ev(
            "content_block_start",
            json!({"index": index, "content_block": {"type": "thinking", "thinking": ""}}),
        ));
        for piece in &turn.reasoning {
            body.push(ev(
                "content_block_delta",
                json!({"index": index, "delta": {"type": "thinking_delta", "thinking": piece}}),
            ));
        }
        body.push(ev(
            "content_block_delta",
            json!({"index": index, "delta": {"type": "signature_delta", "signature": format!("mock-signature-{turn_no}")}}),
        ));
        body.push(ev("content_block_stop", json!({"index": index})));
        index += 1;
    }
    if !turn.text.is_empty() {
        body.push(ev(
            "content_block_start",
            json!({"index": index, "content_block": {"type": "text", "text": ""}}),
        ));
        body.push(ev("ping", json!({})));
        for piece in &turn.text {
            body.push(ev(
                "content_block_delta",
                json!({"index": index, "delta": {"type": "text_delta", "text": piece}}),
            ));
        }
        body.push(ev("content_block_stop", json!({"index": index})));
        index += 1;
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        body.push(ev(
            "content_block_start",
            json!({"index": index, "content_block": {"type": "tool_use",
                "id": call_id(call, turn_no, i), "name": call.name, "input": {}}}),
        ));
        for piece in split(&call.arguments, call.chunks) {
            body.push(ev(
                "content_block_delta",
                json!({"index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        body.push(ev("content_block_stop", json!({"index": index})));
        index += 1;
    }
    let stop = if turn.tool_calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    let completion = vec![
        ev(
            "message_delta",
            json!({"delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": usage.output_tokens}}),
        ),
        ev("message_stop", json!({})),
    ];
    Frames { body, completion }
}

/// The error body each provider sends with a failed status.
pub fn error_body(wire: Wire, status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        401 => ("authentication_error", "invalid_api_key"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        400 => ("invalid_request_error", "invalid_request_error"),
        _ => ("api_error", "server_error"),
    };
    match wire {
        Wire::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}),
        Wire::Responses | Wire::Chat => {
            json!({"error": {"message": message, "type": kind, "code": code, "param": null}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_all_characters() {
        assert_eq!(split("abcdefg", 3), vec!["abc", "def", "g"]);
        assert_eq!(split("ab", 5), vec!["a", "b"]);
        assert_eq!(split("", 3), vec![""]);
        assert_eq!(split("é✓x", 2).concat(), "é✓x");
    }
}
