//! Configuration: `$COX_HOME/config.toml`, overridden by `-c key=value`, resolved into the provider
//! endpoint, model and limits of a session.
//!
//! Unknown keys are errors, not ignored: a misspelt `max_turn = 5` must not silently run with 100.
//! Base URL precedence: `base_url` in config (or `-c`) beats the provider's environment variable
//! (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`), which beats the built-in default. API keys: the
//! environment beats `auth.json` (see [`crate::auth`]). Limits are checked in `validate.rs`, the
//! reasoning settings resolved in `reasoning.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cox_model::{RetryPolicy, Wire};
use serde::Deserialize;

use crate::Error;
use crate::error::{LocalSettingProblem, OverrideProblem};

pub mod mcp_edit;
mod reasoning;
mod validate;

use reasoning::resolve_reasoning;
pub use reasoning::{ReasoningRoles, RoleReasoning, ThinkingSetting};
use validate::{checked_word, validate};

pub const DEFAULT_PROVIDER: &str = "openai";
pub const DEFAULT_MODEL: &str = "gpt-5.3-codex";
pub const DEFAULT_MAX_TURNS: u32 = 100;
pub const DEFAULT_COMPACT_THRESHOLD: f64 = 0.85;
/// Command output kept per call, in tokens (head and tail beyond it).
pub const DEFAULT_TOOL_OUTPUT_TOKENS: usize = 4_000;
/// Command output the journal keeps per call: 1 MiB, head and tail beyond it.
pub const DEFAULT_JOURNAL_OUTPUT_BYTES: usize = 1024 * 1024;
/// Checkpoints keep files up to 16 MiB, 2 GiB in all per session.
pub const DEFAULT_CHECKPOINT_MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
pub const DEFAULT_CHECKPOINT_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Terminal sessions (`exec_command`) that may run at once, unless `max_terminal_sessions` says.
pub const DEFAULT_MAX_TERMINAL_SESSIONS: usize = 8;
/// The most `max_terminal_sessions` may allow: each is a pty, a sandboxed process tree and a
/// screen buffer.
pub const MOST_TERMINAL_SESSIONS: usize = 64;
/// Bytes per token assumed when turning the token budget into bytes: English text and code
/// average about four bytes per token with OpenAI's and Anthropic's tokenizers.
pub const BYTES_PER_TOKEN: usize = 4;

/// The file's shape. Every field is optional; defaults are applied in [`Config::resolve`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub max_turns: Option<u32>,
    pub max_output_tokens: Option<u32>,
    pub stream_idle_timeout_ms: Option<u64>,
    /// A response that has not completed after this long is abandoned and retried.
    pub stream_total_timeout_ms: Option<u64>,
    /// Command output the journal keeps per call (the model gets `tool_output_max_tokens`).
    pub journal_output_max_bytes: Option<usize>,
    /// A file larger than this is tracked by checkpoints but its content is not kept (no undo).
    pub checkpoint_max_file_bytes: Option<u64>,
    /// All content a session's checkpoints keep together.
    pub checkpoint_max_bytes: Option<u64>,
    /// Terminal sessions the model may keep running at once.
    pub max_terminal_sessions: Option<usize>,
    pub max_retries: Option<u32>,
    pub retry_base_delay_ms: Option<u64>,
    pub tool_output_max_tokens: Option<usize>,
    pub model_context_window: Option<u64>,
    /// Compact automatically when the context reaches this fraction of the window (default 0.85).
    pub compact_threshold: Option<f64>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `cox run`'s checks when the command line names none.
    pub lint_cmd: Option<String>,
    pub test_cmd: Option<String>,
    /// `[roles]`: which model plans (`cox plan`) and which works (`cox run`), as `provider:model`.
    #[serde(default)]
    pub roles: Roles,
    /// `[sandbox]`: what commands may see.
    #[serde(default)]
    pub sandbox: SandboxSection,
    /// Responses `reasoning.effort` / Chat `reasoning_effort`: `none`, `minimal`, `low`, `medium`,
    /// `high`, `xhigh`.
    pub model_reasoning_effort: Option<String>,
    /// Responses `reasoning.summary`: `auto` (the default for reasoning models), `concise`,
    /// `detailed`, or `none` to ask for no summary.
    pub model_reasoning_summary: Option<String>,
    /// Anthropic extended thinking: a budget in tokens (at least 1024), `"adaptive"`, or `"off"`
    /// (the default).
    pub model_thinking: Option<ThinkingSetting>,
    /// Responses `text.verbosity`: `low`, `medium`, `high`.
    pub model_verbosity: Option<String>,
    /// Responses `service_tier`, passed through: `auto`, `default`, `flex`, `priority`.
    pub service_tier: Option<String>,
    /// `[reasoning.planner]`, `[reasoning.worker]`: the settings above for one role (the planner
    /// can think hard while the worker runs fast), beating the top-level ones.
    #[serde(default)]
    pub reasoning: ReasoningRoles,
    /// `[mcp_servers.NAME]`: Model Context Protocol servers whose tools sessions offer (see
    /// `cox_mcp::config` for the keys).
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, cox_mcp::ServerConfig>,
    /// MCP tool schemas above this many tokens in all are deferred: the model gets a search tool
    /// and loads the tools it needs (default [`DEFAULT_MCP_SCHEMA_BUDGET`]).
    pub mcp_tool_schema_budget: Option<usize>,
}

