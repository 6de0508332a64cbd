//! What a client can change in a session and how it is offered: the modes (cox's sandbox and
//! approval policies together), the config options (`mode`, `model`, `thought_level`), and the
//! options of a permission request.

use agent_client_protocol::v1::schema::{
    PermissionOption, PermissionOptionKind, SessionConfigOption, SessionConfigOptionCategory,
    SessionConfigSelectOption, SessionMode, SessionModeState,
};

/// The modes a client can pick (`session/set_mode`, and the `mode` config option): cox's sandbox
/// and approval policies together.
pub(super) const MODES: [(&str, &str, &str); 4] = [
    (
        "read-only",
        "Read only",
        "Commands may read but write nothing; asks before anything else",
    ),
    (
        "workspace",
        "Workspace",
        "Edits and commands inside the workspace; asks before leaving the sandbox",
    ),
    (
        "untrusted",
        "Untrusted",
        "Like workspace, but asks before every command not known to only read",
    ),
    (
        "full-access",
        "Full access",
        "No sandbox and no questions (for a disposable container)",
    ),
];

/// Reasoning effort values of the `thought_level` option (`default`: the config's).
pub(super) const EFFORTS: [&str; 6] = ["default", "minimal", "low", "medium", "high", "xhigh"];

/// What a client can change in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    pub mode: String,
    pub model: String,
    pub effort: String,
}

pub(super) fn permission_options() -> Vec<PermissionOption> {
    vec![
        PermissionOption::new("allow_once", "Allow once", PermissionOptionKind::AllowOnce),
        PermissionOption::new(
            "allow_always",
            "Always allow in this project",
            PermissionOptionKind::AllowAlways,
        ),
        PermissionOption::new("reject", "Reject", PermissionOptionKind::RejectOnce),
    ]
}

pub(super) fn modes(settings: &Settings) -> SessionModeState {
    SessionModeState::new(
        settings.mode.clone(),
        MODES
            .iter()
            .map(|(id, name, description)| {
                SessionMode::new(id.to_string(), name.to_string())
                    .description(description.to_string())
            })
            .collect(),
    )
}

/// The config options: `mode` (as the modes), `model` (the session's, then the models cox's
/// catalog knows; any other name the provider serves is accepted too) and `thought_level`.
pub fn config_options(settings: &Settings) -> Vec<SessionConfigOption> {
    let mode = SessionConfigOption::select(
        "mode",
        "Mode",
        settings.mode.clone(),
        MODES
            .iter()
            .map(|(id, name, description)| {
                SessionConfigSelectOption::new(id.to_string(), name.to_string())
                    .description(description.to_string())
            })
            .collect::<Vec<_>>(),
    )
    .category(SessionConfigOptionCategory::Mode);
    let mut models = vec![settings.model.clone()];
    for model in cox_core::catalog::models() {
        if !models.iter().any(|m| m == model) {
            models.push(model.to_string());
        }
    }
    let model = SessionConfigOption::select(
        "model",
        "Model",
        settings.model.clone(),
        models
            .into_iter()
            .map(|m| SessionConfigSelectOption::new(m.clone(), m))
            .collect::<Vec<_>>(),
    )
    .description("any model the provider serves may be set, listed or not".to_string())
    .category(SessionConfigOptionCategory::Model);
    let effort = SessionConfigOption::select(
        "thought_level",
        "Reasoning effort",
        settings.effort.clone(),
        EFFORTS
            .iter()
            .map(|e| SessionConfigSelectOption::new(e.to_string(), e.to_string()))
            .collect::<Vec<_>>(),
    )
    .category(SessionConfigOptionCategory::ThoughtLevel);
    vec![mode, model, effort]
}
