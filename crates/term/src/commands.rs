//! Slash commands: at the prompt, and while paused (the session stays paused). Typing `/` lists
//! the commands that match under the input; Tab completes the first.

use cox_protocol::Op;

use crate::render::Tone;
use crate::{Mode, Ui};

/// Every command, with what it does (the popup and `/help` show these).
const COMMANDS: &[(&str, &str)] = &[
    ("/help", "keys and commands"),
    (
        "/status",
        "session, model, sandbox, approvals, context, tokens, cost",
    ),
    ("/diff", "what this session changed"),
    ("/model", "the model in use, and how to pick another"),
    ("/plan", "the plan"),
    (
        "/undo",
        "put back the last action (/undo N: from checkpoint N on)",
    ),
    ("/ps", "the model's running terminal sessions"),
    ("/kill", "end terminal session N (/kill N)"),
    ("/mcp", "MCP servers and their tools"),
    ("/compact", "compact the context before the next request"),
    ("/quit", "end the session"),
];

/// The popup rows for what is typed: the commands it is a prefix of (none once a space or a
/// second line is typed, or for a command typed out).
pub(crate) fn popup(text: &str) -> Vec<String> {
    if !text.starts_with('/') || text.contains([' ', '\n']) {
        return Vec::new();
    }
    let matching: Vec<&(&str, &str)> = COMMANDS
        .iter()
        .filter(|(name, _)| name.starts_with(text))
        .collect();
    if matching.len() == 1 && matching[0].0 == text {
        return Vec::new();
    }
    matching
        .iter()
        .map(|(name, what)| format!("  {name:<9} {what}"))
        .collect()
}

/// Tab: the first command `text` is a prefix of.
pub(crate) fn complete(text: &str) -> Option<&'static str> {
    if !text.starts_with('/') || text.contains([' ', '\n']) {
        return None;
    }
    COMMANDS
        .iter()
        .map(|(name, _)| *name)
        .find(|name| name.starts_with(text))
}

/// Whether Enter while paused runs `text` as a command (a known command's name first) rather than
/// sending it as a directive (`/etc/hosts is wrong` steers).
pub(crate) fn while_paused(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    first == "/exit" || COMMANDS.iter().any(|(name, _)| *name == first)
}

impl Ui {
    /// Runs a slash command: its answer goes into the notes, and the ops it needs are returned.
    pub(crate) fn command(&mut self, command: &str) -> Vec<Op> {
        let name = command.split_whitespace().next().unwrap_or_default();
        match name {
            "/quit" | "/exit" => {
                self.mode = Mode::Quitting;
                vec![Op::Shutdown]
            }
            "/help" => {
                self.help();
                Vec::new()
            }
            "/status" => {
                self.status_panel();
                Vec::new()
            }
            "/diff" => {
                self.diff();
                Vec::new()
            }
            "/model" => {
                let line = format!(
                    "model: {} (provider {}) — to use another, start cox with -m MODEL \
                     (or set `model` in config.toml); the session keeps its model",
                    self.header.model, self.header.provider
                );
                self.note(line, Tone::Dim);
                Vec::new()
            }
            // The engine answers with `mcp_servers`, rendered as the list.
            "/mcp" => vec![Op::ListMcp],
            "/plan" => {
                if self.plan.is_empty() {
                    self.note("no plan yet", Tone::Dim);
                }
                let lines: Vec<String> = self.plan.iter().map(crate::render::plan_line).collect();
                for line in lines {
                    self.note(line, Tone::Dim);
                }
                Vec::new()
            }
            "/compact" => {
                self.note("compacting before the next request", Tone::Dim);
                vec![Op::Compact]
            }
            "/ps" | "/kill" => self.terminal_op(command),
            "/undo" => self.undo_op(command),
            _ => {
                self.note(
                    format!("unknown command {name}; /help lists the commands"),
                    Tone::Warn,
                );
                Vec::new()
            }
        }
    }

    fn help(&mut self) {
        let keys = [
            "keys while the agent works: any key pauses (SPACE only pauses; other keys start the \
             directive) · Esc interrupts the running action · Ctrl-C clears the input, then \
             interrupts, twice quits",
            "while paused: Enter resumes · type + Enter steers · Ctrl-Z undoes the last action",
            "editing: ←/→ Home/End · Ctrl-A/E · Alt-B/F or Ctrl-←/→ by word · Ctrl-W/U/K \
             delete · Ctrl-Y puts back · Alt-Enter newline · ↑/↓ history · Ctrl-R search · Tab \
             completes a command",
        ];
        for line in keys {
            self.note(line, Tone::Dim);
        }
        for (name, what) in COMMANDS {
            self.note(format!("  {name:<9} {what}"), Tone::Dim);
        }
    }

