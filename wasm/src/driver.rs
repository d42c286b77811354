//! The host-side half of a tracker that both JS bindings share: it feeds
//! inputs, runs ops against the embedded store in single-server mode, and
//! encodes what the JS side must act on as one compact JSON string, or
//! nothing at all when there is nothing to do (the common case on the hot
//! path). Plain Rust, so it is tested natively.

use rollcall_core::trace::{Header, input_line, step_line};
use rollcall_core::{
    Answer, Config, ConfigError, Event, Input, InputError, Keyspace, Millis, Op, Query, Reply,
    Scope, Step, Token, Tracker,
};
use serde::Serialize;

/// What the JS side must do after an input, as serialized.
#[derive(Debug, Serialize)]
struct Out<'a> {
    /// Script calls to run against Redis (never in embedded mode).
    #[serde(skip_serializing_if = "<[Op]>::is_empty")]
    ops: &'a [Op],
    #[serde(skip_serializing_if = "<[Event]>::is_empty")]
    events: &'a [Event],
    /// Arm the tick timer for this time (replacing the armed one).
    #[serde(skip_serializing_if = "Option::is_none")]
    tick: Option<Millis>,
    /// A reply the tracker could not use: it treats the call as failed and
    /// heals on its own; the host may want to log it.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Embedded mode: ops are held; call [`Driver::flush`] soon (once the
    /// current burst of inputs is in: they coalesce into one write).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    flush: bool,
    /// Recording: new trace lines are pending; call [`Driver::take_trace`]
    /// soon (once the current burst is in).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    trace: bool,
}

/// A trace being recorded (see `rollcall_core::trace`): the lines since the
/// JS side last took them, each ending in `\n`.
#[derive(Debug)]
struct Recording {
    trace: String,
    /// The output line of every step, when asked for.
    output: Option<String>,
    /// The JS side was told that lines are pending.
    announced: bool,
}

