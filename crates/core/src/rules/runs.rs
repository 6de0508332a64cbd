//! What a shell line will actually execute, for `deny_command`: the programs behind the
//! wrappers, as the kernel will see them, and what cannot be known before it runs.
//!
//! Each simple command of the line (split by tree-sitter-bash in `cox_sandbox::command`, which
//! also resolves quoting, escapes and ANSI-C strings) is unwrapped:
//!
//! - **Variable prefixes** (`PGHOST=db psql`) are dropped; **paths** name their basename
//!   (`/usr/bin/psql`, `./psql`); **braces** are expanded (`{psql,x}` runs `psql x`).
//! - **Wrappers** run their command: `env`, `command`, `exec`, `builtin`, `nice`, `nohup`,
//!   `timeout`, `time`, `setsid`, `stdbuf`, `ionice`, `chrt`, `taskset`, `unbuffer`, `sudo`,
//!   `doas`, `xargs` (its arguments come from standard input: a placeholder stands for them),
//!   `find -exec`/`-execdir`/`-ok`/`-okdir`, `busybox`; `sh`/`bash`/`zsh`/`dash`/`ksh -c SCRIPT`
//!   recursively; `alias NAME=VALUE` counts as VALUE.
//! - **Scripts** run by a shell (`sh build.sh`, `./build.sh`, `source env.sh`) are read and their
//!   commands checked too.
//! - **Opaque**: what only running it would tell — `eval` of computed text, a command name that
//!   is a substitution or a variable (`$(echo psql)`, `$p`), a shell reading its script from
//!   standard input, code passed to an interpreter (`python -c`, `node -e`, `perl -e`, …), a
//!   script or program written during this session (by any interpreter: it could have been
//!   written to hide what it runs), a
//!   script cox cannot read. In a project with a `deny_command` rule, an opaque command needs the
//!   person's approval (see `Rules::check_command`).

use std::path::{Path, PathBuf};

use cox_sandbox::command::SimpleCommand;

/// Where scripts are found, and which were written during this session.
pub trait Scripts {
    /// The text of the script at `path` (absolute), if it can be read as text.
    fn read(&self, path: &Path) -> Option<String>;
    /// Whether the file at `path` was written since the session started.
    fn written(&self, path: &Path) -> bool;
}

/// No scripts known: every script is unreadable (so opaque).
pub struct NoScripts;

impl Scripts for NoScripts {
    fn read(&self, _: &Path) -> Option<String> {
        None
    }
    fn written(&self, _: &Path) -> bool {
        true
    }
}

/// What unwrapping found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Runs {
    /// Every command line that will run, as words (the command itself, then each it wraps).
    pub commands: Vec<Vec<String>>,
    /// Why some of it cannot be known before it runs.
    pub opaque: Vec<String>,
    /// Whether the command being unwrapped has its standard input fed by the line (wrappers
    /// pass it on to what they run).
    fed: bool,
}

/// How deep wrappers and scripts may nest before the line counts as opaque.
const MAX_DEPTH: usize = 8;

/// Programs that run code given on their command line with these options.
const INTERPRETERS: &[(&str, &[&str])] = &[
    ("python", &["-c"]),
    ("node", &["-e", "--eval", "-p", "--print"]),
    ("nodejs", &["-e", "--eval", "-p", "--print"]),
    ("deno", &["eval"]),
    ("bun", &["-e", "--eval", "-p", "--print"]),
    ("perl", &["-e", "-E"]),
    ("ruby", &["-e"]),
    ("php", &["-r"]),
    ("lua", &["-e"]),
    ("Rscript", &["-e"]),
    ("osascript", &["-e"]),
];

const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish"];

/// Everything `commands` (one shell line, split) will execute. `cwd` resolves relative script
/// paths (a `cd DIR` in the line moves it).
pub fn runs(commands: &[SimpleCommand], cwd: &Path, scripts: &dyn Scripts) -> Runs {
    let mut found = Runs::default();
    let mut dir = cwd.to_path_buf();
    for command in commands {
        found.fed = command.fed;
        unwrap(&command.words, &mut dir, scripts, 0, &mut found);
    }
    found
}

