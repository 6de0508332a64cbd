//! Steering over ACP: `_cox/pause`, `_cox/steer` and `_cox/resume`, extension methods (ACP
//! reserves `_`-prefixed names for them) with the terminal's barrier semantics:
//!
//! - `_cox/pause {sessionId}` cancels the model request in flight and lets no new tool call
//!   start (a command already running may finish). It is answered `{"paused": true}` once the
//!   barrier is up — from then on nothing new runs until steer or resume.
//! - `_cox/steer {sessionId, text}` adds the directive to the conversation, pins it for the rest
//!   of the session (it survives compaction and reopening), and goes on; answered
//!   `{"steered": true}` once applied. The directive also shows as a `user_message_chunk`.
//! - `_cox/resume {sessionId}` goes on where the session stopped; answered `{"resumed": true}`.
//!
//! Each is refused when no prompt is running. `initialize` advertises them under
//! `agentCapabilities._meta["cox.steering"]`.

use std::sync::Arc;
use std::time::Duration;

use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{
    Client, Error as AcpError, ErrorCode, JsonRpcRequest, JsonRpcResponse, v1::schema::Meta,
};
use cox_protocol::Op;
use serde::{Deserialize, Serialize};

use super::{Server, error};

/// What an extension request waits for the session to confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Paused,
    Resumed,
    Steered,
}

/// How long a request waits for its confirmation before it is answered with an error. The
/// session confirms a pause at once and a steer when it applies it; a prompt that ends first
/// answers the waiting request at once (with an error), so this bound is only a backstop.
const CONFIRM_WITHIN: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize, Deserialize, JsonRpcRequest)]
#[request(method = "_cox/pause", response = Done)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    pub session_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonRpcRequest)]
#[request(method = "_cox/steer", response = Done)]
#[serde(rename_all = "camelCase")]
pub struct Steer {
    pub session_id: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonRpcRequest)]
#[request(method = "_cox/resume", response = Done)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    pub session_id: String,
}

/// A steering request: its session, the op it sends, and the event that confirms it.
pub trait Steering: Send + 'static {
    const WAIT: Wait;
    /// The verb, for errors ("nothing to pause").
    const WORD: &'static str;
    fn session_id(&self) -> &str;
    fn op(&self) -> Op;
}

impl Steering for Pause {
    const WAIT: Wait = Wait::Paused;
    const WORD: &'static str = "pause";
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn op(&self) -> Op {
        Op::Pause
    }
}

impl Steering for Steer {
    const WAIT: Wait = Wait::Steered;
    const WORD: &'static str = "steer";
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn op(&self) -> Op {
        Op::Steer {
            text: self.text.clone(),
        }
    }
}

impl Steering for Resume {
    const WAIT: Wait = Wait::Resumed;
    const WORD: &'static str = "resume";
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn op(&self) -> Op {
        Op::Resume
    }
}

/// Answers a steering request once the session confirms it, outside the SDK's dispatch loop (the
/// confirmation comes with later traffic).
pub fn handle<R: Steering>(
    server: Arc<Server>,
    request: R,
    responder: Responder<Done>,
    cx: ConnectionTo<Client>,
) -> Result<(), AcpError> {
    cx.spawn(async move {
        let done = steer(
            &server,
            request.session_id(),
            request.op(),
            R::WAIT,
            R::WORD,
        )
        .await;
        responder.respond_with_result(done)
    })
}

/// `{"paused": true}`, `{"steered": true}` or `{"resumed": true}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonRpcResponse)]
pub struct Done(pub serde_json::Map<String, serde_json::Value>);

/// What `initialize` says about the extensions.
pub fn advertised() -> Meta {
    let value = serde_json::json!({
        "cox.steering": {
            "pause": "_cox/pause",
            "steer": "_cox/steer",
            "resume": "_cox/resume",
            "semantics": "pause: answered once no new action will start (the model request in \
                          flight is cancelled; a running command may finish); steer: the \
                          directive is pinned for the rest of the session, then the task goes \
                          on; resume: goes on unchanged"
        }
    });
    match value {
        serde_json::Value::Object(map) => map,
        _ => Meta::new(),
    }
}

/// Sends `op` to the session and answers once the session confirms `wait`.
async fn steer(
    server: &Server,
    session_id: &str,
    op: Op,
    wait: Wait,
    word: &str,
) -> Result<Done, AcpError> {
    let slot = server.slot(session_id)?;
    if !slot.prompt_running() {
        return Err(error(
            ErrorCode::INVALID_REQUEST,
            format!("nothing to {word}: no prompt is running in session `{session_id}`"),
        ));
    }
    let Some(ops) = slot.ops() else {
        return Err(error(
            ErrorCode::INTERNAL_ERROR,
            "the session is not running",
        ));
    };
    let confirmed = slot.wait_for(wait);
    if ops.send(op).await.is_err() {
        return Err(error(
            ErrorCode::INTERNAL_ERROR,
            "the session stopped taking ops",
        ));
    }
    match tokio::time::timeout(CONFIRM_WITHIN, confirmed).await {
        Ok(Ok(())) => {
            let key = match wait {
                Wait::Paused => "paused",
                Wait::Resumed => "resumed",
                Wait::Steered => "steered",
            };
            let mut map = serde_json::Map::new();
            map.insert(key.into(), serde_json::Value::Bool(true));
            Ok(Done(map))
        }
        _ => Err(error(
            ErrorCode::INTERNAL_ERROR,
            format!(
                "the session did not confirm the {word} (it ended, or the prompt finished first)"
            ),
        )),
    }
}
