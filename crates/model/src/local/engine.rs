//! The llama.cpp runtime: one thread owns the model and its context, and serves requests in order.
//!
//! llama.cpp's context is not thread-safe and decoding is CPU-bound, so it lives on a thread of its
//! own rather than on the async runtime; a request is a job sent to it, and its deltas come back over
//! the usual event channel. Dropping the request (a pause cancels it) closes the reply channel, which
//! the thread notices before the next token.
//!
//! Between requests the thread keeps the tokens in its KV cache: an agent's next prompt is the last
//! one plus a tool result, so only the new tokens are decoded (the same prefix reuse a server does).
//! Across processes, the state after the system message comes from disk ([`PrefixCache`]).

use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::{mpsc, oneshot};

use super::grammar::{TURN_RULE, call_schema, tool_turn};
use super::prefix_cache::PrefixCache;
use super::prompt::{CALL_OPEN, messages, parse_call};
use super::split::{MarkerSplit, Utf8Stream};
use super::{
    DEFAULT_CONTEXT_CAP, DEFAULT_MAX_OUTPUT_TOKENS, LocalError, LocalInfo, LocalSettings,
    ToolChoice, kv_cache_bytes,
};
use crate::{BoxFuture, ModelClient, ModelError, ModelRequest, ModelResponse, StreamEvent};
use cox_protocol::{Item, Usage};

/// Tokens decoded per llama.cpp batch while reading a prompt.
const BATCH: usize = 512;

/// llama.cpp's backend may be initialised once per process.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
            // llama.cpp logs every tensor it loads to stderr; cox reports what matters itself.
            if std::env::var_os("COX_LOCAL_LOG").is_none() {
                backend.void_logs();
            }
            Ok(backend)
        })
        .as_ref()
        .map_err(Clone::clone)
}

struct Job {
    request: ModelRequest,
    events: mpsc::Sender<StreamEvent>,
    reply: oneshot::Sender<Result<ModelResponse, ModelError>>,
}

/// A loaded model: a [`ModelClient`] whose requests run on the model's thread.
pub struct LocalClient {
    jobs: std_mpsc::Sender<Job>,
    info: LocalInfo,
}

impl std::fmt::Debug for LocalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalClient")
            .field("info", &self.info)
            .finish()
    }
}

impl LocalClient {
    /// Loads the model on a new thread and waits until it is ready (or failed). `memory_left`: the
    /// bytes available beside the model, for the KV cache (unknown: not checked).
    pub(super) fn start(
        settings: LocalSettings,
        memory_left: Option<u64>,
    ) -> Result<LocalClient, LocalError> {
        let (jobs, inbox) = std_mpsc::channel();
        let (ready_tx, ready) = std_mpsc::sync_channel(1);
        let path = settings.model_path.clone();
        std::thread::Builder::new()
            .name("cox-local-model".into())
            .spawn(move || serve(settings, memory_left, ready_tx, inbox))
            .map_err(|e| LocalError::Load {
                path: path.clone(),
                detail: format!("cannot start the model thread: {e}"),
            })?;
        let info = ready.recv().map_err(|_| LocalError::Load {
            path,
            detail: "the model thread stopped while loading".into(),
        })??;
        Ok(LocalClient { jobs, info })
    }

    pub fn info(&self) -> &LocalInfo {
        &self.info
    }
}

impl ModelClient for LocalClient {
    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        events: mpsc::Sender<StreamEvent>,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                request: request.clone(),
                events,
                reply,
            };
            self.jobs
                .send(job)
                .map_err(|_| ModelError::Local("the model thread has stopped".into()))?;
            answer
                .await
                .map_err(|_| ModelError::Local("the model thread stopped mid-request".into()))?
        })
    }

    fn context_window(&self) -> Option<u64> {
        Some(self.info.context_window)
    }
}

