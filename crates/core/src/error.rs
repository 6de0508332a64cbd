//! The engine's errors: each says what is wrong and what to do, and maps to an exit code at the edge.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error(
        "unknown provider `{name}`; known providers: {known} (define others under [providers.NAME] in config.toml)"
    )]
    UnknownProvider { name: String, known: String },
    #[error("no API key for provider `{provider}`: {hint}")]
    MissingKey { provider: String, hint: String },
    #[error("the prompt attaches {} but there is no such file", .path.display())]
    Attachment { path: PathBuf },
    #[error("cannot use directory {}: {source}", .path.display())]
    WorkingDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("session journal {0}")]
    Journal(String),
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
    #[error(transparent)]
    Model(#[from] cox_model::ModelError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
