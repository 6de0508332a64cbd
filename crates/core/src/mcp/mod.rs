//! A session's MCP servers. A server whose tools the last session listed (under an unchanged
//! entry: [`cache`]) is not started until one of its tools is called, so servers a session does not
//! use cost it nothing; the others (and `required` ones) start when the session starts, in the
//! background and in parallel, and are waited for before the first model request, each bounded by
//! its `startup_timeout_ms`. A server that fails is a warning and the session goes on (unless it is
//! `required`). Their tools join the registry as `server__tool` and go through everything a
//! command does — rules (`deny_tool`, and `deny_write` on what they changed), approval (ask unless
//! the server or tool is trusted; refused headless), the grace window, the journal, checkpoints —
//! because the session treats them as commands (`ToolKind::Execute`) that touch an [`External`]
//! tool. When their schemas together pass `mcp_tool_schema_budget`, they are deferred: the model
//! gets `mcp_search_tools` and each tool it finds is offered from then on.
//!
//! stdio servers run through the session's sandbox launcher (the writable roots and hidden paths
//! of commands; the network only where the entry's `network` — default: the commands' — allows),
//! without the variables commands never see unless the entry names them in `env_vars`. They are
//! registered in `$COX_HOME/running/` like commands, so a cox that died leaves nothing behind, and
//! killed when the session ends.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use cox_mcp::{Asker, CallError, Connection, Launch, ToolInfo};
use cox_protocol::{Action, McpServerStatus, ToolKind, ToolSpec};
use cox_tools::{BoxFuture, External, Tool, ToolContext, ToolOutput, Touches};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::McpServer;

mod cache;
mod elicit;
mod project;
mod search;

pub use project::{parse_project, project_file, project_servers};
pub use search::SEARCH_TOOL;
use search::Search;

/// Where a server is.
#[derive(Clone)]
enum State {
    /// Not started: its tools come from the last session's list (see [`cache`]), and it starts
    /// at its first call.
    Idle,
    Starting,
    Ready(Arc<Connection>),
    Failed(String),
}

/// One server of the session.
struct Server {
    entry: McpServer,
    launch: Launch,
    /// Where its elicitation questions go while one of its tools runs.
    asker: Asker,
    state: tokio::sync::watch::Sender<State>,
    /// What the last session found it offers, when its entry is unchanged since.
    cached: Option<cox_mcp::Offer>,
    home: std::path::PathBuf,
    session: String,
    running: Mutex<Option<crate::leftovers::Running>>,
}

impl Server {
    /// Starts it, once (later calls do nothing).
    fn begin(self: &Arc<Self>) {
        let mut first = false;
        self.state.send_if_modified(|state| {
            first = matches!(state, State::Idle);
            if first {
                *state = State::Starting;
            }
            first
        });
        if !first {
            return;
        }
        let server = Arc::clone(self);
        tokio::spawn(async move {
            let entry = &server.entry;
            let result = Connection::start(
                &entry.name,
                &entry.config,
                &entry.transport,
                &server.launch,
                Arc::clone(&server.asker),
            )
            .await;
            let state = match result {
                Ok(connection) => {
                    server.register(&connection);
                    cache::store(&server.home, entry, &connection.offer);
                    State::Ready(Arc::new(connection))
                }
                Err(e) => State::Failed(e.to_string()),
            };
            server.state.send_replace(state);
        });
    }

    /// A stdio server is named in `running/` like a command, so a cox that died leaves nothing.
    fn register(&self, connection: &Connection) {
        if let Some(pid) = connection.pid()
            && let Some(start) = crate::lock::start_time(pid)
        {
            let tag = format!("{}:mcp:{}", self.session, self.entry.name);
            let running = crate::leftovers::register(&self.home, &self.session, pid, start, &tag);
            if let Ok(mut slot) = self.running.lock() {
                *slot = running;
            }
        }
    }

