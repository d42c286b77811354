//! Where the core's script calls run: real Redis, or the in-memory model.

mod memory;
mod redis;

pub use self::memory::MemoryStore;
pub(crate) use self::redis::Conn;
pub use self::redis::RedisStore;

use rollcall_core::{Op, Reply};

/// A place to run script calls. Cheap to clone: clones share the store.
#[derive(Clone, Debug)]
pub enum Store {
    /// The core's in-memory model, in this process (a single server).
    Memory(MemoryStore),
    /// A real Redis (or Valkey, or a Redis Cluster).
    Redis(RedisStore),
}

impl Store {
    /// Runs a burst of calls in order, in one round trip where the store
    /// allows, and returns exactly one reply per call. A call that failed,
    /// or whose outcome is unknown (connection lost), gets [`Reply::Error`].
    pub async fn run(&self, ops: &[Op]) -> Vec<Reply> {
        match self {
            Store::Memory(m) => m.run(ops),
            Store::Redis(r) => r.run(ops).await,
        }
    }
}

impl From<MemoryStore> for Store {
    fn from(m: MemoryStore) -> Store {
        Store::Memory(m)
    }
}

impl From<RedisStore> for Store {
    fn from(r: RedisStore) -> Store {
        Store::Redis(r)
    }
}
