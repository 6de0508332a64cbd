//! Integration tests of the tools, one test binary for the crate: the tools as the engine calls
//! them, the patch engine against fixture folders, and its properties over random cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod patch_fixtures;
mod patch_property;
mod tools;
