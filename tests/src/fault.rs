//! What every fault test checks after its fault, on the real keyspace:
//! the core's invariants (rollcall_core::invariants::check on a dump of
//! Redis), every counter exactly what the sockets still connected make (no
//! lost socket, no phantom), no count <= 0, no key of a node that is gone.
//! Plus the suite's timings and figures.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollcall_core::model::{DumpEntry, DumpValue};
use rollcall_core::schema::split_incarnation;
use rollcall_core::{Config, KeyKind, Schema};
use rollcall_host::{Event, Presence, RedisStore, dump};
use tokio::time::Instant;

/// The suite's short timings: TTL 2 s, heartbeat 500 ms, reap 500 ms.
pub const TTL_MS: u64 = 2_000;
pub const BEAT_MS: u64 = 500;
pub const REAP_MS: u64 = 500;

/// The config of every node of a fault test.
pub fn config(prefix: &str) -> Config {
    Config {
        prefix: prefix.to_owned(),
        ttl_ms: TTL_MS,
        heartbeat_ms: BEAT_MS,
        reap_ms: REAP_MS,
        retry_ms: 100,
        ..Config::default()
    }
}

/// An in-process node on `url` (a RedisStore of its own).
pub async fn node(url: &str, prefix: &str, name: &str) -> Presence {
    Presence::builder()
        .redis(url)
        .config(config(prefix))
        .node_id(name)
        .op_timeout(Duration::from_millis(600))
        .start()
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e}"))
}

/// Prints one measured figure on a line of its own, stable prefix:
/// `ROLLCALL-FIGURE <fault> <name>=<value>`.
pub fn figure(fault: &str, name: &str, value: impl Display) {
    eprintln!("ROLLCALL-FIGURE {fault} {name}={value}");
}

/// Milliseconds, for figures.
pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Runs blocking harness code (node processes, Redis commands) from an
/// async test without stalling the runtime's other tasks.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Every event of an in-process node, collected as they come.
#[derive(Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<Event>>>);

impl EventLog {
    pub fn of(p: &Presence) -> EventLog {
        let log = EventLog::default();
        let sink = log.0.clone();
        let mut rx = p.subscribe();
        tokio::spawn(async move {
            while let Ok(e) = rx.recv().await {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(e);
            }
        });
        log
    }

