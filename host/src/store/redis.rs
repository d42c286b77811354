//! Real Redis: one reconnecting multiplexed connection (or a Redis Cluster
//! connection), scripts by EVALSHA with a fallback to EVAL on NOSCRIPT, a
//! burst of calls in one pipeline.
//!
//! On Redis Cluster every key of one prefix shares the hash tag `{prefix}`,
//! so a burst of calls is one slot and one pipeline to one primary; the
//! cluster client follows MOVED/ASK and reconnects by itself.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};
use rollcall_core::{Op, Reply, Script};

use crate::error::{Error, classify, redact};
use crate::reply::to_reply;

/// A connection to one Redis server, or to a Redis Cluster
/// ([`RedisStore::connect_cluster`]). Clones share the connection; it
/// reconnects by itself after the connection is lost.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    /// A plain connection: the server itself, or a cluster's first seed.
    plain: ConnectionManager,
    /// Makes connections of their own (a watcher's blocking reads);
    /// shared, so a store stays small to clone.
    opener: std::sync::Arc<Opener>,
    url: String,
    timeout: Duration,
}

/// The client a store was opened with, for connections of their own.
#[derive(Clone)]
enum Opener {
    Single(redis::Client),
    Cluster(Box<redis::cluster::ClusterClient>),
}

