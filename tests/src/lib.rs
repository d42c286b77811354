//! Cross-crate tests live in tests/tests/. This library is their harness:
//! real `redis-server` processes on free ports ([`redis_server`]), child
//! processes of the built binaries ([`process`]), polling with deadlines
//! ([`poll`]) and a seeded generator ([`rng`]).

pub mod poll;
pub mod process;
pub mod redis_server;
pub mod rng;

pub use poll::{eventually, eventually_async};
pub use redis_server::RedisServer;
pub use rng::Rng;

/// A key prefix no other test (or run) shares.
pub fn unique_prefix(what: &str) -> String {
    format!("t-{what}-{:08x}", rollcall_host::node_id::random_u32())
}
