//! The wasm-bindgen API. JS names are camelCase; `pkg/index.js` is the only
//! intended caller.

use rollcall_core::session::Output;
use rollcall_core::{Input, Millis, Reply};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::driver::{self, Driver};
use crate::value;

/// JS numbers are f64; times and tokens are whole and far below 2^53.
fn ms(now: f64) -> Millis {
    if now.is_finite() && now > 0.0 {
        now as Millis
    } else {
        0
    }
}

fn fail(message: String) -> JsError {
    JsError::new(&message)
}

/// The session's output for JS: an object (serde-wasm-bindgen, `null`
/// for a missing value as in JSON) or its JSON text.
fn encode(out: &Output, values: bool) -> JsValue {
    if values {
        let serializer = serde_wasm_bindgen::Serializer::json_compatible();
        out.serialize(&serializer).expect("an output is plain data")
    } else {
        JsValue::from_str(&driver::output_json(out))
    }
}

/// One node's tracker, for `pkg/index.js`. Every input method takes the
/// time in ms and returns `undefined` when there is nothing to do, else
/// the session's output (`rollcall_core::session::Output`: `{ops?,
/// events?, tick?, flush?, trace?, ready?, failed?, warnings?}`) as its
/// JSON text, or as an object once `valueOutputs` is set. JSON is the
/// default: `JSON.parse` of one string beat serde-wasm-bindgen's object
/// building (BENCHMARKS.md 14); replies go the other way, in as values.
#[wasm_bindgen]
pub struct RawTracker {
    driver: Driver,
    /// Outputs as objects (else JSON text, the default).
    values: bool,
}

impl RawTracker {
    fn input(&mut self, now: f64, input: Input) -> Result<JsValue, JsError> {
        let values = self.values;
        self.driver
            .feed_as(ms(now), input, |out| encode(out, values))
            .map(|out| out.unwrap_or(JsValue::UNDEFINED))
            .map_err(fail)
    }
}

#[wasm_bindgen]
impl RawTracker {
    /// `config`: the core's options as JSON (snake_case fields);
    /// `embedded`: single-server mode with the in-memory store; `nonce`: a
    /// random whole number per process, below 2^40 (incarnation ids of this
    /// node id then never repeat; `undefined`: 0, as in old traces).
    #[wasm_bindgen(constructor)]
    pub fn new(
        config: &str,
        node: &str,
        embedded: bool,
        nonce: Option<f64>,
    ) -> Result<RawTracker, JsError> {
        let config = driver::config_from_json(config).map_err(|e| fail(e.to_string()))?;
        // Only the JS number's shape here; its range is the core's rule
        // (Tracker::MAX_NONCE; a larger one saturates and is refused there).
        let nonce = match nonce {
            None => 0,
            Some(n) if n.fract() == 0.0 && n >= 0.0 => n as u64,
            Some(n) => {
                return Err(fail(format!(
                    "rollcall: nonce must be a whole number, got {n}"
                )));
            }
        };
        let driver = Driver::new(config, node, embedded, nonce).map_err(|e| fail(e.to_string()))?;
        Ok(RawTracker {
            driver,
            values: false,
        })
    }

    #[wasm_bindgen(getter, js_name = nodeId)]
    pub fn node_id(&self) -> String {
        self.driver.tracker().node().to_owned()
    }

    /// Whether outputs are objects (serde-wasm-bindgen) or JSON text (the
    /// default, the faster: see BENCHMARKS.md 14).
    #[wasm_bindgen(getter, js_name = valueOutputs)]
    pub fn value_outputs(&self) -> bool {
        self.values
    }

    #[wasm_bindgen(setter, js_name = valueOutputs)]
    pub fn set_value_outputs(&mut self, values: bool) {
        self.values = values;
    }

    #[wasm_bindgen(getter)]
    pub fn embedded(&self) -> bool {
        self.driver.is_embedded()
    }

    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> bool {
        self.driver.tracker().is_closed()
    }

    /// Sockets connected to this node.
    #[wasm_bindgen(getter, js_name = localSockets)]
    pub fn local_sockets(&self) -> u32 {
        self.driver.tracker().local_sockets() as u32
    }

    /// Distinct users with a socket on this node (walks its counters: for
    /// a metrics scrape).
    #[wasm_bindgen(js_name = localUsers)]
    pub fn local_users(&self) -> u32 {
        self.driver.tracker().local_users() as u32
    }

