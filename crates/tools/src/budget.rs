//! The guarantee that every tool result fits the session's output budget, and the cut to head
//! and tail it (and compaction) makes.

use crate::ToolOutput;

/// Room past the budget for the lines a tool adds around what it shows (a command's exit code
/// and duration, a note on how to go on).
const BUDGET_SLACK: usize = 512;

/// Every result fits the session's budget, whatever the tool: one that says more is cut to its
/// head and tail with a note (the journal keeps the whole in `full`). Tools page or truncate
/// themselves first; this is the guarantee, not the method.
pub(crate) fn within_budget(mut output: ToolOutput, budget: usize) -> ToolOutput {
    let limit = budget + BUDGET_SLACK;
    if output.output.len() <= limit {
        return output;
    }
    let text = std::mem::take(&mut output.output);
    let (head, cut, tail) = ends(&text, budget);
    output.output = format!(
        "{head}\n[… {cut} bytes cut: the result was longer than the output budget of {budget} bytes …]\n{tail}"
    );
    output.outcome.truncated = true;
    if output.full.is_none() {
        output.full = Some(text);
    }
    output
}

/// The first and last `keep / 2` bytes of `text` (on character boundaries) and how many bytes
/// lie between them: what a cut to head and tail keeps.
pub fn ends(text: &str, keep: usize) -> (&str, usize, &str) {
    let mut head = (keep / 2).min(text.len());
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len().saturating_sub(keep / 2).max(head);
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    (&text[..head], tail - head, &text[tail..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_past_the_budget_is_cut_to_head_and_tail_issue_14() {
        let long = format!("start {} end ✓", "é".repeat(10_000));
        let output = within_budget(ToolOutput::ok(long.clone()), 1000);
        assert!(
            output.output.len() <= 1000 + BUDGET_SLACK,
            "{}",
            output.output.len()
        );
        assert!(output.output.starts_with("start "));
        assert!(output.output.ends_with(" end ✓"));
        assert!(
            output
                .output
                .contains("longer than the output budget of 1000 bytes")
        );
        assert_eq!(output.full.as_deref(), Some(long.as_str()));
        assert!(output.outcome.truncated);
        let short = within_budget(ToolOutput::ok("fine"), 1000);
        assert_eq!(short.output, "fine");
        assert!(short.full.is_none());
    }
}
