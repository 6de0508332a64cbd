//! The session actor: it alone owns the conversation. Front ends talk to it through a
//! [`SessionHandle`] — [`Op`]s in, [`EventEnvelope`]s out — and learn everything from events.
//!
//! The actor takes one task at a time (a prompt, or the continuation of a resumed session) and runs
//! the turn loop ([`turn`]) for it, while still listening for ops: an interrupt cancels the model
//! request or kills the running command at once; an answer reaches a waiting `ask_user`. Every
//! step is written to the session journal ([`crate::journal`]) before it takes effect.

mod approvals;
mod calls;
mod checkpoints;
mod compact;
mod gate;
mod mcp;
mod terminals;
mod turn;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cox_model::ModelClient;
use cox_protocol::{
    CallId, Event, EventEnvelope, Item, Op, SessionId, SessionStatus, ToolCall, Usage,
};
use cox_tools::ToolRegistry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::journal::Journal;

/// Everything a session needs besides its model client, tools and journal: the resolved
/// configuration and the front end's run options exactly as they came (settings flow once, not
/// copied field by field), and what start-up derived from them.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `Config::load`'s result: provider, model, limits, compaction threshold.
    pub settings: crate::Config,
    /// How the front end runs the session: interactive, steering, one-shot, planning, sandbox.
    pub options: crate::RunOptions,
    pub cwd: PathBuf,
    /// The window compaction works against: the client's (a local model's allocated context) or
    /// the configured one.
    pub context_window: u64,
    /// The window is a guess (unknown model): said once, as a warning.
    pub context_window_assumed: bool,
    /// Variables commands never get, values no output shows.
    pub credentials: Arc<crate::secrets::Credentials>,
    /// The person's login environment, captured once at the start (`cox_tools::login_env`).
    pub login_env: Option<Arc<cox_tools::login_env::LoginEnv>>,
    /// Where file tools may write (the working directory, or `--target`).
    pub writable_roots: Vec<PathBuf>,
    /// The sandbox launcher for commands (`cox __sandbox --write … --`); `None`: full access.
    pub sandbox: Option<Vec<String>>,
    /// The launcher of commands approved to leave the sandbox (contained, not confined); `None`:
    /// they run directly.
    pub unconfined: Option<Vec<String>>,
    /// Paths file tools may not write even inside writable roots (`.git`, `.cox`).
    pub protected: Vec<std::path::PathBuf>,
    /// The project's rules, checked before every tool call.
    pub rules: Arc<crate::rules::Rules>,
    /// When actions need the person's approval (the options', or the default for the mode).
    pub approval: cox_sandbox::approval::Policy,
    /// Where "yes for this project" grants are kept (`$COX_HOME/projects.toml`); `None`: nowhere.
    pub grants: Option<GrantStore>,
    /// Said as warnings when the session starts (rules not in force, and why).
    pub notes: Vec<String>,
    /// `--loopback`'s network namespace, held for as long as the session (and its config) lives.
    pub loopback: Option<Arc<cox_sandbox::loopback::Holder>>,
    /// The ruleset closing the rules' TCP ports, whose descriptor every launcher inherits: held
    /// for as long as the session lives.
    pub tcp_ruleset: Option<Arc<cox_sandbox::net::TcpRuleset>>,
    /// The session's MCP servers, starting in the background (`None`: none configured, or
    /// planning).
    pub mcp: Option<Arc<crate::mcp::Servers>>,
}

impl SessionConfig {
    /// Answers must be JSON matching this schema (name, schema): planning's plan document.
    fn output_schema(&self) -> Option<(String, serde_json::Value)> {
        self.options
            .planning
            .then(|| ("plan".to_string(), crate::plan::schema()))
    }
}

/// A check (`Op::RunCheck`) running longer than this is stopped and counts as failing.
pub const CHECK_TIMEOUT_MS: u64 = 600_000;

/// What a session starts from.
/// The project whose grants a session reads and saves.
#[derive(Debug, Clone)]
pub struct GrantStore {
    pub projects: crate::projects::Projects,
    pub root: PathBuf,
}

