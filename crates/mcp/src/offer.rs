//! What a server offers, made fit for a model: tool names namespaced as `server__tool` (within
//! the 64 characters of `[A-Za-z0-9_-]` that every provider accepts), input schemas passed through
//! with the few changes providers insist on, and results rendered as the text a tool result is.

use serde_json::{Map, Value};

/// The longest tool name OpenAI's and Anthropic's APIs accept.
pub const MAX_NAME: usize = 64;

/// The name the model calls a server's tool by: `server__tool`, other characters replaced by
/// `_`, cut to [`MAX_NAME`] with a short hash of the original kept so two long names stay apart.
pub fn tool_name(server: &str, tool: &str) -> String {
    let clean: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let full = format!("{server}__{clean}");
    if full.len() <= MAX_NAME && clean == tool {
        return full;
    }
    // Of the server's own name: stable across runs, so a resumed session calls the same.
    let hash = fnv1a(tool.as_bytes());
    let suffix = format!("_{:06x}", hash & 0xff_ffff);
    let keep = MAX_NAME.saturating_sub(suffix.len());
    let mut cut: String = full.chars().take(keep).collect();
    cut.push_str(&suffix);
    cut
}

/// FNV-1a, 64 bits: a stable fingerprint (names, cache keys), not a defence.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A server's input schema as providers take it: an object schema at the top (`type` and
/// `properties` present; OpenAI rejects one without them), without `$schema` (Gemini-style
/// validators and some OpenAI-compatible servers reject the key), and without `anyOf` / `oneOf`
/// / `allOf` at the top (Anthropic's and OpenAI's function schemas refuse them there): their
/// branches' properties are merged in — all of `allOf`'s required ones stay required, the
/// alternatives' become optional, and the schema's description says which sets go together.
/// Everything below the top passes through.
pub fn input_schema(schema: &Map<String, Value>) -> Value {
    let mut schema = schema.clone();
    schema.remove("$schema");
    for (key, all) in [("allOf", true), ("anyOf", false), ("oneOf", false)] {
        let Some(Value::Array(branches)) = schema.remove(key) else {
            continue;
        };
        let mut properties = match schema.remove("properties") {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let mut required: Vec<Value> = match schema.remove("required") {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        };
        let mut alternatives = Vec::new();
        for branch in &branches {
            if let Some(props) = branch.get("properties").and_then(Value::as_object) {
                for (name, spec) in props {
                    properties
                        .entry(name.clone())
                        .or_insert_with(|| spec.clone());
                }
                alternatives.push(props.keys().cloned().collect::<Vec<_>>().join(", "));
            }
            if all && let Some(Value::Array(list)) = branch.get("required") {
                for name in list {
                    if !required.contains(name) {
                        required.push(name.clone());
                    }
                }
            }
        }
        if !all && !alternatives.is_empty() {
            let note = format!(
                "Give one of these sets of properties: ({}).",
                alternatives.join(") or (")
            );
            let description = match schema.get("description").and_then(Value::as_str) {
                Some(d) => format!("{d} {note}"),
                None => note,
            };
            schema.insert("description".into(), Value::String(description));
        }
        schema.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            schema.insert("required".into(), Value::Array(required));
        }
    }
    let is_object = schema.get("type").and_then(Value::as_str) == Some("object");
    if !is_object {
        schema.insert("type".into(), Value::String("object".into()));
    }
    if !schema.get("properties").is_some_and(Value::is_object) {
        schema.insert("properties".into(), Value::Object(Map::new()));
    }
    Value::Object(schema)
}

/// Images a result may carry to the model, and how large each may be (base64 characters): more
/// are named in the text but not sent.
pub const MAX_IMAGES: usize = 4;
pub const MAX_IMAGE_CHARS: usize = 5 * 1024 * 1024;
/// The image types the providers that take images in tool results (Responses, Anthropic) accept.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// A tool result as the model gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub ok: bool,
    pub text: String,
    /// (MIME type, base64 data) of each image to send with it.
    pub images: Vec<(String, String)>,
}

