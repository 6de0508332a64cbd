//! The patch engine: the Codex patch format parsed ([`parse`]), located with fuzzy matching
//! ([`seek`]), applied all or nothing ([`apply`]), and recognised when a model sends it through the
//! shell as a heredoc ([`heredoc`]).

pub mod apply;
mod commit;
mod diff;
pub mod held;
pub mod heredoc;
pub mod parse;
pub mod seek;

pub use apply::{ChangeKind, apply, edits, preview};
