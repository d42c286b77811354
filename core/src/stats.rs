//! What a tracker has done since it started, for metrics: script calls by
//! script and events by kind. Counted in [`crate::Tracker::handle`] from the
//! steps it returns, so every host reports the same numbers for the same
//! inputs; timings are the host's (the core has no clock).

use crate::event::Event;
use crate::scope::Scope;
use crate::scripts::Script;
use serde::Serialize;

/// Totals since the tracker was made. Calls count every send, retries of a
/// call whose reply was lost included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Calls on the write lane: register, apply, reassert, heartbeat, retire.
    pub writes: u64,
    /// Re-assert calls (this node wrote its whole state again: after a
    /// drift, a fence, a failed call or a store that lost its data).
    pub reasserts: u64,
    /// Reap calls (slices included).
    pub reaps: u64,
    /// Cluster-wide "user online" transitions this node emitted (global scope).
    pub users_online: u64,
    /// Cluster-wide "user offline" transitions this node emitted (global scope).
    pub users_offline: u64,
    /// Per-namespace and per-room transitions this node emitted.
    pub scope_transitions: u64,
    /// Dead nodes this node finished reaping.
    pub reaped_nodes: u64,
    /// Times this node found itself fenced (reaped while alive).
    pub fenced: u64,
    /// Failed calls (each is retried).
    pub store_errors: u64,
}

impl Stats {
    /// Adds what one step sends and emits.
    pub(crate) fn count(&mut self, scripts: impl Iterator<Item = Script>, events: &[Event]) {
        for script in scripts {
            match script {
                Script::Register | Script::Apply | Script::Heartbeat | Script::Retire => {
                    self.writes += 1
                }
                Script::Reassert => {
                    self.writes += 1;
                    self.reasserts += 1;
                }
                Script::Reap => self.reaps += 1,
                // Reads are built by the host (Query), never by a step.
                Script::Read => {}
            }
        }
        for event in events {
            match event {
                Event::UserOnline {
                    scope: Scope::Global,
                    ..
                } => self.users_online += 1,
                Event::UserOffline {
                    scope: Scope::Global,
                    ..
                } => self.users_offline += 1,
                Event::UserOnline { .. } | Event::UserOffline { .. } => self.scope_transitions += 1,
                Event::NodeReaped { .. } => self.reaped_nodes += 1,
                Event::Fenced { .. } => self.fenced += 1,
                Event::StoreError { .. } => self.store_errors += 1,
                _ => {}
            }
        }
    }
}
