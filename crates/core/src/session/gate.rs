//! The steering gate: pause, resume and steer, shared by the actor's op loop (which flips it the
//! moment an op arrives) and the running task (which obeys it).
//!
//! The guarantee: once `paused` is emitted, the gate is closed, and every tool call and model request
//! passes [`Gate::wait_open`] before it starts — so nothing new starts until `resume` or `steer`.
//! Every pause or steer also bumps an epoch, which cancels a model request in flight even when the
//! gate was opened again before the task noticed (a steer is a pause and a resume at once).

use std::sync::Mutex;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    paused: bool,
    epoch: u64,
}

#[derive(Debug)]
pub(super) struct Gate {
    state: watch::Sender<State>,
    directives: Mutex<Vec<String>>,
    /// Notes for the model from what happened while paused (an undo), given before directives.
    notes: Mutex<Vec<String>>,
    /// Journal lines for what happened while paused, written at the barrier.
    records: Mutex<Vec<crate::journal::Record>>,
}

impl Gate {
    pub(super) fn new() -> Self {
        Gate {
            state: watch::Sender::new(State {
                paused: false,
                epoch: 0,
            }),
            directives: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
            records: Mutex::new(Vec::new()),
        }
    }

    /// Closes the gate; false if it was closed already.
    pub(super) fn pause(&self) -> bool {
        self.state.send_if_modified(|state| {
            let changed = !state.paused;
            state.paused = true;
            state.epoch += 1;
            changed
        })
    }

    /// Opens the gate; false if it was open.
    pub(super) fn resume(&self) -> bool {
        self.state.send_if_modified(|state| {
            let changed = state.paused;
            state.paused = false;
            changed
        })
    }

    /// Queues a directive and lets the task go on: it applies the directive before anything else.
    pub(super) fn steer(&self, text: String) {
        locked(&self.directives).push(text);
        self.state.send_modify(|state| {
            state.paused = false;
            state.epoch += 1;
        });
    }

    pub(super) fn epoch(&self) -> u64 {
        self.state.borrow().epoch
    }

    pub(super) fn is_paused(&self) -> bool {
        self.state.borrow().paused
    }

    /// Completes when a pause or steer happens after `epoch`.
    pub(super) async fn changed_since(&self, epoch: u64) {
        let mut watcher = self.state.subscribe();
        let _ = watcher.wait_for(|state| state.epoch != epoch).await;
    }

    /// Waits while the gate is closed; false when interrupted meanwhile.
    pub(super) async fn wait_open(&self, cancel: &CancellationToken) -> bool {
        let mut watcher = self.state.subscribe();
        tokio::select! {
            result = watcher.wait_for(|state| !state.paused) => result.is_ok(),
            _ = cancel.cancelled() => false,
        }
    }

    /// Queues a note for the model, applied at the barrier.
    pub(super) fn note(&self, text: String) {
        locked(&self.notes).push(text);
    }

    /// Queues a journal line, written at the barrier.
    pub(super) fn journal_later(&self, record: crate::journal::Record) {
        locked(&self.records).push(record);
    }

    pub(super) fn take_records(&self) -> Vec<crate::journal::Record> {
        take(&self.records)
    }

    pub(super) fn take_notes(&self) -> Vec<String> {
        take(&self.notes)
    }

    /// The directives given since the last call, in order.
    pub(super) fn take_directives(&self) -> Vec<String> {
        take(&self.directives)
    }
}

/// A queue's lock (a panic while it was held leaves a queue, never a poisoned gate).
fn locked<T>(queue: &Mutex<Vec<T>>) -> std::sync::MutexGuard<'_, Vec<T>> {
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Everything a queue holds, in order, leaving it empty.
fn take<T>(queue: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *locked(queue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn steer_cancels_in_flight_work_even_when_the_gate_is_open_again() {
        let gate = Gate::new();
        let before = gate.epoch();
        gate.steer("keep the wrapper".into());
        assert!(!gate.is_paused());
        gate.changed_since(before).await;
        assert_eq!(gate.take_directives(), ["keep the wrapper"]);
        assert!(gate.take_directives().is_empty());
    }

    #[tokio::test]
    async fn wait_open_holds_until_resume_or_interrupt() {
        let gate = std::sync::Arc::new(Gate::new());
        assert!(gate.pause());
        assert!(!gate.pause(), "already paused");
        let cancel = CancellationToken::new();
        let waiter = {
            let gate = std::sync::Arc::clone(&gate);
            let cancel = cancel.clone();
            tokio::spawn(async move { gate.wait_open(&cancel).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert!(gate.resume());
        assert!(waiter.await.unwrap());
        gate.pause();
        cancel.cancel();
        assert!(!gate.wait_open(&cancel).await);
    }
}
