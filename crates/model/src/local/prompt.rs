//! The conversation as a chat for a model without native tool calling.
//!
//! Tools use the Hermes convention that ChatML models (Qwen 2.5, Hermes, SmolLM2 and most GGUF
//! instruct models) are trained on or at least recognise: the signatures go into the system message
//! inside `<tools>`, a call is a JSON object `{"name": …, "arguments": {…}}` between `<tool_call>` and
//! `</tool_call>` in the assistant's message, and results come back in a user message between
//! `<tool_response>` and `</tool_response>`. The GGUF's own chat template then renders the messages;
//! llama.cpp's built-in template engine has no tool roles, so the tool parts are written here.

use cox_protocol::{CallId, Item, ToolCall};
use serde_json::{Value, json};

use crate::ModelRequest;

/// What opens a tool call in the model's output: also the lazy grammar's trigger.
pub const CALL_OPEN: &str = "<tool_call>";
pub const CALL_CLOSE: &str = "</tool_call>";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

/// The chat messages for `request`, system message first.
pub fn messages(request: &ModelRequest) -> Vec<Message> {
    let mut system = request.instructions.clone();
    if !request.tools.is_empty() && request.output_schema.is_none() {
        system.push_str(&tools_section(request));
    }
    if let Some((_, schema)) = &request.output_schema {
        system.push_str("\n\n# Answer format\n\nAnswer with one JSON value and nothing else. It must match this JSON schema:\n");
        system.push_str(&schema.to_string());
    }
    let mut messages = vec![Message {
        role: "system",
        content: system,
    }];
    for item in &request.items {
        match item {
            Item::User { text } => push(&mut messages, "user", text.clone()),
            Item::Assistant { text } | Item::Commentary { text } => {
                push(&mut messages, "assistant", text.clone())
            }
            // A hosted provider's reasoning means nothing to a local model.
            Item::Reasoning { .. } => {}
            Item::ToolCall(call) => {
                let arguments = serde_json::from_str::<Value>(&call.arguments)
                    .unwrap_or_else(|_| Value::String(call.arguments.clone()));
                let body = json!({"name": call.name, "arguments": arguments});
                push(
                    &mut messages,
                    "assistant",
                    format!("{CALL_OPEN}\n{body}\n{CALL_CLOSE}"),
                );
            }
            // A local model takes text only: images are left out, and it is told so.
            Item::ToolResult { output, images, .. } => push(
                &mut messages,
                "user",
                match images.len() {
                    0 => format!("<tool_response>\n{output}\n</tool_response>"),
                    n => format!(
                        "<tool_response>\n{output}\n[{n} image(s) not sent: this model takes text only]\n</tool_response>"
                    ),
                },
            ),
        }
    }
    messages
}

/// Appends to the last message when it has the same role (a call after the text that preceded it,
/// several results of one turn), so roles alternate as chat templates expect.
fn push(messages: &mut Vec<Message>, role: &'static str, content: String) {
    match messages.last_mut() {
        Some(last) if last.role == role && role != "system" => {
            last.content.push('\n');
            last.content.push_str(&content);
        }
        _ => messages.push(Message { role, content }),
    }
}

fn tools_section(request: &ModelRequest) -> String {
    let mut text = String::from(
        "\n\n# Tools\n\nYou may call one of the tools below to act on the user's files. Their signatures, \
         as JSON schemas, are inside <tools></tools>:\n<tools>\n",
    );
    for tool in &request.tools {
        let signature = json!({
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        });
        text.push_str(&signature.to_string());
        text.push('\n');
    }
    text.push_str(
        "</tools>\n\nTo call a tool, answer with a JSON object holding its name and arguments inside \
         <tool_call></tool_call>, like this:\n<tool_call>\n{\"name\": \"list_dir\", \"arguments\": {\"path\": \".\"}}\n</tool_call>\n\
         One call per answer. Its result comes back inside <tool_response></tool_response>. \
         When you need no tool, answer in plain text.",
    );
    text
}

