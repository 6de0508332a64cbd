//! The inline terminal UI: the session's stream written into the normal scrollback (no alternate
//! screen, so it survives), with a live area at the bottom — the line being streamed, the input
//! line, and a status line updated in place. Keys: SPACE pauses (the barrier), Enter with text
//! steers, Enter on an empty line resumes, Esc interrupts, Ctrl-C twice quits.
//!
//! This crate sees only `cox-protocol`: events come in on a channel, ops go out on another. It owns
//! the terminal while it runs (raw mode, restored on every exit path by a guard).

#[cfg(test)]
mod frames;
mod render;
mod screen;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use cox_protocol::{Event, EventEnvelope, Op, SessionStatus};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

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
    let width = crossterm::terminal::size().map_or(80, |(w, _)| w);
    // https://no-color.org: any non-empty value turns colour off.
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let screen = Screen::new(Box::new(std::io::stdout()), width, color);
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
    let mut tick = tokio::time::interval(Duration::from_millis(500));
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
                Some(TermEvent::Resize(width, _)) => {
                    ui.screen.resize(width)?;
                    ui.redraw()?;
                }
                Some(_) => {}
                None => {}
            },
            _ = tick.tick() => ui.redraw()?,
        }
    }
}

/// Puts the terminal in raw mode for the UI's lifetime.
struct RawMode;

impl RawMode {
    fn enable() -> std::io::Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
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

struct Ui {
    screen: Screen,
    /// Lines a key produced (a slash command's answer, a warning), shown by [`Ui::show`]: key
    /// handling changes state only, drawing comes after.
    notes: Vec<(String, render::Tone)>,
    mode: Mode,
    input: String,
    history: Vec<String>,
    history_at: Option<usize>,
    header: Header,
    started: Instant,
    tokens: u64,
    context: Option<(u64, u64)>,
    last_ctrl_c: Option<Instant>,
    plan: Vec<String>,
    /// What the agent is doing, for the status line while it works.
    activity: String,
    /// The model's running terminal sessions (`exec_command`): id → (command, started).
    terminals: std::collections::BTreeMap<u32, (String, Instant)>,
    exit: Exit,
}

impl Ui {
    fn new(header: Header, screen: Screen) -> Ui {
        Ui {
            screen,
            notes: Vec::new(),
            mode: Mode::Prompt,
            input: String::new(),
            history: Vec::new(),
            history_at: None,
            header,
            started: Instant::now(),
            tokens: 0,
            context: None,
            last_ctrl_c: None,
            plan: Vec::new(),
            activity: "THINKING".to_string(),
            terminals: std::collections::BTreeMap::new(),
            exit: Exit::Done,
        }
    }

    fn state_word(&self) -> String {
        match self.mode {
            Mode::Prompt => "READY".to_string(),
            Mode::Running => self.activity.clone(),
            Mode::Paused => "PAUSED".to_string(),
            Mode::Answer(_) => "WAITING FOR YOUR ANSWER".to_string(),
            Mode::Approval(_) | Mode::Declining(_) => "WAITING FOR APPROVAL".to_string(),
            Mode::Quitting => "QUITTING".to_string(),
        }
    }

    fn redraw(&mut self) -> std::io::Result<()> {
        let hints = match self.mode {
            Mode::Prompt => "Enter send · Alt+Enter newline · /status /plan /ps /compact /quit",
            Mode::Running => "SPACE pause · Esc interrupt · Ctrl-C×2 quit",
            Mode::Paused => "Enter resume · type + Enter steer · Esc interrupt",
            Mode::Answer(_) => "type the answer + Enter",
            Mode::Approval(_) => "y once · s session · p project · n no",
            Mode::Declining(_) => "why not? (for the model) + Enter",
            Mode::Quitting => "finishing…",
        };
        let context = match self.context {
            Some((used, window)) if window > 0 => format!(" · ctx {}%", used * 100 / window),
            _ => String::new(),
        };
        let terminals = match self.terminals.len() {
            0 => String::new(),
            1 => " · 1 terminal".to_string(),
            n => format!(" · {n} terminals"),
        };
        let status = format!(
            "{} · {} · {}s · {} tok{context}{terminals} · {hints}",
            self.state_word(),
            self.header.model,
            self.started.elapsed().as_secs(),
            self.tokens
        );
        let prompt = match self.mode {
            Mode::Prompt => Some(format!("› {}", self.input)),
            Mode::Paused => Some(format!("steer› {}", self.input)),
            Mode::Answer(_) => Some(format!("answer› {}", self.input)),
            Mode::Declining(_) => Some(format!("reason› {}", self.input)),
            Mode::Running | Mode::Quitting | Mode::Approval(_) => None,
        };
        let paused = self.mode == Mode::Paused;
        self.screen.draw_live(prompt.as_deref(), &status, paused)
    }

    fn on_event(&mut self, event: &Event) -> std::io::Result<()> {
        render::event(self, event)?;
        self.redraw()
    }

