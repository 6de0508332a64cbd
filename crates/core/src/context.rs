//! What goes into every request besides the history: the pinned block, and how big the context is.
//!
//! **The pinned block** — the original task, the project's `AGENTS.md` files, the model's plan with
//! its step statuses, and every steering directive — is part of the system prompt, so it is sent
//! verbatim with every request and no compaction can touch it. It changes only when the plan or the
//! directives change; between such changes the system prompt and tool schemas form a byte-identical
//! prefix, which providers cache.
//!
//! **Token counts.** The provider's reported usage wins: after a response, the context is its input
//! plus output tokens. What was added since (tool results) is estimated at 4 bytes a token, which is
//! close for code and English text with current tokenizers. Near the compaction threshold the whole
//! request is counted properly: with OpenAI's o200k_base tokenizer for OpenAI models, and with the
//! 4-bytes approximation for others (Anthropic's tokenizer is not public). The tokenizer is loaded
//! only then, so ordinary short sessions never pay for it.

use std::path::Path;
use std::sync::OnceLock;

use cox_protocol::{Item, PlanStep};

/// `AGENTS.md` text kept in the pinned block at most (the rest is cut with a note).
pub const AGENTS_MD_LIMIT: usize = 32 * 1024;
/// Bytes per token in the approximation.
pub const BYTES_PER_TOKEN: u64 = 4;

/// The pinned block's parts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pinned {
    pub task: Option<String>,
    pub agents: Option<String>,
    /// `.cox/rules.toml`: every rule's text (their checks are enforced, not just read).
    pub rules: Option<String>,
    /// `cox run`: the plan document with every step's status and the current step, rendered.
    pub plan_run: Option<String>,
    pub plan: Option<Vec<PlanStep>>,
    pub directives: Vec<String>,
}

impl Pinned {
    /// The block as it is appended to the system prompt; empty when there is nothing to pin.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(task) = &self.task {
            out.push_str("\n\n## Pinned: the task, as the user gave it\n");
            out.push_str(task);
        }
        if let Some(agents) = &self.agents {
            out.push_str("\n\n## Pinned: project instructions (AGENTS.md)\n");
            out.push_str(agents);
        }
        if let Some(rules) = &self.rules {
            out.push_str(
                "\n\n## Pinned: project rules (enforced: an action that breaks one is blocked)\n",
            );
            out.push_str(rules);
        }
        if let Some(run) = &self.plan_run {
            out.push_str("\n\n## Pinned: the plan being executed (a fixed anchor: follow it)\n");
            out.push_str(run);
        }
        if let Some(plan) = &self.plan {
            out.push_str("\n\n## Pinned: plan\n");
            for step in plan {
                let mark = step.status.mark();
                out.push_str(&format!("- {mark} {}\n", step.step));
            }
        }
        if !self.directives.is_empty() {
            out.push_str(
                "\n\n## Pinned: the user's directives (they override earlier instructions)\n",
            );
            for directive in &self.directives {
                out.push_str(&format!("- {directive}\n"));
            }
        }
        out
    }
}

/// How a steering directive enters the conversation (it is also pinned).
pub fn directive_message(text: &str) -> String {
    format!(
        "[Correction from the user, from now on] {text}\nAcknowledge it in one line, adjust your plan ({} if you keep one), and continue.",
        cox_tools::update_plan::NAME
    )
}

/// Added to the conversation when the user interrupts a task.
pub const INTERRUPTED_NOTE: &str =
    "[The user interrupted the work here. Wait for their next message before doing more.]";

/// Marks the text of a response cut short by a pause.
/// Told to the model when its response was cut by the output limit.
pub fn truncated_note(reason: &str, cut_calls: &[String]) -> String {
    let calls = if cut_calls.is_empty() {
        String::new()
    } else {
        format!(
            " The tool call{} {} {} cut off and did not run.",
            if cut_calls.len() == 1 { "" } else { "s" },
            cut_calls.join(", "),
            if cut_calls.len() == 1 { "was" } else { "were" }
        )
    };
    format!(
        "[cox] Your last response was cut off by the output limit ({reason}).{calls} Continue from \
         where it stopped; keep each response shorter (smaller edits, fewer calls at once)."
    )
}

/// Told to the model when it answered with nothing at all.
pub const EMPTY_NOTE: &str = "[cox] Your last response was empty: no text and no tool call. \
     Continue the task, or give your final answer.";

pub const CUT_MARKER: &str = "\n[cut short: the user paused here]";

