//! Tests against a real GGUF model (SmolLM2-135M-Instruct, fetched by `scripts/fetch-test-model`;
//! `COX_TEST_GGUF` names another). They assert structure, never the model's wisdom: a 135M model
//! says little of use, but everything it emits under a grammar must parse.

use std::path::PathBuf;

use cox_protocol::{Item, SessionId, ToolSpec};
use cox_testkit::schema::validate;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{LocalClient, LocalError, LocalSettings, ToolChoice, open};
use crate::{ModelClient, ModelError, ModelRequest, ModelResponse, StreamEvent};

/// Complete generations per tool schema in the grammar tests.
const GENERATIONS: u32 = 20;

fn model_path() -> PathBuf {
    cox_testkit::test_model()
}

fn client(settings: LocalSettings) -> LocalClient {
    open(&settings).unwrap_or_else(|e| panic!("{e}"))
}

fn request(tools: Vec<ToolSpec>, user: &str) -> ModelRequest {
    ModelRequest {
        model: "smollm2".into(),
        instructions: "You are a coding agent working in a small repository.".into(),
        items: vec![Item::User { text: user.into() }],
        tools,
        session_id: SessionId("test".into()),
        max_output_tokens: Some(1024),
        output_schema: None,
        reasoning: Default::default(),
        service_tier: None,
        verbosity: None,
    }
}

async fn ask(
    client: &LocalClient,
    request: &ModelRequest,
) -> (Result<ModelResponse, ModelError>, String) {
    let (tx, mut rx) = mpsc::channel(4096);
    let result = client.stream(request, tx).await;
    let mut streamed = String::new();
    while let Ok(event) = rx.try_recv() {
        if let StreamEvent::TextDelta(text) = event {
            streamed.push_str(&text);
        }
    }
    (result, streamed)
}

/// Whether `err` is a constrained output stopped by the output limit: the engine's refusal to
/// return half a call, not a parse failure.
fn cut_off(err: &ModelError) -> bool {
    matches!(err, ModelError::Local(message) if message.contains("was cut off by the output limit"))
}

/// Asks until a response is not cut off by the output limit. Cut-offs (the engine refusing
/// half-made constrained output) are counted in `cut`; one more than `max_cut` fails the test, as
/// does any other error.
async fn uncut(
    client: &LocalClient,
    request: &ModelRequest,
    cut: &mut u32,
    max_cut: u32,
    what: &str,
) -> (ModelResponse, String) {
    loop {
        let (result, streamed) = ask(client, request).await;
        match result {
            Ok(response) => return (response, streamed),
            Err(err) if cut_off(&err) && *cut < max_cut => *cut += 1,
            Err(err) => panic!("{what} and {cut} cut off: {err}"),
        }
    }
}

/// Samples until `GENERATIONS` calls of `tool` are complete; every one must parse and match the
/// tool's schema. A 135M model at temperature 0.8 sometimes rambles inside a string until the
/// output limit: the engine then returns an error instead of the half-made call. Those are counted,
/// and more than `GENERATIONS / 2` of them fails the test as well.
async fn forced_calls_match(tool: &str, task: &str) {
    forced_calls_vary(tool, task, GENERATIONS as usize / 4 + 1).await;
}

