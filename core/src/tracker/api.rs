//! What a host and a tracker say to each other: the inputs, the steps
//! they produce, and the inputs refused.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::ids::IdError;
use crate::op::{Millis, Op, Reply, Token};
use crate::protocol::BadReply;
use crate::scripts::Script;

#[cfg(doc)]
use crate::tracker::Tracker;

/// Everything a host tells a tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// Time passed; call at [`Step::next_tick`] (earlier is harmless).
    Tick,
    /// A socket connected to a namespace; `user: None` is anonymous.
    Connect {
        /// The socket's id, unique on this node.
        sid: String,
        /// The user it belongs to.
        #[serde(default)]
        user: Option<String>,
        /// Its namespace.
        namespace: String,
    },
    /// A socket disconnected (its user lingers for the grace period).
    Disconnect {
        /// The socket.
        sid: String,
    },
    /// A socket joined a room of its namespace.
    Join {
        /// The socket.
        sid: String,
        /// The room.
        room: String,
    },
    /// A socket left a room.
    Leave {
        /// The socket.
        sid: String,
        /// The room.
        room: String,
    },
    /// A connected socket's user changed (`user: None`: anonymous): its
    /// namespace and rooms move to the new user, with the transitions that
    /// implies (no grace period for the old user).
    Identify {
        /// The socket.
        sid: String,
        /// Its user from now on.
        #[serde(default)]
        user: Option<String>,
    },
    /// A connected socket's data (a JSON object, at most
    /// [`crate::Config::max_data_bytes`] long) replaces its previous data;
    /// `None` removes it. Shown cluster-wide while the socket has a user.
    SetData {
        /// The socket.
        sid: String,
        /// The JSON text of an object.
        #[serde(default)]
        data: Option<String>,
    },
    /// A low-level (engine) connection opened; it may carry sockets of
    /// several namespaces.
    ClientOpen {
        /// The connection's id, unique on this node.
        cid: String,
    },
    /// A low-level connection closed.
    ClientClose {
        /// The connection.
        cid: String,
    },
    /// The result of an [`Op`] this tracker asked for. Every op gets exactly
    /// one reply; a call that failed gets [`Reply::Error`].
    Reply {
        /// The op's token.
        token: Token,
        /// What the store replied.
        reply: Reply,
    },
    /// Leave the cluster cleanly: remove this node's share, then [`Event::Closed`].
    Shutdown,
}

/// What one call of [`Tracker::handle`] asks of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[must_use = "a step carries operations the host must run and events it must deliver"]
pub struct Step {
    /// Script calls to run, in this order, each answered with an
    /// [`Input::Reply`].
    pub ops: Vec<Op>,
    /// Events for the application.
    pub events: Vec<Event>,
    /// When to send the next [`Input::Tick`]; `None` once closed.
    pub next_tick: Option<Millis>,
}

/// An input the tracker refused. Nothing changed, except for
/// [`InputError::BadReply`]: the call it answers counts as failed, and the
/// tracker re-asserts its state on its next tick.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// An id is empty or too long.
    BadId(IdError),
    /// A connect of a socket that is connected.
    DuplicateSocket {
        /// The socket.
        sid: String,
    },
    /// An input about a socket that is not connected.
    UnknownSocket {
        /// The socket.
        sid: String,
    },
    /// An open of a client that is open.
    DuplicateClient {
        /// The client.
        cid: String,
    },
    /// A close of a client that is not open.
    UnknownClient {
        /// The client.
        cid: String,
    },
    /// A reply to no op in flight (answered already, or never asked).
    UnknownToken {
        /// The token replied to.
        token: Token,
    },
    /// A reply that is not what the script replies ([`BadReply`]).
    BadReply {
        /// The script the reply answers.
        script: Script,
        /// What was wrong.
        reason: String,
    },
    /// Data that is not the JSON text of an object, or is too long.
    BadData {
        /// The socket.
        sid: String,
        /// What is wrong with it.
        reason: String,
        /// It is too long (a JS `RangeError`), rather than malformed.
        too_long: bool,
    },
    /// The tracker is shutting down or closed.
    Closed,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::BadId(e) => e.fmt(f),
            InputError::DuplicateSocket { sid } => write!(f, "socket {sid:?} is already connected"),
            InputError::UnknownSocket { sid } => write!(f, "socket {sid:?} is not connected"),
            InputError::DuplicateClient { cid } => write!(f, "client {cid:?} is already open"),
            InputError::UnknownClient { cid } => write!(f, "client {cid:?} is not open"),
            InputError::UnknownToken { token } => {
                write!(
                    f,
                    "no operation with token {} is waiting for a reply",
                    token.0
                )
            }
            InputError::BadReply { script, reason } => {
                write!(
                    f,
                    "malformed reply to the {} script: {reason}",
                    script.name()
                )
            }
            InputError::BadData { sid, reason, .. } => {
                write!(f, "data of socket {sid:?}: {reason}")
            }
            InputError::Closed => f.write_str("the tracker is shut down"),
        }
    }
}

impl std::error::Error for InputError {}

impl From<BadReply> for InputError {
    fn from(e: BadReply) -> InputError {
        InputError::BadReply {
            script: e.script(),
            reason: e.reason(),
        }
    }
}

impl From<IdError> for InputError {
    fn from(e: IdError) -> InputError {
        InputError::BadId(e)
    }
}