/// The tokens of MCP tool schemas offered in every request before they are deferred: about 5% of
/// a 200k window, a cost a session with a few small servers never reaches.
pub const DEFAULT_MCP_SCHEMA_BUDGET: usize = 10_000;

pub use cox_mcp::ServerConfig as McpServerConfig;

/// An enabled, checked `[mcp_servers.NAME]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServer {
    pub name: String,
    pub config: cox_mcp::ServerConfig,
    pub transport: cox_mcp::Transport,
}

/// The enabled entries, each checked (the first bad one is the error, naming it).
pub fn mcp_servers(
    entries: &BTreeMap<String, cox_mcp::ServerConfig>,
) -> Result<Vec<McpServer>, Error> {
    let mut servers = Vec::new();
    for (name, config) in entries {
        let transport = config.check(name)?;
        if config.enabled() {
            servers.push(McpServer {
                name: name.clone(),
                config: config.clone(),
                transport,
            });
        }
    }
    Ok(servers)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// `[sandbox.env]`: credential variables added to the built-in rule, and taken out of it.
    #[serde(default)]
    pub env: EnvSection,
}

/// See `cox_sandbox::env` for the built-in rule and the pattern syntax.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    #[serde(default)]
    pub scrub: Vec<String>,
    #[serde(default)]
    pub keep: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub planner: Option<String>,
    pub worker: Option<String>,
}

/// Splits a role's `provider:model` (or a bare `model`) into its parts.
pub fn parse_role(spec: &str) -> Result<(Option<String>, String), Error> {
    let bad = || Error::BadRole {
        spec: spec.to_string(),
    };
    match spec.split_once(':') {
        Some((provider, model)) if !provider.is_empty() && !model.is_empty() => {
            Ok((Some(provider.to_string()), model.to_string()))
        }
        Some(_) => Err(bad()),
        None if spec.trim().is_empty() => Err(bad()),
        None => Ok((None, spec.to_string())),
    }
}

/// `[providers.NAME]`: a custom provider, or changes to a built-in one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub wire: Option<Wire>,
    pub base_url: Option<String>,
    /// The environment variable holding the key.
    pub api_key_env: Option<String>,
    /// Whether a request without a key is pointless (default: true when `api_key_env` is set).
    pub requires_key: Option<bool>,
    /// The model used with this provider when `-m` is not given.
    pub model: Option<String>,
    /// `local` only: the GGUF file to run (`--model-path` beats it).
    pub model_path: Option<PathBuf>,
    /// `local` only: context size in tokens (default: the GGUF's, capped at 16,384).
    pub context_size: Option<u32>,
    /// `local` only: decoding threads (default: the cores available).
    pub threads: Option<usize>,
    /// `local` only: sampling temperature, 0 = greedy (default 0).
    pub temperature: Option<f32>,
    /// `local` only: the first request's sampling seed (default 0).
    pub seed: Option<u32>,
    /// `local` only: `auto` (default) or `required-first` (the first response to each user message
    /// must call a tool).
    pub tool_choice: Option<cox_model::local::ToolChoice>,
}

