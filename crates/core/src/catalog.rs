//! What cox knows about models, as data. Only context windows for now; prices and output limits
//! join when usage accounting needs them.

/// `(model name prefix, context window in tokens)`; the longest matching prefix wins.
const WINDOWS: &[(&str, u64)] = &[
    ("gpt-5.3-codex", 400_000),
    ("gpt-5.2-codex", 400_000),
    ("gpt-5.1-codex", 400_000),
    ("gpt-5-codex", 400_000),
    ("gpt-5", 400_000),
    ("gpt-4.1", 1_047_576),
    ("o3", 200_000),
    ("o4-mini", 200_000),
    ("claude-opus-4-6", 1_000_000),
    ("claude-opus-4", 200_000),
    ("claude-sonnet-4", 200_000),
    ("claude-haiku-4", 200_000),
];

/// The context window of `model`, when the catalog knows it.
pub fn context_window(model: &str) -> Option<u64> {
    WINDOWS
        .iter()
        .filter(|(prefix, _)| model.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, window)| *window)
}

#[cfg(test)]
mod tests {
    #[test]
    fn longest_prefix_wins() {
        assert_eq!(super::context_window("gpt-5.3-codex"), Some(400_000));
        assert_eq!(super::context_window("claude-opus-4-6"), Some(1_000_000));
        assert_eq!(super::context_window("claude-opus-4-1"), Some(200_000));
        assert_eq!(super::context_window("llama3"), None);
    }
}
