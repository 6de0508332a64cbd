//! The UI without a terminal: keys and events go in, the bytes it draws go through a terminal
//! emulator (`vt100`), and the screen that results is snapshotted — streaming, SPACE pause, steer,
//! the approval prompt, interrupt, resize, and the run's own events. The elapsed seconds in the
//! status line are redacted. A few tmux tests in the binary's suite still cover the real terminal.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cox_protocol::{
    Action, ApprovalDecision, CallId, CheckKind, Event, EventEnvelope, Op, SessionId,
    SessionStatus, StepState, ToolKind, ToolOutcome,
};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::{Header, Mode, Screen, Ui};

mod live;

const ROWS: u16 = 40;

/// A writer whose bytes a test reads back.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Term {
    ui: Ui,
    out: Buffer,
    width: u16,
    /// Where in the output the terminal changed width, and to what.
    resizes: Vec<(usize, u16)>,
}

impl Term {
    fn new(width: u16) -> Term {
        let out = Buffer::default();
        let header = Header {
            model: "gpt-test".into(),
            provider: "mock".into(),
            details: vec![
                ("sandbox".into(), "workspace-write".into()),
                ("approval".into(), "on-request".into()),
            ],
        };
        let mut screen = Screen::new(Box::new(out.clone()), width, false);
        screen.set_height(ROWS);
        let mut ui = Ui::new(header, screen);
        ui.redraw().unwrap();
        Term {
            ui,
            out,
            width,
            resizes: Vec::new(),
        }
    }

    fn event(&mut self, event: Event) {
        self.ui.on_event(&event).unwrap();
    }

    /// A key, as the UI loop handles it: state and ops first, then the drawing.
    fn key(&mut self, code: KeyCode) -> Vec<Op> {
        let ops = self.ui.on_key(KeyEvent::new(code, KeyModifiers::NONE));
        self.ui.show().unwrap();
        ops
    }

    fn key_with(&mut self, code: KeyCode, modifiers: KeyModifiers) -> Vec<Op> {
        let ops = self.ui.on_key(KeyEvent::new(code, modifiers));
        self.ui.show().unwrap();
        ops
    }

    fn ctrl_c(&mut self) -> Vec<Op> {
        self.key_with(KeyCode::Char('c'), KeyModifiers::CONTROL)
    }

    fn typed(&mut self, text: &str) {
        for c in text.chars() {
            assert!(self.key(KeyCode::Char(c)).is_empty());
        }
    }

    /// The terminal gets narrower or wider (it cuts what it shows), then tells the UI.
    fn resize(&mut self, width: u16) {
        let at = self.out.0.lock().unwrap().len();
        self.resizes.push((at, width));
        self.ui.screen.resize(width, ROWS).unwrap();
        self.ui.redraw().unwrap();
    }

    /// The screen as a person sees it now.
    fn screen(&self) -> String {
        emulate(&self.out, self.width, &self.resizes)
    }

    /// The screen with the elapsed seconds redacted, for snapshots.
    fn frame(&self) -> String {
        let seconds = regex::Regex::new(r" · \d+s · ").unwrap();
        seconds
            .replace_all(self.screen().trim_end(), " · [t]s · ")
            .into_owned()
    }
}

/// What a terminal `width` columns wide shows after the bytes in `out`, resized where `resizes`
/// say (at a byte offset, to a width).
fn emulate(out: &Buffer, width: u16, resizes: &[(usize, u16)]) -> String {
    let size = |n: u16| std::num::NonZero::new(n).unwrap();
    let mut parser = vt100::Parser::new(size(ROWS), size(width), 0);
    let bytes = out.0.lock().unwrap();
    let mut from = 0;
    for &(at, width) in resizes {
        parser.process(&bytes[from..at]);
        parser.screen_mut().set_size(size(ROWS), size(width));
        from = at;
    }
    parser.process(&bytes[from..]);
    parser.screen().contents()
}

fn call_id(id: &str) -> CallId {
    CallId(id.into())
}

fn started() -> Event {
    Event::SessionStarted {
        session_id: SessionId("s".into()),
        provider: "mock".into(),
        model: "gpt-test".into(),
        cwd: "/work/repo".into(),
    }
}

/// A prompt typed and sent: the UI is running the task.
fn running() -> Term {
    running_at(80)
}

/// [`running`] on a terminal `width` columns wide.
fn running_at(width: u16) -> Term {
    let mut term = Term::new(width);
    term.event(started());
    term.typed("fix the parser");
    let ops = term.key(KeyCode::Enter);
    assert_eq!(
        ops,
        [Op::UserInput {
            text: "fix the parser".into()
        }]
    );
    term.event(Event::TurnStarted { turn: 1 });
    term
}

