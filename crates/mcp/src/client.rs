//! One connection to one server: start it (a stdio child through the launcher cox gives, or an
//! HTTP endpoint), initialize, list what it offers, call its tools with a deadline and a cancel
//! token, and stop it. A server that misbehaves — never answers, crashes, floods its stderr —
//! costs at most its timeouts: every wait here is bounded, and stopping kills its process group.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, ElicitationCapability, Implementation,
};
use rmcp::service::{RequestContext, RunningService, ServiceExt};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{ServerConfig, Transport};

/// Lines of a stdio server's stderr kept to explain why it stopped.
const STDERR_LINES: usize = 20;

/// How a stdio server is started: the launcher's argv (the sandbox; `--` and the server's own
/// argv follow it), the variables it must not see, and where it starts.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub prefix: Option<Vec<String>>,
    pub hidden_env: Vec<String>,
    pub cwd: PathBuf,
    /// Set in the server's environment (cox's tag of what it started, for the sweep after a
    /// crash).
    pub env: Vec<(String, String)>,
}

/// A question a server asks the person during a call (MCP elicitation).
#[derive(Debug)]
pub struct Elicitation {
    pub server: String,
    pub message: String,
    /// The JSON Schema of the answer (an object of primitive fields).
    pub schema: Value,
    /// The answer's fields, or `None` to decline.
    pub reply: oneshot::Sender<Option<serde_json::Map<String, Value>>>,
}

/// Where a server's questions go while a call runs; empty when no one can answer (they are then
/// declined).
pub type Asker = Arc<Mutex<Option<mpsc::Sender<Elicitation>>>>;

/// A tool, resource or prompt as listed, in the server's own words.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    pub schema: serde_json::Map<String, Value>,
}

/// What a started server offers.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Offer {
    pub server: Option<String>,
    pub instructions: Option<String>,
    pub tools: Vec<ToolInfo>,
    /// `uri (name)` of each resource.
    pub resources: Vec<String>,
    /// `name: description` of each prompt.
    pub prompts: Vec<String>,
}

/// Why a server could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("did not start within {0:?} (startup_timeout_ms)")]
    TimedOut(Duration),
    #[error("cannot run `{program}`: {reason}")]
    Spawn { program: String, reason: String },
    #[error("{0}")]
    Failed(String),
}

/// How a call ended, when it did not end with a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    TimedOut(Duration),
    Interrupted,
    /// The server answered with a protocol error, or stopped.
    Failed(String),
}

/// Answers what a server asks of cox: elicitation goes to the person, when there is one.
#[derive(Clone)]
struct Handler {
    server: String,
    asker: Asker,
}

impl rmcp::ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation = Some(ElicitationCapability::default());
        ClientConfig::new(
            capabilities,
            Implementation::new("cox", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        let decline = Ok(ElicitResult::new(ElicitationAction::Decline));
        let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = request
        else {
            // A URL to open: cox never opens one a server names.
            return decline;
        };
        let sender = self.asker.lock().ok().and_then(|slot| slot.clone());
        let Some(sender) = sender else {
            return decline;
        };
        let (reply, answer) = oneshot::channel();
        let schema = serde_json::to_value(&requested_schema).unwrap_or_default();
        let question = Elicitation {
            server: self.server.clone(),
            message,
            schema,
            reply,
        };
        if sender.send(question).await.is_err() {
            return decline;
        }
        match answer.await {
            Ok(Some(content)) => {
                let mut result = ElicitResult::new(ElicitationAction::Accept);
                result.content = Some(Value::Object(content));
                Ok(result)
            }
            _ => decline,
        }
    }
}

