//! SIGINT, SIGTERM and SIGHUP, the same for every subcommand that runs a session or a plan: the
//! first interrupts the work (the running command trees are killed, the journal records
//! `interrupted`) and ends the session; cox then exits 128 + the signal (130, 143, 129). A second
//! signal leaves at once with that code; the launchers of running commands die with cox
//! (PDEATHSIG), taking their commands with them.
//!
//! The handlers are registered before the session starts, so no signal ever finds cox with the
//! default action (dying with work half done).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use cox_protocol::Op;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::exit::{self, Failure};

/// The handlers, registered; [`Signals::forward`] starts acting on them.
pub struct Signals {
    streams: Vec<(i32, Signal)>,
    received: Arc<AtomicI32>,
}

impl Signals {
    /// Registers the handlers (on the current runtime).
    pub fn register() -> Result<Signals, Failure> {
        let mut streams = Vec::new();
        for kind in [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ] {
            let number = kind.as_raw_value();
            let stream = signal(kind).map_err(|e| Failure {
                code: exit::FAILED,
                message: format!("cannot handle signal {number}: {e}"),
                hint: None,
            })?;
            streams.push((number, stream));
        }
        Ok(Signals {
            streams,
            received: Arc::new(AtomicI32::new(0)),
        })
    }

    /// The signal that arrived first, if any.
    pub fn received(&self) -> Arc<AtomicI32> {
        Arc::clone(&self.received)
    }

    /// From now on, a signal interrupts and ends the session behind `ops`.
    pub fn forward(self, ops: tokio::sync::mpsc::Sender<Op>) {
        let received = self.received;
        for (number, mut stream) in self.streams {
            let ops = ops.clone();
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    let first = received
                        .compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
                    if !first {
                        std::process::exit(code(received.load(Ordering::SeqCst)).into());
                    }
                    tracing::info!(signal = number, "signal received; interrupting");
                    let _ = ops.send(Op::Interrupt).await;
                    let _ = ops.send(Op::Shutdown).await;
                }
            });
        }
    }
}

/// The exit code after the session ended: 128 + the signal that ended it, else `otherwise`.
pub fn exit_code(
    received: &AtomicI32,
    otherwise: std::process::ExitCode,
) -> std::process::ExitCode {
    match received.load(Ordering::SeqCst) {
        0 => otherwise,
        number => std::process::ExitCode::from(code(number)),
    }
}

/// The exit code of a process ended by `signal`, as a shell reports it: 128 + its number.
pub fn code(signal: i32) -> u8 {
    (128 + signal).clamp(0, 255) as u8
}
