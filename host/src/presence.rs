//! [`Presence`]: the handle a Rust server embeds (its options and start are
//! [`crate::Builder`]'s).

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rollcall_core::tracker::InputError;
use rollcall_core::{Config, Event, Input, Scope};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::builder::Builder;
use crate::driver::{Command, Status};
use crate::error::Error;
use crate::metrics::NodeStats;
use crate::reader::Reader;
use crate::store::Store;

/// Presence for one server process: feed it the sockets' lives, ask it who
/// is online cluster-wide, listen to its events. Cheap to clone; clones
/// drive one node.
///
/// Inputs are queued in call order when the method is called (before the
/// returned future is first polled), so a disconnect called after a connect
/// is never applied before it; awaiting the future tells whether the
/// tracker accepted the input (the Redis write follows in the background).
///
/// Reads reflect every input queued before the read is first polled
/// (read-your-writes): a read waits, at most the op timeout, until the
/// store has acknowledged the writes of those inputs, then asks the store.
/// [`Reader`] alone does not wait (it has no tracker).
#[derive(Clone, Debug)]
pub struct Presence {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) reader: Reader,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) status: Arc<watch::Sender<Status>>,
    /// Answers of the store so far (the driver's progress).
    pub(crate) answers: Arc<watch::Sender<u64>>,
    pub(crate) task: Mutex<Option<JoinHandle<()>>>,
    pub(crate) node: String,
    pub(crate) config: Config,
    /// Also the longest wait of a read for this node's writes.
    pub(crate) op_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
}

impl Presence {
    /// Options for a new node: Redis or in-process, prefix, timings,
    /// node id, trace; [`Builder::start`] starts it.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    /// The options this node runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store this node writes to.
    pub fn store(&self) -> &Store {
        self.inner.reader.store()
    }

    /// A reader of the same store and prefix.
    pub fn reader(&self) -> &Reader {
        &self.inner.reader
    }

    /// Where the driver is in its life.
    pub fn status(&self) -> Status {
        *self.inner.status.borrow()
    }

