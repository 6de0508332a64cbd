//! The cox engine: configuration and credentials ([`config`], [`auth`]), the prompt ([`prompt`]),
//! and the session actor with its turn loop ([`session`]).
//!
//! Front ends (`cox` the binary, later the terminal UI) depend on this crate and `cox-protocol`
//! only; they start a session with [`start`] (or continue one with [`resume`]) and read its events.
//! Nothing here prints.

pub mod auth;
pub mod catalog;
pub mod checkpoint;
pub mod config;
pub mod context;
pub mod crash;
pub mod error;
pub mod journal;
pub mod leftovers;
pub mod lock;
pub mod mcp;
pub mod plan;
pub mod projects;
pub mod prompt;
pub mod resume;
pub mod rules;
pub mod run;
pub mod secrets;
pub mod session;

use std::path::{Path, PathBuf};

pub use auth::{AuthStore, KeySource};
pub use config::{Config, Overrides};
pub use cox_model::{Secret, install_tls};
pub use error::Error;
pub use session::{SessionConfig, SessionHandle};

/// How commands are confined (`--sandbox`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SandboxMode {
    /// Commands may write nowhere but the temp directories' device files.
    ReadOnly,
    /// Commands may write in the writable roots (workspace or `--target`, `--add-dir`) and the
    /// temp directories.
    #[default]
    WorkspaceWrite,
    /// No OS sandbox.
    FullAccess,
}

/// The sandbox of a session's commands.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    pub mode: SandboxMode,
    /// `--network`: allow IPv4/IPv6 sockets.
    pub network: bool,
    /// `--loopback`: IPv4/IPv6 sockets on a loopback network of the session's own
    /// (`cox_sandbox::loopback`).
    pub loopback: bool,
    /// `--add-dir`: more writable roots.
    pub add_dirs: Vec<PathBuf>,
    /// The `cox` binary commands are launched through (`cox __sandbox`); the `cox` front end
    /// gives `/proc/self/exe`. `None` (an embedder that is not cox): sandboxed commands still use
    /// this process's own executable, and full-access ones run directly, without containment.
    pub launcher: Option<PathBuf>,
}

/// Checks at start-up that the sandbox can be enforced here; a sandboxed mode on a kernel without
/// Landlock is an error, never a silent fallback.
pub fn check_sandbox(sandbox: &Sandbox) -> Result<(), Error> {
    if sandbox.mode != SandboxMode::FullAccess && !cox_sandbox::available() {
        return Err(Error::NoLandlock);
    }
    Ok(())
}

/// The policy of a session's commands (see `cox_sandbox`): `roots` (the workspace or `--target`)
/// and the `--add-dir`s writable in workspace-write mode, their `.git` and `.cox` protected, cox's
/// `home` hidden; full access confines nothing (the command is still contained: new session,
/// nothing outlives it).
pub fn sandbox_policy(sandbox: &Sandbox, roots: &[PathBuf], home: &Path) -> cox_sandbox::Policy {
    if sandbox.mode == SandboxMode::FullAccess {
        return cox_sandbox::Policy::default();
    }
    let writable = writable_roots(sandbox, roots);
    let mut projects: Vec<PathBuf> = Vec::new();
    if sandbox.mode == SandboxMode::WorkspaceWrite {
        for root in roots.iter().chain(&sandbox.add_dirs) {
            let root = fs_err::canonicalize(root).unwrap_or_else(|_| root.clone());
            projects.push(root.clone());
            // The repository a target lies in, when the repository root is writable too.
            if let Some(repo) = root.ancestors().find(|d| d.join(".git").exists())
                && writable.iter().any(|w| repo.starts_with(w))
            {
                projects.push(repo.to_path_buf());
            }
        }
    }
    let mut protected: Vec<PathBuf> = Vec::new();
    for project in projects {
        for name in PROTECTED {
            let path = project.join(name);
            if !protected.contains(&path) {
                protected.push(path);
            }
        }
    }
    cox_sandbox::Policy {
        writable,
        network: sandbox.network || sandbox.loopback,
        protected,
        hidden: vec![fs_err::canonicalize(home).unwrap_or_else(|_| home.to_path_buf())],
        confine: true,
        terminal: false,
        netns: None,
        userns: None,
        deny_tcp: None,
        deny_unix: Vec::new(),
    }
}

