//! Models trained on the Codex CLI often send a patch through the shell:
//! `apply_patch <<'EOF' … EOF`, optionally after `cd DIR &&`, or as argv `["apply_patch", PATCH]`.
//! Such a command is routed to the patch engine instead of a shell that has no `apply_patch`.

/// A patch found in a shell command: the directory it applies in (from `cd DIR &&`) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellPatch {
    pub cd: Option<String>,
    pub patch: String,
}

fn is_apply_patch(word: &str) -> bool {
    word == "apply_patch" || word == "applypatch"
}

/// Recognises a patch in a shell command given as argv.
pub fn from_argv(argv: &[String]) -> Option<ShellPatch> {
    match argv {
        [program, patch] if is_apply_patch(program) => Some(ShellPatch {
            cd: None,
            patch: patch.clone(),
        }),
        [shell, flag, script]
            if matches!(
                shell.as_str(),
                "bash" | "sh" | "zsh" | "/bin/bash" | "/bin/sh"
            ) && matches!(flag.as_str(), "-c" | "-lc") =>
        {
            from_script(script)
        }
        _ => None,
    }
}

/// Recognises `[cd DIR &&] apply_patch <<[-]['"]DELIM['"] … DELIM` in a shell script. `DIR` is
/// one literal word as the shell reads it (`sub`, `'my dir'`, `"my dir"`, `my\ dir`); a directory
/// the shell would expand (`$HOME`, `~`, a glob) is not recognised, and the script runs as it is.
pub fn from_script(script: &str) -> Option<ShellPatch> {
    let (header, body) = script.trim_start().split_once('\n')?;
    let (cd, invocation) = split_cd(header)?;
    let after = invocation.strip_prefix("<<")?;
    let (strip_tabs, after) = match after.strip_prefix('-') {
        Some(tail) => (true, tail),
        None => (false, after),
    };
    let delimiter = after.trim().trim_matches(|c| c == '\'' || c == '"');
    if delimiter.is_empty() || delimiter.contains(char::is_whitespace) {
        return None;
    }
    let mut patch = Vec::new();
    let mut lines = body.lines();
    let mut closed = false;
    for line in lines.by_ref() {
        let line = if strip_tabs {
            line.trim_start_matches('\t')
        } else {
            line
        };
        if line.trim_end() == delimiter {
            closed = true;
            break;
        }
        patch.push(line);
    }
    // Nothing but blank space may follow the heredoc: anything else is a real shell script.
    if !closed || lines.any(|line| !line.trim().is_empty()) {
        return None;
    }
    Some(ShellPatch {
        cd,
        patch: patch.join("\n") + "\n",
    })
}

/// What follows `apply_patch` at the start of `rest`, from its `<<` on.
fn invocation(rest: &str) -> Option<&str> {
    let rest = rest.trim_start();
    let program_len = rest.find(|c: char| c.is_whitespace() || c == '<')?;
    is_apply_patch(&rest[..program_len]).then(|| rest[program_len..].trim_start())
}

/// Splits a heredoc's first line into the directory of a leading `cd DIR &&` (if any) and what
/// follows `apply_patch` (from its `<<` on). Each `&&` is tried, so a quoted `&&` inside the
/// directory's name is no obstacle; the `cd` part must be exactly `cd` and one literal word.
fn split_cd(header: &str) -> Option<(Option<String>, &str)> {
    if let Some(found) = invocation(header) {
        return Some((None, found));
    }
    header.match_indices("&&").find_map(|(at, _)| {
        let found = invocation(&header[at + 2..])?;
        match cox_sandbox::command::literal_words(&header[..at])?.as_slice() {
            [cd, dir] if cd == "cd" && !dir.is_empty() => Some((Some(dir.clone()), found)),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "*** Begin Patch\n*** Add File: a\n+x\n*** End Patch\n";

    #[test]
    fn recognises_heredoc_forms() {
        let found = from_script(&format!("apply_patch <<'EOF'\n{PATCH}EOF\n")).unwrap();
        assert_eq!(
            found,
            ShellPatch {
                cd: None,
                patch: PATCH.into()
            }
        );
        let found =
            from_script(&format!("cd sub && apply_patch <<\"PATCH\"\n{PATCH}PATCH")).unwrap();
        assert_eq!(found.cd.as_deref(), Some("sub"));
        let argv = vec![
            "bash".to_string(),
            "-lc".to_string(),
            format!("applypatch <<EOF\n{PATCH}EOF"),
        ];
        assert!(from_argv(&argv).is_some());
        assert!(from_argv(&["apply_patch".to_string(), PATCH.to_string()]).is_some());
    }

    #[test]
    fn cd_takes_one_literal_word_as_the_shell_reads_it() {
        let dir = |prefix: &str| {
            from_script(&format!("{prefix}apply_patch <<'PATCH'\n{PATCH}PATCH\n")).map(|f| f.cd)
        };
        assert_eq!(dir("cd 'foo bar' && "), Some(Some("foo bar".into())));
        assert_eq!(dir("cd \"foo bar\" && "), Some(Some("foo bar".into())));
        assert_eq!(dir("cd foo\\ bar &&"), Some(Some("foo bar".into())));
        assert_eq!(dir("cd 'a && b' && "), Some(Some("a && b".into())));
        assert_eq!(dir("  cd sub&&"), Some(Some("sub".into())));
        // What the shell would expand, or more than a `cd`, is left to the shell.
        for prefix in [
            "cd $HOME && ",
            "cd ~/x && ",
            "cd a b && ",
            "ls && ",
            "cd a || ",
            "cd && ",
        ] {
            assert_eq!(dir(prefix), None, "{prefix}");
        }
    }

    #[test]
    fn leaves_other_scripts_alone() {
        assert!(from_script("echo apply_patch").is_none());
        assert!(
            from_script(&format!("apply_patch <<'EOF'\n{PATCH}EOF\nrm -rf /tmp/x\n")).is_none()
        );
        assert!(from_script(&format!("apply_patch <<'EOF'\n{PATCH}")).is_none());
        assert!(from_script("apply_patchx <<EOF\nEOF").is_none());
    }
}