impl ProviderConfig {
    /// The `local`-only keys that are set, for the error when another provider carries them.
    fn local_keys(&self) -> Vec<&'static str> {
        [
            ("model_path", self.model_path.is_some()),
            ("context_size", self.context_size.is_some()),
            ("threads", self.threads.is_some()),
            ("temperature", self.temperature.is_some()),
            ("seed", self.seed.is_some()),
            ("tool_choice", self.tool_choice.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

/// The provider that runs a GGUF model inside the process (see `cox_model::local`).
pub const LOCAL_PROVIDER: &str = "local";

/// A built-in provider preset.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    pub kind: ProviderKind,
    pub wire: Wire,
    pub base_url: &'static str,
    pub base_url_env: Option<&'static str>,
    pub api_key_env: Option<&'static str>,
    pub requires_key: bool,
    pub default_model: Option<&'static str>,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "openai",
        kind: ProviderKind::Remote,
        wire: Wire::Responses,
        base_url: "https://api.openai.com/v1",
        base_url_env: Some("OPENAI_BASE_URL"),
        api_key_env: Some("OPENAI_API_KEY"),
        requires_key: true,
        default_model: Some(DEFAULT_MODEL),
    },
    Preset {
        name: "openai-chat",
        kind: ProviderKind::Remote,
        wire: Wire::Chat,
        base_url: "https://api.openai.com/v1",
        base_url_env: Some("OPENAI_BASE_URL"),
        api_key_env: Some("OPENAI_API_KEY"),
        requires_key: true,
        default_model: Some(DEFAULT_MODEL),
    },
    Preset {
        name: "anthropic",
        kind: ProviderKind::Remote,
        wire: Wire::Anthropic,
        base_url: "https://api.anthropic.com",
        base_url_env: Some("ANTHROPIC_BASE_URL"),
        api_key_env: Some("ANTHROPIC_API_KEY"),
        requires_key: true,
        default_model: Some("claude-opus-4-6"),
    },
    Preset {
        name: "ollama",
        kind: ProviderKind::Remote,
        wire: Wire::Chat,
        base_url: "http://127.0.0.1:11434/v1",
        base_url_env: Some("OLLAMA_BASE_URL"),
        api_key_env: None,
        requires_key: false,
        default_model: None,
    },
    Preset {
        name: "llamacpp",
        kind: ProviderKind::Remote,
        wire: Wire::Chat,
        base_url: "http://127.0.0.1:8080/v1",
        base_url_env: None,
        api_key_env: None,
        requires_key: false,
        default_model: None,
    },
    Preset {
        name: "vllm",
        kind: ProviderKind::Remote,
        wire: Wire::Chat,
        base_url: "http://127.0.0.1:8000/v1",
        base_url_env: None,
        api_key_env: None,
        requires_key: false,
        default_model: None,
    },
    Preset {
        name: "lmstudio",
        kind: ProviderKind::Remote,
        wire: Wire::Chat,
        base_url: "http://127.0.0.1:1234/v1",
        base_url_env: None,
        api_key_env: None,
        requires_key: false,
        default_model: None,
    },
    Preset {
        name: LOCAL_PROVIDER,
        kind: ProviderKind::Local,
        // Not spoken: the model runs in the process. Kept so every provider has a wire.
        wire: Wire::Chat,
        base_url: "",
        base_url_env: None,
        api_key_env: None,
        requires_key: false,
        default_model: None,
    },
];

/// Where a provider's model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Behind an HTTP endpoint speaking `wire`.
    Remote,
    /// Inside this process (`--provider local`); `wire` and `base_url` are unused.
    Local,
}

/// Choices made on the command line, which beat the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub provider: Option<String>,
    pub model: Option<String>,
    /// The role whose `[reasoning.ROLE]` settings apply (none: the top-level ones only).
    pub role: Option<Role>,
    /// `-c key=value` pairs, in order.
    pub settings: Vec<String>,
    pub max_turns: Option<u32>,
    /// `--model-path FILE.gguf`: implies `--provider local` when no provider is named.
    pub model_path: Option<PathBuf>,
}

/// Which role a session plays: `cox plan` plans, `cox run` works (`[roles]` in config.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Planner,
    Worker,
}

impl Overrides {
    /// These overrides with the role's model — `planner_model` (`--planner-model`) or `[roles]` —
    /// when the command line's `-m`/`--provider` do not say otherwise.
    pub fn for_role(
        mut self,
        file: &ConfigFile,
        role: Role,
        planner_model: Option<&str>,
    ) -> Result<Overrides, Error> {
        let spec = match role {
            Role::Planner => planner_model
                .map(str::to_string)
                .or_else(|| file.roles.planner.clone()),
            Role::Worker if self.model.is_none() && self.provider.is_none() => {
                file.roles.worker.clone()
            }
            Role::Worker => None,
        };
        self.role = Some(role);
        let applies = role == Role::Worker || self.model.is_none() || planner_model.is_some();
        if let Some(spec) = spec.filter(|_| applies) {
            let (provider, model) = parse_role(&spec)?;
            if provider.is_some() {
                self.provider = provider;
            }
            self.model = Some(model);
        }
        Ok(self)
    }
}

