//! A credential that never prints itself.

/// An API key. `Debug` and `Display` show only a masked form, so a key that ends up in a log line,
/// an error or a snapshot by accident is still not disclosed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The key itself, for the one place that needs it: the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `sk-…abcd`: enough to tell two keys apart, never enough to use one. Short keys are fully hidden.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < 12 {
            return "…".to_string();
        }
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }

    /// Replaces every occurrence of the key in `text` (a provider may echo it in an error body).
    pub fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, &self.masked())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keeping_prefix_and_last_four() {
        let key = Secret::new("sk-proj-abcdefghijklmnop1234");
        assert_eq!(key.masked(), "sk-…1234");
        assert_eq!(format!("{key:?}"), "Secret(sk-…1234)");
        assert_eq!(Secret::new("short").masked(), "…");
    }

    #[test]
    fn redacts_echoed_key() {
        let key = Secret::new("sk-proj-abcdefghijklmnop1234");
        let text = "Incorrect API key provided: sk-proj-abcdefghijklmnop1234.";
        assert_eq!(key.redact(text), "Incorrect API key provided: sk-…1234.");
    }
}
