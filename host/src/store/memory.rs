//! The core's in-memory keyspace as a store: the single-server default, and
//! a shared store for several nodes of one process (the demo, tests).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rollcall_core::feed::BadEntry;
use rollcall_core::model::DumpEntry;
use rollcall_core::{Change, Keyspace, Millis, Op, Reply, Schema};
use tokio::sync::Notify;
use tokio::time::Instant;

/// An in-memory store. Clones share one keyspace and one clock.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    keyspace: Mutex<Keyspace>,
    /// The store's clock (what Redis `TIME` is to Redis) starts here.
    start: Instant,
    /// When false every call fails, as if the store were unreachable.
    available: Mutex<bool>,
    /// Bursts run so far (what would be round trips to Redis).
    round_trips: AtomicU64,
    /// Wakes the watchers after every burst.
    changed: Notify,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty keyspace, with its clock starting now.
    pub fn new() -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Inner {
                keyspace: Mutex::new(Keyspace::new()),
                start: Instant::now(),
                available: Mutex::new(true),
                round_trips: AtomicU64::new(0),
                changed: Notify::new(),
            }),
        }
    }

    /// The store's own clock in milliseconds (never zero, like Redis time).
    pub fn now_ms(&self) -> Millis {
        1_000_000 + self.inner.start.elapsed().as_millis() as Millis
    }

    fn keyspace(&self) -> MutexGuard<'_, Keyspace> {
        // A panic while holding the lock cannot leave the keyspace half
        // changed in a way that matters more than the panic itself.
        self.inner
            .keyspace
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs the calls in order, atomically with respect to other callers.
    pub fn run(&self, ops: &[Op]) -> Vec<Reply> {
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        if !*self
            .inner
            .available
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        {
            return ops
                .iter()
                .map(|_| Reply::error("rollcall: the in-memory store is unavailable"))
                .collect();
        }
        let now = self.now_ms();
        let replies = {
            let mut ks = self.keyspace();
            ops.iter().map(|op| ks.run(now, op)).collect()
        };
        self.inner.changed.notify_waiters();
        replies
    }

    /// The change feed after entry `after`, at most `count` entries
    /// ([`Keyspace::feed_after`]).
    pub fn feed_after(
        &self,
        schema: &Schema,
        after: &str,
        count: usize,
    ) -> Result<Vec<Change>, BadEntry> {
        self.keyspace().feed_after(schema, after, count)
    }

    /// The id of the feed's newest entry (`0-0` for none).
    pub fn feed_newest(&self, schema: &Schema) -> String {
        self.keyspace().feed_newest(schema)
    }

    /// Resolves after the next burst of calls (register it before looking,
    /// so that none is missed in between).
    pub(crate) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.changed.notified()
    }

    /// How many bursts of calls ran so far (each would be one round trip
    /// to Redis).
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// The canonical dump of the keyspace.
    pub fn dump(&self) -> Vec<DumpEntry> {
        self.keyspace().dump()
    }

    /// The keys that belong to nodes ([`Keyspace::node_keys`]): empty once
    /// every node has left (the change feed and last seen stay).
    pub fn node_keys(&self) -> Vec<String> {
        self.keyspace()
            .node_keys()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Makes every call fail (`false`) or work again (`true`): an outage,
    /// for tests and demos, that keeps the data.
    pub fn set_available(&self, available: bool) {
        *self
            .inner
            .available
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = available;
    }

    /// Forgets everything, like a Redis restarted without persistence.
    pub fn clear(&self) {
        self.keyspace().clear();
    }
}
