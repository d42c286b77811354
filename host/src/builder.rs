//! [`Builder`]: a node's options, and [`Builder::start`], which connects to
//! the store, starts the driver and waits for the first registration.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollcall_core::{Config, Millis, Session};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::driver::{Driver, Status};
use crate::error::Error;
use crate::node_id::{random_node_id, random_u32};
use crate::presence::{Inner, Presence};
use crate::reader::Reader;
use crate::recording::{Recording, TracePaths};
use crate::store::{MemoryStore, RedisStore, Store};

/// Options for a [`Presence`]; start with [`Presence::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    redis: Option<String>,
    store: Option<Store>,
    config: Config,
    node: Option<String>,
    op_timeout: Option<Duration>,
    shutdown_timeout: Duration,
    event_capacity: usize,
    trace: Option<TracePaths>,
}

fn ms(d: Duration) -> Millis {
    d.as_millis().min(u128::from(u64::MAX)) as Millis
}

impl Builder {
    /// The defaults: in-process store, the core's default timings, a
    /// random node id.
    pub(crate) fn new() -> Builder {
        Builder {
            redis: None,
            store: None,
            config: Config::default(),
            node: None,
            op_timeout: None,
            shutdown_timeout: Duration::from_secs(10),
            event_capacity: 65_536,
            trace: None,
        }
    }

    /// Use the Redis at `url` (`redis://[user:password@]host:port[/db]`).
    /// Without it (and without [`Builder::store`]) the node keeps presence
    /// in memory: right for a single server.
    pub fn redis(mut self, url: impl Into<String>) -> Builder {
        self.redis = Some(url.into());
        self
    }

    /// Use a store that already exists: a [`MemoryStore`] shared by several
    /// nodes of one process, or a connected [`RedisStore`].
    pub fn store(mut self, store: impl Into<Store>) -> Builder {
        self.store = Some(store.into());
        self
    }

    /// All the core's options at once (prefix, timings, reap slice).
    pub fn config(mut self, config: Config) -> Builder {
        self.config = config;
        self
    }

