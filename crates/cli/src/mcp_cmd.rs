//! `cox mcp list | get | add | remove`: the `[mcp_servers.NAME]` entries of config.toml (the
//! editing, which keeps the rest of the file as it was, is `cox_core::config::mcp_edit`). Header
//! values are never printed: they hold tokens.

use std::io::Write;
use std::process::ExitCode;

use cox_core::config::McpServerConfig as ServerConfig;
use cox_core::config::{self, cox_home};

use crate::args::{McpAction, Shared};
use crate::exit::Failure;

pub fn run(shared: &Shared, action: McpAction) -> Result<ExitCode, Failure> {
    let home = cox_home()?;
    match action {
        McpAction::List => list(shared, &home),
        McpAction::Get { name } => get(shared, &home, &name),
        McpAction::Add {
            name,
            url,
            transport,
            bearer_token_env_var,
            env,
            trusted,
            command,
        } => {
            let mut server = ServerConfig {
                url,
                transport,
                bearer_token_env_var,
                trusted,
                ..ServerConfig::default()
            };
            if let Some((program, args)) = command.split_first() {
                server.command = Some(program.clone());
                server.args = args.to_vec();
            }
            for pair in env {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(Failure::usage(
                        format!("--env `{pair}` is not KEY=VALUE"),
                        "write it as --env NAME=value",
                    ));
                };
                server.env.insert(key.to_string(), value.to_string());
            }
            if server.command.is_none() && server.url.is_none() {
                return Err(Failure::usage(
                    format!("`cox mcp add {name}` needs the server: a command or a URL"),
                    format!(
                        "cox mcp add {name} -- npx -y @modelcontextprotocol/server-everything, or cox mcp add {name} --url https://…/mcp"
                    ),
                ));
            }
            config::mcp_edit::add(&home, &name, &server)?;
            eprintln!(
                "added MCP server `{name}` ({}) to {}{}",
                server.target(),
                home.join("config.toml").display(),
                if trusted {
                    ""
                } else {
                    "; its tools ask before they run (--trusted, or trusted_tools, to allow them)"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        McpAction::Remove { name } => {
            config::mcp_edit::remove(&home, &name)?;
            eprintln!(
                "removed MCP server `{name}` from {}",
                home.join("config.toml").display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An entry as it may be shown: header values masked.
fn shown(server: &ServerConfig) -> ServerConfig {
    let mut server = server.clone();
    for value in server.http_headers.values_mut() {
        *value = "****".to_string();
    }
    server
}

fn list(shared: &Shared, home: &std::path::Path) -> Result<ExitCode, Failure> {
    let file = config::read_file(home, &shared.config)?;
    let mut out = std::io::stdout().lock();
    if shared.json {
        let entries: Vec<serde_json::Value> = file
            .mcp_servers
            .iter()
            .map(|(name, server)| {
                let mut value = serde_json::to_value(shown(server)).unwrap_or_default();
                value["name"] = serde_json::Value::String(name.clone());
                value
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(entries));
        return Ok(ExitCode::SUCCESS);
    }
    if file.mcp_servers.is_empty() {
        eprintln!(
            "no MCP servers in {} (cox mcp add NAME -- COMMAND, or --url URL)",
            home.join("config.toml").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (name, server) in &file.mcp_servers {
        let transport = server.check(name).map_or_else(
            |e| format!("invalid: {}", e.problem),
            |t| t.name().to_string(),
        );
        let mut flags = Vec::new();
        if !server.enabled() {
            flags.push("disabled");
        }
        if server.trusted {
            flags.push("trusted");
        }
        let _ = writeln!(
            out,
            "{name}\t{transport}\t{}{}",
            server.target(),
            if flags.is_empty() {
                String::new()
            } else {
                format!("\t({})", flags.join(", "))
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn get(shared: &Shared, home: &std::path::Path, name: &str) -> Result<ExitCode, Failure> {
    let file = config::read_file(home, &shared.config)?;
    let Some(server) = file.mcp_servers.get(name) else {
        let known: Vec<&str> = file.mcp_servers.keys().map(String::as_str).collect();
        return Err(Failure::usage(
            format!("there is no MCP server `{name}`"),
            if known.is_empty() {
                "cox mcp add NAME -- COMMAND adds one".to_string()
            } else {
                format!("configured: {}", known.join(", "))
            },
        ));
    };
    let text = if shared.json {
        serde_json::to_string_pretty(&shown(server)).unwrap_or_default()
    } else {
        format!(
            "[mcp_servers.{name}]\n{}",
            toml::to_string(&shown(server)).unwrap_or_default()
        )
    };
    let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
    Ok(ExitCode::SUCCESS)
}
