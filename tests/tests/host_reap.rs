//! rollcall-host against a real redis-server: a crashed node is reaped in
//! time with exactly one offline event per user and scope; Redis restarts
//! empty or stalls without losing the nodes' local truth; start-up errors
//! are typed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rollcall_host::{Error, Event, OfflineReason, Presence, Reader, RedisStore, Scope, dump};
use rollcall_tests::fault::heartbeats_seen;
use rollcall_tests::{RedisServer, eventually_async, unique_prefix};
use tokio::sync::broadcast;
use tokio::time::Instant;

const TTL: u64 = 1000;
const BEAT: u64 = 250;
const REAP: u64 = 250;
/// The lease of a node that must survive the test: a loaded 2-core CI
/// machine can starve a process for longer than `TTL`, and a survivor
/// reaped while alive (fenced) is another test's story.
const SURVIVOR_TTL: u64 = 6000;

async fn node(url: &str, prefix: &str, name: &str) -> Presence {
    node_with_ttl(url, prefix, name, TTL).await
}

async fn node_with_ttl(url: &str, prefix: &str, name: &str, ttl_ms: u64) -> Presence {
    Presence::builder()
        .redis(url)
        .prefix(prefix)
        .node_id(name)
        .ttl(Duration::from_millis(ttl_ms))
        .heartbeat(Duration::from_millis(BEAT))
        .reap_interval(Duration::from_millis(REAP))
        .retry(Duration::from_millis(100))
        .op_timeout(Duration::from_millis(400))
        .start()
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e}"))
}

/// One socket of the test's ground truth.
#[derive(Debug, Clone)]
struct Sock {
    node: usize,
    sid: String,
    user: Option<String>,
    ns: &'static str,
    rooms: Vec<&'static str>,
}

fn scopes_of(s: &Sock) -> Vec<Scope> {
    let mut v = vec![Scope::Global, Scope::namespace(s.ns)];
    v.extend(s.rooms.iter().map(|r| Scope::room(s.ns, *r)));
    v
}

/// scope -> (sockets, users) over the sockets of live nodes.
fn truth(socks: &[Sock], alive: &[bool]) -> BTreeMap<Scope, (u64, BTreeSet<String>)> {
    let mut t: BTreeMap<Scope, (u64, BTreeSet<String>)> = BTreeMap::new();
    for s in socks.iter().filter(|s| alive[s.node]) {
        for scope in scopes_of(s) {
            let e = t.entry(scope).or_default();
            e.0 += 1;
            if let Some(u) = &s.user {
                e.1.insert(u.clone());
            }
        }
    }
    t
}

async fn observe(
    reader: &Reader,
    scopes: &BTreeSet<Scope>,
) -> Result<BTreeMap<Scope, (u64, BTreeSet<String>)>, Error> {
    let mut out = BTreeMap::new();
    for scope in scopes {
        let sockets = reader.sockets_count(scope.clone()).await?;
        let users = reader.users_list(scope.clone()).await?;
        if sockets > 0 || !users.is_empty() {
            out.insert(scope.clone(), (sockets, users.into_iter().collect()));
        }
    }
    Ok(out)
}

/// Waits until the store's counts equal the truth.
async fn converge(
    reader: &Reader,
    want: &BTreeMap<Scope, (u64, BTreeSet<String>)>,
    all: &BTreeSet<Scope>,
) {
    let _ = eventually_async(
        "the store's counts equal the truth",
        Duration::from_secs(20),
        || observe(reader, all),
        |seen| seen.as_ref().is_ok_and(|s| s == want),
    )
    .await;
}

fn workload(nodes: usize) -> Vec<Sock> {
    let mut rng = rollcall_tests::Rng::new(7);
    let namespaces: [(&str, &[&str]); 2] = [("/", &["lobby", "news"]), ("/chat", &["dev"])];
    (0..60)
        .map(|i| {
            let (ns, rooms) = *rng.pick(&namespaces);
            let mut joined = Vec::new();
            for _ in 0..rng.below(3) {
                let r = *rng.pick(rooms);
                if !joined.contains(&r) {
                    joined.push(r);
                }
            }
            Sock {
                node: rng.below(nodes as u64) as usize,
                sid: format!("s{i}"),
                user: (!rng.chance(15)).then(|| format!("u{}", rng.below(20))),
                ns,
                rooms: joined,
            }
        })
        .collect()
}

