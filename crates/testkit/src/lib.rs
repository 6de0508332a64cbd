//! Dev-only test kit: [`MockServer`], a scripted model server on 127.0.0.1 that speaks the OpenAI
//! Responses, Chat Completions and Anthropic Messages wire formats over SSE, records every request,
//! and injects faults on cue (see [`Fault`]).
//!
//! It is written from the providers' documented wire formats, independently of `cox-model`, so the
//! tests that drive one with the other check both against the documented shapes.
//!
//! [`schema::validate`] checks a value against a JSON schema, for tests of output that must match
//! one (tool calls from a local model, plans).

mod frames;
pub mod schema;
mod script;
mod server;

pub use frames::{Wire, split};
pub use script::{Fault, Script, ScriptedCall, ScriptedUsage, Turn};
pub use server::{MockServer, Recorded};

/// The GGUF model the `local` provider's tests run: `COX_TEST_GGUF`, else where
/// `scripts/fetch-test-model` puts SmolLM2-135M-Instruct. Panics with how to get it when absent:
/// a test that needs the model must not pass without it.
pub fn test_model() -> std::path::PathBuf {
    let path = std::env::var_os("COX_TEST_GGUF").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/test-models/SmolLM2-135M-Instruct.Q4_1.gguf")
        },
        std::path::PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no test model at {}: run scripts/fetch-test-model (or set COX_TEST_GGUF)",
        path.display()
    );
    path
}
