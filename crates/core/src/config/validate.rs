//! Settings checked before anything is created: each limit against what it allows, the limits
//! against each other, and the settings that take one of a few words.

use super::ConfigFile;
use crate::Error;

/// A setting that takes one of `allowed` words, checked.
pub(super) fn checked_word(
    key: &'static str,
    value: Option<&str>,
    allowed: &[&str],
) -> Result<Option<String>, Error> {
    match value {
        None => Ok(None),
        Some(word) if allowed.contains(&word) => Ok(Some(word.to_string())),
        Some(word) => Err(Error::Setting {
            key,
            value: word.to_string(),
            allowed: format!("one of {}", allowed.join(", ")),
        }),
    }
}

/// Checks every limit against what it allows, and the limits against each other, before anything
/// is created: a nonsense value (a zero timeout that makes every stream "stall", a zero window)
/// is bad input naming the key, not a session that misbehaves.
pub(super) fn validate(
    file: &ConfigFile,
    max_turns: u32,
    window: Option<u64>,
) -> Result<(), Error> {
    fn bad(key: &'static str, value: impl std::fmt::Display, allowed: &str) -> Error {
        Error::Setting {
            key,
            value: value.to_string(),
            allowed: allowed.to_string(),
        }
    }
    if max_turns == 0 {
        return Err(bad("max_turns", 0, "at least 1 (default 100)"));
    }
    if let Some(value) = file.compact_threshold
        && !(value > 0.0 && value <= 1.0)
    {
        return Err(bad(
            "compact_threshold",
            value,
            "a fraction of the context window in (0, 1] (default 0.85)",
        ));
    }
    let at_least = |key: &'static str, value: Option<u64>, min: u64, allowed: &str| match value {
        Some(value) if value < min => Err(bad(key, value, allowed)),
        _ => Ok(()),
    };
    at_least(
        "stream_idle_timeout_ms",
        file.stream_idle_timeout_ms,
        100,
        "at least 100 ms (default 120000)",
    )?;
    at_least(
        "stream_total_timeout_ms",
        file.stream_total_timeout_ms,
        1000,
        "at least 1000 ms (default 1800000)",
    )?;
    if let (Some(idle), Some(total)) = (file.stream_idle_timeout_ms, file.stream_total_timeout_ms)
        && total < idle
    {
        return Err(bad(
            "stream_total_timeout_ms",
            total,
            &format!("at least stream_idle_timeout_ms ({idle})"),
        ));
    }
    at_least(
        "tool_output_max_tokens",
        file.tool_output_max_tokens.map(|v| v as u64),
        100,
        "at least 100 tokens (default 4000)",
    )?;
    at_least(
        "model_context_window",
        file.model_context_window,
        1000,
        "at least 1000 tokens",
    )?;
    at_least(
        "max_output_tokens",
        file.max_output_tokens.map(u64::from),
        1,
        "at least 1 token",
    )?;
    at_least(
        "journal_output_max_bytes",
        file.journal_output_max_bytes.map(|v| v as u64),
        1024,
        "at least 1024 bytes (default 1048576)",
    )?;
    if let (Some(window), Some(output)) = (window, file.max_output_tokens)
        && u64::from(output) >= window / 2
    {
        return Err(bad(
            "max_output_tokens",
            output,
            &format!(
                "less than half the context window ({window} tokens), so a request fits beside it"
            ),
        ));
    }
    if let (Some(window), Some(tokens)) = (window, file.tool_output_max_tokens)
        && tokens as u64 > window / 4
    {
        return Err(bad(
            "tool_output_max_tokens",
            tokens,
            &format!("at most a quarter of the context window ({window} tokens)"),
        ));
    }
    if let Some(sessions) = file.max_terminal_sessions
        && !(1..=super::MOST_TERMINAL_SESSIONS).contains(&sessions)
    {
        return Err(bad(
            "max_terminal_sessions",
            sessions,
            &format!(
                "1 to {} (default {})",
                super::MOST_TERMINAL_SESSIONS,
                super::DEFAULT_MAX_TERMINAL_SESSIONS
            ),
        ));
    }
    if let Some(retries) = file.max_retries
        && retries > 20
    {
        return Err(bad("max_retries", retries, "0 to 20 (default 5)"));
    }
    Ok(())
}
