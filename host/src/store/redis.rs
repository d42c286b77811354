//! Real Redis: one reconnecting multiplexed connection, scripts by EVALSHA
//! with a fallback to EVAL on NOSCRIPT, a burst of calls in one pipeline.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, ServerErrorKind, Value};
use rollcall_core::{Op, Reply, Script};

use crate::error::{Error, classify, redact};
use crate::reply::to_reply;

/// A connection to one Redis server. Clones share the connection; it
/// reconnects by itself after the connection is lost.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    url: String,
    timeout: Duration,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
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
            ConnectionManager::new_with_config(client, config),
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
        // A Redis that wants a password and got none connects fine; the
        // first command says NOAUTH. Find out now.
        let mut ping = conn.clone();
        let pong: Result<String, RedisError> =
            tokio::time::timeout(timeout, redis::cmd("PING").query_async(&mut ping))
                .await
                .unwrap_or_else(|_| Err(timed_out(timeout)));
        if let Err(e) = pong {
            return Err(classify(&e, &shown));
        }
        Ok(RedisStore {
            conn,
            url: shown,
            timeout,
        })
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The shared connection, for plain commands (inspect, dumps).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Loads every script (SCRIPT LOAD), so that a Redis that refuses them
    /// is found at start-up, not at the first connect.
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
