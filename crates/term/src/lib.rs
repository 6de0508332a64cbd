//! The inline terminal UI: the session's stream written into the normal scrollback (no alternate
//! screen, so it survives), with a live area at the bottom — the line being streamed, the input
//! composer, and a status line updated in place. Keys: any key pauses (the barrier; a key other
//! than SPACE starts the directive), Enter with text steers, Enter on an empty line resumes, Esc
//! interrupts, Ctrl-C clears the input and twice quits (see `ui.rs`). The agent's text is
//! rendered as Markdown as it streams (`markdown.rs`); the composer edits like a shell line
//! (`composer.rs`); slash commands live in `commands.rs`.
//!
//! This crate sees only `cox-protocol`: events come in on a channel, ops go out on another. It owns
//! the terminal while it runs (raw mode, restored on every exit path by a guard).

mod commands;
mod composer;
#[cfg(test)]
mod frames;
mod markdown;
mod render;
mod screen;
mod ui;

use std::io::IsTerminal;
use std::time::Duration;

use cox_protocol::{Event, EventEnvelope, Op};
use crossterm::event::KeyEventKind;
use tokio::sync::mpsc;
use ui::Ui;

pub use crossterm::event::Event as TermEvent;
pub use screen::Screen;

/// Whether the live UI can run here: stdin and stdout are terminals and `TERM` is not `dumb`.
pub fn available() -> bool {
    std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// What the UI shows in its header and status line.
#[derive(Debug, Clone)]
pub struct Header {
    pub model: String,
    pub provider: String,
    /// More rows for `/status` (label, value): the sandbox, the approval policy.
    pub details: Vec<(String, String)>,
}

/// How the UI ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `/quit`, Ctrl-D, or the session ended.
    Done,
    /// Ctrl-C twice.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Waiting for a prompt.
    Prompt,
    Running,
    /// Paused: the input line takes a directive.
    Paused,
    /// `ask_user`: the input line takes the answer.
    Answer(cox_protocol::CallId),
    /// An action waits for approval: y / s / p / n.
    Approval(cox_protocol::CallId),
    /// After `n`: the input line takes the reason for the model.
    Declining(cox_protocol::CallId),
    /// Shutting down: waiting for the session to end.
    Quitting,
}

/// Runs the UI on the terminal until the session ends or the person quits. `initial` is sent as
/// the first task; `working` starts the UI as if a task were running (a plan run works by itself).
pub async fn run(
    header: Header,
    ops: mpsc::Sender<Op>,
    events: mpsc::UnboundedReceiver<EventEnvelope>,
    initial: Option<String>,
    working: bool,
) -> std::io::Result<Exit> {
    let _raw = RawMode::enable()?;
    let keys = spawn_key_reader();
    let (width, height) = crossterm::terminal::size().unwrap_or((80, 24));
    // https://no-color.org: any non-empty value turns colour off.
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut screen = Screen::new(Box::new(std::io::stdout()), width, color);
    screen.set_height(height);
    run_with(header, screen, keys, ops, events, initial, working).await
}

/// The UI's loop over any key stream and any screen: what [`run`] does on the terminal, and what
/// tests drive with keys from a channel and a screen that draws into a buffer.
pub async fn run_with(
    header: Header,
    screen: Screen,
    mut keys: mpsc::Receiver<TermEvent>,
    ops: mpsc::Sender<Op>,
    mut events: mpsc::UnboundedReceiver<EventEnvelope>,
    initial: Option<String>,
    working: bool,
) -> std::io::Result<Exit> {
    let mut ui = Ui::new(header, screen);
    if working {
        ui.mode = Mode::Running;
    }
    if let Some(text) = initial {
        ui.screen.line(&format!("› {text}"), render::Tone::Prompt)?;
        ops.send(Op::UserInput { text }).await.ok();
        ui.mode = Mode::Running;
    }
    ui.redraw()?;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(envelope) => {
                    ui.on_event(&envelope.event)?;
                    if let Event::SessionCompleted { .. } = envelope.event {
                        ui.screen.finish()?;
                        return Ok(ui.exit);
                    }
                }
                None => {
                    ui.screen.finish()?;
                    return Ok(ui.exit);
                }
            },
            key = keys.recv() => match key {
                Some(TermEvent::Key(key)) if key.kind != KeyEventKind::Release => {
                    for op in ui.on_key(key) {
                        ops.send(op).await.ok();
                    }
                    ui.show()?;
                }
                Some(TermEvent::Paste(text)) => {
                    for op in ui.on_paste(&text) {
                        ops.send(op).await.ok();
                    }
                    ui.show()?;
                }
                Some(TermEvent::Resize(width, height)) => {
                    ui.screen.resize(width, height)?;
                    ui.redraw()?;
                }
                Some(_) => {}
                None => {}
            },
            _ = tick.tick() => ui.redraw()?,
        }
    }
}

/// Puts the terminal in raw mode, with bracketed paste (a paste arrives whole, its newlines do
/// not submit), for the UI's lifetime.
struct RawMode;

impl RawMode {
    fn enable() -> std::io::Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        let raw = RawMode;
        crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste)?;
        Ok(raw)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Terminal events from a thread of their own (reading blocks), so a keypress reaches the UI loop
/// within milliseconds whatever the session is doing.
fn spawn_key_reader() -> mpsc::Receiver<TermEvent> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            if tx.blocking_send(event).is_err() {
                break;
            }
        }
    });
    rx
}
