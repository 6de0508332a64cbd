//! The approval policy as a pure function: a request, the policy and the grants in force → allow,
//! ask, or deny, with the reason. No I/O here; the session asks the person when the answer is `Ask`.
//!
//! - `untrusted`: everything is asked for but known-safe read-only commands (and what a grant
//!   covers);
//! - `on-request`: commands run inside the sandbox without asking; leaving it is asked for;
//! - `never`: nothing is asked; what would need asking is denied, and the model is told why.
//!
//! Compound commands are split first (see [`crate::command`]): every simple command must be
//! allowed on its own, so a grant for `git status` never covers `git status && rm -rf ~`.

use crate::classify::reads_only;
use crate::command::SimpleCommand;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Untrusted,
    OnRequest,
    Never,
}

/// What is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A shell command: its simple commands, and whether it asks to run outside the sandbox.
    Command {
        commands: Vec<SimpleCommand>,
        escalate: bool,
    },
    /// An edit of files (inside the writable roots; the path layer refuses the rest).
    Edit,
}

/// A standing permission: a command prefix (`["git", "push"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub prefix: Vec<String>,
}

/// Programs that run whatever their arguments say (shells, interpreters, launchers): a grant for
/// one of them binds the whole command (`sh build.sh`), never the program (`sh` would cover
/// `sh -c 'anything'`).
const RUNS_ITS_ARGUMENTS: &[&str] = &[
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "fish",
    "csh",
    "tcsh",
    "busybox",
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    "node",
    "nodejs",
    "deno",
    "bun",
    "perl",
    "ruby",
    "php",
    "lua",
    "luajit",
    "Rscript",
    "R",
    "julia",
    "tclsh",
    "wish",
    "osascript",
    "pwsh",
    "env",
    "xargs",
    "sudo",
    "doas",
    "su",
    "nohup",
    "timeout",
    "nice",
    "ionice",
    "time",
    "exec",
    "eval",
    "command",
    "builtin",
    "source",
    ".",
    "npx",
    "pnpx",
    "bunx",
    "uvx",
    "pipx",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "sed",
    "find",
    "make",
    "watch",
    "strace",
    "ltrace",
    "gdb",
    "chroot",
    "unshare",
    "nsenter",
    "setsid",
    "flock",
    "parallel",
    "ssh",
    "script",
    "expect",
    "java",
];

fn runs_its_arguments(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    let versioned = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    RUNS_ITS_ARGUMENTS.contains(&base) || RUNS_ITS_ARGUMENTS.contains(&versioned)
}

impl Grant {
    /// The grant a "yes for this command" gives: the program and, when it has one, its
    /// subcommand (`git push`, `cargo test`, `npm publish`); for a program that runs its
    /// arguments (a shell, an interpreter, `env`, `xargs`, …) the whole command.
    pub fn for_command(command: &SimpleCommand) -> Grant {
        let words = &command.words;
        if words
            .first()
            .is_some_and(|p| runs_its_arguments(p) || p.contains('='))
        {
            return Grant {
                prefix: words.clone(),
            };
        }
        let mut prefix: Vec<String> = words.iter().take(1).cloned().collect();
        if let Some(sub) = words
            .get(1)
            .filter(|w| !w.starts_with('-') && !w.contains('/') && !w.contains('.'))
        {
            prefix.push(sub.clone());
        }
        Grant { prefix }
    }