    /// What the tracker sent and emitted so far, as the samples of every
    /// counter of the metric catalogue: JSON `{name: [[type label or null,
    /// value], ..]}` (`Stats::counter_samples`).
    #[wasm_bindgen(js_name = counterSamples)]
    pub fn counter_samples(&self) -> String {
        use std::fmt::Write as _;
        // Written by hand: the names and labels are the core's plain ASCII
        // constants, and serde's code for this shape costs the module 12 KB.
        let stats = self.driver.tracker().stats();
        let mut out = String::from("{");
        for m in rollcall_core::METRICS {
            let Some(samples) = stats.counter_samples(m.name) else {
                continue;
            };
            if out.len() > 1 {
                out.push(',');
            }
            let _ = write!(out, "\"{}\":[", m.name);
            for (i, (label, v)) in samples.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = match label {
                    Some(l) => write!(out, "{sep}[\"{l}\",{v}]"),
                    None => write!(out, "{sep}[null,{v}]"),
                };
            }
            out.push(']');
        }
        out.push('}');
        out
    }

    /// Low-level clients open on this node.
    #[wasm_bindgen(getter, js_name = localClients)]
    pub fn local_clients(&self) -> u32 {
        self.driver.tracker().local_clients() as u32
    }

    /// A mark for read-your-writes: reads taken now must wait until
    /// `isVisible(mark)` (see `Tracker::read_barrier`).
    #[wasm_bindgen(js_name = readBarrier)]
    pub fn read_barrier(&self) -> f64 {
        self.driver.tracker().read_barrier() as f64
    }

    /// Whether the store holds every input up to `barrier`.
    #[wasm_bindgen(js_name = isVisible)]
    pub fn is_visible(&self, barrier: f64) -> bool {
        self.driver.tracker().is_visible(ms(barrier))
    }

    pub fn tick(&mut self, now: f64) -> Result<JsValue, JsError> {
        self.input(now, Input::Tick)
    }

    /// `user`: `undefined` for an anonymous socket.
    pub fn connect(
        &mut self,
        now: f64,
        sid: String,
        user: Option<String>,
        namespace: String,
    ) -> Result<JsValue, JsError> {
        self.input(
            now,
            Input::Connect {
                sid,
                user,
                namespace,
            },
        )
    }

    pub fn disconnect(&mut self, now: f64, sid: String) -> Result<JsValue, JsError> {
        self.input(now, Input::Disconnect { sid })
    }

    pub fn join(&mut self, now: f64, sid: String, room: String) -> Result<JsValue, JsError> {
        self.input(now, Input::Join { sid, room })
    }

    pub fn leave(&mut self, now: f64, sid: String, room: String) -> Result<JsValue, JsError> {
        self.input(now, Input::Leave { sid, room })
    }

    /// The socket's user becomes `user` (`undefined`: anonymous).
    pub fn identify(
        &mut self,
        now: f64,
        sid: String,
        user: Option<String>,
    ) -> Result<JsValue, JsError> {
        self.input(now, Input::Identify { sid, user })
    }

    /// The socket's data becomes `data`, the JSON text of an object (at
    /// most `maxDataBytes` long); `undefined` removes it.
    #[wasm_bindgen(js_name = setData)]
    pub fn set_data(
        &mut self,
        now: f64,
        sid: String,
        data: Option<String>,
    ) -> Result<JsValue, JsError> {
        self.input(now, Input::SetData { sid, data })
    }

    /// The longest data a socket may have, in bytes of its JSON text (the
    /// `max_data_bytes` option).
    #[wasm_bindgen(getter, js_name = maxDataBytes)]
    pub fn max_data_bytes(&self) -> u32 {
        self.driver.tracker().config().max_data_bytes
    }

    #[wasm_bindgen(js_name = clientOpen)]
    pub fn client_open(&mut self, now: f64, cid: String) -> Result<JsValue, JsError> {
        self.input(now, Input::ClientOpen { cid })
    }

    #[wasm_bindgen(js_name = clientClose)]
    pub fn client_close(&mut self, now: f64, cid: String) -> Result<JsValue, JsError> {
        self.input(now, Input::ClientClose { cid })
    }

    /// The reply to op `token`, normalised to JSON: null, an integer, a
    /// string, an array of those, or `{"error": "..."}`.
    pub fn reply(&mut self, now: f64, token: f64, reply: &str) -> Result<JsValue, JsError> {
        let reply = driver::reply_of(reply).unwrap_or_else(Reply::error);
        self.input(now, driver::reply_input(ms(token), reply))
    }

    /// The reply to op `token` as the app's Redis client resolved it (or
    /// the error it threw): read in place with js-sys, no JSON (see
    /// [`crate::value`]). As fast as `reply` within the noise, or a few per
    /// cent slower (BENCHMARKS.md 14): the package sends JSON.
    #[wasm_bindgen(js_name = replyValue)]
    pub fn reply_value(
        &mut self,
        now: f64,
        token: f64,
        reply: JsValue,
    ) -> Result<JsValue, JsError> {
        self.input(now, driver::reply_input(ms(token), value::reply_of(&reply)))
    }

    /// Records every input from now on as a trace (see
    /// `rollcall_core::trace`), and with `output` the output line of each
    /// step beside it. Call it before the first input. Outputs then say
    /// `trace: true` when lines are pending: take them with `takeTrace`
    /// and `takeTraceOutput` (once the current burst is in).
    pub fn record(&mut self, output: bool) -> Result<(), JsError> {
        self.driver.record(output).map_err(fail)
    }

    /// The trace lines recorded since the last call, each ending in a
    /// newline; `undefined` when there are none.
    #[wasm_bindgen(js_name = takeTrace)]
    pub fn take_trace(&mut self) -> Option<String> {
        self.driver.take_trace()
    }

    /// The output lines recorded since the last call, as `takeTrace`.
    #[wasm_bindgen(js_name = takeTraceOutput)]
    pub fn take_trace_output(&mut self) -> Option<String> {
        self.driver.take_trace_output()
    }

    /// Single-server mode: runs the held writes. Call it when an output
    /// says `flush` (after the current burst of inputs) and before reading.
    pub fn flush(&mut self, now: f64) -> JsValue {
        let values = self.values;
        self.driver
            .flush_as(ms(now), |out| encode(out, values))
            .unwrap_or(JsValue::UNDEFINED)
    }

    pub fn shutdown(&mut self, now: f64) -> Result<JsValue, JsError> {
        self.input(now, Input::Shutdown)
    }

    /// The `read` op answering a query, as JSON. `what`: `clients`,
    /// `sockets`, `users`, `members` (with `after` and `limit`), `user`,
    /// `scopes` or `seen` (see `driver::query`).
    #[wasm_bindgen(js_name = readOp)]
    pub fn read_op(
        &self,
        what: &str,
        namespace: Option<String>,
        room: Option<String>,
        user: Option<String>,
        after: Option<String>,
        limit: Option<u32>,
    ) -> Result<String, JsError> {
        let query = driver::query(what, namespace, room, user, after, limit).map_err(fail)?;
        Ok(self.driver.read_op(&query))
    }

    /// Answers a query from the embedded store, as JSON (a number, a time
    /// or null, a page `{members, cursor}`, or an array of places).
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = readEmbedded)]
    pub fn read_embedded(
        &mut self,
        now: f64,
        what: &str,
        namespace: Option<String>,
        room: Option<String>,
        user: Option<String>,
        after: Option<String>,
        limit: Option<u32>,
    ) -> Result<String, JsError> {
        let query = driver::query(what, namespace, room, user, after, limit).map_err(fail)?;
        let answer = self.driver.read_embedded(ms(now), &query).map_err(fail)?;
        Ok(driver::answer_json(&answer))
    }
}

