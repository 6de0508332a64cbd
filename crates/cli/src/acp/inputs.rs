//! What a client sends, made into what cox takes: the workspace, its MCP servers as config
//! entries, the prompt's text; and a recorded conversation made into the updates that replay it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, EmbeddedResourceResource, HttpHeader, McpServer, SessionUpdate,
    ToolCall, ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields,
};
use agent_client_protocol::{Error as AcpError, ErrorCode};
use cox_protocol::Item;

use super::updates::text_content;
use super::{error, failure};

pub(super) fn workspace(cwd: &Path) -> Result<PathBuf, AcpError> {
    if !cwd.is_absolute() {
        return Err(error(
            ErrorCode::INVALID_PARAMS,
            format!("cwd `{}` is not an absolute path", cwd.display()),
        ));
    }
    let canonical = fs_err::canonicalize(cwd).map_err(|e| {
        error(
            ErrorCode::INVALID_PARAMS,
            format!(
                "cannot use cwd {}: {}",
                cwd.display(),
                crate::exit::os_reason(&e)
            ),
        )
    })?;
    if !canonical.is_dir() {
        return Err(error(
            ErrorCode::INVALID_PARAMS,
            format!("cwd {} is not a directory", cwd.display()),
        ));
    }
    Ok(canonical)
}

/// The client's MCP servers as cox config entries (checked like `[mcp_servers]` in config.toml).
pub(super) fn mcp_servers(
    servers: &[McpServer],
) -> Result<BTreeMap<String, cox_core::config::McpServerConfig>, AcpError> {
    let mut out = BTreeMap::new();
    for server in servers {
        let (name, config) = match server {
            McpServer::Stdio(stdio) => (
                stdio.name.clone(),
                cox_core::config::McpServerConfig {
                    command: Some(stdio.command.display().to_string()),
                    args: stdio.args.clone(),
                    env: stdio
                        .env
                        .iter()
                        .map(|v| (v.name.clone(), v.value.clone()))
                        .collect(),
                    ..Default::default()
                },
            ),
            McpServer::Http(http) => (
                http.name.clone(),
                cox_core::config::McpServerConfig {
                    url: Some(http.url.clone()),
                    http_headers: headers(&http.headers),
                    ..Default::default()
                },
            ),
            McpServer::Sse(sse) => (
                sse.name.clone(),
                cox_core::config::McpServerConfig {
                    url: Some(sse.url.clone()),
                    transport: Some("sse".into()),
                    http_headers: headers(&sse.headers),
                    ..Default::default()
                },
            ),
            _ => {
                return Err(error(
                    ErrorCode::INVALID_PARAMS,
                    "cox starts stdio, http and sse MCP servers; this kind it does not know",
                ));
            }
        };
        if out.insert(name.clone(), config).is_some() {
            return Err(error(
                ErrorCode::INVALID_PARAMS,
                format!("two MCP servers are named `{name}`; give each its own name"),
            ));
        }
    }
    // Checked now, so a bad entry fails session/new with its name.
    cox_core::config::mcp_servers(&out).map_err(failure)?;
    Ok(out)
}

fn headers(headers: &[HttpHeader]) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect()
}

/// The prompt's text: text blocks as they are, a linked file as an `@path` attachment, an
/// embedded resource's text in a fenced block under its URI.
pub(super) fn prompt_text(blocks: &[ContentBlock], cwd: &Path) -> Result<String, AcpError> {
    let mut text = String::new();
    for block in blocks {
        match block {
            ContentBlock::Text(t) => text.push_str(&t.text),
            ContentBlock::ResourceLink(link) => {
                let path = link.uri.strip_prefix("file://").unwrap_or(&link.uri);
                text.push_str(&format!(" @{path} "));
            }
            ContentBlock::Resource(resource) => match &resource.resource {
                EmbeddedResourceResource::TextResourceContents(contents) => {
                    text.push_str(&format!(
                        "\n\n{}:\n```\n{}\n```\n",
                        contents.uri, contents.text
                    ));
                }
                _ => {
                    return Err(error(
                        ErrorCode::INVALID_PARAMS,
                        "cox takes text resources; a binary resource it cannot read",
                    ));
                }
            },
            _ => {
                return Err(error(
                    ErrorCode::INVALID_PARAMS,
                    "cox takes text, resource links and text resources (its prompt capabilities say so)",
                ));
            }
        }
    }
    if text.trim().is_empty() {
        return Err(error(ErrorCode::INVALID_PARAMS, "the prompt is empty"));
    }
    cox_core::prompt::expand_attachments(&text, cwd).map_err(failure)
}

/// A recorded conversation as the updates that would have shown it.
pub(super) fn replay(
    cwd: &Path,
    history: &[Item],
    plan: Option<&[cox_protocol::PlanStep]>,
) -> Vec<SessionUpdate> {
    let mut out = Vec::new();
    for item in history {
        match item {
            Item::User { text } => out.push(SessionUpdate::UserMessageChunk(ContentChunk::new(
                ContentBlock::from(text.as_str()),
            ))),
            Item::Assistant { text } | Item::Commentary { text } => {
                out.push(SessionUpdate::AgentMessageChunk(ContentChunk::new(
                    ContentBlock::from(text.as_str()),
                )))
            }
            Item::ToolCall(call) => {
                let call: ToolCall = super::updates::tool_call(
                    cwd,
                    &call.call_id.0,
                    &call.name,
                    &call.arguments,
                    None,
                    &[],
                );
                out.push(SessionUpdate::ToolCall(call));
            }
            Item::ToolResult {
                call_id,
                ok,
                output,
                ..
            } => out.push(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                call_id.0.clone(),
                ToolCallUpdateFields::new()
                    .status(if *ok {
                        ToolCallStatus::Completed
                    } else {
                        ToolCallStatus::Failed
                    })
                    .content(vec![text_content(output)]),
            ))),
            Item::Reasoning { .. } => {}
        }
    }
    if let Some(steps) = plan {
        out.push(SessionUpdate::Plan(super::updates::plan(steps)));
    }
    out
}