#[derive(Debug, Default)]
pub struct Start {
    pub history: Vec<Item>,
    /// The pinned block (task and plan restored on resume; AGENTS.md read afresh).
    pub pinned: crate::context::Pinned,
    /// A resumed session's unfinished business: calls owed (or cut short), and whether to continue
    /// the turn loop without a new prompt.
    pub resume: Option<Resume>,
    /// A resumed session's terminal sessions: the highest id it used, and those running when cox
    /// stopped (id, command), which the model is told are gone.
    pub last_terminal: u32,
    pub lost_terminals: Vec<(u32, String)>,
}

#[derive(Debug)]
pub struct Resume {
    pub pending: Vec<(ToolCall, bool)>,
    /// A prompt to add after the pending calls are settled; without one the model just goes on.
    pub prompt: Option<String>,
}

/// A front end's end of a session.
pub struct SessionHandle {
    pub id: SessionId,
    ops: mpsc::Sender<Op>,
    events: mpsc::Receiver<EventEnvelope>,
}

impl SessionHandle {
    /// Sends an operation; false when the session has ended.
    pub async fn submit(&self, op: Op) -> bool {
        self.ops.send(op).await.is_ok()
    }

    /// The next event; `None` once the session has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<EventEnvelope> {
        self.events.recv().await
    }

    /// A sender for ops that can be moved to another task (a signal handler, a stdin reader).
    pub fn op_sender(&self) -> mpsc::Sender<Op> {
        self.ops.clone()
    }

    /// A handle and the actor's ends of its channels, for an actor that speaks a session's ops
    /// and events without being one (a plan run).
    pub(crate) fn pair(
        id: SessionId,
    ) -> (
        SessionHandle,
        mpsc::Receiver<Op>,
        mpsc::Sender<EventEnvelope>,
    ) {
        let (ops_tx, ops_rx) = mpsc::channel(32);
        let (events_tx, events_rx) = mpsc::channel(256);
        let handle = SessionHandle {
            id,
            ops: ops_tx,
            events: events_rx,
        };
        (handle, ops_rx, events_tx)
    }
}

/// A new session id: UUIDv7, so ids (and journal names) sort by time.
pub fn new_id() -> SessionId {
    SessionId(uuid::Uuid::now_v7().to_string())
}

/// The time whose date the system prompt gives: now, or `SOURCE_DATE_EPOCH` (seconds, the
/// reproducible-builds convention) when it is set, so that a run can be repeated token for token
/// — the real-model tests pin it. A value that is not a number of seconds is ignored, with a
/// warning in the log.
fn prompt_time() -> std::time::SystemTime {
    let Some(value) = std::env::var_os("SOURCE_DATE_EPOCH") else {
        return std::time::SystemTime::now();
    };
    match value.to_str().and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(seconds) => std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
        None => {
            tracing::warn!("SOURCE_DATE_EPOCH is not a number of seconds; the prompt gives today");
            std::time::SystemTime::now()
        }
    }
}

/// Starts a session actor on the current tokio runtime.
pub fn spawn(
    id: SessionId,
    config: SessionConfig,
    client: Box<dyn ModelClient>,
    tools: ToolRegistry,
    journal: Journal,
    start: Start,
) -> SessionHandle {
    let (ops_tx, ops_rx) = mpsc::channel(32);
    let (events_tx, events_rx) = mpsc::channel(256);
    let date = humantime::format_rfc3339_seconds(prompt_time()).to_string();
    let base_instructions = format!(
        "{}{}",
        crate::prompt::system_prompt(&config.cwd, &tools.names(), &date[..10]),
        if config.options.planning {
            crate::planning_instructions()
        } else {
            String::new()
        }
    );
    let instructions = format!("{base_instructions}{}", start.pinned.render());
    let compact_requested = Arc::new(AtomicBool::new(false));
    let terminals = cox_tools::terminal::Terminals::new(
        config.settings.max_terminal_sessions,
        start.last_terminal + 1,
    );
    let checkpoints = checkpoints::Checkpoints::new(&config, &id.0);
    if !config.writable_roots.is_empty() {
        checkpoints.prepare();
    }
    let started_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let session = Session {
        started_ns,
        checkpoints,
        id: id.clone(),
        config,
        client,
        tools,
        base_instructions,
        instructions,
        pinned: start.pinned,
        baseline: None,
        counted_items: 0,
        whole_count: std::cell::Cell::new(None),
        compact_requested: Arc::clone(&compact_requested),
        history: start.history,
        journal,
        emitter: Emitter {
            tx: events_tx,
            seq: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        },
        gate: Arc::new(gate::Gate::new()),
        grants: Vec::new(),
        edits_granted: false,
        turn: 0,
        usage: Usage::default(),
        report: None,
        terminals,
        terminal_entries: std::collections::BTreeMap::new(),
        lost_terminals: start.lost_terminals,
        mcp_ready: false,
        mcp_tools: Vec::new(),
        mcp_offered: Vec::new(),
        mcp_granted: std::collections::HashSet::new(),
    };
    let mut session = session;
    session.grants = approvals::load(session.config.grants.as_ref());
    let span = tracing::info_span!("session", id = %id);
    tokio::spawn(tracing::Instrument::instrument(
        session.run(ops_rx, start.resume, compact_requested),
        span,
    ));
    SessionHandle {
        id,
        ops: ops_tx,
        events: events_rx,
    }
}

