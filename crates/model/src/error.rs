//! Error classification. The engine decides what to do from the variant: retry (rate limited,
//! transient), stop and tell the person (auth, quota, bad request), or compact (context overflow).

use std::time::Duration;

use cox_protocol::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("authentication failed (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    #[error("quota exhausted: {message}")]
    Quota { message: String },
    #[error("rate limited: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("the request does not fit the model's context window: {message}")]
    ContextOverflow { message: String },
    #[error("request rejected (HTTP {status}): {message}")]
    BadRequest { status: u16, message: String },
    #[error("server error (HTTP {status}): {message}")]
    Server {
        status: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("cannot reach {url}: {detail}")]
    Connect { url: String, detail: String },
    /// The stream broke: dropped, malformed, or ended before the response completed.
    #[error("stream failed: {0}")]
    Stream(String),
    #[error("stream stalled: no event for {}s", .0.as_secs_f64())]
    Idle(Duration),
    /// The response did not complete within the total deadline (`stream_total_timeout_ms`).
    #[error("response not complete after {}s (stream_total_timeout_ms); abandoned", .0.as_secs_f64())]
    Deadline(Duration),
    #[error("invalid provider configuration: {0}")]
    Config(String),
    /// The in-process model failed: llama.cpp refused a step, or a tool call was cut off by the
    /// output limit. Sending the same request again would fail the same way.
    #[error("local model: {0}")]
    Local(String),
    /// The server answered in a shape no wire format allows (an HTML page, unparsable JSON):
    /// asking again gets the same answer.
    #[error("unexpected response: {0}")]
    Protocol(String),
}

impl ModelError {
    /// The kind reported in `error` events and used for exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ModelError::Auth { .. } => ErrorKind::Auth,
            ModelError::Quota { .. } => ErrorKind::Provider,
            ModelError::RateLimited { .. } => ErrorKind::RateLimited,
            ModelError::ContextOverflow { .. } => ErrorKind::ContextOverflow,
            ModelError::BadRequest { .. } => ErrorKind::BadRequest,
            ModelError::Server { .. }
            | ModelError::Connect { .. }
            | ModelError::Stream(_)
            | ModelError::Idle(_)
            | ModelError::Deadline(_) => ErrorKind::Transient,
            ModelError::Config(_) | ModelError::Local(_) | ModelError::Protocol(_) => {
                ErrorKind::Provider
            }
        }
    }

    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::RateLimited | ErrorKind::Transient)
    }

    /// The delay the provider asked for, if it named one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::RateLimited { retry_after, .. }
            | ModelError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Classifies a non-success HTTP answer from its status, `Retry-After` value and body.
pub fn classify_http(status: u16, retry_after_header: Option<Duration>, body: &str) -> ModelError {
    let (code, message) = error_fields(body);
    let retry_after = retry_after_header.or_else(|| parse_try_again(&message));
    let lowered = format!("{code} {message}").to_ascii_lowercase();
    match status {
        401 | 403 => ModelError::Auth { status, message },
        429 if lowered.contains("insufficient_quota")
            || lowered.contains("exceeded your current quota") =>
        {
            ModelError::Quota { message }
        }
        429 => ModelError::RateLimited {
            retry_after,
            message,
        },
        400 | 413 | 422 if is_context_overflow(&lowered) => ModelError::ContextOverflow { message },
        408 | 409 | 500..=599 => ModelError::Server {
            status,
            retry_after,
            message,
        },
        _ => ModelError::BadRequest { status, message },
    }
}

