//! The presence state machine of one server process, in parts:
//!
//! - `api`: what a host and a tracker say to each other (inputs, steps,
//!   refusals);
//! - `state`: the phases, the writes and the calls in flight;
//! - `inputs`: what each input does;
//! - `schedule`: what is sent next, on each lane;
//! - `encode`: a write as a script call ([`crate::protocol`] arguments);
//! - `transitions`: what each reply does (the replies are parsed by
//!   [`crate::protocol::ScriptReply`]).

mod api;
mod encode;
mod inputs;
mod schedule;
mod state;
mod transitions;

pub use api::{Input, InputError, Step};

use crate::config::{Config, ConfigError};
use crate::ids::{self, IdError, IdKind};
use crate::local::Local;
use crate::op::Millis;
#[cfg(doc)]
use crate::op::{Op, Reply};
use crate::schema::{Field, Schema, incarnation};
use crate::stats::Stats;
use crate::tracker::state::{Old, Pending, Phase, Write};

#[cfg(doc)]
use crate::event::Event;

/// Presence bookkeeping for one server process, driven by its host.
///
/// Call order: create with [`Tracker::new`], then feed every input to
/// [`Tracker::handle`] with the host's current time: a first `Tick` at
/// start-up, socket and client inputs as they happen, a `Tick` at each
/// [`Step::next_tick`], and an [`Input::Reply`] for every [`Op`] of every
/// [`Step`] (in any order; a failed call gets [`Reply::Error`]). Run the ops,
/// deliver the events. After `Shutdown`, keep answering ops and ticking until
/// [`Event::Closed`].
///
/// Writes go one at a time: inputs that arrive while a write is in flight
/// coalesce into the next one, as net deltas. Reaps of dead nodes run beside
/// them, one at a time too.
///
/// No write carries more than [`Config::max_write_fields`] (field, count)
/// pairs. A larger burst goes in several applies (by field name; the rest
/// waits for the next call). A re-assert of a larger local truth rotates:
/// the node registers a new incarnation while the old one stays live,
/// writes its whole truth to the new one in bounded applies, then retires
/// the old one and reaps it itself, slice by slice, through its write lane
/// (other nodes may continue that reap, as for any dead incarnation). Until
/// the old share is reaped the node is counted twice (an overcount, never
/// an undercount: no user flickers offline). Users who really went offline
/// meanwhile are reported by that reap, with reason `disconnect` when this
/// node runs it (`reaped` when another node does, `shutdown` during a
/// shutdown). If the rotation outlasts the old lease (`ttl_ms`), other nodes
/// reap the old share early, as they would for any lapsed lease. After
/// `Fenced` (the incarnation is gone already) a large re-assert is just the
/// registration and the bounded applies.
#[derive(Debug)]
pub struct Tracker {
    config: Config,
    schema: Schema,
    node: String,
    local: Local,
    phase: Phase,
    /// The current (or last) registration number.
    k: u64,
    /// Acknowledged writes of this registration.
    version: u64,
    needs_reassert: bool,
    /// Registered and nothing written for this registration yet: Redis
    /// holds nothing of it, so a re-assert may go as plain applies.
    fresh: bool,
    /// Earlier incarnations left by rotations, oldest first.
    old: Vec<Old>,
    write: Option<Pending<Write>>,
    reap: Option<Pending<()>>,
    /// A write whose outcome is unknown (its reply lost or an error), to
    /// be sent again as the same call at `retry_at`.
    write_again: Option<Pending<Write>>,
    /// The same for the reap lane, at `reap_due`.
    reap_again: Option<Pending<()>>,
    next_token: u64,
    heartbeat_due: Millis,
    /// When the incarnation a rotation keeps is renewed next.
    old_renew_due: Millis,
    reap_due: Millis,
    /// After a failed write, none is sent before this time.
    retry_at: Millis,
    /// Socket and client inputs accepted so far (the read barrier).
    inputs: u64,
    /// Every input up to this one is acknowledged by the store.
    acked_inputs: u64,
    /// The host's per-process nonce: registration numbers start above it,
    /// so an incarnation id is never used twice (see [`Tracker::with_nonce`]).
    nonce: u64,
    /// The store said ROTATE: it holds more of this incarnation than a
    /// re-assert may walk, so the next re-assert is a rotation.
    must_rotate: bool,
    /// No registration of this process has been granted yet: the next one
    /// replaces (fences) an incarnation of the same node id left by an
    /// earlier process.
    first_registration: bool,
    /// Totals for metrics.
    stats: Stats,
}