/// The `AGENTS.md` files from the repository root (nearest ancestor with `.git`, else the working
/// directory) down to the working directory, outermost first, each under its path; capped.
pub fn agents_md(cwd: &Path) -> Option<String> {
    let root = cwd
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or(cwd);
    let mut dirs: Vec<&Path> = cwd
        .ancestors()
        .take_while(|dir| dir.starts_with(root))
        .collect();
    dirs.reverse();
    let mut out = String::new();
    for dir in dirs {
        let path = dir.join("AGENTS.md");
        let Ok(text) = fs_err::read_to_string(&path) else {
            continue;
        };
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        out.push_str(&format!("<!-- {shown} -->\n{}\n", text.trim_end()));
    }
    if out.is_empty() {
        return None;
    }
    if out.len() > AGENTS_MD_LIMIT {
        out.truncate(out.floor_char_boundary(AGENTS_MD_LIMIT));
        out.push_str("\n[… AGENTS.md cut at 32 KiB …]");
    }
    Some(out)
}

/// The text of an item that counts toward a request: its words, a call's arguments, a result's
/// output; reasoning kept for the provider counts as itself (encrypted or signed, its size stands
/// for what the provider reads back).
pub fn item_text(item: &Item) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    match item {
        Item::User { text } | Item::Assistant { text } | Item::Commentary { text } => {
            Cow::Borrowed(text.as_str())
        }
        Item::ToolCall(call) => Cow::Borrowed(call.arguments.as_str()),
        Item::ToolResult { output, .. } => Cow::Borrowed(output.as_str()),
        Item::Reasoning { item, .. } => Cow::Owned(item.to_string()),
    }
}

/// The bytes an item contributes to a request (its text, and a call's name; wire overhead is
/// small and ignored).
pub fn item_bytes(item: &Item) -> usize {
    let name = match item {
        Item::ToolCall(call) => call.name.len(),
        _ => 0,
    };
    name + item_text(item).len()
}

pub fn approximate(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(BYTES_PER_TOKEN)
}

/// Whether `model` is one of OpenAI's, counted with o200k_base.
fn openai_family(model: &str) -> bool {
    ["gpt-", "o1", "o3", "o4", "codex"]
        .iter()
        .any(|p| model.starts_with(p))
}

fn o200k() -> Option<&'static tiktoken_rs::CoreBPE> {
    static BPE: OnceLock<Option<tiktoken_rs::CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

/// Counts the tokens of `texts` for `model`: exactly for OpenAI models, approximately otherwise.
pub fn count<T: AsRef<str>>(model: &str, texts: &[T]) -> u64 {
    match o200k().filter(|_| openai_family(model)) {
        Some(bpe) => texts
            .iter()
            .map(|t| bpe.encode_ordinary(t.as_ref()).len() as u64)
            .sum(),
        None => approximate(texts.iter().map(|t| t.as_ref().len()).sum()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cox_protocol::StepStatus;

    #[test]
    fn pinned_block_renders_every_part() {
        let pinned = Pinned {
            rules: None,
            plan_run: None,
            task: Some("Migrate the routes".into()),
            agents: Some("NEVER touch the real DB".into()),
            plan: Some(vec![PlanStep {
                step: "Convert getUser".into(),
                status: StepStatus::InProgress,
            }]),
            directives: vec!["Keep the wrapper".into()],
        };
        let text = pinned.render();
        for part in [
            "Migrate the routes",
            "NEVER touch the real DB",
            "- [>] Convert getUser",
            "- Keep the wrapper",
        ] {
            assert!(text.contains(part), "{text}");
        }
        assert_eq!(Pinned::default().render(), "");
    }

    #[test]
    fn agents_md_from_root_down_to_cwd() {
        let root = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(root.path().join(".git")).unwrap();
        fs_err::create_dir_all(root.path().join("app/web")).unwrap();
        fs_err::write(root.path().join("AGENTS.md"), "root rule\n").unwrap();
        fs_err::write(root.path().join("app/web/AGENTS.md"), "web rule\n").unwrap();
        let text = agents_md(&root.path().join("app/web")).unwrap();
        assert_eq!(
            text,
            "<!-- AGENTS.md -->\nroot rule\n<!-- app/web/AGENTS.md -->\nweb rule\n"
        );
    }

    #[test]
    fn an_oversized_agents_md_is_cut_on_a_character_boundary() {
        let root = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(root.path().join(".git")).unwrap();
        // "é" is two bytes; the header is odd-length, so the limit falls inside a character.
        let body = "é".repeat(AGENTS_MD_LIMIT);
        fs_err::write(root.path().join("AGENTS.md"), &body).unwrap();
        let text = agents_md(root.path()).unwrap();
        let (kept, marker) = text.split_once("\n[… AGENTS.md cut at 32 KiB …]").unwrap();
        assert_eq!(marker, "");
        assert!(kept.len() <= AGENTS_MD_LIMIT && kept.len() >= AGENTS_MD_LIMIT - 1);
        assert!(kept.starts_with("<!-- AGENTS.md -->\né"));
        assert!(kept.ends_with('é'));
    }

    #[test]
    fn counts_with_the_real_tokenizer_for_openai_models() {
        assert_eq!(count("gpt-5.3-codex", &["hello world"]), 2);
        assert_eq!(count("claude-opus-4-6", &["hello world"]), 3);
    }
}
