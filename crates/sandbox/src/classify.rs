//! Which commands only read: the one answer to that question in cox. Planning's shell admits only
//! these, and the `untrusted` approval policy runs these without asking; both ask this module.
//!
//! A command line is split into its simple commands first ([`crate::command::split`]), so every
//! command of a list, a pipeline, a subshell, a substitution or a here-document must read only on
//! its own: `cat a; rm b` and `cat $(rm x)` are not read-only. A command with a redirection, or
//! with a variable assignment before it (`GIT_PAGER=sh git log`), is never read-only.
//!
//! The rule is by admission, not by a list of known tricks: a program is read-only only when it
//! is on [`PROGRAMS`] and **every** option it is given is one that program's entry admits. An
//! option nobody listed — a new flag, a misspelling, an abbreviation — makes the command ask.
//! Programs with no option that writes or runs something admit any option (`ls`, `cat`, `grep`);
//! the rest list exactly what they admit (`sort` without `-o` and `--compress-program`, `uniq`
//! with at most one file, `find` with tests and `-print*` only, `git`'s reading subcommands
//! without `--output`, `-O`, `--ext-diff` or global `-c`, `rg` without `--pre`).

use crate::command::{SimpleCommand, split};

/// What a program admits.
#[derive(Clone, Copy)]
enum Options {
    /// No option of this program writes or runs anything.
    Any,
    /// Only these options (`-x` single letters may be combined, `--long` may take `=value`);
    /// `with_value` ones take the next word as their value.
    Only {
        flags: &'static [&'static str],
        with_value: &'static [&'static str],
        /// At most this many operands (files); `None`: any number.
        operands: Option<usize>,
    },
    /// Any option but these (for programs with very many harmless options).
    AllBut(&'static [&'static str]),
}

const PROGRAMS: &[(&str, Options)] = &[
    ("ls", Options::Any),
    ("cat", Options::Any),
    ("head", Options::Any),
    ("tail", Options::Any),
    ("wc", Options::Any),
    ("grep", Options::Any),
    ("egrep", Options::Any),
    ("fgrep", Options::Any),
    ("pwd", Options::Any),
    ("stat", Options::Any),
    ("du", Options::Any),
    ("cut", Options::Any),
    ("tr", Options::Any),
    ("diff", Options::Any),
    ("cmp", Options::Any),
    ("echo", Options::Any),
    ("printf", Options::AllBut(&["-v"])),
    ("which", Options::Any),
    ("basename", Options::Any),
    ("dirname", Options::Any),
    ("realpath", Options::Any),
    ("readlink", Options::Any),
    ("true", Options::Any),
    ("false", Options::Any),
    ("nl", Options::Any),
    ("od", Options::Any),
    (
        "xxd",
        Options::Only {
            flags: &["-a", "-b", "-C", "-e", "-E", "-i", "-p", "-u", "-R"],
            with_value: &["-c", "-g", "-l", "-o", "-s", "-n"],
            operands: Some(1),
        },
    ),
    ("file", Options::AllBut(&["-C", "--compile"])),
    ("tree", Options::AllBut(&["-o", "-R"])),
    ("rg", Options::AllBut(&["--pre", "--pre-glob"])),
    (
        "sort",
        Options::Only {
            flags: &[
                "-b",
                "-d",
                "-f",
                "-g",
                "-h",
                "-i",
                "-M",
                "-n",
                "-R",
                "-r",
                "-V",
                "-s",
                "-u",
                "-z",
                "-c",
                "-C",
                "--reverse",
                "--numeric-sort",
                "--human-numeric-sort",
                "--version-sort",
                "--unique",
                "--stable",
                "--ignore-case",
                "--ignore-leading-blanks",
                "--general-numeric-sort",
                "--month-sort",
                "--random-sort",
                "--zero-terminated",
                "--dictionary-order",
                "--check",
            ],
            with_value: &["-k", "-t", "--key", "--field-separator"],
            operands: None,
        },
    ),
    (
        "uniq",
        Options::Only {
            flags: &[
                "-c",
                "-d",
                "-D",
                "-i",
                "-u",
                "-z",
                "--count",
                "--repeated",
                "--unique",
                "--ignore-case",
                "--zero-terminated",
                "--all-repeated",
            ],
            with_value: &[
                "-f",
                "-s",
                "-w",
                "--skip-fields",
                "--skip-chars",
                "--check-chars",
            ],
            // `uniq IN OUT` writes OUT.
            operands: Some(1),
        },
    ),
];

