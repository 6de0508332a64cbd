//! cox-core driven as an embedder would: through its handles, against the scripted mock model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod plan_run;
mod session;
