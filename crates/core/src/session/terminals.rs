//! The session's side of terminal sessions (`exec_command`): each start, write and end journaled
//! and announced (`terminal_started`, `terminal_output`, `terminal_exited`), each running one
//! named in `$COX_HOME/running/` for as long as it runs (not just for the call that started it),
//! the person's `kill_terminal`, and on resume the model told which sessions cox lost when it
//! stopped.
//!
//! **Decided:** a write is journaled before its keys are sent (`terminal_write`; the call's
//! `tool_end` says whether they went); an end is journaled and announced when the engine next
//! looks — after each call, at the end of each task, at once while the session is idle, and
//! when the session ends (every session is killed then).

use cox_protocol::{Action, CallId, Event, Item};
use cox_tools::TerminalEffect;

use super::Session;
use super::turn::JournalFailed;
use crate::journal::Record;

impl Session {
    /// Before a call's tool runs: the keys it will type, journaled.
    pub(super) async fn journal_typing(
        &mut self,
        call_id: &CallId,
        actions: &[Action],
    ) -> Result<(), JournalFailed> {
        for action in actions {
            if let Action::Type { session, text } = action {
                self.record(&Record::TerminalWrite {
                    call_id: call_id.clone(),
                    id: *session,
                    text: text.clone(),
                })
                .await?;
            }
        }
        Ok(())
    }

    /// After a call that worked with a terminal session: its start journaled and announced, and
    /// what the model saw announced.
    pub(super) async fn terminal_effect(
        &mut self,
        call_id: &CallId,
        effect: TerminalEffect,
    ) -> Result<(), JournalFailed> {
        if let Some((command, pid)) = effect.started {
            self.record(&Record::TerminalStart {
                call_id: call_id.clone(),
                id: effect.id,
                command: command.clone(),
                pid,
            })
            .await?;
            self.emitter
                .emit(Event::TerminalStarted {
                    call_id: call_id.clone(),
                    id: effect.id,
                    command,
                    pid,
                })
                .await;
        }
        self.emitter
            .emit(Event::TerminalOutput {
                call_id: call_id.clone(),
                id: effect.id,
                wrote: effect.wrote,
                output: self.config.credentials.redact(&effect.output),
            })
            .await;
        Ok(())
    }

    /// Sessions that ended since the last look: journaled, announced, and their `running/`
    /// entries removed.
    pub(super) async fn report_ended_terminals(&mut self) {
        for (id, _pid, exit) in self.terminals.take_ended() {
            self.terminal_entries.remove(&id);
            tracing::info!(id, code = ?exit.code, signal = ?exit.signal, "terminal session ended");
            // Best effort, as a task's end is: the session is over either way.
            let _ = self
                .record(&Record::TerminalEnd {
                    id,
                    code: exit.code,
                    signal: exit.signal,
                    gone: false,
                })
                .await;
            self.emitter
                .emit(Event::TerminalExited {
                    id,
                    code: exit.code,
                    signal: exit.signal,
                })
                .await;
        }
    }

    /// On the first task after a resume: the sessions that were running when cox stopped are
    /// journaled as gone, and the model is told (once: the note is journaled too).
    pub(super) async fn tell_lost_terminals(&mut self) -> Result<(), JournalFailed> {
        let lost = std::mem::take(&mut self.lost_terminals);
        if lost.is_empty() {
            return Ok(());
        }
        for (id, _) in &lost {
            self.record(&Record::TerminalEnd {
                id: *id,
                code: None,
                signal: None,
                gone: true,
            })
            .await?;
        }
        let text = crate::resume::lost_terminals_note(&lost);
        self.record(&Record::Note { text: text.clone() }).await?;
        self.history.push(Item::User { text });
        Ok(())
    }
}

/// The person's `kill_terminal`: the session and everything it runs are killed in the
/// background (its end is reported like any other); `Err` says why nothing was killed.
pub(super) fn kill_terminal(
    terminals: &cox_tools::terminal::Terminals,
    id: u32,
) -> Result<(), String> {
    match terminals.get(id).filter(|term| term.exit().is_none()) {
        Some(term) => {
            tracing::info!(id, "terminal session killed by the person");
            tokio::spawn(async move {
                term.kill().await;
            });
            Ok(())
        }
        None => Err(format!(
            "no running terminal session {id} to kill (/ps lists them)"
        )),
    }
}
