//! `[mcp_servers.NAME]` in `config.toml`: the keys of Codex's config where it has them (so a
//! person's Codex MCP setup works unchanged), and cox's own for safety (`trusted`,
//! `trusted_tools`, `network`) and the legacy SSE transport (`transport = "sse"`).
//!
//! Unknown keys are errors, as everywhere in cox's config: a misspelt `disabled_tool` must not
//! silently offer a tool the person meant to hide.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A server may take this long to start and list what it offers (Codex's default).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A tool call may take this long (Codex's default).
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// One server as written in the file. Exactly one of `command` (stdio) and `url` (HTTP).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The program of a stdio server (looked up on `PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Variables set for a stdio server (on top of the environment commands get).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Variables passed through from cox's own environment, even ones commands never see (a
    /// server's API key): the person names them, so they are meant for this server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_vars: Vec<String>,
    /// Where a stdio server starts (default: the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// The endpoint of an HTTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `streamable_http` (the default for a `url`) or `sse`, the transport of protocol version
    /// 2024-11-05 (a GET stream that names the URL to POST to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The variable holding the bearer token sent as `Authorization: Bearer …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env_var: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub http_headers: BTreeMap<String, String>,
    /// Header name → the variable holding its value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_http_headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_timeout_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_timeout_sec: Option<f64>,
    /// `false` keeps the entry but starts nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// A server that fails to start fails the session (default: it is reported, the session goes
    /// on without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Only these tools are offered (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_tools: Option<Vec<String>>,
    /// These tools are never offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_tools: Vec<String>,
    /// Every tool of this server runs without asking (rules still apply).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trusted: bool,
    /// These tools run without asking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_tools: Vec<String>,
    /// Whether a stdio server may use the network (default: what the session's commands may).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<bool>,
}

/// How cox reaches a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    StreamableHttp,
    Sse,
}

impl Transport {
    pub fn name(&self) -> &str {
        match self {
            Transport::Stdio => "stdio",
            Transport::StreamableHttp => "streamable_http",
            Transport::Sse => "sse",
        }
    }
}

/// A server entry that cannot be used, naming the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[mcp_servers.{server}]: {problem}")]
pub struct ConfigProblem {
    pub server: String,
    pub problem: String,
}

impl ServerConfig {
    /// Checks the entry: a usable name (it prefixes the tool names the model sees), exactly one
    /// of `command` and `url`, a known transport, timeouts that are numbers of time.
    pub fn check(&self, name: &str) -> Result<Transport, ConfigProblem> {
        let problem = |problem: String| ConfigProblem {
            server: name.to_string(),
            problem,
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || name.contains("__")
        {
            return Err(problem(
                "the name may hold only letters, digits, `-` and single `_` (it prefixes the \
                 server's tool names as NAME__TOOL)"
                    .into(),
            ));
        }
        let transport = match (&self.command, &self.url, self.transport.as_deref()) {
            (Some(_), Some(_), _) => {
                return Err(problem(
                    "set either `command` (a stdio server) or `url` (an HTTP server), not both"
                        .into(),
                ));
            }
            (None, None, _) => {
                return Err(problem(
                    "set `command` (a stdio server) or `url` (an HTTP server)".into(),
                ));
            }
            (Some(command), None, None | Some("stdio")) => {
                if command.trim().is_empty() {
                    return Err(problem("`command` is empty".into()));
                }
                Transport::Stdio
            }
            (None, Some(_), None | Some("streamable_http" | "http")) => Transport::StreamableHttp,
            (None, Some(_), Some("sse")) => Transport::Sse,
            (_, _, Some(other)) => {
                return Err(problem(format!(
                    "unknown `transport = \"{other}\"`: use `streamable_http` or `sse` with a \
                     `url`, or leave it out for a `command`"
                )));
            }
        };
        if let Some(url) = &self.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(problem(format!(
                "`url = \"{url}\"` is not an http:// or https:// URL"
            )));
        }
        for (key, secs) in [
            ("startup_timeout_sec", self.startup_timeout_sec),
            ("tool_timeout_sec", self.tool_timeout_sec),
        ] {
            if let Some(secs) = secs
                && !(secs.is_finite() && secs > 0.0 && secs < 86_400.0)
            {
                return Err(problem(format!(
                    "`{key} = {secs}` must be a number of seconds above 0 and below a day"
                )));
            }
        }
        for (key, ms) in [
            ("startup_timeout_ms", self.startup_timeout_ms),
            ("tool_timeout_ms", self.tool_timeout_ms),
        ] {
            if ms == Some(0) {
                return Err(problem(format!("`{key} = 0` would time out at once")));
            }
        }
        if transport != Transport::Stdio && (self.network.is_some() || !self.args.is_empty()) {
            return Err(problem(
                "`args` and `network` are for stdio servers (`command`); an HTTP server runs \
                 elsewhere"
                    .into(),
            ));
        }
        Ok(transport)
    }

    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    pub fn startup_timeout(&self) -> Duration {
        timeout(
            self.startup_timeout_ms,
            self.startup_timeout_sec,
            DEFAULT_STARTUP_TIMEOUT,
        )
    }

