//! The script a mock model follows: one [`Turn`] per incoming request, in order, whatever the wire
//! format. A turn is text in chunks, tool calls whose arguments arrive in pieces, usage, and
//! optionally a [`Fault`] that spoils this one response (the next request gets the next turn).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub turns: Vec<Turn>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Text chunks, each sent as its own delta.
    #[serde(default)]
    pub text: Vec<String>,
    /// Reasoning-summary chunks, sent before the text.
    #[serde(default)]
    pub reasoning: Vec<String>,
    #[serde(default)]
    pub tool_calls: Vec<ScriptedCall>,
    #[serde(default)]
    pub usage: ScriptedUsage,
    /// Pause between two SSE frames.
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub fault: Option<Fault>,
    /// A recorded answer sent as it is instead of the rendered frames: a real provider's stream
    /// (or JSON body) replayed byte for byte.
    #[serde(default)]
    pub raw: Option<Raw>,
}

/// A recorded HTTP answer body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// `text/event-stream` unless told otherwise.
    #[serde(default = "event_stream")]
    pub content_type: String,
    pub body: String,
}

fn event_stream() -> String {
    "text/event-stream".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    pub name: String,
    /// The raw arguments text, sent as is: it may be deliberately invalid JSON.
    pub arguments: String,
    /// Into how many pieces the arguments are split across frames.
    #[serde(default = "one")]
    pub chunks: usize,
    #[serde(default)]
    pub call_id: Option<String>,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedUsage {
    pub input_tokens: u64,
    #[serde(default)]
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
}

impl Default for ScriptedUsage {
    fn default() -> Self {
        ScriptedUsage {
            input_tokens: 100,
            cached_input_tokens: 0,
            output_tokens: 20,
        }
    }
}

/// What goes wrong with one response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer with this status and an error body in the wire format's shape, no stream.
    Status {
        status: u16,
        /// `Retry-After` header value, in seconds.
        #[serde(default)]
        retry_after: Option<String>,
        /// Overrides the error message in the body.
        #[serde(default)]
        message: Option<String>,
    },
    /// Stream everything but the completion frames — tool calls included — then cut the connection.
    DropMidStream,
    /// After the first frame, send a `data:` line that is not JSON.
    MalformedSse,
    /// Stream everything but the completion frames, then go silent for `ms` before closing.
    Stall { ms: u64 },
    /// Stream everything but the completion frames, then send only SSE comments
    /// (`: keep-alive`) every `every_ms` for `ms`, then close.
    KeepAlive { ms: u64, every_ms: u64 },
}

impl Script {
    /// Parses a script from JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl Turn {
    pub fn text(chunks: &[&str]) -> Self {
        Turn {
            text: chunks.iter().map(|c| c.to_string()).collect(),
            ..Turn::default()
        }
    }

    pub fn call(name: &str, arguments: &str) -> Self {
        Turn::default().with_call(name, arguments, 1)
    }

    pub fn with_call(mut self, name: &str, arguments: &str, chunks: usize) -> Self {
        self.tool_calls.push(ScriptedCall {
            name: name.to_string(),
            arguments: arguments.to_string(),
            chunks,
            call_id: None,
        });
        self
    }

    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// A turn answered with a recorded body (`text/event-stream`).
    pub fn replay(body: &str) -> Self {
        Turn {
            raw: Some(Raw {
                content_type: event_stream(),
                body: body.to_string(),
            }),
            ..Turn::default()
        }
    }

    /// A turn answered with a JSON body, as a server that ignores `stream: true` does.
    pub fn json_body(body: &str) -> Self {
        Turn {
            raw: Some(Raw {
                content_type: "application/json".to_string(),
                body: body.to_string(),
            }),
            ..Turn::default()
        }
    }

    pub fn with_usage(mut self, input: u64, cached: u64, output: u64) -> Self {
        self.usage = ScriptedUsage {
            input_tokens: input,
            cached_input_tokens: cached,
            output_tokens: output,
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_script_in_the_repo_parses() {
        let text = include_str!("../scripts/two-turn.json");
        let script = Script::from_json(text).unwrap();
        assert_eq!(script.turns.len(), 2);
        assert_eq!(script.turns[0].tool_calls[0].chunks, 3);
        assert_eq!(script.turns[1].usage.cached_input_tokens, 2048);
    }

    #[test]
    fn unknown_script_fields_are_rejected() {
        let error = Script::from_json(r#"{"turns":[{"txt":["typo"]}]}"#).unwrap_err();
        assert!(error.to_string().contains("unknown field `txt`"), "{error}");
    }
}