/// Sends events. The actor's op loop and the running task each hold one; they share the sequence
/// counter, and the bounded channel hands out places in the order they were asked for, so `seq`
/// arrives in order.
#[derive(Clone)]
struct Emitter {
    tx: mpsc::Sender<EventEnvelope>,
    seq: Arc<std::sync::atomic::AtomicU64>,
}

impl Emitter {
    async fn emit(&mut self, event: Event) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let envelope = EventEnvelope {
            seq,
            ts: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            event,
        };
        // A front end that went away does not stop the session from finishing its work cleanly.
        let _ = self.tx.send(envelope).await;
    }
}

/// What the person sent back to a waiting tool call.
enum Reply {
    Text(String),
    Approval(cox_protocol::ApprovalDecision),
}

/// How one task ended.
enum Outcome {
    Completed(String),
    /// A check ran (passing or not: its event says which).
    Checked,
    Failed,
    ProviderError,
    Interrupted,
}

/// What a task starts with.
enum Task {
    Prompt(String),
    Resume(Resume),
    Check {
        kind: cox_protocol::CheckKind,
        command: String,
    },
}

struct Session {
    id: SessionId,
    config: SessionConfig,
    client: Box<dyn ModelClient>,
    tools: ToolRegistry,
    /// The system prompt without the pinned block.
    base_instructions: String,
    /// The system prompt as sent: base and pinned block, re-rendered only when the block changes.
    instructions: String,
    pinned: crate::context::Pinned,
    /// Context tokens after the last response, as the provider counted them.
    baseline: Option<u64>,
    /// History items that count covers; those after it are estimated.
    counted_items: usize,
    /// Our own token count of the whole request: (history items it covers, tokens), extended as
    /// the history grows, forgotten when it or the instructions change in place.
    whole_count: std::cell::Cell<Option<(usize, u64)>>,
    /// Set by `Op::Compact`; read before the next request.
    compact_requested: Arc<AtomicBool>,
    history: Vec<Item>,
    journal: Journal,
    emitter: Emitter,
    gate: Arc<gate::Gate>,
    /// Command prefixes approved for the session (and those saved for the project).
    grants: Vec<cox_sandbox::approval::Grant>,
    /// Edits approved for the session (untrusted mode).
    edits_granted: bool,
    turn: u32,
    usage: Usage,
    /// The current task's step report (`report_step`), handed over in `task_completed`.
    report: Option<cox_protocol::StepReport>,
    /// The terminal sessions the model started (`exec_command`); all end with the session.
    terminals: Arc<cox_tools::terminal::Terminals>,
    /// Each running terminal session's `running/` entry, by session id (removed at its end).
    terminal_entries: std::collections::BTreeMap<u32, crate::leftovers::Running>,
    /// Terminal sessions a resumed session lost when cox stopped: the model is told at the first
    /// task.
    lost_terminals: Vec<(u32, String)>,
    /// What every action changed, to undo it and to check rules on it.
    checkpoints: checkpoints::Checkpoints,
    /// When this process opened the session (ns since the epoch): a file changed since was
    /// written during the session.
    started_ns: i64,
    /// The MCP servers' tools are in the registry (or there are none).
    mcp_ready: bool,
    /// The names of the MCP tools in the registry, and what the servers offered then.
    mcp_tools: Vec<String>,
    mcp_offered: Vec<Option<Vec<cox_mcp::ToolInfo>>>,
    /// MCP tools the person approved for the session ("yes for the session"), by the name the
    /// model calls.
    mcp_granted: std::collections::HashSet<String>,
}

