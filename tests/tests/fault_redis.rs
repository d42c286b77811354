//! Fault suite, faults about Redis (issue 6: 5, 6, 9, 13, 14, 15), with real
//! redis-server processes, real host nodes in the test process and one node
//! as its own OS process (`fault_node`) in each test.
//!
//! After each fault: invariants on a dump of the real Redis, every counter
//! exactly what the connected sockets make, nothing <= 0, no key of a gone
//! node, and the fault's own check. Figures: `ROLLCALL-FIGURE ...` lines.

use std::time::Duration;

use rollcall_core::{Schema, Script};
use rollcall_host::driver::Status;
use rollcall_host::{Error, Event, OfflineReason, Scope};
use rollcall_tests::fault::{
    self, BEAT_MS, EventLog, REAP_MS, TTL_MS, blocking, close_in, converge, counters, dump_all,
    expected_of, figure, heartbeats_seen, keys_all, ms, node_keys_all, open_in, range, wait_event,
};
use rollcall_tests::{NodeArgs, NodeProc, Proxy, RedisServer, unique_prefix};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_fault_node");
const SLACK_MS: u64 = 1_000;

/// Lets a fault last this long: the length of the fault, not a wait for a
/// condition.
async fn hold(d: Duration) {
    tokio::time::sleep(d).await;
}