/// A provider resolved for use: everything but the key.
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    pub name: String,
    pub kind: ProviderKind,
    pub wire: Wire,
    pub base_url: String,
    pub api_key_env: Option<String>,
    pub requires_key: bool,
}

/// The resolved configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub home: PathBuf,
    pub provider: ProviderSpec,
    pub model: String,
    pub max_turns: u32,
    pub max_output_tokens: Option<u32>,
    pub retry: RetryPolicy,
    pub tool_output_max_bytes: usize,
    /// A command's output kept in the journal per call (head and tail beyond it).
    pub journal_output_max_bytes: usize,
    /// What a session's checkpoint store may keep (see `crate::checkpoint`).
    pub checkpoint_limits: crate::checkpoint::Limits,
    /// Terminal sessions the model may keep running at once (`exec_command`).
    pub max_terminal_sessions: usize,
    pub context_window: u64,
    /// The window is a guess: neither the catalog nor `model_context_window` knows the model.
    pub context_window_assumed: bool,
    pub compact_threshold: f64,
    /// Which environment variables commands never get, and records never show.
    pub env_scrub: cox_sandbox::env::Scrub,
    /// How to run the model when the provider is `local`.
    pub local: Option<cox_model::local::LocalSettings>,
    /// Reasoning settings for every request (effort, summary, carried reasoning, thinking).
    pub reasoning: cox_model::Reasoning,
    pub service_tier: Option<String>,
    pub verbosity: Option<String>,
    /// The enabled MCP servers, checked.
    pub mcp_servers: Vec<McpServer>,
    pub mcp_tool_schema_budget: usize,
}

/// `$COX_HOME`, else `~/.cox`.
pub fn cox_home() -> Result<PathBuf, Error> {
    if let Some(home) = std::env::var_os("COX_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cox")),
        None => Err(Error::NoHome),
    }
}

impl Config {
    /// Reads `config.toml` under `home` (absent is fine), applies overrides, and resolves.
    pub fn load(home: &Path, overrides: &Overrides) -> Result<Config, Error> {
        let file = read_file(home, &overrides.settings)?;
        Config::resolve(home, file, overrides)
    }