    /// A new receiver of this node's events (those emitted from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Feeds any input but `Reply` (the driver answers its calls itself; a
    /// `Tick` is harmless, the driver ticks on time anyway).
    pub fn input(&self, input: Input) -> impl Future<Output = Result<(), Error>> + use<> {
        let (done, accepted) = oneshot::channel();
        let sent = match input {
            // Replies belong to the driver, which ran the calls.
            Input::Reply { token, .. } => Err(Error::BadInput(InputError::UnknownToken { token })),
            Input::Shutdown => self
                .inner
                .commands
                .send(Command::Shutdown)
                .map_err(|_| Error::Closed)
                .map(|()| false),
            input => self
                .inner
                .commands
                .send(Command::Input {
                    input,
                    done: Some(done),
                })
                .map_err(|_| Error::Closed)
                .map(|()| true),
        };
        async move {
            match sent {
                Err(e) => Err(e),
                Ok(false) => Ok(()),
                Ok(true) => match accepted.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(InputError::Closed)) | Err(_) => Err(Error::Closed),
                    Ok(Err(e)) => Err(Error::BadInput(e)),
                },
            }
        }
    }

    /// A socket connected to `namespace`; `user: None` is anonymous.
    pub fn connect(
        &self,
        sid: &str,
        user: Option<&str>,
        namespace: &str,
    ) -> impl Future<Output = Result<(), Error>> + use<> {
        self.input(Input::Connect {
            sid: sid.to_owned(),
            user: user.map(str::to_owned),
            namespace: namespace.to_owned(),
        })
    }

    /// A socket disconnected (it leaves its rooms with it).
    pub fn disconnect(&self, sid: &str) -> impl Future<Output = Result<(), Error>> + use<> {
        self.input(Input::Disconnect {
            sid: sid.to_owned(),
        })
    }

    /// A connected socket joined `room` of its namespace.
    pub fn join(&self, sid: &str, room: &str) -> impl Future<Output = Result<(), Error>> + use<> {
        self.input(Input::Join {
            sid: sid.to_owned(),
            room: room.to_owned(),
        })
    }

    /// A socket left `room` of its namespace.
    pub fn leave(&self, sid: &str, room: &str) -> impl Future<Output = Result<(), Error>> + use<> {
        self.input(Input::Leave {
            sid: sid.to_owned(),
            room: room.to_owned(),
        })
    }

    /// The socket's user becomes `user` (`None`: anonymous): its namespace
    /// and rooms move with it, with the events that implies (Node:
    /// `identify`).
    pub fn identify(
        &self,
        sid: &str,
        user: Option<&str>,
    ) -> impl Future<Output = Result<(), Error>> + use<> {
        self.input(Input::Identify {
            sid: sid.to_owned(),
            user: user.map(str::to_owned),
        })
    }

    /// The socket's data from now on: a JSON object, at most
    /// `max_data_bytes` long once serialised ([`crate::Builder::max_data_bytes`],
    /// default 1024); `None` removes it (Node: `setData`). It replaces the
    /// socket's previous data and is shown cluster-wide, in
    /// [`Presence::members`] and [`Event::UserUpdated`], while the socket has
    /// a user; it moves with [`Presence::identify`]. Like every input it
    /// resolves once the tracker took it (the write coalesces with the
    /// counts); a read after it sees it.
    ///
    /// Data that is not an object, or is too long, is refused with
    /// [`Error::BadInput`]`(`[`InputError::BadData`]`)` (`too_long` tells
    /// which, the message names `max_data_bytes`), and an unknown socket
    /// with `InputError::UnknownSocket`; either way nothing changes.
    pub fn set_data(
        &self,
        sid: &str,
        data: Option<&serde_json::Value>,
    ) -> impl Future<Output = Result<(), Error>> + use<> {
        // The core decides what data it takes; this only writes the text.
        self.input(Input::SetData {
            sid: sid.to_owned(),
            data: data.map(serde_json::Value::to_string),
        })
    }

    /// A low-level (engine) connection opened.
    pub fn client_open(&self, cid: &str) -> impl Future<Output = Result<(), Error>> + use<> {
        self.input(Input::ClientOpen {
            cid: cid.to_owned(),
        })
    }

    /// A low-level (engine) connection closed.
    pub fn client_close(&self, cid: &str) -> impl Future<Output = Result<(), Error>> + use<> {
        self.input(Input::ClientClose {
            cid: cid.to_owned(),
        })
    }

    /// Read-your-writes: waits until the store holds every input this
    /// handle sent before the read (the writes still coalesce in the
    /// driver), at most the op timeout. A driver that is shutting down or
    /// gone has nothing more to write: the read goes ahead.
    async fn read_barrier(&self) -> Result<(), Error> {
        if self.status() != Status::Running {
            return Ok(());
        }
        let (done, visible) = oneshot::channel();
        if self.inner.commands.send(Command::Barrier { done }).is_err() {
            return Ok(());
        }
        let after = self.inner.op_timeout;
        match tokio::time::timeout(after, visible).await {
            // Visible, or the driver stopped (nothing more will land).
            Ok(_) => Ok(()),
            Err(_) => Err(Error::Timeout {
                what: "a read waiting for this node's writes to reach the store".into(),
                after,
            }),
        }
    }

    /// Low-level (engine) connections, cluster-wide (Node: `clientsCount`).
    /// Like every read here it reflects the inputs this node was given
    /// before it.
    pub async fn clients_count(&self) -> Result<u64, Error> {
        self.read_barrier().await?;
        self.inner.reader.clients_count().await
    }

    /// Sockets in a scope, cluster-wide (Node: `socketsCount`).
    pub async fn sockets_count(&self, scope: Scope) -> Result<u64, Error> {
        self.read_barrier().await?;
        self.inner.reader.sockets_count(scope).await
    }

    /// The old name of [`Presence::clients_count`].
    #[deprecated(note = "renamed clients_count, as in Node (clientsCount)")]
    pub async fn clients(&self) -> Result<u64, Error> {
        self.clients_count().await
    }

    /// The old name of [`Presence::sockets_count`].
    #[deprecated(note = "renamed sockets_count, as in Node (socketsCount)")]
    pub async fn sockets(&self, scope: Scope) -> Result<u64, Error> {
        self.sockets_count(scope).await
    }

    /// The old name of [`Presence::user_sockets_count`].
    #[deprecated(note = "renamed user_sockets_count, as in Node (userSocketsCount)")]
    pub async fn user_sockets(&self, user: &str) -> Result<u64, Error> {
        self.user_sockets_count(user).await
    }

    /// Distinct users in a scope, cluster-wide.
    pub async fn users_count(&self, scope: Scope) -> Result<u64, Error> {
        self.read_barrier().await?;
        self.inner.reader.users_count(scope).await
    }

    /// The users of a scope, sorted (read in bounded pages).
    pub async fn users_list(&self, scope: Scope) -> Result<Vec<String>, Error> {
        self.read_barrier().await?;
        self.inner.reader.users_list(scope).await
    }

    /// One page of a scope's members (user, sockets there, since when,
    /// data) in user-id order: see [`crate::Reader::members`] (Node:
    /// `members`). [`crate::DataExt`] parses a member's data.
    pub async fn members(
        &self,
        scope: Scope,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<rollcall_core::MemberPage, Error> {
        self.read_barrier().await?;
        self.inner.reader.members(scope, limit, cursor).await
    }

    /// The namespaces and rooms a user is in, cluster-wide, with since
    /// when (Node: `userRooms`).
    pub async fn user_rooms(&self, user: &str) -> Result<Vec<rollcall_core::Place>, Error> {
        self.read_barrier().await?;
        self.inner.reader.user_rooms(user).await
    }

    /// Whether a user has a socket anywhere in the cluster.
    pub async fn is_user_connected(&self, user: &str) -> Result<bool, Error> {
        self.read_barrier().await?;
        self.inner.reader.is_user_connected(user).await
    }

    /// How many sockets a user holds cluster-wide (Node: `userSocketsCount`).
    pub async fn user_sockets_count(&self, user: &str) -> Result<u64, Error> {
        self.read_barrier().await?;
        self.inner.reader.user_sockets_count(user).await
    }

    /// When the user's last socket left (ms, Redis clock) for a user who is
    /// offline now; `None` when online, unknown, or gone longer than
    /// `last_seen_ms` (Node: `lastSeen`).
    pub async fn last_seen(&self, user: &str) -> Result<Option<u64>, Error> {
        self.read_barrier().await?;
        self.inner
            .reader
            .last_seen(user, self.inner.config.last_seen_ms)
            .await
    }

    /// Every change of the cluster (online, offline, joined, left, updated
    /// with the user's data: [`crate::DataExt`] parses it), by any
    /// node, in Redis' order, from now on, or after change `from` while
    /// the feed still holds it (`changes_max_len`). It reads on a
    /// connection of its own; drop the [`crate::Watch`] to stop it (Node:
    /// `watch`).
    pub async fn watch(&self, from: Option<&str>) -> Result<crate::Watch, Error> {
        self.inner.reader.watch(from).await
    }

    /// This node's numbers for metrics: the tracker's totals, its local
    /// gauges and its write round-trip times (no store read).
    pub async fn stats(&self) -> Result<NodeStats, Error> {
        self.ask_driver(|done| Command::Stats { done }).await
    }

    /// Sends the driver a command that answers on a oneshot, and waits for
    /// the answer ([`Error::Closed`] once the driver has stopped).
    async fn ask_driver<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        let (done, answer) = oneshot::channel();
        self.inner
            .commands
            .send(command(done))
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)
    }

    /// A handle that does not keep the node running (for background tasks).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn downgrade(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// The node of a [`Presence::downgrade`] handle, while a handle is left.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn upgrade(weak: &Weak<Inner>) -> Option<Presence> {
        weak.upgrade().map(|inner| Presence { inner })
    }

    /// What this node wants counted: every field with its count, sorted.
    pub async fn local_fields(&self) -> Result<Vec<(String, u32)>, Error> {
        self.ask_driver(|done| Command::LocalFields { done }).await
    }

    /// Leaves the cluster cleanly: removes this node's share from the store
    /// (emitting the offline events it causes, reason `shutdown`) and
    /// returns once the tracker is closed. If the store does not let that
    /// finish within the shutdown timeout, the driver is stopped and
    /// [`Error::Timeout`] returned: the other nodes reap this one after the
    /// TTL. Calling it again after success returns `Ok`.
    pub async fn shutdown(&self) -> Result<(), Error> {
        match self.status() {
            Status::Closed => return Ok(()),
            Status::Stopped => return Err(Error::Closed),
            Status::Running | Status::ShuttingDown => {}
        }
        let _ = self.inner.commands.send(Command::Shutdown);
        let mut status = self.inner.status.subscribe();
        let mut answers = self.inner.answers.subscribe();
        let after = self.inner.shutdown_timeout;
        // Bounded by a lack of progress, not by the whole time: each answer
        // of the store starts the wait again.
        loop {
            tokio::select! {
                s = status.wait_for(|s| matches!(s, Status::Closed | Status::Stopped)) => {
                    return match s {
                        Ok(s) if *s == Status::Closed => Ok(()),
                        _ => Err(Error::Closed),
                    };
                }
                changed = answers.changed() => {
                    if changed.is_err() {
                        // The driver is gone: its status says how it ended.
                        let ended = *self.inner.status.borrow();
                        return if ended == Status::Closed { Ok(()) } else { Err(Error::Closed) };
                    }
                }
                () = tokio::time::sleep(after) => {
                    self.kill();
                    return Err(Error::Timeout {
                        what: "shutdown (no answer of the store)".into(),
                        after,
                    });
                }
            }
        }
    }

    /// Stops the node at once, without a shutdown, as if its process had
    /// died: its share stays in the store until another node reaps it. For
    /// demos and tests (and for giving up on a shutdown).
    pub fn kill(&self) {
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
        }
        if *self.inner.status.borrow() != Status::Closed {
            self.inner.status.send_replace(Status::Stopped);
        }
    }
}
