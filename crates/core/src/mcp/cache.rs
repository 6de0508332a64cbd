//! The tools each server offered when it last started, kept in `$COX_HOME/cache/mcp/NAME.json`
//! with a fingerprint of its entry and of cox: a session whose servers are all known starts
//! none of them until a tool is called, so configured servers cost a session nothing it does
//! not use. A changed entry (or cox) is a miss, and the server starts at once as without a
//! cache. The cache only says what to offer; what a call does is the server's answer.

use crate::config::McpServer;

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    fingerprint: String,
    offer: cox_mcp::Offer,
}

fn fingerprint(server: &McpServer) -> String {
    let config = serde_json::to_string(&server.config).unwrap_or_default();
    let text = format!("{}\n{}\n{config}", env!("CARGO_PKG_VERSION"), server.name);
    // A fingerprint, not a defence: the cache lives in COX_HOME, which commands and servers
    // cannot see.
    format!("{:016x}", cox_mcp::offer::fnv1a(text.as_bytes()))
}

fn path(home: &std::path::Path, server: &McpServer) -> std::path::PathBuf {
    home.join("cache")
        .join("mcp")
        .join(format!("{}.json", server.name))
}

pub(super) fn load(home: &std::path::Path, server: &McpServer) -> Option<cox_mcp::Offer> {
    let text = fs_err::read_to_string(path(home, server)).ok()?;
    let entry: Entry = serde_json::from_str(&text).ok()?;
    (entry.fingerprint == fingerprint(server)).then_some(entry.offer)
}

pub(super) fn store(home: &std::path::Path, server: &McpServer, offer: &cox_mcp::Offer) {
    let entry = Entry {
        fingerprint: fingerprint(server),
        offer: offer.clone(),
    };
    let path = path(home, server);
    let Ok(text) = serde_json::to_string(&entry) else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = fs_err::create_dir_all(dir);
    }
    if let Err(e) = crate::auth::write_private(&path, text.as_bytes()) {
        tracing::warn!(error = %e, "cannot cache an MCP server's tools");
    }
}