/// Classifies an error that a provider reported inside a stream (`response.failed`, `error`).
pub fn classify_stream_error(code: &str, message: String) -> ModelError {
    let lowered = format!("{code} {message}").to_ascii_lowercase();
    if is_context_overflow(&lowered) {
        ModelError::ContextOverflow { message }
    } else if lowered.contains("insufficient_quota") {
        ModelError::Quota { message }
    } else if lowered.contains("rate_limit") {
        ModelError::RateLimited {
            retry_after: parse_try_again(&message),
            message,
        }
    } else if lowered.contains("authentication") || lowered.contains("invalid_api_key") {
        ModelError::Auth {
            status: 401,
            message,
        }
    } else if lowered.contains("invalid_request") || lowered.contains("invalid_prompt") {
        ModelError::BadRequest {
            status: 400,
            message,
        }
    } else {
        // server_error, overloaded_error, api_error and anything unknown: worth another try.
        ModelError::Stream(format!("provider reported {code}: {message}"))
    }
}

fn is_context_overflow(lowered: &str) -> bool {
    [
        "context_length_exceeded",
        "context window",
        "maximum context length",
        "prompt is too long",
        "too many tokens",
        "context length",
    ]
    .iter()
    .any(|marker| lowered.contains(marker))
}

/// Pulls `code`/`type` and `message` out of the error bodies of all three providers, falling back
/// to the raw body (cut short) when it is not the JSON we know.
fn error_fields(body: &str) -> (String, String) {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().map(|v| v.get("error").unwrap_or(v));
    let text = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let code = text("code").or_else(|| text("type")).unwrap_or_default();
    let message = text("message").unwrap_or_else(|| {
        let trimmed = body.trim();
        let cut: String = trimmed.chars().take(500).collect();
        if cut.is_empty() {
            "(empty body)".to_string()
        } else {
            cut
        }
    });
    (code, message)
}

/// Reads a `Retry-After` header value: seconds, possibly fractional. (HTTP dates are rare from model
/// providers and are ignored, falling back to backoff.)
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Finds "try again in 1.5s" / "try again in 250ms" in an OpenAI-style message.
pub fn parse_try_again(message: &str) -> Option<Duration> {
    let lowered = message.to_ascii_lowercase();
    let rest = &lowered[lowered.find("try again in ")? + "try again in ".len()..];
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let value: f64 = rest[..number_len].parse().ok()?;
    let unit = rest[number_len..].trim_start();
    let secs = if unit.starts_with("ms") {
        value / 1000.0
    } else if unit.starts_with('s') {
        value
    } else if unit.starts_with('m') {
        value * 60.0
    } else {
        return None;
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        assert_eq!(classify_http(401, None, "{}").kind(), ErrorKind::Auth);
        assert_eq!(
            classify_http(500, None, "oops").kind(),
            ErrorKind::Transient
        );
        assert_eq!(classify_http(529, None, "").kind(), ErrorKind::Transient);
        assert_eq!(classify_http(404, None, "").kind(), ErrorKind::BadRequest);
        let overflow = r#"{"error":{"code":"context_length_exceeded","message":"too long"}}"#;
        assert_eq!(
            classify_http(400, None, overflow).kind(),
            ErrorKind::ContextOverflow
        );
        let anthropic = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
        assert_eq!(
            classify_http(400, None, anthropic).kind(),
            ErrorKind::ContextOverflow
        );
        let quota = r#"{"error":{"code":"insufficient_quota","message":"You exceeded your current quota"}}"#;
        assert!(!classify_http(429, None, quota).is_retryable());
    }

    #[test]
    fn rate_limit_delay_from_header_or_message() {
        let from_header = classify_http(429, Some(Duration::from_secs(3)), "{}");
        assert_eq!(from_header.retry_after(), Some(Duration::from_secs(3)));
        let body = r#"{"error":{"message":"Rate limit reached. Please try again in 1.5s.","code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            classify_http(429, None, body).retry_after(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_try_again("try again in 250ms"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_try_again("no hint"), None);
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn message_is_taken_from_error_body() {
        let err = classify_http(
            401,
            None,
            r#"{"error":{"message":"Incorrect API key provided"}}"#,
        );
        assert_eq!(
            err.to_string(),
            "authentication failed (HTTP 401): Incorrect API key provided"
        );
    }
}