/// Reads a finished tool call (`<tool_call>` … `</tool_call>`). The grammar guarantees the shape, so
/// a failure here is a bug in the grammar and is reported, never repaired.
pub fn parse_call(text: &str) -> Result<ToolCall, String> {
    let body = text
        .trim()
        .strip_prefix(CALL_OPEN)
        .and_then(|rest| rest.trim_end().strip_suffix(CALL_CLOSE))
        .ok_or_else(|| format!("tool call is not enclosed in {CALL_OPEN}…{CALL_CLOSE}: {text}"))?;
    let value: Value = serde_json::from_str(body.trim())
        .map_err(|e| format!("tool call is not JSON ({e}): {body}"))?;
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("tool call has no name: {body}"))?;
    let arguments = value
        .get("arguments")
        .filter(|a| a.is_object())
        .ok_or_else(|| format!("tool call has no arguments object: {body}"))?;
    Ok(ToolCall {
        call_id: CallId(format!("call_{:016x}", fastrand::u64(..))),
        name: name.to_string(),
        arguments: arguments.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use cox_protocol::{SessionId, ToolSpec};

    use super::*;

    fn request(items: Vec<Item>) -> ModelRequest {
        ModelRequest {
            model: "m".into(),
            instructions: "Be brief.".into(),
            items,
            tools: vec![ToolSpec {
                name: "read_file".into(),
                description: "Reads a file.".into(),
                parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
            }],
            session_id: SessionId("s".into()),
            max_output_tokens: None,
            output_schema: None,
            reasoning: Default::default(),
            service_tier: None,
            verbosity: None,
        }
    }

    #[test]
    fn renders_calls_and_results_in_hermes_form() {
        let call = ToolCall {
            call_id: CallId("c1".into()),
            name: "read_file".into(),
            arguments: r#"{"path":"a.txt"}"#.into(),
        };
        let messages = messages(&request(vec![
            Item::User {
                text: "Read a.txt".into(),
            },
            Item::Assistant {
                text: "Reading.".into(),
            },
            Item::ToolCall(call),
            Item::ToolResult {
                call_id: CallId("c1".into()),
                ok: true,
                output: "hello".into(),
                images: Vec::new(),
            },
        ]));
        let roles: Vec<&str> = messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert!(messages[0].content.starts_with("Be brief.\n\n# Tools"));
        assert!(messages[0].content.contains(r#""name":"read_file""#));
        assert_eq!(
            messages[2].content,
            "Reading.\n<tool_call>\n{\"name\":\"read_file\",\"arguments\":{\"path\":\"a.txt\"}}\n</tool_call>"
        );
        assert_eq!(
            messages[3].content,
            "<tool_response>\nhello\n</tool_response>"
        );
    }

    #[test]
    fn structured_output_replaces_the_tool_section() {
        let mut req = request(vec![Item::User {
            text: "plan".into(),
        }]);
        req.output_schema = Some(("plan".into(), json!({"type": "object"})));
        let system = &messages(&req)[0].content;
        assert!(!system.contains("<tools>"));
        assert!(system.ends_with(
            r#"JSON schema:
{"type":"object"}"#
        ));
    }

    #[test]
    fn parses_a_call_and_rejects_what_is_not_one() {
        let call = parse_call(
            "<tool_call>\n{\"name\": \"list_dir\", \"arguments\": {\"path\": \".\"}}\n</tool_call>",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(call.name, "list_dir");
        assert_eq!(call.arguments, r#"{"path":"."}"#);
        assert!(call.call_id.0.starts_with("call_"));
        for bad in [
            "{\"name\": \"x\", \"arguments\": {}}",
            "<tool_call>{\"name\": \"x\"}</tool_call>",
            "<tool_call>{\"arguments\": {}}</tool_call>",
            "<tool_call>{\"name\": \"x\", \"arguments\": {}</tool_call>",
        ] {
            assert!(parse_call(bad).is_err(), "{bad}");
        }
    }
}
