//! Server-sent events: bytes in, `(event, data)` pairs out, per the WHATWG event-stream rules
//! (fields `event` and `data`, multi-line data joined by `\n`, comments and unknown fields ignored,
//! `\n`, `\r\n` or `\r` line ends, dispatch on an empty line).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, empty when absent.
    pub event: String,
    pub data: String,
}

impl SseEvent {
    /// The event's data parsed as JSON; `what` names it in the error ("event data", "chunk"),
    /// which quotes a bounded excerpt of the payload.
    pub(crate) fn json(&self, what: &str) -> Result<serde_json::Value, crate::ModelError> {
        serde_json::from_str(&self.data).map_err(|e| {
            crate::ModelError::Stream(format!("malformed {what} ({e}): {}", cut(&self.data)))
        })
    }
}

/// A bounded excerpt of a payload for error messages.
fn cut(text: &str) -> String {
    const LIMIT: usize = 200;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(LIMIT).collect::<String>())
    }
}

/// Incremental parser: feed it chunks as they arrive; it keeps the partial line between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: String,
    data: Option<String>,
    last_was_cr: bool,
}

impl SseParser {
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        for &byte in chunk {
            match byte {
                b'\n' if self.last_was_cr => self.last_was_cr = false,
                b'\n' | b'\r' => {
                    self.last_was_cr = byte == b'\r';
                    self.end_line(out);
                }
                _ => {
                    self.last_was_cr = false;
                    self.line.push(byte);
                }
            }
        }
    }

    /// Dispatches what a stream that ended without a final blank line still holds.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.end_line(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data,
                });
            }
            self.event.clear();
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        parser.finish(&mut out);
        out
    }

    #[test]
    fn events_split_across_chunks() {
        let events = parse(&[
            b"event: a\nda",
            b"ta: {\"x\":1}\n",
            b"\nevent: b\r\ndata: 2\r\n\r\n",
        ]);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "a".into(),
                    data: "{\"x\":1}".into()
                },
                SseEvent {
                    event: "b".into(),
                    data: "2".into()
                },
            ]
        );
    }

    #[test]
    fn multiline_data_comments_and_unknown_fields() {
        let events = parse(&[b": keep-alive\nid: 7\ndata: one\ndata:two\nretry: 5\n\n"]);
        assert_eq!(
            events,
            vec![SseEvent {
                event: String::new(),
                data: "one\ntwo".into()
            }]
        );
    }

    #[test]
    fn final_event_without_blank_line_is_dispatched() {
        let events = parse(&[b"data: [DONE]"]);
        assert_eq!(
            events,
            vec![SseEvent {
                event: String::new(),
                data: "[DONE]".into()
            }]
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert!(parse(&[b"event: ping\n\n"]).is_empty());
    }
}
