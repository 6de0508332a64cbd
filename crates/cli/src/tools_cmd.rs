//! `cox tools`: the tools offered to the model, with the size of each schema. Tool schemas are sent
//! with every request, so their size is a cost paid on every turn. The MCP servers' tools are shown
//! as the last session that started each server listed them (`cox tools` starts none), with
//! whether they pass `mcp_tool_schema_budget` and would be deferred.

use std::process::ExitCode;

use cox_protocol::ToolSpec;

use crate::args::Shared;
use crate::exit::Failure;

/// Bytes per token assumed for the estimate (BENCHMARKS.md has the exact o200k_base count).
const BYTES_PER_TOKEN: usize = 4;

pub fn run(shared: &Shared) -> Result<ExitCode, Failure> {
    let specs = cox_core::tool_specs();
    let home = cox_core::config::cox_home()?;
    let config = cox_core::Config::load(&home, &crate::exec::overrides(shared))?;
    let servers = cox_core::mcp::known_tool_specs(&config);
    if shared.json {
        let mut all = specs;
        for (_, known) in &servers {
            all.extend(known.iter().flatten().cloned());
        }
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let size = |spec: &ToolSpec| serde_json::to_string(spec).map(|s| s.len()).unwrap_or(0);
    let mut total = 0;
    println!("{:<12} {:>6}  description", "tool", "bytes");
    for spec in &specs {
        let bytes = size(spec);
        total += bytes;
        let first = spec.description.lines().next().unwrap_or_default();
        println!("{:<12} {bytes:>6}  {first}", spec.name);
    }
    let mut mcp_total = 0;
    let all: Vec<&ToolSpec> = servers
        .iter()
        .flat_map(|(_, k)| k.iter().flatten())
        .collect();
    let mcp_tokens = cox_core::mcp::schema_tokens(&all);
    for (server, known) in &servers {
        match known {
            None => println!(
                "mcp {server}: tools not listed yet (a session lists them when it starts the server)"
            ),
            Some(known) => {
                for spec in known {
                    let bytes = size(spec);
                    mcp_total += bytes;
                    let first = spec.description.lines().next().unwrap_or_default();
                    println!("{:<12} {bytes:>6}  {first}", spec.name);
                }
            }
        }
    }
    if mcp_tokens > config.mcp_tool_schema_budget {
        println!(
            "MCP tools: ≈{mcp_tokens} tokens, over mcp_tool_schema_budget ({}): deferred behind \
             mcp_search_tools, not sent with every request",
            config.mcp_tool_schema_budget
        );
    } else {
        total += mcp_total;
    }
    println!(
        "{:<12} {total:>6}  ≈{} tokens per request (at {BYTES_PER_TOKEN} bytes a token)",
        "total",
        total / BYTES_PER_TOKEN
    );
    Ok(ExitCode::SUCCESS)
}
