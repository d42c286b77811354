//! The JSON face of a session for the JS bindings: it feeds the core's
//! [`Session`] and encodes what the JS side must act on as one compact JSON
//! string, or nothing at all when there is nothing to do (the common case on
//! the hot path). Everything else a host does lives in the session. Plain
//! Rust, so it is tested natively.

use rollcall_core::session::Output;
use rollcall_core::{
    Answer, Config, ConfigError, Input, Millis, Query, Reply, Scope, Session, Token, Tracker, feed,
};
use serde::Serialize;

/// A session with its JSON encoding.
#[derive(Debug)]
pub struct Driver {
    session: Session,
}

impl Driver {
    /// `embedded`: single-server mode, the store is in memory. `nonce`: the
    /// process' random nonce (see `Tracker::with_nonce`).
    pub fn new(
        config: Config,
        node: &str,
        embedded: bool,
        nonce: u64,
    ) -> Result<Driver, ConfigError> {
        Ok(Driver {
            session: Session::new(config, node, nonce, embedded)?,
        })
    }

    /// See [`Session::record`].
    pub fn record(&mut self, output: bool) -> Result<(), String> {
        self.session.record(output).map_err(|e| e.to_string())
    }

    /// The trace lines recorded since the last call (`None`: none).
    pub fn take_trace(&mut self) -> Option<String> {
        self.session.take_trace()
    }

    /// The output lines recorded since the last call (`None`: none, or not
    /// asked for).
    pub fn take_trace_output(&mut self) -> Option<String> {
        self.session.take_trace_output()
    }

    pub fn tracker(&self) -> &Tracker {
        self.session.tracker()
    }

    pub fn is_embedded(&self) -> bool {
        self.session.is_embedded()
    }

    /// Feeds one input. `Ok(None)`: nothing to do. Inputs the session's
    /// policy ignores come back as `warnings`; `Err`: an input no host
    /// should send (a malformed id, an unknown token).
    pub fn feed(&mut self, now: Millis, input: Input) -> Result<Option<String>, String> {
        self.feed_as(now, input, output_json)
    }