fn serve(
    settings: LocalSettings,
    memory_left: Option<u64>,
    ready: std_mpsc::SyncSender<Result<LocalInfo, LocalError>>,
    inbox: std_mpsc::Receiver<Job>,
) {
    let started = Instant::now();
    let load_error = |detail: String| LocalError::Load {
        path: settings.model_path.clone(),
        detail,
    };
    let loaded = backend().map_err(load_error).and_then(|backend| {
        let model =
            LlamaModel::load_from_file(backend, &settings.model_path, &LlamaModelParams::default())
                .map_err(|_| {
                    load_error(
                        "the file is damaged, truncated, or of an architecture this llama.cpp does not know \
                         (set COX_LOCAL_LOG=1 to see llama.cpp's log)"
                            .into(),
                    )
                })?;
        Ok((backend, model))
    });
    let (backend, model) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let n_ctx = settings
        .context_size
        .unwrap_or_else(|| model.n_ctx_train().min(DEFAULT_CONTEXT_CAP))
        .max(256);
    let threads = settings.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    });
    let needed = kv_cache_bytes(
        model.n_layer(),
        u32::try_from(model.n_embd()).unwrap_or(0),
        model.n_head(),
        model.n_head_kv(),
        n_ctx,
    );
    if let Some(available) = memory_left
        && needed > available
    {
        let _ = ready.send(Err(LocalError::ContextTooLarge {
            n_ctx,
            needed,
            available,
        }));
        return;
    }
    let threads_i32 = i32::try_from(threads).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(BATCH as u32)
        .with_n_threads(threads_i32)
        .with_n_threads_batch(threads_i32);
    let ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(load_error(format!(
                "cannot allocate a context of {n_ctx} tokens ({e}); set a smaller context_size under [providers.local]"
            ))));
            return;
        }
    };
    // The GGUF's own template; llama.cpp recognises it by its markers. A GGUF without one gets
    // ChatML, the format most instruct models understand.
    let template = model
        .chat_template(None)
        .or_else(|_| LlamaChatTemplate::new("chatml"));
    let template = match template {
        Ok(template) => template,
        Err(e) => {
            let _ = ready.send(Err(load_error(format!("unusable chat template: {e}"))));
            return;
        }
    };
    let model_name = model
        .meta_val_str("general.name")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| {
            settings
                .model_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let info = LocalInfo {
        context_window: u64::from(n_ctx),
        threads,
        load_time: started.elapsed(),
        model_name,
    };
    if ready.send(Ok(info)).is_err() {
        return;
    }
    let prefix_cache = settings
        .prefix_cache_dir
        .clone()
        .and_then(|dir| PrefixCache::new(dir, &settings.model_path, n_ctx));
    let mut engine = Engine {
        prefix_cache,
        model: &model,
        ctx,
        template,
        cached: Vec::new(),
        requests: 0,
        settings,
    };
    while let Ok(job) = inbox.recv() {
        let result = engine.generate(&job);
        let _ = job.reply.send(result);
    }
}

struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: LlamaChatTemplate,
    /// The tokens whose keys and values are in the context, in order from position 0.
    cached: Vec<LlamaToken>,
    requests: u32,
    settings: LocalSettings,
    prefix_cache: Option<PrefixCache>,
}

/// A system message shorter than this is read faster than its saved state is loaded.
const MIN_SAVED_PREFIX: usize = 64;

/// How one generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    EndOfTurn,
    OutputLimit,
    ContextFull,
}

