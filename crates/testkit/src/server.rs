//! The HTTP side of the mock: hyper on a random loopback port, in a thread of its own so that both
//! async tests and plain tests that run the `cox` binary can use it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::frames::{self, Wire, error_body};
use crate::script::{Fault, Script};

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    /// Header names lower-cased. Tests must not snapshot credentials from here.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    pub received_at: Instant,
    /// When the last frame of the answer was handed to the connection.
    pub answered_at: Option<Instant>,
    /// When the mock found the client gone before the answer was complete (a cancelled request).
    pub aborted_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    script: Script,
    next_turn: usize,
    requests: Vec<Recorded>,
    /// A deterministic model ([`MockServer::start_deterministic`]): the turn each conversation
    /// was answered with.
    answered: Option<std::collections::HashMap<String, usize>>,
}

/// A request's conversation, without the system prompt (which carries the date and, in plan
/// runs, statuses): what a deterministic model's answer depends on.
fn conversation(body: &Value) -> String {
    let items = match (&body["input"], &body["messages"]) {
        (Value::Array(items), _) => items.clone(),
        (_, Value::Array(messages)) => messages
            .iter()
            .filter(|m| m["role"] != "system")
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    Value::Array(items).to_string()
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread may poison the lock; the data is still good for reading.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running mock model server; it stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// Starts serving `script` on 127.0.0.1 at a free port.
    pub fn start(script: Script) -> std::io::Result<MockServer> {
        Self::start_on(script, 0)
    }

    /// Starts serving `script` as a deterministic model: a request whose conversation
    /// (everything but the system prompt) was answered before gets that same turn again instead
    /// of the next one. What a rerun after a crash asks again is answered alike, so a test can
    /// crash cox anywhere and still know what the model says next.
    pub fn start_deterministic(script: Script) -> std::io::Result<MockServer> {
        Self::serve_state(
            State {
                script,
                answered: Some(Default::default()),
                ..State::default()
            },
            0,
        )
    }

    /// Starts serving on the given port (0 picks a free one).
    pub fn start_on(script: Script, port: u16) -> std::io::Result<MockServer> {
        Self::serve_state(
            State {
                script,
                ..State::default()
            },
            port,
        )
    }

    fn serve_state(state: State, port: u16) -> std::io::Result<MockServer> {
        let state = Arc::new(Mutex::new(state));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel();
        let served = Arc::clone(&state);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("mock-model".into())
            .spawn(move || runtime.block_on(serve(listener, served, stop)))?;
        Ok(MockServer {
            addr,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    /// How many turns of the script were consumed.
    pub fn turns_used(&self) -> usize {
        lock(&self.state).next_turn
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        // Small SSE frames must leave at once, as a real provider's do; Nagle plus delayed ACKs
        // would add 40 ms per response and swamp what the benchmarks measure.
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request| handle(Arc::clone(&state), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A response body fed from a channel; an `Err` item aborts the connection mid-body.
struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}

type Reply = Response<ChannelBody>;

fn reply(status: u16, content_type: &str, extra: &[(&str, String)], body: String) -> Reply {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Ok(Bytes::from(body)));
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type);
    for (name, value) in extra {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(ChannelBody(rx))
        .unwrap_or_else(|_| Response::new(ChannelBody(mpsc::channel(1).1)))
}

async fn handle(state: Arc<Mutex<State>>, request: Request<Incoming>) -> Result<Reply, Infallible> {
    let received_at = Instant::now();
    let path = request.uri().path().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let bytes = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);

    let (index, turn) = {
        let mut state = lock(&state);
        state.requests.push(Recorded {
            path: path.clone(),
            headers,
            body,
            received_at,
            answered_at: None,
            aborted_at: None,
        });
        let index = state.requests.len() - 1;
        let asked = state
            .answered
            .is_some()
            .then(|| conversation(&state.requests[index].body));
        let again = asked
            .as_ref()
            .and_then(|c| state.answered.as_ref()?.get(c).copied());
        let turn_no = again.unwrap_or(state.next_turn);
        let turn = state.script.turns.get(turn_no).cloned();
        if turn.is_some() && again.is_none() {
            state.next_turn += 1;
            if let (Some(asked), Some(answered)) = (asked, state.answered.as_mut()) {
                answered.insert(asked, turn_no);
            }
        }
        (index, turn.map(|t| (turn_no, t)))
    };

    let Some(wire) = Wire::from_path(&path) else {
        return Ok(reply(
            404,
            "text/plain",
            &[],
            format!("mock model: no such endpoint {path}"),
        ));
    };
    let Some((turn_no, turn)) = turn else {
        let body = error_body(
            wire,
            400,
            "mock model: the script has no turn left for this request",
        );
        return Ok(reply(400, "application/json", &[], body.to_string()));
    };
    if let Some(Fault::Status {
        status,
        retry_after,
        message,
    }) = &turn.fault
    {
        let message = message
            .clone()
            .unwrap_or_else(|| format!("mock model: injected HTTP {status}"));
        let extra: Vec<(&str, String)> = retry_after
            .iter()
            .map(|value| ("retry-after", value.clone()))
            .collect();
        let body = error_body(wire, *status, &message);
        return Ok(reply(*status, "application/json", &extra, body.to_string()));
    }

    if let Some(raw) = &turn.raw {
        return Ok(reply(200, &raw.content_type, &[], raw.body.clone()));
    }
    let frames = frames::render(wire, &turn, turn_no + 1);
    let (tx, rx) = mpsc::channel(16);
    let aborted = Arc::clone(&state);
    tokio::spawn(async move {
        let delay = Duration::from_millis(turn.delay_ms);
        let send = |text: String| {
            let tx = tx.clone();
            let aborted = Arc::clone(&aborted);
            async move {
                let sent = tx.send(Ok(Bytes::from(text))).await.is_ok();
                if !sent && let Some(recorded) = lock(&aborted).requests.get_mut(index) {
                    recorded.aborted_at.get_or_insert_with(Instant::now);
                }
                sent
            }
        };
        for (n, text) in frames.body.into_iter().enumerate() {
            if n > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if !send(text).await {
                return;
            }
            if n == 0 && matches!(turn.fault, Some(Fault::MalformedSse)) {
                let _ =
                    send("data: {\"type\": \"response.output_text.delta\", \"delta\": \n\n".into())
                        .await;
                return;
            }
        }
        match turn.fault {
            Some(Fault::DropMidStream) => {
                let _ = tx
                    .send(Err(std::io::Error::other("mock model: dropped mid-stream")))
                    .await;
                return;
            }
            Some(Fault::Stall { ms }) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                return;
            }
            Some(Fault::KeepAlive { ms, every_ms }) => {
                let until = Instant::now() + Duration::from_millis(ms);
                while Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(every_ms.max(1))).await;
                    if !send(": keep-alive\n\n".into()).await {
                        return;
                    }
                }
                return;
            }
            _ => {}
        }
        for text in frames.completion {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if !send(text).await {
                return;
            }
        }
        if let Some(recorded) = lock(&state).requests.get_mut(index) {
            recorded.answered_at = Some(Instant::now());
        }
    });
    let response = Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(ChannelBody(rx))
        .unwrap_or_else(|_| Response::new(ChannelBody(mpsc::channel(1).1)));
    Ok(response)
}
