//! Issue 18's frames: type-ahead, the composer, Ctrl-C, slash commands and panels, Markdown, the
//! held action's preview, resize, the approval confirmation, a cancelled stream.

use cox_protocol::{CallId, Event, Op, SessionStatus};
use crossterm::event::{KeyCode, KeyModifiers};

use super::{Term, call_id, running, running_at, started};
use crate::{Exit, Mode};

fn text(term: &mut Term, text: &str) {
    term.event(Event::AgentMessageDelta { text: text.into() });
}

/// The first key typed while the agent works pauses at once and is the directive's first letter:
/// nothing typed is lost (the seed's "Keep" was).
#[test]
fn typing_while_the_agent_works_pauses_and_keeps_every_key() {
    let mut term = running();
    text(&mut term, "Removing the legacy wrapper");
    assert_eq!(term.key(KeyCode::Char('K')), [Op::Pause]);
    assert_eq!(term.ui.mode, Mode::Paused);
    term.typed("eep the wrapper, mark it @deprecated");
    assert!(
        term.frame()
            .contains("steer› Keep the wrapper, mark it @deprecated")
    );
    assert_eq!(
        term.key(KeyCode::Enter),
        [Op::Steer {
            text: "Keep the wrapper, mark it @deprecated".into()
        }]
    );
    // SPACE alone pauses with an empty line.
    let mut term = running();
    assert_eq!(term.key(KeyCode::Char(' ')), [Op::Pause]);
    assert_eq!(term.ui.input.text(), "");
    // A paste while the agent works pauses too, and keeps the pasted text whole.
    let mut term = running();
    assert_eq!(term.ui.on_paste("line one\nline two"), [Op::Pause]);
    assert_eq!(term.ui.input.text(), "line one\nline two");
}

/// The composer edits like a shell line, and a long directive wraps at 60 columns with its start
/// in view.
#[test]
fn the_composer_edits_and_wraps_at_sixty_columns() {
    let mut term = running_at(60);
    assert_eq!(term.key(KeyCode::Char(' ')), [Op::Pause]);
    term.typed(
        "keep the legacy callback wrapper in src/api.js, mark it deprecated in its doc \
         comment and make the new promise API call through it",
    );
    term.key(KeyCode::Home);
    term.typed("Please ");
    term.key_with(KeyCode::Char('e'), KeyModifiers::CONTROL);
    term.key_with(KeyCode::Char('w'), KeyModifiers::CONTROL);
    term.typed("it.");
    let frame = term.frame();
    for line in frame.lines() {
        assert!(line.chars().count() <= 60, "{line:?}");
    }
    assert!(frame.contains("steer› Please keep the legacy"), "{frame}");
    insta::assert_snapshot!("composer_wrapped", frame);
    assert_eq!(
        term.key(KeyCode::Enter),
        [Op::Steer {
            text: "Please keep the legacy callback wrapper in src/api.js, mark it deprecated \
                   in its doc comment and make the new promise API call through it."
                .into()
        }]
    );
}

/// Ctrl-C at the prompt clears what was typed first; a second within two seconds quits; typed
/// text is never thrown away by one press.
#[test]
fn ctrl_c_clears_the_input_then_quits() {
    let mut term = Term::new(80);
    term.event(started());
    term.typed("half a thought");
    assert!(term.ctrl_c().is_empty());
    assert_eq!(term.ui.input.text(), "");
    assert_eq!(term.ui.mode, Mode::Prompt);
    assert!(
        term.frame()
            .contains("input cleared — Ctrl-C again to quit")
    );
    assert_eq!(term.ctrl_c(), [Op::Interrupt, Op::Shutdown]);
    assert_eq!(term.ui.mode, Mode::Quitting);
    assert_eq!(term.ui.exit, Exit::Done);
    // An empty prompt: the first press only says how to quit.
    let mut term = Term::new(80);
    assert!(term.ctrl_c().is_empty());
    assert!(term.frame().contains("Ctrl-C again to quit (or /quit)"));
    assert_eq!(term.ui.mode, Mode::Prompt);
}

/// `/` opens the popup of commands, narrowed as you type; Tab completes; `/help` lists them.
#[test]
fn slash_opens_the_popup_and_help_lists_the_commands() {
    let mut term = Term::new(80);
    term.typed("/");
    let frame = term.frame();
    for command in ["/help", "/status", "/diff", "/model", "/undo", "/quit"] {
        assert!(frame.contains(command), "{command} in\n{frame}");
    }
    term.typed("st");
    let frame = term.frame();
    assert!(frame.contains("/status"), "{frame}");
    assert!(!frame.contains("/diff"), "{frame}");
    term.key(KeyCode::Tab);
    assert_eq!(term.ui.input.text(), "/status");
    term.ui.input.clear();
    term.typed("/help");
    assert!(term.key(KeyCode::Enter).is_empty());
    insta::assert_snapshot!("help", term.frame());
    term.typed("/nonsense");
    assert!(term.key(KeyCode::Enter).is_empty());
    assert!(
        term.frame().contains("unknown command /nonsense"),
        "{}",
        term.frame()
    );
}