/// `find`'s expressions that only test or print to standard output.
const FIND_ADMITS: &[&str] = &[
    "-name",
    "-iname",
    "-path",
    "-ipath",
    "-wholename",
    "-iwholename",
    "-regex",
    "-iregex",
    "-type",
    "-xtype",
    "-maxdepth",
    "-mindepth",
    "-size",
    "-mtime",
    "-mmin",
    "-atime",
    "-amin",
    "-ctime",
    "-cmin",
    "-newer",
    "-empty",
    "-perm",
    "-user",
    "-group",
    "-uid",
    "-gid",
    "-links",
    "-inum",
    "-samefile",
    "-lname",
    "-ilname",
    "-readable",
    "-writable",
    "-executable",
    "-print",
    "-print0",
    "-printf",
    "-ls",
    "-prune",
    "-depth",
    "-xdev",
    "-mount",
    "-follow",
    "-true",
    "-false",
    "-quit",
    "-not",
    "-and",
    "-or",
    "-a",
    "-o",
    "!",
    "(",
    ")",
    "-L",
    "-H",
    "-P",
    "-nouser",
    "-nogroup",
    "-regextype",
];

/// git subcommands that only read, with the options that would make them write or run something.
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
    "shortlog",
    "rev-list",
    "cat-file",
    "ls-tree",
];

