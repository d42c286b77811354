//! The presence state machine of one server process.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::event::{Event, OfflineReason};
use crate::ids::{self, IdError, IdKind};
use crate::local::{Key, Local, Refusal};
use crate::op::{Millis, Op, Reply, Token};
use crate::schema::{Field, Schema, incarnation, split_incarnation};
use crate::scope::Scope;
use crate::scripts::Script;
use crate::stats::Stats;

/// Everything a host tells a tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// Time passed; call at [`Step::next_tick`] (earlier is harmless).
    Tick,
    /// A socket connected to a namespace; `user: None` is anonymous.
    Connect {
        sid: String,
        #[serde(default)]
        user: Option<String>,
        namespace: String,
    },
    Disconnect {
        sid: String,
    },
    Join {
        sid: String,
        room: String,
    },
    Leave {
        sid: String,
        room: String,
    },
    /// A low-level (engine) connection opened; it may carry sockets of
    /// several namespaces.
    ClientOpen {
        cid: String,
    },
    ClientClose {
        cid: String,
    },
    /// The result of an [`Op`] this tracker asked for. Every op gets exactly
    /// one reply; a call that failed gets [`Reply::Error`].
    Reply {
        token: Token,
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
    BadId(IdError),
    DuplicateSocket {
        sid: String,
    },
    UnknownSocket {
        sid: String,
    },
    DuplicateClient {
        cid: String,
    },
    UnknownClient {
        cid: String,
    },
    UnknownToken {
        token: Token,
    },
    BadReply {
        script: Script,
        reason: String,
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
            InputError::Closed => f.write_str("the tracker is shut down"),
        }
    }
}

impl std::error::Error for InputError {}

impl From<IdError> for InputError {
    fn from(e: IdError) -> InputError {
        InputError::BadId(e)
    }
}

/// The one write this node has in flight.
#[derive(Debug)]
enum Write {
    /// `keep`: a rotation away from this registration number, which stays
    /// live until the new incarnation holds the whole local truth.
    Register {
        keep: Option<u64>,
    },
    Apply(Vec<(Key, i64)>),
    Reassert {
        snapshot: Vec<(Key, u32)>,
        version: u64,
    },
    Heartbeat,
    Retire,
    SelfReap,
    /// Renew the lease of the earlier incarnation a rotation keeps (a
    /// heartbeat whose version never matches: it renews, then says DRIFT),
    /// so its users stay online however long the rotation takes.
    RenewOld(u64),
    /// Retire an earlier incarnation of this node, left by a rotation.
    RetireOld(u64),
    /// Reap a slice of an earlier incarnation of this node.
    ReapOld(u64),
}

/// An earlier incarnation of this node, left live by a rotation, to be
/// retired and reaped once the current one holds the whole local truth.
#[derive(Debug, Clone, Copy)]
struct Old {
    k: u64,
    /// Retired (in the dead set): reap it, slice by slice.
    retired: bool,
}

#[derive(Debug)]
struct Pending<T> {
    token: Token,
    what: T,
    /// The read barrier this write makes visible once acknowledged (see
    /// [`Tracker::read_barrier`]).
    covers: u64,
    /// The registration the call was made for: a FENCED reply of an older
    /// registration is news already handled.
    k: u64,
    /// The call as sent, when it carries a call id: a failed call (its
    /// reply lost, or an error) is sent again as this same call, and the
    /// store answers a call that ran already with its kept reply.
    sent: Option<Op>,
}

