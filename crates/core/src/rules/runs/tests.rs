use std::path::{Path, PathBuf};

use super::*;

/// Scripts from a table: (path, text, written this session).
struct Table(Vec<(PathBuf, String, bool)>);

impl Scripts for Table {
    fn read(&self, path: &Path) -> Option<String> {
        self.0
            .iter()
            .find(|(p, ..)| p == path)
            .map(|(_, t, _)| t.clone())
    }
    fn written(&self, path: &Path) -> bool {
        self.0.iter().any(|(p, _, w)| p == path && *w)
    }
}

fn unwrapped(line: &str, scripts: &dyn Scripts) -> Runs {
    let commands = cox_sandbox::command::split(line).unwrap();
    runs(&commands, Path::new("/repo"), scripts)
}

/// The programs that run, first word of each command line found.
fn programs(line: &str) -> Vec<String> {
    unwrapped(line, &NoScripts)
        .commands
        .iter()
        .map(|w| w.join(" "))
        .collect()
}

fn opaque(line: &str) -> Vec<String> {
    unwrapped(line, &NoScripts).opaque
}

#[test]
fn wrappers_are_unwrapped_to_the_program_they_run() {
    for line in [
        "/usr/bin/psql -c x",
        "./psql -c x",
        "env psql -c x",
        "env -i PGHOST=db -u HOME psql -c x",
        "env -S 'psql -c' x",
        "command psql -c x",
        "exec psql -c x",
        "builtin psql -c x",
        "nice -n 5 psql -c x",
        "nohup psql -c x",
        "timeout -s KILL 5 psql -c x",
        "time -p psql -c x",
        "sudo -u postgres psql -c x",
        "setsid psql -c x",
        "stdbuf -o L psql -c x",
        "PGHOST=127.0.0.1 PGPORT=5432 psql -c x",
        "nice {psql,x} -c",
        "p{s,x}ql -c x",
        "$'\\x70sql' -c x",
        "ps\"\"ql -c x",
        "\\psql -c x",
        "sh -c 'psql -c x'",
        "bash -lc \"psql -c x\"",
        "bash -c \"sh -c 'env psql -c x'\"",
        "zsh -c 'timeout 1 /usr/bin/psql -c x'",
        "busybox sh -c 'psql -c x'",
        "alias p='psql -c x'",
        "eval 'psql -c x'",
        "nice timeout 3 env psql -c x",
    ] {
        let found = programs(line);
        assert!(
            found.iter().any(|c| c.starts_with("psql ")),
            "{line}: {found:?}"
        );
    }
    let xargs = programs("echo x | xargs -0 -n 1 psql");
    assert!(xargs.contains(&"psql …".to_string()), "{xargs:?}");
    let find = programs("find . -name '*.sql' -exec psql -f {} \\;");
    assert!(find.contains(&"psql -f {}".to_string()), "{find:?}");
    assert!(
        programs("command -v psql")
            .iter()
            .all(|c| !c.starts_with("psql")),
        "command -v only looks"
    );
}

#[test]
fn what_only_running_would_tell_is_opaque() {
    for line in [
        "eval \"$CMD\"",
        "$(echo psql) -c x",
        "`echo psql` -c x",
        "p=psql; $p -c x",
        "echo psql | sh",
        "bash -s < script.sh",
        "python3 -c 'import socket'",
        "python3.12 -Bc 'import os'",
        "node -e 'require(\"pg\")'",
        "perl -pe 's/x/y/'",
        "ruby -e 'x'",
        "source ./env.sh",
        "sh ./unknown.sh",
    ] {
        assert!(!opaque(line).is_empty(), "{line} should be opaque");
    }
    for line in [
        "ls -la",
        "npm test",
        "python3 -m pytest -q",
        "git status && cargo build",
        "echo {a,b}",
        "bash --norc -i",
        "bash",
    ] {
        assert_eq!(opaque(line), Vec::<String>::new(), "{line}");
    }
    // A script an interpreter runs is read: one that is there and was not written now is fine;
    // one made in the same line is not there to read yet.
    let known = Table(vec![(
        PathBuf::from("/repo/server.js"),
        "listen()\n".into(),
        false,
    )]);
    assert!(unwrapped("node server.js", &known).opaque.is_empty());
    assert!(
        !unwrapped("echo 'x' > p.py; python3 p.py", &known)
            .opaque
            .is_empty()
    );
}

#[test]
fn scripts_are_read_and_fresh_ones_are_opaque() {
    let scripts = Table(vec![
        (
            PathBuf::from("/repo/build.sh"),
            "set -e\nnpm ci\npsql -c x\n".into(),
            false,
        ),
        (
            PathBuf::from("/repo/sub/run.sh"),
            "#!/bin/bash\nenv psql -c x\n".into(),
            false,
        ),
        (PathBuf::from("/repo/fresh.sh"), "echo hi\n".into(), true),
        (
            PathBuf::from("/repo/tool.py"),
            "#!/usr/bin/env python3\nprint(1)\n".into(),
            false,
        ),
    ]);
    let found = unwrapped("sh build.sh", &scripts);
    assert!(found.commands.iter().any(|c| c[0] == "psql"), "{found:?}");
    assert!(found.opaque.is_empty(), "{found:?}");
    let found = unwrapped("cd sub && ./run.sh", &scripts);
    assert!(found.commands.iter().any(|c| c[0] == "psql"), "{found:?}");
    let found = unwrapped("bash fresh.sh", &scripts);
    assert!(!found.opaque.is_empty(), "written this session: {found:?}");
    let found = unwrapped("./tool.py", &scripts);
    assert!(found.opaque.is_empty(), "{found:?}");
    let fresh = Table(vec![(
        PathBuf::from("/repo/probe.py"),
        "import socket\n".into(),
        true,
    )]);
    let found = unwrapped("python3 probe.py", &fresh);
    assert!(!found.opaque.is_empty(), "a fresh python script: {found:?}");
}

#[test]
fn braces_expand_like_bash() {
    assert_eq!(braces("{psql,x}"), ["psql", "x"]);
    assert_eq!(braces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
    assert_eq!(braces("x{1..3}"), ["x1", "x2", "x3"]);
    assert_eq!(braces("${HOME}"), ["${HOME}"]);
    assert_eq!(braces("plain"), ["plain"]);
}
