//! Integration tests of the tools, one test binary for the crate: the tools as the engine calls
//! them, the patch engine against fixture folders, and its properties over random cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod patch_fixtures;
mod patch_property;
mod tools;

use std::path::Path;

use cox_tools::ToolContext;
use tokio_util::sync::CancellationToken;

/// A context working in `cwd`, confined to (and free to write in) `root`, no sandbox, with
/// results held to `max_output_bytes`.
fn context_at(cwd: &Path, root: &Path, max_output_bytes: usize) -> ToolContext {
    ToolContext {
        cwd: cwd.to_path_buf(),
        workspace: root.to_path_buf(),
        writable_roots: vec![root.to_path_buf()],
        protected: Vec::new(),
        max_output_bytes,
        capture_bytes: max_output_bytes,
        hidden_env: Vec::new(),
        sandbox: None,
        asker: None,
        watch: None,
        terminals: None,
        login_env: None,
        cancel: CancellationToken::new(),
    }
}
