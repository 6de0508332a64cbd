//! Which commands destroy what cannot be had back — deleting files, discarding uncommitted work,
//! rewriting a remote's history — so steering holds them longer before they run (the grace
//! window's longer default). The line is split by [`crate::command::split`] (tree-sitter-bash), so
//! `cd x && rm -r build` and `$(git clean -fdx)` are seen; a line that cannot be parsed counts as
//! destructive (cox cannot tell what it runs, so a person gets the longer look).
//!
//! This is not a security boundary — the sandbox and approvals are. It decides only how long a
//! person has to stop an action they can see coming.

use crate::command::{SimpleCommand, split};

/// Why `line` is destructive, in a few words ("rm -r deletes a directory tree"); `None` when none
/// of its commands is.
pub fn destructive(line: &str) -> Option<String> {
    let commands = match split(line) {
        Ok(commands) => commands,
        Err(_) => return Some("cox cannot parse the command to tell what it runs".to_string()),
    };
    commands.iter().find_map(judge)
}

fn judge(command: &SimpleCommand) -> Option<String> {
    let words = program(&command.words);
    let (name, args) = words.split_first()?;
    let name = name.rsplit('/').next().unwrap_or(name);
    let flag = |short: char, long: &str| {
        args.iter().any(|a| {
            a == long || (a.starts_with('-') && !a.starts_with("--") && a[1..].contains(short))
        })
    };
    let reason = match name {
        "rm" if flag('r', "--recursive") || args.iter().any(|a| a == "-R") => {
            "rm -r deletes a directory tree"
        }
        "rm" | "unlink" | "rmdir" | "shred" => "it deletes files",
        "find" if args.iter().any(|a| a == "-delete") => "find -delete deletes files",
        "find"
            if args.iter().any(|a| a == "-exec" || a == "-execdir")
                && args.iter().any(|a| a == "rm") =>
        {
            "find -exec rm deletes files"
        }
        "truncate" => "truncate cuts files",
        "dd" if args.iter().any(|a| a.starts_with("of=")) => "dd overwrites its output",
        name if name.starts_with("mkfs") => "it formats a file system",
        "git" => return git(args),
        _ => return None,
    };
    Some(reason.to_string())
}

/// The command's own words: leading assignments and wrappers (`sudo`, `env`, `command`, `nice`,
/// `xargs`, …) skipped.
fn program(words: &[String]) -> &[String] {
    let mut rest = words;
    while let Some((first, tail)) = rest.split_first() {
        let is_assignment = first.contains('=') && !first.starts_with('-');
        let wrapper = matches!(
            first.rsplit('/').next().unwrap_or(first),
            "sudo" | "env" | "command" | "nice" | "nohup" | "time" | "exec" | "xargs" | "doas"
        );
        let option_of_wrapper = first.starts_with('-') && rest.len() != words.len();
        if is_assignment || wrapper || option_of_wrapper {
            rest = tail;
        } else {
            break;
        }
    }
    rest
}

fn git(args: &[String]) -> Option<String> {
    // Global options before the subcommand (`-C dir`, `-c key=value`, `--git-dir=…`).
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        match first.as_str() {
            "-C" | "-c" | "--git-dir" | "--work-tree" | "--namespace" => {
                rest = tail.get(1..).unwrap_or_default();
            }
            option if option.starts_with('-') => rest = tail,
            _ => break,
        }
    }
    let (sub, args) = rest.split_first()?;
    let has = |option: &str| args.iter().any(|a| a == option);
    let short = |c: char| {
        args.iter()
            .any(|a| a.starts_with('-') && !a.starts_with("--") && a[1..].contains(c))
    };
    let reason = match sub.as_str() {
        "reset" if has("--hard") || has("--merge") || has("--keep") => {
            "git reset --hard discards uncommitted work"
        }
        "clean" if !short('n') && !has("--dry-run") => "git clean deletes untracked files",
        "push"
            if short('f')
                || short('d')
                || args.iter().any(|a| {
                    a.starts_with("--force")
                        || a == "--delete"
                        || a == "--mirror"
                        || a == "--prune"
                        || (a.starts_with('+') && a.len() > 1)
                        || (a.starts_with(':') && a.len() > 1)
                }) =>
        {
            "a forced or deleting push rewrites the remote"
        }
        "checkout" if has("--") || has(".") || short('f') || has("--force") => {
            "git checkout of paths discards their changes"
        }
        "restore" if !has("--staged") || has("--worktree") => "git restore discards changes",
        "branch" if short('D') || (short('d') && has("--force")) => "it deletes a branch",
        "stash" if matches!(args.first().map(String::as_str), Some("drop" | "clear")) => {
            "it drops stashed work"
        }
        "rm" => "git rm deletes files",
        "filter-branch" | "filter-repo" => "it rewrites history",
        _ => return None,
    };
    Some(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::destructive;

    #[test]
    fn deleting_and_discarding_commands_are_destructive() {
        for line in [
            "rm -rf build",
            "rm -r -- src/legacy",
            "rm --recursive x",
            "rm notes.txt",
            "cd app && rm -R dist",
            "sudo rm -fr /tmp/x",
            "echo $(git clean -fdx)",
            "git reset --hard HEAD~1",
            "git -C repo reset --hard",
            "git clean -fd",
            "git push --force origin main",
            "git push -f",
            "git push origin +main",
            "git push --force-with-lease",
            "git push origin :old-branch",
            "git checkout -- src/app.js",
            "git checkout .",
            "git restore src/app.js",
            "git branch -D feature",
            "git stash drop",
            "find . -name '*.pyc' -delete",
            "find . -type f -exec rm {} +",
            "xargs rm < list",
            "truncate -s 0 log",
            "dd if=/dev/zero of=disk.img",
            "rm -rf 'unclosed",
        ] {
            assert!(destructive(line).is_some(), "{line} should be destructive");
        }
    }

    #[test]
    fn ordinary_commands_are_not() {
        for line in [
            "cargo test",
            "ls -la",
            "git status && git diff",
            "git push origin main",
            "git reset HEAD file",
            "git clean -n",
            "git checkout -b feature",
            "git restore --staged a.js",
            "grep -r rm src",
            "echo rm -rf /",
            "find . -name '*.rs'",
            "npm run build",
        ] {
            assert_eq!(destructive(line), None, "{line}");
        }
    }

    #[test]
    fn the_reason_names_the_danger() {
        assert_eq!(
            destructive("rm -rf build").as_deref(),
            Some("rm -r deletes a directory tree")
        );
        assert_eq!(
            destructive("git reset --hard").as_deref(),
            Some("git reset --hard discards uncommitted work")
        );
    }
}