    /// The connection, starting the server if it is idle and waiting for its start.
    async fn connection(self: &Arc<Self>) -> Result<Arc<Connection>, String> {
        self.begin();
        let mut state = self.state.subscribe();
        let settled = state
            .wait_for(|s| matches!(s, State::Ready(_) | State::Failed(_)))
            .await
            .map(|s| s.clone());
        match settled {
            Ok(State::Ready(connection)) => Ok(connection),
            Ok(State::Failed(why)) => Err(why),
            _ => Err(format!("MCP server `{}` stopped", self.entry.name)),
        }
    }

    fn now(&self) -> State {
        self.state.borrow().clone()
    }

    /// What it offers: as listed when it started, else as cached.
    fn offer(&self) -> Option<cox_mcp::Offer> {
        match self.now() {
            State::Ready(connection) => Some(connection.offer.clone()),
            State::Idle | State::Starting => self.cached.clone(),
            State::Failed(_) => None,
        }
    }
}

/// What a session needs to launch its stdio servers.
pub struct Launcher {
    /// The sandbox argv for a server with (`true`) and without network; `None`: run directly.
    pub prefix: Box<dyn Fn(bool) -> Option<Vec<String>> + Send + Sync>,
    /// Whether the session's commands have the network (the default of `network`).
    pub network: bool,
    pub hidden_env: Vec<String>,
    pub cwd: std::path::PathBuf,
    pub home: std::path::PathBuf,
    pub session: String,
}

/// The session's servers.
pub struct Servers {
    servers: Vec<Arc<Server>>,
    budget: usize,
}

impl std::fmt::Debug for Servers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Servers")
            .field("count", &self.servers.len())
            .finish()
    }
}

impl Servers {
    /// Starts, in the background, every server whose tools are not known from the last session
    /// (and every `required` one); the others start at their first call. `None` when there are
    /// none.
    pub fn start(entries: &[McpServer], budget: usize, launcher: Launcher) -> Option<Servers> {
        if entries.is_empty() {
            return None;
        }
        let servers: Vec<Arc<Server>> = entries
            .iter()
            .map(|entry| {
                let launch = Launch {
                    prefix: (launcher.prefix)(entry.config.network.unwrap_or(launcher.network)),
                    hidden_env: launcher.hidden_env.clone(),
                    cwd: launcher.cwd.clone(),
                    env: vec![(
                        crate::leftovers::TAG_ENV.to_string(),
                        format!("{}:mcp:{}", launcher.session, entry.name),
                    )],
                };
                let cached = match entry.config.required {
                    Some(true) => None,
                    _ => cache::load(&launcher.home, entry),
                };
                Arc::new(Server {
                    entry: entry.clone(),
                    launch,
                    asker: Arc::new(Mutex::new(None)),
                    state: tokio::sync::watch::Sender::new(State::Idle),
                    cached,
                    home: launcher.home.clone(),
                    session: launcher.session.clone(),
                    running: Mutex::new(None),
                })
            })
            .collect();
        for server in servers.iter().filter(|s| s.cached.is_none()) {
            server.begin();
        }
        Some(Servers { servers, budget })
    }

    /// Waits for the servers that started (each bounded by its own timeout) and says how each
    /// is; idle ones (tools known from the cache) are not waited for.
    pub async fn ready(&self) -> Vec<McpServerStatus> {
        for server in &self.servers {
            let mut state = server.state.subscribe();
            let _ = state.wait_for(|s| !matches!(s, State::Starting)).await;
        }
        self.statuses()
    }

    /// Each server as it is now.
    pub fn statuses(&self) -> Vec<McpServerStatus> {
        self.servers
            .iter()
            .map(|server| {
                let entry = &server.entry;
                let state = server.now();
                let offer = server.offer().unwrap_or_default();
                let (ready, error, idle) = match &state {
                    State::Ready(_) => (true, None, false),
                    State::Failed(error) => (false, Some(error.clone()), false),
                    State::Starting => (false, None, false),
                    State::Idle => (false, None, true),
                };
                McpServerStatus {
                    name: entry.name.clone(),
                    transport: entry.transport.name().to_string(),
                    target: entry.config.target(),
                    ready,
                    idle,
                    error,
                    server: offer.server,
                    tools: offer
                        .tools
                        .iter()
                        .map(|t| cox_mcp::offer::tool_name(&entry.name, &t.name))
                        .collect(),
                    resources: offer.resources,
                    prompts: offer.prompts,
                    trusted: entry.config.trusted,
                }
            })
            .collect()
    }

