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
/// Shortening a recent output keeps at least this many of its bytes.
const SHORTEST_OUTPUT: usize = 256;
/// The note a shortened output carries, at most.
const SHORTENED_NOTE_BYTES: usize = 120;

/// `text` cut to about `keep` bytes: its start and its end, with the number of bytes cut.
fn head_and_tail(text: &str, keep: usize) -> String {
    let (head, cut, tail) = cox_tools::budget::ends(text, keep);
    format!("{head}\n[… {cut} bytes cut when the context was compacted …]\n{tail}")
}

const SUMMARY_INSTRUCTIONS: &str = "You are compacting a coding agent's conversation so that the work \
can continue in a smaller context. Write a handoff summary of the conversation below for the agent \
that continues it: what was asked, what was done (files changed, commands run and their results), \
what was learned about the code, decisions made and why, and what remains to do. Keep exact file \
paths, names, error messages and numbers. Do not invent anything. Answer with the summary only.";

pub const SUMMARY_HEADER: &str =
    "[Summary of the earlier conversation, written when the context was compacted]";

impl Session {
    /// Tokens the next request would occupy: the provider's last count plus an estimate of what
    /// was added since — but never less than our own count of the whole request, so a server that
    /// under-reports (or reports nothing) cannot push a request past the window. Far from the
    /// threshold, 4 bytes a token decides; near it, the tokenizer counts.
    pub(super) fn estimate_tokens(&self) -> u64 {
        let mut all = self.fixed_texts();
        all.extend(self.item_texts(0));
        let rough_all = context::approximate(all.iter().map(|t| t.len()).sum());
        let (known, added) = match self.baseline {
            Some(baseline) => (
                baseline,
                self.item_texts(self.counted_items.min(self.history.len())),
            ),
            None => (0, Vec::new()),
        };
        let rough =
            (known + context::approximate(added.iter().map(|t| t.len()).sum())).max(rough_all);
        // Dense text (numbers, JSON) runs near 2 bytes a token: the rough figure decides only
        // when even twice it stays below the limit.
        if rough < self.threshold().min(self.budget()) / 2 {
            return rough;
        }
        let reported = match self.baseline {
            Some(_) => known + context::count(&self.config.settings.model, &added),
            None => 0,
        };
        reported.max(self.count_whole())
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
            .map(context::item_text)
            .collect()
    }

    /// Tokens kept free for the answer: `max_output_tokens`, or without it an eighth of the
    /// window (at most 8192).
    fn output_reserve(&self) -> u64 {
        match self.config.settings.max_output_tokens {
            Some(tokens) => u64::from(tokens),
            None => (self.config.context_window / 8).min(8192),
        }
    }

    /// What a request may occupy: the window less the answer's reservation.
    fn budget(&self) -> u64 {
        self.config
            .context_window
            .saturating_sub(self.output_reserve())
    }

    /// Compacts when the threshold (or the budget, if lower) is reached or a compaction was asked
    /// for; then makes sure the request fits, or says why it cannot before anything is sent.
    pub(super) async fn maybe_compact(&mut self) -> Result<(), String> {
        let requested = self
            .compact_requested
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        let mut tokens = self.estimate_tokens();
        if requested {
            self.compact(CompactReason::Requested).await;
            tokens = self.estimate_tokens();
        } else if tokens >= self.threshold().min(self.budget()) {
            self.compact(CompactReason::Threshold).await;
            tokens = self.estimate_tokens();
        }
        self.fits(tokens)
    }

    /// Whether a request of `tokens` plus the answer's reservation fits the window; why not if
    /// not.
    fn fits(&self, tokens: u64) -> Result<(), String> {
        let budget = self.budget();
        if tokens <= budget {
            return Ok(());
        }
        let fixed = context::count(&self.config.settings.model, &self.fixed_texts());
        let window = self.config.context_window;
        let reserve = self.output_reserve();
        Err(if fixed > budget {
            format!(
                "the system prompt, pinned block (task, AGENTS.md, rules, plan, directives) and tool \
                 schemas take about {fixed} tokens, more than the {budget} the {window}-token window \
                 leaves beside {reserve} for the answer; nothing was sent. Shorten AGENTS.md or the \
                 rules, lower max_output_tokens, or use a model with a larger window"
            )
        } else {
            format!(
                "the conversation takes about {tokens} tokens even after compaction, more than the \
                 {budget} the {window}-token window leaves beside {reserve} for the answer; nothing \
                 was sent. Start a new session, or use a model with a larger window"
            )
        })
    }