fn store_errors(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::StoreError { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_05_redis_restarted_empty() {
    let mut redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f05");
    let schema = Schema::new(&prefix);
    let users = 400;
    let a = fault::node(&redis.url(), &prefix, "a").await;
    let b = fault::node(&redis.url(), &prefix, "b").await;
    open_in(&a, 0, 300, users).await;
    open_in(&b, 300, 600, users).await;
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(600, 1_600));
    let all = expected_of(
        &schema,
        [
            &range(0, 300)[..],
            &range(300, 600)[..],
            &range(600, 1_600)[..],
        ],
        users,
    );
    converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;

    blocking(|| redis.restart());
    let back = Instant::now();
    // Empty, scripts gone.
    let took = converge(&urls, &schema, &all, &[], Duration::from_secs(15)).await;
    figure("f05", "reasserted_after_restart_ms", ms(took));
    let _ = back;
    let bound = Duration::from_millis(BEAT_MS + SLACK_MS);
    assert!(
        took <= bound,
        "re-asserted {took:?} after the restart, more than one heartbeat (+ slack) {bound:?}"
    );
    // The scripts came back by EVAL after NOSCRIPT (EVAL caches them).
    for script in [Script::Heartbeat, Script::Reassert, Script::Register] {
        let sha = script.sha1();
        let exists = redis.command(&["SCRIPT", "EXISTS", &sha]);
        assert_eq!(
            exists,
            Some(redis::Value::Array(vec![redis::Value::Int(1)])),
            "{} script reloaded",
            script.name()
        );
    }
    assert!(v.alive(), "the node process survived the restart");
    blocking(|| v.shutdown(Duration::from_secs(20)));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &schema).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_06_redis_unreachable_writes_kept() {
    let mut redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f06");
    let schema = Schema::new(&prefix);
    let users = 300;
    let a = fault::node(&redis.url(), &prefix, "a").await;
    let la = EventLog::of(&a);
    open_in(&a, 0, 200, users).await;
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(200, 700));
    let all = expected_of(&schema, [&range(0, 200)[..], &range(200, 700)[..]], users);
    converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;

    // 1. CLIENT PAUSE ALL for longer than the TTL: every command waits.
    let pause = (TTL_MS + REAP_MS).to_string();
    assert!(redis.command(&["CLIENT", "PAUSE", &pause, "ALL"]).is_some());
    let paused = Instant::now();
    open_in(&a, 1_000, 1_100, users).await;
    close_in(&a, 0, 50, users).await;
    blocking(|| v.open(700, 800));
    blocking(|| v.close(200, 260));
    let before = store_errors(&la.all());
    wait_event(
        "a store error while paused",
        &[&|| la.all()],
        |e| matches!(e, Event::StoreError { .. }),
        Duration::from_secs(10),
    )
    .await;
    let after = expected_of(
        &schema,
        [
            &range(50, 200)[..],
            &range(1_000, 1_100)[..],
            &range(260, 800)[..],
        ],
        users,
    );
    let took = converge(&urls, &schema, &after, &[], Duration::from_secs(20)).await;
    figure("f06", "client_pause_ms", pause);
    figure(
        "f06",
        "converged_after_pause_start_ms",
        ms(paused.elapsed()),
    );
    let _ = (took, before);
    figure("f06", "store_errors_during_pause", store_errors(&la.all()));

    // 2. Redis stopped (SIGSTOP) for longer than the TTL: calls time out;
    //    reads fail with a typed error; inputs are still taken.
    redis.pause();
    let stopped = Instant::now();
    let err = a.users_count(Scope::Global).await.unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { .. } | Error::Timeout { .. }),
        "a read while Redis is stopped: {err}"
    );
    let errors_before = store_errors(&la.all());
    open_in(&a, 1_100, 1_150, users).await;
    close_in(&a, 1_000, 1_020, users).await;
    blocking(|| v.close(700, 720));
    hold(Duration::from_millis(TTL_MS + REAP_MS)).await;
    redis.resume();
    let resumed = Instant::now();
    let after = expected_of(
        &schema,
        [
            &range(50, 200)[..],
            &range(1_020, 1_150)[..],
            &range(260, 700)[..],
            &range(720, 800)[..],
        ],
        users,
    );
    let took = converge(&urls, &schema, &after, &[], Duration::from_secs(20)).await;
    figure("f06", "stopped_ms", ms(resumed - stopped));
    figure("f06", "converged_after_resume_ms", ms(took));
    let errors = store_errors(&la.all()) - errors_before;
    assert!(errors > 0, "no error reported while Redis was stopped");
    figure("f06", "store_errors_while_stopped", errors);
    // Nobody reaped, nobody fenced: checked once both nodes have renewed
    // their leases twice more after Redis returned (every reply they were
    // waiting for is in and handled by then; a reap or fence of either
    // would have shown).
    heartbeats_seen(&urls, &schema, &["a", "v"], 2, Duration::from_secs(10)).await;
    let events: Vec<Event> = la.all().into_iter().chain(v.events()).collect();
    let wrong: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::NodeReaped { .. }
                    | Event::Fenced { .. }
                    | Event::UserOffline {
                        reason: OfflineReason::Reaped,
                        ..
                    }
            )
        })
        .collect();
    figure("f06", "reaped_or_fenced_events", wrong.len());
    assert_eq!(
        wrong,
        Vec::<&Event>::new(),
        "nobody is reaped or fenced while Redis is unreachable"
    );
    assert!(v.alive());
    blocking(|| v.shutdown(Duration::from_secs(20)));
    a.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &schema).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_09_two_prefixes_isolated() {
    let redis = RedisServer::start();
    let urls = vec![redis.url()];
    let p1 = unique_prefix("f09");
    // A prefix that starts like the other one, with the separator in it.
    let p2 = format!("{p1}:x");
    let (s1, s2) = (Schema::new(&p1), Schema::new(&p2));
    let users = 200;
    // Same node ids, same sockets, same users in both applications.
    let a1 = fault::node(&redis.url(), &p1, "n1").await;
    let a2 = fault::node(&redis.url(), &p1, "n2").await;
    let b2 = fault::node(&redis.url(), &p2, "n2").await;
    let (l1, l2) = (EventLog::of(&a1), EventLog::of(&a2));
    open_in(&a1, 0, 300, users).await;
    open_in(&a2, 300, 600, users).await;
    open_in(&b2, 300, 600, users).await;
    let mut args = NodeArgs::new(&redis.url(), &p2, "n1");
    args.users = users;
    let mut b1 = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| b1.open(0, 300));
    let e1 = expected_of(&s1, [&range(0, 300)[..], &range(300, 600)[..]], users);
    let e2 = expected_of(&s2, [&range(0, 300)[..], &range(300, 600)[..]], users);
    converge(&urls, &s1, &e1, &[], Duration::from_secs(30)).await;
    converge(&urls, &s2, &e2, &[], Duration::from_secs(30)).await;
    let snapshot1 = counters(&dump_all(&urls, &s1).await, &s1);

    // Application 2 loses a node (same id as a live node of application 1).
    blocking(|| b1.kill9());
    let e2 = expected_of(&s2, [&range(300, 600)[..]], users);
    let took = converge(&urls, &s2, &e2, &["n1"], Duration::from_secs(15)).await;
    figure("f09", "other_prefix_reaped_ms", ms(took));
    assert_eq!(
        counters(&dump_all(&urls, &s1).await, &s1),
        snapshot1,
        "application 1 untouched"
    );
    converge(&urls, &s1, &e1, &[], Duration::from_secs(1)).await;
    let reaped = |e: &Event| matches!(e, Event::NodeReaped { .. });
    assert!(!l1.all().iter().any(reaped) && !l2.all().iter().any(reaped));

    // Application 1 leaves entirely; application 2 keeps its keys.
    a1.shutdown().await.unwrap();
    a2.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &s1).await, Vec::<String>::new());
    converge(&urls, &s2, &e2, &["n1"], Duration::from_secs(1)).await;
    b2.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &s2).await, Vec::<String>::new());
    // Nothing else is left in the Redis: each prefix' feed and last seen.
    let mut left = keys_all(&urls, &s1).await;
    left.extend(keys_all(&urls, &s2).await);
    assert_eq!(redis.command_string(&["DBSIZE"]).as_deref(), Some("4"));
    assert_eq!(left, [s1.feed(), s1.seen(), s2.feed(), s2.seen()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_13_debug_sleep_longer_than_ttl() {
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f13");
    let schema = Schema::new(&prefix);
    let users = 300;
    let a = fault::node(&redis.url(), &prefix, "a").await;
    let b = fault::node(&redis.url(), &prefix, "b").await;
    let (la, lb) = (EventLog::of(&a), EventLog::of(&b));
    open_in(&a, 0, 200, users).await;
    open_in(&b, 200, 400, users).await;
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(400, 900));
    let all = expected_of(
        &schema,
        [
            &range(0, 200)[..],
            &range(200, 400)[..],
            &range(400, 900)[..],
        ],
        users,
    );
    converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;

    let sleep_s = (TTL_MS + 1_000) / 1_000;
    redis.command_detached(&["DEBUG", "SLEEP", &sleep_s.to_string()]);
    let start = Instant::now();
    // Inputs meanwhile.
    close_in(&a, 0, 20, users).await;
    blocking(|| v.open(900, 950));
    // The stall is over when Redis answers again.
    let answered = blocking(|| {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if redis.command_string(&["PING"]).as_deref() == Some("PONG") {
                break std::time::Instant::now();
            }
            assert!(std::time::Instant::now() < end, "Redis never woke up");
        }
    });
    let _ = answered;
    let stall = start.elapsed();
    let after = expected_of(
        &schema,
        [
            &range(20, 200)[..],
            &range(200, 400)[..],
            &range(400, 950)[..],
        ],
        users,
    );
    let took = converge(&urls, &schema, &after, &[], Duration::from_secs(20)).await;
    figure("f13", "stall_ms", ms(stall));
    figure("f13", "converged_after_stall_ms", ms(took));
    assert!(stall >= Duration::from_millis(TTL_MS), "the stall was real");
    assert!(
        took <= Duration::from_millis(BEAT_MS + SLACK_MS),
        "counts right {took:?} after the stall"
    );
    assert!(v.alive(), "the node process did not crash");
    assert_eq!(a.status(), Status::Running);
    assert_eq!(b.status(), Status::Running);
    // Every reply the nodes were waiting for is in: two more lease
    // renewals of each after the stall.
    heartbeats_seen(&urls, &schema, &["a", "b", "v"], 2, Duration::from_secs(10)).await;
    let events: Vec<Event> = la
        .all()
        .into_iter()
        .chain(lb.all())
        .chain(v.events())
        .collect();
    let reaped = events
        .iter()
        .filter(|e| matches!(e, Event::NodeReaped { .. }))
        .count();
    let fenced = events
        .iter()
        .filter(|e| matches!(e, Event::Fenced { .. }))
        .count();
    figure("f13", "nodes_reaped_during_stall", reaped);
    figure("f13", "nodes_fenced_after_stall", fenced);
    // The clock-stall rule shifts the leases by the stall: nobody's lease
    // runs out, so nobody is reaped and nobody fenced.
    assert_eq!(reaped, 0, "nodes reaped during the stall");
    assert_eq!(fenced, 0, "nodes fenced after the stall");
    blocking(|| v.shutdown(Duration::from_secs(20)));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &schema).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_14_disconnect_while_connect_write_held() {
    let redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f14");
    let schema = Schema::new(&prefix);
    let users = 100;
    let a = fault::node(&redis.url(), &prefix, "a").await;
    open_in(&a, 0, 100, users).await;
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(1_000, 1_100));
    let all = expected_of(
        &schema,
        [&range(0, 100)[..], &range(1_000, 1_100)[..]],
        users,
    );
    converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;
    let sockets_key = schema.counts();

    assert!(
        redis
            .command(&["CLIENT", "PAUSE", "2000", "WRITE"])
            .is_some()
    );
    let paused = Instant::now();
    // Connects whose writes Redis holds, then their disconnects.
    open_in(&a, 100, 200, users).await;
    blocking(|| v.open(1_100, 1_200));
    // Wait until both nodes' writes are held by the pause: a client of
    // each node blocked (CLIENT LIST flag `b`) on a script call. That call
    // is the write of the 100 connects, or a call of the node's write lane
    // sent before them (a heartbeat, or the same call sent again after its
    // op timeout): the lane goes one call at a time, so the connects wait
    // behind it in the node. Either way they cannot be applied before the
    // pause ends; plain reads still answer under a WRITE pause, and the
    // count is still the old one.
    blocking(|| {
        rollcall_tests::eventually(
            "both nodes' writes held by the pause",
            Duration::from_millis(1_500),
            || held_writes(&redis, 1) >= 2,
        )
    });
    let before = redis.command_string(&["HGET", &sockets_key, "sg"]);
    assert!(
        paused.elapsed() < Duration::from_millis(2_000),
        "seen within the pause"
    );
    assert_eq!(
        before.as_deref(),
        Some("200"),
        "the held connect writes are not applied"
    );
    close_in(&a, 150, 200, users).await;
    blocking(|| v.close(1_150, 1_200));
    close_in(&a, 0, 10, users).await;
    let after = expected_of(
        &schema,
        [&range(10, 150)[..], &range(1_000, 1_150)[..]],
        users,
    );
    let took = converge(&urls, &schema, &after, &[], Duration::from_secs(20)).await;
    figure(
        "f14",
        "converged_after_pause_start_ms",
        ms(paused.elapsed()),
    );
    let _ = took;
    // Hold on past a few more heartbeats: nothing leaks late either.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(3 * BEAT_MS) {
        let d = dump_all(&urls, &schema).await;
        assert_eq!(
            fault::problems(&d, &schema, &after, &[]),
            Vec::<String>::new()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    blocking(|| v.shutdown(Duration::from_secs(20)));
    a.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &schema).await, Vec::<String>::new());
}

