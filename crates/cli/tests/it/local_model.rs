//! The `local` provider from the command line. With the `local` feature: a real GGUF model
//! (SmolLM2-135M-Instruct, `scripts/fetch-test-model`; `COX_TEST_GGUF` names another) runs a whole
//! `cox exec`, and bad model files get clear errors. Without it: `--provider local` says how to
//! build it.

use crate::harness::{Env, expect_failure, run};

#[test]
fn model_path_with_another_provider_is_refused() {
    let env = Env::new();
    let output = run(env.cox().args([
        "exec",
        "--provider",
        "ollama",
        "-m",
        "qwen",
        "--model-path",
        "m.gguf",
        "hi",
    ]));
    expect_failure(
        &output,
        2,
        "--model-path runs a GGUF file with the local provider, but the provider is `ollama`",
    );
    let output = run(env.cox().args([
        "exec",
        "--provider",
        "ollama",
        "-m",
        "qwen",
        "-c",
        "providers.ollama.temperature=0.5",
        "hi",
    ]));
    expect_failure(
        &output,
        2,
        "[providers.ollama] sets temperature, which only the local provider uses",
    );
}

#[cfg(not(feature = "local"))]
#[test]
fn without_the_feature_local_says_how_to_build_it() {
    let env = Env::new();
    for args in [
        vec!["exec", "--provider", "local", "hi"],
        vec!["exec", "--model-path", "model.gguf", "hi"],
    ] {
        let output = run(env.cox().args(&args));
        expect_failure(&output, 2, "built without the `local` provider");
        expect_failure(&output, 2, "--features local");
    }
}

#[cfg(feature = "local")]
mod with_the_feature {
    use std::path::PathBuf;

    use cox_protocol::{Event, EventEnvelope, SessionStatus};
    use serde_json::Value;

    use super::*;
    use crate::harness::stdout;

    fn model_path() -> PathBuf {
        cox_testkit::test_model()
    }

    /// The whole pipeline with a real model: template, grammar, tool run, second turn, text about
    /// the result, an ending. It asserts the structure of the run, not what a 135M model
    /// concludes. The prompt is the same on every run — a fixed working directory and date
    /// (`SOURCE_DATE_EPOCH`) — so greedy decoding takes the same path on one machine; but not
    /// across CPUs: llama.cpp is built for the CPU's SIMD extensions, and on 2026-12-03 the same
    /// prompt and build that had answered on an earlier machine of this kind echoed
    /// `<tool_response>` to the output limit turn after turn on this one (also with the code of
    /// the commit that had passed). So the ending may be an answer, or that ramble to the turn
    /// limit; the pipeline is what must hold.
    #[test]
    fn exec_runs_a_real_model_end_to_end() {
        let env = Env::new();
        let repo = std::path::Path::new("/tmp/cox-local-model-e2e/repo");
        let _ = fs_err::remove_dir_all(repo.parent().unwrap());
        fs_err::create_dir_all(repo.join("src")).unwrap();
        fs_err::write(repo.join("README.md"), "# Demo\nA tiny repository.\n").unwrap();
        fs_err::write(
            repo.join("src/main.rs"),
            "fn main() {\n    println!(\"hi\");\n}\n",
        )
        .unwrap();
        let output = run(env
            .cox()
            .current_dir(repo)
            .env("SOURCE_DATE_EPOCH", "1796256000") // 2026-12-03
            .arg("exec")
            .arg("--json")
            .arg("--model-path")
            .arg(model_path())
            .args([
                "--max-turns",
                "6",
                "-c",
                "providers.local.tool_choice=\"required-first\"",
                "-c",
                "max_output_tokens=256",
                "List the files in this repository, then say in one sentence what it is.",
            ]));
        let text = stdout(&output);
        // 0 with an answer; 1 when the model never stopped rambling (checked below).
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{text}\n{}",
            crate::harness::stderr(&output)
        );

