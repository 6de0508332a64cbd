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
