//! `cox-bench local --model FILE.gguf --python PATH [--runs N]`: the `local` provider against
//! llama-cpp-python's OpenAI-compatible server serving the same GGUF on 127.0.0.1, reached through
//! cox's own `openai-chat` client. Same prompt, same machine, same thread count, one after the other.
//!
//! Per run and side: time to first token (request → first text delta), decode rate (tokens after
//! the first over the time after the first), and end-to-end rate (all output tokens over request →
//! done). Each run's system message starts with its run number, so neither side can reuse the
//! previous run's prompt cache. Load time: in-process, file checks to a ready context; the server,
//! spawn to its first answer on `/v1/models` (which includes starting Python). Reported as medians
//! and ratios (in-process ÷ server) for BENCHMARKS.md. One more row: a new in-process client whose
//! system message an earlier client saved to disk (`prefix_cache_dir`), as `cox` does under COX_HOME.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cox_model::local::{LocalSettings, open};
use cox_model::{Endpoint, ModelClient, ModelRequest, RetryPolicy, StreamEvent, Wire};
use cox_protocol::{Item, SessionId};
use tokio::sync::mpsc;

use crate::{median, ms};

/// Tokens each run generates at most; the prompt asks for more, so both sides stop here.
const OUTPUT_TOKENS: u32 = 128;

struct Sample {
    first_token: Duration,
    total: Duration,
    output_tokens: u64,
    prompt_tokens: Option<u64>,
    cached_tokens: Option<u64>,
}

impl Sample {
    fn decode_rate(&self) -> f64 {
        (self.output_tokens.saturating_sub(1)) as f64
            / (self.total - self.first_token).as_secs_f64()
    }
    fn end_to_end_rate(&self) -> f64 {
        self.output_tokens as f64 / self.total.as_secs_f64()
    }
}

