//! What cox keeps from commands and records: the environment variables commands never get, and
//! the values no journal line, event or model request shows.
//!
//! Hidden from commands: every provider's key variable, and every variable the credential rule
//! of `cox_sandbox::env` (with the person's `[sandbox.env]` additions and exceptions) names.
//! Redacted wherever they appear in tool output (so from the model, `--json` and the journal):
//! the session's key, every key stored in `auth.json`, and the value of every hidden variable of
//! [`MIN_REDACTED`] characters or more (shorter ones, such as `1`, would mask ordinary text).

use cox_model::Secret;

use crate::{AuthStore, Config, config};

/// Values shorter than this are hidden from commands but not masked in text.
pub const MIN_REDACTED: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Variables removed from every command's environment.
    pub hidden_env: Vec<String>,
    /// Values masked in tool output, journal lines and events, longest first.
    pub values: Vec<Secret>,
}

impl Credentials {
    pub fn gather(config: &Config, api_key: Option<&Secret>) -> Credentials {
        let mut hidden_env: Vec<String> = config::PRESETS
            .iter()
            .filter_map(|p| p.api_key_env.map(str::to_string))
            .chain(config.provider.api_key_env.clone())
            .collect();
        let mut values: Vec<String> = api_key
            .map(|k| k.expose().to_string())
            .into_iter()
            .collect();
        values.extend(
            AuthStore::new(&config.home)
                .all_stored()
                .iter()
                .map(|k| k.expose().to_string()),
        );
        for (name, value) in std::env::vars_os() {
            let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
                continue;
            };
            if hidden_env.iter().any(|h| h == name) || config.env_scrub.hides(name, value) {
                if !hidden_env.iter().any(|h| h == name) {
                    hidden_env.push(name.to_string());
                }
                values.push(value.to_string());
            }
        }
        values.retain(|v| v.len() >= MIN_REDACTED);
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Credentials {
            hidden_env,
            values: values.into_iter().map(Secret::new).collect(),
        }
    }

    /// `text` with every secret value masked.
    pub fn redact(&self, text: &str) -> String {
        let mut out = None::<String>;
        for secret in &self.values {
            let current = out.as_deref().unwrap_or(text);
            if current.contains(secret.expose()) {
                out = Some(secret.redact(current));
            }
        }
        out.unwrap_or_else(|| text.to_string())
    }
}

/// Overwrites the credential values in this process's initial environment block (what
/// `/proc/PID/environ` shows), keeping them readable to cox itself. Call first thing in `main`.
pub fn blank_environ_block() {
    cox_sandbox::env::blank_environ_block(cox_sandbox::env::looks_like_credential);
}
