//! The command line, as clap sees it. Contract: `docs/contracts.md`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cox",
    version,
    about = "cox — a steerable terminal coding agent"
)]
pub struct Cli {
    #[command(flatten)]
    pub shared: Shared,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The task. With stdout not a terminal this runs like `cox exec PROMPT`; `-` reads it from stdin.
    pub prompt: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct Shared {
    /// Model to use (default: the provider's, `gpt-5.3-codex` for openai).
    #[arg(short = 'm', long, global = true)]
    pub model: Option<String>,
    /// Provider: openai, openai-chat, anthropic, ollama, llamacpp, vllm, lmstudio, local, or one defined in config.toml.
    #[arg(long, global = true)]
    pub provider: Option<String>,
    /// A GGUF model to run inside cox (the `local` provider; implies --provider local). Needs a
    /// build with `--features local`.
    #[arg(long, value_name = "FILE.gguf", global = true)]
    pub model_path: Option<PathBuf>,
    /// Work in DIR instead of the current directory.
    #[arg(short = 'C', long = "cd", value_name = "DIR", global = true)]
    pub cd: Option<PathBuf>,
    /// Override a config.toml setting, e.g. `-c max_turns=20` or `-c providers.ollama.base_url=http://host:11434/v1`.
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", global = true)]
    pub config: Vec<String>,
    /// Print JSON Lines events on stdout instead of the final answer.
    #[arg(long, global = true)]
    pub json: bool,
    /// Stop after this many model turns without a final answer (default 100).
    #[arg(long, value_name = "N", global = true)]
    pub max_turns: Option<u32>,
    /// Hold each write and command for the grace window (--steer-grace) so a pause can stop it
    /// before it runs. On a terminal SPACE (or any key) pauses with or without this flag; with
    /// stdin not a terminal, stdin carries JSON Lines control ops ({"op":"pause"},
    /// {"op":"resume"}, {"op":"steer","text":"…"}, {"op":"interrupt"}). A plan run on a terminal
    /// always holds.
    #[arg(long, global = true)]
    pub steerable: bool,
    /// How commands are confined: read-only, workspace-write (default: write only in the workspace,
    /// --add-dir and the temp directories), or full-access (no sandbox).
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        global = true,
        default_value = "workspace-write"
    )]
    pub sandbox: SandboxArg,
    /// When actions need your approval: untrusted (all but known read-only commands),
    /// on-request (default in the live session: leaving the sandbox), never (default headless:
    /// what would need approval is refused).
    #[arg(long, value_enum, value_name = "POLICY", global = true)]
    pub approval: Option<ApprovalArg>,
    /// Let commands open network sockets (off by default).
    #[arg(long, global = true, conflicts_with = "loopback")]
    pub network: bool,
    /// Let commands use a loopback network of the session's own: what one command serves on
    /// 127.0.0.1 another reaches; nothing else (not the internet, not this machine's 127.0.0.1).
    #[arg(long, global = true)]
    pub loopback: bool,
    /// Another directory commands and edits may write in.
    #[arg(long = "add-dir", value_name = "DIR", global = true)]
    pub add_dir: Vec<PathBuf>,
    /// With --steerable: how long each write or command is announced, with what it will do,
    /// before it runs (0: off). Default 1000 on a terminal, 300 headless.
    #[arg(long, value_name = "MS", global = true)]
    pub steer_grace: Option<u64>,
    /// With --steerable: the grace window of an action that deletes or discards (`rm -r`,
    /// `git reset --hard`, `git clean`, a force push, a patch that removes more than it adds).
    /// Default 3000 on a terminal, 1000 headless; never shorter than --steer-grace.
    #[arg(long, value_name = "MS", global = true)]
    pub steer_grace_destructive: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApprovalArg {
    Untrusted,
    OnRequest,
    Never,
}

