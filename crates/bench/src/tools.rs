//! `cox-bench tools [--tree DIR] [--runs N]`: the file tools' speed and the size of their schemas.
//!
//! - `grep` (the tool's search, in process) against `rg` (a process) on the same trees, same
//!   pattern, output discarded: a directory given with `--tree` (default: the cargo registry
//!   sources) and a generated tree of 50,000 small files. Ratio = rg time / grep time (≥ 1 means
//!   cox is as fast or faster).
//! - `apply_patch`: 50 hunks on a 5 MB file, including reading and writing it.
//! - The tool schemas as sent to the model, in o200k_base tokens (OpenAI's current tokenizer).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_tools::ToolContext;

use crate::{median, ms};

const PATTERN: &str = r"fn\s+\w+_unchecked\(";

pub fn run(tree: Option<PathBuf>, runs: usize) -> anyhow::Result<()> {
    let tree = match tree {
        Some(tree) => tree,
        None => PathBuf::from(std::env::var("HOME").context("HOME")?).join(".cargo/registry/src"),
    };
    if !tree.is_dir() {
        bail!("{} is not a directory; pass --tree DIR", tree.display());
    }
    println!("| measure | cox | baseline | ratio (baseline / cox) |");
    println!("|---|---|---|---|");
    // The patch first: writing the generated tree leaves the disk busy with write-back for a while.
    let (patch_time, io_floor) = patch_50_hunks(runs)?;
    println!(
        "| apply_patch, 50 hunks on a 5 MB file | {} | read + write + rename of the file {} | {:.2}× |",
        ms(patch_time),
        ms(io_floor),
        io_floor.as_secs_f64() / patch_time.as_secs_f64()
    );
    let (tokens, bytes) = schema_tokens()?;
    println!(
        "| tool schemas (names, descriptions, parameters) | {tokens} tokens ({bytes} bytes of JSON) | | |"
    );
    let generated = tempfile::tempdir()?;
    generate_tree(generated.path(), 50_000)?;

    for (name, dir) in [
        (format!("grep, {}", tree.display()), tree.as_path()),
        ("grep, generated 50,000 files".to_string(), generated.path()),
    ] {
        let (ours, matches) = grep_ours(dir, runs)?;
        let (rg, rg_matches) = grep_rg(dir, runs)?;
        if matches != rg_matches {
            bail!("{name}: cox found {matches} matching lines, rg {rg_matches}");
        }
        println!(
            "| {name} (`{PATTERN}`, {matches} matches) | {} | rg {} | {:.2}× |",
            ms(ours),
            ms(rg),
            rg.as_secs_f64() / ours.as_secs_f64()
        );
    }
    Ok(())
}

fn generate_tree(root: &Path, files: usize) -> anyhow::Result<()> {
    for n in 0..files {
        let dir = root.join(format!("d{:03}/e{:02}", n % 500, n % 37));
        fs_err::create_dir_all(&dir)?;
        let body = if n % 1000 == 0 {
            format!("pub fn get_unchecked(i: usize) -> u8 {{ {n} as u8 }}\n")
        } else {
            format!("// file {n}\npub fn item_{n}() -> usize {{\n    {n}\n}}\n")
        };
        fs_err::write(dir.join(format!("f{n}.rs")), body)?;
    }
    Ok(())
}

fn grep_ours(dir: &Path, runs: usize) -> anyhow::Result<(Duration, usize)> {
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let text = cox_tools::grep::search_text(PATTERN, dir, None, usize::MAX / 2)
            .map_err(anyhow::Error::msg)?;
        times.push(start.elapsed());
        count = if text.starts_with("no matches") {
            0
        } else {
            text.lines().count()
        };
    }
    Ok((median(times), count))
}

fn grep_rg(dir: &Path, runs: usize) -> anyhow::Result<(Duration, usize)> {
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let output = Command::new("rg")
            .args(["--no-heading", "-n", PATTERN])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .context("cannot run rg (apt-get install ripgrep)")?;
        times.push(start.elapsed());
        count = output
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
    }
    Ok((median(times), count))
}

/// The patch's time, and the floor: reading the file and writing it back by temp file and rename.
fn patch_50_hunks(runs: usize) -> anyhow::Result<(Duration, Duration)> {
    let dir = tempfile::tempdir()?;
    let root = fs_err::canonicalize(dir.path())?;
    let lines: Vec<String> = (0..100_000)
        .map(|n| format!("    let value_{n:06} = compute({n}, \"some text here\");"))
        .collect();
    let original = lines.join("\n") + "\n";
    let mut patch = String::from("*** Begin Patch\n*** Update File: big.rs\n");
    for h in 0..50 {
        let at = 1_000 + h * 1_900;
        patch.push_str("@@\n");
        for line in &lines[at - 3..at] {
            patch.push_str(&format!(" {line}\n"));
        }
        patch.push_str(&format!(
            "-{}\n+{}\n",
            lines[at],
            lines[at].replace("compute", "compute_fast")
        ));
        for line in &lines[at + 1..at + 4] {
            patch.push_str(&format!(" {line}\n"));
        }
    }
    patch.push_str("*** End Patch\n");
    let ctx = context(&root);
    let mut times = Vec::new();
    for _ in 0..runs {
        fs_err::write(root.join("big.rs"), &original)?;
        let start = Instant::now();
        let output = cox_tools::apply_patch::run(&patch, &ctx);
        times.push(start.elapsed());
        if !output.ok {
            bail!("patch failed: {}", output.output);
        }
    }
    if original.len() < 5_000_000 {
        bail!("the file is only {} bytes", original.len());
    }
    let mut floor = Vec::new();
    for _ in 0..runs {
        fs_err::write(root.join("big.rs"), &original)?;
        let start = Instant::now();
        let bytes = fs_err::read(root.join("big.rs"))?;
        fs_err::write(root.join(".big.rs.tmp"), &bytes)?;
        fs_err::rename(root.join(".big.rs.tmp"), root.join("big.rs"))?;
        floor.push(start.elapsed());
    }
    Ok((median(times), median(floor)))
}

fn schema_tokens() -> anyhow::Result<(usize, usize)> {
    let specs = cox_tools::ToolRegistry::standard().specs();
    let json = serde_json::to_string(&specs)?;
    let encoder = tiktoken_rs::o200k_base()?;
    Ok((encoder.encode_with_special_tokens(&json).len(), json.len()))
}

/// A tool context for `root`, unsandboxed, with a 16 KiB output budget.
pub(crate) fn context(root: &std::path::Path) -> ToolContext {
    ToolContext {
        cwd: root.to_path_buf(),
        workspace: root.to_path_buf(),
        writable_roots: vec![root.to_path_buf()],
        protected: Vec::new(),
        max_output_bytes: 16 * 1024,
        capture_bytes: 16 * 1024,
        hidden_env: Vec::new(),
        sandbox: None,
        asker: None,
        watch: None,
        terminals: None,
        login_env: None,
        cancel: tokio_util::sync::CancellationToken::new(),
    }
}
