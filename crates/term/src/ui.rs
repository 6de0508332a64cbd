//! The UI's state and its keys: what a key does in each mode (nothing is drawn here), and the
//! live area built from the state.
//!
//! Keys while the agent works: any printable key pauses at once (the barrier goes up before
//! anything else happens) and starts the directive with that key — SPACE alone pauses with an
//! empty line — so typing ahead never loses a character; a paste does the same. Esc interrupts.
//! Ctrl-C with text in the input clears it; otherwise it interrupts the work, or at the prompt
//! asks for a second Ctrl-C within two seconds, which quits.

use std::time::{Duration, Instant};

use cox_protocol::{Op, SessionStatus};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::composer::{Composer, cells};
use crate::render::Tone;
use crate::{Exit, Header, Mode, Screen};

/// An action announced for the grace window (`action_pending`): shown live, with what it will do,
/// until it runs — its window passes unpaused, it ends, the person resumes, or a directive
/// replaces it — so no stale "starts in" line is left behind in the scrollback.
pub(crate) struct Pending {
    pub call_id: cox_protocol::CallId,
    pub name: String,
    pub until: Instant,
    pub destructive: Option<String>,
    pub preview: Vec<String>,
}

impl Pending {
    /// The live rows: what holds it (a countdown, or the pause), then the preview.
    fn rows(&self, now: Instant, paused: bool) -> Vec<(String, Tone)> {
        let name = &self.name;
        let head = if paused {
            format!("⏸ held: {name} waits — Enter lets it run, a directive stops it")
        } else {
            let left = self.until.saturating_duration_since(now).as_millis();
            format!(
                "⏳ {name} starts in {}.{}s — SPACE holds it",
                left / 1000,
                (left % 1000).div_ceil(100).min(9)
            )
        };
        let tone = if self.destructive.is_some() {
            Tone::Warn
        } else {
            Tone::Action
        };
        let mut rows = vec![(head, tone)];
        if let Some(why) = &self.destructive {
            rows.push((format!("  ⚠ {why}"), Tone::Warn));
        }
        for line in &self.preview {
            rows.push((format!("  │ {line}"), crate::render::diff_tone(line)));
        }
        rows
    }
}

pub(crate) struct Ui {
    pub screen: Screen,
    /// Lines a key produced (a slash command's answer, a warning), shown by [`Ui::show`]: key
    /// handling changes state only, drawing comes after.
    pub notes: Vec<(String, Tone)>,
    pub mode: Mode,
    pub input: Composer,
    pub header: Header,
    pub session_id: Option<String>,
    pub started: Instant,
    pub tokens: Tokens,
    pub context: Option<(u64, u64)>,
    pub last_ctrl_c: Option<Instant>,
    /// The plan as last announced (`plan_updated`), for `/plan` and to show only what moved.
    pub plan: Vec<cox_protocol::PlanStep>,
    /// What the agent is doing, for the status line while it works.
    pub activity: String,
    /// The model's running terminal sessions (`exec_command`): id → (command, started).
    pub terminals: std::collections::BTreeMap<u32, (String, Instant)>,
    /// The diffs of this session's patches, in order, for `/diff`.
    pub diffs: Vec<String>,
    /// An action announced and held (`action_pending`): its call and the live rows that show
    /// it, until it starts (or the task ends).
    pub pending: Option<Pending>,
    pub exit: Exit,
    /// What was shown once and is not shown again: the session header line (a plan run starts a
    /// session per step, on the same model and directory), and each warning's text.
    pub shown_header: Option<String>,
    pub shown_warnings: std::collections::HashSet<String>,
    /// A plan run (a step started): its steps' lines say when a step starts and ends, so a plan
    /// update that only changes statuses is not printed again.
    pub plan_run: bool,
}

/// Token counts so far, for the status line and `/status`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tokens {
    pub input: u64,
    pub cached: u64,
    pub output: u64,
    pub cost_usd: Option<f64>,
}

