//! What cox knows about models, as data (`catalog.toml`, embedded): context window, output limit,
//! and prices for the cost estimate.

use std::sync::OnceLock;

use cox_protocol::Usage;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Price {
    /// US dollars per million tokens.
    pub input: f64,
    pub cached_input: f64,
    pub output: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelInfo {
    pub prefix: String,
    pub context_window: u64,
    pub max_output: u64,
    #[serde(default)]
    pub price: Option<Price>,
    /// A reasoning model on the Responses API: its reasoning items are carried between turns.
    #[serde(default)]
    pub reasoning: bool,
}

#[derive(Debug, Deserialize)]
struct Catalog {
    default_context_window: u64,
    model: Vec<ModelInfo>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The file is part of the binary and checked by a test; a broken edit fails that test.
        toml::from_str(include_str!("catalog.toml")).unwrap_or(Catalog {
            default_context_window: 32_768,
            model: Vec::new(),
        })
    })
}

/// The catalog entry for `model` (longest matching prefix).
pub fn lookup(model: &str) -> Option<&'static ModelInfo> {
    catalog()
        .model
        .iter()
        .filter(|info| model.starts_with(&info.prefix))
        .max_by_key(|info| info.prefix.len())
}

/// The models the catalog describes, by the names they start with (what a front end offers to
/// pick from; a provider may serve others).
pub fn models() -> impl Iterator<Item = &'static str> {
    catalog().model.iter().map(|info| info.prefix.as_str())
}

/// The context window of `model`, when the catalog knows it.
pub fn context_window(model: &str) -> Option<u64> {
    lookup(model).map(|info| info.context_window)
}

/// The window assumed for a model nobody described (with a warning).
pub fn default_context_window() -> u64 {
    catalog().default_context_window
}

/// Estimated cost in US dollars of `usage` on `model`, when its price is known.
pub fn cost(model: &str, usage: &Usage) -> Option<f64> {
    let price = lookup(model)?.price?;
    let uncached = usage.input_tokens.saturating_sub(usage.cached_input_tokens) as f64;
    let cached = usage.cached_input_tokens as f64;
    let output = usage.output_tokens as f64;
    Some(
        (uncached * price.input + cached * price.cached_input + output * price.output)
            / 1_000_000.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalog_parses() {
        let parsed: Catalog = toml::from_str(include_str!("catalog.toml")).unwrap();
        assert!(parsed.model.len() >= 10);
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(context_window("gpt-5.3-codex"), Some(400_000));
        assert_eq!(context_window("claude-opus-4-6"), Some(1_000_000));
        assert_eq!(context_window("claude-opus-4-1"), Some(200_000));
        assert_eq!(context_window("mystery-model"), None);
    }

    #[test]
    fn cost_counts_cached_input_at_its_price() {
        let usage = Usage {
            input_tokens: 1_000_000,
            cached_input_tokens: 800_000,
            output_tokens: 100_000,
        };
        let dollars = cost("gpt-5.3-codex", &usage).unwrap();
        // 200k × 1.75 + 800k × 0.175 + 100k × 14, per million.
        assert!((dollars - (0.35 + 0.14 + 1.4)).abs() < 1e-9, "{dollars}");
        assert_eq!(cost("llama3", &usage), None);
    }
}