    /// Names this application's keys: `{prefix}:...`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Builder {
        self.config.prefix = prefix.into();
        self
    }

    /// How long a node's lease lasts without a write or heartbeat.
    pub fn ttl(mut self, ttl: Duration) -> Builder {
        self.config.ttl_ms = ms(ttl);
        self
    }

    /// How often an idle node renews its lease (at most `ttl / 3`).
    pub fn heartbeat(mut self, every: Duration) -> Builder {
        self.config.heartbeat_ms = ms(every);
        self
    }

    /// How often a node looks for dead nodes to reap.
    pub fn reap_interval(mut self, every: Duration) -> Builder {
        self.config.reap_ms = ms(every);
        self
    }

    /// How long a user's last socket lingers after it disconnects.
    pub fn grace(mut self, grace: Duration) -> Builder {
        self.config.grace_ms = ms(grace);
        self
    }

    /// About how many changes the cluster's change feed keeps for a
    /// watcher that resumes ([`crate::Presence::watch`]); 0 keeps none.
    /// Default 100,000.
    pub fn changes_max_len(mut self, len: u32) -> Builder {
        self.config.changes_max_len = len;
        self
    }

    /// How long a user's last seen is kept after they went offline
    /// ([`crate::Presence::last_seen`]). Default 7 days.
    pub fn last_seen(mut self, keep: Duration) -> Builder {
        self.config.last_seen_ms = ms(keep);
        self
    }

    /// The longest a socket's data may be, in bytes of JSON
    /// ([`crate::Presence::set_data`]); 2 to 1,048,576. Default 1024.
    pub fn max_data_bytes(mut self, bytes: u32) -> Builder {
        self.config.max_data_bytes = bytes;
        self
    }

    /// Wait before retrying a failed call.
    pub fn retry(mut self, after: Duration) -> Builder {
        self.config.retry_ms = ms(after);
        self
    }

    /// This process' node id (default: `<hostname>-<pid>-<random hex>`).
    /// Unique among live processes.
    pub fn node_id(mut self, node: impl Into<String>) -> Builder {
        self.node = Some(node.into());
        self
    }

    /// Longest wait for one round trip to the store (default: half the
    /// TTL, at most 5 s). A call that takes longer counts as failed.
    pub fn op_timeout(mut self, timeout: Duration) -> Builder {
        self.op_timeout = Some(timeout);
        self
    }

    /// How long [`Presence::shutdown`] waits without an answer of the
    /// store before it gives up (default 10 s): a node of 100,000 users
    /// leaves in hundreds of bounded calls, and it waits as long as they
    /// are answered.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.shutdown_timeout = timeout;
        self
    }

    /// Events buffered per subscriber before a slow one misses some
    /// (default 65,536).
    pub fn event_capacity(mut self, capacity: usize) -> Builder {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Records every input of this node to `path` as a trace that
    /// `rollcall replay` re-runs (see the README).
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Builder {
        let output = self.trace.take().and_then(|t| t.output);
        self.trace = Some(TracePaths {
            trace: path.into(),
            output,
        });
        self
    }

    /// With [`Builder::trace`]: also writes what the tracker did at each
    /// step to `path`, the output a replay of the trace must reproduce.
    pub fn trace_output(mut self, path: impl Into<PathBuf>) -> Builder {
        if let Some(t) = &mut self.trace {
            t.output = Some(path.into());
        }
        self
    }

    /// Validates the options, connects to the store (Redis: connects and
    /// loads the scripts, so an unreachable Redis, a wrong password or a
    /// Redis that refuses scripts is an error here), starts the driver and
    /// returns once the node is registered ([`Error::Register`] if the first
    /// registration fails). Must be called inside a tokio runtime.
    pub async fn start(self) -> Result<Presence, Error> {
        self.config.validate()?;
        let op_timeout = self
            .op_timeout
            .unwrap_or_else(|| Duration::from_millis((self.config.ttl_ms / 2).clamp(100, 5_000)));
        let node = self.node.unwrap_or_else(random_node_id);
        // A nonce per process: incarnation ids of this node id never repeat.
        let nonce = u64::from(random_u32()) << 8 | u64::from(random_u32() & 0xff);
        let mut session = Session::new(self.config.clone(), &node, nonce, false)?;
        let store = match (self.store, self.redis) {
            (Some(store), _) => store,
            (None, Some(url)) => Store::Redis(RedisStore::connect(&url, op_timeout).await?),
            (None, None) => Store::Memory(MemoryStore::new()),
        };
        let recording = self
            .trace
            .as_ref()
            .map(|paths| Recording::start(paths, &mut session))
            .transpose()?;
        let (commands, inbox) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(self.event_capacity);
        let status = Arc::new(watch::Sender::new(Status::Running));
        let answers = Arc::new(watch::Sender::new(0));
        let (readiness, registered) = oneshot::channel();
        let driver = Driver::new(
            session,
            store.clone(),
            inbox,
            events.clone(),
            status.clone(),
            answers.clone(),
            op_timeout,
            recording,
            readiness,
        );
        let task = tokio::spawn(driver.run());
        // Counted cluster-wide only once registered: wait for it, as the
        // Node host does. A failure leaves nothing of this node in the store.
        match registered.await {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                task.abort();
                return Err(Error::Register { message });
            }
            Err(_) => return Err(Error::Closed),
        }
        Ok(Presence {
            inner: Arc::new(Inner {
                commands,
                reader: Reader::new(store, &self.config.prefix),
                events,
                status,
                answers,
                task: Mutex::new(Some(task)),
                node,
                config: self.config,
                op_timeout,
                shutdown_timeout: self.shutdown_timeout,
            }),
        })
    }
}
