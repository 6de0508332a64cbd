//! A JSON Schema check for tests: does this value match this schema? It covers the keywords cox's
//! own schemas use (tool parameters, the plan document): `type` (one or a list), `properties`,
//! `required`, `additionalProperties` (a boolean), `items`, `enum`, `const`, `anyOf`, `oneOf`,
//! `minItems`, `maxItems`, `minLength`, `maxLength`, `minimum`, `maximum` and `pattern`. A keyword it
//! does not know is an error, so a schema that grows past it fails loudly instead of passing.

use serde_json::Value;

const IGNORED: &[&str] = &["description", "title", "default", "examples", "$schema"];

/// `Ok` when `value` matches `schema`; otherwise where and why not (`$.path: reason`).
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "$")
}

fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => Ok(()),
            _ => Err(format!("{at}: schema {schema} admits nothing")),
        };
    };
    for (key, rule) in schema {
        match key.as_str() {
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{at}: bad `type` {rule}")),
                };
                if !types.iter().any(|t| has_type(value, t)) {
                    return Err(format!("{at}: {value} is not of type {rule}"));
                }
            }
            "properties" => {
                if let (Some(props), Some(object)) = (rule.as_object(), value.as_object()) {
                    for (name, sub) in props {
                        if let Some(field) = object.get(name) {
                            check(sub, field, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if !object.contains_key(name) {
                            return Err(format!("{at}: missing required `{name}`"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let (Value::Bool(false), Some(object)) = (rule, value.as_object()) {
                    let known = schema.get("properties").and_then(Value::as_object);
                    if let Some(extra) = object
                        .keys()
                        .find(|k| !known.is_some_and(|props| props.contains_key(*k)))
                    {
                        return Err(format!("{at}: property `{extra}` is not allowed"));
                    }
                } else if !rule.is_boolean() {
                    return Err(format!(
                        "{at}: only boolean additionalProperties is supported"
                    ));
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    check(rule, item, &format!("{at}[{i}]"))?;
                }
            }
            "enum" => {
                if !rule
                    .as_array()
                    .is_some_and(|options| options.contains(value))
                {
                    return Err(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "const" => {
                if rule != value {
                    return Err(format!("{at}: {value} is not {rule}"));
                }
            }
            "anyOf" | "oneOf" => {
                let options = rule.as_array().map(Vec::as_slice).unwrap_or_default();
                let matching = options
                    .iter()
                    .filter(|option| check(option, value, at).is_ok())
                    .count();
                let ok = if key == "anyOf" {
                    matching > 0
                } else {
                    matching == 1
                };
                if !ok {
                    return Err(format!(
                        "{at}: {value} matches {matching} of the {key} alternatives"
                    ));
                }
            }
            "minItems" | "maxItems" => {
                if let Some(items) = value.as_array() {
                    bound(key, rule, items.len() as f64, at)?;
                }
            }
            "minLength" | "maxLength" => {
                if let Some(text) = value.as_str() {
                    bound(key, rule, text.chars().count() as f64, at)?;
                }
            }
            "minimum" | "maximum" => {
                if let Some(number) = value.as_f64() {
                    bound(key, rule, number, at)?;
                }
            }
            "pattern" => {
                if let (Some(pattern), Some(text)) = (rule.as_str(), value.as_str()) {
                    let regex = regex::Regex::new(pattern)
                        .map_err(|e| format!("{at}: bad pattern {pattern}: {e}"))?;
                    if !regex.is_match(text) {
                        return Err(format!("{at}: {text:?} does not match /{pattern}/"));
                    }
                }
            }
            other if IGNORED.contains(&other) => {}
            other => {
                return Err(format!(
                    "{at}: schema keyword `{other}` is not supported here"
                ));
            }
        }
    }
    Ok(())
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}

fn bound(key: &str, rule: &Value, actual: f64, at: &str) -> Result<(), String> {
    let limit = rule
        .as_f64()
        .ok_or_else(|| format!("{at}: `{key}` is not a number"))?;
    let ok = if key.starts_with("min") {
        actual >= limit
    } else {
        actual <= limit
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{at}: {actual} breaks {key} {limit}"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::validate;

    #[test]
    fn accepts_matches_and_names_each_mismatch() {
        let schema = json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "pattern": "^[a-z./]+$"},
                "limit": {"type": ["integer", "null"], "minimum": 1},
                "mode": {"enum": ["a", "b"]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "pick": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
            },
            "required": ["path"],
            "additionalProperties": false,
        });
        assert_eq!(
            validate(
                &schema,
                &json!({"path": "a/b.txt", "limit": null, "mode": "a", "tags": ["x"], "pick": true})
            ),
            Ok(())
        );
        for (value, reason) in [
            (json!({}), "missing required `path`"),
            (json!({"path": 3}), "is not of type"),
            (json!({"path": "A"}), "does not match"),
            (json!({"path": "a", "limit": 0}), "breaks minimum"),
            (json!({"path": "a", "limit": 1.5}), "is not of type"),
            (json!({"path": "a", "mode": "c"}), "is not one of"),
            (
                json!({"path": "a", "tags": ["x", "y", "z"]}),
                "breaks maxItems",
            ),
            (json!({"path": "a", "tags": [1]}), "$.tags[0]"),
            (json!({"path": "a", "pick": 1}), "matches 0 of the anyOf"),
            (json!({"path": "a", "other": 1}), "`other` is not allowed"),
        ] {
            let err = validate(&schema, &value).unwrap_err();
            assert!(err.contains(reason), "{value}: {err}");
        }
        let err = validate(&json!({"format": "uri"}), &json!("x")).unwrap_err();
        assert!(err.contains("`format` is not supported"), "{err}");
    }
}