/// Paths at the top of each project that commands and file tools may not change in
/// workspace-write mode: git's hooks and config run later outside the sandbox, and `.cox` holds
/// the project's rules.
pub const PROTECTED: &[&str] = &[".git", ".cox"];

/// The launcher argv that runs a command under `policy`, as
/// `PROGRAM __sandbox [--write DIR]… [--protect P]… [--hide P]… [--allow-network] [--full-access] --`;
/// `None` when nothing launches it (full access without a launcher).
pub fn sandbox_launcher(policy: &cox_sandbox::Policy, sandbox: &Sandbox) -> Option<Vec<String>> {
    let program = match &sandbox.launcher {
        Some(program) => program.clone(),
        // Full access runs commands directly, unless a rule closes endpoints for every command.
        None if !policy.confine && policy.deny_tcp.is_none() && policy.deny_unix.is_empty() => {
            return None;
        }
        None => own_binary(),
    };
    let mut argv = vec![program.display().to_string(), "__sandbox".to_string()];
    let mut add = |flag: &str, paths: &[PathBuf]| {
        for path in paths {
            argv.push(flag.to_string());
            argv.push(path.display().to_string());
        }
    };
    add("--write", &policy.writable);
    add("--protect", &policy.protected);
    add("--hide", &policy.hidden);
    add("--netns", policy.netns.as_slice());
    add("--userns", policy.userns.as_slice());
    add("--deny-unix", &policy.deny_unix);
    if let Some(fd) = policy.deny_tcp {
        argv.push("--deny-tcp-fd".into());
        argv.push(fd.to_string());
    }
    if policy.network {
        argv.push("--allow-network".into());
    }
    if !policy.confine {
        argv.push("--full-access".into());
    }
    Some(argv)
}

/// With `--loopback`, starts the network namespace `policy`'s commands join (they do while the
/// holder returned lives); `None` otherwise.
pub fn loopback_network(
    sandbox: &Sandbox,
    policy: &mut cox_sandbox::Policy,
) -> Result<Option<std::sync::Arc<cox_sandbox::loopback::Holder>>, Error> {
    if !sandbox.loopback || !policy.confine {
        return Ok(None);
    }
    let program = sandbox.launcher.clone().unwrap_or_else(own_binary);
    let holder = cox_sandbox::loopback::Holder::start(&program)?;
    policy.netns = Some(holder.network());
    policy.userns = holder.users();
    Ok(Some(std::sync::Arc::new(holder)))
}

/// This binary, by `/proc/self/exe`: a rebuilt or replaced `cox` on disk is never the launcher.
pub fn own_binary() -> PathBuf {
    if Path::new("/proc/self/exe").exists() {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cox"))
    }
}

/// Where a sandboxed command may write: nothing in read-only mode; in workspace-write mode the
/// `roots` (the workspace or `--target`), `--add-dir`s, `/tmp` and `$TMPDIR`, each once.
pub fn writable_roots(sandbox: &Sandbox, roots: &[PathBuf]) -> Vec<PathBuf> {
    if sandbox.mode != SandboxMode::WorkspaceWrite {
        return Vec::new();
    }
    let temp = std::env::var_os("TMPDIR").map(PathBuf::from);
    let mut all: Vec<PathBuf> = Vec::new();
    for root in roots
        .iter()
        .cloned()
        .chain(sandbox.add_dirs.iter().cloned())
        .chain([PathBuf::from("/tmp")])
        .chain(temp)
    {
        if !all.contains(&root) {
            all.push(root);
        }
    }
    all
}

/// `cox __sandbox`: runs the command contained and confined by `policy`; the exit code to leave
/// with, or why it could not start.
pub fn sandbox_exec(policy: &cox_sandbox::Policy, argv: &[String]) -> Result<i32, String> {
    cox_sandbox::launch::run(policy, argv).map_err(|e| format!("sandbox: {e}"))
}

/// How a front end runs a session.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// A person can answer the model's questions (`ask_user`).
    pub interactive: bool,
    /// Steering is on: writes and commands are announced and held `steer_grace_ms` first (and
    /// `steer_grace_destructive_ms` when they delete or discard: `rm -r`, `git reset --hard`, a
    /// patch that removes more than it adds, … — see `cox_sandbox::destructive`).
    pub steerable: bool,
    pub steer_grace_ms: u64,
    pub steer_grace_destructive_ms: u64,
    /// End after a task that was not interrupted (an interrupted one waits for the next op).
    pub one_shot: bool,
    /// `cox plan`: read-only tools, and the answer is a plan document (structured output where the
    /// provider has it).
    pub planning: bool,
    pub sandbox: Sandbox,
    /// When actions need approval (default: on-request with a person there, never headless).
    pub approval: Option<ApprovalPolicy>,
}