    /// The first `required` server that did not start, with why.
    pub fn missing_required(&self) -> Option<(String, String)> {
        self.servers.iter().find_map(|server| match server.now() {
            State::Failed(why) if server.entry.config.required == Some(true) => {
                Some((server.entry.name.clone(), why))
            }
            _ => None,
        })
    }

    /// What each server offers now, to tell when the registry is out of date: a server started
    /// at its first call may list other tools than the cache had.
    pub fn offered(&self) -> Vec<Option<Vec<ToolInfo>>> {
        self.servers
            .iter()
            .map(|s| s.offer().map(|o| o.tools))
            .collect()
    }

    /// The servers' tools for the registry (as listed, or as cached for an idle server), and the
    /// search tool when their schemas pass the budget (then each is offered once found).
    pub fn tools(&self) -> Vec<Box<dyn Tool>> {
        let mut tools: Vec<McpTool> = Vec::new();
        for server in &self.servers {
            for info in server.offer().map(|o| o.tools).unwrap_or_default() {
                tools.push(McpTool::new(Arc::clone(server), &info));
            }
        }
        let specs: Vec<&ToolSpec> = tools.iter().map(|t| &t.spec).collect();
        let tokens = schema_tokens(&specs);
        let mut boxed: Vec<Box<dyn Tool>> = Vec::new();
        if tokens > self.budget {
            let loaded = Arc::new(Mutex::new(HashSet::new()));
            let index: Vec<(String, String, Value)> = tools
                .iter()
                .map(|t| {
                    (
                        t.spec.name.clone(),
                        t.spec.description.clone(),
                        t.spec.parameters.clone(),
                    )
                })
                .collect();
            boxed.push(Box::new(Search {
                index,
                loaded: Arc::clone(&loaded),
                tokens,
            }));
            for mut tool in tools {
                tool.deferred = Some(Arc::clone(&loaded));
                boxed.push(Box::new(tool));
            }
        } else {
            boxed.extend(tools.into_iter().map(|t| Box::new(t) as Box<dyn Tool>));
        }
        boxed
    }