    fn status_panel(&mut self) {
        let mut rows = vec![
            (
                "session",
                self.session_id.clone().unwrap_or_else(|| "—".into()),
            ),
            (
                "model",
                format!("{} ({})", self.header.model, self.header.provider),
            ),
        ];
        for (label, value) in &self.header.details {
            rows.push((label.as_str(), value.clone()));
        }
        rows.push((
            "context",
            match self.context {
                Some((used, window)) if window > 0 => {
                    format!("{used} of {window} tokens ({}%)", used * 100 / window)
                }
                _ => "no request yet".into(),
            },
        ));
        let tokens = self.tokens;
        rows.push((
            "tokens",
            format!(
                "{} in ({} cached) · {} out",
                tokens.input, tokens.cached, tokens.output
            ),
        ));
        rows.push((
            "cost",
            match tokens.cost_usd {
                Some(cost) => format!("≈${cost:.4}"),
                None => "unknown (the catalog has no price for this model)".into(),
            },
        ));
        rows.push(("elapsed", format!("{}s", self.started.elapsed().as_secs())));
        let lines: Vec<String> = std::iter::once("╭ status".to_string())
            .chain(
                rows.iter()
                    .map(|(label, value)| format!("│ {label:<9} {value}")),
            )
            .chain(std::iter::once("╰".to_string()))
            .collect();
        for line in lines {
            self.note(line, Tone::Dim);
        }
    }

    /// `/diff`: every patch this session applied, in order, with a count per file.
    fn diff(&mut self) {
        if self.diffs.is_empty() {
            self.note("no changes in this session yet", Tone::Dim);
            return;
        }
        let mut files: Vec<(String, usize, usize)> = Vec::new();
        for diff in &self.diffs {
            let mut current: Option<usize> = None;
            for line in diff.lines() {
                if let Some(path) = line.strip_prefix("+++ ") {
                    let path = path.trim_start_matches("b/").to_string();
                    let at = files
                        .iter()
                        .position(|(p, ..)| *p == path)
                        .unwrap_or_else(|| {
                            files.push((path, 0, 0));
                            files.len() - 1
                        });
                    current = Some(at);
                } else if line.starts_with("---") {
                } else if let Some(at) = current {
                    if line.starts_with('+') {
                        files[at].1 += 1;
                    } else if line.starts_with('-') {
                        files[at].2 += 1;
                    }
                }
            }
        }
        let summary: Vec<String> = files
            .iter()
            .map(|(path, added, removed)| format!("  {path}  +{added} -{removed}"))
            .collect();
        self.note(
            match files.len() {
                1 => "this session changed 1 file:".to_string(),
                n => format!("this session changed {n} files:"),
            },
            Tone::Prompt,
        );
        for line in summary {
            self.note(line, Tone::Dim);
        }
        for diff in self.diffs.clone() {
            for line in diff.lines() {
                self.note(format!("  {line}"), crate::render::diff_tone(line));
            }
        }
    }

    /// `/ps` lists the model's running terminal sessions; `/kill N` ends session N (and what it
    /// started).
    fn terminal_op(&mut self, command: &str) -> Vec<Op> {
        if command == "/ps" {
            if self.terminals.is_empty() {
                self.note("no terminal sessions running", Tone::Dim);
            }
            let lines: Vec<String> = self
                .terminals
                .iter()
                .map(|(id, (command, started))| {
                    format!("  {id}  {:>5}s  {command}", started.elapsed().as_secs())
                })
                .collect();
            for line in lines {
                self.note(line, Tone::Dim);
            }
            return Vec::new();
        }
        let argument = command.trim_start_matches("/kill").trim();
        match argument.parse::<u32>() {
            Ok(id) if self.terminals.contains_key(&id) => {
                self.note(format!("killing terminal {id}"), Tone::Dim);
                vec![Op::KillTerminal { id }]
            }
            Ok(id) => {
                self.note(
                    format!("no terminal {id} is running (/ps lists them)"),
                    Tone::Warn,
                );
                Vec::new()
            }
            Err(_) => {
                self.note(
                    "usage: /kill N, with N a terminal session /ps lists",
                    Tone::Warn,
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
            self.note("undoing the last action", Tone::Dim);
            return vec![Op::Undo { to: None }];
        }
        match argument.parse::<u32>() {
            Ok(to) => {
                self.note(format!("undoing from checkpoint {to} on"), Tone::Dim);
                vec![Op::Undo { to: Some(to) }]
            }
            Err(_) => {
                self.note(
                    "usage: /undo (the last action) or /undo N (from checkpoint N on)",
                    Tone::Warn,
                );
                Vec::new()
            }
        }
    }
}
