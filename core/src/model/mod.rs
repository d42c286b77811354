//! The pure model: an in-memory keyspace that does exactly what each script
//! does to Redis. It is the embedded single-server store and the oracle the
//! real-Redis tests compare against.
//!
//! Two parts: the keyspace (the values and the Redis commands on them, as
//! Redis does them) and the scripts run on it, each mirroring the Lua
//! function of the same name in `lua/*.lua`, line for line where it can.

mod keyspace;
mod scripts;

pub use keyspace::{DumpEntry, DumpValue, Keyspace, Stream, StreamId, Value, ZSet};