    fn resolve(home: &Path, file: ConfigFile, overrides: &Overrides) -> Result<Config, Error> {
        let name = overrides
            .provider
            .clone()
            .or_else(|| {
                overrides
                    .model_path
                    .as_ref()
                    .map(|_| LOCAL_PROVIDER.to_string())
            })
            .or(file.provider.clone())
            .unwrap_or_else(|| DEFAULT_PROVIDER.to_string());
        let (provider, preset_model) = resolve_provider(&name, &file.providers)?;
        let local = resolve_local(
            &provider,
            file.providers.get(&name),
            overrides,
            cox_model::local::BUILT,
        )?;
        // A top-level `model` belongs to the top-level `provider`; `--provider other` leaves it out.
        let file_model_applies =
            overrides.provider.is_none() || file.provider.as_deref() == Some(name.as_str());
        let model = overrides
            .model
            .clone()
            .or_else(|| file.providers.get(&name).and_then(|p| p.model.clone()))
            .or(file.model.clone().filter(|_| file_model_applies))
            .or(preset_model.map(str::to_string))
            .or_else(|| local.as_ref().map(|l| local_model_name(&l.model_path)))
            .ok_or_else(|| Error::NoDefaultModel {
                provider: name.to_string(),
            })?;
        let defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            max_retries: file.max_retries.unwrap_or(defaults.max_retries),
            base_delay: file
                .retry_base_delay_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.base_delay),
            max_delay: defaults.max_delay,
            idle_timeout: file
                .stream_idle_timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.idle_timeout),
            total_timeout: file
                .stream_total_timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.total_timeout),
        };
        let known_window = file
            .model_context_window
            .or_else(|| crate::catalog::context_window(&model));
        let compact_threshold = file.compact_threshold.unwrap_or(DEFAULT_COMPACT_THRESHOLD);
        let max_turns = overrides
            .max_turns
            .or(file.max_turns)
            .unwrap_or(DEFAULT_MAX_TURNS);
        validate(&file, max_turns, known_window)?;
        let reasoning = resolve_reasoning(&file, overrides.role, &model)?;
        let mcp_servers = mcp_servers(&file.mcp_servers)?;
        Ok(Config {
            home: home.to_path_buf(),
            provider,
            max_turns,
            max_output_tokens: file.max_output_tokens,
            retry,
            tool_output_max_bytes: file
                .tool_output_max_tokens
                .unwrap_or(DEFAULT_TOOL_OUTPUT_TOKENS)
                .saturating_mul(BYTES_PER_TOKEN),
            journal_output_max_bytes: file
                .journal_output_max_bytes
                .unwrap_or(DEFAULT_JOURNAL_OUTPUT_BYTES),
            checkpoint_limits: crate::checkpoint::Limits {
                max_file_bytes: file
                    .checkpoint_max_file_bytes
                    .unwrap_or(DEFAULT_CHECKPOINT_MAX_FILE_BYTES),
                max_bytes: file
                    .checkpoint_max_bytes
                    .unwrap_or(DEFAULT_CHECKPOINT_MAX_BYTES),
            },
            max_terminal_sessions: file
                .max_terminal_sessions
                .unwrap_or(DEFAULT_MAX_TERMINAL_SESSIONS),
            context_window: known_window.unwrap_or_else(crate::catalog::default_context_window),
            context_window_assumed: known_window.is_none(),
            compact_threshold,
            env_scrub: cox_sandbox::env::Scrub {
                scrub: file.sandbox.env.scrub.clone(),
                keep: file.sandbox.env.keep.clone(),
            },
            model,
            // The system message's KV state is kept under COX_HOME between runs.
            local: local.map(|settings| cox_model::local::LocalSettings {
                prefix_cache_dir: Some(home.join("cache").join("local")),
                ..settings
            }),
            reasoning,
            service_tier: checked_word(
                "service_tier",
                file.service_tier.as_deref(),
                &["auto", "default", "flex", "priority", "scale"],
            )?,
            verbosity: checked_word(
                "model_verbosity",
                file.model_verbosity.as_deref(),
                &["low", "medium", "high"],
            )?,
            mcp_servers,
            mcp_tool_schema_budget: file
                .mcp_tool_schema_budget
                .unwrap_or(DEFAULT_MCP_SCHEMA_BUDGET),
        })
    }
}

/// Reads `config.toml` under `home` (absent is fine) and applies `-c key=value` settings.
pub fn read_file(home: &Path, settings: &[String]) -> Result<ConfigFile, Error> {
    let path = home.join("config.toml");
    let mut table = match fs_err::read_to_string(&path) {
        Ok(text) => text
            .parse::<toml::Table>()
            .map_err(|source| Error::ConfigToml {
                path: path.clone(),
                source: Box::new(source),
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(Error::Io(e)),
    };
    for setting in settings {
        apply_override(&mut table, setting)?;
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|source| Error::ConfigInvalid {
            path,
            source: Box::new(source),
        })
}

/// Every provider known from presets and the config file, resolved (a broken custom entry is an
/// error in its place).
pub fn all_providers(file: &ConfigFile) -> Vec<(String, Result<ProviderSpec, Error>)> {
    known_providers(&file.providers)
        .into_iter()
        .map(|name| {
            let spec = resolve_provider(&name, &file.providers).map(|(spec, _)| spec);
            (name, spec)
        })
        .collect()
}

/// Every provider name known from presets and the config file.
pub fn known_providers(custom: &BTreeMap<String, ProviderConfig>) -> Vec<String> {
    let mut names: Vec<String> = PRESETS.iter().map(|p| p.name.to_string()).collect();
    for name in custom.keys() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The local runtime's settings, when the provider is `local`; local-only keys on another
/// provider are an error rather than silently ignored.
/// `built`: whether this binary has the `local` feature (a parameter so both answers are tested).
fn resolve_local(
    provider: &ProviderSpec,
    config: Option<&ProviderConfig>,
    overrides: &Overrides,
    built: bool,
) -> Result<Option<cox_model::local::LocalSettings>, Error> {
    let config = config.cloned().unwrap_or_default();
    if provider.kind != ProviderKind::Local {
        if overrides.model_path.is_some() {
            return Err(Error::ModelPathNeedsLocal {
                provider: provider.name.clone(),
            });
        }
        let keys = config.local_keys();
        if !keys.is_empty() {
            return Err(Error::LocalOnlyKeys {
                provider: provider.name.clone(),
                keys,
            });
        }
        return Ok(None);
    }
    if !built {
        return Err(cox_model::local::LocalError::NotBuilt.into());
    }
    let path = overrides
        .model_path
        .clone()
        .or(config.model_path)
        .ok_or(cox_model::local::LocalError::NoPath)?;
    let temperature = config.temperature.unwrap_or(0.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(Error::LocalSetting {
            setting: LocalSettingProblem::Temperature(temperature),
        });
    }
    if config.threads == Some(0) {
        return Err(Error::LocalSetting {
            setting: LocalSettingProblem::NoThreads,
        });
    }
    if let Some(size) = config.context_size.filter(|&size| size < 256) {
        return Err(Error::LocalSetting {
            setting: LocalSettingProblem::ContextSize(size),
        });
    }
    Ok(Some(cox_model::local::LocalSettings {
        model_path: expand_home(path),
        context_size: config.context_size,
        threads: config.threads,
        temperature,
        seed: config.seed.unwrap_or(0),
        tool_choice: config.tool_choice.unwrap_or_default(),
        prefix_cache_dir: None,
    }))
}

/// `~/models/x.gguf` as the shell would read it (config files are not expanded by a shell).
fn expand_home(path: PathBuf) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path,
    }
}

/// A local model's name when `-m` gives none: the file's name without `.gguf`.
fn local_model_name(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| LOCAL_PROVIDER.to_string())
}