/// A tool result as the model reads it. Text blocks as they are; structured content as JSON
/// when the blocks do not already carry it; images named in the text with their type and size and
/// attached (up to [`MAX_IMAGES`] of the types providers take, each within [`MAX_IMAGE_CHARS`]);
/// audio named; embedded resources by their text, links by URI.
pub fn render_result(result: &Value) -> Rendered {
    let failed = result.get("isError").and_then(Value::as_bool) == Some(true);
    let mut parts: Vec<String> = Vec::new();
    let mut images = Vec::new();
    let blocks = result
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for block in &blocks {
        if block.get("type").and_then(Value::as_str) == Some("image") {
            parts.push(attach_image(block, &mut images));
        } else {
            parts.push(render_block(block));
        }
    }
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
        let text = structured.to_string();
        // Servers that return both usually repeat it in a text block: as JSON, or (the Python
        // SDK's wrapping of a plain return value) as the text of `{"result": TEXT}`.
        let wrapped = structured.get("result").and_then(Value::as_str);
        let repeated = blocks.iter().any(|b| {
            let Some(text) = b.get("text").and_then(Value::as_str) else {
                return false;
            };
            wrapped == Some(text)
                || serde_json::from_str::<Value>(text).is_ok_and(|v| &v == structured)
        });
        if !repeated {
            parts.push(text);
        }
    }
    let text = parts.join("\n");
    let text = if text.is_empty() {
        "(the tool returned nothing)".to_string()
    } else {
        text
    };
    Rendered {
        ok: !failed,
        text,
        images,
    }
}

