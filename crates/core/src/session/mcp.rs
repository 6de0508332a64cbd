//! The session's side of its MCP servers (`crate::mcp`): before the first task's first request
//! it waits for them (an interrupt stops the wait), adds their tools to the registry, says how
//! each server is (`mcp_servers`) and warns of each that failed; a `required` one that failed
//! fails the task.

use cox_protocol::{ErrorKind, Event, McpServerStatus};
use tokio_util::sync::CancellationToken;

use super::{Outcome, Session};

/// The servers' statuses (none without servers), with every credential's value masked: a
/// server's error carries what it wrote to stderr, and a command line can carry a token.
pub(super) fn statuses(
    servers: Option<&crate::mcp::Servers>,
    credentials: &crate::secrets::Credentials,
) -> Vec<McpServerStatus> {
    let mut statuses = servers
        .map(crate::mcp::Servers::statuses)
        .unwrap_or_default();
    for status in &mut statuses {
        status.target = credentials.redact(&status.target);
        status.error = status.error.as_deref().map(|e| credentials.redact(e));
    }
    statuses
}

impl Session {
    /// Puts the servers' tools in the registry in place of those it had; returns the names it
    /// could not add.
    fn install_mcp_tools(&mut self, servers: &crate::mcp::Servers) -> Vec<String> {
        let old = std::mem::take(&mut self.mcp_tools);
        self.tools.remove(&old);
        let tools = servers.tools();
        let names: Vec<String> = tools.iter().map(|t| t.name().to_string()).collect();
        let refused = self.tools.extend(tools);
        self.mcp_tools = names.into_iter().filter(|n| !refused.contains(n)).collect();
        self.mcp_offered = servers.offered();
        refused
    }

    /// Before each request: a server that started since (at its first call) may offer other
    /// tools than the cache said; the registry follows what it offers now.
    pub(super) fn mcp_refresh(&mut self) {
        let Some(servers) = self.config.mcp.clone() else {
            return;
        };
        if self.mcp_ready && servers.offered() != self.mcp_offered {
            tracing::info!("MCP tools changed; the registry follows");
            self.install_mcp_tools(&servers);
        }
    }

    pub(super) async fn mcp_ready(&mut self, cancel: &CancellationToken) -> Result<(), Outcome> {
        if self.mcp_ready {
            return Ok(());
        }
        let Some(servers) = self.config.mcp.clone() else {
            self.mcp_ready = true;
            return Ok(());
        };
        tokio::select! {
            _ = servers.ready() => {}
            _ = cancel.cancelled() => return Err(Outcome::Interrupted),
        };
        let statuses = statuses(Some(&servers), &self.config.credentials);
        self.mcp_ready = true;
        let refused = self.install_mcp_tools(&servers);
        for status in &statuses {
            tracing::info!(server = %status.name, ready = status.ready, tools = status.tools.len(), "MCP server");
            if let Some(error) = &status.error {
                self.warn(format!(
                    "MCP server `{}` is not available, the session goes on without it: {error}",
                    status.name
                ))
                .await;
            }
        }
        for name in refused {
            self.warn(format!(
                "MCP tool `{name}` is not offered: a tool of that name exists already"
            ))
            .await;
        }
        self.emitter
            .emit(Event::McpServers { servers: statuses })
            .await;
        if let Some((server, reason)) = servers.missing_required() {
            let reason = self.config.credentials.redact(&reason);
            let message = crate::Error::McpRequired { server, reason }.to_string();
            self.emitter
                .emit(Event::Error {
                    kind: ErrorKind::McpServer,
                    message,
                })
                .await;
            return Err(Outcome::Failed);
        }
        Ok(())
    }
}