/// [`forced_calls_match`] with the least number of distinct calls the samples must show: a tool
/// whose schema leaves little to choose (`list_sessions` takes nothing, `kill_session` one number)
/// cannot show the variety a command line or a patch does.
async fn forced_calls_vary(tool: &str, task: &str, min_distinct: usize) {
    let spec = cox_tools::ToolRegistry::standard()
        .specs()
        .into_iter()
        .find(|spec| spec.name == tool)
        .unwrap_or_else(|| panic!("no tool named {tool}"));
    let client = client(LocalSettings {
        temperature: 0.8,
        seed: 7,
        tool_choice: ToolChoice::RequiredFirst,
        ..LocalSettings::new(model_path())
    });
    let mut request = request(vec![spec.clone()], task);
    request.max_output_tokens = Some(256);
    let mut distinct = std::collections::BTreeSet::new();
    let mut cut = 0;
    for complete in 0..GENERATIONS {
        let what = format!("{tool} after {complete} calls");
        let (response, streamed) = uncut(&client, &request, &mut cut, GENERATIONS / 2, &what).await;
        assert_eq!(response.tool_calls.len(), 1, "{tool}: {response:?}");
        let call = &response.tool_calls[0];
        assert_eq!(call.name, tool);
        let arguments: Value = serde_json::from_str(&call.arguments)
            .unwrap_or_else(|e| panic!("{tool}: arguments are not JSON ({e}): {}", call.arguments));
        if let Err(why) = validate(&spec.parameters, &arguments) {
            panic!("{tool} call {complete}: {why}\narguments: {arguments}");
        }
        // A forced call has no prose, and nothing of the call reached the stream.
        assert_eq!((response.text.as_str(), streamed.as_str()), ("", ""));
        distinct.insert(call.arguments.clone());
    }
    // Sampling with a new seed per request explores the grammar rather than repeating one call.
    assert!(
        distinct.len() >= min_distinct,
        "{tool}: only {} distinct calls",
        distinct.len()
    );
    eprintln!(
        "{tool}: {GENERATIONS} calls parsed, {} distinct, {cut} cut off by the output limit",
        distinct.len()
    );
}