/// `/status` is a panel: session, model, sandbox, approval policy, window, tokens, cost.
#[test]
fn slash_status_is_a_panel() {
    let mut term = running();
    term.event(Event::Usage {
        input_tokens: 12_000,
        cached_input_tokens: 8_000,
        output_tokens: 640,
        context_tokens: 12_640,
        context_window: 272_000,
        cost_usd: Some(0.0123),
    });
    term.event(Event::TaskCompleted {
        status: SessionStatus::Completed,
        answer: None,
        report: None,
    });
    term.typed("/status");
    assert!(term.key(KeyCode::Enter).is_empty());
    let frame = term.frame();
    for field in [
        "session",
        "gpt-test",
        "workspace-write",
        "on-request",
        "272000",
        "$0.0123",
    ] {
        assert!(frame.contains(field), "{field} in\n{frame}");
    }
    let elapsed = regex::Regex::new(r"elapsed +\d+s").unwrap();
    insta::assert_snapshot!(
        "status_panel",
        elapsed.replace_all(&frame, "elapsed [t]s").into_owned()
    );
}

/// `/diff` shows this session's changes: counts per file, then the diffs.
#[test]
fn slash_diff_shows_the_sessions_changes() {
    let mut term = running();
    term.event(Event::PatchApplied {
        call_id: call_id("c1"),
        diff: "--- a/src/api.js\n+++ b/src/api.js\n@@ -7,3 +7,4 @@\n-function wrap(cb) {\n+/** @deprecated */\n+function wrap(cb) {\n".into(),
    });
    term.event(Event::TaskCompleted {
        status: SessionStatus::Completed,
        answer: None,
        report: None,
    });
    term.typed("/diff");
    assert!(term.key(KeyCode::Enter).is_empty());
    let frame = term.frame();
    assert!(
        frame.contains("this session changed 1 file:\n  src/api.js  +2 -1"),
        "{frame}"
    );
}

/// Markdown renders while it streams: headings, emphasis, lists, a table sized to its cells, a
/// fenced code block with its language, links with their target.
#[test]
fn markdown_streams_rendered() {
    let mut term = running();
    for delta in [
        "# The plan\n\nKeep **the wrapper** and mark it `@deprecated`.\n\n- first",
        " item\n- second item\n\n| file | change |\n|---|---|\n| src/api.js | wrapper kept |\n",
        "| src/new.js | calls it |\n\nDone.\n\n```js\nfunction wrap(cb) {\n  return cb;\n}\n```\n",
        "See [the docs](https://example.com/docs).\n> quoted\n",
    ] {
        text(&mut term, delta);
    }
    let frame = term.frame();
    assert!(!frame.contains("**"), "{frame}");
    assert!(!frame.contains("```"), "{frame}");
    assert!(!frame.contains("|---"), "{frame}");
    insta::assert_snapshot!("markdown", frame);
}

/// The grace window shows what it holds — the lines a patch removes — counts down, and is gone
/// once the call runs: no stale "starts in" line.
#[test]
fn a_held_action_shows_its_preview_until_it_runs() {
    let mut term = running();
    term.event(Event::ActionPending {
        call_id: call_id("c1"),
        name: "apply_patch".into(),
        grace_ms: 3000,
        preview: vec![
            "update src/api.js".into(),
            "-function wrap(cb) {".into(),
            "-  return cb;".into(),
            "-}".into(),
        ],
        destructive: Some("the patch removes 3 lines from src/api.js".into()),
    });
    let countdown = regex::Regex::new(r"starts in \d\.\ds").unwrap();
    let frame = term.frame();
    assert!(countdown.is_match(&frame), "{frame}");
    insta::assert_snapshot!(
        "held",
        countdown.replace_all(&frame, "starts in [t]s").into_owned()
    );
    // Paused in the window: it says the call waits.
    assert_eq!(term.key(KeyCode::Char(' ')), [Op::Pause]);
    term.event(Event::Paused);
    assert!(
        term.frame().contains("⏸ held: apply_patch waits"),
        "{}",
        term.frame()
    );
    // A directive replaces it: the preview goes.
    term.typed("keep it");
    term.key(KeyCode::Enter);
    term.event(Event::Steered {
        text: "keep it".into(),
    });
    assert!(!term.frame().contains("apply_patch"), "{}", term.frame());
    // A call that runs: gone with its result.
    term.event(Event::ActionPending {
        call_id: call_id("c2"),
        name: "shell".into(),
        grace_ms: 1000,
        preview: vec!["$ cargo test".into()],
        destructive: None,
    });
    assert!(term.frame().contains("│ $ cargo test"));
    term.event(Event::ToolResult {
        call_id: call_id("c2"),
        ok: true,
        output: String::new(),
        outcome: Default::default(),
    });
    assert!(!term.frame().contains("starts in"), "{}", term.frame());
}

