//! The Model Context Protocol client of cox: `[mcp_servers.NAME]` entries ([`config`]), a
//! connection per server over stdio, streamable HTTP or the legacy SSE transport ([`client`],
//! [`sse`]; the protocol itself is `rmcp`'s, the official Rust SDK), and what a server offers made
//! fit for a model ([`offer`]: namespaced names, adapted schemas, results as text, search for
//! deferred tools).
//!
//! Policy is not decided here. `cox-core` says how a stdio server is launched (the sandbox argv,
//! the variables it must not see), asks the rules and the person before a call, journals it, and
//! checkpoints what it changed; this crate only talks to servers, and bounds every wait.

pub mod client;
pub mod config;
pub mod offer;
pub mod sse;

pub use client::{Asker, CallError, Connection, Elicitation, Launch, Offer, StartError, ToolInfo};
pub use config::{ServerConfig, Transport};
