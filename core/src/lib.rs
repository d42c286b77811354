//! rollcall-core: cluster-wide presence for real-time servers, as a pure
//! state machine.
//!
//! This crate is fully deterministic: it does no I/O, reads no clock, no
//! environment and no randomness, and keeps no global state. The host gives
//! a [`Tracker`] every input with the current time and runs the Redis script
//! calls ([`Op`]) it returns; the same inputs always give the same outputs,
//! natively and in WASM.
//!
//! The pieces:
//! - [`Tracker`]: one per server process; sockets, users, rooms, heartbeats,
//!   reaping of dead nodes, fencing, re-assertion. Its docs give the call order.
//! - [`schema`] and [`scripts`]: the Redis keys and the Lua scripts, owned
//!   here so every host writes the same keys with the same scripts.
//! - [`protocol`]: the scripts' arguments and replies, typed.
//! - [`model::Keyspace`]: an in-memory keyspace that does exactly what the
//!   scripts do; the single-server store and the oracle of the tests.
//! - [`Query`]: the reads (counts, lists), as script calls too.
//! - [`Session`]: what every host does around a tracker that is not I/O
//!   (the policy for bad input, the timer, readiness, trace recording, the
//!   embedded single-server store). Hosts are thin loops around it.
//!
//! The test simulator (a deterministic cluster of trackers over one
//! keyspace) is the separate crate `rollcall-sim`, not part of this API.

#![warn(missing_docs)]

mod compact;
pub mod config;
pub mod event;
pub mod feed;
pub mod ids;
pub mod invariants;
mod local;
pub mod model;
pub mod op;
pub mod protocol;
pub mod query;
pub mod schema;
pub mod scope;
pub mod scripts;
pub mod session;
pub mod stats;
pub mod trace;
pub mod tracker;

pub use config::{Config, ConfigError};
pub use event::{Event, OfflineReason, Transition};
pub use feed::{Change, ChangeKind};
pub use ids::{IdError, IdKind, MAX_ID_LEN};
pub use model::Keyspace;
pub use op::{Millis, Op, Reply, Token};
pub use query::{Answer, DEFAULT_PAGE, MAX_PAGE, Member, MemberPage, Place, Query};
pub use schema::{Field, KeyKind, Schema};
pub use scope::Scope;
pub use scripts::Script;
pub use session::{Fed, Output, Session};
pub use stats::{METRICS, Metric, MetricKind, Stats, WRITE_SECONDS_BUCKETS};
pub use tracker::{Input, InputError, Step, Tracker};