pub use cox_sandbox::Policy as SandboxPolicy;
pub use cox_sandbox::approval::Policy as ApprovalPolicy;
pub use cox_sandbox::loopback as SandboxLoopback;
/// What the kernel offers the sandbox (`cox doctor`).
pub mod sandbox_probe {
    pub use cox_sandbox::launch::probe_namespaces as namespaces;
    pub use cox_sandbox::probe::{Seccomp, landlock_abi, seccomp};
}

/// What a plan run adds to a session: the pinned plan block, and where writes may go.
#[derive(Debug, Clone, Default)]
pub struct PlanRun {
    /// The plan block pinned in every request (goal, constraints, statuses, current step).
    pub pinned: String,
    /// `--target`: the only directory tools may write in (the working directory otherwise).
    pub target: Option<PathBuf>,
    /// Steering directives given in earlier steps: they hold for the whole run.
    pub directives: Vec<String>,
}

/// What the model is told in planning mode, after the system prompt.
pub(crate) fn planning_instructions() -> String {
    format!(
        "\n\nYou are in PLANNING mode: analyse, do not change anything. Your tools are read-only \
         ({} runs only commands that read). Explore the code as much as you need, then answer with \
         a plan document and nothing else: one JSON object with `goal` (string), `constraints` \
         (strings the work must respect), `context` (files worth reading), and `steps` (each with \
         `id` like \"S1\", `title`, `files`, `targets` such as function names, `details` precise \
         enough for another engineer, `status`: \"pending\", and `depends_on` with earlier step ids \
         where order matters).",
        cox_tools::shell::NAME
    )
}

/// Default grace window in the live UI, in milliseconds: long enough for a person who sees the
/// action announced to press SPACE (a reaction takes 250–600 ms, and reading what is held more).
pub const DEFAULT_STEER_GRACE_MS: u64 = 1000;
/// Default grace window in the live UI for an action that deletes or discards.
pub const DEFAULT_STEER_GRACE_DESTRUCTIVE_MS: u64 = 3000;
/// Defaults of headless `cox exec --steerable`, where a program, not a person, reacts.
pub const DEFAULT_HEADLESS_STEER_GRACE_MS: u64 = 300;
pub const DEFAULT_HEADLESS_STEER_GRACE_DESTRUCTIVE_MS: u64 = 1000;

/// Starts a new session for `config` in `cwd`, resolving the provider's key (an error when it needs
/// one and none is set) and creating its journal.
pub fn start(config: &Config, cwd: PathBuf, options: RunOptions) -> Result<SessionHandle, Error> {
    start_with(config, cwd, options, PlanRun::default())
}

