//! Limits that hold: streams end, results fit their budget, requests fit the window.

use cox_testkit::{Fault, MockServer, Script, Turn};

use super::*;

fn events(output: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Issue 14: keep-alive comments reset the idle timer forever. A stream that sends only
/// comments after its text is abandoned after `stream_idle_timeout_ms` and retried; a response
/// that never completes ends at `stream_total_timeout_ms`, also retried.
#[test]
fn streams_have_an_idle_timer_that_counts_events_and_a_total_deadline_issue_14() {
    let env = Env::new();
    let alive = Turn::text(&["Still "]).with_fault(Fault::KeepAlive {
        ms: 20_000,
        every_ms: 50,
    });
    let endless = Turn {
        delay_ms: 100,
        ..Turn::text(&["tick "; 300])
    };
    let server = MockServer::start(Script {
        turns: vec![alive, endless, Turn::text(&["Recovered."])],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args(["-c", "stream_total_timeout_ms=2000"])
        .args(["exec", "--json", "hi"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let reasons: Vec<String> = events(&output)
        .iter()
        .filter(|e| e["type"] == "retrying")
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("no event for 0.4s"), "{reasons:?}");
    assert!(
        reasons[1].contains("stream_total_timeout_ms"),
        "{reasons:?}"
    );
    let completed = events(&output).pop().unwrap();
    assert_eq!(completed["answer"], "Recovered.");
}

/// Issue 14: `read_file` returned 214,071 characters against a 16,000-byte budget, and a 200 MB
/// one-line file cost 199 MB of memory. A page now fits the budget and says where to go on; a
/// huge line is read in bounded memory (the peak RSS of cox, from the kernel's accounting).
#[test]
fn read_file_pages_within_the_budget_in_bounded_memory_issue_14() {
    let env = Env::new();
    let wide: String = (0..2000)
        .map(|n| format!("{n:04} {}\n", "x".repeat(100)))
        .collect();
    fs_err::write(env.repo.join("wide.txt"), &wide).unwrap();
    let huge = vec![b'z'; 150 * 1024 * 1024];
    fs_err::write(env.repo.join("huge.txt"), &huge).unwrap();
    drop(huge);
    let server = MockServer::start(Script {
        turns: vec![
            Turn::call("read_file", r#"{"path":"wide.txt"}"#),
            Turn::call("read_file", r#"{"path":"huge.txt"}"#),
            Turn::text(&["Read."]),
        ],
    })
    .unwrap();
    // cox's high-water mark of resident memory (VmHWM, monotonic), read while it runs: the
    // final answer comes after both reads, so the last reading covers them.
    let child = env
        .cox_with(&server)
        .args(["exec", "--json", "read them"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let reader = std::thread::spawn(move || child.wait_with_output().unwrap());
    let mut peak_kib = 0u64;
    while !reader.is_finished() {
        if let Ok(status) = fs_err::read_to_string(&status_file)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib = line.split_whitespace().nth(1).and_then(|n| n.parse().ok());
            peak_kib = peak_kib.max(kib.unwrap_or(0));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let output = reader.join().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let results: Vec<String> = events(&output)
        .iter()
        .filter(|e| e["type"] == "tool_result")
        .map(|e| e["output"].as_str().unwrap().to_string())
        .collect();
    let budget = 4000 * 4;
    assert!(results[0].len() <= budget, "{} bytes", results[0].len());
    assert!(
        results[0].contains("call read_file with offset="),
        "a note to go on"
    );
    assert!(results[1].len() <= budget, "{} bytes", results[1].len());
    assert!(results[1].contains("[line cut:"), "{}", &results[1][..100]);
    // 150 MB on one line, and cox stayed far below it (it is ~15 MB when idle).
    assert!(peak_kib > 0, "cox's memory was read while it ran");
    assert!(
        peak_kib < 80 * 1024,
        "peak RSS {peak_kib} KiB reading a 150 MB line"
    );
}

/// The tokens of a request as cox counts them (instructions, tool schemas, every text of the
/// conversation), with OpenAI's tokenizer: the real tokenizer of the default model.
fn request_tokens(body: &serde_json::Value) -> u64 {
    fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut texts = vec![
        body["instructions"].as_str().unwrap().to_string(),
        body["tools"].to_string(),
    ];
    strings(&body["input"], &mut texts);
    cox_core::context::count("gpt-5.3-codex", &texts)
}

/// Issue 14: with an 8,000-token window and a few large command outputs, compaction reported
/// 8,689 tokens and the next requests were ~10k tokens. Now every request plus
/// `max_output_tokens` fits the window: recent outputs are shortened when they must be.
#[test]
fn after_compaction_every_request_fits_the_window_issue_14() {
    let env = Env::new();
    let big = |n: u32| shell(&format!("seq {n} {}", n + 3000));
    let server = MockServer::start(Script {
        turns: vec![
            big(1).with_call(
                "shell",
                &serde_json::json!({"command": ["sh", "-c", "seq 5000 8000"]}).to_string(),
                1,
            ),
            big(10_000),
            big(20_000),
            Turn::text(&["Summary: counted a lot."]),
            Turn::text(&["Done."]),
            Turn::text(&["Done again."]),
        ],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args([
            "-c",
            "model_context_window=8000",
            "-c",
            "max_output_tokens=1000",
        ])
        .args(["exec", "--json", "count a lot"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let compactions: Vec<serde_json::Value> = events(&output)
        .into_iter()
        .filter(|e| e["type"] == "compacted")
        .collect();
    assert!(!compactions.is_empty());
    for compacted in &compactions {
        assert!(
            compacted["tokens_after"].as_u64().unwrap() + 1000 <= 8000,
            "{compacted}"
        );
    }
    assert!(
        compactions
            .iter()
            .any(|c| c["outputs_shortened"].as_u64() > Some(0)),
        "{compactions:?}"
    );
    for (n, request) in server.requests().iter().enumerate() {
        let tokens = request_tokens(&request.body);
        assert!(tokens + 1000 <= 8000, "request {n}: {tokens} tokens");
    }
}

/// When even the pinned block does not fit beside the answer, the task stops with a clear
/// error before anything is sent.
#[test]
fn a_pinned_block_too_large_for_the_window_is_an_error_before_sending_issue_14() {
    let env = Env::new();
    let agents: String = (0..3000)
        .map(|n| format!("Rule {n}: keep it tidy.\n"))
        .collect();
    fs_err::write(env.repo.join("AGENTS.md"), &agents[..30_000]).unwrap();
    let server = MockServer::start(Script {
        turns: vec![Turn::text(&["never"])],
    })
    .unwrap();
    let output = run(env
        .cox_with(&server)
        .args([
            "-c",
            "model_context_window=4000",
            "-c",
            "max_output_tokens=500",
        ])
        .args(["exec", "hi"]));
    expect_failure(&output, 1, "pinned block");
    assert!(
        stderr(&output).contains("nothing was sent"),
        "{}",
        stderr(&output)
    );
    assert!(server.requests().is_empty());
}