/// A tracker with its host-side plumbing.
#[derive(Debug)]
pub struct Driver {
    tracker: Tracker,
    /// `Some` in single-server mode: ops run here, never leave.
    store: Option<Keyspace>,
    /// Single-server mode: ops wait here for [`Driver::flush`].
    held: Vec<Op>,
    /// The tick the JS side has a timer for. A later `next_tick` needs no
    /// new timer: an early tick is harmless and reports the new time.
    armed: Option<Millis>,
    ops: Vec<Op>,
    events: Vec<Event>,
    error: Option<String>,
    recording: Option<Recording>,
    /// An input went to the tracker: too late to start a recording.
    fed: bool,
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
            tracker: Tracker::with_nonce(config, node, nonce)?,
            store: embedded.then(Keyspace::new),
            held: Vec::new(),
            armed: None,
            ops: Vec::new(),
            events: Vec::new(),
            error: None,
            recording: None,
            fed: false,
        })
    }

    /// Starts recording every input as a trace (the header line first),
    /// and with `output` the output line of every step beside it. Only
    /// before the first input: a trace replays from the start.
    pub fn record(&mut self, output: bool) -> Result<(), String> {
        if self.fed {
            return Err("rollcall: a recording must start before the first input".to_owned());
        }
        let mut trace = Header::of(&self.tracker).to_line();
        trace.push('\n');
        self.recording = Some(Recording {
            trace,
            output: output.then(String::new),
            announced: false,
        });
        Ok(())
    }

    /// The trace lines recorded since the last call (`None`: none).
    pub fn take_trace(&mut self) -> Option<String> {
        let rec = self.recording.as_mut()?;
        rec.announced = false;
        (!rec.trace.is_empty()).then(|| std::mem::take(&mut rec.trace))
    }

    /// The output lines recorded since the last call (`None`: none, or not
    /// asked for).
    pub fn take_trace_output(&mut self) -> Option<String> {
        let out = self.recording.as_mut()?.output.as_mut()?;
        (!out.is_empty()).then(|| std::mem::take(out))
    }

    /// Every call of the tracker goes through here, to be recorded.
    fn handle(&mut self, now: Millis, input: Input) -> Result<Step, InputError> {
        self.fed = true;
        let Some(rec) = &mut self.recording else {
            return self.tracker.handle(now, input);
        };
        rec.trace.push_str(&input_line(now, &input));
        rec.trace.push('\n');
        let result = self.tracker.handle(now, input);
        if let Some(out) = &mut rec.output {
            out.push_str(&step_line(&result));
            out.push('\n');
        }
        result
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    pub fn is_embedded(&self) -> bool {
        self.store.is_some()
    }

    /// Feeds one input. `Ok(None)`: nothing to do. Socket and client inputs
    /// the tracker finds redundant (a duplicate connect after connection
    /// state recovery, an event for a socket it never saw or already
    /// dropped, anything after shutdown) are ignored. `Err`: an input no
    /// host should send (a malformed id, an unknown token).
    pub fn feed(&mut self, now: Millis, input: Input) -> Result<Option<String>, String> {
        if matches!(input, Input::Tick) {
            // The timer fired: whatever comes next needs a new one.
            self.armed = None;
        }
        match self.handle(now, input) {
            Ok(step) => self.absorb(step),
            Err(
                InputError::DuplicateSocket { .. }
                | InputError::UnknownSocket { .. }
                | InputError::DuplicateClient { .. }
                | InputError::UnknownClient { .. }
                | InputError::Closed,
            ) => {}
            Err(e @ InputError::BadReply { .. }) => self.error = Some(e.to_string()),
            Err(e) => {
                self.ops.clear();
                self.events.clear();
                return Err(e.to_string());
            }
        }
        let mut flush = false;
        if self.store.is_some() && !self.ops.is_empty() {
            // Hold the ops: the inputs that follow before the flush coalesce
            // into the next write, as with a Redis call in flight.
            flush = self.held.is_empty();
            self.held.append(&mut self.ops);
        }
        Ok(self.output(flush))
    }

    /// Single-server mode: runs the held ops (and the ops their replies
    /// cause) against the in-memory store. Call it when an output says
    /// `flush`, and before reading.
    pub fn flush(&mut self, now: Millis) -> Option<String> {
        self.ops.append(&mut self.held);
        self.run_embedded(now);
        self.output(false)
    }

    fn absorb(&mut self, step: Step) {
        self.ops.extend(step.ops);
        self.events.extend(step.events);
    }

    /// In single-server mode, runs every op (and the ops its reply causes)
    /// against the in-memory store.
    fn run_embedded(&mut self, now: Millis) {
        if self.store.is_none() {
            return;
        }
        while !self.ops.is_empty() {
            for op in std::mem::take(&mut self.ops) {
                let Some(store) = &mut self.store else {
                    return;
                };
                let reply = store.run(now, &op);
                // The store's replies are inputs: they are recorded too.
                match self.handle(
                    now,
                    Input::Reply {
                        token: op.token,
                        reply,
                    },
                ) {
                    Ok(step) => {
                        self.ops.extend(step.ops);
                        self.events.extend(step.events);
                    }
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
        }
    }

    /// Encodes and clears what the host must act on.
    fn output(&mut self, flush: bool) -> Option<String> {
        let tick = match (self.tracker.next_tick(), self.armed) {
            (Some(next), Some(armed)) if next >= armed => None,
            (Some(next), _) => {
                self.armed = Some(next);
                Some(next)
            }
            (None, _) => {
                self.armed = None;
                None
            }
        };
        let trace = match &mut self.recording {
            Some(rec) if !rec.announced && !rec.trace.is_empty() => {
                rec.announced = true;
                true
            }
            _ => false,
        };
        if self.ops.is_empty()
            && self.events.is_empty()
            && tick.is_none()
            && self.error.is_none()
            && !flush
            && !trace
        {
            return None;
        }
        let out = Out {
            ops: &self.ops,
            events: &self.events,
            tick,
            error: self.error.take(),
            flush,
            trace,
        };
        let json = serde_json::to_string(&out).expect("plain data serializes");
        self.ops.clear();
        self.events.clear();
        Some(json)
    }

    /// Parses a normalised reply (JSON: null, integer, string, array,
    /// `{"error": ...}`) and feeds it.
    pub fn reply(
        &mut self,
        now: Millis,
        token: u64,
        reply_json: &str,
    ) -> Result<Option<String>, String> {
        let reply = serde_json::from_str::<Reply>(reply_json).unwrap_or_else(|e| {
            Reply::error(format!("rollcall: a reply that is not valid JSON: {e}"))
        });
        self.feed(
            now,
            Input::Reply {
                token: Token(token),
                reply,
            },
        )
    }

    /// The `read` script call that answers `query`, as JSON (token 0).
    pub fn read_op(&self, query: &Query) -> String {
        let op = query.op(self.tracker.schema(), Token(0));
        serde_json::to_string(&op).expect("plain data serializes")
    }

    /// Answers `query` from the embedded store (single-server mode). Call
    /// [`Driver::flush`] first, or the answer misses the held writes.
    pub fn read_embedded(&mut self, now: Millis, query: &Query) -> Result<Answer, String> {
        let op = query.op(self.tracker.schema(), Token(0));
        let store = self
            .store
            .as_mut()
            .ok_or("rollcall: no embedded store: reads go to Redis")?;
        query.parse(&store.run(now, &op)).map_err(|e| e.to_string())
    }
}

/// Parses a normalised reply to a read.
pub fn parse_answer(query: &Query, reply_json: &str) -> Result<Answer, String> {
    let reply = serde_json::from_str::<Reply>(reply_json)
        .map_err(|e| format!("rollcall: a reply that is not valid JSON: {e}"))?;
    query.parse(&reply).map_err(|e| e.to_string())
}

/// An answer as JSON: a number or a sorted array of user ids.
pub fn answer_json(answer: &Answer) -> String {
    serde_json::to_string(answer).expect("plain data serializes")
}

/// Builds a query from its flat JS form. `what`: `clients`, `sockets`,
/// `users`, `list` or `user`. The scope is a room when `room` is given (in
/// `namespace`, default `/`), else a namespace when `namespace` is given,
/// else global.
pub fn query(
    what: &str,
    namespace: Option<String>,
    room: Option<String>,
    user: Option<String>,
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
        "list" => Query::UserList { scope },
        "user" => Query::UserSockets {
            user: user.ok_or("rollcall: a user query needs a user id")?,
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

    fn embedded() -> Driver {
        let config = Config {
            ttl_ms: 2_000,
            heartbeat_ms: 500,
            reap_ms: 500,
            ..Config::default()
        };
        Driver::new(config, "n1", true, 0).unwrap()
    }

    fn connect(sid: &str, user: Option<&str>) -> Input {
        Input::Connect {
            sid: sid.into(),
            user: user.map(Into::into),
            namespace: "/".into(),
        }
    }

    fn count(d: &mut Driver, q: Query) -> Answer {
        d.read_embedded(1_000, &q).unwrap()
    }

    /// Feeds and, when asked to, flushes: both outputs, joined.
    fn step(d: &mut Driver, now: Millis, input: Input) -> String {
        let first = d.feed(now, input).unwrap().unwrap_or_default();
        let second = if first.contains("\"flush\":true") {
            d.flush(now).unwrap_or_default()
        } else {
            String::new()
        };
        format!("{first}{second}")
    }

    #[test]
    fn embedded_mode_runs_ops_inside_and_reports_only_events_and_ticks() {
        let mut d = embedded();
        let first = step(&mut d, 1_000, Input::Tick);
        assert!(!first.contains("\"ops\""), "{first}");
        assert!(first.contains("\"tick\":"), "{first}");
        let out = step(&mut d, 1_000, connect("s1", Some("ann")));
        assert!(out.contains("user_online"), "{out}");
        assert!(!out.contains("\"ops\""), "{out}");
        // A burst: the first input asks for a flush, the others coalesce
        // into the same write and need nothing.
        let out = d.feed(1_001, connect("s2", Some("ann"))).unwrap().unwrap();
        assert_eq!(out, r#"{"flush":true}"#);
        assert_eq!(d.feed(1_001, connect("s3", Some("bob"))).unwrap(), None);
        // Connection state recovery: a duplicate connect is ignored.
        assert_eq!(d.feed(1_002, connect("s2", Some("ann"))).unwrap(), None);
        let out = d.flush(1_002).unwrap();
        assert!(out.contains("bob") && !out.contains("ann"), "{out}");
        let users = Query::Users {
            scope: Scope::Global,
        };
        assert_eq!(count(&mut d, users.clone()), Answer::Count(2));
        assert_eq!(
            count(
                &mut d,
                Query::Sockets {
                    scope: Scope::Global
                }
            ),
            Answer::Count(3)
        );
        let out = step(&mut d, 1_003, Input::Disconnect { sid: "s1".into() });
        assert!(!out.contains("user_offline"), "{out}");
        let out = step(&mut d, 1_004, Input::Disconnect { sid: "s2".into() });
        assert!(out.contains("user_offline"), "{out}");
        assert_eq!(count(&mut d, users), Answer::Count(1));
        // Unknown sockets are ignored, malformed ids are not.
        assert_eq!(
            d.feed(1_005, Input::Disconnect { sid: "zz".into() })
                .unwrap(),
            None
        );
        assert!(d.feed(1_005, connect("", None)).is_err());
    }

    #[test]
    fn a_timer_is_asked_for_only_when_an_earlier_one_is_needed() {
        let mut d = embedded();
        let out = step(&mut d, 1_000, Input::Tick);
        assert!(out.contains("\"tick\":"), "{out}");
        // The tick the timer asked for: it reports the next one again.
        let out = step(&mut d, 1_500, Input::Tick);
        assert!(out.contains("\"tick\":"), "{out}");
    }

    #[test]
    fn redis_mode_hands_ops_out_and_takes_replies_back() {
        let mut d = Driver::new(Config::default(), "n1", false, 0).unwrap();
        let out = d.feed(0, Input::Tick).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let ops = v["ops"].as_array().unwrap();
        assert_eq!(ops[0]["script"], "register");
        let token = ops[0]["token"].as_u64().unwrap();
        // A failed call: the tracker reports it and retries later.
        let out = d
            .reply(1, token, r#"{"error":"connection lost"}"#)
            .unwrap()
            .unwrap();
        assert!(out.contains("store_error"), "{out}");
        // A token nobody waits for is a host bug.
        assert!(d.reply(1, 999, "null").is_err());
    }

    #[test]
    fn a_recording_replays_to_the_live_output_in_both_modes() {
        for embedded_mode in [true, false] {
            let mut d = if embedded_mode {
                embedded()
            } else {
                Driver::new(Config::default(), "n1", false, 0).unwrap()
            };
            d.record(true).unwrap();
            let first = d.feed(1_000, Input::Tick).unwrap().unwrap();
            assert!(first.contains("\"trace\":true"), "{first}");
            if embedded_mode {
                d.flush(1_000);
            } else {
                let v: serde_json::Value = serde_json::from_str(&first).unwrap();
                let token = v["ops"][0]["token"].as_u64().unwrap();
                d.reply(1_001, token, r#"["OK","1",0]"#).unwrap();
            }
            // Announced once per batch: the next output does not repeat it.
            let out = d.feed(1_002, connect("s1", Some("ann"))).unwrap();
            assert!(!out.unwrap_or_default().contains("\"trace\""));
            // Inputs the driver ignores or refuses are recorded too.
            d.feed(1_003, Input::Disconnect { sid: "zz".into() })
                .unwrap();
            assert!(d.feed(1_003, connect("", None)).is_err());
            if embedded_mode {
                d.flush(1_004);
            }
            let trace = d.take_trace().unwrap();
            let live = d.take_trace_output().unwrap();
            assert_eq!(d.take_trace(), None);
            assert!(trace.starts_with("{\"rollcall_trace\":1,"), "{trace}");
            assert_eq!(trace.lines().count(), live.lines().count() + 1);
            assert_eq!(rollcall_core::trace::replay(&trace).unwrap(), live);
            // Lines after a take are announced again.
            let out = d.feed(1_005, Input::Tick).unwrap().unwrap();
            assert!(out.contains("\"trace\":true"), "{out}");
            assert!(d.take_trace().unwrap().ends_with("{\"type\":\"tick\"}}\n"));
            assert!(d.record(false).is_err(), "too late to start");
        }
    }

    #[test]
    fn queries_and_config_errors_have_a_flat_form() {
        assert_eq!(
            query("users", None, Some("news".into()), None).unwrap(),
            Query::Users {
                scope: Scope::room("/", "news")
            }
        );
        assert!(query("user", None, None, None).is_err());
        assert_eq!(validate_config(r#"{"ttl_ms":10000}"#), None);
        let e = validate_config(r#"{"ttl_ms":100,"heartbeat_ms":100}"#).unwrap();
        assert!(e.contains("\"option\":\"ttl_ms\""), "{e}");
        assert!(e.contains("\"out_of_range\":true"), "{e}");
        let answer = parse_answer(
            &Query::UserList {
                scope: Scope::Global,
            },
            r#"["b","a"]"#,
        )
        .unwrap();
        assert_eq!(answer_json(&answer), r#"["a","b"]"#);
        assert!(scripts_json().contains("\"sha\""));
    }
}
