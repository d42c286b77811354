//! [`Watch`]: the cluster's change feed as a stream, on every node.
//!
//! A watcher reads `{p}:feed` ([`rollcall_core::feed`]) on a connection of
//! its own (XREAD BLOCK), so it never holds up the node's writes and reads;
//! on the in-memory store it wakes after every burst of calls. Dropping the
//! [`Watch`] stops it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use redis::aio::ConnectionLike;
use rollcall_core::{Change, Schema, feed};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{Error, classify};
use crate::reply::to_reply;
use crate::store::{Conn, MemoryStore, RedisStore, Store};

/// Changes read per round trip.
const BATCH: usize = 100;

/// The longest a blocking read waits before it asks again.
const MAX_BLOCK: Duration = Duration::from_secs(1);

/// The changes of the cluster, in the order Redis made them, from where it
/// was started ([`crate::Presence::watch`]). Every change reaches every
/// watcher at least once; [`Change::id`] orders them: resume after the
/// last one seen (`from`), drop a repeat by it. A read that fails yields
/// one `Err` and the watcher goes on after a pause.
///
/// Use it as a [`futures_core::Stream`], or call [`Watch::next`].
#[derive(Debug)]
pub struct Watch {
    changes: mpsc::Receiver<Result<Change, Error>>,
    task: JoinHandle<()>,
}

impl Watch {
    /// Starts reading after entry `from` (a [`Change::id`]), or after the
    /// feed's newest entry when `None` (only changes from now on).
    pub(crate) async fn start(
        store: &Store,
        schema: Schema,
        from: Option<&str>,
    ) -> Result<Watch, Error> {
        if let Some(id) = from
            && !feed::is_entry_id(id)
        {
            return Err(Error::BadArgument {
                name: "from",
                message: format!(
                    "{id:?} is not a change's id (<ms>-<seq>, as Change::id gives it)"
                ),
            });
        }
        let (tx, changes) = mpsc::channel(BATCH);
        let task = match store {
            Store::Memory(m) => {
                let after = match from {
                    Some(id) => id.to_owned(),
                    None => m.feed_newest(&schema),
                };
                tokio::spawn(from_memory(m.clone(), schema, after, tx))
            }
            Store::Redis(r) => {
                let mut conn = r.own_connection().await?;
                let after = match from {
                    Some(id) => id.to_owned(),
                    None => newest(&mut conn, r, &schema).await?,
                };
                tokio::spawn(from_redis(Some(conn), r.clone(), schema, after, tx))
            }
        };
        Ok(Watch { changes, task })
    }

    /// The next change (or read error); `None` never, while it runs.
    pub async fn next(&mut self) -> Option<Result<Change, Error>> {
        self.changes.recv().await
    }
}

impl futures_core::Stream for Watch {
    type Item = Result<Change, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.changes.poll_recv(cx)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Hands a batch on; `false` once the watcher is gone.
async fn deliver(
    batch: Vec<Change>,
    after: &mut String,
    tx: &mpsc::Sender<Result<Change, Error>>,
) -> bool {
    for change in batch {
        *after = change.id.clone();
        if tx.send(Ok(change)).await.is_err() {
            return false;
        }
    }
    true
}

async fn from_memory(
    store: MemoryStore,
    schema: Schema,
    mut after: String,
    tx: mpsc::Sender<Result<Change, Error>>,
) {
    loop {
        // Registered before looking: a burst in between still wakes it.
        let changed = store.changed();
        let batch = match store.feed_after(&schema, &after, BATCH) {
            Ok(batch) => batch,
            Err(e) => {
                if tx
                    .send(Err(Error::Store {
                        message: e.to_string(),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(MAX_BLOCK).await;
                continue;
            }
        };
        if batch.is_empty() {
            let _ = tokio::time::timeout(MAX_BLOCK, changed).await;
            continue;
        }
        if !deliver(batch, &mut after, &tx).await {
            return;
        }
    }
}

async fn newest(
    conn: &mut (impl ConnectionLike + Send),
    store: &RedisStore,
    schema: &Schema,
) -> Result<String, Error> {
    let value = redis::cmd("XREVRANGE")
        .arg(feed::newest_command(schema))
        .query_async(conn)
        .await
        .map_err(|e| classify(&e, store.url()))?;
    feed::parse_newest(&to_reply(value)).map_err(|e| Error::Store {
        message: e.to_string(),
    })
}

async fn from_redis(
    mut conn: Option<Conn>,
    store: RedisStore,
    schema: Schema,
    mut after: String,
    tx: mpsc::Sender<Result<Change, Error>>,
) {
    // Block for less than the connection's reply timeout.
    let block = MAX_BLOCK
        .min(store.timeout() / 2)
        .max(Duration::from_millis(1));
    loop {
        let batch = match conn.as_mut() {
            Some(c) => read(c, &store, &schema, &after, block).await,
            None => store.own_connection().await.map(|c| {
                conn = Some(c);
                Vec::new()
            }),
        };
        match batch {
            Ok(batch) => {
                if !deliver(batch, &mut after, &tx).await {
                    return;
                }
            }
            Err(e) => {
                // A connection of its own does not reconnect by itself.
                conn = None;
                if tx.send(Err(e)).await.is_err() {
                    return;
                }
                tokio::time::sleep(MAX_BLOCK).await;
            }
        }
    }
}

async fn read(
    conn: &mut (impl ConnectionLike + Send),
    store: &RedisStore,
    schema: &Schema,
    after: &str,
    block: Duration,
) -> Result<Vec<Change>, Error> {
    let value = redis::cmd("XREAD")
        .arg(feed::read_command(
            schema,
            after,
            BATCH,
            block.as_millis() as u64,
        ))
        .query_async(conn)
        .await
        .map_err(|e| classify(&e, store.url()))?;
    feed::parse_read(&to_reply(value)).map_err(|e| Error::Store {
        message: e.to_string(),
    })
}
