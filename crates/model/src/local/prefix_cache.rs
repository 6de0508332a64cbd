//! The KV state of a prompt's fixed head — the system message with the tool schemas — saved to disk,
//! so a new cox process does not read those tokens again.
//!
//! An agent's first request is mostly its system message (~1,500 tokens for cox's tools), and on a
//! CPU reading it costs seconds (minutes for a 7B model on few cores), every run. The state after
//! those tokens is saved once under a key of the model file (path, size, modification time), the
//! context size and the tokens themselves; any later run with the same head loads it in
//! milliseconds. It is only a cache: a file that does not load (another llama.cpp version, a torn
//! write) is ignored and replaced, and the newest [`KEEP`] files are kept.

use std::path::{Path, PathBuf};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;

/// How many saved heads to keep (each is the KV cache of its tokens: tens of MB for small models).
const KEEP: usize = 8;

#[derive(Debug)]
pub struct PrefixCache {
    dir: PathBuf,
    /// What makes a saved state usable by this context: the model file and the context size.
    identity: String,
}

impl PrefixCache {
    /// `None` when the model file's metadata cannot be read (then nothing is cached).
    pub fn new(dir: PathBuf, model_path: &Path, n_ctx: u32) -> Option<PrefixCache> {
        let metadata = fs_err::metadata(model_path).ok()?;
        let modified = metadata
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        let canonical = fs_err::canonicalize(model_path).ok()?;
        let identity = format!(
            "{}\0{}\0{}.{}\0{n_ctx}",
            canonical.display(),
            metadata.len(),
            modified.as_secs(),
            modified.subsec_nanos()
        );
        Some(PrefixCache { dir, identity })
    }

    fn path(&self, prefix: &[LlamaToken]) -> PathBuf {
        let mut hash = Fnv::default();
        hash.write(self.identity.as_bytes());
        for token in prefix {
            hash.write(&token.0.to_le_bytes());
        }
        self.dir.join(format!("{:016x}.state", hash.0))
    }

    /// Fills `ctx` with the saved state of `prefix`; false when there is none or it does not fit.
    pub fn load(&self, ctx: &mut LlamaContext<'_>, prefix: &[LlamaToken]) -> bool {
        let path = self.path(prefix);
        if !path.is_file() {
            return false;
        }
        match ctx.state_load_file(&path, prefix.len()) {
            Ok(tokens) if tokens == prefix => {
                // Recently used files are the ones kept.
                let _ = fs_err::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.file().set_modified(std::time::SystemTime::now()));
                true
            }
            _ => {
                let _ = fs_err::remove_file(&path);
                false
            }
        }
    }

    /// Saves the state of `ctx`, which must hold exactly `prefix`; best effort.
    pub fn save(&self, ctx: &LlamaContext<'_>, prefix: &[LlamaToken]) {
        if fs_err::create_dir_all(&self.dir).is_err() {
            return;
        }
        let path = self.path(prefix);
        // Written aside and renamed, so a reader never sees half a file.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        if ctx.state_save_file(&partial, prefix).is_ok() && fs_err::rename(&partial, &path).is_ok()
        {
            self.prune();
        } else {
            let _ = fs_err::remove_file(&partial);
        }
    }

    fn prune(&self) {
        let Ok(entries) = fs_err::read_dir(&self.dir) else {
            return;
        };
        let mut states: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "state"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        states.sort_by_key(|state| std::cmp::Reverse(state.0));
        for (_, path) in states.into_iter().skip(KEEP) {
            let _ = fs_err::remove_file(path);
        }
    }
}

/// FNV-1a, 64 bits: a stable hash for file names (std's hasher may change between releases).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