/// [`start`] for one step of a plan run.
pub fn start_with(
    config: &Config,
    cwd: PathBuf,
    options: RunOptions,
    run: PlanRun,
) -> Result<SessionHandle, Error> {
    let api_key = AuthStore::new(&config.home).require(&config.provider)?;
    // The client first: a model that cannot load leaves no journal behind.
    let model = model_client(config, api_key.clone())?;
    let id = session::new_id();
    let header = journal::Record::Session {
        version: journal::VERSION,
        id: id.clone(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        cwd: cwd.display().to_string(),
        provider: config.provider.name.clone(),
        model: config.model.clone(),
    };
    let credentials = secrets::Credentials::gather(config, api_key.as_ref());
    // Everything that can reject the input is read before the journal exists.
    let project = ProjectState::read(config, &cwd)?;
    let journal = journal::Journal::create(&config.home, &header, credentials.values.clone())?;
    let start = session::Start {
        pinned: context::Pinned {
            agents: context::agents_md(&cwd),
            plan_run: (!run.pinned.is_empty()).then_some(run.pinned),
            directives: run.directives,
            ..context::Pinned::default()
        },
        ..session::Start::default()
    };
    let opened = Opened {
        id,
        credentials,
        cwd,
        journal,
        start,
        project,
    };
    launch(config, options, run.target, model, opened)
}

/// Continues a recorded session: settles the calls it was running when it stopped, then goes on —
/// with `prompt` as a new task, or, for a task that never finished, where it left off.
pub fn resume(
    config: &Config,
    loaded: journal::Loaded,
    prompt: Option<String>,
    options: RunOptions,
    run: PlanRun,
) -> Result<SessionHandle, Error> {
    let Some((id, ..)) = loaded.header() else {
        return Err(Error::Resume(format!(
            "{} has no session header",
            loaded.path.display()
        )));
    };
    let id = id.clone();
    let restored = resume::restore(&loaded.records);
    if prompt.is_none() {
        match restored.last_status {
            _ if restored.tasks == 0 => {
                return Err(Error::Resume(format!(
                    "session {id} has no task yet; give a prompt: cox resume {id} \"…\""
                )));
            }
            Some(cox_protocol::SessionStatus::Completed) => {
                return Err(Error::Resume(format!(
                    "session {id} already completed its task; give a new prompt to continue it: \
                     cox resume {id} \"…\""
                )));
            }
            _ => {}
        }
    }
    let resume = session::Resume {
        pending: restored.pending.clone(),
        prompt,
    };
    reopen_with(config, loaded, restored, Some(resume), options, run)
}

/// Opens a recorded session again without giving it a task: its history and pinned block are
/// back, and it waits for ops (a plan run uses this to check a step whose work had ended).
pub fn reopen(
    config: &Config,
    loaded: journal::Loaded,
    options: RunOptions,
    run: PlanRun,
) -> Result<SessionHandle, Error> {
    let restored = resume::restore(&loaded.records);
    reopen_with(config, loaded, restored, None, options, run)
}

/// Continues a recorded session from its restored state, with `resume` as its first task.
fn reopen_with(
    config: &Config,
    loaded: journal::Loaded,
    restored: resume::Restored,
    resume: Option<session::Resume>,
    options: RunOptions,
    run: PlanRun,
) -> Result<SessionHandle, Error> {
    let Some((id, _, cwd, _, _)) = loaded.header() else {
        return Err(Error::Resume(format!(
            "{} has no session header",
            loaded.path.display()
        )));
    };
    let (id, cwd) = (id.clone(), PathBuf::from(cwd));
    if !cwd.is_dir() {
        return Err(Error::Resume(format!(
            "session {id} worked in {}, which no longer exists",
            cwd.display()
        )));
    }
    let api_key = AuthStore::new(&config.home).require(&config.provider)?;
    let model = model_client(config, api_key.clone())?;
    let credentials = secrets::Credentials::gather(config, api_key.as_ref());
    let project = ProjectState::read(config, &cwd)?;
    let journal = journal::Journal::reopen(&loaded, credentials.values.clone())?;
    // The run's directives may include this step's own (recorded in the plan file and in the
    // step's journal): each is pinned once.
    let mut directives = run.directives;
    for directive in restored.directives {
        if !directives.contains(&directive) {
            directives.push(directive);
        }
    }
    let start = session::Start {
        history: restored.history,
        pinned: context::Pinned {
            task: restored.task,
            agents: context::agents_md(&cwd),
            rules: None,
            plan_run: (!run.pinned.is_empty()).then_some(run.pinned),
            plan: restored.plan,
            directives,
        },
        resume,
        last_terminal: restored.last_terminal,
        lost_terminals: restored.lost_terminals,
    };
    let opened = Opened {
        id,
        credentials,
        cwd,
        journal,
        start,
        project,
    };
    launch(config, options, run.target, model, opened)
}

/// The client for the configured provider: the local model when config resolved its settings
/// (it does exactly when the provider is `local`), else the provider's HTTP endpoint.
fn model_client(
    config: &Config,
    api_key: Option<Secret>,
) -> Result<Box<dyn cox_model::ModelClient>, Error> {
    match &config.local {
        Some(settings) => local_client(settings),
        None => {
            let endpoint = cox_model::Endpoint {
                provider: config.provider.name.clone(),
                wire: config.provider.wire,
                base_url: config.provider.base_url.clone(),
                api_key,
            };
            Ok(cox_model::client(endpoint, config.retry)?)
        }
    }
}

/// Loads the GGUF model (a bad file is bad input: exit 2 with what to do). Nothing to retry: an
/// in-process model has no transient failures.
#[cfg(feature = "local")]
fn local_client(
    settings: &cox_model::local::LocalSettings,
) -> Result<Box<dyn cox_model::ModelClient>, Error> {
    let client = cox_model::local::open(settings)?;
    Ok(Box::new(client))
}

#[cfg(not(feature = "local"))]
fn local_client(
    settings: &cox_model::local::LocalSettings,
) -> Result<Box<dyn cox_model::ModelClient>, Error> {
    match cox_model::local::open(settings) {
        Err(e) => Err(e.into()),
    }
}

/// A session ready to start: its id, where it works, its journal and what it starts from.
struct Opened {
    id: cox_protocol::SessionId,
    credentials: secrets::Credentials,
    cwd: PathBuf,
    journal: journal::Journal,
    start: session::Start,
    project: ProjectState,
}

/// What the person decided for the project a session works in, and its rules as confirmed.
struct ProjectState {
    root: PathBuf,
    projects: projects::Projects,
    rules: rules::Rules,
    note: Option<String>,
    /// The project's MCP servers as confirmed (`.cox/mcp.toml`), and a note when the file is
    /// not in force as it is.
    mcp: (Vec<config::McpServer>, Option<String>),
    /// What was killed of dead sessions' commands before this one started.
    swept: Vec<String>,
}

impl ProjectState {
    fn read(config: &Config, cwd: &Path) -> Result<ProjectState, Error> {
        let root = projects::root_of(cwd);
        let projects = projects::Projects::new(&config.home);
        let project = projects.get(&root)?;
        let (rules, note) = rules::Rules::load(cwd, &project)?;
        let mcp = mcp::project_servers(cwd, &project)?;
        // Before anything runs: what a dead cox left running is killed.
        let swept = leftovers::sweep(&config.home);
        Ok(ProjectState {
            root,
            projects,
            rules,
            note,
            mcp,
            swept,
        })
    }
}

/// Starts the actor: the resolved configuration and options go in as they are, with what only
/// start-up can know (the client's context window, the rules, the writable roots, the sandbox
/// launcher, the tool set).
fn launch(
    config: &Config,
    options: RunOptions,
    target: Option<PathBuf>,
    client: Box<dyn cox_model::ModelClient>,
    opened: Opened,
) -> Result<SessionHandle, Error> {
    let Opened {
        id,
        credentials,
        cwd,
        journal,
        mut start,
        project,
    } = opened;
    // A local model allocates its own context; other providers' windows come from config.
    let client_window = client.context_window();
    // The rules are read once per session: pinned as text, enforced as checks.
    let ProjectState {
        root: project_root,
        projects,
        rules,
        note: rules_note,
        mcp: (project_servers, mcp_note),
        swept,
    } = project;
    // The person's own config wins a name both use.
    let mut mcp_servers = config.mcp_servers.clone();
    let mut mcp_notes: Vec<String> = mcp_note.into_iter().collect();
    for server in project_servers {
        if mcp_servers.iter().any(|s| s.name == server.name) {
            mcp_notes.push(format!(
                "MCP server `{}` of .cox/mcp.toml is not used: config.toml has one of that name",
                server.name
            ));
        } else {
            mcp_servers.push(server);
        }
    }
    start.pinned.rules = rules.pinned();
    let mut writable_roots = vec![target.unwrap_or_else(|| cwd.clone())];
    writable_roots.extend(options.sandbox.add_dirs.iter().cloned());
    // Planning never writes: its commands run read-only whatever the mode.
    let sandbox_settings =
        if options.planning && options.sandbox.mode == SandboxMode::WorkspaceWrite {
            Sandbox {
                mode: SandboxMode::ReadOnly,
                ..options.sandbox.clone()
            }
        } else {
            options.sandbox.clone()
        };
    let mut policy = sandbox_policy(&sandbox_settings, &writable_roots, &config.home);
    // The rules' closed endpoints hold for every command, in any sandbox mode.
    let (ports, sockets) = rules.closed_endpoints();
    policy.deny_unix = sockets;
    let tcp_ruleset = match ports.is_empty() {
        true => None,
        false => Some(std::sync::Arc::new(cox_sandbox::net::TcpRuleset::build(
            &ports,
        )?)),
    };
    let closed_tcp = tcp_ruleset.as_ref().map(|r| r.raw());
    // Enforcing the ruleset costs a launch tens of milliseconds (the kernel copies its 65,535
    // rules), so only launchers whose commands can reach this host's network get it: the
    // confined ones when `--network` is on (without it seccomp allows no IP socket; with
    // `--loopback` they see a network of their own), and every unconfined one.
    if policy.network && !sandbox_settings.loopback || !policy.confine {
        policy.deny_tcp = closed_tcp;
    }
    // The session's network namespace, held while the session lives.
    let loopback = loopback_network(&sandbox_settings, &mut policy)?;
    let sandbox = sandbox_launcher(&policy, &sandbox_settings);
    let unconfined = sandbox_launcher(
        &cox_sandbox::Policy {
            deny_tcp: closed_tcp,
            deny_unix: policy.deny_unix.clone(),
            ..cox_sandbox::Policy::default()
        },
        &sandbox_settings,
    );
    // File tools obey the same lines: nothing writable in read-only mode, protected paths never.
    let writable_roots = if sandbox_settings.mode == SandboxMode::ReadOnly {
        Vec::new()
    } else {
        writable_roots
    };
    let approval = options.approval.unwrap_or(if options.interactive {
        ApprovalPolicy::OnRequest
    } else {
        ApprovalPolicy::Never
    });
    // A plan run's step reports its outcome with `report_step`.
    let tools = if options.planning {
        cox_tools::ToolRegistry::read_only()
    } else if start.pinned.plan_run.is_some() {
        cox_tools::ToolRegistry::plan_step()
    } else {
        cox_tools::ToolRegistry::standard()
    };
    // MCP servers start now, in the background; planning offers none (its tools only read).
    let mcp = if options.planning {
        None
    } else {
        let (server_policy, settings) = (policy.clone(), sandbox_settings.clone());
        mcp::Servers::start(
            &mcp_servers,
            config.mcp_tool_schema_budget,
            mcp::Launcher {
                prefix: Box::new(move |network| {
                    let mut policy = server_policy.clone();
                    if network != policy.network {
                        policy.network = network;
                        // Network given to this server alone still keeps the rules' ports closed.
                        if network && !settings.loopback {
                            policy.deny_tcp = closed_tcp;
                        }
                    }
                    sandbox_launcher(&policy, &settings)
                }),
                network: policy.network,
                hidden_env: credentials.hidden_env.clone(),
                cwd: cwd.clone(),
                home: config.home.clone(),
                session: id.0.clone(),
            },
        )
        .map(std::sync::Arc::new)
    };
    // The login profile runs once, on a thread of its own, while the session starts.
    let login_env = {
        let hidden = credentials.hidden_env.clone();
        let scrub = config.env_scrub.clone();
        cox_tools::login_env::LoginEnv::start(move |name, value| {
            hidden.iter().any(|h| h == name) || scrub.hides(name, value)
        })
    };
    let session_config = SessionConfig {
        login_env: Some(login_env),
        mcp,
        settings: config.clone(),
        options,
        grants: Some(session::GrantStore {
            projects,
            root: project_root,
        }),
        notes: rules_note
            .into_iter()
            .chain(mcp_notes)
            .chain(swept)
            .collect(),
        cwd,
        context_window: client_window.unwrap_or(config.context_window),
        context_window_assumed: client_window.is_none() && config.context_window_assumed,
        credentials: std::sync::Arc::new(credentials),
        writable_roots,
        protected: policy.protected.clone(),
        sandbox,
        unconfined,
        rules: std::sync::Arc::new(rules),
        approval,
        loopback,
        tcp_ruleset,
    };
    Ok(session::spawn(
        id,
        session_config,
        client,
        tools,
        journal,
        start,
    ))
}

/// The tools a session offers the model, as sent (name, description, JSON schema of arguments).
pub fn tool_specs() -> Vec<cox_protocol::ToolSpec> {
    cox_tools::ToolRegistry::standard().specs()
}

/// An RFC 3339 UTC timestamp with milliseconds, for front ends that add their own events.
pub fn timestamp(since_epoch: std::time::Duration) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + since_epoch).to_string()
}

/// The repository root above `cwd` (the nearest directory with `.git`), or `cwd` itself.
pub fn repo_root(cwd: &std::path::Path) -> PathBuf {
    cwd.ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or(cwd)
        .to_path_buf()
}

/// cox holds keys: makes its memory and `/proc/PID/environ` unreadable to other processes of the
/// person's, sandboxed commands among them.
pub fn keep_memory_private() -> Result<(), Error> {
    cox_sandbox::launch::keep_memory_private().map_err(Error::Sandbox)
}

/// A file size limit is an error cox reports, not a signal that kills it mid-write.
pub fn ignore_file_size_signal() {
    cox_sandbox::launch::ignore_file_size_signal();
}