#[test]
fn streaming_commits_whole_lines_and_keeps_the_partial_one_live() {
    let mut term = running();
    for delta in [
        "Looking at ",
        "the parser.\nThe bug is in",
        " the tokenizer",
    ] {
        term.event(Event::AgentMessageDelta { text: delta.into() });
    }
    insta::assert_snapshot!("streaming", term.frame());
}

/// Reasoning shows dimmed under a `thinking:` label; a retried stream's text is taken back: the
/// live line goes, and lines already in the scrollback get a note that the answer starts again.
#[test]
fn thinking_is_labelled_and_a_retried_stream_is_taken_back() {
    let mut term = running();
    term.event(Event::ReasoningDelta {
        text: "Checking the parser.\nThen the lexer.".into(),
    });
    term.event(Event::AgentMessageDelta {
        text: "First line.\nTo get".into(),
    });
    term.event(Event::Retracted {
        text: "First line.\nTo get".into(),
        reasoning: String::new(),
    });
    term.event(Event::AgentMessageDelta {
        text: "I'm unable to".into(),
    });
    let frame = term.frame();
    assert!(frame.contains("thinking: Checking the parser."), "{frame}");
    assert!(!frame.contains("To getI'm"), "{frame}");
    insta::assert_snapshot!("retracted", frame);
}

#[test]
fn a_tool_call_shows_its_actions_and_its_folded_outcome() {
    let mut term = running();
    term.event(Event::ToolCall {
        call_id: call_id("c1"),
        name: "shell".into(),
        arguments: "{}".into(),
        preview: Vec::new(),
        kind: Some(ToolKind::Execute),
        actions: vec![Action::Run {
            command: "cargo test".into(),
        }],
    });
    term.event(Event::ToolResult {
        call_id: call_id("c1"),
        ok: false,
        output: "not shown: the outcome says it".into(),
        outcome: ToolOutcome {
            exit_code: Some(101),
            duration_ms: Some(2340),
            excerpt: Some(
                "running 3 tests\ntest a ... ok\ntest b ... FAILED\ntest c ... ok".into(),
            ),
            printed_lines: Some(9),
            ..ToolOutcome::default()
        },
    });
    insta::assert_snapshot!("tool_call", term.frame());
}

#[test]
fn space_pauses_and_a_typed_directive_steers() {
    let mut term = running();
    term.event(Event::AgentMessageDelta {
        text: "I will rewrite".into(),
    });
    assert_eq!(term.key(KeyCode::Char(' ')), [Op::Pause]);
    term.event(Event::Paused);
    insta::assert_snapshot!("paused", term.frame());
    term.typed("keep the old API");
    assert_eq!(
        term.key(KeyCode::Enter),
        [Op::Steer {
            text: "keep the old API".into()
        }]
    );
    term.event(Event::Steered {
        text: "keep the old API".into(),
    });
    assert_eq!(term.ui.mode, Mode::Running);
    insta::assert_snapshot!("steered", term.frame());
}

#[test]
fn the_approval_prompt_takes_a_reason_for_no() {
    let mut term = running();
    term.event(Event::ApprovalRequested {
        call_id: call_id("c7"),
        action: "git push origin main".into(),
        reason: "the command asks to run outside the sandbox".into(),
    });
    insta::assert_snapshot!("approval", term.frame());
    assert!(term.key(KeyCode::Char('n')).is_empty());
    term.typed("not now");
    assert_eq!(
        term.key(KeyCode::Enter),
        [Op::Approve {
            call_id: call_id("c7"),
            decision: ApprovalDecision::Deny {
                reason: Some("not now".into())
            }
        }]
    );
    assert_eq!(term.ui.mode, Mode::Running);
}

#[test]
fn esc_interrupts_and_the_prompt_comes_back() {
    let mut term = running();
    assert_eq!(term.key(KeyCode::Esc), [Op::Interrupt]);
    term.event(Event::TaskCompleted {
        status: SessionStatus::Interrupted,
        answer: None,
        report: None,
    });
    assert_eq!(term.ui.mode, Mode::Prompt);
    insta::assert_snapshot!("interrupted", term.frame());
}

#[test]
fn a_resize_cuts_the_live_lines_to_the_new_width() {
    let mut term = running();
    term.event(Event::AgentMessageDelta {
        text: "a partial line that is longer than forty columns, streaming".into(),
    });
    term.resize(40);
    for line in term.screen().lines() {
        assert!(line.chars().count() <= 40, "{line:?}");
    }
    insta::assert_snapshot!("resized", term.frame());
}

