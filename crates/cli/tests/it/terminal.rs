//! The real binary in a real terminal (tmux): type a prompt, watch the stream, SPACE, type a
//! directive, Enter. The screen must show PAUSED, then the steer and the model's acknowledgement.
//! Needs `tmux` (`.ci/run` installs it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cox_testkit::{MockServer, Script, Turn};

pub(super) struct Tmux {
    pub(super) name: String,
}

/// What `Tmux::start` needs to run cox in a detached tmux session.
pub(super) struct Launch<'a> {
    /// Prefix of the tmux session's name (the process id is added).
    pub(super) tag: &'a str,
    /// Columns × rows of the terminal.
    pub(super) size: (u16, u16),
    pub(super) repo: &'a Path,
    pub(super) home: &'a Path,
    /// The mock server's base URL.
    pub(super) server: &'a str,
    /// cox's arguments, already quoted for `sh`.
    pub(super) args: &'a str,
    /// Keep colour on (NO_COLOR unset); otherwise NO_COLOR=1.
    pub(super) color: bool,
}

/// tmux runs the real binary in a real terminal; without it these tests are skipped, loudly.
pub(super) fn tmux_here() -> bool {
    cox_testkit::outside_tool("tmux", "apt-get install tmux")
}

/// A temporary directory with an empty `repo/` in it, for a tmux test; `None` (the test is
/// skipped, loudly) where tmux is missing.
pub(super) fn tmux_repo() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    if !tmux_here() {
        return None;
    }
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    fs_err::create_dir_all(&repo).unwrap();
    Some((root, repo))
}