/// A resize mid-stream on a terminal that cuts rather than reflows (the emulator here, like
/// xterm): the live area is drawn once at the new width — the streamed line is not shown twice,
/// no row is wider than the terminal — and the stream goes on. (A reflowing terminal, where every
/// committed line must also stay exactly once, is the tmux test's.)
#[test]
fn a_resize_mid_stream_redraws_the_live_area_once() {
    let mut term = running();
    text(
        &mut term,
        "The first committed line of the answer is here.\nThe second committed line follows \
         it closely.\nA partial line still streaming",
    );
    term.resize(50);
    text(&mut term, " and then it ends.\n");
    let screen = term.screen();
    for line in screen.lines() {
        assert!(line.chars().count() <= 50, "{line:?}");
    }
    for needle in ["The first committed", "The second committed"] {
        assert!(
            screen.matches(needle).count() <= 1,
            "{needle} twice in\n{screen}"
        );
    }
    assert_eq!(screen.matches("A partial line").count(), 1, "{screen}");
    assert!(screen.contains("streaming and then it ends."), "{screen}");
    assert_eq!(screen.matches("THINKING ·").count(), 1, "{screen}");
}

/// Choosing an approval says what was chosen.
#[test]
fn an_approval_is_confirmed() {
    let mut term = running();
    term.event(Event::ApprovalRequested {
        call_id: CallId("c9".into()),
        action: "git push origin main".into(),
        reason: "the command asks to run outside the sandbox".into(),
    });
    assert_eq!(
        term.key(KeyCode::Char('s')),
        [Op::Approve {
            call_id: CallId("c9".into()),
            decision: cox_protocol::ApprovalDecision::Session
        }]
    );
    assert!(
        term.frame().contains("✓ approved for this session"),
        "{}",
        term.frame()
    );
}

/// A stream cut by an interrupt ends with a marker, not a bare half word.
#[test]
fn a_cancelled_stream_is_marked() {
    let mut term = running();
    text(&mut term, "I will now rem");
    term.key(KeyCode::Esc);
    term.event(Event::TaskCompleted {
        status: SessionStatus::Interrupted,
        answer: None,
        report: None,
    });
    assert!(
        term.frame().contains("I will now rem …⟨cancelled⟩"),
        "{}",
        term.frame()
    );
}

/// A plan run starts a session per step: the header and a repeated warning show once, the plan
/// block once, and the step lines carry each status change (issue 18's `cox run` noise).
#[test]
fn a_plan_run_shows_its_header_warning_and_plan_once() {
    use cox_protocol::{PlanStep, StepState, StepStatus};
    let plan = |first: StepStatus, second: StepStatus| Event::PlanUpdated {
        steps: vec![
            PlanStep {
                step: "S1 Add a docstring".into(),
                status: first,
            },
            PlanStep {
                step: "S2 Add a comment".into(),
                status: second,
            },
        ],
        explanation: None,
    };
    let catalog = || Event::Warning {
        message: "the catalog does not know model `gpt-test`".into(),
    };
    let mut term = Term::new(80);
    term.event(plan(StepStatus::InProgress, StepStatus::Pending));
    for (id, title) in [("S1", "Add a docstring"), ("S2", "Add a comment")] {
        if id == "S2" {
            term.event(plan(StepStatus::Completed, StepStatus::InProgress));
        }
        term.event(Event::StepStarted {
            id: id.into(),
            title: title.into(),
        });
        term.event(started());
        term.event(catalog());
        text(&mut term, &format!("Working on {id}.\n"));
        term.event(Event::TaskCompleted {
            status: SessionStatus::Completed,
            answer: None,
            report: None,
        });
        let done = match id {
            "S1" => plan(StepStatus::Completed, StepStatus::Pending),
            _ => plan(StepStatus::Completed, StepStatus::Completed),
        };
        term.event(done);
        term.event(Event::StepFinished {
            id: id.into(),
            status: StepState::Done,
            changed_files: Vec::new(),
            directives: Vec::new(),
            changed: None,
        });
    }
    let frame = term.frame();
    let count = |needle: &str| frame.matches(needle).count();
    assert_eq!(count("cox · mock · gpt-test"), 1, "{frame}");
    assert_eq!(count("warning: the catalog"), 1, "{frame}");
    assert_eq!(count("● Plan"), 1, "{frame}");
    assert_eq!(count("step S1 done"), 1, "{frame}");
    assert_eq!(count("▶ step S2"), 1, "{frame}");
    insta::assert_snapshot!("plan_run_once", frame);
}

/// Outside a plan run, a plan update that moves one step shows that step, not the whole plan.
#[test]
fn a_plan_update_shows_only_the_steps_that_moved() {
    use cox_protocol::{PlanStep, StepStatus};
    let plan = |first: StepStatus| Event::PlanUpdated {
        steps: vec![
            PlanStep {
                step: "Read the code".into(),
                status: first,
            },
            PlanStep {
                step: "Fix the bug".into(),
                status: StepStatus::Pending,
            },
        ],
        explanation: None,
    };
    let mut term = running();
    term.event(plan(StepStatus::InProgress));
    term.event(plan(StepStatus::Completed));
    let frame = term.frame();
    assert_eq!(frame.matches("Fix the bug").count(), 1, "{frame}");
    assert_eq!(frame.matches("Read the code").count(), 2, "{frame}");
    assert_eq!(frame.matches("● Plan").count(), 2, "{frame}");
}
