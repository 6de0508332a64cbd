//! The engine's errors: each says what is wrong and what to do, and maps to an exit code at the edge.
//! Every variant is typed: the path it concerns and the error underneath (`#[source]`) travel
//! with it, so a front end can branch on the kind and a message is never parsed back.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // config.toml and `-c`
    #[error("neither COX_HOME nor HOME is set; set COX_HOME to the directory for cox's config")]
    NoHome,
    #[error("{} is not valid TOML: {source}", .path.display())]
    ConfigToml {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration in {} or -c: {source}", .path.display())]
    ConfigInvalid {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{}: not a list of MCP servers ([mcp_servers.NAME] tables): {source}", .path.display())]
    McpProjectFile {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("invalid MCP server in config.toml or -c: {0}")]
    McpServer(#[from] cox_mcp::config::ConfigProblem),
    #[error("MCP server `{server}` is required (`required = true`) and did not start: {reason}")]
    McpRequired { server: String, reason: String },
    #[error("cannot edit {}: {problem}", .path.display())]
    McpEdit {
        path: PathBuf,
        problem: McpEditProblem,
    },
    #[error("-c `{setting}`{problem}")]
    Override {
        setting: String,
        problem: OverrideProblem,
    },
    #[error(
        "`{spec}` is not a model: write `provider:model` (e.g. `anthropic:claude-opus-4-6`) or a model name"
    )]
    BadRole { spec: String },
    #[error(
        "unknown provider `{name}`; known providers: {known} (define others under [providers.NAME] in config.toml)"
    )]
    UnknownProvider { name: String, known: String },
    #[error("[providers.{name}] needs `wire = \"responses\" | \"chat\" | \"anthropic\"`")]
    ProviderWire { name: String },
    #[error("[providers.{name}] needs `base_url`")]
    ProviderBaseUrl { name: String },
    #[error("base URL `{base_url}` of provider `{name}` must start with http:// or https://")]
    ProviderScheme { name: String, base_url: String },
    #[error(
        "provider `{provider}` has no default model; pass -m MODEL (for example `-m qwen2.5-coder`) \
         or set `model` under [providers.{provider}] in config.toml"
    )]
    NoDefaultModel { provider: String },
    /// A setting outside what it allows (config.toml, `-c` or a flag).
    #[error("{key} = {value} is not allowed: {allowed}")]
    Setting {
        key: &'static str,
        value: String,
        allowed: String,
    },
    #[error(
        "--model-path runs a GGUF file with the local provider, but the provider is `{provider}`; \
         drop --provider or pass --provider local"
    )]
    ModelPathNeedsLocal { provider: String },
    #[error(
        "[providers.{provider}] sets {}, which only the local provider uses; remove {}",
        .keys.join(", "),
        if .keys.len() == 1 { "it" } else { "them" }
    )]
    LocalOnlyKeys {
        provider: String,
        keys: Vec<&'static str>,
    },
    #[error("[providers.local] {setting}")]
    LocalSetting { setting: LocalSettingProblem },
    #[error(transparent)]
    Local(#[from] cox_model::local::LocalError),

    // credentials
    #[error("no API key for provider `{provider}`: {hint}")]
    MissingKey { provider: String, hint: String },
    #[error(
        "{} is not valid: {source}; fix it or remove it and run `cox auth login` again",
        .path.display()
    )]
    AuthFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    // what the person decided about projects (`$COX_HOME/projects.toml`)
    #[error("{}: {} (fix or remove the file; it holds trusted projects and saved approvals)", .path.display(), .source.message())]
    ProjectsToml {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },

    // project rules (`.cox/rules.toml`)
    #[error("{}: {}{}", .path.display(), .line.map(|l| format!("line {l}: ")).unwrap_or_default(), .source.message())]
    RulesToml {
        path: PathBuf,
        line: Option<usize>,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{}: rule[{index}] needs an `id` and a `text`", .path.display())]
    RuleIncomplete { path: PathBuf, index: usize },
    #[error("{}: {field}: `{pattern}` is not a valid glob ({source})", .path.display())]
    RuleGlob {
        path: PathBuf,
        field: String,
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("{}: {field}: {source}", .path.display())]
    RuleGlobSet {
        path: PathBuf,
        field: String,
        #[source]
        source: globset::Error,
    },
    #[error("{}: {field}: {source}", .path.display())]
    RuleRegex {
        path: PathBuf,
        field: String,
        #[source]
        source: regex::Error,
    },
    #[error(
        "{}: {field}: `{value}` is not an endpoint; write `tcp:PORT` (1-65535) or `unix:/absolute/path` (a wildcard closes its directory)",
        .path.display()
    )]
    RuleEndpoint {
        path: PathBuf,
        field: String,
        value: String,
    },

    // the prompt
    #[error("the prompt attaches {} but there is no such file", .path.display())]
    Attachment { path: PathBuf },
    #[error("@{path} is not UTF-8 text; only text files can be attached")]
    AttachmentNotText { path: String },
    #[error("cannot use directory {}: {source}", .path.display())]
    WorkingDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    // the sandbox
    #[error(
        "this kernel does not provide Landlock, so cox cannot sandbox commands; run with \
         --sandbox full-access to go without (commands then run with your full rights)"
    )]
    NoLandlock,
    #[error(transparent)]
    Sandbox(#[from] cox_sandbox::Error),

    // sessions and plan runs
    #[error("session journal {0}")]
    Journal(String),
    /// Another live cox works on it (a session, a plan file).
    #[error("{what} is in use by another cox (pid {pid}); wait for it to finish, or stop it first")]
    Locked { what: String, pid: String },
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error(
        "--auto-fix-lint: no linter found in {}; name one with --lint-cmd \"CMD\" (ESLint, cargo clippy, ruff and golangci-lint are detected)",
        .dir.display()
    )]
    NoLinter { dir: PathBuf },
    #[error("--auto-fix-test needs --test-cmd; add --test-cmd \"CMD\"")]
    FixTestsWithoutCommand,
    #[error("cannot write the plan {}: {source}", .path.display())]
    PlanWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    // checkpoints and undo
    #[error("checkpoint store {}: {source}", .path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot undo: {0}")]
    Undo(#[from] crate::checkpoint::Refusal),
    #[error(transparent)]
    Model(#[from] cox_model::ModelError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What is wrong with a `-c key=value` setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideProblem {
    #[error(" is not key=value (for example -c max_turns=20)")]
    NotKeyValue,
    #[error(" has an empty key")]
    EmptyKey,
    #[error(": `{part}` is a value, not a table")]
    NotATable { part: String },
}

/// A `[providers.local]` setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocalSettingProblem {
    #[error("temperature = {0} is out of range; use 0 (greedy) to 2")]
    Temperature(f32),
    #[error("threads = 0; use at least 1, or leave it out for one per core")]
    NoThreads,
    #[error("context_size = {0} is too small; use at least 256 tokens")]
    ContextSize(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_their_path_and_source() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("config.toml"), "max_turns = [").unwrap();
        let error = crate::config::read_file(dir.path(), &[]).unwrap_err();
        assert!(
            matches!(&error, Error::ConfigToml { path, .. } if path.ends_with("config.toml")),
            "{error:?}"
        );
        assert!(std::error::Error::source(&error).is_some());

        let error = crate::config::read_file(dir.path().join("nowhere").as_path(), &["x".into()])
            .unwrap_err();
        assert!(
            matches!(
                &error,
                Error::Override {
                    problem: OverrideProblem::NotKeyValue,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "-c `x` is not key=value (for example -c max_turns=20)"
        );

        // An I/O error names the file it concerns (fs-err), not just the OS reason.
        let unreadable = dir.path().join("config.toml");
        fs_err::remove_file(&unreadable).unwrap();
        fs_err::create_dir(&unreadable).unwrap();
        let error = crate::config::read_file(dir.path(), &[]).unwrap_err();
        assert!(matches!(&error, Error::Io(_)), "{error:?}");
        assert!(error.to_string().contains("config.toml"), "{error}");
    }
}

/// Why `cox mcp add | remove` could not change `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpEditProblem {
    #[error("it is not valid TOML ({0})")]
    NotToml(String),
    #[error("`mcp_servers` in it is not a table")]
    NotATable,
    #[error("MCP server `{0}` is there already; `cox mcp remove {0}` first")]
    Exists(String),
    #[error("there is no MCP server `{name}` (configured: {known})")]
    Missing { name: String, known: String },
}