impl Ui {
    pub fn new(header: Header, screen: Screen) -> Ui {
        Ui {
            screen,
            notes: Vec::new(),
            mode: Mode::Prompt,
            input: Composer::default(),
            header,
            session_id: None,
            started: Instant::now(),
            tokens: Tokens::default(),
            context: None,
            last_ctrl_c: None,
            plan: Vec::new(),
            activity: "THINKING".to_string(),
            terminals: std::collections::BTreeMap::new(),
            diffs: Vec::new(),
            pending: None,
            exit: Exit::Done,
            shown_header: None,
            shown_warnings: std::collections::HashSet::new(),
            plan_run: false,
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

    /// The status line, split in two (state, then the keys) when one row is too narrow for it.
    fn status(&self, width: usize) -> Vec<String> {
        let hints = match self.mode {
            Mode::Prompt => "Enter send · Alt+Enter newline · /help",
            Mode::Running => "type or SPACE pause · Esc interrupt · Ctrl-C×2 quit",
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
        let state = format!(
            "{} · {} · {}s · {} tok{context}{terminals}",
            self.state_word(),
            self.header.model,
            self.started.elapsed().as_secs(),
            self.tokens.input + self.tokens.output
        );
        let one = format!("{state} · {hints}");
        if cells(&one) < width {
            vec![one]
        } else {
            vec![state, hints.to_string()]
        }
    }

    pub fn redraw(&mut self) -> std::io::Result<()> {
        let width = usize::from(self.screen_width());
        let prompt = match self.mode {
            Mode::Prompt => Some("› "),
            Mode::Paused => Some("steer› "),
            Mode::Answer(_) => Some("answer› "),
            Mode::Declining(_) => Some("reason› "),
            Mode::Running | Mode::Quitting | Mode::Approval(_) => None,
        };
        let layout = prompt.map(|prompt| self.input.layout(prompt, width));
        let popup = match self.mode {
            Mode::Prompt | Mode::Paused => crate::commands::popup(self.input.text()),
            _ => Vec::new(),
        };
        let status = self.status(width);
        let paused = self.mode == Mode::Paused;
        let now = Instant::now();
        if self
            .pending
            .as_ref()
            .is_some_and(|p| !paused && p.until <= now)
        {
            self.pending = None;
        }
        let held = self
            .pending
            .as_ref()
            .map(|p| p.rows(now, paused))
            .unwrap_or_default();
        self.screen
            .draw_live(&held, layout.as_ref(), &popup, &status, paused)
    }

    fn screen_width(&self) -> u16 {
        self.screen.width()
    }

    pub fn on_event(&mut self, event: &cox_protocol::Event) -> std::io::Result<()> {
        crate::render::event(self, event)?;
        self.redraw()
    }

    /// Commits the notes keys produced, then redraws the live area.
    pub fn show(&mut self) -> std::io::Result<()> {
        for (line, tone) in std::mem::take(&mut self.notes) {
            self.screen.line(&line, tone)?;
        }
        self.redraw()
    }

    pub fn note(&mut self, line: impl Into<String>, tone: Tone) {
        self.notes.push((line.into(), tone));
    }

    /// Whether the mode takes text in the input.
    fn typing(&self) -> bool {
        matches!(
            self.mode,
            Mode::Prompt | Mode::Paused | Mode::Answer(_) | Mode::Declining(_)
        )
    }

    /// A bracketed paste: into the input; while the agent works it pauses first, like a key.
    pub fn on_paste(&mut self, text: &str) -> Vec<Op> {
        let mut ops = Vec::new();
        if self.mode == Mode::Running {
            self.mode = Mode::Paused;
            ops.push(Op::Pause);
        }
        if self.typing() {
            self.input.paste(text);
        }
        ops
    }

    /// A key: the state changes and the ops to send; nothing is drawn here.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Op> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let mut ops = Vec::new();
        if ctrl && key.code == KeyCode::Char('c') {
            return self.ctrl_c();
        }
        if let (Mode::Approval(call_id), KeyCode::Char(c)) = (&self.mode, key.code) {
            let (decision, said) = match c {
                'y' => (cox_protocol::ApprovalDecision::Once, "approved once"),
                's' => (
                    cox_protocol::ApprovalDecision::Session,
                    "approved for this session",
                ),
                'p' => (
                    cox_protocol::ApprovalDecision::Project,
                    "approved, always in this project",
                ),
                'n' => {
                    self.mode = Mode::Declining(call_id.clone());
                    return ops;
                }
                _ => return ops,
            };
            ops.push(Op::Approve {
                call_id: call_id.clone(),
                decision,
            });
            self.mode = Mode::Running;
            self.note(format!("  ✓ {said}"), Tone::Steer);
            return ops;
        }
        // Ctrl-R's search takes every key until it ends.
        if self.typing() && self.input.searching() {
            self.input.key(key);
            return ops;
        }
        match (&self.mode, key.code) {
            (Mode::Running, KeyCode::Char(c)) if !ctrl => {
                // The barrier first; the key starts the directive (SPACE only pauses).
                self.mode = Mode::Paused;
                ops.push(Op::Pause);
                if c != ' ' {
                    self.input.key(key);
                }
            }
            (Mode::Running | Mode::Paused, KeyCode::Esc) => {
                self.input.clear();
                self.mode = Mode::Running;
                ops.push(Op::Interrupt);
            }
            (
                Mode::Prompt | Mode::Paused | Mode::Answer(_) | Mode::Declining(_),
                KeyCode::Enter,
            ) if key
                .modifiers
                .intersects(KeyModifiers::ALT | KeyModifiers::SHIFT) =>
            {
                self.input.insert("\n");
            }
            (Mode::Prompt | Mode::Paused, KeyCode::Tab) => {
                if let Some(command) = crate::commands::complete(self.input.text()) {
                    self.input.clear();
                    self.input.insert(command);
                }
            }
            (Mode::Paused, KeyCode::Char('z')) if ctrl => {
                self.note("undoing the last action", Tone::Dim);
                ops.push(Op::Undo { to: None });
            }
            (Mode::Paused, KeyCode::Enter) if crate::commands::while_paused(self.input.text()) => {
                // A slash command while paused: answered, and the session stays paused.
                let text = self.input.take();
                ops.extend(self.command(text.trim()));
            }
            (Mode::Paused, KeyCode::Enter) => {
                let text = self.input.take();
                self.mode = Mode::Running;
                ops.push(if text.trim().is_empty() {
                    Op::Resume
                } else {
                    Op::Steer { text }
                });
            }
            (Mode::Declining(call_id), KeyCode::Enter) => {
                let call_id = call_id.clone();
                let text = self.input.take();
                let reason = (!text.trim().is_empty()).then_some(text);
                self.note("  ✗ declined", Tone::Steer);
                ops.push(Op::Approve {
                    call_id,
                    decision: cox_protocol::ApprovalDecision::Deny { reason },
                });
                self.mode = Mode::Running;
            }
            (Mode::Answer(call_id), KeyCode::Enter) => {
                let call_id = call_id.clone();
                let text = self.input.take();
                ops.push(Op::Answer { call_id, text });
                self.mode = Mode::Running;
            }
            (Mode::Prompt, KeyCode::Enter) => ops.extend(self.submit()),
            (Mode::Prompt, KeyCode::Char('d')) if ctrl && self.input.is_empty() => {
                self.mode = Mode::Quitting;
                ops.push(Op::Shutdown);
            }
            _ if self.typing() => {
                self.input.key(key);
            }
            _ => {}
        }
        ops
    }

    /// Ctrl-C: clears typed text first; then interrupts the work, or at the prompt wants a second
    /// press within two seconds to quit.
    fn ctrl_c(&mut self) -> Vec<Op> {
        let again = self
            .last_ctrl_c
            .is_some_and(|at| at.elapsed() < Duration::from_secs(2));
        self.last_ctrl_c = Some(Instant::now());
        if self.typing() && !self.input.is_empty() {
            self.input.clear();
            self.last_ctrl_c = Some(Instant::now());
            self.note("input cleared — Ctrl-C again to quit", Tone::Dim);
            return Vec::new();
        }
        if again {
            self.exit = if self.mode == Mode::Prompt {
                Exit::Done
            } else {
                Exit::Interrupted
            };
            self.mode = Mode::Quitting;
            return vec![Op::Interrupt, Op::Shutdown];
        }
        match self.mode {
            Mode::Prompt => {
                self.note("Ctrl-C again to quit (or /quit)", Tone::Dim);
                Vec::new()
            }
            Mode::Quitting => Vec::new(),
            _ => {
                self.note("interrupting — Ctrl-C again to quit", Tone::Warn);
                vec![Op::Interrupt]
            }
        }
    }

    /// The prompt line's Enter: a slash command, or a new task.
    fn submit(&mut self) -> Vec<Op> {
        let text = self.input.take();
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        if trimmed.starts_with('/') {
            return self.command(trimmed);
        }
        self.note(format!("› {text}"), Tone::Prompt);
        self.mode = Mode::Running;
        vec![Op::UserInput { text }]
    }

    pub fn task_done(&mut self, status: SessionStatus) {
        if self.mode != Mode::Quitting {
            self.mode = Mode::Prompt;
        }
        if status == SessionStatus::Interrupted {
            self.input.clear();
        }
    }
}