#[test]
fn a_plan_run_shows_its_steps_and_checks() {
    let mut term = Term::new(80);
    term.ui.mode = Mode::Running;
    term.event(Event::StepStarted {
        id: "S1".into(),
        title: "Add greet()".into(),
    });
    term.event(Event::CheckStarted {
        kind: CheckKind::Lint,
        command: "ruff check app.py".into(),
    });
    term.event(Event::CheckFinished {
        kind: CheckKind::Lint,
        ok: false,
        output: "app.py:1:8: F401 `os` imported but unused\nFound 1 error.".into(),
        outcome: ToolOutcome::default(),
    });
    term.event(Event::StepFinished {
        id: "S1".into(),
        status: StepState::Done,
        changed_files: vec![cox_protocol::FileChange {
            path: "app.py".into(),
            added: 7,
            removed: 0,
            hunks: Vec::new(),
        }],
        directives: vec!["Keep the wrapper, mark it @deprecated".into()],
        changed: Some("Kept the wrapper and marked it @deprecated instead of removing it".into()),
    });
    insta::assert_snapshot!("plan_run", term.frame());
}

/// The loop itself takes keys from any stream and draws to any writer.
#[tokio::test]
async fn the_loop_runs_on_a_key_stream_and_a_buffer() {
    let out = Buffer::default();
    let screen = Screen::new(Box::new(out.clone()), 60, false);
    let (keys_tx, keys) = tokio::sync::mpsc::channel(8);
    let (ops, mut ops_rx) = tokio::sync::mpsc::channel(8);
    let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let header = Header {
        model: "gpt-test".into(),
        provider: "mock".into(),
        details: Vec::new(),
    };
    let ui = tokio::spawn(crate::run_with(
        header, screen, keys, ops, events, None, true,
    ));
    let space = KeyEvent::new(KeyCode::Char(' '), KeyModifiers::NONE);
    keys_tx.send(crate::TermEvent::Key(space)).await.unwrap();
    assert_eq!(ops_rx.recv().await, Some(Op::Pause));
    let end = Event::SessionCompleted {
        status: SessionStatus::Completed,
        answer: None,
        usage: Default::default(),
        cost_usd: None,
    };
    events_tx
        .send(EventEnvelope {
            seq: 1,
            ts: String::new(),
            event: end,
        })
        .unwrap();
    assert_eq!(ui.await.unwrap().unwrap(), crate::Exit::Done);
    let screen = emulate(&out, 60, &[]);
    assert!(screen.contains("tokens: 0 in"), "{screen}");
}

/// Issue 17: the status line counts the model's running terminal sessions; `/ps` lists them and
/// `/kill N` sends `kill_terminal` — at the prompt, and while paused without leaving the pause (a
/// directive is still a directive); a session not running, or no number, is explained.
#[test]
fn terminal_sessions_are_counted_listed_and_killed() {
    let mut term = running();
    for (id, command) in [(1, "npm run dev"), (2, "python3 -i")] {
        term.event(Event::TerminalStarted {
            call_id: call_id(&format!("c{id}")),
            id,
            command: command.into(),
            pid: 4000 + id,
        });
    }
    assert!(term.frame().contains("· 2 terminals\n"), "{}", term.frame());
    assert_eq!(term.key(KeyCode::Char(' ')), [Op::Pause]);
    term.typed("/ps");
    assert!(term.key(KeyCode::Enter).is_empty());
    assert_eq!(term.ui.mode, Mode::Paused, "still paused");
    let frame = term.frame();
    assert!(frame.contains("  1      0s  npm run dev"), "{frame}");
    assert!(frame.contains("  2      0s  python3 -i"), "{frame}");
    term.typed("/kill 2");
    assert_eq!(term.key(KeyCode::Enter), [Op::KillTerminal { id: 2 }]);
    assert_eq!(term.ui.mode, Mode::Paused);
    term.typed("/kill 7");
    assert!(term.key(KeyCode::Enter).is_empty());
    assert!(term.frame().contains("no terminal 7 is running"));
    term.typed("/kill two");
    assert!(term.key(KeyCode::Enter).is_empty());
    assert!(term.frame().contains("usage: /kill N"));
    term.event(Event::TerminalExited {
        id: 2,
        code: None,
        signal: Some(15),
    });
    let frame = term.frame();
    assert!(
        frame.contains("▣ terminal 2 killed by signal 15: python3 -i"),
        "{frame}"
    );
    assert!(frame.contains("· 1 terminal\n"), "{frame}");
    // A directive while paused still steers.
    term.typed("keep the server");
    assert_eq!(
        term.key(KeyCode::Enter),
        [Op::Steer {
            text: "keep the server".into()
        }]
    );
    term.event(Event::TaskCompleted {
        status: SessionStatus::Completed,
        answer: None,
        report: None,
    });
    term.typed("/kill 1");
    assert_eq!(term.key(KeyCode::Enter), [Op::KillTerminal { id: 1 }]);
    term.event(Event::TerminalExited {
        id: 1,
        code: Some(0),
        signal: None,
    });
    term.typed("/ps");
    term.key(KeyCode::Enter);
    let frame = term.frame();
    assert!(frame.contains("no terminal sessions running"), "{frame}");
    assert!(
        !frame.contains("terminals ·") && !frame.contains("1 terminal ·"),
        "{frame}"
    );
}

