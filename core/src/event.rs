//! What the core tells the application.

use serde::{Deserialize, Serialize};

use crate::scope::Scope;
use crate::scripts::Script;

/// Why a user went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineReason {
    /// Their last socket disconnected (after the grace period, if any).
    Disconnect,
    /// The node that held their last socket died and was reaped by this node.
    Reaped,
    /// The node that held their last socket shut down cleanly.
    Shutdown,
}

impl OfflineReason {
    /// Its name in events and metrics: `disconnect`, `reaped`, `shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineReason::Disconnect => "disconnect",
            OfflineReason::Reaped => "reaped",
            OfflineReason::Shutdown => "shutdown",
        }
    }
}

/// An event for the application. User transitions are cluster-wide: each one
/// is emitted by the node whose script call made it, exactly once while that
/// node lives. When it dies (or is fenced) before handling the reply, the
/// node that finishes reaping it emits the transitions of its last calls
/// again (at least once across a death): a repeat has the same `change_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The user's first socket in the scope, cluster-wide.
    UserOnline {
        /// Where: global, a namespace or a room.
        scope: Scope,
        /// Who.
        user: String,
        /// The same for every report of this transition, by any node
        /// (`<incarnation>:<call id>:<index>`): drop a repeat by it.
        change_id: String,
    },
    /// The user's last socket in the scope is gone, cluster-wide.
    UserOffline {
        /// Where: global, a namespace or a room.
        scope: Scope,
        /// Who.
        user: String,
        /// Why: a disconnect (or leave), a reap, a shutdown.
        reason: OfflineReason,
        /// See [`Event::UserOnline`]'s.
        change_id: String,
    },
    /// The user's data changed (a socket set, changed or dropped its
    /// data), cluster-wide; reported by the node whose call made it.
    UserUpdated {
        /// Who.
        user: String,
        /// The user's data after the change: one JSON object text per
        /// socket with data, in a stable order.
        data: Vec<String>,
        /// See [`Event::UserOnline`]'s.
        change_id: String,
    },
    /// This node finished reaping a dead node.
    NodeReaped {
        /// The dead node's id.
        node: String,
        /// The incarnation that was reaped.
        incarnation: String,
    },
    /// This node had been reaped while alive (paused, cut off, or Redis lost
    /// its data). It registers again and re-asserts its sockets.
    Fenced {
        /// The incarnation that was fenced.
        incarnation: String,
    },
    /// A call failed; the core retries it and heals with a re-assert.
    StoreError {
        /// The script of the call.
        script: Script,
        /// What the store (or the reply's shape) said.
        message: String,
    },
    /// Shutdown is complete: nothing of this node is left in the store.
    Closed,
}

/// The user transition an event carries, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition<'a> {
    /// Where.
    pub scope: &'a Scope,
    /// Who.
    pub user: &'a str,
    /// Came online (`true`) or went offline.
    pub online: bool,
    /// The transition's change id (the same in every report of it).
    pub change_id: &'a str,
}

impl Event {
    /// The user transition of a `UserOnline` or `UserOffline`; `None` for
    /// every other event.
    pub fn transition(&self) -> Option<Transition<'_>> {
        let (scope, user, online, change_id) = match self {
            Event::UserOnline {
                scope,
                user,
                change_id,
            } => (scope, user, true, change_id),
            Event::UserOffline {
                scope,
                user,
                change_id,
                ..
            } => (scope, user, false, change_id),
            _ => return None,
        };
        Some(Transition {
            scope,
            user,
            online,
            change_id,
        })
    }
}
