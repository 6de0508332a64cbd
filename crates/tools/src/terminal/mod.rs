//! Terminal sessions: commands that keep running between tool calls, in a pseudo-terminal the
//! model types into (`exec_command`, `write_stdin`, `list_sessions`, `kill_session`).
//!
//! A session is a pty cox holds the master end of; its command starts through the same sandbox
//! launcher as `shell`'s, with `--tty` so that the command leads a session of its own whose
//! controlling terminal is the pty (Ctrl-C typed there interrupts its foreground job). What it
//! prints goes through a terminal emulator ([`screen`]): the model reads the visible screen of a
//! full-screen program and the text of a line program, never raw escape codes.
//!
//! **Lifetime.** A session ends when its command exits, when `kill_session` or the person kills
//! it, when a call working with it is interrupted, when the cox session ends
//! ([`Terminals::kill_all`]), and when cox dies: the launcher's death signal kills everything the
//! command started (its namespace, or its subreaper's descendants), and [`Terminals`] sends every
//! launcher SIGTERM when dropped. Each session's launcher is told to the engine as it starts
//! (`ToolContext::watch`), so a later cox kills what a dead one left (`core::leftovers`).
//!
//! **Decided:** at most [`Terminals::max`] sessions at once (a start beyond it is an error that
//! says how to free one); terminals are 80x24 with `TERM=xterm-256color`; without a launcher (an
//! embedder running commands directly) the pty is the command's standard streams but not its
//! controlling terminal.

pub mod keys;
pub mod lines;
pub mod screen;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use crate::ToolContext;
use screen::Screen;

/// How a session's command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exited with code {code}"),
            (None, Some(signal)) => write!(f, "was killed by signal {signal}"),
            (None, None) => write!(f, "ended"),
        }
    }
}

/// One running (or just ended) session.
pub struct Term {
    pub id: u32,
    pub command: String,
    /// The launcher's pid, which leads the process group cox signals.
    pub pid: u32,
    /// Started outside the sandbox (approved): what is typed into it leaves the sandbox too.
    pub escalated: bool,
    pub started: Instant,
    master: Arc<AsyncFd<OwnedFd>>,
    screen: Arc<Mutex<Screen>>,
    /// Set when the command has exited and its output has been read to the end.
    exit: tokio::sync::watch::Receiver<Option<Exit>>,
    /// What was typed since the last Enter (see [`lines`]).
    line: Mutex<Vec<u8>>,
}

