//! Turning generated token pieces into text deltas: whole UTF-8 characters only, and nothing of a
//! tool call. Text that might be the start of `<tool_call>` is held back until it is known either way,
//! so a delta never shows half a marker and a call's JSON never reaches the screen as prose.

/// Bytes of token pieces in, whole characters out (a character may span several tokens).
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let (valid, rest) = match std::str::from_utf8(&self.pending) {
            Ok(_) => (self.pending.len(), None),
            // An invalid sequence (not merely an incomplete one) is replaced, never kept forever.
            Err(e) => match e.error_len() {
                Some(bad) => (e.valid_up_to(), Some(bad)),
                None => (e.valid_up_to(), None),
            },
        };
        let mut text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        match rest {
            Some(bad) => {
                text.push(char::REPLACEMENT_CHARACTER);
                self.pending.drain(..valid + bad);
                text.push_str(&self.push(&[]));
            }
            None => {
                self.pending.drain(..valid);
            }
        }
        text
    }

    /// What is left at the end: an incomplete character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// Splits generated text into prose (streamed) and a tool call (from the marker on).
#[derive(Debug)]
pub struct MarkerSplit {
    marker: &'static str,
    held: String,
    call: Option<String>,
}

impl MarkerSplit {
    pub fn new(marker: &'static str) -> Self {
        MarkerSplit {
            marker,
            held: String::new(),
            call: None,
        }
    }

    /// Takes the next piece of text; returns the prose that is now safe to show.
    pub fn push(&mut self, text: &str) -> String {
        if let Some(call) = &mut self.call {
            call.push_str(text);
            return String::new();
        }
        self.held.push_str(text);
        if let Some(at) = self.held.find(self.marker) {
            self.call = Some(self.held[at..].to_string());
            let prose = self.held[..at].to_string();
            self.held.clear();
            return prose;
        }
        let keep = partial_marker_len(&self.held, self.marker);
        let cut = self.held.len() - keep;
        let prose = self.held[..cut].to_string();
        self.held.drain(..cut);
        prose
    }

    /// The prose still held back, and the call text if there was one.
    pub fn finish(self) -> (String, Option<String>) {
        (self.held, self.call)
    }
}

/// The length of the longest end of `text` that begins `marker` (0 when none does).
fn partial_marker_len(text: &str, marker: &str) -> usize {
    (1..marker.len().min(text.len() + 1))
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && marker.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_split_across_pieces_come_out_whole() {
        let mut stream = Utf8Stream::default();
        let bytes = "é→😀".as_bytes();
        let mut out = String::new();
        for byte in bytes {
            out.push_str(&stream.push(&[*byte]));
        }
        assert_eq!(out, "é→😀");
        assert_eq!(stream.push(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(stream.push(&[0xe2, 0x86]), "");
        assert_eq!(stream.finish(), "\u{fffd}");
    }

    #[test]
    fn prose_streams_and_the_call_is_held() {
        let mut split = MarkerSplit::new("<tool_call>");
        let mut shown = String::new();
        for piece in [
            "I will",
            " look. <",
            "tool",
            "_call>\n{\"name\"",
            ": \"x\"}",
        ] {
            shown.push_str(&split.push(piece));
        }
        assert_eq!(shown, "I will look. ");
        let (rest, call) = split.finish();
        assert_eq!(rest, "");
        assert_eq!(call.as_deref(), Some("<tool_call>\n{\"name\": \"x\"}"));
    }

    #[test]
    fn a_false_start_is_released() {
        let mut split = MarkerSplit::new("<tool_call>");
        assert_eq!(split.push("a <to"), "a ");
        assert_eq!(split.push("p> b"), "<top> b");
        assert_eq!(split.push(" <"), " ");
        let (rest, call) = split.finish();
        assert_eq!((rest.as_str(), call), ("<", None));
    }
}
