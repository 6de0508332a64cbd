//! A server's elicitation turned into the person's question, and the answer into its fields.

use cox_mcp::Elicitation;
use cox_tools::Question;
use serde_json::Value;
use tokio::sync::mpsc;

/// A field a server asks for: name, JSON type, whether it is required.
type Field = (String, String, bool);

/// Turns a server's elicitation into the session's question to the person, and the answer into
/// the fields the server asked for: a JSON object gives any of them; plain text fills the one
/// field (or the one required field) there is; an empty answer declines.
pub(super) async fn forward_questions(
    mut questions: mpsc::Receiver<Elicitation>,
    asker: mpsc::Sender<Question>,
) {
    while let Some(elicitation) = questions.recv().await {
        let required: Vec<&str> = elicitation
            .schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let fields: Vec<Field> = elicitation
            .schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| {
                p.iter()
                    .map(|(name, spec)| {
                        let kind = spec.get("type").and_then(Value::as_str).unwrap_or("string");
                        (
                            name.clone(),
                            kind.to_string(),
                            required.contains(&name.as_str()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let how = match (fields.as_slice(), plain_field(&fields)) {
            ([], _) => "Answer anything to accept, or nothing to decline.".to_string(),
            (_, Some((name, kind, _))) if fields.len() == 1 => {
                format!("Answer with the {name} ({kind}), or nothing to decline.")
            }
            (many, plain) => format!(
                "{}Answer with a JSON object of {}, or nothing to decline.",
                plain.map_or_else(String::new, |(name, kind, _)| format!(
                    "Answer with the {name} ({kind}) alone, or: "
                )),
                many.iter()
                    .map(|(n, k, r)| format!("`{n}` ({k}{})", if *r { ", required" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let question = Question {
            text: format!(
                "MCP server `{}` asks: {}\n{how}",
                elicitation.server, elicitation.message
            ),
            reply,
        };
        if asker.send(question).await.is_err() {
            let _ = elicitation.reply.send(None);
            continue;
        }
        let content = answer
            .await
            .ok()
            .and_then(|text| fields_from(&text, &fields));
        let _ = elicitation.reply.send(content);
    }
}

/// The field plain text fills: the only one, or the only required one.
fn plain_field(fields: &[Field]) -> Option<&Field> {
    match fields {
        [one] => Some(one),
        _ => {
            let mut required = fields.iter().filter(|f| f.2);
            match (required.next(), required.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        }
    }
}

fn fields_from(text: &str, fields: &[Field]) -> Option<serde_json::Map<String, Value>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if fields.is_empty() {
        return Some(serde_json::Map::new());
    }
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
        return Some(map);
    }
    let (name, kind, _) = plain_field(fields)?;
    let value = match kind.as_str() {
        "number" | "integer" => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_number)?,
        "boolean" => Value::Bool(matches!(
            text.to_lowercase().as_str(),
            "y" | "yes" | "true" | "1"
        )),
        _ => Value::String(text.to_string()),
    };
    Some(serde_json::Map::from_iter([(name.clone(), value)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_the_fields_asked_for() {
        let field = |n: &str, k: &str, r: bool| (n.to_string(), k.to_string(), r);
        let one = [field("name", "string", false)];
        assert_eq!(
            fields_from("Ada", &one),
            Some(serde_json::Map::from_iter([(
                "name".to_string(),
                Value::String("Ada".into())
            )]))
        );
        assert_eq!(fields_from("  ", &one), None);
        let number = [field("n", "integer", false)];
        assert_eq!(fields_from("seven", &number), None);
        assert_eq!(
            fields_from("7", &number).unwrap()["n"],
            serde_json::json!(7)
        );
        let two = [field("a", "string", true), field("b", "boolean", false)];
        assert_eq!(
            fields_from(r#"{"a": "x", "b": true}"#, &two).unwrap().len(),
            2
        );
        // Plain text fills the one required field.
        assert_eq!(fields_from("x", &two).unwrap()["a"], "x");
        let open = [field("a", "string", false), field("b", "string", false)];
        assert_eq!(fields_from("x", &open), None);
    }
}
