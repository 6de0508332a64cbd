//! `cox-bench cache [--cox PATH] [--codex PATH]`: how much of each request a provider would read
//! from its prompt cache, per wire, over a 20-turn scripted session (19 tool calls with reasoning,
//! then the answer) run by the real binary against the mock model — each request scored by the
//! provider's own caching rule:
//!
//! - OpenAI (Responses, and Chat servers that cache automatically): the longest prefix the prompt
//!   (instructions, tools, then the conversation items in order) shares with an earlier request of
//!   the session, counted in 128-token steps and only from 1,024 tokens on.
//! - Anthropic: only at `cache_control` breakpoints. A breakpoint writes the prefix up to its block;
//!   a request reads the longest written prefix ending at one of its breakpoints or at one of the
//!   20 block boundaries before each (the documented lookback), from 1,024 tokens on. The same
//!   requests with their breakpoints removed (what cox sent before issue 15) are scored as the
//!   baseline in the same run.
//!
//! Tokens are bytes / 4 throughout (the share is a ratio, so the factor only moves the minimums).
//! Also the bytes of the first request — instructions and tool schemas — for cox and, with
//! `--codex`, for the Codex CLI on the same task against the same mock.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use cox_testkit::{MockServer, Recorded, Script, Turn};
use serde_json::Value;

const TURNS: usize = 20;
const MIN_TOKENS: usize = 1024;
const LOOKBACK: usize = 20;

fn tokens(bytes: usize) -> usize {
    bytes / 4
}

