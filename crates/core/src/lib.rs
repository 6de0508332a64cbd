//! The cox engine: configuration and credentials ([`config`], [`auth`]), the prompt ([`prompt`]),
//! and the session actor with its turn loop ([`session`]).
//!
//! Front ends (`cox` the binary, later the terminal UI) depend on this crate and `cox-protocol`
//! only; they start a session with [`start`] and read its events. Nothing here prints.

pub mod auth;
pub mod catalog;
pub mod config;
mod error;
pub mod prompt;
pub mod session;

use std::path::PathBuf;

pub use auth::{AuthStore, KeySource};
pub use config::{Config, Overrides};
pub use cox_model::Secret;
pub use error::Error;
pub use session::{SessionConfig, SessionHandle};

/// Starts a session for `config` in `cwd`, resolving the provider's key (an error when it needs one
/// and none is set). `interactive`: a person can answer the model's questions (`ask_user`).
pub fn start(config: &Config, cwd: PathBuf, interactive: bool) -> Result<SessionHandle, Error> {
    let auth = AuthStore::new(&config.home);
    let api_key = auth.require(&config.provider)?;
    let endpoint = cox_model::Endpoint {
        provider: config.provider.name.clone(),
        wire: config.provider.wire,
        base_url: config.provider.base_url.clone(),
        api_key,
    };
    let client = cox_model::client(endpoint, config.retry)?;
    let hidden_env = config::PRESETS
        .iter()
        .filter_map(|p| p.api_key_env.map(str::to_string))
        .chain(config.provider.api_key_env.clone())
        .collect();
    let session_config = SessionConfig {
        provider: config.provider.name.clone(),
        model: config.model.clone(),
        cwd,
        max_turns: config.max_turns,
        max_output_tokens: config.max_output_tokens,
        tool_output_max_bytes: config.tool_output_max_bytes,
        context_window: config.context_window,
        hidden_env,
        interactive,
    };
    Ok(session::spawn(
        session_config,
        client,
        cox_tools::ToolRegistry::standard(),
    ))
}

/// The tools a session offers the model, as sent (name, description, JSON schema of arguments).
pub fn tool_specs() -> Vec<cox_protocol::ToolSpec> {
    cox_tools::ToolRegistry::standard().specs()
}
