//! The `local` provider: a GGUF model run inside the cox process by llama.cpp, for fully offline
//! work with no account, key or server.
//!
//! Why llama.cpp (through the `llama-cpp-2` crate) and not candle: measured on the 2-core AVX2
//! machines cox is developed on, llama.cpp decodes SmolLM2-135M at about 100 tokens/s, candle at
//! 2 tokens/s in a portable build (45/s only with `-C target-cpu=native` for the whole program), and
//! candle's GGUF tokenizer mis-splits that model's pre-tokenizer. llama.cpp also reads the chat
//! template from the GGUF and compiles JSON schemas into sampling grammars, which is what makes tool
//! calls from a model without native tool calling valid by construction ([`grammar`]).
//!
//! The runtime sits behind the cargo feature `local` (off by default: it compiles llama.cpp, which
//! takes minutes). Without it, [`open`] says how to build it. The model file is checked here before
//! llama.cpp sees it, so a missing, unreadable, non-GGUF or too-large file gets a clear error rather
//! than llama.cpp's log.

#[cfg_attr(not(feature = "local"), allow(dead_code))]
mod grammar;
#[cfg_attr(not(feature = "local"), allow(dead_code))]
mod prompt;
#[cfg_attr(not(feature = "local"), allow(dead_code))]
mod split;

#[cfg(feature = "local")]
mod engine;
#[cfg(feature = "local")]
mod prefix_cache;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use grammar::call_schema;
pub use prompt::{CALL_CLOSE, CALL_OPEN};

/// The default cap on the context size: a GGUF may be trained for 128k tokens, whose KV cache
/// would not fit a laptop; `context_size` in config raises it.
pub const DEFAULT_CONTEXT_CAP: u32 = 16_384;
/// The default cap on one response, so a small model that repeats itself stops in bounded time.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 2_048;

/// How to run the model (`[providers.local]` in config, `--model-path`).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSettings {
    pub model_path: PathBuf,
    /// Tokens of context; `None` = the GGUF's training context, capped at [`DEFAULT_CONTEXT_CAP`].
    pub context_size: Option<u32>,
    /// Threads for decoding; `None` = the cores available to the process.
    pub threads: Option<usize>,
    /// 0 samples greedily (the default: repeatable runs); above 0 samples with this temperature.
    pub temperature: f32,
    /// The seed of the first request; each later request of the client uses the next one.
    pub seed: u32,
    pub tool_choice: ToolChoice,
    /// Where the KV state of prompts' system messages is saved between runs (`None`: not saved).
    pub prefix_cache_dir: Option<PathBuf>,
}

/// When the model must call a tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToolChoice {
    /// Each response is free text or one tool call, as the model chooses (the default).
    #[default]
    Auto,
    /// The first response to each user message must be a tool call; after a tool result the model
    /// chooses again. Small models tend to answer from imagination instead of looking: this makes
    /// them look first.
    RequiredFirst,
}

impl LocalSettings {
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        LocalSettings {
            model_path: model_path.into(),
            context_size: None,
            threads: None,
            temperature: 0.0,
            seed: 0,
            tool_choice: ToolChoice::Auto,
            prefix_cache_dir: None,
        }
    }
}

/// Why the local model cannot be used. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "this cox was built without the `local` provider; rebuild it with the feature: \
         `cargo install --path crates/cli --features local` (needs cmake, clang and libclang-dev), \
         or use a local server through `--provider ollama` / `--provider llamacpp`"
    )]
    NotBuilt,
    #[error(
        "the local provider needs a model file: pass --model-path FILE.gguf or set `model_path` under [providers.local] in config.toml"
    )]
    NoPath,
    #[error("model file {} does not exist; check --model-path (or [providers.local] model_path)", .path.display())]
    Missing { path: PathBuf },
    #[error("cannot read model file {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a GGUF model (it starts with {found}, not `GGUF`); the local provider runs llama.cpp's GGUF files", .path.display())]
    NotGguf { path: PathBuf, found: String },
    #[error(
        "model file {} is {} but only {} of memory is available; choose a smaller quantisation or model",
        .path.display(), mib(*.size), mib(*.available)
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        available: u64,
    },
    #[error("llama.cpp could not load {}: {detail}", .path.display())]
    Load { path: PathBuf, detail: String },
    #[error(
        "a context of {n_ctx} tokens needs {} for its KV cache, but only {} of memory is left beside the model; \
         set a smaller context_size under [providers.local]",
        mib(*.needed), mib(*.available)
    )]
    ContextTooLarge {
        n_ctx: u32,
        needed: u64,
        available: u64,
    },
}

/// The KV cache of `n_ctx` tokens in bytes, as llama.cpp allocates it by default (keys and values
/// in f16, for every layer, over the key-value heads).
pub fn kv_cache_bytes(n_layer: u32, n_embd: u32, n_head: u32, n_head_kv: u32, n_ctx: u32) -> u64 {
    let per_head = u64::from(n_embd) / u64::from(n_head.max(1));
    u64::from(n_layer) * u64::from(n_ctx) * 2 * per_head * u64::from(n_head_kv) * 2
}

