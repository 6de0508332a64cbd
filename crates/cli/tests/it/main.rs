//! End-to-end tests of the `cox` binary, one test binary for the crate: the real binary against the
//! scripted mock model on 127.0.0.1. No test reaches the network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acp;
mod architecture;
mod checkpoints;
mod context;
mod errors;
mod escape;
mod evasions;
mod exec;
mod harness;
mod install;
mod local_model;
mod logging;
mod login_env;
mod mcp;
mod models;
mod plan;
mod reliability;
mod rules;
mod run;
mod sandbox;
mod sessions;
mod steering;
mod terminal;
mod terminal_live;
mod terminal_sessions;
mod tool_calls;
mod workflow;