impl std::fmt::Debug for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Term")
            .field("id", &self.id)
            .field("command", &self.command)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Term {
    pub fn exit(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Types `bytes` into the terminal.
    pub async fn write(&self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            let mut guard = self
                .master
                .writable()
                .await
                .map_err(|e| format!("cannot write to session {}: {e}", self.id))?;
            match guard
                .try_io(|fd| rustix::io::write(fd.get_ref(), bytes).map_err(std::io::Error::from))
            {
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(format!("cannot write to session {}: {e}", self.id)),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// What was typed since the last Enter: the line a write goes on.
    pub fn unsubmitted(&self) -> Vec<u8> {
        lock(&self.line).clone()
    }

    /// Remembers what a write typed (call after it went).
    pub fn typed(&self, bytes: &[u8]) {
        let mut line = lock(&self.line);
        *line = lines::unsubmitted(&line, bytes);
    }

    /// Whether a full-screen program (the alternate screen) is showing.
    pub fn full_screen(&self) -> bool {
        lock(&self.screen).full_screen()
    }

    /// Whether arrow keys go in application mode.
    pub fn application_cursor(&self) -> bool {
        lock(&self.screen).application_cursor()
    }

    /// Waits up to `yield_ms` (less if the command exits or `cancel` fires), then returns what
    /// the model should see: the screen, or the text printed since the last look. Cancelled, it
    /// kills the session.
    pub async fn settle(
        &self,
        yield_ms: u64,
        budget: usize,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> String {
        let mut exit = self.exit.clone();
        let deadline = tokio::time::sleep(Duration::from_millis(yield_ms));
        tokio::pin!(deadline);
        if exit.borrow().is_none() {
            tokio::select! {
                _ = &mut deadline => {}
                _ = exit.wait_for(Option::is_some) => {}
                _ = cancel.cancelled() => {}
            }
        }
        let text = self.look(budget);
        // The person interrupted the call: the session it was working with ends too.
        if cancel.is_cancelled() && self.exit().is_none() {
            self.kill().await;
        }
        text
    }

    /// What the model sees now, within `budget` bytes.
    pub fn look(&self, budget: usize) -> String {
        lock(&self.screen).take(budget)
    }

    fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }

    /// Ends the command and everything it started: SIGTERM to the launcher (which kills its
    /// namespace or its descendants), SIGKILL to what is left after two seconds.
    pub async fn kill(&self) -> Exit {
        if let Some(exit) = self.exit() {
            return exit;
        }
        self.signal(rustix::process::Signal::TERM);
        let mut exit = self.exit.clone();
        if tokio::time::timeout(Duration::from_secs(2), exit.wait_for(Option::is_some))
            .await
            .is_err()
        {
            self.signal(rustix::process::Signal::KILL);
            let _ =
                tokio::time::timeout(Duration::from_secs(2), exit.wait_for(Option::is_some)).await;
        }
        self.exit().unwrap_or(Exit {
            code: None,
            signal: Some(9),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A session as `list_sessions` and the front ends show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: u32,
    pub command: String,
    pub pid: u32,
    pub seconds: u64,
    pub exit: Option<Exit>,
}

/// The terminal sessions of one cox session.
#[derive(Debug)]
pub struct Terminals {
    max: usize,
    state: Mutex<State>,
    /// Woken when a session's command ends.
    ended: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct State {
    next: u32,
    sessions: BTreeMap<u32, Arc<Term>>,
    /// Ended sessions whose end the engine has not yet taken: (id, launcher pid, how).
    unreported: Vec<(u32, u32, Exit)>,
}

/// What a start needs besides the tool context.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub argv: Vec<String>,
    pub command: String,
    pub workdir: std::path::PathBuf,
    pub escalated: bool,
}

impl Terminals {
    /// Room for `max` running sessions, numbered from `first` (a resumed cox session goes on
    /// after the ids it used before).
    pub fn new(max: usize, first: u32) -> Arc<Terminals> {
        Arc::new(Terminals {
            max,
            state: Mutex::new(State {
                next: first.max(1),
                ..State::default()
            }),
            ended: tokio::sync::Notify::new(),
        })
    }

    /// How many sessions may run at once.
    pub fn max(&self) -> usize {
        self.max
    }

    pub fn get(&self, id: u32) -> Option<Arc<Term>> {
        lock(&self.state).sessions.get(&id).cloned()
    }

    /// Every session still known (running, or ended and not yet looked at).
    pub fn list(&self) -> Vec<Listed> {
        lock(&self.state)
            .sessions
            .values()
            .map(|t| Listed {
                id: t.id,
                command: t.command.clone(),
                pid: t.pid,
                seconds: t.started.elapsed().as_secs(),
                exit: t.exit(),
            })
            .collect()
    }

    /// Sessions whose command is running.
    pub fn running(&self) -> usize {
        lock(&self.state)
            .sessions
            .values()
            .filter(|t| t.exit().is_none())
            .count()
    }

    /// Forgets an ended session (after the model has seen its end).
    pub fn forget(&self, id: u32) {
        let mut state = lock(&self.state);
        if state.sessions.get(&id).is_some_and(|t| t.exit().is_some()) {
            state.sessions.remove(&id);
        }
    }

    /// Sessions that ended since the last call, each once: (id, launcher pid, how).
    pub fn take_ended(&self) -> Vec<(u32, u32, Exit)> {
        std::mem::take(&mut lock(&self.state).unreported)
    }

    /// Resolves when a session's command has ended (check [`Terminals::take_ended`]).
    pub async fn ended(&self) {
        self.ended.notified().await;
    }

    /// Kills every running session (the cox session is ending).
    pub async fn kill_all(&self) {
        let sessions: Vec<Arc<Term>> = lock(&self.state).sessions.values().cloned().collect();
        for term in &sessions {
            if term.exit().is_none() {
                term.signal(rustix::process::Signal::TERM);
            }
        }
        for term in sessions {
            term.kill().await;
        }
    }

    /// Starts a command in a new terminal session.
    pub async fn start(
        self: &Arc<Self>,
        spawn: Spawn,
        ctx: &ToolContext,
    ) -> Result<Arc<Term>, String> {
        let running = self.running();
        if running >= self.max {
            return Err(format!(
                "at most {} terminal sessions may run at once and {running} are running; end one \
                 first (kill_session, or exit its program; list_sessions shows them)",
                self.max,
            ));
        }
        let (master, slave) = open_pty().map_err(|e| format!("cannot open a terminal: {e}"))?;
        let argv: Vec<String> = match &ctx.sandbox {
            Some(launcher) => launcher
                .iter()
                .cloned()
                .chain(["--tty".to_string(), "--".to_string()])
                .chain(spawn.argv.iter().cloned())
                .collect(),
            None => spawn.argv.clone(),
        };
        let stdio = |fd: &OwnedFd| -> Result<Stdio, String> {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(|e| format!("cannot open a terminal: {e}"))
        };
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(&spawn.workdir)
            .stdin(stdio(&slave)?)
            .stdout(stdio(&slave)?)
            .stderr(stdio(&slave)?)
            .env("TERM", "xterm-256color")
            .env_remove("COLUMNS")
            .env_remove("LINES")
            .process_group(0);
        for name in &ctx.hidden_env {
            command.env_remove(name);
        }
        if let Some(watch) = &ctx.watch {
            command.env(&watch.tag.0, &watch.tag.1);
        }
        let spawned = command.spawn();
        drop(command);
        // Only the command holds the terminal's other end now: its end is ours to see.
        drop(slave);
        let mut child = spawned.map_err(|e| format!("cannot run `{}`: {e}", argv[0]))?;
        let pid = child
            .id()
            .ok_or("the command ended before it could be watched")?;
        if let Some(watch) = &ctx.watch {
            let _ = watch.started.send(pid);
        }
        // The fd is an `OwnedFd` that only this `AsyncFd` holds, the case `new` is sound for.
        #[allow(deprecated)]
        let master = AsyncFd::new(master);
        let master = Arc::new(master.map_err(|e| format!("cannot watch a terminal: {e}"))?);
        let screen = Arc::new(Mutex::new(Screen::default()));
        let (exit_tx, exit_rx) = tokio::sync::watch::channel(None);
        let id = {
            let mut state = lock(&self.state);
            let id = state.next;
            state.next += 1;
            id
        };
        let term = Arc::new(Term {
            id,
            command: spawn.command,
            pid,
            escalated: spawn.escalated,
            started: Instant::now(),
            master: Arc::clone(&master),
            screen: Arc::clone(&screen),
            exit: exit_rx,
            line: Mutex::new(Vec::new()),
        });
        lock(&self.state).sessions.insert(id, Arc::clone(&term));
        let reading = tokio::spawn(read_all(master, screen));
        let terminals = Arc::downgrade(self);
        tokio::spawn(async move {
            let status = child.wait().await;
            // Everything in the namespace died with the command; what escaped it (a double fork
            // without namespaces) cannot hold the end back for long.
            let _ = tokio::time::timeout(Duration::from_millis(500), reading).await;
            let exit = match status {
                Ok(status) => Exit {
                    code: status.code(),
                    signal: status.signal(),
                },
                Err(_) => Exit {
                    code: None,
                    signal: None,
                },
            };
            let _ = exit_tx.send(Some(exit));
            if let Some(terminals) = terminals.upgrade() {
                lock(&terminals.state).unreported.push((id, pid, exit));
                terminals.ended.notify_one();
            }
        });
        Ok(term)
    }
}

impl Drop for Terminals {
    /// A session outlives nothing: each running launcher is told to end (it kills what its
    /// command started).
    fn drop(&mut self) {
        for term in lock(&self.state).sessions.values() {
            if term.exit().is_none() {
                term.signal(rustix::process::Signal::TERM);
            }
        }
    }
}

/// A new pseudo-terminal: (master, non-blocking; slave), 80x24.
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let size = rustix::termios::Winsize {
        ws_row: screen::ROWS,
        ws_col: screen::COLUMNS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&slave, size)?;
    let flags = rustix::fs::fcntl_getfl(&master)?;
    rustix::fs::fcntl_setfl(&master, flags | OFlags::NONBLOCK)?;
    Ok((master, slave))
}

/// Reads the terminal until its last writer is gone (EIO on a pty master).
async fn read_all(master: Arc<AsyncFd<OwnedFd>>, screen: Arc<Mutex<Screen>>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(mut guard) = master.readable().await else {
            return;
        };
        match guard.try_io(|fd| {
            rustix::io::read(fd.get_ref(), &mut buffer[..]).map_err(std::io::Error::from)
        }) {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => {
                lock(&screen).push(&buffer[..n]);
            }
            Err(_would_block) => continue,
        }
    }
}

/// Default and longest waits for output, in milliseconds.
pub const EXEC_YIELD_MS: u64 = 10_000;
pub const WRITE_YIELD_MS: u64 = 250;
pub const MAX_YIELD_MS: u64 = 300_000;

/// The sessions of the call's context, or the error a call gets where there are none.
#[allow(clippy::result_large_err)]
pub(crate) fn of(ctx: &ToolContext) -> Result<&Arc<Terminals>, crate::ToolOutput> {
    ctx.terminals.as_ref().ok_or_else(|| {
        crate::ToolOutput::error(
            "terminal sessions are not available here; run the command with `shell` instead",
        )
    })
}

/// A terminal tool's parsed arguments and the sessions it works with.
#[allow(clippy::result_large_err)]
pub(crate) fn prepare<'a, T: serde::de::DeserializeOwned>(
    tool: &str,
    arguments: serde_json::Value,
    ctx: &'a ToolContext,
) -> Result<(T, &'a Arc<Terminals>), crate::ToolOutput> {
    let args = crate::parse_args::<T>(tool, arguments)?;
    Ok((args, of(ctx)?))
}

/// The session a call names, or an error that lists the running ones.
#[allow(clippy::result_large_err)]
pub(crate) fn find(terminals: &Terminals, id: u32) -> Result<Arc<Term>, crate::ToolOutput> {
    terminals.get(id).ok_or_else(|| {
        let known: Vec<String> = terminals.list().iter().map(|t| t.id.to_string()).collect();
        crate::ToolOutput::error(format!(
            "there is no terminal session {id} (running: {}); start one with exec_command",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// The output budget of a call in bytes: `max_output_tokens` (4 bytes each) within the session's.
pub(crate) fn budget(max_output_tokens: Option<u64>, ctx: &ToolContext) -> usize {
    max_output_tokens.map_or(ctx.max_output_bytes, |tokens| {
        usize::try_from(tokens.saturating_mul(4))
            .unwrap_or(usize::MAX)
            .clamp(256, ctx.max_output_bytes)
    })
}

/// A call's result: how long it waited, whether the session runs on, and what appeared.
pub(crate) fn report(
    term: &Term,
    terminals: &Terminals,
    text: String,
    waited: Duration,
    started: Option<String>,
    wrote: Option<String>,
) -> crate::ToolOutput {
    let exit = term.exit();
    let state = match exit {
        None => format!("Process running with session ID {}", term.id),
        Some(exit) => {
            // The model has seen the end: the id is free to forget.
            terminals.forget(term.id);
            format!("Process {exit} (session {} ended)", term.id)
        }
    };
    let shown = if text.is_empty() {
        "(no new output)".to_string()
    } else {
        text
    };
    let output = format!(
        "Wall time: {:.2} seconds\n{state}\nOutput:\n{shown}",
        waited.as_secs_f64()
    );
    let lines: Vec<&str> = shown.lines().collect();
    crate::ToolOutput {
        ok: exit.is_none_or(|e| e.code == Some(0)),
        outcome: cox_protocol::ToolOutcome {
            exit_code: exit.and_then(|e| e.code),
            duration_ms: Some(waited.as_millis() as u64),
            // The last lines: what a session shows now matters more than how it began.
            excerpt: Some(
                lines[lines.len().saturating_sub(crate::shell::EXCERPT_LINES)..].join("\n"),
            ),
            printed_lines: Some(lines.len() as u64),
            ..cox_protocol::ToolOutcome::default()
        },
        effect: Some(crate::Effect::Terminal(crate::TerminalEffect {
            id: term.id,
            started: started.map(|command| (command, term.pid)),
            wrote,
            output: shown,
        })),
        output,
        full: None,
    }
}

/// What was typed, as a person (and a rule) reads it: control keys by name, lines as lines.
pub fn typed_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\r' | '\n' => out.push('\n'),
            '\t' => out.push('\t'),
            '\x1b' => out.push_str("<Esc>"),
            '\x7f' => out.push_str("<Backspace>"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("<C-{}>", char::from(b'a' + c as u8 - 1)));
            }
            c => out.push(c),
        }
    }
    out
}