/// Options of git's reading subcommands that write a file or run a program.
const GIT_DENIED: &[&str] = &[
    "--output",
    "-O",
    "--open-files-in-pager",
    "--ext-diff",
    "--textconv",
    "--exec",
    "--run",
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

/// Whether `command` only reads.
pub fn reads_only(command: &SimpleCommand) -> bool {
    why_not_read_only(command).is_none()
}

/// The option's name without its `=value`.
fn option_name(word: &str) -> &str {
    word.split_once('=').map_or(word, |(name, _)| name)
}

/// Checks `args` against an `Only` list.
fn admitted(
    program: &str,
    args: &[String],
    flags: &[&str],
    with_value: &[&str],
    operands: Option<usize>,
) -> Option<String> {
    let mut files = 0;
    let mut at = 0;
    while at < args.len() {
        let word = args[at].as_str();
        at += 1;
        if word == "--" {
            files += args.len() - at;
            break;
        }
        if !word.starts_with('-') || word == "-" {
            files += 1;
            continue;
        }
        let name = option_name(word);
        if with_value.contains(&name) {
            at += usize::from(!word.contains('='));
            continue;
        }
        if flags.contains(&name) {
            continue;
        }
        // Combined single letters (`-rn`), the last of which may take a value (`-rk2`).
        if !word.starts_with("--") && word.len() > 2 {
            let letters: Vec<String> = word[1..].chars().map(|c| format!("-{c}")).collect();
            let mut ok = true;
            for (n, letter) in letters.iter().enumerate() {
                if flags.contains(&letter.as_str()) {
                    continue;
                }
                if with_value.contains(&letter.as_str()) {
                    at += usize::from(n == letters.len() - 1);
                    break;
                }
                ok = false;
                break;
            }
            if ok {
                continue;
            }
        }
        return Some(format!(
            "`{program} {word}` is not an option cox knows to only read"
        ));
    }
    match operands {
        Some(most) if files > most => Some(format!(
            "`{program}` with {files} files may write the last one"
        )),
        _ => None,
    }
}

fn git(args: &[String]) -> Option<String> {
    // Global options before the subcommand: `-C DIR` is fine, anything else (`-c`, `--exec-path`,
    // `--git-dir`, `--config-env`) may run or redirect something.
    let mut at = 0;
    while let Some(word) = args.get(at).filter(|w| w.starts_with('-')) {
        match word.as_str() {
            "-C" => at += 2,
            "--no-pager" | "--no-optional-locks" | "-P" => at += 1,
            other => return Some(format!("`git {other}` may change what git runs")),
        }
    }
    let sub = args.get(at).map(String::as_str);
    let rest = args.get(at + 1..).unwrap_or_default();
    match sub {
        Some("branch")
            if rest
                .iter()
                .all(|a| GIT_BRANCH_LISTING.contains(&a.as_str())) =>
        {
            None
        }
        Some("branch") => Some("`git branch` with a name or option may change branches".into()),
        Some(sub) if GIT_READERS.contains(&sub) => rest
            .iter()
            .find(|a| {
                let name = option_name(a);
                GIT_DENIED.contains(&name) || (name.starts_with("-O") && name.len() > 2)
            })
            .map(|a| format!("`git {sub} {a}` writes a file or runs a program")),
        _ => Some("that git subcommand may write".into()),
    }
}

fn find(args: &[String]) -> Option<String> {
    args.iter()
        .filter(|a| a.starts_with('-') || matches!(a.as_str(), "!" | "(" | ")"))
        .find(|a| !FIND_ADMITS.contains(&a.as_str()))
        .map(|a| format!("`find {a}` may do more than search"))
}

/// Why `command` is not read-only, or `None` when it is.
pub fn why_not_read_only(command: &SimpleCommand) -> Option<String> {
    let Some(program) = command.words.first() else {
        return Some("an empty command".into());
    };
    if !command.redirects.is_empty() {
        return Some(format!(
            "`{}` redirects its input or output",
            command.text()
        ));
    }
    if program.contains('=') {
        return Some(format!("`{program}` sets a variable for what it runs"));
    }
    let program = program.rsplit('/').next().unwrap_or(program);
    let args = &command.words[1..];
    match program {
        "git" => return git(args),
        "find" => return find(args),
        _ => {}
    }
    let Some((_, options)) = PROGRAMS.iter().find(|(name, _)| *name == program) else {
        return Some(format!("`{program}` is not a read-only command"));
    };
    match *options {
        Options::Any => None,
        Options::AllBut(denied) => args
            .iter()
            .find(|a| {
                denied.iter().any(|d| {
                    let short = d.len() == 2 && a.starts_with('-') && !a.starts_with("--");
                    option_name(a) == *d || (short && a[1..].contains(&d[1..]))
                })
            })
            .map(|a| format!("`{program} {a}` writes a file or runs a program")),
        Options::Only {
            flags,
            with_value,
            operands,
        } => admitted(program, args, flags, with_value, operands),
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
            "git -C sub log -p",
            "git branch -a",
            "git describe --tags",
            "cat a | tr a-z A-Z | sort | uniq -c",
            "sort -rn -k2 -t, data.csv",
            "sort -k 2 file",
            "uniq -c in.txt",
            "find . -name '*.rs' -type f -print",
            "find src \\( -name a -o -name b \\) -print0",
            "rg -n --glob '*.rs' foo",
            "cat <<'EOF'\n$(rm x)\nEOF",
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
            "find . -fprintf out %p",
            "find . -newXY x",
            "cat $(rm x)",
            "echo `touch f`",
            "sort -o out.txt in.txt",
            "sort -ro out.txt in.txt",
            "sort --output=out.txt in.txt",
            "sort --compress-program=sh big",
            "uniq in.txt out.txt",
            "git diff --output=patch.txt",
            "git grep -Ovim foo",
            "git grep --open-files-in-pager=sh foo",
            "git -c core.pager=sh log",
            "git log --ext-diff",
            "rg --pre ./x foo",
            "rg --pre=./x foo",
            "tree -o out",
            "GIT_PAGER=sh git log",
            "PATH=.:$PATH; ls",
            "cat <<EOF\n$(rm x)\nEOF",
            "sed -i s/a/b/ f",
            "(cd src && rm x)",
            "cat 'unclosed",
            "",
        ] {
            assert!(!ok(line), "{line} should not count as read-only");
        }
    }
}