#[wasm_bindgen(js_class = RawTracker)]
impl RawTracker {
    /// The embedded change feed after `after`, at most `count` changes, as
    /// a JSON array.
    #[wasm_bindgen(js_name = feedAfter)]
    pub fn feed_after(&self, after: &str, count: u32) -> Result<String, JsError> {
        self.driver.feed_after(after, count as usize).map_err(fail)
    }

    /// The embedded change feed's newest id (`0-0` for none).
    #[wasm_bindgen(js_name = feedNewest)]
    pub fn feed_newest(&self) -> Result<String, JsError> {
        self.driver.feed_newest().map_err(fail)
    }

    /// `XREAD` arguments of a watcher's blocking read, as JSON.
    #[wasm_bindgen(js_name = feedReadArgs)]
    pub fn feed_read_args(&self, after: &str, count: u32, block_ms: u32) -> String {
        let args = self
            .driver
            .feed_read_args(after, count as usize, u64::from(block_ms));
        serde_json::to_string(&args).expect("plain data serializes")
    }

    /// `XREVRANGE` arguments that find the newest change, as JSON.
    #[wasm_bindgen(js_name = feedNewestArgs)]
    pub fn feed_newest_args(&self) -> String {
        serde_json::to_string(&self.driver.feed_newest_args()).expect("plain data serializes")
    }
}