    /// Kills every stdio server now and forgets their `running/` entries (the session is
    /// ending).
    pub fn stop(&self) {
        for server in &self.servers {
            if let State::Ready(connection) = server
                .state
                .send_replace(State::Failed("the session ended".to_string()))
            {
                connection.kill();
            }
            if let Ok(mut running) = server.running.lock() {
                running.take();
            }
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One tool of one server, as the model sees it.
struct McpTool {
    server: Arc<Server>,
    tool: String,
    spec: ToolSpec,
    trusted: bool,
    /// With deferral: the tools the model has found (this one is offered once it is among them).
    deferred: Option<Arc<Mutex<HashSet<String>>>>,
}

impl McpTool {
    fn new(server: Arc<Server>, info: &ToolInfo) -> McpTool {
        McpTool {
            trusted: server.entry.config.trusts(&info.name),
            tool: info.name.clone(),
            spec: spec_of(&server.entry.name, info),
            server,
            deferred: None,
        }
    }
}

/// The spec the model gets for a server's tool.
fn spec_of(server: &str, info: &ToolInfo) -> ToolSpec {
    ToolSpec {
        name: cox_mcp::offer::tool_name(server, &info.name),
        description: format!(
            "{} (tool `{}` of MCP server `{}`)",
            info.description.trim(),
            info.name,
            server
        ),
        parameters: cox_mcp::offer::input_schema(&info.schema),
    }
}

/// The tokens the specs cost every request, as deferral counts them against
/// `mcp_tool_schema_budget` (deferred when over it).
pub fn schema_tokens(specs: &[&ToolSpec]) -> usize {
    specs
        .iter()
        .map(|t| cox_mcp::offer::estimated_tokens(&t.name, &t.description, &t.parameters))
        .sum()
}

/// What `cox tools` shows of the configured servers without starting any: each server's tool
/// specs as the last session that started it listed them (`None`: never listed under its entry as
/// it is now).
pub fn known_tool_specs(config: &crate::Config) -> Vec<(String, Option<Vec<ToolSpec>>)> {
    config
        .mcp_servers
        .iter()
        .map(|entry| {
            let specs = cache::load(&config.home, entry).map(|offer| {
                offer
                    .tools
                    .iter()
                    .map(|info| spec_of(&entry.name, info))
                    .collect()
            });
            (entry.name.clone(), specs)
        })
        .collect()
}

impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    /// What a server's tool does cannot be known: it is treated as a command.
    fn kind(&self) -> ToolKind {
        ToolKind::Execute
    }

    fn offered(&self) -> bool {
        self.deferred.as_ref().is_none_or(|loaded| {
            loaded
                .lock()
                .map(|l| l.contains(&self.spec.name))
                .unwrap_or(false)
        })
    }

    fn describe(&self, arguments: &Value, _ctx: &ToolContext) -> (Vec<Action>, Touches) {
        let shown: String = arguments.to_string().chars().take(160).collect();
        let action = Action::Call {
            server: self.server.entry.name.clone(),
            tool: self.tool.clone(),
            arguments: shown,
        };
        let touches = Touches {
            external: Some(External {
                server: self.server.entry.name.clone(),
                tool: self.tool.clone(),
                name: self.spec.name.clone(),
                trusted: self.trusted,
            }),
            ..Touches::default()
        };
        (vec![action], touches)
    }

    fn call<'a>(&'a self, arguments: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let connection = match self.server.connection().await {
                Ok(connection) => connection,
                Err(why) => {
                    return ToolOutput::error(format!(
                        "MCP server `{}` is not available: {why}",
                        self.server.entry.name
                    ));
                }
            };
            let arguments = match arguments {
                Value::Object(map) => Some(map),
                Value::Null => None,
                other => {
                    return ToolOutput::error(format!(
                        "the arguments for {} must be a JSON object, not {other}",
                        self.spec.name
                    ));
                }
            };
            // The server's questions reach the person through this call while it runs.
            let forward = ctx.asker.clone().map(|asker| {
                let (sender, questions) = mpsc::channel(1);
                if let Ok(mut slot) = self.server.asker.lock() {
                    *slot = Some(sender);
                }
                tokio::spawn(elicit::forward_questions(questions, asker))
            });
            let deadline = self.server.entry.config.tool_timeout();
            let started = std::time::Instant::now();
            let result = connection
                .call(&self.tool, arguments, deadline, &ctx.cancel)
                .await;
            if let Ok(mut slot) = self.server.asker.lock() {
                *slot = None;
            }
            if let Some(forward) = forward {
                forward.abort();
            }
            let mut output = match result {
                Ok(rendered) => {
                    let mut output = if rendered.ok {
                        ToolOutput::ok(rendered.text)
                    } else {
                        ToolOutput::error(rendered.text)
                    };
                    if !rendered.images.is_empty() {
                        let images = rendered
                            .images
                            .into_iter()
                            .map(|(mime_type, data)| cox_protocol::Image { mime_type, data })
                            .collect();
                        output.effect = Some(cox_tools::Effect::Images(images));
                    }
                    output
                }
                Err(CallError::TimedOut(limit)) => ToolOutput::error(format!(
                    "{} did not answer within {} ms (tool_timeout_ms of MCP server `{}`); the \
                     call was cancelled. Try another way, or smaller arguments.",
                    self.spec.name,
                    limit.as_millis(),
                    self.server.entry.name
                )),
                Err(CallError::Interrupted) => {
                    ToolOutput::error("interrupted by the user; the server was told to stop")
                }
                Err(CallError::Failed(why)) => ToolOutput::error(format!(
                    "MCP server `{}` failed the call: {why}",
                    self.server.entry.name
                )),
            };
            output.outcome.duration_ms = Some(started.elapsed().as_millis() as u64);
            output
        })
    }
}