/// Issue 21: `/undo` at the prompt and while paused, `/undo N`, and Ctrl-Z while paused, ask the
/// engine to undo; what it put back shows as one line.
#[test]
fn undo_from_the_prompt_and_while_paused() {
    let mut term = running();
    term.event(Event::Checkpoint {
        id: 3,
        kind: cox_protocol::CheckpointKind::Action,
        call_id: Some(call_id("c1")),
        action: "Run sed -i s/a/b/ src/app.js".into(),
        files: vec![cox_protocol::ChangedPath {
            path: "src/app.js".into(),
            change: cox_protocol::PathChange::Modified,
        }],
    });
    assert!(
        term.frame()
            .contains("◇ checkpoint 3: src/app.js (modified) — /undo puts it back"),
        "{}",
        term.frame()
    );
    assert_eq!(term.key(KeyCode::Char(' ')), [Op::Pause]);
    let ctrl_z = KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL);
    assert_eq!(term.ui.on_key(ctrl_z), [Op::Undo { to: None }]);
    term.typed("/undo 3");
    assert_eq!(term.key(KeyCode::Enter), [Op::Undo { to: Some(3) }]);
    assert_eq!(term.ui.mode, Mode::Paused, "still paused: steer next");
    term.typed("/undo three");
    assert!(term.key(KeyCode::Enter).is_empty());
    assert!(term.frame().contains("usage: /undo"), "{}", term.frame());
    term.event(Event::Undone {
        id: 4,
        undid: vec![3],
        files: vec![cox_protocol::ChangedPath {
            path: "src/app.js".into(),
            change: cox_protocol::PathChange::Modified,
        }],
    });
    assert!(
        term.frame()
            .contains("↶ undid checkpoint 3: src/app.js (modified)"),
        "{}",
        term.frame()
    );
    term.event(Event::TaskCompleted {
        status: SessionStatus::Completed,
        answer: None,
        report: None,
    });
    term.typed("/undo");
    assert_eq!(term.key(KeyCode::Enter), [Op::Undo { to: None }]);
}

#[test]
fn slash_mcp_lists_the_servers_while_paused_and_at_the_prompt() {
    let mut term = running_at(120);
    assert_eq!(term.key(KeyCode::Char(' ')), [Op::Pause]);
    term.typed("/mcp");
    assert_eq!(term.key(KeyCode::Enter), [Op::ListMcp]);
    assert_eq!(term.ui.mode, Mode::Paused, "still paused");
    let ready = cox_protocol::McpServerStatus {
        name: "fs".into(),
        transport: "stdio".into(),
        target: "npx -y @modelcontextprotocol/server-filesystem .".into(),
        ready: true,
        idle: false,
        error: None,
        server: Some("secure-filesystem-server 0.2.0".into()),
        tools: vec!["fs__read_text_file".into(), "fs__write_file".into()],
        resources: Vec::new(),
        prompts: vec!["review: Review a file".into()],
        trusted: true,
    };
    let failed = cox_protocol::McpServerStatus {
        name: "git".into(),
        transport: "stdio".into(),
        target: "uvx mcp-server-git".into(),
        ready: false,
        idle: false,
        error: Some("did not start within 10s (startup_timeout_ms)\nmore".into()),
        server: None,
        tools: Vec::new(),
        resources: Vec::new(),
        prompts: Vec::new(),
        trusted: false,
    };
    term.event(Event::McpServers {
        servers: vec![ready, failed],
    });
    let frame = term.frame();
    assert!(
        frame.contains(
            "◆ mcp fs (stdio, npx -y @modelcontextprotocol/server-filesystem .): 2 tools, 0 \
             resources, 1 prompts · trusted"
        ),
        "{frame}"
    );
    assert!(
        frame.contains("tools: fs__read_text_file, fs__write_file"),
        "{frame}"
    );
    assert!(
        frame.contains("◆ mcp git (stdio, uvx mcp-server-git): failed: did not start within 10s"),
        "{frame}"
    );
    assert!(!frame.contains("more"), "{frame}");
}