/// Where the script calls go; also a connection of its own
/// ([`RedisStore::own_connection`]).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    /// A connection of its own ([`RedisStore::own_connection`]).
    Own(redis::aio::MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Own(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Own(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Own(c) => c.get_db(),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("cluster", &self.is_cluster())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The SHA1 of each script, computed once.
fn sha(script: Script) -> &'static str {
    static SHAS: OnceLock<Vec<(Script, String)>> = OnceLock::new();
    let shas = SHAS.get_or_init(|| Script::ALL.iter().map(|s| (*s, s.sha1())).collect());
    shas.iter()
        .find(|(s, _)| *s == script)
        .map(|(_, h)| h.as_str())
        .expect("every script is in Script::ALL")
}

impl RedisStore {
    /// Connects and loads rollcall's scripts. `timeout` bounds the connect
    /// and every later round trip (a call that takes longer gets an error
    /// reply and the core retries; its effect, if any, is healed by a
    /// re-assert).
    pub async fn connect(url: &str, timeout: Duration) -> Result<RedisStore, Error> {
        let store = RedisStore::open(url, timeout).await?;
        store.load_scripts().await?;
        Ok(store)
    }

    /// Connects to a Redis Cluster through any of its nodes (`seeds`: URLs
    /// of one or more of them) and loads the scripts on every primary.
    /// Keys of one prefix live in one slot (`{prefix}` is their hash tag).
    pub async fn connect_cluster<S: AsRef<str>>(
        seeds: &[S],
        timeout: Duration,
    ) -> Result<RedisStore, Error> {
        let store = RedisStore::open_cluster(seeds, timeout).await?;
        store.load_scripts().await?;
        Ok(store)
    }

    /// Connects to a Redis Cluster without loading the scripts.
    pub async fn open_cluster<S: AsRef<str>>(
        seeds: &[S],
        timeout: Duration,
    ) -> Result<RedisStore, Error> {
        let Some(first) = seeds.first() else {
            return Err(Error::BadUrl {
                url: String::new(),
                message: "a Redis Cluster needs at least one seed node URL".into(),
            });
        };
        let shown = seeds
            .iter()
            .map(|s| redact(s.as_ref()))
            .collect::<Vec<_>>()
            .join(",");
        let client = redis::cluster::ClusterClientBuilder::new(seeds.iter().map(|s| s.as_ref()))
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()
            .map_err(|e| Error::BadUrl {
                url: shown.clone(),
                message: e.to_string(),
            })?;
        let cluster = match tokio::time::timeout(timeout * 3, client.get_async_connection()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(classify(&e, &shown)),
            Err(_) => {
                return Err(Error::Unreachable {
                    url: shown,
                    message: format!("no connection within {} ms", (timeout * 3).as_millis()),
                });
            }
        };
        let seed = RedisStore::open(first.as_ref(), timeout).await?;
        let store = RedisStore {
            conn: Conn::Cluster(cluster),
            plain: seed.plain,
            opener: std::sync::Arc::new(Opener::Cluster(Box::new(client))),
            url: shown,
            timeout,
        };
        store.ping().await?;
        Ok(store)
    }

    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    async fn ping(&self) -> Result<(), Error> {
        let mut ping = self.conn.clone();
        let pong: Result<String, RedisError> =
            tokio::time::timeout(self.timeout, redis::cmd("PING").query_async(&mut ping))
                .await
                .unwrap_or_else(|_| Err(timed_out(self.timeout)));
        pong.map(|_| ()).map_err(|e| classify(&e, &self.url))
    }

    /// Connects without loading the scripts: for tools that only read
    /// with plain commands (`rollcall inspect`).
    pub async fn open(url: &str, timeout: Duration) -> Result<RedisStore, Error> {
        let shown = redact(url);
        let client = redis::Client::open(url).map_err(|e| Error::BadUrl {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = match tokio::time::timeout(
            timeout * 3,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(classify(&e, &shown)),
            Err(_) => {
                return Err(Error::Unreachable {
                    url: shown,
                    message: format!("no connection within {} ms", (timeout * 3).as_millis()),
                });
            }
        };
        let store = RedisStore {
            conn: Conn::Single(conn.clone()),
            plain: conn,
            opener: std::sync::Arc::new(Opener::Single(client)),
            url: shown,
            timeout,
        };
        // A Redis that wants a password and got none connects fine; the
        // first command says NOAUTH. Find out now.
        store.ping().await?;
        Ok(store)
    }

    /// A new connection of its own, for commands that block it (a
    /// watcher's XREAD BLOCK): the shared one never waits behind them. Its
    /// replies are bounded by the store's timeout, as every other call's.
    pub(crate) async fn own_connection(&self) -> Result<Conn, Error> {
        let opened = match self.opener.as_ref() {
            Opener::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                tokio::time::timeout(
                    self.timeout * 3,
                    client.get_multiplexed_async_connection_with_config(&config),
                )
                .await
                .map(|c| c.map(Conn::Own))
            }
            Opener::Cluster(client) => {
                tokio::time::timeout(self.timeout * 3, client.get_async_connection())
                    .await
                    .map(|c| c.map(Conn::Cluster))
            }
        };
        match opened {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(classify(&e, &self.url)),
            Err(_) => Err(Error::Unreachable {
                url: self.url.clone(),
                message: format!("no connection within {} ms", (self.timeout * 3).as_millis()),
            }),
        }
    }

    /// The longest wait of one call (connect and reply).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The shared plain connection, for plain commands (inspect, dumps).
    /// On a cluster store it reaches only the first seed node: commands on
    /// keys of other nodes' slots get MOVED errors.
    pub fn connection(&self) -> ConnectionManager {
        self.plain.clone()
    }

    /// Loads every script (SCRIPT LOAD; on a cluster, on every primary), so
    /// that a Redis that refuses them is found at start-up, not at the
    /// first connect.
    pub async fn load_scripts(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        for script in Script::ALL {
            let loaded: Result<String, RedisError> = tokio::time::timeout(
                self.timeout,
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(script.source())
                    .query_async(&mut conn),
            )
            .await
            .unwrap_or_else(|_| Err(timed_out(self.timeout)));
            match loaded {
                Ok(got) if got == sha(script) => {}
                Ok(got) => {
                    return Err(Error::ScriptRejected {
                        script: script.name().into(),
                        message: format!("SCRIPT LOAD returned {got}, expected {}", sha(script)),
                    });
                }
                Err(e) => {
                    return Err(match classify(&e, &self.url) {
                        Error::Store { message } | Error::ScriptRejected { message, .. } => {
                            Error::ScriptRejected {
                                script: script.name().into(),
                                message,
                            }
                        }
                        other => other,
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs the calls in one pipeline; one reply per call, errors included.
    pub async fn run(&self, ops: &[Op]) -> Vec<Reply> {
        if ops.is_empty() {
            return Vec::new();
        }
        match tokio::time::timeout(self.timeout, self.try_run(ops)).await {
            Ok(Ok(replies)) => replies,
            Ok(Err(e)) => failed(ops, &format!("rollcall: Redis call failed: {e}")),
            Err(_) => failed(
                ops,
                &format!(
                    "rollcall: Redis did not answer within {} ms",
                    self.timeout.as_millis()
                ),
            ),
        }
    }

    /// Like [`RedisStore::run`], but a failure of the whole round trip
    /// (connection lost, refused) comes back as the redis-rs error.
    pub async fn try_run(&self, ops: &[Op]) -> Result<Vec<Reply>, RedisError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for op in ops {
            pipe.cmd("EVALSHA")
                .arg(sha(op.script))
                .arg(op.keys.len())
                .arg(&op.keys)
                .arg(&op.args);
        }
        let values: Vec<Value> = pipe.query_async(&mut conn).await?;
        if values.len() != ops.len() {
            return Err(RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "pipeline reply count differs from the calls sent",
            )));
        }
        // A NOSCRIPT call did not run: send those again with their source
        // (EVAL also caches the script for the next EVALSHA).
        let missing: Vec<usize> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| is_noscript(v))
            .map(|(i, _)| i)
            .collect();
        let mut replies: Vec<Reply> = values.into_iter().map(to_reply).collect();
        if !missing.is_empty() {
            let mut retry = redis::pipe();
            retry.ignore_errors();
            for &i in &missing {
                let op = &ops[i];
                retry
                    .cmd("EVAL")
                    .arg(op.script.source())
                    .arg(op.keys.len())
                    .arg(&op.keys)
                    .arg(&op.args);
            }
            let again: Vec<Value> = retry.query_async(&mut conn).await?;
            for (&i, v) in missing.iter().zip(again) {
                replies[i] = to_reply(v);
            }
        }
        Ok(replies)
    }
}

fn is_noscript(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) || e.code() == "NOSCRIPT")
}

fn failed(ops: &[Op], message: &str) -> Vec<Reply> {
    ops.iter().map(|_| Reply::error(message)).collect()
}

fn timed_out(after: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {} ms", after.as_millis()),
    ))
}