impl ApprovalArg {
    pub fn policy(self) -> cox_core::ApprovalPolicy {
        match self {
            ApprovalArg::Untrusted => cox_core::ApprovalPolicy::Untrusted,
            ApprovalArg::OnRequest => cox_core::ApprovalPolicy::OnRequest,
            ApprovalArg::Never => cox_core::ApprovalPolicy::Never,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxArg {
    ReadOnly,
    WorkspaceWrite,
    FullAccess,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one command under the current sandbox policy (for checking what it allows).
    Sandbox {
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Internal: hold the network namespace of `--loopback` until stdin closes.
    #[command(name = "__loopback", hide = true)]
    Loopback,
    /// Internal: apply a sandbox policy to this process, then exec the command.
    #[command(name = "__sandbox", hide = true)]
    SandboxExec {
        #[arg(long)]
        write: Vec<PathBuf>,
        #[arg(long)]
        protect: Vec<PathBuf>,
        #[arg(long)]
        hide: Vec<PathBuf>,
        #[arg(long)]
        allow_network: bool,
        /// Contain the command (session, lifetime) but confine nothing.
        #[arg(long)]
        full_access: bool,
        /// Standard input is a terminal: make it the command's controlling terminal.
        #[arg(long)]
        tty: bool,
        /// Join this network namespace (`--loopback`'s) before anything else.
        #[arg(long)]
        netns: Option<PathBuf>,
        /// Join this user namespace first (the one that owns `--netns`).
        #[arg(long)]
        userns: Option<PathBuf>,
        /// An inherited Landlock ruleset descriptor closing TCP ports (cox builds it once).
        #[arg(long)]
        deny_tcp_fd: Option<i32>,
        /// A unix socket (or a pattern whose directory is covered) it may not connect to.
        #[arg(long)]
        deny_unix: Vec<PathBuf>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Serve the Agent Client Protocol on stdin/stdout, for editors (Zed, JetBrains) and harnesses
    /// (Harbor's `acp:` agent): one ACP session per cox session.
    Acp,
    /// Run one task headless: the final answer on stdout, progress on stderr.
    Exec {
        /// The task; `-` reads it from stdin. `@path` attaches a file.
        prompt: String,
    },
    /// Continue a recorded session: `cox resume ID [PROMPT]` or `cox resume --last [PROMPT]`.
    Resume {
        /// The newest session.
        #[arg(long)]
        last: bool,
        /// Session id (a unique prefix is enough), then an optional new prompt; with `--last`, just
        /// the optional prompt.
        #[arg(value_name = "ID|PROMPT", num_args = 0..=2)]
        words: Vec<String>,
    },
    /// List recorded sessions: id, date, status, directory, first prompt.
    Sessions,
    /// What each action of a session changed: checkpoint id, time, action, files (`--json`: one
    /// object per checkpoint). Default: the newest session.
    Checkpoints {
        /// Session id (a unique prefix is enough).
        id: Option<String>,
        /// The newest session (the default).
        #[arg(long, conflicts_with = "id")]
        last: bool,
    },
    /// Put back what the agent changed: the newest action not undone yet, everything from
    /// checkpoint N on (`--to N`), or every action of a plan step (`--plan FILE --step S`).
    /// Refuses, changing nothing, when a file was changed since by someone else. An undo is a
    /// checkpoint too: `cox undo --to ID` with its id undoes it.
    Undo {
        /// Session id (a unique prefix is enough); default the newest session.
        id: Option<String>,
        /// The newest session (the default).
        #[arg(long, conflicts_with = "id")]
        last: bool,
        /// Undo everything from this checkpoint on (`cox checkpoints` lists them).
        #[arg(long, value_name = "N", conflicts_with = "step")]
        to: Option<u32>,
        /// The plan document of `--step`.
        #[arg(long, value_name = "FILE", requires = "step", conflicts_with_all = ["id", "last"])]
        plan: Option<PathBuf>,
        /// Undo every action of this plan step (its session is in the plan file).
        #[arg(long, value_name = "S", requires = "plan")]
        step: Option<String>,
    },
    /// Trust the project here (or DIR): its .cox/ files configure cox, its .cox/rules.toml as it
    /// is now is confirmed (a later change waits for the next `cox trust`).
    Trust {
        dir: Option<PathBuf>,
        /// Take the trust back.
        #[arg(long)]
        forget: bool,
    },
    /// List the tools offered to the model and what their schemas cost per request.
    Tools,
    /// Analyse without changing anything and print a plan document (JSON) on stdout.
    Plan {
        /// What to plan; `-` reads it from stdin. `@path` attaches a file.
        prompt: String,
        /// The model that plans, as `provider:model` or a model name; default `[roles] planner`
        /// in config.toml, else the model `-m` names.
        #[arg(long, value_name = "MODEL")]
        planner_model: Option<String>,
    },
    /// Execute a plan document step by step; statuses are written back into the file.
    Run {
        /// The plan document (`cox plan … > plan.json`).
        #[arg(long, value_name = "FILE")]
        plan: PathBuf,
        /// Confine writes to this directory.
        #[arg(long, value_name = "DIR")]
        target: Option<PathBuf>,
        /// Start over: every step back to pending.
        #[arg(long)]
        restart: bool,
        #[command(flatten)]
        checks: CheckOptions,
    },
    /// Check what cox needs here: the kernel's sandbox features, bash and git, the configuration,
    /// each provider's key (masked, and where it comes from). Exit 1 naming what to do when
    /// something required is missing.
    Doctor {
        /// Also check that the base URL of each provider in use answers.
        #[arg(long)]
        check_urls: bool,
    },
    /// Print a shell completion script: `cox completions bash > ~/.local/share/bash-completion/completions/cox`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Internal: write the man pages (cox.1 and one per command) into DIR, for the packages.
    #[command(name = "__man", hide = true)]
    Man {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Internal: take the namespaces a sandbox launcher takes, then exit (`cox doctor`'s probe).
    #[command(name = "__probe-namespaces", hide = true)]
    ProbeNamespaces,
    /// Manage provider credentials.
    Auth {
        #[command(subcommand)]
        action: AuthAction,
    },
    /// The MCP servers whose tools sessions offer ([mcp_servers.NAME] in config.toml).
    Mcp {
        #[command(subcommand)]
        action: McpAction,
    },
    /// Serve cox as an MCP server on stdin/stdout: its tool `cox` runs a task to its end (with
    /// progress notifications), `cox-reply` goes on with a session. Headless: approvals are
    /// refused with the reason, as in `cox exec`.
    McpServer,
}

#[derive(Debug, Subcommand)]
pub enum McpAction {
    /// The configured servers: name, transport, command or URL, whether enabled and trusted.
    List,
    /// One server's entry (header values masked).
    Get { name: String },
    /// Add a server to config.toml: `cox mcp add NAME -- COMMAND [ARGS…]` (stdio) or
    /// `cox mcp add NAME --url URL` (streamable HTTP).
    Add {
        name: String,
        /// An HTTP server's endpoint (instead of a command).
        #[arg(long, conflicts_with = "command")]
        url: Option<String>,
        /// `sse` for a server on the legacy HTTP+SSE transport.
        #[arg(long, requires = "url")]
        transport: Option<String>,
        /// The variable holding the bearer token of an HTTP server.
        #[arg(long, requires = "url")]
        bearer_token_env_var: Option<String>,
        /// `KEY=VALUE` set for a stdio server (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Its tools run without asking.
        #[arg(long)]
        trusted: bool,
        /// The stdio server's command and arguments, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Remove a server from config.toml.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AuthAction {
    /// Store an API key (read from stdin when it is not a terminal, else prompted for, hidden).
    Login,
    /// Show, per provider, where its key comes from (masked).
    Status,
    /// Remove the stored key of a provider.
    Logout,
}

/// Checks run after each step of `cox run` that changed files.
#[derive(Debug, Args, Clone, Default)]
pub struct CheckOptions {
    /// Run the project's linter after each step and have the model fix what it reports.
    #[arg(long)]
    pub auto_fix_lint: bool,
    /// The lint command (default: detected — ESLint, cargo clippy, ruff, golangci-lint).
    #[arg(long, value_name = "CMD")]
    pub lint_cmd: Option<String>,
    /// The test command, run after each step (reported; fixed too with --auto-fix-test).
    #[arg(long, value_name = "CMD")]
    pub test_cmd: Option<String>,
    /// Have the model fix failing tests.
    #[arg(long)]
    pub auto_fix_test: bool,
    /// Fix rounds per check and step before the run gives up (exit 1).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub fix_rounds: u32,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
