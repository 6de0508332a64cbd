//! The reasoning settings: `model_reasoning_effort`, `model_reasoning_summary`, `model_thinking`,
//! top level or per role in `[reasoning.planner]` / `[reasoning.worker]`, resolved into the
//! [`cox_model::Reasoning`] every request of a session carries.

use serde::Deserialize;

use super::validate::checked_word;
use super::{ConfigFile, Role};
use crate::Error;

/// `model_thinking`: a token budget or a word.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ThinkingSetting {
    Budget(u32),
    Word(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasoningRoles {
    pub planner: Option<RoleReasoning>,
    pub worker: Option<RoleReasoning>,
}

/// One role's reasoning settings (the same meaning as the `model_*` keys).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleReasoning {
    pub effort: Option<String>,
    pub summary: Option<String>,
    pub thinking: Option<ThinkingSetting>,
}

/// The reasoning settings of a session: the role's `[reasoning.ROLE]` beats the top-level
/// `model_*` keys. A model the catalog marks as reasoning gets its reasoning carried between turns
/// and a summary (`auto`) unless told otherwise; any model whose effort is set is treated so too.
pub(super) fn resolve_reasoning(
    file: &ConfigFile,
    role: Option<Role>,
    model: &str,
) -> Result<cox_model::Reasoning, Error> {
    let own = match role {
        Some(Role::Planner) => file.reasoning.planner.clone(),
        Some(Role::Worker) => file.reasoning.worker.clone(),
        None => None,
    }
    .unwrap_or_default();
    let effort = checked_word(
        "model_reasoning_effort",
        own.effort
            .as_deref()
            .or(file.model_reasoning_effort.as_deref()),
        &["none", "minimal", "low", "medium", "high", "xhigh"],
    )?;
    let summary = checked_word(
        "model_reasoning_summary",
        own.summary
            .as_deref()
            .or(file.model_reasoning_summary.as_deref()),
        &["auto", "concise", "detailed", "none"],
    )?;
    let reasons = crate::catalog::lookup(model).is_some_and(|info| info.reasoning);
    let carry = reasons || effort.is_some();
    let summary = match summary.as_deref() {
        Some("none") => None,
        Some(word) => Some(word.to_string()),
        None if carry => Some("auto".to_string()),
        None => None,
    };
    let thinking = match own.thinking.as_ref().or(file.model_thinking.as_ref()) {
        None => None,
        Some(ThinkingSetting::Word(word)) if word == "off" => None,
        Some(ThinkingSetting::Word(word)) if word == "adaptive" => {
            Some(cox_model::Thinking::Adaptive)
        }
        Some(ThinkingSetting::Budget(budget)) if *budget >= 1024 => {
            Some(cox_model::Thinking::Budget(*budget))
        }
        Some(other) => {
            return Err(Error::Setting {
                key: "model_thinking",
                value: match other {
                    ThinkingSetting::Budget(n) => n.to_string(),
                    ThinkingSetting::Word(w) => w.clone(),
                },
                allowed: "a budget of at least 1024 tokens, \"adaptive\" or \"off\"".to_string(),
            });
        }
    };
    Ok(cox_model::Reasoning {
        effort,
        summary,
        carry,
        thinking,
    })
}