    /// Commits the notes keys produced, then redraws the live area.
    fn show(&mut self) -> std::io::Result<()> {
        for (line, tone) in std::mem::take(&mut self.notes) {
            self.screen.line(&line, tone)?;
        }
        self.redraw()
    }

    fn note(&mut self, line: impl Into<String>, tone: render::Tone) {
        self.notes.push((line.into(), tone));
    }

    /// A key: the state changes and the ops to send; nothing is drawn here.
    fn on_key(&mut self, key: KeyEvent) -> Vec<Op> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let mut ops = Vec::new();
        if ctrl && key.code == KeyCode::Char('c') {
            let again = self
                .last_ctrl_c
                .is_some_and(|at| at.elapsed() < Duration::from_secs(2));
            self.last_ctrl_c = Some(Instant::now());
            if again || self.mode == Mode::Prompt {
                self.exit = if again { Exit::Interrupted } else { Exit::Done };
                self.mode = Mode::Quitting;
                ops.extend([Op::Interrupt, Op::Shutdown]);
            } else {
                self.note("interrupting — Ctrl-C again to quit", render::Tone::Warn);
                ops.push(Op::Interrupt);
            }
            return ops;
        }
        if let (Mode::Approval(call_id), KeyCode::Char(c)) = (&self.mode, key.code) {
            let decision = match c {
                'y' => Some(cox_protocol::ApprovalDecision::Once),
                's' => Some(cox_protocol::ApprovalDecision::Session),
                'p' => Some(cox_protocol::ApprovalDecision::Project),
                'n' => {
                    self.mode = Mode::Declining(call_id.clone());
                    return ops;
                }
                _ => None,
            };
            if let Some(decision) = decision {
                ops.push(Op::Approve {
                    call_id: call_id.clone(),
                    decision,
                });
                self.mode = Mode::Running;
            }
            return ops;
        }
        match (&self.mode, key.code) {
            (Mode::Running, KeyCode::Char(' ')) => {
                self.mode = Mode::Paused;
                ops.push(Op::Pause);
            }
            (Mode::Running | Mode::Paused, KeyCode::Esc) => {
                self.input.clear();
                self.mode = Mode::Running;
                ops.push(Op::Interrupt);
            }
            (Mode::Prompt | Mode::Paused | Mode::Answer(_), KeyCode::Enter)
                if key.modifiers.contains(KeyModifiers::ALT) =>
            {
                self.input.push('\n');
            }
            (Mode::Paused, KeyCode::Enter) if terminal_command(&self.input) => {
                // `/ps` and `/kill N` while paused: the session stays paused.
                let text = std::mem::take(&mut self.input);
                ops.extend(self.terminal_op(text.trim()));
            }
            (Mode::Paused, KeyCode::Enter) if self.input.trim() == "/mcp" => {
                // `/mcp` while paused: the servers are listed, the session stays paused.
                self.input.clear();
                ops.push(Op::ListMcp);
            }
            (Mode::Paused, KeyCode::Enter) if undo_command(&self.input) => {
                // `/undo` while paused: the last action is put back, then steer.
                let text = std::mem::take(&mut self.input);
                ops.extend(self.undo_op(text.trim()));
            }
            (Mode::Paused, KeyCode::Char('z')) if ctrl => {
                self.note("undoing the last action", render::Tone::Dim);
                ops.push(Op::Undo { to: None });
            }
            (Mode::Paused, KeyCode::Enter) => {
                let text = std::mem::take(&mut self.input);
                self.mode = Mode::Running;
                ops.push(if text.trim().is_empty() {
                    Op::Resume
                } else {
                    Op::Steer { text }
                });
            }
            (Mode::Declining(call_id), KeyCode::Enter) => {
                let text = std::mem::take(&mut self.input);
                let reason = (!text.trim().is_empty()).then_some(text);
                ops.push(Op::Approve {
                    call_id: call_id.clone(),
                    decision: cox_protocol::ApprovalDecision::Deny { reason },
                });
                self.mode = Mode::Running;
            }
            (Mode::Answer(call_id), KeyCode::Enter) => {
                let text = std::mem::take(&mut self.input);
                ops.push(Op::Answer {
                    call_id: call_id.clone(),
                    text,
                });
                self.mode = Mode::Running;
            }
            (Mode::Prompt, KeyCode::Enter) => ops.extend(self.submit()),
            (Mode::Prompt, KeyCode::Char('d')) if ctrl && self.input.is_empty() => {
                self.mode = Mode::Quitting;
                ops.push(Op::Shutdown);
            }
            (Mode::Prompt, KeyCode::Up) => self.browse(-1),
            (Mode::Prompt, KeyCode::Down) => self.browse(1),
            (
                Mode::Prompt | Mode::Paused | Mode::Answer(_) | Mode::Declining(_),
                KeyCode::Backspace,
            ) => {
                self.input.pop();
            }
            (
                Mode::Prompt | Mode::Paused | Mode::Answer(_) | Mode::Declining(_),
                KeyCode::Char(c),
            ) if !ctrl => {
                self.input.push(c);
            }
            _ => {}
        }
        ops
    }

