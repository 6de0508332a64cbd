//! The system prompt, and the user prompt's `@path` attachments.

use std::path::Path;

use crate::Error;

/// The system prompt: who the model is, where it works, and with what. Kept short; the tool schemas
/// carry the details of each tool.
pub fn system_prompt(cwd: &Path, tools: &[String], date: &str) -> String {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/bash".to_string());
    format!(
        "You are cox, a coding agent working directly in the user's local repository through tools.\n\
         \n\
         Environment:\n\
         - Working directory: {cwd}\n\
         - OS: {os} ({arch})\n\
         - Shell: {shell}\n\
         - Date: {date}\n\
         - Tools: {tools}\n\
         \n\
         Work like a careful senior engineer: read before you change, run the project's own build and \
         tests to check your work, and fix what fails. Keep going until the task is done, then answer \
         with a short, accurate account of what you did and what you found. Do not claim to have run \
         or checked anything you did not. If a tool reports an error, read it and adjust.",
        cwd = cwd.display(),
        os = std::env::consts::OS,
        arch = std::env::consts::ARCH,
        tools = tools.join(", "),
    )
}

/// Characters that make a word a glob pattern, left for the model to explore with its tools.
const GLOB_CHARS: &[char] = &['*', '?', '['];

/// Inlines the files named as `@path` in `prompt` (a word starting with `@`). Globs are left as
/// they are. A named file that does not exist is an error, so a typo is caught before any model
/// call. Each file is appended once, in order of first mention, in a `<file path="…">` block.
pub fn expand_attachments(prompt: &str, cwd: &Path) -> Result<String, Error> {
    let mut attached: Vec<(String, String)> = Vec::new();
    for word in prompt.split_whitespace() {
        let Some(reference) = word.strip_prefix('@') else {
            continue;
        };
        if reference.is_empty() || reference.contains(GLOB_CHARS) {
            continue;
        }
        // "see @README.md." — trailing punctuation belongs to the sentence, not the path.
        let trimmed = reference.trim_end_matches([',', '.', ';', ':', '!', '?', ')', '"', '\'']);
        let candidates = [reference, trimmed];
        let found = candidates
            .iter()
            .find(|c| !c.is_empty() && cwd.join(c).is_file());
        let Some(path) = found else {
            return Err(Error::Attachment {
                path: cwd.join(trimmed),
            });
        };
        if attached.iter().any(|(p, _)| p == path) {
            continue;
        }
        let full = cwd.join(path);
        let bytes = fs_err::read(&full)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::AttachmentNotText {
            path: path.to_string(),
        })?;
        attached.push((path.to_string(), text));
    }
    if attached.is_empty() {
        return Ok(prompt.to_string());
    }
    let mut out = prompt.to_string();
    for (path, text) in attached {
        out.push_str(&format!("\n\n<file path=\"{path}\">\n{text}"));
        if !text.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("</file>");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlines_files_skips_globs_and_emails() {
        let dir = std::env::temp_dir().join(format!("cox-prompt-{}", std::process::id()));
        fs_err::create_dir_all(dir.join("docs")).unwrap();
        fs_err::write(dir.join("docs/a.md"), "alpha\n").unwrap();
        let out =
            expand_attachments("read @docs/a.md, then @src/*.js; mail me@x.org", &dir).unwrap();
        assert_eq!(
            out,
            "read @docs/a.md, then @src/*.js; mail me@x.org\n\n<file path=\"docs/a.md\">\nalpha\n</file>"
        );
        let err = expand_attachments("see @docs/missing.md", &dir).unwrap_err();
        assert!(err.to_string().contains("docs/missing.md"), "{err}");
    }
}