fn resolve_provider(
    name: &str,
    custom: &BTreeMap<String, ProviderConfig>,
) -> Result<(ProviderSpec, Option<&'static str>), Error> {
    let preset = PRESETS.iter().find(|p| p.name == name);
    let config = custom.get(name);
    if preset.is_none() && config.is_none() {
        return Err(Error::UnknownProvider {
            name: name.to_string(),
            known: known_providers(custom).join(", "),
        });
    }
    let config = config.cloned().unwrap_or_default();
    let wire = match (config.wire, preset) {
        (Some(wire), _) => wire,
        (None, Some(preset)) => preset.wire,
        (None, None) => {
            return Err(Error::ProviderWire {
                name: name.to_string(),
            });
        }
    };
    let env_base = preset
        .and_then(|p| p.base_url_env)
        .and_then(|var| std::env::var(var).ok())
        .filter(|v| !v.trim().is_empty());
    let base_url = match (config.base_url, env_base, preset) {
        (Some(url), _, _) | (None, Some(url), _) => url,
        (None, None, Some(preset)) => preset.base_url.to_string(),
        (None, None, None) => {
            return Err(Error::ProviderBaseUrl {
                name: name.to_string(),
            });
        }
    };
    let kind = preset.map_or(ProviderKind::Remote, |p| p.kind);
    if kind == ProviderKind::Remote
        && !(base_url.starts_with("http://") || base_url.starts_with("https://"))
    {
        return Err(Error::ProviderScheme {
            name: name.to_string(),
            base_url,
        });
    }
    let api_key_env = config
        .api_key_env
        .clone()
        .or_else(|| preset.and_then(|p| p.api_key_env).map(str::to_string));
    let requires_key = config.requires_key.unwrap_or(match preset {
        Some(preset) if config.api_key_env.is_none() => preset.requires_key,
        _ => api_key_env.is_some(),
    });
    Ok((
        ProviderSpec {
            name: name.to_string(),
            kind,
            wire,
            base_url,
            api_key_env,
            requires_key,
        },
        preset.and_then(|p| p.default_model),
    ))
}

/// Applies `a.b.c=value`: the value is read as TOML (`5`, `true`, `"x"`, `[1,2]`), and as a plain
/// string when it is not valid TOML (`-c model=gpt-5.3-codex`).
fn apply_override(table: &mut toml::Table, setting: &str) -> Result<(), Error> {
    let Some((key, raw)) = setting.split_once('=') else {
        return Err(Error::Override {
            setting: setting.to_string(),
            problem: OverrideProblem::NotKeyValue,
        });
    };
    let key = key.trim();
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut parsed) => parsed
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    if key.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Err(Error::Override {
            setting: setting.to_string(),
            problem: OverrideProblem::EmptyKey,
        });
    }
    let mut current = table;
    for part in &parts[..parts.len() - 1] {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| Error::Override {
            setting: setting.to_string(),
            problem: OverrideProblem::NotATable {
                part: part.to_string(),
            },
        })?;
    }
    current.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests;
