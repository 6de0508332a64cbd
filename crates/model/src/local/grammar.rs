//! The constraint that makes a small model's tool calls valid by construction.
//!
//! One JSON schema describes every acceptable call: `anyOf` over the offered tools, each an object
//! `{"name": <const tool name>, "arguments": <the tool's parameter schema>}`. llama.cpp turns it into
//! a GBNF grammar (`json_schema_to_grammar`), and [`tool_turn`] wraps that in the markers. Used as a
//! lazy grammar triggered by `<tool_call>`, prose before the marker is free and everything from the
//! marker on must be one complete call followed by the end of the turn.

use cox_protocol::ToolSpec;
use serde_json::{Value, json};

use super::prompt::{CALL_CLOSE, CALL_OPEN};

/// The grammar rule a tool turn starts from (distinct from the JSON converter's own rule names).
pub const TURN_RULE: &str = "cox-tool-turn";

/// The schema of one call to any of `tools` (or only to the tool named `only`).
pub fn call_schema(tools: &[ToolSpec], only: Option<&str>) -> Option<Value> {
    let mut calls: Vec<Value> = tools
        .iter()
        .filter(|tool| only.is_none_or(|name| tool.name == name))
        .map(|tool| {
            json!({
                "type": "object",
                "properties": {
                    "name": {"const": tool.name},
                    "arguments": tool.parameters,
                },
                "required": ["name", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    match calls.len() {
        0 => None,
        1 => calls.pop(),
        _ => Some(json!({"anyOf": calls})),
    }
}

/// The full grammar: the converter's rules (rooted at `root`) plus the marked turn around them.
pub fn tool_turn(json_grammar: &str) -> String {
    let open = gbnf_literal(CALL_OPEN);
    let close = gbnf_literal(CALL_CLOSE);
    format!("{json_grammar}\n{TURN_RULE} ::= {open} \"\\n\"? root \"\\n\"? {close}\n")
}

fn gbnf_literal(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        }
    }

    #[test]
    fn one_alternative_per_tool_with_the_name_fixed() {
        let tools = [spec("read_file"), spec("list_dir")];
        let schema = call_schema(&tools, None).unwrap();
        let names: Vec<&Value> = schema["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|alt| &alt["properties"]["name"]["const"])
            .collect();
        assert_eq!(names, [&json!("read_file"), &json!("list_dir")]);
        let only = call_schema(&tools, Some("list_dir")).unwrap();
        assert_eq!(only["properties"]["name"]["const"], "list_dir");
        assert!(call_schema(&tools, Some("nope")).is_none());
        assert!(call_schema(&[], None).is_none());
    }

    #[test]
    fn the_turn_rule_wraps_the_json_root_in_markers() {
        let grammar = tool_turn("root ::= \"{}\"");
        assert!(grammar.starts_with("root ::= \"{}\"\n"));
        assert!(grammar.ends_with(
            "cox-tool-turn ::= \"<tool_call>\" \"\\n\"? root \"\\n\"? \"</tool_call>\"\n"
        ));
    }
}
