//! Bounded retries with exponential backoff and jitter. A retry resends the whole request: a stream
//! that dropped or stalled is never resumed half-way, and the failed attempt's tool calls were never
//! handed out (see the crate docs).

use std::time::Duration;

use tokio::sync::mpsc;

use crate::transport::Transport;
use crate::{BoxFuture, ModelClient, ModelError, ModelRequest, ModelResponse, StreamEvent};

/// How often and how patiently to retry. Configurable through `config.toml` / `-c`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A stream with no event for this long is abandoned and retried (keep-alive comments do
    /// not count: a server that only says it is alive is not answering).
    pub idle_timeout: Duration,
    /// A response not completed after this long is abandoned and retried, however lively.
    pub total_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            // Generous: a reasoning model may think for many minutes before it answers.
            total_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The longest `Retry-After` honoured; a provider asking for more is treated as asking for this.
const MAX_SERVER_DELAY: Duration = Duration::from_secs(600);

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): the provider's delay when it named one,
    /// else `base * 2^(attempt-1)` capped at `max_delay`, with ±20 % jitter so many clients that
    /// failed together do not retry together.
    pub fn delay(&self, attempt: u32, server_delay: Option<Duration>) -> Duration {
        if let Some(delay) = server_delay {
            return delay.min(MAX_SERVER_DELAY);
        }
        let exponent = attempt.saturating_sub(1).min(16);
        let backoff = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        backoff.mul_f64(0.8 + fastrand::f64() * 0.4)
    }
}

pub(crate) struct Retrying {
    transport: Transport,
    policy: RetryPolicy,
}

impl Retrying {
    pub(crate) fn new(transport: Transport, policy: RetryPolicy) -> Self {
        Retrying { transport, policy }
    }
}

impl ModelClient for Retrying {
    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        events: mpsc::Sender<StreamEvent>,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                let result = self
                    .transport
                    .attempt(
                        request,
                        self.policy.idle_timeout,
                        self.policy.total_timeout,
                        &events,
                    )
                    .await;
                match result {
                    Err(error) if error.is_retryable() && attempt < self.policy.max_retries => {
                        attempt += 1;
                        let delay = self.policy.delay(attempt, error.retry_after());
                        // The class, not the message: a provider's error body stays out of the log.
                        tracing::warn!(
                            attempt,
                            kind = ?error.kind(),
                            delay_ms = delay.as_millis() as u64,
                            "retrying the model request"
                        );
                        let notice = StreamEvent::Retrying {
                            attempt,
                            max_attempts: self.policy.max_retries,
                            reason: error.to_string(),
                            delay,
                        };
                        let _ = events.send(notice).await;
                        tokio::time::sleep(delay).await;
                    }
                    other => return other,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = policy.delay(1, None);
            assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
            let third = policy.delay(3, None);
            assert!(third >= Duration::from_millis(320) && third <= Duration::from_millis(480));
            assert!(policy.delay(30, None) <= Duration::from_millis(600));
        }
    }

    #[test]
    fn server_delay_wins_and_is_bounded() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(9999))),
            MAX_SERVER_DELAY
        );
    }
}
