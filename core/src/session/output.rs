//! What a session asks of its host after an input: the I/O to do. Empty on
//! most inputs of the hot path (they coalesce into a write in flight).

use serde::Serialize;

use crate::event::Event;
use crate::op::{Millis, Op};

/// The host's work, gathered since it last took it. Serialized (for the
/// WASM binding) with only the fields that say something.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Output {
    /// Script calls to send to Redis, in order, each answered with a reply
    /// (never in embedded mode: there they run inside the session).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<Op>,
    /// Events for the application, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Arm the timer for this time, replacing the armed one, then feed a
    /// tick. `None`: the armed timer still holds (an early tick is
    /// harmless and asks again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick: Option<Millis>,
    /// Embedded mode: writes are held; call `Session::flush` soon, once
    /// the current burst of inputs is in (they coalesce into one write).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flush: bool,
    /// Recording: trace lines are pending; take them soon (once the
    /// current burst is in).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub trace: bool,
    /// The node is registered: it counts cluster-wide (once per session).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ready: bool,
    /// The node's first registration failed with this store error: the
    /// store is unreachable or refuses the scripts (once per session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Inputs ignored by the policy, as messages (see `Fed::Ignored`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Output {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
            && self.events.is_empty()
            && self.tick.is_none()
            && !self.flush
            && !self.trace
            && !self.ready
            && self.failed.is_none()
            && self.warnings.is_empty()
    }

    /// Clears it, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.events.clear();
        self.tick = None;
        self.flush = false;
        self.trace = false;
        self.ready = false;
        self.failed = None;
        self.warnings.clear();
    }
}