/// A started server.
pub struct Connection {
    pub name: String,
    pub offer: Offer,
    service: RunningService<RoleClient, Handler>,
    child: Option<Child>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// A stdio server's process, its group killed when dropped.
struct Child {
    process: tokio::process::Child,
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(pid) = self.process.id()
            && let Ok(pid) = i32::try_from(pid)
        {
            // It leads its own process group (and, sandboxed, its PID namespace).
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.process.start_kill();
    }
}

impl Connection {
    /// Starts `config` and lists what it offers, within its start-up timeout.
    pub async fn start(
        name: &str,
        config: &ServerConfig,
        transport: &Transport,
        launch: &Launch,
        asker: Asker,
    ) -> Result<Connection, StartError> {
        let deadline = config.startup_timeout();
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let handler = Handler {
            server: name.to_string(),
            asker,
        };
        let mut child = None;
        let mut reader = None;
        let started = tokio::time::timeout(deadline, async {
            let service = match transport {
                Transport::Stdio => {
                    let (process, stdout, stdin, stderr_reader) = spawn(config, launch, &stderr)?;
                    child = Some(Child { process });
                    reader = stderr_reader;
                    handler.serve((stdout, stdin)).await.map_err(failed)?
                }
                Transport::StreamableHttp => {
                    let (client, url, headers) = http(config)?;
                    let mut custom = std::collections::HashMap::new();
                    let mut auth = None;
                    for (key, value) in headers.iter() {
                        if key == AUTHORIZATION {
                            // rmcp adds `Bearer ` itself.
                            auth = value
                                .to_str()
                                .ok()
                                .map(|v| v.trim_start_matches("Bearer ").to_string());
                        } else {
                            custom.insert(key.clone(), value.clone());
                        }
                    }
                    let mut settings =
                        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url)
                            .custom_headers(custom);
                    if let Some(token) = auth {
                        settings = settings.auth_header(token);
                    }
                    let transport =
                        rmcp::transport::StreamableHttpClientTransport::with_client(client, settings);
                    handler.serve(transport).await.map_err(failed)?
                }
                Transport::Sse => {
                    let (client, url, headers) = http(config)?;
                    let transport = crate::sse::SseTransport::connect(client, &url, headers)
                        .await
                        .map_err(|e| StartError::Failed(e.to_string()))?;
                    handler.serve(transport).await.map_err(failed)?
                }
            };
            let offer = list(&service, config).await?;
            Ok::<_, StartError>((service, offer))
        })
        .await;
        let error = match started {
            Ok(Ok((service, offer))) => {
                return Ok(Connection {
                    name: name.to_string(),
                    offer,
                    service,
                    child,
                    stderr,
                });
            }
            Ok(Err(error)) => error,
            Err(_) => StartError::TimedOut(deadline),
        };
        failed_start(child, reader).await;
        Err(explained(error, &stderr))
    }

    /// Calls the server's tool `tool` with `arguments`, within `deadline`; `cancel` (Esc)
    /// abandons it, and the server is told (`notifications/cancelled`).
    pub async fn call(
        &self,
        tool: &str,
        arguments: Option<serde_json::Map<String, Value>>,
        deadline: Duration,
        cancel: &CancellationToken,
    ) -> Result<crate::offer::Rendered, CallError> {
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = arguments;
        let call = self.service.call_tool(params);
        tokio::select! {
            result = tokio::time::timeout(deadline, call) => match result {
                Ok(Ok(result)) => {
                    let value = serde_json::to_value(&result).unwrap_or_default();
                    Ok(crate::offer::render_result(&value))
                }
                Ok(Err(e)) => Err(CallError::Failed(self.explain(e.to_string()))),
                Err(_) => Err(CallError::TimedOut(deadline)),
            },
            _ = cancel.cancelled() => Err(CallError::Interrupted),
        }
    }

    /// The pid of a stdio server's process (the launcher, which leads its process group).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.process.id())
    }

    /// Kills a stdio server's process group now (cox is ending; nothing is awaited).
    pub fn kill(&self) {
        if let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// `message`, and the last lines the server wrote to stderr, when it wrote any.
    fn explain(&self, message: String) -> String {
        match stderr_tail(&self.stderr) {
            Some(tail) => format!("{message}; its stderr ends:\n{tail}"),
            None => message,
        }
    }

    /// Stops the server: the protocol's close, then (a stdio server) its process group killed.
    /// Bounded: a server that does not close within a second is killed anyway.
    pub async fn stop(self) {
        let Connection { service, child, .. } = self;
        let _ = tokio::time::timeout(Duration::from_secs(1), service.cancel()).await;
        drop(child);
    }
}