    /// [`Self::feed`] with the output encoded by `encode`.
    pub fn feed_as<T>(
        &mut self,
        now: Millis,
        input: Input,
        encode: impl FnOnce(&Output) -> T,
    ) -> Result<Option<T>, String> {
        match self.session.feed(now, input) {
            Ok(_) => Ok(self.output(encode)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Single-server mode: runs the held writes (see [`Session::flush`]).
    pub fn flush(&mut self, now: Millis) -> Option<String> {
        self.flush_as(now, output_json)
    }

    /// [`Self::flush`] with the output encoded by `encode`.
    pub fn flush_as<T>(&mut self, now: Millis, encode: impl FnOnce(&Output) -> T) -> Option<T> {
        self.session.flush(now);
        self.output(encode)
    }

    /// Encodes and clears what the host must act on.
    fn output<T>(&mut self, encode: impl FnOnce(&Output) -> T) -> Option<T> {
        let out = self.session.output();
        if out.is_empty() {
            return None;
        }
        let encoded = encode(out);
        self.session.clear_output();
        Some(encoded)
    }

    /// Parses a normalised reply (JSON: null, integer, string, array,
    /// `{"error": ...}`) and feeds it.
    pub fn reply(
        &mut self,
        now: Millis,
        token: u64,
        reply_json: &str,
    ) -> Result<Option<String>, String> {
        let reply = reply_of(reply_json).unwrap_or_else(Reply::error);
        self.feed(now, reply_input(token, reply))
    }

    /// The `read` script call that answers `query`, as JSON (token 0).
    pub fn read_op(&self, query: &Query) -> String {
        let op = self
            .with_config(query)
            .op(self.session.tracker().schema(), Token(0));
        serde_json::to_string(&op).expect("plain data serializes")
    }

    /// Answers `query` from the embedded store (single-server mode), with
    /// the held writes run first.
    pub fn read_embedded(&mut self, now: Millis, query: &Query) -> Result<Answer, String> {
        let query = self.with_config(query);
        self.session
            .read_embedded(now, &query)
            .ok_or("rollcall: no embedded store: reads go to Redis")?
            .map_err(|e| e.to_string())
    }

    /// The query with this node's options where it takes them.
    fn with_config(&self, query: &Query) -> Query {
        match query {
            Query::LastSeen { user, .. } => Query::LastSeen {
                user: user.clone(),
                keep_ms: self.session.tracker().config().last_seen_ms,
            },
            other => other.clone(),
        }
    }

    /// The embedded feed's changes after `after` (at most `count`), as a
    /// JSON array of changes. The host flushes first (its flush acts on
    /// the output).
    pub fn feed_after(&self, after: &str, count: usize) -> Result<String, String> {
        let changes = self
            .embedded()?
            .feed_after(self.session.tracker().schema(), after, count)
            .map_err(|e| e.to_string())?;
        Ok(serde_json::to_string(&changes).expect("plain data serializes"))
    }

    /// The embedded feed's newest id (`0-0` for none).
    pub fn feed_newest(&self) -> Result<String, String> {
        Ok(self
            .embedded()?
            .feed_newest(self.session.tracker().schema()))
    }

    /// The embedded store, for a watcher in single-server mode.
    fn embedded(&self) -> Result<&rollcall_core::Keyspace, String> {
        self.session
            .keyspace()
            .ok_or_else(|| "rollcall: no embedded store: watch reads Redis".to_owned())
    }

    /// The arguments after `XREAD` of a watcher's blocking read.
    pub fn feed_read_args(&self, after: &str, count: usize, block_ms: u64) -> Vec<String> {
        feed::read_command(self.session.tracker().schema(), after, count, block_ms)
    }

    /// The arguments after `XREVRANGE` that find the newest change.
    pub fn feed_newest_args(&self) -> Vec<String> {
        feed::newest_command(self.session.tracker().schema())
    }
}

/// The session's output as compact JSON.
pub fn output_json(out: &Output) -> String {
    serde_json::to_string(out).expect("plain data serializes")
}

/// The input that answers call `token`.
pub fn reply_input(token: u64, reply: Reply) -> Input {
    Input::Reply {
        token: Token(token),
        reply,
    }
}

/// A normalised reply from its JSON.
pub fn reply_of(reply_json: &str) -> Result<Reply, String> {
    serde_json::from_str::<Reply>(reply_json)
        .map_err(|e| format!("rollcall: a reply that is not valid JSON: {e}"))
}

/// The changes of an XREAD reply, as a JSON array.
pub fn parse_feed(reply: &Reply) -> Result<String, String> {
    let changes = feed::parse_read(reply).map_err(|e| e.to_string())?;
    Ok(serde_json::to_string(&changes).expect("plain data serializes"))
}

/// The id of an XREVRANGE reply's entry (`0-0` for none).
pub fn parse_feed_newest(reply: &Reply) -> Result<String, String> {
    feed::parse_newest(reply).map_err(|e| e.to_string())
}

/// Parses the reply to a read.
pub fn parse_answer(query: &Query, reply: &Reply) -> Result<Answer, String> {
    query.parse(reply).map_err(|e| e.to_string())
}

/// An answer as JSON: a number or a sorted array of user ids.
pub fn answer_json(answer: &Answer) -> String {
    serde_json::to_string(answer).expect("plain data serializes")
}

/// Builds a query from its flat JS form. `what`: `clients`, `sockets`,
/// `users`, `members` (a page: `after` the cursor, `limit`), `user`,
/// `scopes` or `seen`. The scope is a room when `room` is given (in
/// `namespace`, default `/`), else a namespace when `namespace` is given,
/// else global.
pub fn query(
    what: &str,
    namespace: Option<String>,
    room: Option<String>,
    user: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
) -> Result<Query, String> {
    let scope = match (namespace, room) {
        (ns, Some(room)) => Scope::room(ns.unwrap_or_else(|| "/".to_owned()), room),
        (Some(ns), None) => Scope::namespace(ns),
        (None, None) => Scope::Global,
    };
    Ok(match what {
        "clients" => Query::Clients,
        "sockets" => Query::Sockets { scope },
        "users" => Query::Users { scope },
        "members" => Query::Members {
            scope,
            after,
            limit: limit.unwrap_or(rollcall_core::DEFAULT_PAGE),
        },
        "scopes" => Query::UserScopes {
            user: user.ok_or("rollcall: a scopes query needs a user id")?,
        },
        "user" => Query::UserSockets {
            user: user.ok_or("rollcall: a user query needs a user id")?,
        },
        // keep_ms: the node's last_seen_ms, set by Driver::with_config.
        "seen" => Query::LastSeen {
            user: user.ok_or("rollcall: a last-seen query needs a user id")?,
            keep_ms: 0,
        },
        other => return Err(format!("rollcall: unknown query {other:?}")),
    })
}

/// Every script as JSON: `[{"name", "sha", "source"}]`.
pub fn scripts_json() -> String {
    #[derive(Serialize)]
    struct Entry {
        name: &'static str,
        sha: String,
        source: &'static str,
    }
    let all: Vec<Entry> = rollcall_core::Script::ALL
        .iter()
        .map(|s| Entry {
            name: s.name(),
            sha: s.sha1(),
            source: s.source(),
        })
        .collect();
    serde_json::to_string(&all).expect("plain data serializes")
}

/// Checks options given as JSON (the fields of [`Config`]); `None` when
/// valid, else `{"option", "out_of_range", "message"}` as JSON.
pub fn validate_config(json: &str) -> Option<String> {
    let error = match config_from_json(json) {
        Ok(config) => config.validate().err()?,
        Err(e) => e,
    };
    Some(config_error_json(&error))
}

pub fn config_from_json(json: &str) -> Result<Config, ConfigError> {
    serde_json::from_str::<Config>(json).map_err(|e| ConfigError {
        option: "options",
        out_of_range: false,
        message: e.to_string(),
    })
}

pub fn config_error_json(e: &ConfigError) -> String {
    #[derive(Serialize)]
    struct Json<'a> {
        option: &'a str,
        out_of_range: bool,
        message: &'a str,
    }
    serde_json::to_string(&Json {
        option: e.option,
        out_of_range: e.out_of_range,
        message: &e.message,
    })
    .expect("plain data serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(sid: &str) -> Input {
        Input::Connect {
            sid: sid.into(),
            user: Some("ann".into()),
            namespace: "/".into(),
        }
    }

    #[test]
    fn outputs_are_compact_json_or_nothing() {
        let mut d = Driver::new(Config::default(), "n1", true, 0).unwrap();
        let first = d.feed(1_000, Input::Tick).unwrap().unwrap();
        assert!(
            first.starts_with("{\"tick\":") && first.ends_with("\"flush\":true}"),
            "{first}"
        );
        let out = d.flush(1_000).unwrap();
        assert!(out.contains("\"ready\":true"), "{out}");
        let out = d.feed(1_001, connect("s1")).unwrap().unwrap();
        assert_eq!(out, r#"{"flush":true}"#);
        assert!(d.flush(1_001).unwrap().contains("user_online"));
        // Connection state recovery: a duplicate connect is a warning.
        let out = d.feed(1_002, connect("s1")).unwrap().unwrap();
        assert!(
            out.starts_with(r#"{"warnings":["rollcall: ignored: socket"#),
            "{out}"
        );
        assert!(
            d.feed(1_003, Input::Disconnect { sid: String::new() })
                .is_err()
        );
        assert_eq!(
            d.read_embedded(1_004, &Query::Clients).unwrap(),
            Answer::Count(0)
        );
    }

    #[test]
    fn data_is_set_refused_and_reported_as_json() {
        let mut d = Driver::new(Config::default(), "n1", true, 0).unwrap();
        d.feed(1_000, Input::Tick).unwrap();
        d.flush(1_000);
        d.feed(1_001, connect("s1")).unwrap();
        d.flush(1_001);
        let set = |data: &str| Input::SetData {
            sid: "s1".into(),
            data: Some(data.into()),
        };
        d.feed(1_002, set(r#"{"status":"away"}"#)).unwrap();
        let out = d.flush(1_002).unwrap();
        assert!(
            out.contains(r#""type":"user_updated","user":"ann","data":["{\"status\":\"away\"}"]"#),
            "{out}"
        );
        // Not an object, too long: the caller's error, nothing changes.
        assert!(d.feed(1_003, set("[1]")).is_err());
        let long = format!(r#"{{"x":"{}"}}"#, "y".repeat(1_100));
        assert!(
            d.feed(1_003, set(&long))
                .unwrap_err()
                .contains("max_data_bytes")
        );
        assert_eq!(d.flush(1_003), None);
        let page = Query::Members {
            scope: Scope::Global,
            after: None,
            limit: 10,
        };
        assert_eq!(
            answer_json(&d.read_embedded(1_004, &page).unwrap()),
            r#"{"members":[{"user":"ann","sockets":1,"since":1001,"data":["{\"status\":\"away\"}"]}],"cursor":null}"#
        );
    }

    #[test]
    fn redis_mode_hands_ops_out_and_takes_replies_back() {
        let mut d = Driver::new(Config::default(), "n1", false, 0).unwrap();
        let out = d.feed(0, Input::Tick).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let ops = v["ops"].as_array().unwrap();
        assert_eq!(ops[0]["script"], "register");
        let token = ops[0]["token"].as_u64().unwrap();
        // The first registration failed: the host hears it once.
        let out = d
            .reply(1, token, r#"{"error":"connection lost"}"#)
            .unwrap()
            .unwrap();
        assert!(
            out.contains("store_error") && out.contains(r#""failed":"connection lost""#),
            "{out}"
        );
        // Not JSON at all: a failed call, not a crash.
        assert!(d.reply(2, token, "{").is_err(), "the token was answered");
        // A token nobody waits for is a host bug.
        assert!(d.reply(1, 999, "null").is_err());
        assert!(d.read_embedded(3, &Query::Clients).is_err());
    }

    #[test]
    fn queries_and_config_errors_have_a_flat_form() {
        assert_eq!(
            query("users", None, Some("news".into()), None, None, None).unwrap(),
            Query::Users {
                scope: Scope::room("/", "news")
            }
        );
        assert!(query("user", None, None, None, None, None).is_err());
        assert_eq!(validate_config(r#"{"ttl_ms":10000}"#), None);
        let e = validate_config(r#"{"ttl_ms":100,"heartbeat_ms":100}"#).unwrap();
        assert!(e.contains("\"option\":\"ttl_ms\""), "{e}");
        assert!(e.contains("\"out_of_range\":true"), "{e}");
        let page = Query::Members {
            scope: Scope::Global,
            after: None,
            limit: 1,
        };
        let reply = reply_of(r#"[1,"a",2,7,1,"{\"s\":1}"]"#).unwrap();
        let answer = parse_answer(&page, &reply).unwrap();
        assert_eq!(
            answer_json(&answer),
            r#"{"members":[{"user":"a","sockets":2,"since":7,"data":["{\"s\":1}"]}],"cursor":"a"}"#
        );
        let places = query("scopes", None, None, Some("a".into()), None, None).unwrap();
        let answer = parse_answer(&places, &reply_of(r#"["g",5,"r1:/x",6]"#).unwrap()).unwrap();
        assert_eq!(
            answer_json(&answer),
            r#"[{"scope":{"kind":"room","namespace":"/","room":"x"},"since":6}]"#
        );
        assert!(scripts_json().contains("\"sha\""));
    }
}