    fn covers(&self, command: &SimpleCommand) -> bool {
        !self.prefix.is_empty()
            && command.words.len() >= self.prefix.len()
            && command.words[..self.prefix.len()] == self.prefix[..]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Ask { reason: String },
    Deny { reason: String },
}

/// The decision for `request` under `policy`, given `grants`.
pub fn decide(request: &Request, policy: Policy, grants: &[Grant]) -> Decision {
    let ask = |reason: String| match policy {
        Policy::Never => Decision::Deny {
            reason: format!(
                "{reason}, and the approval policy is `never`, so no one can approve it"
            ),
        },
        Policy::Untrusted | Policy::OnRequest => Decision::Ask { reason },
    };
    let granted = |c: &SimpleCommand| grants.iter().any(|g| g.covers(c));
    match request {
        Request::Edit => match policy {
            Policy::Untrusted => ask("editing files needs approval in `untrusted` mode".into()),
            Policy::OnRequest | Policy::Never => Decision::Allow,
        },
        Request::Command { commands, escalate } => {
            if *escalate {
                // Under `never` nothing leaves the sandbox, whatever was granted before.
                return match commands.iter().find(|c| !granted(c)) {
                    None if !commands.is_empty() && policy != Policy::Never => Decision::Allow,
                    _ => ask("the command asks to run outside the sandbox".into()),
                };
            }
            match policy {
                Policy::OnRequest | Policy::Never => Decision::Allow,
                Policy::Untrusted => {
                    match commands.iter().find(|c| !reads_only(c) && !granted(c)) {
                        None => Decision::Allow,
                        Some(c) => ask(format!("`{}` is not a known read-only command", c.text())),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::split;

    fn command(line: &str, escalate: bool) -> Request {
        Request::Command {
            commands: split(line).unwrap(),
            escalate,
        }
    }

    fn grant(prefix: &str) -> Grant {
        Grant {
            prefix: prefix.split_whitespace().map(str::to_string).collect(),
        }
    }

    fn short(decision: Decision) -> &'static str {
        match decision {
            Decision::Allow => "allow",
            Decision::Ask { .. } => "ask",
            Decision::Deny { .. } => "deny",
        }
    }

    #[test]
    fn the_table() {
        use Policy::*;
        let none: &[Grant] = &[];
        let git_status = [grant("git status")];
        let git_push = [grant("git push")];
        let npm_publish = [grant("npm publish")];
        let cargo = [grant("cargo")];
        let sh_build = [grant("sh build.sh")];
        let cases: Vec<(Request, Policy, &[Grant], &str)> = vec![
            (command("ls -la", false), Untrusted, none, "allow"),
            (
                command("git status && git diff", false),
                Untrusted,
                none,
                "allow",
            ),
            (command("cat a | grep b", false), Untrusted, none, "allow"),
            (command("cargo test", false), Untrusted, none, "ask"),
            (command("echo x > f", false), Untrusted, none, "ask"),
            (command("find . -delete", false), Untrusted, none, "ask"),
            (command("git push", false), Untrusted, none, "ask"),
            (command("git push", false), Untrusted, &git_push, "allow"),
            (
                command("git status && rm -rf ~", false),
                Untrusted,
                &git_status,
                "ask",
            ),
            (command("echo $(rm -rf ~)", false), Untrusted, none, "ask"),
            (command("cargo test", false), OnRequest, none, "allow"),
            (command("cargo test", true), OnRequest, none, "ask"),
            (
                command("npm publish", true),
                OnRequest,
                &npm_publish,
                "allow",
            ),
            (
                command("git status && rm -rf ~", true),
                OnRequest,
                &git_status,
                "ask",
            ),
            (command("cargo test", false), Never, none, "allow"),
            (command("cargo test", true), Never, none, "deny"),
            (command("cargo build", false), Untrusted, &cargo, "allow"),
            (command("rm x", false), Never, none, "allow"),
            (command("npm publish", true), Never, &npm_publish, "deny"),
            (command("sh build.sh", false), Untrusted, &sh_build, "allow"),
            (
                command("sh -c 'rm -rf ~'", false),
                Untrusted,
                &sh_build,
                "ask",
            ),
            (
                command("sh -c 'rm -rf ~'", true),
                OnRequest,
                &sh_build,
                "ask",
            ),
            (command("sort -o x y", false), Untrusted, none, "ask"),
            (
                command("git grep -O'sh -c x' q", false),
                Untrusted,
                none,
                "ask",
            ),
            (
                command("cat <<EOF\n$(rm x)\nEOF", false),
                Untrusted,
                none,
                "ask",
            ),
            (Request::Edit, Untrusted, none, "ask"),
            (Request::Edit, OnRequest, none, "allow"),
            (Request::Edit, Never, none, "allow"),
        ];
        for (request, policy, grants, expected) in cases {
            let got = short(decide(&request, policy, grants));
            assert_eq!(
                got, expected,
                "{request:?} under {policy:?} with {grants:?}"
            );
        }
    }

    #[test]
    fn grants_keep_program_and_subcommand() {
        let prefix = |line: &str| {
            let command = SimpleCommand {
                words: line.split_whitespace().map(str::to_string).collect(),
                redirects: Vec::new(),
                fed: false,
            };
            Grant::for_command(&command).prefix
        };
        assert_eq!(prefix("git push origin main"), ["git", "push"]);
        assert_eq!(prefix("cargo test --all"), ["cargo", "test"]);
        assert_eq!(prefix("rm -rf target"), ["rm"]);
        assert_eq!(prefix("python3 script.py"), ["python3", "script.py"]);
        assert_eq!(prefix("sh build.sh"), ["sh", "build.sh"]);
        assert_eq!(
            prefix("/usr/bin/python3.12 -m pytest"),
            ["/usr/bin/python3.12", "-m", "pytest"]
        );
        assert_eq!(prefix("env FOO=1 make"), ["env", "FOO=1", "make"]);
    }

    #[test]
    fn never_says_why() {
        let Decision::Deny { reason } = decide(&command("make deploy", true), Policy::Never, &[])
        else {
            panic!("not denied")
        };
        assert_eq!(
            reason,
            "the command asks to run outside the sandbox, and the approval policy is `never`, so no one can approve it"
        );
    }
}