fn failed(error: impl std::fmt::Display) -> StartError {
    StartError::Failed(format!("the handshake failed: {error}"))
}

fn explained(error: StartError, stderr: &Mutex<VecDeque<String>>) -> StartError {
    match (stderr_tail(stderr), error) {
        (Some(tail), StartError::Failed(message)) => {
            StartError::Failed(format!("{message}; its stderr ends:\n{tail}"))
        }
        (Some(tail), StartError::TimedOut(d)) => StartError::Failed(format!(
            "did not start within {d:?} (startup_timeout_ms); its stderr ends:\n{tail}"
        )),
        (_, error) => error,
    }
}

fn stderr_tail(stderr: &Mutex<VecDeque<String>>) -> Option<String> {
    let lines = stderr.lock().ok()?;
    (!lines.is_empty()).then(|| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
}

type Pipes = (
    tokio::process::Child,
    tokio::process::ChildStdout,
    tokio::process::ChildStdin,
    Option<tokio::task::JoinHandle<()>>,
);

/// After a failed start: the server's process group is killed, and what it wrote to stderr is
/// read to its end (bounded), so the explanation has it — a server that crashed at once may not
/// have been read yet when the handshake failed.
async fn failed_start(child: Option<Child>, reader: Option<tokio::task::JoinHandle<()>>) {
    drop(child);
    if let Some(reader) = reader {
        let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
    }
}

/// Starts a stdio server through the launcher, with the commands' environment (minus what they
/// never see, plus what the entry names), its stderr read into a short tail and the log.
fn spawn(
    config: &ServerConfig,
    launch: &Launch,
    stderr: &Arc<Mutex<VecDeque<String>>>,
) -> Result<Pipes, StartError> {
    let program = config.command.clone().unwrap_or_default();
    let mut argv: Vec<String> = Vec::new();
    if let Some(prefix) = &launch.prefix {
        argv.extend(prefix.iter().cloned());
        argv.push("--".into());
    }
    argv.push(program.clone());
    argv.extend(config.args.iter().cloned());
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(config.cwd.as_ref().unwrap_or(&launch.cwd))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in &launch.hidden_env {
        if !config.env_vars.contains(name) {
            command.env_remove(name);
        }
    }
    for (name, value) in launch.env.iter().map(|(n, v)| (n, v)).chain(&config.env) {
        command.env(name, value);
    }
    let mut process = command.spawn().map_err(|e| StartError::Spawn {
        program: program.clone(),
        reason: e.to_string(),
    })?;
    let (Some(stdout), Some(stdin)) = (process.stdout.take(), process.stdin.take()) else {
        return Err(StartError::Failed("no pipes to the server".into()));
    };
    let reader = process.stderr.take().map(|err| {
        let tail = Arc::clone(stderr);
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(err).lines();
            // Kept only as the tail that explains a failure (cox masks credentials in it before
            // anyone sees it), never logged: a server may print a token it was given.
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut tail) = tail.lock() {
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line.chars().take(500).collect());
                }
            }
        })
    });
    Ok((process, stdout, stdin, reader))
}

/// The HTTP client, URL and headers of an HTTP server: `http_headers`, `env_http_headers` and
/// the bearer token, read from the environment now (a missing variable is an error that names it).
fn http(config: &ServerConfig) -> Result<(reqwest::Client, String, HeaderMap), StartError> {
    let url = config.url.clone().unwrap_or_default();
    let mut values: BTreeMap<String, String> = config.http_headers.clone();
    for (header, variable) in &config.env_http_headers {
        let value = std::env::var(variable).map_err(|_| {
            StartError::Failed(format!(
                "`env_http_headers` names `{variable}` for `{header}`, and it is not set"
            ))
        })?;
        values.insert(header.clone(), value);
    }
    if let Some(variable) = &config.bearer_token_env_var {
        let token = std::env::var(variable).map_err(|_| {
            StartError::Failed(format!(
                "`bearer_token_env_var` names `{variable}`, and it is not set"
            ))
        })?;
        values.insert("authorization".into(), format!("Bearer {token}"));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in values {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| StartError::Failed(format!("`{name}` is not an HTTP header name")))?;
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| StartError::Failed(format!("the value of `{name}` is not valid")))?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    rmcp_tls();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("cox/", env!("CARGO_PKG_VERSION")));
    // Reading the system's root certificates costs milliseconds a plain-HTTP server never needs.
    if url.starts_with("http://") {
        builder = builder.tls_certs_only(Vec::new());
    }
    let client = builder
        .build()
        .map_err(|e| StartError::Failed(format!("no HTTP client: {e}")))?;
    Ok((client, url, headers))
}