impl Tracker {
    /// A tracker for node `node` (unique among live processes; hosts make a
    /// random one by default).
    pub fn new(config: Config, node: &str) -> Result<Tracker, ConfigError> {
        Tracker::with_nonce(config, node, 0)
    }

    /// Largest nonce accepted: registration numbers stay exact in Lua's
    /// double-precision numbers (and short in keys).
    pub const MAX_NONCE: u64 = (1 << 40) - 1;

    /// A tracker whose registration numbers start above `nonce`. Hosts pass
    /// a random nonce per process, at most [`Tracker::MAX_NONCE`] (a larger
    /// one is a [`ConfigError`] for option `nonce`): a new process with the same node id
    /// then never reuses an incarnation id of an earlier one, even after a
    /// reap forgot the node, so a paused process that resumes is fenced
    /// and cannot write into its successor's share. [`Tracker::new`] is
    /// nonce 0, for tests and replays of old traces.
    pub fn with_nonce(config: Config, node: &str, nonce: u64) -> Result<Tracker, ConfigError> {
        if nonce > Tracker::MAX_NONCE {
            return Err(ConfigError {
                option: "nonce",
                out_of_range: true,
                message: format!(
                    "nonce must be at most {} (2^40 - 1), got {nonce}",
                    Tracker::MAX_NONCE
                ),
            });
        }
        config.validate()?;
        ids::check(IdKind::Node, node).map_err(|e| ConfigError {
            option: "node",
            out_of_range: matches!(e, IdError::TooLong { .. }),
            message: e.to_string(),
        })?;
        Ok(Tracker {
            schema: Schema::new(&config.prefix),
            config,
            node: node.to_owned(),
            local: Local::new(),
            phase: Phase::Unregistered,
            k: nonce,
            version: 0,
            needs_reassert: true,
            fresh: false,
            old: Vec::new(),
            write: None,
            reap: None,
            write_again: None,
            reap_again: None,
            next_token: 1,
            heartbeat_due: 0,
            old_renew_due: 0,
            reap_due: 0,
            retry_at: 0,
            inputs: 0,
            acked_inputs: 0,
            nonce,
            must_rotate: false,
            first_registration: true,
            stats: Stats::default(),
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The keys of its prefix.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Its node id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The nonce this tracker was made with (recorded in trace headers).
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The current incarnation id, once registered.
    pub fn incarnation(&self) -> Option<String> {
        matches!(self.phase, Phase::Live | Phase::Retiring | Phase::Leaving)
            .then(|| incarnation(&self.node, self.k))
    }

    /// Shutting down: the users it still takes offline leave with it.
    pub(crate) fn leaving(&self) -> bool {
        matches!(self.phase, Phase::Retiring | Phase::Leaving)
    }

    /// Whether it is closed ([`Event::Closed`] was emitted).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Sockets connected to this node.
    pub fn local_sockets(&self) -> usize {
        self.local.socket_count()
    }

    /// Distinct users with a socket on this node, in any namespace
    /// (sockets lingering in a grace period included). Walks the node's
    /// counters: for a metrics scrape, not for every event.
    pub fn local_users(&self) -> usize {
        self.local.user_count()
    }

    /// What this tracker has sent and emitted so far (for metrics).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Low-level clients open on this node.
    pub fn local_clients(&self) -> usize {
        self.local.client_count()
    }

    /// What this node wants counted for one field (lingering sockets included).
    pub fn local_count(&self, field: &Field) -> u32 {
        self.local.desired_of(field)
    }

    /// This node's whole local truth: every field with its count, sorted.
    pub fn local_fields(&self) -> Vec<(String, u32)> {
        self.local.desired_fields()
    }

    /// The data this node's sockets show: (marker field, JSON), sorted by
    /// field ([`crate::schema::data_field`]).
    pub fn local_data(&self) -> Vec<(String, String)> {
        self.local.desired_data()
    }

    /// Ids of the sockets connected to this node, sorted.
    pub fn local_socket_ids(&self) -> Vec<&str> {
        self.local.socket_ids()
    }

    /// A mark for read-your-writes: a read that must reflect every socket
    /// and client input given so far takes this mark, and runs once
    /// [`Tracker::is_visible`] says the store holds them.
    pub fn read_barrier(&self) -> u64 {
        self.inputs
    }

    /// Whether the store holds the effect of every input up to `barrier`
    /// (from [`Tracker::read_barrier`]): acknowledged by a write, or with
    /// nothing to write (the inputs cancelled out). Hosts hold a read until
    /// then; while the node is fenced or the store fails, that is not before
    /// the node has re-registered and re-asserted.
    pub fn is_visible(&self, barrier: u64) -> bool {
        barrier <= self.acked_inputs
            || (self.phase == Phase::Live
                && self.write.is_none()
                && self.write_again.is_none()
                && !self.needs_reassert
                && !self.local.has_dirty())
    }

    /// Feeds one input at host time `now`.
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<Step, InputError> {
        let mut step = Step::default();
        let changes_local = !matches!(input, Input::Tick | Input::Reply { .. } | Input::Shutdown);
        self.accept(now, input, &mut step)?;
        if changes_local {
            self.inputs += 1;
        }
        self.local.expire_lingering(now);
        self.pump(now, &mut step);
        step.next_tick = self.next_tick();
        self.stats
            .count(step.ops.iter().map(|op| op.script), &step.events);
        Ok(step)
    }

    /// Whether the reap lane may send: always while live; while retiring
    /// only to resend a reap in doubt (see [`Tracker::holds_retire`]).
    fn reap_lane_open(&self) -> bool {
        match self.phase {
            Phase::Live => true,
            Phase::Retiring => self.reap_again.as_ref().is_some_and(|p| p.k == self.k),
            _ => false,
        }
    }

    /// Whether the retire waits for the reap lane: a reap of this node's
    /// in flight or in doubt is answered (with its kept reply, if it ran)
    /// only while this node is registered.
    fn holds_retire(&self) -> bool {
        self.phase == Phase::Retiring && (self.reap.is_some() || self.reap_lane_open())
    }

    /// When the tracker next wants a tick (also after a refused input).
    pub fn next_tick(&self) -> Option<Millis> {
        if self.phase == Phase::Closed {
            return None;
        }
        if self.holds_retire() && self.write.is_none() && self.write_again.is_none() {
            // The retire waits for the reap lane alone: for the time of its
            // resend, or (in flight) for its reply.
            return self.reap.is_none().then_some(self.reap_due);
        }
        let mut due = self.heartbeat_due.max(self.retry_at);
        if self.reap.is_none() && self.reap_lane_open() {
            due = due.min(self.reap_due);
        }
        let wants_write = self.phase != Phase::Live
            || self.write_again.is_some()
            || self.needs_reassert
            || self.local.has_dirty()
            || !self.old.is_empty();
        if self.write.is_none() && wants_write {
            due = due.min(self.retry_at);
        }
        if self.phase == Phase::Live && self.old.iter().any(|o| !o.retired) {
            due = due.min(self.old_renew_due);
        }
        if let Some(linger) = self.local.next_linger_deadline() {
            due = due.min(linger);
        }
        Some(due)
    }
}
