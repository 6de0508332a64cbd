//! Which commands only read: the one answer to that question in cox. Planning's shell admits only
//! these, and the `untrusted` approval policy runs these without asking; both ask this module.
//!
//! A command line is split into its simple commands first ([`crate::command::split`]), so every
//! command of a list, a pipeline, a subshell or a substitution must read only on its own:
//! `cat a; rm b` and `cat $(rm x)` are not read-only. A command with a redirection is never
//! read-only (`echo x > f` writes). Programs that can write through an option are admitted only
//! without that option (`find -delete`, `sort -o`, `git branch NAME`).

use crate::command::{SimpleCommand, split};

/// Programs that only read, whatever their arguments (with the exceptions in [`reads_only`]).
const READERS: &[&str] = &[
    "ls", "cat", "head", "tail", "wc", "grep", "rg", "find", "pwd", "tree", "file", "stat", "du",
    "sort", "uniq", "cut", "tr", "diff", "echo", "which", "basename", "dirname", "realpath",
    "true", "false",
];

/// git subcommands that only read.
const GIT_READERS: &[&str] = &[
    "status",
    "log",
    "diff",
    "show",
    "ls-files",
    "grep",
    "blame",
    "rev-parse",
    "describe",
    "branch",
];

/// Options of `find` that write, delete or run something.
const FIND_WRITERS: &[&str] = &[
    "-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls",
];

/// Options of `git branch` that only list; anything else (a name, `-d`, `-m`) changes branches.
const GIT_BRANCH_LISTING: &[&str] = &[
    "-a",
    "-r",
    "-v",
    "-vv",
    "--all",
    "--remotes",
    "--list",
    "--show-current",
    "--verbose",
    "--no-color",
    "--color",
];

/// Whether `command` only reads: a known reader, no redirection, no writing option.
pub fn reads_only(command: &SimpleCommand) -> bool {
    why_not_read_only(command).is_none()
}

/// Why `command` is not read-only, or `None` when it is.
pub fn why_not_read_only(command: &SimpleCommand) -> Option<String> {
    let Some(program) = command.words.first() else {
        return Some("an empty command".into());
    };
    if !command.redirects.is_empty() {
        return Some(format!("`{}` redirects its output", command.text()));
    }
    let program = program.rsplit('/').next().unwrap_or(program);
    let args = &command.words[1..];
    let has = |options: &[&str]| args.iter().any(|a| options.contains(&a.as_str()));
    match program {
        "git" => match args.first().map(String::as_str) {
            Some("branch")
                if args[1..]
                    .iter()
                    .all(|a| GIT_BRANCH_LISTING.contains(&a.as_str())) =>
            {
                None
            }
            Some("branch") => Some("`git branch` with a name or option may change branches".into()),
            Some(sub) if GIT_READERS.contains(&sub) => None,
            _ => Some("that git subcommand may write".into()),
        },
        "find" if has(FIND_WRITERS) => Some("find may only search".into()),
        "sort"
            if args
                .iter()
                .any(|a| a == "-o" || a.starts_with("--output") || a.starts_with("-o")) =>
        {
            Some("`sort -o` writes a file".into())
        }
        other if READERS.contains(&other) => None,
        other => Some(format!("`{other}` is not a read-only command")),
    }
}

/// A command line that does not only read, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct NotReadOnly {
    pub reason: String,
}

/// Checks that every simple command of `line` only reads. A line that cannot be split is not
/// read-only (nothing is guessed).
pub fn line_reads_only(line: &str) -> Result<(), NotReadOnly> {
    let commands = split(line).map_err(|e| NotReadOnly {
        reason: e.to_string(),
    })?;
    if commands.is_empty() {
        return Err(NotReadOnly {
            reason: "an empty command".into(),
        });
    }
    match commands.iter().find_map(why_not_read_only) {
        Some(reason) => Err(NotReadOnly { reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::line_reads_only;

    #[test]
    fn readers_and_writers() {
        let ok = |line: &str| line_reads_only(line).is_ok();
        for line in [
            "ls -la src",
            "grep -rn getUser src | head -20",
            "git log --oneline -5",
            "git status && git diff",
            "git branch -a",
            "git describe --tags",
            "cat a | tr a-z A-Z | sort | uniq -c",
            "find . -name '*.rs'",
        ] {
            assert!(ok(line), "{line} should read only");
        }
        for line in [
            "rm -rf src",
            "echo x > file",
            "cat a; rm b",
            "git commit -am x",
            "git branch new-feature",
            "git branch -D main",
            "find . -delete",
            "find . -exec rm {} ;",
            "cat $(rm x)",
            "echo `touch f`",
            "sort -o out.txt in.txt",
            "sed -i s/a/b/ f",
            "(cd src && rm x)",
            "cat 'unclosed",
            "",
        ] {
            assert!(!ok(line), "{line} should not count as read-only");
        }
    }
}
