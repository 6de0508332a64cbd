//! `cox-bench context [--cox PATH] [--runs N]`: the cost of a large context, and how much of each
//! request a provider could serve from its prompt cache.
//!
//! - Request assembly for a synthetic session holding about 400k tokens of history (counted with
//!   o200k_base): cloning the history into a request and rendering the Responses body as JSON text,
//!   as the engine does every turn. Peak RSS of this process, which holds that session.
//! - Over a 20-turn scripted session run by the real binary: for each request, the share of its bytes
//!   that repeat the previous request's beginning byte for byte (what a prefix cache can reuse).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::bail;
use cox_model::ModelRequest;
use cox_protocol::{CallId, Item, SessionId, ToolCall};
use cox_testkit::{MockServer, Script, Turn};
use nix::sys::resource::{UsageWho, getrusage};

use crate::{median, ms};

pub fn run(cox: &Path, runs: usize) -> anyhow::Result<()> {
    let history = synthetic_history();
    let texts: Vec<&str> = history
        .iter()
        .filter_map(|item| match item {
            Item::ToolResult { output, .. } => Some(output.as_str()),
            Item::ToolCall(call) => Some(call.arguments.as_str()),
            _ => None,
        })
        .collect();
    let tools = cox_tools::ToolRegistry::standard().specs();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let request = ModelRequest {
            model: "gpt-5.3-codex".into(),
            instructions: "system prompt".into(),
            items: history.clone(),
            tools: tools.clone(),
            session_id: SessionId("bench".into()),
            max_output_tokens: None,
            output_schema: None,
            reasoning: Default::default(),
            service_tier: None,
            verbosity: None,
        };
        let body = cox_model::responses::body(&request).to_string();
        times.push(start.elapsed());
        bytes = body.len();
    }
    // Read before the tokenizer (tens of MiB of its own) is loaded to count the tokens.
    let rss = getrusage(UsageWho::RUSAGE_SELF)?.max_rss();
    let bpe = tiktoken_rs::o200k_base()?;
    let tokens: usize = texts.iter().map(|t| bpe.encode_ordinary(t).len()).sum();
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| assemble one request, history of {tokens} tokens ({} items, {:.1} MB of JSON) | {} |",
        history.len(),
        bytes as f64 / 1e6,
        ms(median(times))
    );
    println!(
        "| peak RSS of the process holding that session | {:.1} MiB |",
        rss as f64 / 1024.0
    );
    let fraction = prefix_fraction(cox)?;
    println!(
        "| 20-turn session: mean share of each request repeating the previous request's prefix | {:.1} % |",
        fraction * 100.0
    );
    Ok(())
}

fn synthetic_history() -> Vec<Item> {
    let mut items = vec![Item::User {
        text: "Refactor the parser.".into(),
    }];
    let line = "    let value = compute(input, &config).map_err(|e| Error::Parse(e))?;\n";
    for n in 0..930 {
        let call_id = CallId(format!("call_{n}"));
        items.push(Item::ToolCall(ToolCall {
            call_id: call_id.clone(),
            name: "read_file".into(),
            arguments: format!(r#"{{"path":"src/module_{n}.rs"}}"#),
        }));
        items.push(Item::ToolResult {
            call_id,
            ok: true,
            output: line.repeat(20),
            images: Vec::new(),
        });
    }
    items
}

fn prefix_fraction(cox: &Path) -> anyhow::Result<f64> {
    let mut turns: Vec<Turn> = (0..19)
        .map(|n| Turn::call("shell", &format!(r#"{{"command":["echo","step {n}"]}}"#)))
        .collect();
    turns.push(Turn::text(&["Done."]));
    let server = MockServer::start(Script { turns })?;
    let repo = tempfile::tempdir()?;
    let home = tempfile::tempdir()?;
    let status = Command::new(cox)
        .current_dir(repo.path())
        .env("COX_HOME", home.path())
        .env("OPENAI_API_KEY", "sk-bench-000000000000")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .args(["exec", "twenty turns"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("cox failed: {status}");
    }
    let bodies: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    if bodies.len() != 20 {
        bail!("expected 20 requests, saw {}", bodies.len());
    }
    let shares: Vec<f64> = bodies
        .windows(2)
        .map(|pair| {
            let common = pair[0]
                .bytes()
                .zip(pair[1].bytes())
                .take_while(|(a, b)| a == b)
                .count();
            common as f64 / pair[1].len() as f64
        })
        .collect();
    Ok(shares.iter().sum::<f64>() / shares.len() as f64)
}