/// reqwest is built without a TLS provider of its own: ring is installed for the process unless
/// one is already (cox-model does the same for its clients).
fn rmcp_tls() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Lists tools (filtered by the entry), resources and prompts, as far as the server says it has
/// them.
async fn list(
    service: &RunningService<RoleClient, Handler>,
    config: &ServerConfig,
) -> Result<Offer, StartError> {
    let info = service.peer_info();
    let capabilities = info.as_ref().map(|i| i.capabilities.clone());
    let mut offer = Offer {
        server: info.as_ref().and_then(|i| {
            i.server_info
                .as_ref()
                .map(|s| format!("{} {}", s.name, s.version))
        }),
        instructions: info.as_ref().and_then(|i| i.instructions.clone()),
        ..Offer::default()
    };
    let has = |what: fn(&rmcp::model::ServerCapabilities) -> bool| {
        capabilities.as_ref().is_some_and(what)
    };
    if has(|c| c.tools.is_some()) {
        let tools = service
            .list_all_tools()
            .await
            .map_err(|e| StartError::Failed(format!("tools/list failed: {e}")))?;
        offer.tools = tools
            .into_iter()
            .filter(|t| config.offers(&t.name))
            .map(|t| ToolInfo {
                name: t.name.to_string(),
                description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                schema: (*t.input_schema).clone(),
            })
            .collect();
    }
    // Resources and prompts are shown to the person, not offered to the model: a server that
    // fails to list them still serves its tools.
    if has(|c| c.resources.is_some())
        && let Ok(resources) = service.list_all_resources().await
    {
        offer.resources = resources
            .into_iter()
            .map(|r| format!("{} ({})", r.uri, r.name))
            .collect();
    }
    if has(|c| c.prompts.is_some())
        && let Ok(prompts) = service.list_all_prompts().await
    {
        offer.prompts = prompts
            .into_iter()
            .map(|p| match p.description {
                Some(d) => format!("{}: {d}", p.name),
                None => p.name,
            })
            .collect();
    }
    Ok(offer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_headers_come_from_the_entry_and_named_variables_only() {
        let config = ServerConfig {
            url: Some("http://127.0.0.1:1/mcp".into()),
            bearer_token_env_var: Some("COX_MCP_TEST_SURELY_UNSET_TOKEN".into()),
            ..ServerConfig::default()
        };
        let error = http(&config).unwrap_err().to_string();
        assert!(
            error.contains("`bearer_token_env_var` names `COX_MCP_TEST_SURELY_UNSET_TOKEN`"),
            "{error}"
        );
        let config = ServerConfig {
            url: Some("http://127.0.0.1:1/mcp".into()),
            http_headers: BTreeMap::from([("X-Team".to_string(), "core".to_string())]),
            env_http_headers: BTreeMap::from([("X-Home".to_string(), "HOME".to_string())]),
            ..ServerConfig::default()
        };
        let (_, url, headers) = http(&config).unwrap();
        assert_eq!(url, "http://127.0.0.1:1/mcp");
        assert_eq!(headers["x-team"], "core");
        assert!(headers["x-home"].is_sensitive());
        let bad = ServerConfig {
            url: Some("http://127.0.0.1:1/mcp".into()),
            http_headers: BTreeMap::from([("bad header".to_string(), "x".to_string())]),
            ..ServerConfig::default()
        };
        assert!(http(&bad).unwrap_err().to_string().contains("`bad header`"));
    }
}