impl Tmux {
    /// Starts cox in `launch.repo`; when cox exits the pane shows `EXIT=<status>` and stays open.
    pub(super) fn start(launch: Launch) -> Tmux {
        let name = format!("{}-{}", launch.tag, std::process::id());
        let colour = if launch.color {
            "env -u NO_COLOR"
        } else {
            "NO_COLOR=1"
        };
        let command = format!(
            "cd '{}' && {colour} COX_HOME='{}' OPENAI_API_KEY=sk-test-terminal-0001 OPENAI_BASE_URL='{}/v1' TERM=xterm-256color '{}' {}; echo EXIT=$?; sleep 60",
            launch.repo.display(),
            launch.home.display(),
            launch.server,
            env!("CARGO_BIN_EXE_cox"),
            launch.args,
        );
        let (cols, rows) = (launch.size.0.to_string(), launch.size.1.to_string());
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &cols,
                "-y",
                &rows,
                &command,
            ])
            .status()
            .unwrap();
        assert!(status.success());
        Tmux { name }
    }

    pub(super) fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub(super) fn screen(&self) -> String {
        let output = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits (bounded) until the screen shows `text`.
    pub(super) fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

/// The screen with what varies between runs made constant: where exactly the pause cut the stream,
/// elapsed time, token counts, durations, the directory.
fn normalise(screen: &str, repo: &str) -> String {
    let mut out = Vec::new();
    let mut after_prompt = false;
    for line in screen.lines() {
        let mut line = line.replace(repo, "[repo]");
        if after_prompt {
            line = "[the stream, cut where the pause came]".to_string();
            after_prompt = false;
        } else if line.starts_with("› rewrite the helper") {
            after_prompt = true;
        }
        let states = ["READY · ", "THINKING · ", "PAUSED · "];
        if states.iter().any(|s| line.starts_with(s)) {
            // STATE · model · Ns · T tok [· ctx P%] · hints
            let parts: Vec<&str> = line.split(" · ").collect();
            let hints: Vec<&str> = parts[2..]
                .iter()
                .copied()
                .filter(|p| !p.ends_with('s') || p.contains(' '))
                .filter(|p| !p.ends_with(" tok") && !p.starts_with("ctx "))
                .collect();
            line = format!(
                "{} · {} · [time] · [tokens] · {}",
                parts[0],
                parts[1],
                hints.join(" · ")
            );
        }
        if let Some(at) = line.find("duration: ") {
            let end = line[at..].find(" s").map_or(line.len(), |e| at + e + 2);
            line = format!("{}duration: [d]{}", &line[..at], &line[end..]);
        }
        out.push(line.trim_end().to_string());
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

#[test]
fn space_pauses_and_a_typed_directive_steers_in_a_real_terminal() {
    let Some((root, repo)) = tmux_repo() else {
        return;
    };
    let mut slow = Turn::text(&[
        "I will ",
        "read the ",
        "README ",
        "and then ",
        "rewrite ",
        "the whole ",
        "thing ",
        "from ",
        "scratch ",
        "right ",
        "away.",
    ])
    .with_call(
        "shell",
        r#"{"command":["sh","-c","echo rewritten >> log.txt"]}"#,
        1,
    );
    slow.delay_ms = 300;
    let ack = Turn::text(&[
        "Acknowledged. ",
        "Adjusting plan: ",
        "I will keep the wrapper.",
    ])
    .with_call(
        "shell",
        r#"{"command":["sh","-c","echo kept >> log.txt"]}"#,
        1,
    );
    let server = MockServer::start(Script {
        turns: vec![slow, ack, Turn::text(&["Done: kept the wrapper."])],
    })
    .unwrap();
    let tmux = Tmux::start(Launch {
        tag: "cox-test",
        size: (100, 30),
        repo: &repo,
        home: &root.path().join("home"),
        server: &server.url(),
        args: "",
        color: true,
    });
    tmux.wait_for("READY");
    tmux.keys(&["rewrite the helper", "Enter"]);
    tmux.wait_for("I will ");
    tmux.keys(&["Space"]);
    tmux.wait_for("PAUSED");
    assert!(
        !repo.join("log.txt").exists(),
        "nothing ran after the pause"
    );
    tmux.keys(&["Keep the wrapper", "Enter"]);
    tmux.wait_for("Done: kept the wrapper.");
    let screen = tmux.wait_for("READY");
    assert_eq!(
        fs_err::read_to_string(repo.join("log.txt")).unwrap(),
        "kept\n"
    );
    let canonical = fs_err::canonicalize(&repo).unwrap().display().to_string();
    insta::assert_snapshot!("steering_in_tmux", normalise(&screen, &canonical));
    tmux.keys(&["/quit", "Enter"]);
}

#[test]
fn a_fast_stream_reaches_the_scrollback_complete_and_in_order() {
    let Some((root, repo)) = tmux_repo() else {
        return;
    };
    // 4,000 deltas at full speed, a line break after every tenth: 400 lines, within tmux's default
    // scrollback of 2,000.
    let chunks: Vec<String> = (0..4000)
        .map(|n| {
            if n % 10 == 9 {
                format!("w{n:04}\n")
            } else {
                format!("w{n:04} ")
            }
        })
        .collect();
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let mut text = Turn::text(&refs);
    text.text.push("END-OF-STREAM".into());
    let server = MockServer::start(Script { turns: vec![text] }).unwrap();
    let tmux = Tmux::start(Launch {
        tag: "cox-render",
        size: (120, 40),
        repo: &repo,
        home: &root.path().join("home"),
        server: &server.url(),
        args: "'stream please'",
        color: false,
    });
    tmux.wait_for("READY");
    let output = Command::new("tmux")
        .args(["capture-pane", "-p", "-S", "-", "-t", &tmux.name])
        .output()
        .unwrap();
    let scrollback = String::from_utf8_lossy(&output.stdout);
    let words: Vec<&str> = scrollback
        .split_whitespace()
        .filter(|w| {
            w.len() == 5 && w.starts_with('w') && w[1..].chars().all(|c| c.is_ascii_digit())
        })
        .collect();
    let expected: Vec<String> = (0..4000).map(|n| format!("w{n:04}")).collect();
    assert_eq!(words.len(), 4000, "dropped or duplicated text");
    assert!(
        words.iter().zip(&expected).all(|(a, b)| *a == b.as_str()),
        "text out of order"
    );
    assert!(scrollback.contains("END-OF-STREAM"));
    tmux.keys(&["/quit", "Enter"]);
}

#[test]
fn a_plan_run_is_steered_live_in_a_real_terminal() {
    let Some((root, repo)) = tmux_repo() else {
        return;
    };
    fs_err::write(
        repo.join("plan.json"),
        r#"{"goal": "Tidy", "steps": [{"id": "S1", "title": "Write the log"}, {"id": "S2", "title": "Finish"}]}"#,
    )
    .unwrap();
    let mut slow = Turn::text(&[
        "Starting ",
        "step ",
        "one ",
        "slowly ",
        "so ",
        "there ",
        "is ",
        "time ",
        "to ",
        "pause.",
    ]);
    slow.delay_ms = 250;
    let turns = vec![
        slow,
        Turn::text(&["Acknowledged: log only."]).with_call(
            "shell",
            r#"{"command":["sh","-c","echo s1 >> log.txt"]}"#,
            1,
        ),
        Turn::text(&["Step one done."]),
        Turn::text(&["Step two done."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let tmux = Tmux::start(Launch {
        tag: "cox-run",
        size: (110, 40),
        repo: &repo,
        home: &root.path().join("home"),
        server: &server.url(),
        args: "run --plan plan.json --steerable --steer-grace 0",
        color: false,
    });
    tmux.wait_for("Starting ");
    tmux.keys(&["Space"]);
    tmux.wait_for("PAUSED");
    tmux.keys(&["Only write the log", "Enter"]);
    let screen = tmux.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(screen.contains("steered: Only write the log"), "{screen}");
    assert!(screen.contains("plan: 2 done, 0 failed"), "{screen}");
    assert_eq!(
        fs_err::read_to_string(repo.join("log.txt")).unwrap(),
        "s1\n"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(repo.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["steps"][1]["status"], "done");
    // The directive holds for step 2 too.
    let last = server.requests().last().unwrap().body["instructions"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(last.contains("- Only write the log"), "{last}");
}

#[test]
fn an_approval_prompt_in_a_real_terminal_takes_a_reason_for_no() {
    let Some((root, repo)) = tmux_repo() else {
        return;
    };
    let escalated = r#"{"command":["sh","-c","echo hi > out.txt"],"with_escalated_permissions":true,"justification":"demo"}"#;
    let turns = vec![
        Turn::call("shell", escalated),
        Turn::text(&["Understood, not running it."]),
    ];
    let server = MockServer::start(Script { turns }).unwrap();
    let tmux = Tmux::start(Launch {
        tag: "cox-approve",
        size: (120, 30),
        repo: &repo,
        home: &root.path().join("home"),
        server: &server.url(),
        args: "'write out.txt'",
        color: false,
    });
    let screen = tmux.wait_for("? approve `echo hi > out.txt`");
    assert!(screen.contains("y: yes once · s: yes for this command, this session · p: yes, always in this project · n: no"), "{screen}");
    tmux.keys(&["n"]);
    tmux.wait_for("reason›");
    tmux.keys(&["not now", "Enter"]);
    tmux.wait_for("Understood, not running it.");
    assert!(!repo.join("out.txt").exists());
    let seen = server.requests()[1].body["input"].to_string();
    assert!(
        seen.contains("not run: the person declined: not now"),
        "{seen}"
    );
    tmux.keys(&["/quit", "Enter"]);
}

/// Issue 14: the live session ends on SIGTERM and SIGHUP like the headless ones: the running
/// command's tree is killed and cox exits 143 (129), leaving the terminal usable.
#[test]
fn the_live_session_handles_sigterm_and_sighup_issue_14() {
    if !tmux_here() {
        return;
    }
    for (signal, code, marker) in [
        (nix::sys::signal::Signal::SIGTERM, 143, "4101"),
        (nix::sys::signal::Signal::SIGHUP, 129, "4102"),
    ] {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        fs_err::create_dir_all(&repo).unwrap();
        let line = format!("sleep {marker} & sleep {marker}");
        let tree = Turn::call(
            "shell",
            &serde_json::json!({ "command": ["sh", "-c", line] }).to_string(),
        );
        let server = MockServer::start(Script {
            turns: vec![tree, Turn::text(&["never"])],
        })
        .unwrap();
        let tmux = Tmux::start(Launch {
            tag: &format!("cox-signal-{code}"),
            size: (100, 30),
            repo: &repo,
            home: &root.path().join("home"),
            server: &server.url(),
            args: "",
            color: false,
        });
        tmux.wait_for("READY");
        tmux.keys(&["start the tree", "Enter"]);
        crate::harness::wait_for("the command tree", || {
            crate::harness::pids_with_arg(marker).len() >= 2
        });
        // cox is the process whose working directory is the repository and whose program is
        // the binary under test — not its launchers (`cox __sandbox`), which are too.
        let canonical = fs_err::canonicalize(&repo).unwrap();
        let cox = fs_err::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .find(|pid| {
                fs_err::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c == canonical)
                    && fs_err::read_link(format!("/proc/{pid}/exe"))
                        .is_ok_and(|e| e == Path::new(env!("CARGO_BIN_EXE_cox")))
                    && fs_err::read(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| !c.split(|&b| b == 0).any(|a| a == b"__sandbox"))
            })
            .expect("cox's pid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(cox), signal).unwrap();
        tmux.wait_for(&format!("EXIT={code}"));
        assert!(
            crate::harness::pids_with_arg(marker).is_empty(),
            "{signal:?}: the tree died with the session"
        );
    }
}