/// How many clients Redis holds blocked by a pause (CLIENT LIST flag `b`)
/// in a script call with at least `bytes` bytes of write behind it (the
/// call's arguments plus what is queued unparsed after it).
fn held_writes(redis: &RedisServer, bytes: u64) -> usize {
    let list = redis
        .command_string(&["CLIENT", "LIST"])
        .unwrap_or_default();
    list.lines()
        .filter(|l| {
            let get = |name: &str| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            };
            let num = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            get("flags").is_some_and(|f| f.contains('b'))
                && matches!(get("cmd"), Some("evalsha" | "eval"))
                && num("argv-mem") + num("qbuf") >= bytes
        })
        .count()
}

/// INFO replication field `name` of `server`.
fn repl_field(server: &RedisServer, name: &str) -> Option<String> {
    let info = server.command_string(&["INFO", "replication"])?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_15_failover_loses_acknowledged_writes() {
    let mut primary = RedisServer::start();
    // The replica replicates through a proxy the test can freeze: a link
    // that lags.
    let link = Proxy::start(primary.port());
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &link.port().to_string()]);
    // The nodes' one stable address, as a managed endpoint gives.
    let endpoint = Proxy::start(primary.port());
    let prefix = unique_prefix("f15");
    let schema = Schema::new(&prefix);
    let users = 300;
    let a = fault::node(&endpoint.url(), &prefix, "a").await;
    let b = fault::node(&endpoint.url(), &prefix, "b").await;
    let (la, lb) = (EventLog::of(&a), EventLog::of(&b));
    open_in(&a, 0, 200, users).await;
    open_in(&b, 200, 400, users).await;
    let mut args = NodeArgs::new(&endpoint.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(400, 800));
    let all = expected_of(
        &schema,
        [
            &range(0, 200)[..],
            &range(200, 400)[..],
            &range(400, 800)[..],
        ],
        users,
    );
    let on_primary = vec![primary.url()];
    converge(&on_primary, &schema, &all, &[], Duration::from_secs(30)).await;
    // The replica has all of it.
    blocking(|| {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let up = repl_field(&replica, "master_link_status").as_deref() == Some("up");
            let theirs = repl_field(&replica, "slave_repl_offset");
            let ours = repl_field(&primary, "master_repl_offset");
            if up && theirs.is_some() && theirs == ours {
                break;
            }
            assert!(
                std::time::Instant::now() < end,
                "the replica never caught up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });

    // The replica falls behind; the primary acknowledges more writes.
    link.freeze(true);
    open_in(&a, 1_000, 1_100, users).await;
    close_in(&b, 200, 260, users).await;
    blocking(|| v.open(800, 900));
    let acked = expected_of(
        &schema,
        [
            &range(0, 200)[..],
            &range(1_000, 1_100)[..],
            &range(260, 400)[..],
            &range(400, 900)[..],
        ],
        users,
    );
    converge(&on_primary, &schema, &acked, &[], Duration::from_secs(20)).await;

    // The replica really misses acknowledged writes.
    let offset = |s: &RedisServer, f: &str| -> u64 {
        let v = repl_field(s, f).unwrap_or_else(|| panic!("INFO replication has no {f}"));
        v.parse()
            .unwrap_or_else(|e| panic!("INFO replication {f}:{v}: {e}"))
    };
    let (ours, theirs) = (
        offset(&primary, "master_repl_offset"),
        offset(&replica, "slave_repl_offset"),
    );
    assert!(theirs < ours, "the replica lags: {theirs} < {ours}");
    figure("f15", "replication_bytes_lost", ours - theirs);
    // The primary dies; the replica is promoted; the address switches.
    primary.kill();
    link.cut();
    assert_eq!(
        replica
            .command_string(&["REPLICAOF", "NO", "ONE"])
            .as_deref(),
        Some("OK")
    );
    endpoint.switch(replica.port());
    endpoint.cut();
    let switched = Instant::now();
    // A socket whose connect the failover lost disconnects at once: the
    // naive recipe drives its user's field to -1 here.
    close_in(&a, 1_000, 1_010, users).await;
    let after = expected_of(
        &schema,
        [
            &range(0, 200)[..],
            &range(1_010, 1_100)[..],
            &range(260, 400)[..],
            &range(400, 900)[..],
        ],
        users,
    );
    let on_replica = vec![replica.url()];
    // No field negative at any point on the way.
    let took = loop {
        let d = dump_all(&on_replica, &schema).await;
        let negative: Vec<_> = counters(&d, &schema)
            .into_iter()
            .filter(|(_, v)| *v <= 0)
            .collect();
        assert_eq!(negative, Vec::new(), "a counter went <= 0");
        if fault::problems(&d, &schema, &after, &[]).is_empty() {
            break switched.elapsed();
        }
        assert!(
            switched.elapsed() < Duration::from_secs(20),
            "not right after the failover: {:?}",
            fault::problems(&d, &schema, &after, &[])
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    figure("f15", "converged_after_switch_ms", ms(took));
    assert!(
        took <= Duration::from_millis(BEAT_MS + 2 * SLACK_MS),
        "counts right only {took:?} after the switch"
    );
    figure(
        "f15",
        "store_errors_seen",
        store_errors(&la.all()) + store_errors(&lb.all()),
    );
    blocking(|| v.shutdown(Duration::from_secs(20)));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(
        node_keys_all(&on_replica, &schema).await,
        Vec::<String>::new()
    );
}