fn unwrap(
    words: &[String],
    dir: &mut PathBuf,
    scripts: &dyn Scripts,
    depth: usize,
    found: &mut Runs,
) {
    if depth > MAX_DEPTH {
        found
            .opaque
            .push("wrappers or scripts nest too deep to follow".into());
        return;
    }
    let start = words.iter().take_while(|w| is_assignment(w)).count();
    let mut words: Vec<String> = words[start..].iter().flat_map(|w| braces(w)).collect();
    let Some(first) = words.first().cloned() else {
        return;
    };
    if first.contains("$(") || first.contains('`') || first.starts_with('$') {
        found.opaque.push(format!(
            "the command's name (`{first}`) is computed when it runs"
        ));
        return;
    }
    let name = basename(&first);
    words[0] = name.clone();
    found.commands.push(words.clone());
    let args = &words[1..];
    let program = versionless(&name);
    match program.as_str() {
        "cd" => {
            if let Some(to) = args.first() {
                *dir = dir.join(to);
            }
        }
        "env" => unwrap_env(args, dir, scripts, depth, found),
        "command" => {
            if !args.iter().any(|a| a == "-v" || a == "-V") {
                unwrap(skip_options(args, &[]), dir, scripts, depth + 1, found);
            }
        }
        "exec" => unwrap(skip_options(args, &["-a"]), dir, scripts, depth + 1, found),
        "builtin" | "nohup" | "unbuffer" | "time" | "setsid" | "busybox" => {
            unwrap(skip_options(args, &[]), dir, scripts, depth + 1, found)
        }
        "nice" => unwrap(
            skip_options(args, &["-n", "--adjustment"]),
            dir,
            scripts,
            depth + 1,
            found,
        ),
        "stdbuf" => unwrap(
            skip_options(args, &["-i", "-o", "-e"]),
            dir,
            scripts,
            depth + 1,
            found,
        ),
        "ionice" => unwrap(
            skip_options(args, &["-c", "-n", "-p", "-P", "-u"]),
            dir,
            scripts,
            depth + 1,
            found,
        ),
        "sudo" | "doas" => unwrap(
            skip_options(
                args,
                &[
                    "-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-T", "-U", "-a",
                ],
            ),
            dir,
            scripts,
            depth + 1,
            found,
        ),
        "timeout" => {
            let rest = skip_options(args, &["-s", "--signal", "-k", "--kill-after"]);
            // The duration, then the command.
            unwrap(rest.get(1..).unwrap_or(&[]), dir, scripts, depth + 1, found);
        }
        "chrt" | "taskset" => {
            let rest = skip_options(args, &["-p", "--pid"]);
            unwrap(rest.get(1..).unwrap_or(&[]), dir, scripts, depth + 1, found);
        }
        "xargs" => {
            let rest = skip_options(
                args,
                &[
                    "-I",
                    "-n",
                    "-L",
                    "-P",
                    "-d",
                    "-E",
                    "-s",
                    "-a",
                    "--arg-file",
                    "--delimiter",
                    "--max-args",
                    "--max-procs",
                    "--replace",
                ],
            );
            let mut run: Vec<String> = if rest.is_empty() {
                vec!["echo".into()]
            } else {
                rest.to_vec()
            };
            // What xargs reads from standard input becomes arguments.
            run.push("…".into());
            unwrap(&run, dir, scripts, depth + 1, found);
        }
        "find" => {
            let mut at = 0;
            while at < args.len() {
                if matches!(args[at].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                    let end = args[at + 1..]
                        .iter()
                        .position(|a| a == ";" || a == "+")
                        .map_or(args.len(), |p| at + 1 + p);
                    unwrap(&args[at + 1..end], dir, scripts, depth + 1, found);
                    at = end;
                }
                at += 1;
            }
        }
        "alias" => {
            for definition in args {
                if let Some((_, value)) = definition.split_once('=') {
                    line(value, dir, scripts, depth + 1, found, "an alias");
                }
            }
        }
        "eval" => {
            let text = args.join(" ");
            if text.contains('$') || text.contains('`') {
                found
                    .opaque
                    .push("`eval` runs text that is only known when it runs".into());
            } else {
                line(&text, dir, scripts, depth + 1, found, "`eval`");
            }
        }
        "source" | "." => match args.first() {
            Some(path) => script(&dir.join(path), dir, scripts, depth, found),
            None => found.opaque.push(format!("`{name}` without a file")),
        },
        shell if SHELLS.contains(&shell) => unwrap_shell(&name, args, dir, scripts, depth, found),
        _ => {
            if let Some((_, options)) = INTERPRETERS.iter().find(|(n, _)| *n == program) {
                if inline_code(args, options) {
                    found
                        .opaque
                        .push(format!("`{name}` runs code given on its command line"));
                } else if let Some(file) = script_argument(args) {
                    let path = dir.join(file);
                    if scripts.read(&path).is_none() {
                        // Not there yet (made earlier in this very line?) or not text.
                        found
                            .opaque
                            .push(format!("cox cannot read {file}, which `{name}` runs"));
                    } else if scripts.written(&path) {
                        found.opaque.push(format!(
                            "`{name}` runs {file}, which was written during this session; cox \
                             cannot tell what it runs"
                        ));
                    }
                }
            } else if first.contains('/') {
                // A program run by its path: a shell script in it is read; a program written
                // during this session is opaque.
                let path = dir.join(&first);
                if is_shell_script(scripts, &path) {
                    script(&path, dir, scripts, depth, found);
                } else if scripts.written(&path) {
                    found.opaque.push(format!(
                        "`{first}` was written during this session; cox cannot tell what it runs"
                    ));
                }
            }
        }
    }
}

