//! What one node reports for metrics: the core's [`Stats`] (the same
//! numbers the Node package exports), its local gauges, and the round-trip
//! times of its write calls, timed here because the core has no clock.
//! With the `prometheus` feature, `Presence::metrics` and
//! `Presence::register_metrics` export them (see the `prometheus` module, behind that feature).

use std::time::Duration;

use rollcall_core::{Stats, WRITE_SECONDS_BUCKETS};

/// Round-trip times of the write calls one node sent to its store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteLatency {
    /// Calls per bucket of [`WRITE_SECONDS_BUCKETS`] (not cumulative); the
    /// last entry counts the calls slower than every bound.
    per_bucket: [u64; WRITE_SECONDS_BUCKETS.len() + 1],
    sum_seconds: f64,
}

impl WriteLatency {
    /// Counts one call that took `took`.
    pub fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = WRITE_SECONDS_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(WRITE_SECONDS_BUCKETS.len());
        self.per_bucket[bucket] += 1;
        self.sum_seconds += seconds;
    }

    /// Calls timed so far.
    pub fn count(&self) -> u64 {
        self.per_bucket.iter().sum()
    }

    /// Their total time, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_seconds
    }

    /// `(upper bound, calls in that bucket)`, not cumulative, ending with
    /// `(f64::INFINITY, slower calls)`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        WRITE_SECONDS_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.per_bucket)
            .collect()
    }
}

/// One node's numbers at one moment (see [`crate::Presence::stats`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStats {
    /// What the tracker has sent and emitted since it started.
    pub stats: Stats,
    /// Sockets connected to this node.
    pub local_sockets: u64,
    /// Distinct users with a socket on this node.
    pub local_users: u64,
    /// Engine-level clients open on this node.
    pub local_clients: u64,
    /// Round-trip times of this node's write calls.
    pub write_seconds: WriteLatency,
}