/// The changes of a normalised XREAD reply (JSON), as a JSON array.
#[wasm_bindgen(js_name = parseFeed)]
pub fn parse_feed(reply: &str) -> Result<String, JsError> {
    driver::parse_feed(&driver::reply_of(reply).map_err(fail)?).map_err(fail)
}

/// The newest id of a normalised XREVRANGE reply (JSON; `0-0` for none).
#[wasm_bindgen(js_name = parseFeedNewest)]
pub fn parse_feed_newest(reply: &str) -> Result<String, JsError> {
    driver::parse_feed_newest(&driver::reply_of(reply).map_err(fail)?).map_err(fail)
}

/// The reply as the core reads it, as JSON (`null`, an integer, a string,
/// an array, `{"error"}`): what `replyValue` feeds, for tests.
#[wasm_bindgen(js_name = replyJson)]
pub fn reply_json(reply: JsValue) -> String {
    serde_json::to_string(&value::reply_of(&reply)).expect("a reply serializes")
}

/// Whether `id` is a change id as `watch({ from })` takes it.
#[wasm_bindgen(js_name = isChangeId)]
pub fn is_change_id(id: &str) -> bool {
    rollcall_core::feed::is_entry_id(id)
}

/// Parses the normalised reply (JSON) to a read op, as JSON (see
/// `readEmbedded`).
#[wasm_bindgen(js_name = parseAnswer)]
pub fn parse_answer(
    what: &str,
    namespace: Option<String>,
    room: Option<String>,
    user: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
    reply: &str,
) -> Result<String, JsError> {
    let query = driver::query(what, namespace, room, user, after, limit).map_err(fail)?;
    let reply = driver::reply_of(reply).map_err(fail)?;
    let answer = driver::parse_answer(&query, &reply).map_err(fail)?;
    Ok(driver::answer_json(&answer))
}

/// `undefined` when the options (JSON, snake_case) are valid, else JSON
/// `{"option", "out_of_range", "message"}`.
#[wasm_bindgen(js_name = validateConfig)]
pub fn validate_config(config: &str) -> Option<String> {
    driver::validate_config(config)
}

/// Every Lua script as JSON: `[{"name", "sha", "source"}]`.
#[wasm_bindgen]
pub fn scripts() -> String {
    driver::scripts_json()
}

/// The metrics every host exports, as JSON: `{"metrics": [{"name",
/// "help", "kind"}], "write_seconds_buckets_us": [..]}` (the core's catalogue,
/// so both hosts name and describe them alike).
#[wasm_bindgen(js_name = metricCatalogue)]
pub fn metric_catalogue() -> String {
    #[derive(serde::Serialize)]
    struct Catalogue {
        metrics: &'static [rollcall_core::Metric],
        /// Whole microseconds: spares the module a float formatter.
        write_seconds_buckets_us: [u64; rollcall_core::WRITE_SECONDS_BUCKETS.len()],
    }
    let buckets = rollcall_core::WRITE_SECONDS_BUCKETS.map(|s| (s * 1e6).round() as u64);
    serde_json::to_string(&Catalogue {
        metrics: &rollcall_core::METRICS,
        write_seconds_buckets_us: buckets,
    })
    .expect("the catalogue serialises")
}

/// The version of the core compiled in.
#[wasm_bindgen(js_name = coreVersion)]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// A `members()` page's default and largest size, `[default, max]`
/// (`rollcall_core::DEFAULT_PAGE`, `MAX_PAGE`).
#[wasm_bindgen(js_name = pageLimits)]
pub fn page_limits() -> Vec<u32> {
    vec![rollcall_core::DEFAULT_PAGE, rollcall_core::MAX_PAGE]
}

/// The core's options, as a JSON object of every option (snake_case, in
/// `Config`'s order) with a value of its kind: the host derives its option
/// names and checks from it. The values are not all the defaults.
#[wasm_bindgen(js_name = configOptions)]
pub fn config_options() -> String {
    // Not the defaults a serialized config leaves out.
    let every = rollcall_core::Config {
        max_write_fields: 0,
        changes_max_len: 0,
        last_seen_ms: 0,
        max_data_bytes: 0,
        ..rollcall_core::Config::default()
    };
    serde_json::to_string(&every).expect("plain data serializes")
}