/// A call with a call id goes again, unchanged but for its token.
fn resend(token: Token, sent: &Op) -> Op {
    Op {
        token,
        ..sent.clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not (or no longer) registered: the next write is a register.
    Unregistered,
    Live,
    /// Shutdown asked; retire once the write in flight is answered.
    Retiring,
    /// Retired: reaping its own share, slice by slice.
    Leaving,
    Closed,
}

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

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

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

    /// When the tracker next wants a tick (also after a refused input).
    pub fn next_tick(&self) -> Option<Millis> {
        if self.phase == Phase::Closed {
            return None;
        }
        let mut due = self.heartbeat_due.max(self.retry_at);
        if self.reap.is_none() && self.phase == Phase::Live {
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

    fn accept(&mut self, now: Millis, input: Input, step: &mut Step) -> Result<(), InputError> {
        let open = !matches!(self.phase, Phase::Retiring | Phase::Leaving | Phase::Closed);
        let refuse_closed = |is_socket_input: bool| {
            if is_socket_input && !open {
                Err(InputError::Closed)
            } else {
                Ok(())
            }
        };
        match input {
            Input::Tick => Ok(()),
            Input::Connect {
                sid,
                user,
                namespace,
            } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                ids::check(IdKind::Namespace, &namespace)?;
                if let Some(u) = &user {
                    ids::check(IdKind::User, u)?;
                }
                self.local
                    .connect(&sid, user.as_deref(), &namespace)
                    .map_err(|_| InputError::DuplicateSocket { sid })
            }
            Input::Disconnect { sid } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                self.local
                    .disconnect(&sid, now, self.config.grace_ms)
                    .map_err(|_| InputError::UnknownSocket { sid })
            }
            Input::Join { sid, room } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                ids::check(IdKind::Room, &room)?;
                self.local
                    .join(&sid, &room)
                    .map(drop)
                    .map_err(|_| InputError::UnknownSocket { sid })
            }
            Input::Leave { sid, room } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                ids::check(IdKind::Room, &room)?;
                self.local
                    .leave(&sid, &room)
                    .map(drop)
                    .map_err(|_| InputError::UnknownSocket { sid })
            }
            Input::ClientOpen { cid } => {
                refuse_closed(true)?;
                ids::check(IdKind::Client, &cid)?;
                self.local.client_open(&cid).map_err(|r| match r {
                    Refusal::Duplicate => InputError::DuplicateClient { cid },
                    Refusal::Unknown => unreachable!("open never reports unknown"),
                })
            }
            Input::ClientClose { cid } => {
                refuse_closed(true)?;
                ids::check(IdKind::Client, &cid)?;
                self.local
                    .client_close(&cid)
                    .map_err(|_| InputError::UnknownClient { cid })
            }
            Input::Reply { token, reply } => self.on_reply(now, token, reply, step),
            Input::Shutdown => {
                match self.phase {
                    Phase::Unregistered if self.write.is_none() => {
                        self.phase = Phase::Closed;
                        step.events.push(Event::Closed);
                    }
                    Phase::Unregistered | Phase::Live => self.phase = Phase::Retiring,
                    Phase::Retiring | Phase::Leaving | Phase::Closed => {}
                }
                self.local.clear_lingering();
                Ok(())
            }
        }
    }

    // ----- replies -----

    fn on_reply(
        &mut self,
        now: Millis,
        token: Token,
        reply: Reply,
        step: &mut Step,
    ) -> Result<(), InputError> {
        if self.write.as_ref().is_some_and(|p| p.token == token) {
            let pending = self.write.take().expect("checked");
            return self.on_write_reply(now, pending, reply, step);
        }
        if self.reap.as_ref().is_some_and(|p| p.token == token) {
            let pending = self.reap.take().expect("checked");
            return self.on_reap_reply(now, pending, reply, step);
        }
        Err(InputError::UnknownToken { token })
    }

    fn on_write_reply(
        &mut self,
        now: Millis,
        pending: Pending<Write>,
        reply: Reply,
        step: &mut Step,
    ) -> Result<(), InputError> {
        let script = script_of(&pending.what);
        if let Reply::Error { error } = &reply {
            step.events.push(Event::StoreError {
                script,
                message: error.clone(),
            });
            self.write_in_doubt(now, pending);
            return Ok(());
        }
        let parsed = match ScriptReply::parse(&reply) {
            Ok(p) => p,
            Err(reason) => {
                self.write_in_doubt(now, pending);
                return Err(InputError::BadReply { script, reason });
            }
        };
        let leaving = matches!(self.phase, Phase::Retiring | Phase::Leaving);
        let reason = match pending.what {
            Write::SelfReap => OfflineReason::Shutdown,
            Write::ReapOld(_) if leaving => OfflineReason::Shutdown,
            _ => OfflineReason::Disconnect,
        };
        let events = match parsed.transitions(reason) {
            Ok(e) => e,
            Err(reason) => {
                self.write_in_doubt(now, pending);
                return Err(InputError::BadReply { script, reason });
            }
        };
        let bad = |reason: String| Err(InputError::BadReply { script, reason });
        // Transitions first: `Closed` must be the last event of all.
        step.events.extend(events);
        match (pending.what, parsed.status.as_str()) {
            (Write::Register { keep }, "OK") => {
                let Ok(k) = parsed.detail.parse::<u64>() else {
                    self.write_failed(now, &Write::Register { keep });
                    return bad(format!("registration number {:?}", parsed.detail));
                };
                if let Some(old) = keep {
                    self.old.push(Old {
                        k: old,
                        retired: false,
                    });
                    // Its last renewal was a call ago: renew it first.
                    self.old_renew_due = now;
                }
                self.k = k;
                self.first_registration = false;
                self.must_rotate = false;
                self.version = 0;
                self.local.forget_committed();
                self.needs_reassert = true;
                self.fresh = true;
                if self.phase == Phase::Unregistered {
                    self.phase = Phase::Live;
                }
                self.reap_due = now.saturating_add(self.config.reap_ms);
            }
            (Write::Apply(deltas), "OK") => {
                self.local.commit_deltas(&deltas);
                self.version += 1;
                self.acked_inputs = self.acked_inputs.max(pending.covers);
            }
            (Write::Reassert { snapshot, version }, "OK") => {
                self.local.commit_snapshot(&snapshot);
                self.acked_inputs = self.acked_inputs.max(pending.covers);
                self.version = version;
                self.needs_reassert = false;
            }
            (Write::Heartbeat, "OK") => {}
            (Write::Apply(_) | Write::Reassert { .. } | Write::Heartbeat, "DRIFT") => {
                self.needs_reassert = true;
            }
            // Redis holds more of this incarnation than one call may walk:
            // rotate (the kept one is retired and reaped in slices).
            (Write::Reassert { .. }, "ROTATE") => {
                self.needs_reassert = true;
                self.must_rotate = true;
            }
            (Write::Apply(_) | Write::Reassert { .. } | Write::Heartbeat, "FENCED") => {
                self.fenced(pending.k, step);
            }
            (Write::RenewOld(_), "DRIFT" | "OK") => {}
            // Reaped by another node meanwhile (its lease had lapsed).
            (Write::RenewOld(k), "FENCED") => self.old.retain(|o| o.k != k),
            (Write::Retire, "OK") => self.phase = Phase::Leaving,
            (Write::Retire, "GONE") => self.close(step),
            (Write::SelfReap, "SLICE") => {}
            (Write::SelfReap, "DONE" | "IDLE") => self.close(step),
            (Write::RetireOld(k), "OK") => {
                if let Some(o) = self.old.iter_mut().find(|o| o.k == k) {
                    o.retired = true;
                }
            }
            (Write::RetireOld(k), "GONE") | (Write::ReapOld(k), "DONE" | "IDLE") => {
                self.old.retain(|o| o.k != k);
            }
            (Write::ReapOld(_), "SLICE") => {}
            (what, status) => {
                self.write_failed(now, &what);
                return bad(format!("unexpected status {status:?}"));
            }
        }
        Ok(())
    }

    fn on_reap_reply(
        &mut self,
        now: Millis,
        pending: Pending<()>,
        reply: Reply,
        step: &mut Step,
    ) -> Result<(), InputError> {
        let later = now.saturating_add(self.config.reap_ms);
        let k = pending.k;
        if let Reply::Error { error } = &reply {
            step.events.push(Event::StoreError {
                script: Script::Reap,
                message: error.clone(),
            });
            self.reap_due = later;
            self.reap_again = Some(pending);
            return Ok(());
        }
        let bad = |reason: String| {
            Err(InputError::BadReply {
                script: Script::Reap,
                reason,
            })
        };
        let parsed = match ScriptReply::parse(&reply) {
            Ok(p) => p,
            Err(reason) => {
                self.reap_due = later;
                self.reap_again = Some(pending);
                return bad(reason);
            }
        };
        let events = match parsed.transitions(OfflineReason::Reaped) {
            Ok(e) => e,
            Err(reason) => {
                self.reap_due = later;
                self.reap_again = Some(pending);
                return bad(reason);
            }
        };
        match parsed.status.as_str() {
            // More to do: go on at once (each call is bounded).
            "SLICE" => self.reap_due = now,
            "DONE" => {
                self.reap_due = now;
                let node = split_incarnation(&parsed.detail)
                    .map(|(n, _)| n.to_owned())
                    .unwrap_or_default();
                step.events.extend(events);
                step.events.push(Event::NodeReaped {
                    node,
                    incarnation: parsed.detail,
                });
                return Ok(());
            }
            "IDLE" => self.reap_due = later,
            "FENCED" => {
                self.reap_due = later;
                self.fenced(k, step);
            }
            other => {
                self.reap_due = later;
                return bad(format!("unexpected status {other:?}"));
            }
        }
        step.events.extend(events);
        Ok(())
    }

    /// The store no longer knows this registration: register again and
    /// re-assert everything.
    fn fenced(&mut self, k: u64, step: &mut Step) {
        if k != self.k || self.phase != Phase::Live {
            return;
        }
        step.events.push(Event::Fenced {
            incarnation: incarnation(&self.node, self.k),
        });
        self.phase = Phase::Unregistered;
        self.local.forget_committed();
        self.needs_reassert = true;
    }

    /// A write's outcome is unknown (an error, a lost or malformed reply):
    /// a call with a call id goes again as the same call, so the store
    /// either runs it now or answers with the reply it kept of it, and no
    /// transition is lost or repeated. Other writes fail.
    fn write_in_doubt(&mut self, now: Millis, pending: Pending<Write>) {
        if pending.sent.is_some() {
            self.retry_at = now.saturating_add(self.config.retry_ms);
            self.write_again = Some(pending);
        } else {
            self.write_failed(now, &pending.what);
        }
    }

    /// A write failed: retry later; the local truth is re-asserted as a
    /// whole, which heals whatever happened.
    fn write_failed(&mut self, now: Millis, what: &Write) {
        self.retry_at = now.saturating_add(self.config.retry_ms);
        if matches!(what, Write::Apply(_) | Write::Reassert { .. }) {
            self.needs_reassert = true;
        }
    }

    fn close(&mut self, step: &mut Step) {
        self.phase = Phase::Closed;
        step.events.push(Event::Closed);
    }

    // ----- what to send -----

    fn token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    fn pump(&mut self, now: Millis, step: &mut Step) {
        if self.write.is_none() && now >= self.retry_at {
            self.write_again_or_next(now, step);
        }
        if self.reap.is_none() && self.phase == Phase::Live && now >= self.reap_due {
            let token = self.token();
            let again = self.reap_again.take().filter(|p| p.k == self.k);
            let sent = match again.and_then(|p| p.sent) {
                Some(sent) => sent,
                None => Op {
                    token,
                    script: Script::Reap,
                    keys: vec![self.schema.live()],
                    args: vec![
                        self.stall(),
                        incarnation(&self.node, self.k),
                        self.config.reap_slice.to_string(),
                        String::new(),
                        token.0.to_string(),
                        "r".to_owned(),
                    ],
                },
            };
            step.ops.push(resend(token, &sent));
            self.reap = Some(Pending {
                token,
                what: (),
                covers: 0,
                k: self.k,
                sent: Some(sent),
            });
        }
    }

    /// Sends the write in doubt again if it still applies, else the next
    /// write.
    fn write_again_or_next(&mut self, now: Millis, step: &mut Step) {
        let token;
        let pending = match self.write_again.take() {
            Some(again)
                if again.k == self.k
                    && !matches!(self.phase, Phase::Unregistered | Phase::Closed) =>
            {
                token = self.token();
                step.ops.push(resend(
                    token,
                    again.sent.as_ref().expect("only calls with an id wait"),
                ));
                Pending { token, ..again }
            }
            // Fenced meanwhile: the incarnation and its share are gone, and
            // the re-registration re-asserts everything.
            _ => {
                let Some((write, fields)) = self.next_write(now) else {
                    return;
                };
                token = self.token();
                let op = self.write_op(token, &write, fields);
                let sent = has_call_id(&write).then(|| op.clone());
                step.ops.push(op);
                // A write holds every input so far unless the cap left some
                // deltas for the next one.
                let covers = match write {
                    Write::Reassert { .. } => self.inputs,
                    Write::Apply(_) if !self.local.has_dirty() => self.inputs,
                    _ => self.acked_inputs,
                };
                Pending {
                    token,
                    what: write,
                    covers,
                    k: self.k,
                    sent,
                }
            }
        };
        if !matches!(
            pending.what,
            Write::Retire
                | Write::SelfReap
                | Write::RenewOld(_)
                | Write::RetireOld(_)
                | Write::ReapOld(_)
        ) {
            self.heartbeat_due = now.saturating_add(self.config.heartbeat_ms);
        }
        self.write = Some(pending);
    }

    /// The next write, with the field names of an apply or re-assert (in
    /// the order of its entries; empty for the other writes).
    fn next_write(&mut self, now: Millis) -> Option<(Write, Vec<String>)> {
        let max = self.config.max_write_fields as usize;
        let write = match self.phase {
            Phase::Closed => return None,
            Phase::Unregistered => Write::Register { keep: None },
            Phase::Retiring => Write::Retire,
            Phase::Leaving => self.old_write().unwrap_or(Write::SelfReap),
            Phase::Live
                if self.needs_reassert && self.local.field_count() <= max && !self.must_rotate =>
            {
                self.fresh = false;
                let (fields, snapshot) = self
                    .local
                    .snapshot()
                    .into_iter()
                    .map(|(f, k, n)| (f, (k, n)))
                    .unzip();
                return Some((
                    Write::Reassert {
                        snapshot,
                        version: self.version + 1,
                    },
                    fields,
                ));
            }
            Phase::Live if self.needs_reassert && !self.fresh => {
                // Too large for one call, and Redis holds an unknown share
                // of this incarnation: rotate to a new one.
                Write::Register { keep: Some(self.k) }
            }
            Phase::Live => {
                if self.needs_reassert {
                    // A fresh incarnation holds nothing: the whole local
                    // truth goes as deltas from zero, in bounded applies.
                    self.needs_reassert = false;
                    self.local.mark_all_dirty();
                }
                // While the new share is still being written (after that,
                // the kept one is retired at once).
                if now >= self.old_renew_due
                    && self.local.has_dirty()
                    && let Some(kept) = self.old.iter().find(|o| !o.retired)
                {
                    // Every half TTL, not every heartbeat: the lane's other
                    // calls (the new share) go between, however slow.
                    self.old_renew_due = now.saturating_add(self.config.ttl_ms / 2);
                    return Some((Write::RenewOld(kept.k), Vec::new()));
                }
                let (fields, deltas): (Vec<String>, Vec<(Key, i64)>) = self
                    .local
                    .take_deltas(max)
                    .into_iter()
                    .map(|(f, k, d)| (f, (k, d)))
                    .unzip();
                // The lease was last renewed a heartbeat before it is due.
                let renewed_at = self.heartbeat_due.saturating_sub(self.config.heartbeat_ms);
                let urgent = now >= renewed_at.saturating_add(self.config.ttl_ms / 2);
                if !deltas.is_empty() {
                    self.fresh = false;
                    return Some((Write::Apply(deltas), fields));
                } else if now >= self.heartbeat_due && (urgent || self.old.is_empty()) {
                    Write::Heartbeat
                } else if let Some(old) = self.old_write() {
                    // Retiring what a rotation left goes before a heartbeat
                    // that can wait: on a slow lane it would never go.
                    old
                } else if now >= self.heartbeat_due {
                    Write::Heartbeat
                } else {
                    return None;
                }
            }
        };
        Some((write, Vec::new()))
    }

    /// The next step of retiring an earlier incarnation, if one is left.
    fn old_write(&self) -> Option<Write> {
        self.old.first().map(|o| {
            if o.retired {
                Write::ReapOld(o.k)
            } else {
                Write::RetireOld(o.k)
            }
        })
    }

    fn stall(&self) -> String {
        self.config.heartbeat_ms.to_string()
    }

    /// The op of a write; `fields` are the names of its entries, from
    /// [`Tracker::next_write`].
    fn write_op(&self, token: Token, write: &Write, fields: Vec<String>) -> Op {
        let inc = incarnation(&self.node, self.k);
        let ttl = self.config.ttl_ms.to_string();
        let script = script_of(write);
        let id = token.0.to_string();
        let args = match write {
            Write::Register { keep } => {
                let mut args = vec![
                    self.stall(),
                    self.node.clone(),
                    ttl,
                    (self.k + 1).to_string(),
                    // Only a registration after FENCED leaves the previous
                    // incarnation alone: that one is now another process'.
                    if self.first_registration || keep.is_some() {
                        "1"
                    } else {
                        "0"
                    }
                    .to_owned(),
                ];
                args.extend(keep.map(|k| k.to_string()));
                args
            }
            Write::Apply(deltas) => {
                let mut args = Vec::with_capacity(5 + 2 * deltas.len());
                args.extend([self.stall(), inc, ttl, self.version.to_string(), id]);
                debug_assert_eq!(fields.len(), deltas.len());
                for (field, (_, d)) in fields.into_iter().zip(deltas) {
                    args.push(field);
                    args.push(d.to_string());
                }
                args
            }
            Write::Reassert { snapshot, version } => {
                let mut args = Vec::with_capacity(6 + 2 * snapshot.len());
                args.extend([
                    self.stall(),
                    inc,
                    ttl,
                    version.to_string(),
                    id,
                    self.config.max_write_fields.to_string(),
                ]);
                debug_assert_eq!(fields.len(), snapshot.len());
                for (field, (_, n)) in fields.into_iter().zip(snapshot) {
                    args.push(field);
                    args.push(n.to_string());
                }
                args
            }
            Write::Heartbeat => vec![self.stall(), inc, ttl, self.version.to_string(), id],
            Write::Retire => vec![self.stall(), inc],
            Write::SelfReap => vec![
                self.stall(),
                inc.clone(),
                self.config.reap_slice.to_string(),
                inc,
                id,
                "w".to_owned(),
            ],
            // No version matches "": the lease is renewed, the reply DRIFT.
            Write::RenewOld(k) => vec![
                self.stall(),
                incarnation(&self.node, *k),
                ttl,
                String::new(),
                id,
            ],
            Write::RetireOld(k) => vec![self.stall(), incarnation(&self.node, *k)],
            Write::ReapOld(k) => vec![
                self.stall(),
                inc,
                self.config.reap_slice.to_string(),
                incarnation(&self.node, *k),
                id,
                "w".to_owned(),
            ],
        };
        Op {
            token,
            script,
            keys: vec![self.schema.live()],
            args,
        }
    }
}