fn mib(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    match bytes as f64 {
        b if b >= 1024.0 * MIB => format!("{:.1} GiB", b / (1024.0 * MIB)),
        b if b >= MIB => format!("{:.0} MiB", b / MIB),
        _ => format!("{bytes} bytes"),
    }
}

/// What the loaded model offers, for the session and for benchmarks.
#[derive(Debug, Clone)]
pub struct LocalInfo {
    /// The context size in tokens actually allocated.
    pub context_window: u64,
    pub threads: usize,
    /// From file checks to a ready context.
    pub load_time: std::time::Duration,
    /// The GGUF's `general.name`, else the file name.
    pub model_name: String,
}

/// Checks the file and loads the model on a thread of its own.
#[cfg(feature = "local")]
pub fn open(settings: &LocalSettings) -> Result<engine::LocalClient, LocalError> {
    let available = available_memory();
    let size = check_file(&settings.model_path, available)?;
    // What is left for the KV cache once the model is resident.
    engine::LocalClient::start(settings.clone(), available.map(|a| a.saturating_sub(size)))
}

#[cfg(feature = "local")]
pub use engine::LocalClient;

/// Without the feature there is nothing to open; the error says how to build it.
#[cfg(not(feature = "local"))]
pub fn open(_settings: &LocalSettings) -> Result<std::convert::Infallible, LocalError> {
    Err(LocalError::NotBuilt)
}

/// Whether this build can run local models.
pub const BUILT: bool = cfg!(feature = "local");

/// The checks llama.cpp would otherwise report only in its log: the file exists, is readable, is a
/// GGUF, and fits in `available` bytes of memory (when known). Returns its size.
pub fn check_file(path: &Path, available: Option<u64>) -> Result<u64, LocalError> {
    let metadata = match fs_err::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LocalError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(LocalError::Unreadable {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let unreadable = |source| LocalError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    if metadata.is_dir() {
        return Err(unreadable(std::io::Error::other("it is a directory")));
    }
    let mut magic = Vec::with_capacity(4);
    fs_err::File::open(path)
        .and_then(|file| file.take(4).read_to_end(&mut magic))
        .map_err(unreadable)?;
    if magic != b"GGUF" {
        let found = if magic.is_empty() {
            "nothing (the file is empty)".to_string()
        } else {
            format!("{:?}", String::from_utf8_lossy(&magic))
        };
        return Err(LocalError::NotGguf {
            path: path.to_path_buf(),
            found,
        });
    }
    match available {
        Some(available) if metadata.len() > available => Err(LocalError::TooLarge {
            path: path.to_path_buf(),
            size: metadata.len(),
            available,
        }),
        _ => Ok(metadata.len()),
    }
}

/// `MemAvailable` from `/proc/meminfo`, in bytes: what can be allocated without swapping.
pub fn available_memory() -> Option<u64> {
    let text = fs_err::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(all(test, feature = "local"))]
mod model_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_checks_name_the_problem() {
        let dir = std::env::temp_dir().join(format!("cox-local-check-{}", std::process::id()));
        fs_err::create_dir_all(&dir).unwrap();
        let missing = check_file(&dir.join("none.gguf"), None).unwrap_err();
        assert!(matches!(missing, LocalError::Missing { .. }), "{missing}");
        let empty = dir.join("empty.gguf");
        fs_err::write(&empty, b"").unwrap();
        let err = check_file(&empty, None).unwrap_err().to_string();
        assert!(err.contains("nothing (the file is empty)"), "{err}");
        let text = dir.join("notes.gguf");
        fs_err::write(&text, b"hello world").unwrap();
        let err = check_file(&text, None).unwrap_err().to_string();
        assert!(
            err.contains("is not a GGUF model (it starts with \"hell\""),
            "{err}"
        );
        let gguf = dir.join("m.gguf");
        fs_err::write(&gguf, b"GGUF\x03\0\0\0 and more").unwrap();
        assert_eq!(check_file(&gguf, Some(1 << 30)).unwrap(), 17);
        let err = check_file(&gguf, Some(8)).unwrap_err();
        assert!(
            matches!(
                err,
                LocalError::TooLarge {
                    size: 17,
                    available: 8,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("is 17 bytes but only 8 bytes of memory"),
            "{err}"
        );
        let err = check_file(&dir, None).unwrap_err().to_string();
        assert!(err.contains("it is a directory"), "{err}");
        fs_err::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kv_cache_size_follows_the_model_shape() {
        // SmolLM2-135M: 30 layers, 576 wide, 9 heads of 64, 3 of them for keys and values.
        assert_eq!(kv_cache_bytes(30, 576, 9, 3, 8192), 30 * 8192 * 2 * 192 * 2);
        assert_eq!(kv_cache_bytes(30, 576, 9, 3, 8192), 188_743_680);
        let err = LocalError::ContextTooLarge {
            n_ctx: 1 << 20,
            needed: 23 << 30,
            available: 3 << 30,
        };
        assert!(err.to_string().starts_with(
            "a context of 1048576 tokens needs 23.0 GiB for its KV cache, but only 3.0 GiB"
        ));
    }

    #[test]
    fn memory_is_read_from_proc() {
        assert!(available_memory().is_some_and(|bytes| bytes > 0));
    }
}