pub fn run(model: &Path, python: &Path, runs: usize) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    let mut local_loads = Vec::new();
    let mut local = Vec::new();
    for run in 0..runs {
        let started = Instant::now();
        let client = open(&LocalSettings {
            threads: Some(threads),
            ..LocalSettings::new(model)
        })?;
        local_loads.push(started.elapsed());
        local.push(runtime.block_on(sample(&client, run, true))?);
        local.push(runtime.block_on(sample(&client, run + runs, false))?);
    }

    // A new process whose system message (with the tool schemas) was saved by an earlier one.
    let cache = tempfile::tempdir()?;
    let cached_settings = LocalSettings {
        threads: Some(threads),
        prefix_cache_dir: Some(cache.path().to_path_buf()),
        ..LocalSettings::new(model)
    };
    runtime.block_on(sample(&open(&cached_settings)?, 0, true))?;
    let mut from_disk = Vec::new();
    for _ in 0..runs {
        let client = open(&cached_settings)?;
        from_disk.push(runtime.block_on(sample(&client, 0, true))?);
    }

    let mut server_loads = Vec::new();
    let mut server = Vec::new();
    for run in 0..runs {
        let (mut child, base_url, load) = start_server(python, model, threads)?;
        server_loads.push(load);
        let client = cox_model::client(
            Endpoint {
                provider: "llama-cpp-python".into(),
                wire: Wire::Chat,
                base_url,
                api_key: None,
            },
            RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::default()
            },
        )?;
        let result = runtime
            .block_on(sample(client.as_ref(), run, true))
            .and_then(|first| {
                Ok((
                    first,
                    runtime.block_on(sample(client.as_ref(), run + runs, false))?,
                ))
            });
        let _ = child.kill();
        let _ = child.wait();
        let (first, second) = result?;
        server.push(first);
        server.push(second);
    }

    let med = |samples: &[&Sample], f: &dyn Fn(&Sample) -> f64| -> f64 {
        let mut values: Vec<f64> = samples.iter().map(|s| f(s)).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ttft = |samples: &[&Sample]| median(samples.iter().map(|s| s.first_token).collect());
    let prompt_len = |samples: &[&Sample]| {
        samples
            .iter()
            .find_map(|s| s.prompt_tokens)
            .map_or("?".to_string(), |n| n.to_string())
    };

    println!(
        "model {}, {threads} threads, {runs} runs a side, {OUTPUT_TOKENS} output tokens a request\n",
        model
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    println!(
        "| measure | cox `local` (in-process) | llama-cpp-python server via `openai-chat` | ratio |"
    );
    println!("|---|---|---|---|");
    let (load_local, load_server) = (median(local_loads), median(server_loads));
    println!(
        "| load (median) | {} | {} | {:.1}× faster |",
        ms(load_local),
        ms(load_server),
        load_server.as_secs_f64() / load_local.as_secs_f64()
    );
    for (label, long) in [("short prompt", false), ("cox-sized prompt", true)] {
        let (l, s) = (side(&local, long), side(&server, long));
        let (tl, ts) = (ttft(&l), ttft(&s));
        println!(
            "| time to first token, {label} ({} tokens) | {} | {} | {:.2}× |",
            prompt_len(&l),
            ms(tl),
            ms(ts),
            ts.as_secs_f64() / tl.as_secs_f64()
        );
        let (dl, ds) = (med(&l, &Sample::decode_rate), med(&s, &Sample::decode_rate));
        println!(
            "| decode tokens/s, {label} | {dl:.1} | {ds:.1} | {:.2}× |",
            dl / ds
        );
        let (el, es) = (
            med(&l, &Sample::end_to_end_rate),
            med(&s, &Sample::end_to_end_rate),
        );
        println!(
            "| end-to-end tokens/s, {label} | {el:.1} | {es:.1} | {:.2}× |",
            el / es
        );
    }
    let disk: Vec<&Sample> = from_disk.iter().collect();
    println!(
        "| time to first token, cox-sized prompt, new process with the system message saved ({} of {} tokens from disk) | {} | | |",
        disk.iter()
            .find_map(|s| s.cached_tokens)
            .map_or("?".to_string(), |n| n.to_string()),
        prompt_len(&disk),
        ms(ttft(&disk)),
    );
    Ok(())
}

/// The samples of one prompt size: runs alternate cox-sized, short.
fn side(samples: &[Sample], long: bool) -> Vec<&Sample> {
    samples.iter().skip(usize::from(!long)).step_by(2).collect()
}

/// One request: a cox-sized prompt (a system message about as long as cox's, with its tool
/// schemas) or a short one, asking for more text than [`OUTPUT_TOKENS`].
async fn sample(client: &dyn ModelClient, run: usize, long: bool) -> anyhow::Result<Sample> {
    let mut instructions = format!("Session {run}. You are a helpful assistant.");
    if long {
        for spec in cox_tools::ToolRegistry::standard().specs() {
            instructions.push_str(&format!(
                "\n\n## {}\n{}\n{}",
                spec.name, spec.description, spec.parameters
            ));
        }
    }
    let request = ModelRequest {
        model: "bench".into(),
        instructions,
        items: vec![Item::User {
            text: "Write a long story about a lighthouse keeper who finds a message in a bottle."
                .into(),
        }],
        tools: Vec::new(),
        session_id: SessionId(format!("bench-{run}")),
        max_output_tokens: Some(OUTPUT_TOKENS),
        output_schema: None,
        reasoning: Default::default(),
        service_tier: None,
        verbosity: None,
    };
    let (tx, mut rx) = mpsc::channel(1024);
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut first = None;
        let mut deltas = 0u64;
        while let Some(event) = rx.recv().await {
            if let StreamEvent::TextDelta(_) = event {
                first.get_or_insert_with(|| started.elapsed());
                deltas += 1;
            }
        }
        (first, deltas)
    });
    let response = client.stream(&request, tx).await?;
    let total = started.elapsed();
    let (first, deltas) = reader.await?;
    let first_token = first.context("no text came back")?;
    let usage = response.usage;
    Ok(Sample {
        first_token,
        total,
        // Both report usage; deltas (one per token on both sides) are the fallback.
        output_tokens: usage.map_or(deltas, |u| u.output_tokens),
        prompt_tokens: usage.map(|u| u.input_tokens),
        cached_tokens: usage.map(|u| u.cached_input_tokens),
    })
}

/// Starts `python -m llama_cpp.server` on a free port and waits until it answers.
fn start_server(
    python: &Path,
    model: &Path,
    threads: usize,
) -> anyhow::Result<(Child, String, Duration)> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let started = Instant::now();
    let mut child = Command::new(python)
        .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg("--model")
        .arg(model)
        .args(["--n_ctx", "8192", "--n_batch", "512", "--verbose", "false"])
        .args([
            "--n_threads",
            &threads.to_string(),
            "--n_threads_batch",
            &threads.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {} -m llama_cpp.server", python.display()))?;
    let base_url = format!("http://127.0.0.1:{port}/v1");
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait()? {
            bail!("llama_cpp.server exited with {status}; is llama-cpp-python[server] installed?");
        }
        if Command::new("curl")
            .args(["-sf", "-o", "/dev/null", &format!("{base_url}/models")])
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok((child, base_url, started.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    bail!("llama_cpp.server did not answer within 60 s")
}

/// `--model` and `--python` for `cox-bench local`.
pub fn paths(
    model: Option<PathBuf>,
    python: Option<PathBuf>,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let model = model
        .context("cox-bench local needs --model FILE.gguf (scripts/fetch-test-model prints one)")?;
    let python = python.unwrap_or_else(|| PathBuf::from("python3"));
    Ok((model, python))
}