/// Writes whose reply a lost answer must not lose: they carry a call id and
/// are sent again unchanged (see [`Tracker::write_in_doubt`]).
fn has_call_id(write: &Write) -> bool {
    matches!(
        write,
        Write::Apply(_)
            | Write::Reassert { .. }
            | Write::Heartbeat
            | Write::SelfReap
            | Write::RenewOld(_)
            | Write::ReapOld(_)
    )
}

fn script_of(write: &Write) -> Script {
    match write {
        Write::Register { .. } => Script::Register,
        Write::Apply(_) => Script::Apply,
        Write::Reassert { .. } => Script::Reassert,
        Write::Heartbeat | Write::RenewOld(_) => Script::Heartbeat,
        Write::Retire | Write::RetireOld(_) => Script::Retire,
        Write::SelfReap | Write::ReapOld(_) => Script::Reap,
    }
}

/// `[status, detail, n, online*n, offline*]`, checked.
struct ScriptReply {
    status: String,
    detail: String,
    online: Vec<String>,
    offline: Vec<String>,
}

impl ScriptReply {
    fn parse(reply: &Reply) -> Result<ScriptReply, String> {
        let Reply::Array(items) = reply else {
            return Err(format!("expected an array, got {reply:?}"));
        };
        let text = |i: usize, what: &str| match items.get(i) {
            Some(Reply::Str(s)) => Ok(s.clone()),
            other => Err(format!(
                "{what} (item {i}) should be a string, got {other:?}"
            )),
        };
        let status = text(0, "status")?;
        let detail = text(1, "detail")?;
        let n = match items.get(2) {
            Some(Reply::Int(n)) if *n >= 0 && (*n as usize) <= items.len() - 3 => *n as usize,
            other => return Err(format!("online count (item 2) is invalid: {other:?}")),
        };
        let fields = (3..items.len())
            .map(|i| text(i, "field"))
            .collect::<Result<Vec<_>, _>>()?;
        let (online, offline) = fields.split_at(n);
        Ok(ScriptReply {
            status,
            detail,
            online: online.to_vec(),
            offline: offline.to_vec(),
        })
    }

    fn transitions(&self, reason: OfflineReason) -> Result<Vec<Event>, String> {
        let user = |name: &String| match Field::decode(name) {
            Some(Field::User(scope, user)) => Ok((scope, user)),
            _ => Err(format!("{name:?} is not a user field")),
        };
        let mut events = Vec::with_capacity(self.online.len() + self.offline.len());
        for name in &self.online {
            let (scope, user): (Scope, String) = user(name)?;
            events.push(Event::UserOnline { scope, user });
        }
        for name in &self.offline {
            let (scope, user) = user(name)?;
            events.push(Event::UserOffline {
                scope,
                user,
                reason,
            });
        }
        Ok(events)
    }
}