impl Engine<'_> {
    fn generate(&mut self, job: &Job) -> Result<ModelResponse, ModelError> {
        let request = &job.request;
        let prompt = self.render(request)?;
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        let n_ctx = self.ctx.n_ctx() as usize;
        if tokens.is_empty() {
            return Err(ModelError::Local(
                "the chat template rendered an empty prompt".into(),
            ));
        }
        if tokens.len() >= n_ctx {
            return Err(ModelError::ContextOverflow {
                message: format!(
                    "the prompt is {} tokens and the local context holds {n_ctx}",
                    tokens.len()
                ),
            });
        }
        // From a cold context only what came from disk counts as cached; the head read now does not.
        let from_disk = self
            .cached
            .is_empty()
            .then(|| self.warm_from_disk(request, &tokens));
        let mut sampler = self.sampler(request)?;
        let reused = self.read_prompt(&tokens)?;
        let reused = from_disk.map_or(reused, |loaded| loaded.min(reused));

        let limit = request
            .max_output_tokens
            .unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS) as usize;
        let mut utf8 = Utf8Stream::default();
        let mut split = MarkerSplit::new(CALL_OPEN);
        let mut generated = 0usize;
        let mut text = String::new();
        let mut batch = LlamaBatch::new(1, 1);
        let stop = loop {
            if job.reply.is_closed() {
                return Err(ModelError::Local("request cancelled".into()));
            }
            if generated >= limit {
                break Stop::OutputLimit;
            }
            if self.cached.len() >= n_ctx {
                break Stop::ContextFull;
            }
            // `sample` also accepts the token into the chain (grammar included): never again.
            let token = sampler.sample(&self.ctx, -1);
            if self.model.vocab().is_eog(token) {
                break Stop::EndOfTurn;
            }
            generated += 1;
            let piece = self.model.vocab().token_to_piece(token, false, None);
            let prose = split.push(&utf8.push(&piece));
            if !prose.is_empty() {
                text.push_str(&prose);
                let _ = job.events.blocking_send(StreamEvent::TextDelta(prose));
            }
            batch.clear();
            let pos = i32::try_from(self.cached.len()).unwrap_or(i32::MAX);
            batch
                .add(token, pos, &[0], true)
                .map_err(|e| ModelError::Local(e.to_string()))?;
            self.decode(&mut batch)?;
            self.cached.push(token);
        };
        // What is still held back is prose: once a call starts, everything goes into the call.
        let prose_tail = split.push(&utf8.finish());
        let (held, call) = split.finish();
        for piece in [prose_tail, held] {
            if !piece.is_empty() {
                text.push_str(&piece);
                let _ = job.events.blocking_send(StreamEvent::TextDelta(piece));
            }
        }
        let usage = Some(Usage {
            input_tokens: tokens.len() as u64,
            cached_input_tokens: reused as u64,
            output_tokens: generated as u64,
        });
        // Constrained output is complete only when the grammar let the turn end: a call or a
        // structured answer cut short is an error, never returned half-made.
        let constrained = match (&call, &request.output_schema) {
            (Some(_), _) => Some("a tool call"),
            (None, Some(_)) => Some("the structured answer"),
            (None, None) => None,
        };
        match (constrained, stop) {
            (Some(what), Stop::OutputLimit) => {
                return Err(ModelError::Local(format!(
                    "{what} was cut off by the output limit of {limit} tokens; raise max_output_tokens"
                )));
            }
            (Some(what), Stop::ContextFull) => {
                return Err(ModelError::ContextOverflow {
                    message: format!("{what} filled the local context of {n_ctx} tokens"),
                });
            }
            _ => {}
        }
        let tool_calls = match call {
            Some(call) => vec![parse_call(&call).map_err(ModelError::Local)?],
            None => Vec::new(),
        };
        let ending = match stop {
            Stop::OutputLimit => crate::Ending::Truncated {
                reason: "max_output_tokens".into(),
            },
            _ => crate::Ending::Complete,
        };
        Ok(ModelResponse {
            text,
            tool_calls,
            usage,
            output: Vec::new(),
            ending,
        })
    }

    /// With an empty context, loads the saved state of the prompt's system message, or reads it and
    /// saves it for the next process. Failures only cost the time of reading the prompt. Returns
    /// how many tokens came from disk.
    fn warm_from_disk(&mut self, request: &ModelRequest, tokens: &[LlamaToken]) -> usize {
        let Some(cache) = self.prefix_cache.take() else {
            return 0;
        };
        let mut loaded = 0;
        let head = self
            .render_messages(request, 1, false)
            .ok()
            .map(|text| self.model.vocab().tokenize(text.as_bytes(), true, true));
        if let Some(prefix) = head.filter(|prefix| {
            prefix.len() >= MIN_SAVED_PREFIX
                && prefix.len() < tokens.len()
                && tokens.starts_with(prefix)
        }) {
            if cache.load(&mut self.ctx, &prefix) {
                loaded = prefix.len();
                self.cached = prefix;
            } else {
                self.ctx.clear_kv_cache();
                self.cached.clear();
                if self.read_prompt(&prefix).is_ok() {
                    cache.save(&self.ctx, &prefix);
                }
            }
        }
        self.prefix_cache = Some(cache);
        loaded
    }

    fn render(&self, request: &ModelRequest) -> Result<String, ModelError> {
        self.render_messages(request, usize::MAX, true)
    }

    /// The first `count` messages through the chat template; `open_answer` adds the assistant's
    /// opening.
    fn render_messages(
        &self,
        request: &ModelRequest,
        count: usize,
        open_answer: bool,
    ) -> Result<String, ModelError> {
        let chat = messages(request)
            .into_iter()
            .take(count)
            .map(|m| LlamaChatMessage::new(m.role.to_string(), m.content.replace('\0', "\u{fffd}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ModelError::Local(format!("cannot build the chat: {e}")))?;
        self.model
            .apply_chat_template(&self.template, &chat, open_answer)
            .map_err(|e| ModelError::Local(format!("the model's chat template failed: {e}")))
    }

    /// The sampling chain: the grammar first (tool calls or structured output), then greedy or
    /// temperature sampling.
    fn sampler(&mut self, request: &ModelRequest) -> Result<LlamaSampler, ModelError> {
        let grammar_error = |e: String| ModelError::Local(format!("cannot build the grammar: {e}"));
        let mut chain = Vec::new();
        if let Some((_, schema)) = &request.output_schema {
            let gbnf = llama_cpp_2::json_schema_to_grammar(&schema.to_string())
                .map_err(|e| grammar_error(e.to_string()))?;
            chain.push(
                LlamaSampler::grammar(self.model, &gbnf, "root")
                    .map_err(|e| grammar_error(e.to_string()))?,
            );
        } else if let Some(schema) = call_schema(&request.tools, None) {
            let gbnf = llama_cpp_2::json_schema_to_grammar(&schema.to_string())
                .map_err(|e| grammar_error(e.to_string()))?;
            let grammar = tool_turn(&gbnf);
            let must_call = self.settings.tool_choice == ToolChoice::RequiredFirst
                && matches!(request.items.last(), Some(Item::User { .. }));
            let sampler = if must_call {
                LlamaSampler::grammar(self.model, &grammar, TURN_RULE)
            } else {
                LlamaSampler::grammar_lazy(self.model, &grammar, TURN_RULE, [CALL_OPEN], &[])
            };
            chain.push(sampler.map_err(|e| grammar_error(e.to_string()))?);
        }
        let seed = self.settings.seed.wrapping_add(self.requests);
        self.requests = self.requests.wrapping_add(1);
        if self.settings.temperature > 0.0 {
            // llama.cpp's own defaults for the truncation before the temperature.
            chain.push(LlamaSampler::top_k(40));
            chain.push(LlamaSampler::top_p(0.95, 1));
            chain.push(LlamaSampler::min_p(0.05, 1));
            chain.push(LlamaSampler::temp(self.settings.temperature));
            chain.push(LlamaSampler::dist(seed));
        } else {
            chain.push(LlamaSampler::greedy());
        }
        Ok(LlamaSampler::chain_simple(chain))
    }

    /// Brings the context to `tokens`: keeps the longest prefix it already holds and decodes the
    /// rest, with logits for the last token only. Returns how many tokens were reused.
    fn read_prompt(&mut self, tokens: &[LlamaToken]) -> Result<usize, ModelError> {
        let mut reused = self
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        // The last prompt token is decoded again even when cached: its logits start the answer.
        reused = reused.min(tokens.len().saturating_sub(1));
        let kept = u32::try_from(reused).unwrap_or(u32::MAX);
        let cleared = self
            .ctx
            .clear_kv_cache_seq(Some(0), Some(kept), None)
            .unwrap_or(false);
        if !cleared {
            self.ctx.clear_kv_cache();
            reused = 0;
        }
        self.cached.truncate(reused);
        let mut batch = LlamaBatch::new(BATCH, 1);
        let last = tokens.len() - 1;
        for (chunk_start, chunk) in tokens[reused..].chunks(BATCH).enumerate() {
            batch.clear();
            for (i, token) in chunk.iter().enumerate() {
                let pos = reused + chunk_start * BATCH + i;
                batch
                    .add(
                        *token,
                        i32::try_from(pos).unwrap_or(i32::MAX),
                        &[0],
                        pos == last,
                    )
                    .map_err(|e| ModelError::Local(e.to_string()))?;
            }
            self.decode(&mut batch)?;
            self.cached.extend_from_slice(chunk);
        }
        Ok(reused)
    }

    fn decode(&mut self, batch: &mut LlamaBatch) -> Result<(), ModelError> {
        self.ctx.decode(batch).map_err(|e| {
            // What the context holds is unknown after a failed decode: start clean next time.
            self.ctx.clear_kv_cache();
            self.cached.clear();
            ModelError::Local(format!("llama.cpp could not decode: {e}"))
        })
    }
}
