//! Cross-crate tests live in tests/tests/. This library is their harness:
//! real `redis-server` processes on free ports ([`redis_server`]), child
//! processes of the built binaries ([`process`]), polling with deadlines
//! ([`poll`]) and a seeded generator ([`rng`]); for the fault suite, a Redis
//! Cluster ([`cluster`]), a TCP proxy ([`proxy`]), node processes
//! ([`node`], the `fault_node` binary), a numbered workload ([`workload`])
//! and the keyspace checks ([`fault`]).

pub mod cluster;
pub mod fault;
pub mod node;
pub mod poll;
pub mod process;
pub mod proxy;
pub mod redis_server;
pub mod workload;

pub use cluster::RedisCluster;
pub use node::{NodeArgs, NodeProc};
pub use poll::{eventually, eventually_async};
pub use proxy::Proxy;
pub use redis_server::RedisServer;
/// The seeded generator of the core's simulations (splitmix64).
pub use rollcall_sim::random::Rng;

/// A key prefix no other test (or run) shares.
pub fn unique_prefix(what: &str) -> String {
    format!("t-{what}-{:08x}", rollcall_host::node_id::random_u32())
}

/// The namespaces and rooms `user` is in, as `p` reads them (the scopes
/// of [`rollcall_host::Presence::user_rooms`], in its order).
pub async fn rooms_of(p: &rollcall_host::Presence, user: &str) -> Vec<rollcall_host::Scope> {
    let places = p.user_rooms(user).await.expect("user_rooms");
    places.into_iter().map(|place| place.scope).collect()
}