impl Session {
    async fn run(
        mut self,
        mut ops: mpsc::Receiver<Op>,
        resume: Option<Resume>,
        compact: Arc<AtomicBool>,
    ) {
        tracing::info!(
            provider = %self.config.settings.provider.name,
            model = %self.config.settings.model,
            resumed = resume.is_some(),
            "session started"
        );
        self.emitter
            .emit(Event::SessionStarted {
                session_id: self.id.clone(),
                provider: self.config.settings.provider.name.clone(),
                model: self.config.settings.model.clone(),
                cwd: self.config.cwd.display().to_string(),
            })
            .await;
        for note in self.config.notes.clone() {
            self.warn(note).await;
        }
        if self.config.context_window_assumed {
            let message = format!(
                "the catalog does not know model `{}`; assuming a {}-token context window (set \
                 model_context_window in config.toml)",
                self.config.settings.model, self.config.context_window
            );
            self.warn(message).await;
        }
        let mut status = SessionStatus::Completed;
        let mut answer = None;
        let mut queued: VecDeque<Task> = resume.map(Task::Resume).into_iter().collect();
        let mut shutting_down = false;
        let mut ops_open = true;
        let terms = Arc::clone(&self.terminals);
        loop {
            let task = match queued.pop_front() {
                Some(task) => task,
                None if shutting_down || !ops_open => break,
                None => match tokio::select! {
                    op = ops.recv() => op,
                    // Idle, a terminal session's end is told at once.
                    _ = terms.ended() => {
                        self.report_ended_terminals().await;
                        continue;
                    }
                } {
                    Some(Op::UserInput { text }) => Task::Prompt(text),
                    Some(Op::RunCheck { kind, command }) => Task::Check { kind, command },
                    Some(Op::Compact) => {
                        compact.store(true, Ordering::Relaxed);
                        continue;
                    }
                    // Idle, a directive is a new task: the model goes on with it applied.
                    Some(Op::Steer { text }) => {
                        self.emitter
                            .emit(Event::Steered { text: text.clone() })
                            .await;
                        self.gate.steer(text);
                        Task::Resume(Resume {
                            pending: Vec::new(),
                            prompt: None,
                        })
                    }
                    Some(Op::Pause) => {
                        if self.gate.pause() {
                            self.emitter.emit(Event::Paused).await;
                        }
                        continue;
                    }
                    Some(Op::Resume) => {
                        if self.gate.resume() {
                            self.emitter.emit(Event::Resumed).await;
                        }
                        continue;
                    }
                    Some(Op::KillTerminal { id }) => {
                        if let Err(message) = terminals::kill_terminal(&terms, id) {
                            self.warn(message).await;
                        }
                        continue;
                    }
                    Some(Op::Undo { to }) => {
                        self.undo_now(to).await;
                        continue;
                    }
                    Some(Op::ListMcp) => {
                        let servers =
                            mcp::statuses(self.config.mcp.as_deref(), &self.config.credentials);
                        self.emitter.emit(Event::McpServers { servers }).await;
                        continue;
                    }
                    Some(Op::Interrupt | Op::Answer { .. } | Op::Approve { .. }) => continue,
                    Some(Op::Shutdown) | None => break,
                },
            };
            let cancel = CancellationToken::new();
            let (answers_tx, mut answers_rx) = mpsc::channel::<(CallId, Reply)>(4);
            // The op loop flips the gate and announces it at once, whatever the task is doing.
            let gate = Arc::clone(&self.gate);
            let mut announcer = self.emitter.clone();
            let checkpoints = self.checkpoints.clone();
            let cwd = self.config.cwd.clone();
            let mcp_servers = self.config.mcp.clone();
            let credentials = Arc::clone(&self.config.credentials);
            let outcome = {
                let running = self.run_task(task, cancel.clone(), &mut answers_rx);
                tokio::pin!(running);
                loop {
                    tokio::select! {
                        outcome = &mut running => break outcome,
                        op = ops.recv(), if ops_open => match op {
                            Some(Op::Pause) => {
                                if gate.pause() {
                                    announcer.emit(Event::Paused).await;
                                }
                            }
                            Some(Op::Resume) => {
                                if gate.resume() {
                                    announcer.emit(Event::Resumed).await;
                                }
                            }
                            Some(Op::Steer { text }) => {
                                announcer.emit(Event::Steered { text: text.clone() }).await;
                                gate.steer(text);
                            }
                            Some(Op::Interrupt) => cancel.cancel(),
                            Some(Op::ListMcp) => {
                                let servers = mcp::statuses(mcp_servers.as_deref(), &credentials);
                                announcer.emit(Event::McpServers { servers }).await;
                            }
                            Some(Op::Compact) => compact.store(true, Ordering::Relaxed),
                            Some(Op::KillTerminal { id }) => {
                                if let Err(message) = terminals::kill_terminal(&terms, id) {
                                    announcer.emit(Event::Warning { message }).await;
                                }
                            }
                            // Only at the barrier: nothing new starts, and the undo waits for
                            // a command still running.
                            Some(Op::Undo { to }) if gate.is_paused() => {
                                tokio::spawn(checkpoints::undo_while_paused(
                                    checkpoints.clone(),
                                    Arc::clone(&gate),
                                    announcer.clone(),
                                    cwd.clone(),
                                    to,
                                ));
                            }
                            Some(Op::Undo { .. }) => {
                                let message = "undo works while paused or idle: pause first \
                                               (SPACE), then undo"
                                    .to_string();
                                announcer.emit(Event::Warning { message }).await;
                            }
                            Some(Op::Approve { call_id, decision }) => {
                                let _ = answers_tx.try_send((call_id, Reply::Approval(decision)));
                            }
                            Some(Op::Answer { call_id, text }) => {
                                let _ = answers_tx.try_send((call_id, Reply::Text(text)));
                            }
                            Some(Op::UserInput { text }) => queued.push_back(Task::Prompt(text)),
                            Some(Op::RunCheck { kind, command }) => {
                                queued.push_back(Task::Check { kind, command });
                            }
                            Some(Op::Shutdown) => shutting_down = true,
                            None => {
                                // Nobody is listening any more: stop now rather than work unseen.
                                ops_open = false;
                                cancel.cancel();
                            }
                        },
                    }
                }
            };
            self.report_ended_terminals().await;
            let interrupted = matches!(outcome, Outcome::Interrupted);
            (status, answer) = match outcome {
                Outcome::Completed(text) => (SessionStatus::Completed, Some(text)),
                // A check says nothing about the session's answer.
                Outcome::Checked => (status, answer),
                Outcome::Failed => (SessionStatus::Failed, None),
                Outcome::ProviderError => (SessionStatus::ProviderError, None),
                Outcome::Interrupted => {
                    // Queued input is dropped: the person stopped the work to say something new.
                    queued.clear();
                    (SessionStatus::Interrupted, None)
                }
            };
            if self.config.options.one_shot && !interrupted && queued.is_empty() {
                break;
            }
        }
        self.checkpoints.stop();
        // Nothing the model started outlives the session; what it changed meanwhile is judged.
        let terminals_ran = self.terminals.running() > 0;
        self.terminals.kill_all().await;
        self.report_ended_terminals().await;
        if terminals_ran {
            self.look_after_terminals().await;
        }
        self.checkpoints.finish().await;
        // Servers end with the session, before it says it has ended.
        if let Some(servers) = &self.config.mcp {
            servers.stop();
        }
        let usage = self.usage;
        let cost_usd = crate::catalog::cost(&self.config.settings.model, &usage);
        tracing::info!(
            ?status,
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            "session completed"
        );
        self.emitter
            .emit(Event::SessionCompleted {
                status,
                answer,
                usage,
                cost_usd,
            })
            .await;
    }
}
