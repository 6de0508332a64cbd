//! `cox [PROMPT]` on a terminal: the live session (`cox-term`). The session stays open between
//! tasks; SPACE pauses, Enter steers or resumes, Esc interrupts, `/quit` or Ctrl-C twice leaves.

use std::process::ExitCode;

use cox_core::{Config, RunOptions, SessionHandle};
use cox_protocol::{Event, SessionStatus};

use crate::args::Shared;
use crate::exec::{Observer, overrides, read_prompt, runtime, working_dir};
use crate::exit::{self, Failure};

pub fn run(shared: &Shared, prompt: Option<String>) -> Result<ExitCode, Failure> {
    let cwd = working_dir(shared)?;
    let prompt = match prompt {
        Some(text) => {
            let text = read_prompt(&text)?;
            Some(cox_core::prompt::expand_attachments(&text, &cwd)?)
        }
        None => None,
    };
    let home = cox_core::config::cox_home()?;
    let config = Config::load(&home, &overrides(shared))?;
    let options = live_options(shared, false)?;
    runtime()?.block_on(async {
        let session = cox_core::start(&config, cwd, options)?;
        let header = header(&config, shared);
        // A session ends when the person leaves it: 0, or 130 after Ctrl-C twice.
        let ended = live(header, session, prompt, false, ()).await?;
        Ok(ExitCode::from(match (ended.signal, ended.exit) {
            (Some(signal), _) => crate::signals::code(signal),
            (None, cox_term::Exit::Done) => 0,
            (None, cox_term::Exit::Interrupted) => exit::INTERRUPTED,
        }))
    })
}

/// What the live UI's header and `/status` panel show of the session's configuration.
pub fn header(config: &Config, shared: &Shared) -> cox_term::Header {
    use clap::ValueEnum;
    let name = |value: Option<clap::builder::PossibleValue>| {
        value.map_or_else(String::new, |v| v.get_name().to_string())
    };
    let approval = match shared.approval {
        Some(approval) => name(approval.to_possible_value()),
        None => "on-request (default with a person there)".to_string(),
    };
    let mut details = vec![
        (
            "sandbox".to_string(),
            name(shared.sandbox.to_possible_value()),
        ),
        ("approval".to_string(), approval),
    ];
    if let Some(effort) = &config.reasoning.effort {
        details.push(("reasoning".to_string(), effort.clone()));
    }
    cox_term::Header {
        model: config.model.clone(),
        provider: config.provider.name.clone(),
        details,
    }
}

/// How a session runs in the live UI: a person there, steering with `--steerable` (always for a
/// plan run shown live).
pub fn live_options(shared: &Shared, plan_run: bool) -> Result<RunOptions, Failure> {
    let steerable = shared.steerable || plan_run;
    Ok(RunOptions {
        interactive: true,
        steerable,
        steer_grace_ms: match (steerable, shared.steer_grace) {
            (true, grace) => grace.unwrap_or(cox_core::DEFAULT_STEER_GRACE_MS),
            (false, _) => 0,
        },
        steer_grace_destructive_ms: shared
            .steer_grace_destructive
            .unwrap_or(cox_core::DEFAULT_STEER_GRACE_DESTRUCTIVE_MS),
        one_shot: false,
        planning: false,
        sandbox: crate::exec::sandbox(shared)?,
        approval: shared.approval.map(|a| a.policy()),
    })
}

/// Shows a session (or a plan run, whose handle is the same) in the live UI until it ends or the
/// person quits: how the UI ended, the status of the `session_completed` that ended the stream
/// (if it did), and `observer`, which saw every event. `working`: the session starts work by
/// itself (a plan run), so the UI starts as busy.
pub async fn live<O: Observer + Send + 'static>(
    header: cox_term::Header,
    mut session: SessionHandle,
    prompt: Option<String>,
    working: bool,
    mut observer: O,
) -> Result<Live<O>, Failure> {
    let ops = session.op_sender();
    // SIGTERM and SIGHUP (a closed terminal) interrupt and end the session; in raw mode Ctrl-C
    // arrives as a key, but a SIGINT sent from outside is handled the same way.
    let signals = crate::signals::Signals::register()?;
    let received = signals.received();
    signals.forward(session.op_sender());
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let forward = tokio::spawn(async move {
        let mut ended = None;
        while let Some(envelope) = session.next_event().await {
            observer.observe(&envelope.event);
            if let Event::SessionCompleted { status, .. } = &envelope.event {
                ended = Some(*status);
            }
            if events_tx.send(envelope).is_err() {
                break;
            }
        }
        (ended, observer)
    });
    let exit = cox_term::run(header, ops, events_rx, prompt, working)
        .await
        .map_err(|e| Failure {
            code: exit::FAILED,
            message: format!("the terminal failed: {e}"),
            hint: None,
        })?;
    let (ended, observer) = forward.await.map_err(|e| Failure {
        code: exit::FAILED,
        message: format!("the session's event stream failed: {e}"),
        hint: None,
    })?;
    let signal = received.load(std::sync::atomic::Ordering::SeqCst);
    Ok(Live {
        exit,
        ended,
        observer,
        signal: (signal != 0).then_some(signal),
    })
}

/// How a live session ended.
pub struct Live<O> {
    pub exit: cox_term::Exit,
    /// The status of the `session_completed` that ended the stream, if it did.
    pub ended: Option<SessionStatus>,
    pub observer: O,
    /// The signal (SIGTERM, SIGHUP) that ended it.
    pub signal: Option<i32>,
}
