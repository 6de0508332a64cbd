//! Issue 18 in a real terminal (tmux): `cox run` is live without `--steerable`, typing without
//! SPACE keeps every character, a resize mid-stream shows nothing twice, Markdown is rendered.

use std::process::Command;

use cox_testkit::{MockServer, Script, Turn};

use super::terminal::{Launch, Tmux, tmux_repo};

/// The whole history tmux keeps for the pane (scrollback and screen).
fn scrollback(tmux: &Tmux) -> String {
    let output = Command::new("tmux")
        .args(["capture-pane", "-p", "-J", "-S", "-", "-t", &tmux.name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A streamed turn slow enough to act on while it streams.
fn slow(words: &[&str], delay_ms: u64) -> Turn {
    let mut turn = Turn::text(words);
    turn.delay_ms = delay_ms;
    turn
}

/// The seed's story on `cox run` without `--steerable`: SPACE pauses (it is not echoed into the
/// output), the directive steers, and the delete the model had lined up never happens.
#[test]
fn space_pauses_cox_run_without_steerable() {
    let Some((root, repo)) = tmux_repo() else {
        return;
    };
    fs_err::create_dir_all(repo.join("src")).unwrap();
    fs_err::write(
        repo.join("src/legacy.js"),
        "function wrap(cb) { return cb; }\n",
    )
    .unwrap();
    fs_err::write(
        repo.join("plan.json"),
        r#"{"goal": "Tidy", "steps": [{"id": "S3", "title": "Remove legacy callback wrapper"}]}"#,
    )
    .unwrap();
    let turns = vec![
        slow(
            &[
                "Removing ",
                "the legacy ",
                "wrapper ",
                "now, ",
                "it is ",
                "no longer ",
                "used ",
                "anywhere.",
            ],
            250,
        )
        .with_call("shell", r#"{"command":["sh","-c","rm src/legacy.js"]}"#, 1),
        Turn::text(&["Kept src/legacy.js as asked."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let tmux = Tmux::start(Launch {
        tag: "cox-run-live",
        size: (100, 30),
        repo: &repo,
        home: &root.path().join("home"),
        server: &server.url(),
        args: "run --plan plan.json --target src",
        color: false,
    });
    tmux.wait_for("Removing ");
    tmux.keys(&["Space"]);
    tmux.wait_for("PAUSED");
    tmux.keys(&["Keep the wrapper", "Enter"]);
    let screen = tmux.wait_for("EXIT=");
    assert!(screen.contains("steered: Keep the wrapper"), "{screen}");
    assert!(
        repo.join("src/legacy.js").exists(),
        "the delete ran:\n{screen}"
    );
    let last = serde_json::to_string(&server.requests().last().unwrap().body).unwrap();
    assert!(last.contains("Keep the wrapper"), "{last}");
}

/// Typing while the agent streams, without SPACE first: the first key pauses and is the
/// directive's first letter; the model gets every character.
#[test]
fn typing_without_space_keeps_every_character() {
    let Some((root, repo)) = tmux_repo() else {
        return;
    };
    let turns = vec![
        slow(
            &[
                "I will ",
                "remove ",
                "the ",
                "legacy ",
                "callback ",
                "wrapper ",
                "next.",
            ],
            300,
        ),
        Turn::text(&["Understood: the wrapper stays, marked deprecated."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let tmux = Tmux::start(Launch {
        tag: "cox-typeahead",
        size: (100, 30),
        repo: &repo,
        home: &root.path().join("home"),
        server: &server.url(),
        args: "",
        color: false,
    });
    tmux.wait_for("READY");
    tmux.keys(&["tidy the api", "Enter"]);
    tmux.wait_for("I will ");
    let directive = "Keep the wrapper, mark it @deprecated";
    tmux.keys(&["-l", directive]);
    tmux.wait_for(&format!("steer› {directive}"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Understood: the wrapper stays");
    assert!(
        screen.contains(&format!("steered: {directive}")),
        "{screen}"
    );
    let last = serde_json::to_string(&server.requests().last().unwrap().body).unwrap();
    assert!(last.contains(directive), "{last}");
    tmux.keys(&["/quit", "Enter"]);
}

/// The terminal narrows, then widens, while the answer streams: every line is in the scrollback
/// exactly once, none cut, and the stream goes on where it was.
#[test]
fn a_resize_mid_stream_shows_nothing_twice() {
    let Some((root, repo)) = tmux_repo() else {
        return;
    };
    // More lines than the screen has rows: the older ones are in the scrollback when it resizes.
    let lines: Vec<String> = (0..30)
        .map(|n| format!("line-{n:02} of the answer, long enough to wrap at sixty columns wide.\n"))
        .collect();
    let mut words: Vec<&str> = lines.iter().map(String::as_str).collect();
    words.push("and the last line streams");
    words.push(" to its end.\n");
    let server = MockServer::start(Script {
        turns: vec![slow(&words, 120)],
    })
    .unwrap();
    let tmux = Tmux::start(Launch {
        tag: "cox-resize",
        size: (100, 20),
        repo: &repo,
        home: &root.path().join("home"),
        server: &server.url(),
        args: "'explain it'",
        color: false,
    });
    tmux.wait_for("line-12");
    let resize = |columns: &str| {
        let status = Command::new("tmux")
            .args(["resize-window", "-t", &tmux.name, "-x", columns, "-y", "20"])
            .status()
            .unwrap();
        assert!(status.success());
    };
    resize("60");
    tmux.wait_for("line-20");
    resize("90");
    tmux.wait_for("READY");
    let all = scrollback(&tmux);
    for n in 0..30 {
        let needle = format!("line-{n:02} of the answer");
        assert_eq!(all.matches(&needle).count(), 1, "{needle} once in:\n{all}");
    }
    assert_eq!(all.matches("and the last line streams").count(), 1, "{all}");
    assert!(all.contains("to its end."), "{all}");
    tmux.keys(&["/quit", "Enter"]);
}

/// Markdown from the model is rendered on the real terminal: a table with rules, a fenced code
/// block with its language and gutter, emphasis without its asterisks.
#[test]
fn markdown_tables_and_code_blocks_are_rendered() {
    let Some((root, repo)) = tmux_repo() else {
        return;
    };
    let answer = [
        "## Changes\n\n",
        "Kept **the wrapper**.\n\n",
        "| file | change |\n",
        "|---|---|\n",
        "| src/api.js | wrapper kept |\n\n",
        "```rust\n",
        "fn main() { println!(\"hi\"); }\n",
        "```\n",
        "END\n",
    ];
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&answer)],
    })
    .unwrap();
    let tmux = Tmux::start(Launch {
        tag: "cox-markdown",
        size: (100, 30),
        repo: &repo,
        home: &root.path().join("home"),
        server: &server.url(),
        args: "'summarise'",
        color: true,
    });
    tmux.wait_for("READY");
    let screen = tmux.screen();
    assert!(screen.contains("Kept the wrapper."), "{screen}");
    assert!(screen.contains("│ file       │ change       │"), "{screen}");
    assert!(screen.contains("├────────────┼──────────────┤"), "{screen}");
    assert!(screen.contains("╭ rust"), "{screen}");
    assert!(
        screen.contains("│ fn main() { println!(\"hi\"); }"),
        "{screen}"
    );
    for raw in ["**", "```", "|---", "## "] {
        assert!(!screen.contains(raw), "{raw} left raw:\n{screen}");
    }
    // The code is highlighted: more than one foreground colour on its line.
    let output = Command::new("tmux")
        .args(["capture-pane", "-p", "-e", "-t", &tmux.name])
        .output()
        .unwrap();
    let coloured = String::from_utf8_lossy(&output.stdout).into_owned();
    let code = coloured
        .lines()
        .find(|l| l.contains("println"))
        .unwrap_or_default();
    assert!(
        code.matches("\u{1b}[38;").count() > 1,
        "not highlighted: {code:?}"
    );
    tmux.keys(&["/quit", "Enter"]);
}