#[test]
fn the_grammar_tests_cover_every_standard_tool() {
    let names = cox_tools::ToolRegistry::standard().names();
    assert_eq!(
        names,
        [
            "shell",
            "exec_command",
            "write_stdin",
            "list_sessions",
            "kill_session",
            "apply_patch",
            "read_file",
            "list_dir",
            "grep",
            "update_plan",
            "ask_user"
        ],
        "a new tool needs its grammar test below"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_shell() {
    forced_calls_match("shell", "Run ls -la with the shell tool.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_exec_command() {
    forced_calls_match(
        "exec_command",
        "Start python3 -i in a terminal session with exec_command.",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_write_stdin() {
    forced_calls_match(
        "write_stdin",
        "Type print(1) and Enter into terminal session 1 with write_stdin.",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_list_sessions() {
    // It takes no arguments: every call is `{}`.
    forced_calls_vary("list_sessions", "List the running terminal sessions.", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_kill_session() {
    forced_calls_vary(
        "kill_session",
        "Kill terminal session 2 with kill_session.",
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_apply_patch() {
    forced_calls_match("apply_patch", "Use apply_patch to add a line to README.md.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_read_file() {
    forced_calls_match("read_file", "Read README.md with read_file.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_list_dir() {
    forced_calls_match("list_dir", "List the files of src with list_dir.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_grep() {
    forced_calls_match("grep", "Search the code for TODO with grep.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_update_plan() {
    forced_calls_match(
        "update_plan",
        "Record a plan of two short steps with update_plan.",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_ask_user() {
    forced_calls_match(
        "ask_user",
        "Ask the user which file to change, with ask_user.",
    )
    .await;
}

/// The lazy path: nothing forces a call, but once the model writes `<tool_call>` itself the grammar
/// takes over. A history of earlier calls makes the model continue the pattern; with a new seed per
/// attempt, at least one of ten attempts must start a call, and every call started must parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_model_starts_itself_is_completed_by_the_grammar() {
    let specs = cox_tools::ToolRegistry::standard().specs();
    let client = client(LocalSettings {
        temperature: 0.8,
        seed: 3,
        ..LocalSettings::new(model_path())
    });
    let mut request = request(specs.clone(), "Show me the files of this repository.");
    request.max_output_tokens = Some(256);
    let mut items = Vec::new();
    for (i, (user, name, arguments, output)) in [
        (
            "List the files.",
            "list_dir",
            r#"{"path":"."}"#,
            "README.md\nsrc/",
        ),
        (
            "Read the readme.",
            "read_file",
            r#"{"path":"README.md"}"#,
            "# Demo",
        ),
        ("List src.", "list_dir", r#"{"path":"src"}"#, "main.rs"),
    ]
    .into_iter()
    .enumerate()
    {
        let call_id = cox_protocol::CallId(format!("c{i}"));
        items.push(Item::User { text: user.into() });
        items.push(Item::ToolCall(cox_protocol::ToolCall {
            call_id: call_id.clone(),
            name: name.into(),
            arguments: arguments.into(),
        }));
        items.push(Item::ToolResult {
            call_id,
            ok: true,
            output: output.into(),
            images: Vec::new(),
        });
        items.push(Item::Assistant {
            text: "Done.".into(),
        });
    }
    items.push(Item::User {
        text: "Now read src/main.rs.".into(),
    });
    request.items = items;
    let (mut parsed, mut cut) = (0, 0);
    for attempt in 0..10 {
        let (result, streamed) = ask(&client, &request).await;
        let response = match result {
            // A call the model started and the output limit stopped: refused, not returned.
            Err(err) if cut_off(&err) => {
                cut += 1;
                continue;
            }
            Err(err) => panic!("attempt {attempt}: {err}"),
            Ok(response) => response,
        };
        assert!(
            !streamed.contains(super::CALL_OPEN),
            "a marker reached the stream: {streamed}"
        );
        for call in &response.tool_calls {
            let spec = specs.iter().find(|s| s.name == call.name).unwrap();
            let arguments: Value = serde_json::from_str(&call.arguments).unwrap();
            validate(&spec.parameters, &arguments)
                .unwrap_or_else(|why| panic!("attempt {attempt}: {why}: {arguments}"));
            parsed += 1;
        }
    }
    assert!(
        parsed > 0,
        "in ten attempts the model never completed a call ({cut} cut off)"
    );
    eprintln!("lazy grammar: {parsed} calls parsed, {cut} cut off, in 10 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_output_always_matches_the_schema() {
    let schema = json!({
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {"enum": ["edit", "test", "lint"]},
                        "depends_on": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["id", "kind", "depends_on"],
                    "additionalProperties": false,
                },
            },
        },
        "required": ["title", "steps"],
        "additionalProperties": false,
    });
    let client = client(LocalSettings {
        temperature: 1.0,
        seed: 11,
        ..LocalSettings::new(model_path())
    });
    let mut request = request(Vec::new(), "Plan how to add a --verbose flag.");
    request.output_schema = Some(("plan".into(), schema.clone()));
    request.max_output_tokens = Some(512);
    let mut cut = 0;
    for complete in 0..5 {
        let what = format!("after {complete} answers");
        let (response, streamed) = uncut(&client, &request, &mut cut, 5, &what).await;
        let value: Value = serde_json::from_str(&response.text)
            .unwrap_or_else(|e| panic!("answer {complete}: not JSON ({e}): {}", response.text));
        validate(&schema, &value).unwrap_or_else(|why| panic!("answer {complete}: {why}: {value}"));
        assert_eq!(
            streamed, response.text,
            "the answer streams as it is generated"
        );
    }
    eprintln!("structured output: 5 answers matched, {cut} cut off by the output limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prose_streams_then_the_next_prompt_reuses_the_cache() {
    let client = client(LocalSettings::new(model_path()));
    let info = client.info().clone();
    assert_eq!(info.context_window, 8192, "SmolLM2's training context");
    assert_eq!(
        info.model_name, "Smollm2 135M 8k Lc100K Mix1 Ep2",
        "general.name"
    );
    let mut request = request(Vec::new(), "Say hello in one short sentence.");
    request.max_output_tokens = Some(24);
    let (first, streamed) = ask(&client, &request).await;
    let first = first.unwrap();
    assert!(!first.text.is_empty());
    assert_eq!(streamed, first.text);
    let usage = first.usage.unwrap();
    assert_eq!(usage.cached_input_tokens, 0);
    assert!(
        usage.output_tokens > 0 && usage.output_tokens <= 24,
        "{usage:?}"
    );

    request.items.push(Item::Assistant { text: first.text });
    request.items.push(Item::User {
        text: "Again, shorter.".into(),
    });
    let second = ask(&client, &request).await.0.unwrap().usage.unwrap();
    assert!(
        second.cached_input_tokens >= usage.input_tokens - 1,
        "the first prompt is reused: {second:?} after {usage:?}"
    );
}

fn saved_states(dir: &std::path::Path) -> Vec<PathBuf> {
    fs_err::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// A second process (here: a second client) loads the system message's KV state instead of reading
/// it, and answers exactly as the first did; a damaged state file is ignored and replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_loads_the_saved_system_message() {
    let dir = tempfile::tempdir().unwrap();
    let settings = LocalSettings {
        prefix_cache_dir: Some(dir.path().join("cache")),
        ..LocalSettings::new(model_path())
    };
    let mut request = request(cox_tools::ToolRegistry::standard().specs(), "Say hi.");
    request.max_output_tokens = Some(12);
    let run = |settings: LocalSettings| {
        let request = request.clone();
        async move {
            let client = client(settings);
            ask(&client, &request).await.0.unwrap()
        }
    };
    let first = run(settings.clone()).await;
    let first_usage = first.usage.unwrap();
    assert_eq!(first_usage.cached_input_tokens, 0);
    let saved = saved_states(&dir.path().join("cache"));
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(
        saved[0].extension().is_some_and(|x| x == "state"),
        "{saved:?}"
    );

    let second = run(settings.clone()).await;
    let second_usage = second.usage.unwrap();
    assert!(
        second_usage.cached_input_tokens > first_usage.input_tokens * 9 / 10,
        "the system message came from disk: {second_usage:?} (prompt {} tokens)",
        first_usage.input_tokens
    );
    assert_eq!(
        second.text, first.text,
        "greedy answers agree with and without the saved state"
    );
    assert_eq!(second.tool_calls, first.tool_calls);

    fs_err::write(&saved[0], b"not a llama.cpp state").unwrap();
    let third = run(settings).await;
    assert_eq!(
        third.usage.unwrap().cached_input_tokens,
        0,
        "a damaged state is not used"
    );
    assert_eq!(third.text, first.text);
    let state = fs_err::metadata(&saved[0]).unwrap();
    assert!(
        state.len() > 1000,
        "the damaged file was replaced by a real state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_stops_and_the_model_serves_the_next() {
    let client = client(LocalSettings::new(model_path()));
    let mut request = request(Vec::new(), "Write a long story about a lighthouse keeper.");
    request.max_output_tokens = Some(2000);
    let (tx, mut rx) = mpsc::channel(64);
    let mut stream = client.stream(&request, tx);
    // Wait for the first delta, then drop the request the way a pause does.
    tokio::select! {
        _ = &mut stream => panic!("a 2000-token story finished before its first delta was read"),
        first = rx.recv() => assert!(matches!(first, Some(StreamEvent::TextDelta(_)))),
    }
    drop(stream);
    // The thread notices before its next token: the channel closes well before 2000 tokens.
    let mut after = 0;
    while rx.recv().await.is_some() {
        after += 1;
    }
    assert!(after < 100, "{after} deltas after the request was dropped");
    let mut next = request.clone();
    next.max_output_tokens = Some(8);
    let next = ask(&client, &next).await.0.unwrap();
    assert!(next.usage.unwrap().output_tokens <= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_beyond_the_context_is_a_context_overflow() {
    let client = client(LocalSettings {
        context_size: Some(256),
        ..LocalSettings::new(model_path())
    });
    assert_eq!(client.info().context_window, 256);
    let request = request(Vec::new(), &"lorem ipsum dolor ".repeat(200));
    let err = ask(&client, &request).await.0.unwrap_err();
    assert!(matches!(err, ModelError::ContextOverflow { .. }), "{err}");
    assert!(err.to_string().contains("local context holds 256"), "{err}");
}

#[test]
fn a_context_beyond_memory_is_refused_before_allocation() {
    let err = open(&LocalSettings {
        context_size: Some(64 << 20),
        ..LocalSettings::new(model_path())
    })
    .unwrap_err();
    assert!(
        matches!(err, LocalError::ContextTooLarge { n_ctx, .. } if n_ctx == 64 << 20),
        "{err}"
    );
    assert!(
        err.to_string().contains("set a smaller context_size"),
        "{err}"
    );
}

#[test]
fn a_damaged_gguf_is_a_load_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.gguf");
    let mut bytes = b"GGUF\x03\0\0\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xa5u8, 4096));
    fs_err::write(&path, bytes).unwrap();
    let err = open(&LocalSettings::new(&path)).unwrap_err();
    assert!(matches!(err, LocalError::Load { .. }), "{err}");
    assert!(err.to_string().contains("damaged, truncated"), "{err}");
}
