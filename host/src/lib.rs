//! rollcall-host: runs [`rollcall_core`] for real, with tokio and Redis.
//!
//! [`Presence`] is the handle a Rust server embeds: it starts one tokio task
//! (the [`driver`]) that owns the core's `Session`, feeds it inputs and
//! timers, runs its script calls on a [`Store`] (real Redis, or the core's
//! in-memory model when no Redis URL is given) and hands its events to the
//! application. Queries are single O(1) script calls on the store.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rollcall_host::Error> {
//! use rollcall_host::{Presence, Scope};
//! let presence = Presence::builder().redis("redis://127.0.0.1:6379").start().await?;
//! presence.connect("sid-1", Some("alice"), "/").await?;
//! presence.join("sid-1", "lobby").await?;
//! let online = presence.users_count(Scope::room("/", "lobby")).await?;
//! presence.shutdown().await?;
//! # let _ = online; Ok(()) }
//! ```
//!
//! The `rollcall` command line (demo, inspect, replay under wasmtime) is the
//! separate `rollcall-cli` crate, so this one needs only the core, tokio and
//! redis.

#![warn(missing_docs)]

mod builder;
pub mod data;
pub mod driver;
pub mod dump;
pub mod error;
pub mod metrics;
pub mod node_id;
pub mod presence;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod reader;
pub mod recording;
pub mod reply;
pub mod store;
pub mod watch;

pub use builder::Builder;
pub use data::{DataExt, parse_data};
pub use error::Error;
pub use metrics::{NodeStats, WriteLatency};
pub use presence::Presence;
pub use reader::Reader;
pub use store::{MemoryStore, RedisStore, Store};
pub use watch::Watch;

pub use rollcall_core::{
    Answer, Change, ChangeKind, Config, Event, Input, Member, MemberPage, OfflineReason, Place,
    Query, Scope, Stats, Token, config::ConfigError, tracker::InputError,
};