async fn connect_all(nodes: &[Presence], socks: &[Sock]) {
    for s in socks {
        let p = &nodes[s.node];
        p.connect(&s.sid, s.user.as_deref(), s.ns).await.unwrap();
        for r in &s.rooms {
            p.join(&s.sid, r).await.unwrap();
        }
    }
}

fn all_scopes(socks: &[Sock]) -> BTreeSet<Scope> {
    socks.iter().flat_map(scopes_of).collect()
}

/// Lets a fault last this long (the fault's length, not a wait for a
/// condition).
async fn hold(d: Duration) {
    tokio::time::sleep(d).await;
}

fn drain(rx: &mut broadcast::Receiver<Event>, into: &mut Vec<Event>) {
    while let Ok(e) = rx.try_recv() {
        into.push(e);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_node_is_reaped_within_ttl_plus_one_reap_interval() {
    let redis = RedisServer::start();
    let prefix = unique_prefix("reap");
    // Only c crashes; a and b reap it and must not be reaped themselves.
    let nodes = vec![
        node_with_ttl(&redis.url(), &prefix, "a", SURVIVOR_TTL).await,
        node_with_ttl(&redis.url(), &prefix, "b", SURVIVOR_TTL).await,
        node(&redis.url(), &prefix, "c").await,
    ];
    let reader = nodes[0].reader().clone();
    let socks = workload(3);
    let all = all_scopes(&socks);
    connect_all(&nodes, &socks).await;
    let mut alive = vec![true; 3];
    converge(&reader, &truth(&socks, &alive), &all).await;
    let before = truth(&socks, &alive);

    let mut rx_a = nodes[0].subscribe();
    let mut rx_b = nodes[1].subscribe();
    nodes[2].kill();
    let crashed = Instant::now();
    alive[2] = false;
    let after = truth(&socks, &alive);

    // Wait for the NodeReaped event from either survivor.
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    let reaped = |v: &[Event]| {
        v.iter()
            .any(|e| matches!(e, Event::NodeReaped { node, .. } if node == "c"))
    };
    // The deadline holds also when no event comes at all.
    let limit = crashed + Duration::from_secs(15);
    while !reaped(&seen_a) && !reaped(&seen_b) {
        tokio::select! {
            e = rx_a.recv() => seen_a.push(e.expect("events of a")),
            e = rx_b.recv() => seen_b.push(e.expect("events of b")),
            () = tokio::time::sleep_until(limit) => panic!(
                "c was never reaped within 15 s; events: {seen_a:?} {seen_b:?}"
            ),
        }
    }
    let took = crashed.elapsed();
    // The lease ends at most TTL after the crash; a reap looks every REAP.
    // 300 ms of slack for the scheduling of a loaded 2-core CI machine.
    let bound = Duration::from_millis(TTL + REAP + 300);
    assert!(took <= bound, "reaped after {took:?}, more than {bound:?}");
    converge(&reader, &after, &all).await;

    // The survivors leave cleanly; every event is in by then.
    nodes[0].shutdown().await.unwrap();
    nodes[1].shutdown().await.unwrap();
    drain(&mut rx_a, &mut seen_a);
    drain(&mut rx_b, &mut seen_b);

    let mut expected: BTreeSet<(Scope, String)> = BTreeSet::new();
    for (scope, (_, users)) in &before {
        let still = after.get(scope).map(|(_, u)| u.clone()).unwrap_or_default();
        for u in users.difference(&still) {
            expected.insert((scope.clone(), u.clone()));
        }
    }
    assert!(
        !expected.is_empty(),
        "the workload must leave someone offline"
    );
    let mut got: BTreeMap<(Scope, String), usize> = BTreeMap::new();
    for e in seen_a.iter().chain(&seen_b) {
        if let Event::UserOffline {
            scope,
            user,
            reason: OfflineReason::Reaped,
            ..
        } = e
        {
            *got.entry((scope.clone(), user.clone())).or_default() += 1;
        }
    }
    let wrongly: Vec<&Event> = seen_a
        .iter()
        .chain(&seen_b)
        .filter(|e| matches!(e, Event::NodeReaped { node, .. } if node != "c"))
        .collect();
    assert!(
        wrongly.is_empty(),
        "a survivor was reaped while alive (starved past its lease?): {wrongly:?}"
    );
    let want: BTreeMap<(Scope, String), usize> = expected.into_iter().map(|k| (k, 1)).collect();
    assert_eq!(
        got, want,
        "exactly one reaped offline event per user and scope"
    );

    // Clean shutdowns leave nothing behind.
    let store = RedisStore::open(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    let left = dump::keys(&store, reader.schema()).await.unwrap();
    let schema = reader.schema();
    assert_eq!(
        left,
        [schema.feed(), schema.seen()],
        "only the feed and last seen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_heals_with_local_state_kept() {
    let mut redis = RedisServer::start();
    let prefix = unique_prefix("restart");
    let nodes = vec![
        node(&redis.url(), &prefix, "a").await,
        node(&redis.url(), &prefix, "b").await,
    ];
    let reader = nodes[0].reader().clone();
    let mut socks = workload(2);
    let all = all_scopes(&socks);
    connect_all(&nodes, &socks[..40]).await;
    let alive = vec![true; 2];
    converge(&reader, &truth(&socks[..40], &alive), &all).await;

    // Redis dies: reads fail with a typed error, inputs are still taken.
    redis.kill();
    let err = reader.users_count(Scope::Global).await.unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { .. } | Error::Timeout { .. }),
        "{err}"
    );
    connect_all(&nodes, &socks[40..]).await;
    let gone: Vec<Sock> = socks.drain(..10).collect();
    for s in &gone {
        nodes[s.node].disconnect(&s.sid).await.unwrap();
    }

    // It comes back empty (no data, no scripts: NOSCRIPT then EVAL).
    redis.restart();
    converge(&reader, &truth(&socks, &alive), &all).await;

    let store = RedisStore::open(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    let dumped = dump::dump(&store, reader.schema()).await.unwrap();
    let bad = rollcall_core::invariants::check(&dumped, reader.schema());
    assert_eq!(bad, Vec::<String>::new());
    for p in &nodes {
        p.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_gets_no_healthy_node_reaped() {
    let mut redis = RedisServer::start();
    let prefix = unique_prefix("stall");
    let nodes = vec![
        node(&redis.url(), &prefix, "a").await,
        node(&redis.url(), &prefix, "b").await,
    ];
    let mut events = vec![nodes[0].subscribe(), nodes[1].subscribe()];
    let reader = nodes[0].reader().clone();
    let socks = workload(2);
    let all = all_scopes(&socks);
    connect_all(&nodes, &socks).await;
    let alive = vec![true; 2];
    converge(&reader, &truth(&socks, &alive), &all).await;

    // Frozen for more than twice the lease, then thawed.
    // (The nodes keep trying meanwhile; their calls time out.)
    redis.pause();
    hold(Duration::from_millis(2 * TTL + REAP)).await;
    redis.resume();
    converge(&reader, &truth(&socks, &alive), &all).await;
    // Three more lease renewals of each node after it is right (reap
    // rounds come every 250 ms, as heartbeats do; each node's write in
    // flight at the thaw, and every event its reply caused, is in by the
    // second): still nobody reaped, still right.
    heartbeats_seen(
        &[redis.url()],
        reader.schema(),
        &["a", "b"],
        3,
        Duration::from_secs(10),
    )
    .await;
    converge(&reader, &truth(&socks, &alive), &all).await;
    let mut seen = Vec::new();
    for rx in &mut events {
        drain(rx, &mut seen);
    }
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::NodeReaped { .. } | Event::Fenced { .. })),
        "a stall must not reap or fence healthy nodes: {seen:?}"
    );
    // The stall was real: the nodes' calls failed meanwhile.
    assert!(
        seen.iter().any(|e| matches!(e, Event::StoreError { .. })),
        "no call failed while Redis was frozen"
    );
    for p in &nodes {
        p.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_say_what_is_wrong() {
    // Nothing listens on a port that was free a moment ago.
    let port = rollcall_tests::redis_server::free_port();
    let err = Presence::builder()
        .redis(format!("redis://127.0.0.1:{port}"))
        .op_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");

    let redis = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let no_password = Presence::builder()
        .redis(redis.url())
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(no_password, Error::AuthFailed { .. }),
        "{no_password}"
    );
    let wrong = Presence::builder()
        .redis(format!("redis://:wrong@127.0.0.1:{}", redis.port()))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(wrong, Error::AuthFailed { .. }), "{wrong}");
    assert!(
        !wrong.to_string().contains("wrong@"),
        "password leaked: {wrong}"
    );
    let right = Presence::builder()
        .redis(format!("redis://:s3cret@127.0.0.1:{}", redis.port()))
        .start()
        .await
        .unwrap();
    right.shutdown().await.unwrap();

    let bad_url = Presence::builder()
        .redis("http://x")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(bad_url, Error::BadUrl { .. }), "{bad_url}");
    let bad_config = Presence::builder()
        .ttl(Duration::from_millis(100))
        .heartbeat(Duration::from_millis(80))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(bad_config, Error::Config(_)), "{bad_config}");

    // Scripting refused: an ACL user without EVAL/EVALSHA/SCRIPT.
    let acl = RedisServer::start_with(&[]);
    let mut admin = redis::Client::open(acl.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("noscript")
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("+@all")
        .arg("-@scripting")
        .query_async(&mut admin)
        .await
        .unwrap();
    let refused = Presence::builder()
        .redis(format!("redis://noscript:pw@127.0.0.1:{}", acl.port()))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::ScriptRejected { .. }), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_typed_and_change_nothing() {
    let p = Presence::builder().start().await.unwrap();
    p.connect("s1", Some("ann"), "/").await.unwrap();
    let dup = p.connect("s1", Some("ann"), "/").await.unwrap_err();
    assert!(matches!(dup, Error::BadInput(_)), "{dup}");
    let unknown = p.disconnect("nope").await.unwrap_err();
    assert!(matches!(unknown, Error::BadInput(_)), "{unknown}");
    let empty = p.connect("", None, "/").await.unwrap_err();
    assert!(matches!(empty, Error::BadInput(_)), "{empty}");
    let reader = p.reader().clone();
    let _ = eventually_async(
        "ann is counted once",
        Duration::from_secs(10),
        || reader.user_sockets_count("ann"),
        |n| matches!(n, Ok(1)),
    )
    .await;
    assert!(p.is_user_connected("ann").await.unwrap());
    p.shutdown().await.unwrap();
    let closed = p.connect("s2", None, "/").await.unwrap_err();
    assert!(matches!(closed, Error::Closed), "{closed}");
    // Shutdown removed this node's share of the in-memory store.
    match p.store() {
        rollcall_host::Store::Memory(m) => assert_eq!(m.node_keys(), Vec::<String>::new()),
        other => panic!("expected the in-memory store, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_and_resp2_nodes_share_one_keyspace() {
    let redis = RedisServer::start();
    let prefix = unique_prefix("resp3");
    let resp3 = format!("{}/?protocol=resp3", redis.url());
    let nodes = vec![
        node(&resp3, &prefix, "a").await,
        node(&redis.url(), &prefix, "b").await,
    ];
    let socks = workload(2);
    let all = all_scopes(&socks);
    connect_all(&nodes, &socks).await;
    let mut alive = vec![true; 2];
    for p in &nodes {
        converge(p.reader(), &truth(&socks, &alive), &all).await;
    }
    // The RESP3 node reaps the RESP2 one and reads the result.
    let mut events = nodes[0].subscribe();
    nodes[1].kill();
    alive[1] = false;
    let mut reaped = false;
    while !reaped {
        match tokio::time::timeout(Duration::from_secs(15), events.recv()).await {
            Ok(Ok(Event::NodeReaped { node, .. })) => reaped = node == "b",
            Ok(Ok(_)) => {}
            other => panic!("b was not reaped: {other:?}"),
        }
    }
    converge(nodes[0].reader(), &truth(&socks, &alive), &all).await;
    let store = RedisStore::open(&resp3, Duration::from_secs(2))
        .await
        .unwrap();
    let dumped = dump::dump(&store, nodes[0].reader().schema())
        .await
        .unwrap();
    assert_eq!(
        rollcall_core::invariants::check(&dumped, nodes[0].reader().schema()),
        Vec::<String>::new()
    );
    nodes[0].shutdown().await.unwrap();
}