    pub fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The dump of every server of `urls` (one server, or a cluster's
/// primaries: a prefix lives in one slot, so on one of them).
pub async fn dump_all(urls: &[String], schema: &Schema) -> Vec<DumpEntry> {
    let mut out = Vec::new();
    for url in urls {
        let store = RedisStore::open(url, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("open {url} for a dump: {e}"));
        out.extend(
            dump::dump(&store, schema)
                .await
                .unwrap_or_else(|e| panic!("dump {url}: {e}")),
        );
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// The cluster-wide counters of a dump: (key, field) -> value.
pub fn counters(dump: &[DumpEntry], schema: &Schema) -> BTreeMap<(String, String), i64> {
    let users = format!("{}u:", schema.base());
    let mut out = BTreeMap::new();
    for e in dump {
        if (e.key == schema.counts() || e.key.starts_with(&users))
            && let DumpValue::Hash(fields) = &e.value
        {
            for (f, v) in fields {
                out.insert((e.key.clone(), f.clone()), v.parse().unwrap_or(i64::MIN));
            }
        }
    }
    out
}

/// Everything wrong with the keyspace; empty when it is right.
/// `expected`: the counters the live sockets make; `gone`: node ids that
/// must have left no trace.
pub fn problems(
    dump: &[DumpEntry],
    schema: &Schema,
    expected: &BTreeMap<(String, String), i64>,
    gone: &[&str],
) -> Vec<String> {
    let mut bad = rollcall_core::invariants::check(dump, schema);
    let got = counters(dump, schema);
    let mut diffs = Vec::new();
    for (k, v) in &got {
        if *v <= 0 {
            bad.push(format!("{} {:?} is {v} (<= 0)", k.0, k.1));
        }
        if expected.get(k) != Some(v) {
            diffs.push(format!(
                "{} {:?} is {v}, the live sockets make {:?}",
                k.0,
                k.1,
                expected.get(k)
            ));
        }
    }
    for (k, v) in expected {
        if !got.contains_key(k) {
            diffs.push(format!(
                "{} {:?} is missing, the live sockets make {v}",
                k.0, k.1
            ));
        }
    }
    if !diffs.is_empty() {
        bad.push(format!("{} counters differ from the truth", diffs.len()));
        bad.extend(diffs.into_iter().take(8));
    }
    let is_gone = |inc: &str| {
        split_incarnation(inc).is_some_and(|(n, _)| gone.contains(&n)) || gone.contains(&inc)
    };
    for e in dump {
        let key = &e.key;
        match (schema.parse_key(key), &e.value) {
            (Some(KeyKind::Live | KeyKind::Dead), DumpValue::Zset(m)) => {
                for (inc, _) in m {
                    if is_gone(inc) {
                        bad.push(format!("gone node's {inc:?} is still in {key}"));
                    }
                }
            }
            (Some(KeyKind::Nodes | KeyKind::Versions), DumpValue::Hash(f)) => {
                for (k, _) in f {
                    if is_gone(k) {
                        bad.push(format!("gone node's {k:?} is still in {key}"));
                    }
                }
            }
            (Some(KeyKind::Own { incarnation }), _) if is_gone(&incarnation) => {
                bad.push(format!("gone node's key {key:?} is left"));
            }
            _ => {}
        }
    }
    bad
}

/// Polls the keyspace until [`problems`] finds nothing; returns how long
/// it took. Panics with the last problems at the deadline.
pub async fn converge(
    urls: &[String],
    schema: &Schema,
    expected: &BTreeMap<(String, String), i64>,
    gone: &[&str],
    deadline: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let d = dump_all(urls, schema).await;
        let bad = problems(&d, schema, expected, gone);
        if bad.is_empty() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "the keyspace is not right after {deadline:?}:\n  {}",
            bad.join("\n  ")
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Every key of the prefix on these servers.
pub async fn keys_all(urls: &[String], schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for url in urls {
        let store = RedisStore::open(url, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        out.extend(dump::keys(&store, schema).await.expect("keys"));
    }
    out
}

/// The keys of the prefix that belong to nodes: every key but the change
/// feed and last seen, which outlive the nodes (and expire on their own).
pub async fn node_keys_all(urls: &[String], schema: &Schema) -> Vec<String> {
    keys_all(urls, schema)
        .await
        .into_iter()
        .filter(|k| {
            !schema
                .parse_key(k)
                .is_some_and(|kind| kind.outlives_nodes())
        })
        .collect()
}

/// Connects workload sockets `from..to` on an in-process node.
pub async fn open_in(p: &Presence, from: u64, to: u64, users: u64) {
    let mut pending = Vec::new();
    for i in from..to {
        let s = crate::workload::socket(i, users);
        pending.push(p.input(rollcall_host::Input::Connect {
            sid: s.sid.clone(),
            user: s.user.clone(),
            namespace: s.namespace.to_owned(),
        }));
        for r in s.rooms {
            pending.push(p.input(rollcall_host::Input::Join {
                sid: s.sid.clone(),
                room: r,
            }));
        }
    }
    for f in pending {
        f.await.expect("the tracker takes the input");
    }
}

/// Disconnects workload sockets `from..to` on an in-process node.
pub async fn close_in(p: &Presence, from: u64, to: u64, users: u64) {
    let pending: Vec<_> = (from..to)
        .map(|i| p.disconnect(&crate::workload::socket(i, users).sid))
        .collect();
    for f in pending {
        f.await.expect("the tracker takes the input");
    }
}

/// The counters that the sockets numbered by every set make together.
pub fn expected_of<'a>(
    schema: &Schema,
    sets: impl IntoIterator<Item = &'a [u64]>,
    users: u64,
) -> BTreeMap<(String, String), i64> {
    let socks: Vec<_> = sets
        .into_iter()
        .flat_map(|s| s.iter().map(|&i| crate::workload::socket(i, users)))
        .collect();
    crate::workload::expected_counters(schema, &socks)
}

/// `from..to` as a list.
pub fn range(from: u64, to: u64) -> Vec<u64> {
    (from..to).collect()
}

/// scope -> users online, for these sockets.
pub fn users_by_scope(
    socks: &[crate::workload::WorkSocket],
) -> BTreeMap<rollcall_core::Scope, std::collections::BTreeSet<String>> {
    let mut out: BTreeMap<_, std::collections::BTreeSet<String>> = BTreeMap::new();
    for s in socks {
        for scope in s.scopes() {
            let e = out.entry(scope).or_default();
            if let Some(u) = &s.user {
                e.insert(u.clone());
            }
        }
    }
    out
}

/// The (scope, user) pairs online with `before` and not with `after`.
pub fn went_offline(
    before: &[crate::workload::WorkSocket],
    after: &[crate::workload::WorkSocket],
) -> std::collections::BTreeSet<(rollcall_core::Scope, String)> {
    let (b, a) = (users_by_scope(before), users_by_scope(after));
    let mut out = std::collections::BTreeSet::new();
    for (scope, users) in b {
        for u in users {
            if !a.get(&scope).is_some_and(|s| s.contains(&u)) {
                out.insert((scope.clone(), u));
            }
        }
    }
    out
}

/// The current incarnation (`node/k`) of `node` in a dump, if registered.
pub fn incarnation_of(dump: &[DumpEntry], schema: &Schema, node: &str) -> Option<String> {
    dump.iter()
        .find(|e| e.key == schema.nodes())
        .and_then(|e| match &e.value {
            DumpValue::Hash(f) => f
                .iter()
                .find(|(n, _)| n == node)
                .map(|(_, k)| format!("{node}/{k}")),
            _ => None,
        })
}

/// Waits until `found` holds for the events of some log; returns the time
/// it took.
pub async fn wait_event(
    what: &str,
    logs: &[&dyn Fn() -> Vec<Event>],
    found: impl Fn(&Event) -> bool,
    deadline: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if logs.iter().any(|log| log().iter().any(&found)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "no event within {deadline:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lease expiry (score in `{p}:live`) per node id, from a dump.
pub fn leases(dump: &[DumpEntry], schema: &Schema) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for e in dump.iter().filter(|e| e.key == schema.live()) {
        if let DumpValue::Zset(m) = &e.value {
            for (inc, score) in m {
                let node = split_incarnation(inc).map_or(inc.as_str(), |(n, _)| n);
                out.insert(node.to_owned(), *score);
            }
        }
    }
    out
}

/// Waits until each of `nodes` has renewed its lease `times` times from
/// now on (heartbeats Redis executed; a re-registered node's new lease
/// counts too). A node's heartbeats go out one after the other, each after
/// the reply to the one before was handled, so once its second renewal
/// after now is seen every call it had in flight now has been answered
/// and handled, and every event those replies cause has been emitted: a
/// window "until every pending reply is in" has passed, observed rather
/// than slept through. Returns how long it took.
pub async fn heartbeats_seen(
    urls: &[String],
    schema: &Schema,
    nodes: &[&str],
    times: usize,
    deadline: Duration,
) -> Duration {
    let start = Instant::now();
    let mut last = leases(&dump_all(urls, schema).await, schema);
    let mut seen: BTreeMap<&str, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    loop {
        let now = leases(&dump_all(urls, schema).await, schema);
        for n in nodes {
            if let Some(&s) = now.get(*n)
                && last.get(*n).is_none_or(|&l| s > l)
            {
                *seen.get_mut(n).unwrap() += 1;
                last.insert((*n).to_owned(), s);
            }
        }
        if seen.values().all(|&k| k >= times) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "lease renewals within {deadline:?}: {seen:?} (want {times} each)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