fn script() -> Script {
    let mut turns: Vec<Turn> = (0..TURNS - 1)
        .map(|n| Turn {
            reasoning: vec![format!(
                "Step {n}: reading the file again to check a detail."
            )],
            ..Turn::call("read_file", r#"{"path":"README.md"}"#)
        })
        .collect();
    turns.push(Turn::text(&["The README has a title and one sentence."]));
    Script { turns }
}

/// A temp directory holding `repo/` with a README, the task's working directory.
fn demo_repo() -> anyhow::Result<(tempfile::TempDir, std::path::PathBuf)> {
    let work = tempfile::tempdir()?;
    let repo = work.path().join("repo");
    fs_err::create_dir_all(&repo)?;
    fs_err::write(repo.join("README.md"), "# Demo\nA tiny repository.\n")?;
    Ok((work, repo))
}

/// The request bodies of one session on `wire`.
fn session(cox: &Path, wire: &str) -> anyhow::Result<Vec<Recorded>> {
    let server = MockServer::start(script())?;
    let (work, repo) = demo_repo()?;
    let mut command = Command::new(cox);
    command
        .current_dir(&repo)
        .env("COX_HOME", work.path().join("home"))
        .env("HOME", work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match wire {
        "responses" => {
            command
                .env("OPENAI_API_KEY", "sk-bench")
                .env("OPENAI_BASE_URL", format!("{}/v1", server.url()));
        }
        "chat" => {
            command.args([
                "--provider",
                "ollama",
                "-m",
                "qwen3",
                "-c",
                &format!("providers.ollama.base_url={}/v1", server.url()),
            ]);
        }
        _ => {
            command
                .env("ANTHROPIC_API_KEY", "sk-bench")
                .env("ANTHROPIC_BASE_URL", server.url())
                .args(["--provider", "anthropic", "-c", "model_thinking=2048"]);
        }
    }
    let output = command
        .args(["exec", "read the README twenty times"])
        .output()
        .with_context(|| format!("running {}", cox.display()))?;
    if !output.status.success() {
        bail!(
            "cox failed on {wire}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let requests = server.requests();
    if requests.len() != TURNS {
        bail!("{wire}: {} requests, expected {TURNS}", requests.len());
    }
    Ok(requests)
}

/// The prompt as an OpenAI server sees it, in order: instructions, tools, conversation items.
fn openai_prompt(body: &Value) -> String {
    let mut prompt = String::new();
    for key in ["instructions", "tools", "input", "messages"] {
        match &body[key] {
            Value::Array(items) => items.iter().for_each(|i| prompt.push_str(&i.to_string())),
            Value::Null => {}
            other => prompt.push_str(&other.to_string()),
        }
    }
    prompt
}

/// Cached tokens per request by the automatic prefix rule.
fn openai_cached(requests: &[Recorded]) -> Vec<(usize, usize)> {
    let prompts: Vec<String> = requests.iter().map(|r| openai_prompt(&r.body)).collect();
    prompts
        .iter()
        .enumerate()
        .map(|(n, prompt)| {
            let common = prompts[..n]
                .iter()
                .map(|earlier| {
                    earlier
                        .bytes()
                        .zip(prompt.bytes())
                        .take_while(|(a, b)| a == b)
                        .count()
                })
                .max()
                .unwrap_or(0);
            let cached = tokens(common);
            let cached = if cached >= MIN_TOKENS {
                cached / 128 * 128
            } else {
                0
            };
            (cached, tokens(prompt.len()))
        })
        .collect()
}

/// An Anthropic request as cache blocks in cache order (tools, system, messages), each block's
/// canonical text (without its `cache_control`) and whether it is a breakpoint.
fn anthropic_blocks(body: &Value, breakpoints: bool) -> Vec<(String, bool)> {
    let mut blocks = Vec::new();
    let mut push = |block: &Value, role: Option<&str>| {
        let mut block = block.clone();
        let marked = block
            .as_object_mut()
            .and_then(|b| b.remove("cache_control"))
            .is_some();
        let text = match role {
            Some(role) => format!("{role}:{block}"),
            None => block.to_string(),
        };
        blocks.push((text, marked && breakpoints));
    };
    for tool in body["tools"].as_array().into_iter().flatten() {
        push(tool, None);
    }
    match &body["system"] {
        Value::Array(system) => system.iter().for_each(|b| push(b, None)),
        Value::String(text) => push(&Value::String(text.clone()), None),
        _ => {}
    }
    for message in body["messages"].as_array().into_iter().flatten() {
        let role = message["role"].as_str().unwrap_or_default();
        for block in message["content"].as_array().into_iter().flatten() {
            push(block, Some(role));
        }
    }
    blocks
}

/// Cached tokens per request by the breakpoint rule.
fn anthropic_cached(requests: &[Recorded], breakpoints: bool) -> Vec<(usize, usize)> {
    let mut written: HashSet<String> = HashSet::new();
    requests
        .iter()
        .map(|request| {
            let blocks = anthropic_blocks(&request.body, breakpoints);
            let mut prefixes = Vec::with_capacity(blocks.len());
            let mut text = String::new();
            for (block, _) in &blocks {
                text.push_str(block);
                text.push('\u{1e}');
                prefixes.push(text.clone());
            }
            let total = tokens(text.len());
            let marks: Vec<usize> = (0..blocks.len()).filter(|&i| blocks[i].1).collect();
            let mut cached = 0;
            for &mark in &marks {
                for at in (mark.saturating_sub(LOOKBACK)..=mark).rev() {
                    if written.contains(&prefixes[at]) {
                        cached = cached.max(tokens(prefixes[at].len()));
                        break;
                    }
                }
            }
            for &mark in &marks {
                if tokens(prefixes[mark].len()) >= MIN_TOKENS {
                    written.insert(prefixes[mark].clone());
                }
            }
            let cached = if cached >= MIN_TOKENS { cached } else { 0 };
            (cached, total)
        })
        .collect()
}

/// The share cached from the third request on, and its lowest value.
fn shares(per_request: &[(usize, usize)]) -> (f64, f64) {
    let from_third = &per_request[2..];
    let cached: usize = from_third.iter().map(|(c, _)| c).sum();
    let total: usize = from_third.iter().map(|(_, t)| t).sum();
    let lowest = from_third
        .iter()
        .map(|(c, t)| *c as f64 / (*t).max(1) as f64)
        .fold(f64::INFINITY, f64::min);
    (cached as f64 / total.max(1) as f64, lowest)
}

/// The bytes of instructions and tool schemas in a first request body.
fn fixed_bytes(body: &Value) -> usize {
    let mut bytes = body["tools"].to_string().len();
    bytes += match &body["instructions"] {
        Value::String(s) => s.len(),
        _ => body["system"].to_string().len(),
    };
    bytes
}

/// The Codex CLI's first request on the same task, against a Responses mock.
fn codex_first_request(codex: &Path) -> anyhow::Result<Value> {
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["The README has a title and one sentence."])],
    })?;
    let (work, repo) = demo_repo()?;
    fs_err::create_dir_all(work.path().join("codex-home"))?;
    let provider = format!(
        "model_providers.mock={{name=\"mock\", base_url=\"{}/v1\", wire_api=\"responses\", env_key=\"OPENAI_API_KEY\"}}",
        server.url()
    );
    let output = Command::new(codex)
        .current_dir(&repo)
        .env("CODEX_HOME", work.path().join("codex-home"))
        .env("HOME", work.path())
        .env("OPENAI_API_KEY", "sk-bench")
        .args([
            "exec",
            "--skip-git-repo-check",
            "-c",
            "model_provider=mock",
            "-c",
            &provider,
            "-m",
            "gpt-5.3-codex",
            "read the README twenty times",
        ])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", codex.display()))?;
    let requests = server.requests();
    let Some(first) = requests
        .into_iter()
        .find(|r| r.path.ends_with("/responses"))
    else {
        bail!(
            "codex sent no request: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    Ok(first.body)
}

pub fn run(cox: &Path, codex: Option<&Path>) -> anyhow::Result<()> {
    println!(
        "| wire | rule | cached share, requests 3-{TURNS} | lowest single request | baseline in the same run |"
    );
    println!("|---|---|---|---|---|");
    let mut first = None;
    for wire in ["responses", "chat", "anthropic"] {
        let requests = session(cox, wire)?;
        if wire == "responses" {
            first = Some(requests[0].body.clone());
        }
        let (rule, (share, lowest), baseline) = match wire {
            "anthropic" => (
                "breakpoints (cache_control)",
                shares(&anthropic_cached(&requests, true)),
                format!(
                    "{:.1}% with the breakpoints removed (cox before issue 15)",
                    shares(&anthropic_cached(&requests, false)).0 * 100.0
                ),
            ),
            _ => (
                "automatic prefix",
                shares(&openai_cached(&requests)),
                "—".to_string(),
            ),
        };
        println!(
            "| {wire} | {rule} | {:.1}% | {:.1}% | {baseline} |",
            share * 100.0,
            lowest * 100.0
        );
    }
    if let Some(body) = first {
        println!();
        println!("| first request (Responses) | whole body | instructions + tool schemas |");
        println!("|---|---|---|");
        println!(
            "| cox | {:.1} KB | {:.1} KB |",
            body.to_string().len() as f64 / 1000.0,
            fixed_bytes(&body) as f64 / 1000.0
        );
        if let Some(codex) = codex {
            let codex_body = codex_first_request(codex)?;
            println!(
                "| Codex CLI ({}) | {:.1} KB | {:.1} KB |",
                codex.display(),
                codex_body.to_string().len() as f64 / 1000.0,
                fixed_bytes(&codex_body) as f64 / 1000.0
            );
        }
    }
    Ok(())
}
