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
    /// Users' data updates this node emitted.
    pub users_updated: u64,
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
            // Reads are built by the host (Query), never by a step.
            self.writes += u64::from(script.is_write());
            self.reasserts += u64::from(script == Script::Reassert);
            self.reaps += u64::from(script == Script::Reap);
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
                Event::UserUpdated { .. } => self.users_updated += 1,
                Event::NodeReaped { .. } => self.reaped_nodes += 1,
                Event::Fenced { .. } => self.fenced += 1,
                Event::StoreError { .. } => self.store_errors += 1,
                _ => {}
            }
        }
    }
}

/// The kind of a metric, as the Prometheus text format names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// A value that goes up and down.
    Gauge,
    /// A total that only grows (its name ends in `_total`).
    Counter,
    /// Round-trip times in buckets ([`WRITE_SECONDS_BUCKETS`]).
    Histogram,
}

/// One metric every host exports: its name, its help text and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Metric {
    /// The metric's name (counters end in `_total`).
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// Gauge, counter or histogram.
    pub kind: MetricKind,
}

const fn metric(name: &'static str, kind: MetricKind, help: &'static str) -> Metric {
    Metric { name, help, kind }
}

/// Upper bounds (seconds) of `rollcall_write_seconds`, the round-trip time
/// of the write calls a host sends (timed by the host: the core has no clock).
pub const WRITE_SECONDS_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Every metric the hosts export, in the order they export them. The
/// counters are [`Stats`]; the `rollcall_cluster_*` gauges are reads of the
/// store, left out of a scrape when the read fails.
pub const METRICS: [Metric; 12] = {
    use MetricKind::{Counter, Gauge, Histogram};
    [
        metric(
            "rollcall_local_sockets",
            Gauge,
            "Sockets connected to this server.",
        ),
        metric(
            "rollcall_local_users",
            Gauge,
            "Distinct users with a socket on this server.",
        ),
        metric(
            "rollcall_cluster_sockets",
            Gauge,
            "Sockets connected to every server of the cluster.",
        ),
        metric(
            "rollcall_cluster_users",
            Gauge,
            "Distinct users online in the cluster.",
        ),
        metric(
            "rollcall_writes_total",
            Counter,
            "Write calls sent to the store (register, apply, reassert, heartbeat, retire; retries included).",
        ),
        metric(
            "rollcall_write_seconds",
            Histogram,
            "Round-trip time of the write calls sent to the store.",
        ),
        metric(
            "rollcall_reasserts_total",
            Counter,
            "Re-assert calls: this server wrote its whole state again (after a drift, a fence, a failed call).",
        ),
        metric(
            "rollcall_reap_calls_total",
            Counter,
            "Reap calls sent (one per slice).",
        ),
        metric(
            "rollcall_fenced_total",
            Counter,
            "Times this server found itself reaped while alive.",
        ),
        metric(
            "rollcall_reaped_nodes_total",
            Counter,
            "Dead servers this server finished reaping.",
        ),
        metric(
            "rollcall_store_errors_total",
            Counter,
            "Store calls that failed (each is retried).",
        ),
        metric(
            "rollcall_events_total",
            Counter,
            "Events this server emitted, by type.",
        ),
    ]
};

impl Stats {
    /// `rollcall_events_total` by its `type` label, in export order.
    pub fn events_by_type(&self) -> [(&'static str, u64); 7] {
        [
            ("user_online", self.users_online),
            ("user_offline", self.users_offline),
            ("scope_transition", self.scope_transitions),
            ("user_updated", self.users_updated),
            ("node_reaped", self.reaped_nodes),
            ("fenced", self.fenced),
            ("store_error", self.store_errors),
        ]
    }

    /// The samples of the counter `name` of [`METRICS`] as `(type label,
    /// value)`: one unlabelled sample, or one per `type` for
    /// `rollcall_events_total`; `None` for a name that is not a counter.
    /// Both hosts export counters through this.
    pub fn counter_samples(&self, name: &str) -> Option<Vec<(Option<&'static str>, u64)>> {
        if name == "rollcall_events_total" {
            return Some(self.events_by_type().map(|(t, v)| (Some(t), v)).to_vec());
        }
        self.counter(name).map(|v| vec![(None, v)])
    }

    /// The value of each plain counter of [`METRICS`], by name.
    pub fn counter(&self, name: &str) -> Option<u64> {
        Some(match name {
            "rollcall_writes_total" => self.writes,
            "rollcall_reasserts_total" => self.reasserts,
            "rollcall_reap_calls_total" => self.reaps,
            "rollcall_fenced_total" => self.fenced,
            "rollcall_reaped_nodes_total" => self.reaped_nodes,
            "rollcall_store_errors_total" => self.store_errors,
            _ => return None,
        })
    }
}
