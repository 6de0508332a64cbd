//! Compaction: keeping the conversation inside the window without losing what matters.
//!
//! First, with no model call, the outputs of tool calls older than the last [`KEEP_GROUPS`]
//! responses are replaced by a one-line note (the journal keeps them in full). If the context is
//! still over the threshold, the model writes a handoff summary of those older turns, which then
//! replace them. The last turns stay verbatim, and the pinned block (system prompt) is never part of
//! what is compacted. Each compaction is journaled with the resulting history, so a resumed session
//! sees what the model saw.

use std::borrow::Cow;

use cox_model::ModelRequest;
use cox_protocol::{CompactReason, Event, Item};
use tokio::sync::mpsc;

use super::Session;
use crate::context;
use crate::journal::Record;

/// Responses (with their tool results) kept verbatim at the end of the history.
pub const KEEP_GROUPS: usize = 2;
/// Tool outputs shorter than this are left as they are.
const ELIDE_MIN_BYTES: usize = 200;

const SUMMARY_INSTRUCTIONS: &str = "You are compacting a coding agent's conversation so that the work \
can continue in a smaller context. Write a handoff summary of the conversation below for the agent \
that continues it: what was asked, what was done (files changed, commands run and their results), \
what was learned about the code, decisions made and why, and what remains to do. Keep exact file \
paths, names, error messages and numbers. Do not invent anything. Answer with the summary only.";

pub const SUMMARY_HEADER: &str =
    "[Summary of the earlier conversation, written when the context was compacted]";

impl Session {
    /// Tokens the next request would occupy: the provider's last count plus an estimate of what was
    /// added since; near the threshold (or with no count yet), the whole request counted.
    pub(super) fn estimate_tokens(&self) -> u64 {
        // With the provider's count, only what was added since needs estimating; without, all.
        let (known, texts) = match self.baseline {
            Some(baseline) => (
                baseline,
                self.item_texts(self.counted_items.min(self.history.len())),
            ),
            None => {
                let mut texts = self.fixed_texts();
                texts.extend(self.item_texts(0));
                (0, texts)
            }
        };
        let rough = known + context::approximate(texts.iter().map(|t| t.len()).sum());
        // Far from the threshold the rough figure decides; the tokenizer is loaded only near it.
        if rough < self.threshold() * 7 / 10 {
            return rough;
        }
        known + context::count(&self.config.settings.model, &texts)
    }

    fn threshold(&self) -> u64 {
        (self.config.context_window as f64 * self.config.settings.compact_threshold) as u64
    }

    /// The system prompt (with the pinned block) and the tool schemas.
    fn fixed_texts(&self) -> Vec<Cow<'_, str>> {
        let tools = serde_json::to_string(&self.tools.specs()).unwrap_or_default();
        vec![Cow::Borrowed(self.instructions.as_str()), Cow::Owned(tools)]
    }

    /// The texts of the history from item `from` on.
    fn item_texts(&self, from: usize) -> Vec<Cow<'_, str>> {
        self.history[from..]
            .iter()
            .map(|item| {
                Cow::Borrowed(match item {
                    Item::User { text } | Item::Assistant { text } => text.as_str(),
                    Item::ToolCall(call) => call.arguments.as_str(),
                    Item::ToolResult { output, .. } => output.as_str(),
                })
            })
            .collect()
    }

    /// Compacts when the threshold is reached or a compaction was asked for.
    pub(super) async fn maybe_compact(&mut self) {
        let requested = self
            .compact_requested
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        if requested {
            self.compact(CompactReason::Requested).await;
        } else if self.estimate_tokens() >= self.threshold() {
            self.compact(CompactReason::Threshold).await;
        }
    }

    /// Index where the last `KEEP_GROUPS` response groups begin (a user message or a response's
    /// first item); everything before it may be compacted. Never splits a call from its result.
    fn keep_from(&self) -> usize {
        let starts: Vec<usize> = (0..self.history.len())
            .filter(|&i| match &self.history[i] {
                Item::User { .. } | Item::Assistant { .. } => true,
                Item::ToolCall(_) => !matches!(
                    i.checked_sub(1).map(|p| &self.history[p]),
                    Some(Item::ToolCall(_) | Item::Assistant { .. })
                ),
                Item::ToolResult { .. } => false,
            })
            .collect();
        starts
            .len()
            .checked_sub(KEEP_GROUPS)
            .map_or(0, |at| starts[at])
    }

    pub(super) async fn compact(&mut self, reason: CompactReason) {
        let before = self.estimate_tokens();
        let keep_from = self.keep_from();
        if keep_from == 0 {
            let message = format!(
                "the context is at about {before} of {} tokens, but every turn is recent: nothing to compact yet",
                self.config.context_window
            );
            self.warn(message).await;
            return;
        }
        let mut elided = 0;
        for item in &mut self.history[..keep_from] {
            if let Item::ToolResult { output, .. } = item
                && output.len() >= ELIDE_MIN_BYTES
                && !output.starts_with("[output elided")
            {
                *output = format!(
                    "[output elided when the context was compacted: {} bytes; run the tool again if \
                     you need it]",
                    output.len()
                );
                elided += 1;
            }
        }
        self.baseline = None;
        self.counted_items = 0;
        let mut summarized = 0;
        if self.estimate_tokens() >= self.threshold()
            && let Some(summary) = self.summarize(keep_from).await
        {
            summarized = keep_from;
            let mut history = vec![Item::User {
                text: format!("{SUMMARY_HEADER}\n{summary}"),
            }];
            history.extend(self.history.drain(keep_from..));
            self.history = history;
        }
        let after = self.estimate_tokens();
        // Journaled with the history it produced, so a resumed session sees what the model saw.
        let _ = self
            .record(&Record::Compacted {
                history: self.history.clone(),
            })
            .await;
        self.emitter
            .emit(Event::Compacted {
                reason,
                outputs_elided: elided,
                items_summarized: summarized,
                tokens_before: before,
                tokens_after: after,
            })
            .await;
    }

    /// Asks the model for a handoff summary of `history[..end]`. A failure leaves the history as it
    /// is (with a warning): the next request may then overflow and say so.
    async fn summarize(&mut self, end: usize) -> Option<String> {
        let mut items = self.history[..end].to_vec();
        items.push(Item::User {
            text: "Write the handoff summary of the conversation above now.".to_string(),
        });
        let request = ModelRequest {
            model: self.config.settings.model.clone(),
            instructions: SUMMARY_INSTRUCTIONS.to_string(),
            items,
            tools: Vec::new(),
            session_id: self.id.clone(),
            max_output_tokens: self.config.settings.max_output_tokens,
            output_schema: None,
        };
        let (tx, mut rx) = mpsc::channel(64);
        let drain = async move { while rx.recv().await.is_some() {} };
        let (result, ()) = tokio::join!(self.client.stream(&request, tx), drain);
        match result {
            Ok(response) if !response.text.trim().is_empty() => Some(response.text),
            Ok(_) => {
                self.warn(
                    "compaction: the model returned an empty summary; older turns kept".into(),
                )
                .await;
                None
            }
            Err(error) => {
                self.warn(format!(
                    "compaction: the summary request failed ({error}); older turns kept"
                ))
                .await;
                None
            }
        }
    }

    pub(super) async fn warn(&mut self, message: String) {
        self.emitter.emit(Event::Warning { message }).await;
    }
}