    /// Index where the last `KEEP_GROUPS` response groups begin (a user message or a response's
    /// first item); everything before it may be compacted. Never splits a call from its result.
    fn keep_from(&self) -> usize {
        let starts: Vec<usize> = (0..self.history.len())
            .filter(|&i| match &self.history[i] {
                Item::User { .. } => true,
                // A response's items (reasoning, commentary, text, calls) form one group.
                Item::Assistant { .. }
                | Item::Commentary { .. }
                | Item::Reasoning { .. }
                | Item::ToolCall(_) => !matches!(
                    i.checked_sub(1).map(|p| &self.history[p]),
                    Some(
                        Item::ToolCall(_)
                            | Item::Assistant { .. }
                            | Item::Commentary { .. }
                            | Item::Reasoning { .. }
                    )
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
            // Every turn is recent; only their outputs can give way, and only if they must.
            let shortened = self.shorten_outputs();
            if shortened == 0 {
                let message = format!(
                    "the context is at about {before} of {} tokens, but every turn is recent: nothing to compact yet",
                    self.config.context_window
                );
                self.warn(message).await;
                return;
            }
            self.finish_compaction(reason, before, 0, 0, shortened)
                .await;
            return;
        }
        let mut elided = 0;
        for item in &mut self.history[..keep_from] {
            // Old results' images are dropped first: each is resent with every request.
            if let Item::ToolResult { images, .. } = item
                && !images.is_empty()
            {
                images.clear();
                elided += 1;
            }
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
        self.forget_counts();
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
            self.forget_counts();
        }
        let shortened = self.shorten_outputs();
        self.finish_compaction(reason, before, elided, summarized, shortened)
            .await;
    }

    async fn finish_compaction(
        &mut self,
        reason: CompactReason,
        before: u64,
        elided: usize,
        summarized: usize,
        shortened: usize,
    ) {
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
                outputs_shortened: shortened,
                tokens_before: before,
                tokens_after: after,
            })
            .await;
    }

    /// While the request would not fit beside the answer's reservation, cuts the largest tool
    /// outputs (recent ones included) to their head and tail, halving what each keeps, down to
    /// [`SHORTEST_OUTPUT`] bytes. Returns how many outputs were cut.
    fn shorten_outputs(&mut self) -> usize {
        let budget = self.budget();
        let mut cut: Vec<usize> = Vec::new();
        let mut keep = self
            .history
            .iter()
            .filter_map(|item| match item {
                Item::ToolResult { output, .. } => Some(output.len()),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            / 2;
        while keep >= SHORTEST_OUTPUT {
            self.forget_counts();
            if self.estimate_tokens() <= budget {
                break;
            }
            for (index, item) in self.history.iter_mut().enumerate() {
                if let Item::ToolResult { output, .. } = item
                    && output.len() > keep + SHORTENED_NOTE_BYTES
                {
                    *output = head_and_tail(output, keep);
                    if !cut.contains(&index) {
                        cut.push(index);
                    }
                }
            }
            keep /= 2;
        }
        self.forget_counts();
        cut.len()
    }

    /// The history was changed in place: neither the provider's count nor ours holds any more.
    fn forget_counts(&mut self) {
        self.baseline = None;
        self.counted_items = 0;
        self.whole_count.set(None);
    }

    /// Our own count of the whole request, counting only what was appended since the last time
    /// (the history only grows between compactions; a change in place or to the instructions
    /// forgets the cache).
    fn count_whole(&self) -> u64 {
        let model = &self.config.settings.model;
        let (from, mut tokens) = match self.whole_count.get() {
            Some((items, tokens)) if items <= self.history.len() => (items, tokens),
            _ => (0, context::count(model, &self.fixed_texts())),
        };
        tokens += context::count(model, &self.item_texts(from));
        self.whole_count.set(Some((self.history.len(), tokens)));
        tokens
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
            reasoning: self.config.settings.reasoning.clone(),
            service_tier: self.config.settings.service_tier.clone(),
            verbosity: None,
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
