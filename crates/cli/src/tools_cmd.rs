//! `cox tools`: the tools offered to the model, with the size of each schema. Tool schemas are sent
//! with every request, so their size is a cost paid on every turn.

use std::process::ExitCode;

use crate::exit::Failure;

/// Bytes per token assumed for the estimate (BENCHMARKS.md has the exact o200k_base count).
const BYTES_PER_TOKEN: usize = 4;

pub fn run(json: bool) -> Result<ExitCode, Failure> {
    let specs = cox_core::tool_specs();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&specs).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut total = 0;
    println!("{:<12} {:>6}  description", "tool", "bytes");
    for spec in &specs {
        let bytes = serde_json::to_string(spec).map(|s| s.len()).unwrap_or(0);
        total += bytes;
        let first = spec.description.lines().next().unwrap_or_default();
        println!("{:<12} {bytes:>6}  {first}", spec.name);
    }
    println!(
        "{:<12} {total:>6}  ≈{} tokens per request (at {BYTES_PER_TOKEN} bytes a token)",
        "total",
        total / BYTES_PER_TOKEN
    );
    Ok(ExitCode::SUCCESS)
}