/// Names an image block and attaches it when it may go to the model.
fn attach_image(block: &Value, images: &mut Vec<(String, String)>) -> String {
    let data = block
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mime = block
        .get("mimeType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // base64: four characters carry three bytes.
    let bytes = data.len() / 4 * 3;
    let why_not = if !IMAGE_TYPES.contains(&mime) {
        Some("a type the providers do not take")
    } else if data.len() > MAX_IMAGE_CHARS {
        Some("too large to send")
    } else if images.len() == MAX_IMAGES {
        Some("more images than a result may carry")
    } else {
        None
    };
    match why_not {
        Some(why) => format!("[image {mime} of about {bytes} bytes, not sent: {why}]"),
        None => {
            images.push((mime.to_string(), data.to_string()));
            format!("[image {mime} of about {bytes} bytes, attached]")
        }
    }
}

fn render_block(block: &Value) -> String {
    let field = |name: &str| block.get(name).and_then(Value::as_str).unwrap_or_default();
    match field("type") {
        "text" => field("text").to_string(),
        "audio" => {
            let bytes = field("data").len() / 4 * 3;
            format!(
                "[audio {} of about {bytes} bytes, not sent: models here take no audio from tools]",
                field("mimeType")
            )
        }
        "resource" => {
            let resource = block.get("resource").cloned().unwrap_or_default();
            let uri = resource.get("uri").and_then(Value::as_str).unwrap_or("?");
            match resource.get("text").and_then(Value::as_str) {
                Some(text) => format!("[resource {uri}]\n{text}"),
                None => format!("[resource {uri}: binary content, not shown]"),
            }
        }
        "resource_link" => format!("[resource link {} ({})]", field("uri"), field("name")),
        other => format!("[a `{other}` block cox does not show]"),
    }
}

/// A rough token count of the tool specs a server adds (four bytes per token, as cox estimates
/// elsewhere), for the deferral budget.
pub fn estimated_tokens(name: &str, description: &str, schema: &Value) -> usize {
    (name.len() + description.len() + schema.to_string().len()).div_ceil(4)
}

/// The tools whose name or description holds every word of `query` (case-insensitive), best
/// first: name matches before description matches. `items` are `(name, description)`.
pub fn search<'a>(items: &[(&'a str, &'a str)], query: &str, limit: usize) -> Vec<&'a str> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut scored: Vec<(usize, &str)> = items
        .iter()
        .filter_map(|(name, description)| {
            let (name_l, description_l) = (name.to_lowercase(), description.to_lowercase());
            let mut score = 0;
            for word in &words {
                if name_l.contains(word.as_str()) {
                    score += 2;
                } else if description_l.contains(word.as_str()) {
                    score += 1;
                } else {
                    return None;
                }
            }
            Some((score, *name))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(limit).map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_namespaced_and_fit_every_provider() {
        assert_eq!(tool_name("fs", "read_file"), "fs__read_file");
        let odd = tool_name("fs", "read.file/v2");
        assert!(odd.starts_with("fs__read_file_v2_"), "{odd}");
        let long = tool_name("server", &"x".repeat(100));
        assert_eq!(long.len(), MAX_NAME);
        assert_ne!(long, tool_name("server", &"x".repeat(101)));
        assert!(
            long.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }

    #[test]
    fn schemas_are_objects_without_the_schema_key() {
        let schema = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"path": {"type": "string"}}, "required": ["path"]});
        let adapted = input_schema(schema.as_object().unwrap());
        assert_eq!(
            adapted,
            json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
        );
        assert_eq!(
            input_schema(&Map::new()),
            json!({"type": "object", "properties": {}})
        );
    }

    #[test]
    fn top_level_alternatives_are_merged_into_one_object() {
        let schema = json!({"oneOf": [
            {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
            {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
        ]});
        let adapted = input_schema(schema.as_object().unwrap());
        assert_eq!(
            adapted,
            json!({"description": "Give one of these sets of properties: (path) or (url).",
                "properties": {"path": {"type": "string"}, "url": {"type": "string"}},
                "type": "object"})
        );
        let both = json!({"allOf": [
            {"properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer"}}, "required": ["b"]}
        ]});
        let adapted = input_schema(both.as_object().unwrap());
        assert_eq!(adapted["required"], json!(["a", "b"]));
        assert_eq!(adapted["properties"]["b"]["type"], "integer");
        assert!(adapted.get("allOf").is_none());
    }

    #[test]
    fn results_become_text() {
        let result = json!({"content": [
            {"type": "text", "text": "hello"},
            {"type": "image", "mimeType": "image/png", "data": "AAAA"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "body"}},
            {"type": "resource_link", "uri": "file:///b", "name": "b"}
        ], "structuredContent": {"n": 1}});
        let rendered = render_result(&result);
        assert!(rendered.ok);
        assert_eq!(
            rendered.text,
            "hello\n[image image/png of about 3 bytes, attached]\n[resource file:///a]\nbody\n\
             [resource link file:///b (b)]\n{\"n\":1}"
        );
        assert_eq!(
            rendered.images,
            [("image/png".to_string(), "AAAA".to_string())]
        );
        let failed =
            json!({"content": [{"type": "text", "text": "no such file"}], "isError": true});
        let failed = render_result(&failed);
        assert_eq!((failed.ok, failed.text.as_str()), (false, "no such file"));
        let repeated = json!({"content": [{"type": "text", "text": "{\"n\": 1}"}], "structuredContent": {"n": 1}});
        assert_eq!(render_result(&repeated).text, "{\"n\": 1}");
        let wrapped = json!({"content": [{"type": "text", "text": "ok"}], "structuredContent": {"result": "ok"}});
        assert_eq!(render_result(&wrapped).text, "ok");
        let odd = json!({"content": [{"type": "image", "mimeType": "image/tiff", "data": "AAAA"}]});
        let odd = render_result(&odd);
        assert!(odd.images.is_empty());
        assert!(
            odd.text
                .contains("not sent: a type the providers do not take"),
            "{}",
            odd.text
        );
        let many: Vec<Value> = (0..6)
            .map(|_| json!({"type": "image", "mimeType": "image/png", "data": "AAAA"}))
            .collect();
        let many = render_result(&json!({ "content": many }));
        assert_eq!(many.images.len(), MAX_IMAGES);
        assert!(many.text.contains("more images than a result may carry"));
    }

    #[test]
    fn search_needs_every_word_and_ranks_names_first() {
        let items = [
            ("git__git_log", "Shows the commit logs"),
            ("fs__read_file", "Read a file; shows its log of changes"),
            ("fs__write_file", "Write a file"),
        ];
        assert_eq!(
            search(&items, "log", 5),
            vec!["git__git_log", "fs__read_file"]
        );
        assert_eq!(search(&items, "write FILE", 5), vec!["fs__write_file"]);
        assert!(search(&items, "nothing here", 5).is_empty());
    }
}