/// `env [-i] [-u NAME] [-C DIR] [-S STRING] [NAME=VALUE]… COMMAND…`
fn unwrap_env(
    args: &[String],
    dir: &mut PathBuf,
    scripts: &dyn Scripts,
    depth: usize,
    found: &mut Runs,
) {
    let mut at = 0;
    while at < args.len() {
        let arg = &args[at];
        if arg == "--" {
            at += 1;
            break;
        }
        if arg == "-S" || arg == "--split-string" {
            let split: Vec<String> = args
                .get(at + 1)
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            let mut run = split;
            run.extend(args.get(at + 2..).unwrap_or(&[]).iter().cloned());
            unwrap(&run, dir, scripts, depth + 1, found);
            return;
        }
        if let Some(rest) = arg
            .strip_prefix("--split-string=")
            .or_else(|| arg.strip_prefix("-S").filter(|r| !r.is_empty()))
        {
            let mut run: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            run.extend(args[at + 1..].iter().cloned());
            unwrap(&run, dir, scripts, depth + 1, found);
            return;
        }
        if matches!(arg.as_str(), "-u" | "--unset" | "-C" | "--chdir") {
            at += 2;
            continue;
        }
        if arg.starts_with('-') || is_assignment(arg) {
            at += 1;
            continue;
        }
        break;
    }
    unwrap(
        args.get(at..).unwrap_or(&[]),
        dir,
        scripts,
        depth + 1,
        found,
    );
}

/// `sh -c SCRIPT`, `bash -lc SCRIPT`, `sh FILE`, `sh -s` / `sh < file` / `… | sh`.
fn unwrap_shell(
    name: &str,
    args: &[String],
    dir: &Path,
    scripts: &dyn Scripts,
    depth: usize,
    found: &mut Runs,
) {
    let mut inline = false;
    let mut stdin = false;
    let mut at = 0;
    while at < args.len() {
        let arg = &args[at];
        if arg == "--" {
            at += 1;
            break;
        }
        if let Some(flags) = arg.strip_prefix('-').or_else(|| arg.strip_prefix('+')) {
            if flags.starts_with('-') {
                // Long options (`--norc`, `--login`); `--rcfile FILE` takes a value.
                at += if matches!(arg.as_str(), "--rcfile" | "--init-file") {
                    2
                } else {
                    1
                };
                continue;
            }
            inline |= flags.contains('c');
            stdin |= flags.contains('s');
            // `-o OPTION` takes a value.
            at += if flags.contains('o') { 2 } else { 1 };
            continue;
        }
        break;
    }
    match args.get(at) {
        Some(text) if inline => line(
            text,
            dir,
            scripts,
            depth + 1,
            found,
            &format!("`{name} -c`"),
        ),
        Some(file) if !stdin => script(&dir.join(file), dir, scripts, depth, found),
        _ if stdin || found.fed => found.opaque.push(format!(
            "`{name}` runs what the line feeds its standard input"
        )),
        // Interactive: it reads the terminal, where each typed line is checked as it is sent.
        _ => {}
    }
}

/// A line of shell, as `-c` or `eval` or an alias gives it.
fn line(text: &str, dir: &Path, scripts: &dyn Scripts, depth: usize, found: &mut Runs, what: &str) {
    match cox_sandbox::command::split(text) {
        Ok(commands) => {
            let mut inner = dir.to_path_buf();
            let outer = found.fed;
            for command in commands {
                found.fed = command.fed;
                unwrap(&command.words, &mut inner, scripts, depth, found);
            }
            found.fed = outer;
        }
        Err(e) => found
            .opaque
            .push(format!("the script given to {what} cannot be read ({e})")),
    }
}

/// A script file run by a shell: its commands are checked; one written during this session, or
/// one cox cannot read, is opaque.
fn script(path: &Path, dir: &Path, scripts: &dyn Scripts, depth: usize, found: &mut Runs) {
    let shown = path.display();
    if scripts.written(path) {
        found.opaque.push(format!(
            "the script {shown} was written during this session; cox cannot vouch for what it runs"
        ));
    }
    match scripts.read(path) {
        Some(text) => line(
            &text,
            dir,
            scripts,
            depth + 1,
            found,
            &format!("the script {shown}"),
        ),
        None => found
            .opaque
            .push(format!("cox cannot read the script {shown}")),
    }
}