    fn browse(&mut self, step: isize) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() as isize - 1;
        let at = match self.history_at {
            None if step < 0 => last,
            None => return,
            Some(at) => at as isize + step,
        };
        if at > last {
            self.history_at = None;
            self.input.clear();
        } else {
            let at = at.clamp(0, last) as usize;
            self.history_at = Some(at);
            self.input = self.history[at].clone();
        }
    }

    /// The prompt line's Enter: a slash command, or a new task.
    fn submit(&mut self) -> Vec<Op> {
        let text = std::mem::take(&mut self.input);
        self.history_at = None;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        self.history.push(text.clone());
        match trimmed {
            "/quit" | "/exit" => {
                self.mode = Mode::Quitting;
                vec![Op::Shutdown]
            }
            "/status" => {
                let line = format!(
                    "{} · {} · {} tokens so far{}",
                    self.header.provider,
                    self.header.model,
                    self.tokens,
                    match self.context {
                        Some((used, window)) => format!(" · context {used} of {window}"),
                        None => String::new(),
                    }
                );
                self.note(line, render::Tone::Dim);
                Vec::new()
            }
            // The engine answers with `mcp_servers`, rendered as the list.
            "/mcp" => vec![Op::ListMcp],
            "/plan" => {
                if self.plan.is_empty() {
                    self.note("no plan yet", render::Tone::Dim);
                }
                for step in self.plan.clone() {
                    self.note(step, render::Tone::Dim);
                }
                Vec::new()
            }
            "/compact" => {
                self.note("compacting before the next request", render::Tone::Dim);
                vec![Op::Compact]
            }
            command if terminal_command(command) => self.terminal_op(command),
            command if undo_command(command) => self.undo_op(command),
            command if command.starts_with('/') => {
                let line = format!(
                    "unknown command {command}; try /status, /plan, /mcp, /undo, /undo N, /ps, \
                     /kill N, /compact, /quit"
                );
                self.note(line, render::Tone::Warn);
                Vec::new()
            }
            _ => {
                self.note(format!("› {text}"), render::Tone::Prompt);
                self.mode = Mode::Running;
                vec![Op::UserInput { text }]
            }
        }
    }

    /// `/ps` lists the model's running terminal sessions; `/kill N` ends session N (and what it
    /// started).
    fn terminal_op(&mut self, command: &str) -> Vec<Op> {
        if command == "/ps" {
            if self.terminals.is_empty() {
                self.note("no terminal sessions running", render::Tone::Dim);
            }
            let lines: Vec<String> = self
                .terminals
                .iter()
                .map(|(id, (command, started))| {
                    format!("  {id}  {:>5}s  {command}", started.elapsed().as_secs())
                })
                .collect();
            for line in lines {
                self.note(line, render::Tone::Dim);
            }
            return Vec::new();
        }
        let argument = command.trim_start_matches("/kill").trim();
        match argument.parse::<u32>() {
            Ok(id) if self.terminals.contains_key(&id) => {
                self.note(format!("killing terminal {id}"), render::Tone::Dim);
                vec![Op::KillTerminal { id }]
            }
            Ok(id) => {
                self.note(
                    format!("no terminal {id} is running (/ps lists them)"),
                    render::Tone::Warn,
                );
                Vec::new()
            }
            Err(_) => {
                self.note(
                    "usage: /kill N, with N a terminal session /ps lists",
                    render::Tone::Warn,
                );
                Vec::new()
            }
        }
    }

    /// `/undo` puts back the last action not undone yet; `/undo N` everything from checkpoint N
    /// on (the `◇ checkpoint N` lines). The engine answers with `undone` or a warning.
    fn undo_op(&mut self, command: &str) -> Vec<Op> {
        let argument = command.trim_start_matches("/undo").trim();
        if argument.is_empty() {
            self.note("undoing the last action", render::Tone::Dim);
            return vec![Op::Undo { to: None }];
        }
        match argument.parse::<u32>() {
            Ok(to) => {
                self.note(
                    format!("undoing from checkpoint {to} on"),
                    render::Tone::Dim,
                );
                vec![Op::Undo { to: Some(to) }]
            }
            Err(_) => {
                self.note(
                    "usage: /undo (the last action) or /undo N (from checkpoint N on)",
                    render::Tone::Warn,
                );
                Vec::new()
            }
        }
    }

    fn task_done(&mut self, status: SessionStatus) {
        if self.mode != Mode::Quitting {
            self.mode = Mode::Prompt;
        }
        if status == SessionStatus::Interrupted {
            self.input.clear();
        }
    }
}

/// `/undo` or `/undo N`, taken at the prompt and while paused.
fn undo_command(text: &str) -> bool {
    let text = text.trim();
    text == "/undo" || text.starts_with("/undo ")
}

/// `/ps` or `/kill …`: the terminal-session commands, taken at the prompt and while paused.
fn terminal_command(text: &str) -> bool {
    let text = text.trim();
    text == "/ps" || text == "/kill" || text.starts_with("/kill ")
}