        let events: Vec<EventEnvelope> = text
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a well-formed event ({e}): {line}"))
            })
            .collect();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "seq counts up from 1"
        );
        match &events[0].event {
            Event::SessionStarted {
                provider, model, ..
            } => {
                assert_eq!(provider, "local");
                assert_eq!(model, "SmolLM2-135M-Instruct.Q4_1");
            }
            other => panic!("first event: {other:?}"),
        }
        let specs = cox_tools::ToolRegistry::standard().specs();
        let mut calls = Vec::new();
        let mut results = Vec::new();
        for envelope in &events {
            match &envelope.event {
                Event::ToolCall {
                    call_id,
                    name,
                    arguments,
                    ..
                } => {
                    let spec = specs
                        .iter()
                        .find(|s| &s.name == name)
                        .unwrap_or_else(|| panic!("the model called an unoffered tool {name}"));
                    let value: Value = serde_json::from_str(arguments).unwrap_or_else(|e| {
                        panic!("{name} arguments are not JSON ({e}): {arguments}")
                    });
                    cox_testkit::schema::validate(&spec.parameters, &value).unwrap_or_else(|why| {
                        panic!("{name} call does not match its schema: {why}")
                    });
                    calls.push(call_id.clone());
                }
                Event::ToolResult { call_id, .. } => results.push(call_id.clone()),
                // Only the turn limit, and only after the model rambled to the output limit.
                Event::Error {
                    kind: cox_protocol::ErrorKind::MaxTurns,
                    ..
                } => {}
                Event::Error { .. } => panic!("error event: {envelope:?}"),
                _ => {}
            }
        }
        assert!(
            !calls.is_empty(),
            "required-first makes the first response a tool call"
        );
        assert_eq!(calls, results, "every call got its result");
        // The model read the tool's result and wrote about it: text streamed after a result.
        let first_result = events
            .iter()
            .position(|e| matches!(e.event, Event::ToolResult { .. }))
            .unwrap();
        assert!(
            events[first_result..].iter().any(
                |e| matches!(&e.event, Event::AgentMessageDelta { text } if !text.trim().is_empty())
            ),
            "no text after the tool result: {text}"
        );
        // Which ending a 135M model reaches under greedy decoding depends on the CPU's SIMD
        // kernels (the same prompt ended well on one machine of this kind and rambled on
        // another): an answer, or text cut at the output limit turn after turn until the turn
        // limit. Both are the pipeline working; anything else is not.
        let truncated = events
            .iter()
            .any(|e| matches!(e.event, Event::Truncated { .. }));
        match &events.last().unwrap().event {
            Event::SessionCompleted { status, answer, .. } => match status {
                SessionStatus::Completed => {
                    let answer = answer.as_deref().unwrap_or_default();
                    assert!(!answer.trim().is_empty(), "the final answer is empty");
                }
                SessionStatus::Failed => assert!(
                    truncated
                        && events.iter().any(|e| matches!(
                            e.event,
                            Event::Error {
                                kind: cox_protocol::ErrorKind::MaxTurns,
                                ..
                            }
                        )),
                    "failed, but not by rambling to the turn limit: {text}"
                ),
                other => panic!("ended {other:?}: {text}"),
            },
            other => panic!("last event: {other:?}"),
        }
    }

    #[test]
    fn bad_model_files_get_clear_errors() {
        let env = Env::new();
        let dir = env.repo.join("models");
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(dir.join("notes.gguf"), "just some text").unwrap();
        let mut damaged = b"GGUF\x03\0\0\0".to_vec();
        damaged.extend(std::iter::repeat_n(0x5au8, 4096));
        fs_err::write(dir.join("damaged.gguf"), damaged).unwrap();
        // Sparse: a header and a length beyond the machine's memory, without using the disk.
        let huge = fs_err::File::create(dir.join("huge.gguf")).unwrap();
        std::io::Write::write_all(&mut &huge, b"GGUF\x03\0\0\0").unwrap();
        huge.set_len(4 << 40).unwrap();
        for (file, needle) in [
            (
                "missing.gguf",
                "model file models/missing.gguf does not exist",
            ),
            (
                "notes.gguf",
                "models/notes.gguf is not a GGUF model (it starts with \"just\"",
            ),
            (
                "damaged.gguf",
                "llama.cpp could not load models/damaged.gguf",
            ),
            ("huge.gguf", "is 4096.0 GiB but only"),
            ("", "cannot read model file models/: it is a directory"),
        ] {
            let path = format!("models/{file}");
            let output = run(env.cox().args(["exec", "--model-path", &path, "hi"]));
            expect_failure(&output, 2, needle);
            assert!(stdout(&output).is_empty());
        }
        let output = run(env.cox().args(["exec", "--provider", "local", "hi"]));
        expect_failure(
            &output,
            2,
            "the local provider needs a model file: pass --model-path",
        );
        // Nothing was started: no session was journaled for a run that could not begin.
        assert!(!env.home.join("sessions").exists());
    }
}
