//! `cox [PROMPT]` on a terminal: the live session (`cox-term`). The session stays open between
//! tasks; SPACE pauses, Enter steers or resumes, Esc interrupts, `/quit` or Ctrl-C twice leaves.

use std::process::ExitCode;

use cox_core::{Config, RunOptions};

use crate::args::Shared;
use crate::exec::{overrides, read_prompt, runtime, working_dir};
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
    let options = RunOptions {
        interactive: true,
        steerable: shared.steerable,
        steer_grace_ms: match (shared.steerable, shared.steer_grace) {
            (true, grace) => grace.unwrap_or(cox_core::DEFAULT_STEER_GRACE_MS),
            (false, _) => 0,
        },
        one_shot: false,
        planning: false,
        sandbox: crate::exec::sandbox(shared)?,
        approval: shared.approval.map(|a| a.policy()),
    };
    runtime()?.block_on(async {
        let mut session = cox_core::start(&config, cwd, options)?;
        let ops = session.op_sender();
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = session.next_event().await {
                if events_tx.send(event).is_err() {
                    break;
                }
            }
        });
        let header = cox_term::Header {
            model: config.model.clone(),
            provider: config.provider.name.clone(),
        };
        let exit = cox_term::run(header, ops, events_rx, prompt, false)
            .await
            .map_err(|e| Failure {
                code: exit::FAILED,
                message: format!("the terminal failed: {e}"),
                hint: None,
            })?;
        Ok(ExitCode::from(match exit {
            cox_term::Exit::Done => 0,
            cox_term::Exit::Interrupted => exit::INTERRUPTED,
        }))
    })
}