/// A file that a shell would run: text whose first line is a shell's `#!`, or has none.
fn is_shell_script(scripts: &dyn Scripts, path: &Path) -> bool {
    let Some(text) = scripts.read(path) else {
        return false;
    };
    match text.lines().next() {
        Some(first) if first.starts_with("#!") => SHELLS
            .iter()
            .any(|shell| first.split(['/', ' ']).any(|part| part == *shell)),
        _ => true,
    }
}

/// The script an interpreter runs: its first argument that is not an option (none after `-m`,
/// which names a module).
fn script_argument(args: &[String]) -> Option<&String> {
    for arg in args {
        if arg == "-m" {
            return None;
        }
        if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

/// Whether the arguments pass code inline: an option itself (`-c`, `--eval=…`), glued to its
/// value (`-c'…'`), or among combined short flags (`-Bc`, `perl -pe`).
fn inline_code(args: &[String], options: &[&str]) -> bool {
    args.iter().any(|arg| {
        options.iter().any(|option| {
            if arg == option || arg.starts_with(&format!("{option}=")) {
                return true;
            }
            match (option.strip_prefix('-'), arg.strip_prefix('-')) {
                (Some(letter), Some(flags)) if letter.len() == 1 && !flags.starts_with('-') => {
                    flags.contains(letter)
                }
                _ => false,
            }
        })
    })
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

fn basename(word: &str) -> String {
    word.rsplit('/')
        .find(|p| !p.is_empty())
        .unwrap_or(word)
        .to_string()
}

/// `python3.12` → `python`, `perl5` → `perl`: the program family.
fn versionless(name: &str) -> String {
    name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
        .to_string()
}

/// The words after leading options; `valued` options take the next word (or `=value`).
fn skip_options<'a>(args: &'a [String], valued: &[&str]) -> &'a [String] {
    let mut at = 0;
    while at < args.len() {
        let arg = &args[at];
        if arg == "--" {
            return &args[at + 1..];
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let takes_value = valued.iter().any(|v| arg == v);
        // `nice -5`, `nice -n5`: the value is in the word.
        at += if takes_value { 2 } else { 1 };
    }
    args.get(at..).unwrap_or(&[])
}

/// Brace expansion as bash does it on an unquoted word: `{a,b}` alternatives and `{1..3}`
/// ranges, nested, the rest of the word kept (`p{s,x}ql` is `psql pxql`).
fn braces(word: &str) -> Vec<String> {
    let bytes: Vec<char> = word.chars().collect();
    let Some(open) = bytes.iter().position(|c| *c == '{') else {
        return vec![word.to_string()];
    };
    let mut level = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, c) in bytes.iter().enumerate().skip(open) {
        match c {
            '{' => level += 1,
            '}' => {
                level -= 1;
                if level == 0 {
                    close = Some(i);
                    break;
                }
            }
            ',' if level == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![word.to_string()];
    };
    let prefix: String = bytes[..open].iter().collect();
    let suffix: String = bytes[close + 1..].iter().collect();
    let inner: String = bytes[open + 1..close].iter().collect();
    let alternatives: Vec<String> = if commas.is_empty() {
        match range(&inner) {
            Some(items) => items,
            // `{x}` or `${x}`: not an expansion; look further on.
            None => {
                return braces(&suffix)
                    .into_iter()
                    .map(|s| format!("{prefix}{{{inner}}}{s}"))
                    .collect();
            }
        }
    } else {
        let mut parts = Vec::new();
        let mut from = open + 1;
        for comma in commas.iter().chain(std::iter::once(&close)) {
            parts.push(bytes[from..*comma].iter().collect());
            from = comma + 1;
        }
        parts
    };
    if prefix.ends_with('$') {
        return vec![word.to_string()];
    }
    let mut out = Vec::new();
    for alternative in alternatives {
        for tail in braces(&format!("{alternative}{suffix}")) {
            out.push(format!("{prefix}{tail}"));
            if out.len() > 64 {
                return out;
            }
        }
    }
    out
}

/// `1..3` or `a..c`.
fn range(inner: &str) -> Option<Vec<String>> {
    let (from, to) = inner.split_once("..")?;
    if let (Ok(a), Ok(b)) = (from.parse::<i64>(), to.parse::<i64>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        return (hi - lo <= 64).then(|| (lo..=hi).map(|n| n.to_string()).collect());
    }
    let (a, b) = (from.chars().next()?, to.chars().next()?);
    (from.len() == 1 && to.len() == 1).then(|| {
        let (lo, hi) = (a.min(b), a.max(b));
        (lo..=hi).map(String::from).collect()
    })
}

#[cfg(test)]
mod tests;