    pub fn tool_timeout(&self) -> Duration {
        timeout(
            self.tool_timeout_ms,
            self.tool_timeout_sec,
            DEFAULT_TOOL_TIMEOUT,
        )
    }

    /// Whether the server offers `tool` (the server's own name for it).
    pub fn offers(&self, tool: &str) -> bool {
        let enabled = self
            .enabled_tools
            .as_ref()
            .is_none_or(|tools| tools.iter().any(|t| t == tool));
        enabled && !self.disabled_tools.iter().any(|t| t == tool)
    }

    /// Whether `tool` runs without asking.
    pub fn trusts(&self, tool: &str) -> bool {
        self.trusted || self.trusted_tools.iter().any(|t| t == tool)
    }

    /// What the entry reaches, as a person reads it: the command line or the URL.
    pub fn target(&self) -> String {
        match (&self.command, &self.url) {
            (Some(command), _) => std::iter::once(command.as_str())
                .chain(self.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            (None, Some(url)) => url.clone(),
            (None, None) => String::new(),
        }
    }
}

/// `_ms` beats `_sec` (both are Codex's); neither: the default.
fn timeout(ms: Option<u64>, secs: Option<f64>, default: Duration) -> Duration {
    match (ms, secs) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, Some(secs)) => Duration::from_secs_f64(secs),
        (None, None) => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdio(command: &str) -> ServerConfig {
        ServerConfig {
            command: Some(command.into()),
            ..ServerConfig::default()
        }
    }

    #[test]
    fn an_entry_names_one_transport() {
        assert_eq!(stdio("npx").check("fs"), Ok(Transport::Stdio));
        let both = ServerConfig {
            url: Some("http://127.0.0.1:1/mcp".into()),
            ..stdio("npx")
        };
        assert!(both.check("fs").unwrap_err().problem.contains("not both"));
        let neither = ServerConfig::default();
        assert!(neither.check("fs").is_err());
        let sse = ServerConfig {
            url: Some("http://127.0.0.1:1/sse".into()),
            transport: Some("sse".into()),
            ..ServerConfig::default()
        };
        assert_eq!(sse.check("old"), Ok(Transport::Sse));
        let odd = ServerConfig {
            transport: Some("websocket".into()),
            ..sse
        };
        assert!(odd.check("old").unwrap_err().problem.contains("websocket"));
    }

    #[test]
    fn a_name_must_prefix_tool_names_unambiguously() {
        for bad in ["", "a b", "a__b", "a.b", "ü"] {
            assert!(stdio("x").check(bad).is_err(), "{bad:?}");
        }
        for good in ["fs", "git-2", "my_server"] {
            assert!(stdio("x").check(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn timeouts_take_milliseconds_before_seconds() {
        let mut config = stdio("x");
        assert_eq!(config.startup_timeout(), DEFAULT_STARTUP_TIMEOUT);
        config.tool_timeout_sec = Some(1.5);
        assert_eq!(config.tool_timeout(), Duration::from_millis(1500));
        config.tool_timeout_ms = Some(200);
        assert_eq!(config.tool_timeout(), Duration::from_millis(200));
        config.startup_timeout_sec = Some(-1.0);
        assert!(config.check("x").is_err());
    }

    #[test]
    fn tool_filters_and_trust() {
        let config = ServerConfig {
            enabled_tools: Some(vec!["read".into(), "write".into()]),
            disabled_tools: vec!["write".into()],
            trusted_tools: vec!["read".into()],
            ..stdio("x")
        };
        assert!(config.offers("read"));
        assert!(!config.offers("write"));
        assert!(!config.offers("delete"));
        assert!(config.trusts("read"));
        assert!(!config.trusts("write"));
    }

    #[test]
    fn codex_keys_parse_and_unknown_keys_do_not() {
        let text = r#"
            command = "npx"
            args = ["-y", "@modelcontextprotocol/server-filesystem", "."]
            env = { DEBUG = "1" }
            startup_timeout_sec = 20
            tool_timeout_sec = 30.5
            enabled_tools = ["read_file"]
        "#;
        let config: ServerConfig = toml_from(text).unwrap();
        assert_eq!(config.tool_timeout(), Duration::from_millis(30_500));
        assert!(toml_from("command = \"x\"\ndisabled_tool = [\"a\"]").is_err());
    }

    fn toml_from(text: &str) -> Result<ServerConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}
