//! Fault suite, faults about node processes (issue 6: 1, 2, 3, 7, 8), with
//! real redis-server processes and real rollcall host nodes. The node at
//! fault runs as its own OS process (`fault_node`), so kill -9 and
//! SIGSTOP/SIGCONT are real; its peers run in the test process.
//!
//! Each test checks after the fault: the core's invariants on a dump of the
//! real Redis, every counter equal to what the sockets still connected make
//! (no lost socket, no phantom, nothing <= 0), no key left of a node that
//! is gone; and the fault's own check. Figures are printed as
//! `ROLLCALL-FIGURE <fault> <name>=<value>` (see RELIABILITY.md).

use std::collections::BTreeMap;
use std::time::Duration;

use rollcall_core::Schema;
use rollcall_host::{Event, OfflineReason, Presence};
use rollcall_tests::fault::{
    self, BEAT_MS, EventLog, REAP_MS, TTL_MS, blocking, close_in, converge, dump_all, expected_of,
    figure, incarnation_of, keys_all, ms, node_keys_all, open_in, range, wait_event, went_offline,
};
use rollcall_tests::workload::sockets_of;
use rollcall_tests::{NodeArgs, NodeProc, RedisServer, unique_prefix};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_fault_node");

/// Scheduling slack of a loaded 2-core CI machine on top of the bounds.
const SLACK_MS: u64 = 1_000;

fn reaped(node: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::NodeReaped { node: n, .. } if n == node)
}

/// (scope, user) -> how many `reason` offline events these logs hold.
fn offline_events(
    logs: &[Vec<Event>],
    reason: OfflineReason,
) -> BTreeMap<(rollcall_core::Scope, String), usize> {
    let mut got = BTreeMap::new();
    for log in logs {
        for e in log {
            if let Event::UserOffline {
                scope,
                user,
                reason: r,
                ..
            } = e
                && *r == reason
            {
                *got.entry((scope.clone(), user.clone())).or_default() += 1;
            }
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_01_kill_9_reaped() {
    let redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f01");
    let schema = Schema::new(&prefix);
    let users = 2_000;
    let a = fault::node(&redis.url(), &prefix, "a").await;
    let b = fault::node(&redis.url(), &prefix, "b").await;
    let (la, lb) = (EventLog::of(&a), EventLog::of(&b));
    open_in(&a, 0, 500, users).await;
    open_in(&b, 500, 1_000, users).await;
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    let started = Instant::now();
    blocking(|| v.open(1_000, 6_000));
    let (ra, rb, rv) = (range(0, 500), range(500, 1_000), range(1_000, 6_000));
    let all = expected_of(&schema, [&ra[..], &rb[..], &rv[..]], users);
    let took = converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;
    figure("f01", "sockets_on_victim", rv.len());
    figure("f01", "count_5000_sockets_ms", ms(started.elapsed()));
    let _ = took;

    blocking(|| v.kill9());
    let (ea, eb) = (|| la.all(), || lb.all());
    let took = wait_event(
        "v reaped",
        &[&ea, &eb],
        reaped("v"),
        Duration::from_millis(TTL_MS + REAP_MS + 10_000),
    )
    .await;
    figure("f01", "reaped_after_kill_ms", ms(took));
    let survivors = expected_of(&schema, [&ra[..], &rb[..]], users);
    converge(&urls, &schema, &survivors, &["v"], Duration::from_secs(10)).await;
    let bound = Duration::from_millis(TTL_MS + REAP_MS + SLACK_MS);
    assert!(
        took <= bound,
        "reaped {took:?} after the kill, more than TTL + reap interval (+ slack) {bound:?}"
    );

    // One offline event per user and scope that lost its last socket,
    // emitted by exactly one survivor.
    let before = sockets_of(ra.iter().chain(&rb).chain(&rv).copied(), users);
    let after = sockets_of(ra.iter().chain(&rb).copied(), users);
    let want: BTreeMap<_, usize> = went_offline(&before, &after)
        .into_iter()
        .map(|k| (k, 1))
        .collect();
    let got = offline_events(&[la.all(), lb.all()], OfflineReason::Reaped);
    assert!(want.len() > 1_000, "the fault must leave users offline");
    assert_eq!(got.len(), want.len(), "offline events per (scope, user)");
    assert_eq!(
        got, want,
        "exactly one reaped offline event per user and scope"
    );
    figure("f01", "offline_events", got.len());

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &schema).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_02_sigstop_past_ttl_fenced_reasserts() {
    let redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f02");
    let schema = Schema::new(&prefix);
    let users = 300;
    let a = fault::node(&redis.url(), &prefix, "a").await;
    let la = EventLog::of(&a);
    open_in(&a, 0, 200, users).await;
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(200, 1_200));
    let (ra, rv) = (range(0, 200), range(200, 1_200));
    let all = expected_of(&schema, [&ra[..], &rv[..]], users);
    converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;
    let old = incarnation_of(&dump_all(&urls, &schema).await, &schema, "v").expect("v registered");

    v.stop();
    let stopped = Instant::now();
    let ea = || la.all();
    let took = wait_event(
        "the paused v reaped",
        &[&ea],
        reaped("v"),
        Duration::from_secs(20),
    )
    .await;
    figure("f02", "reaped_after_sigstop_ms", ms(took));
    // Reaped while paused: its sockets are not counted meanwhile.
    let only_a = expected_of(&schema, [&ra[..]], users);
    converge(&urls, &schema, &only_a, &["v"], Duration::from_secs(10)).await;
    assert!(stopped.elapsed() > Duration::from_millis(TTL_MS));

    v.cont();
    let took = converge(&urls, &schema, &all, &[&old], Duration::from_secs(15)).await;
    figure("f02", "converged_after_sigcont_ms", ms(took));
    let fenced = |e: &Event| matches!(e, Event::Fenced { incarnation } if *incarnation == old);
    wait_event(
        "v fenced",
        &[&|| v.events()],
        fenced,
        Duration::from_secs(5),
    )
    .await;
    let bound = Duration::from_millis(BEAT_MS + SLACK_MS);
    assert!(
        took <= bound,
        "counts right {took:?} after SIGCONT, more than one heartbeat (+ slack) {bound:?}"
    );
    let new = incarnation_of(&dump_all(&urls, &schema).await, &schema, "v").expect("v again");
    assert_ne!(new, old, "v registered again under a new incarnation");

    blocking(|| v.shutdown(Duration::from_secs(20)));
    a.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &schema).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_03_five_reapers_subtract_once() {
    let redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f03");
    let schema = Schema::new(&prefix);
    let users = 3_000;
    let mut reapers = Vec::new();
    let mut logs = Vec::new();
    let mut sets = Vec::new();
    for (i, name) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        let mut config = fault::config(&prefix);
        // Small slices: the reap takes many calls, all five contend.
        config.reap_slice = 50;
        let p = Presence::builder()
            .redis(redis.url())
            .config(config)
            .node_id(name)
            .op_timeout(Duration::from_millis(600))
            .start()
            .await
            .unwrap();
        let from = i as u64 * 100;
        open_in(&p, from, from + 100, users).await;
        sets.push(range(from, from + 100));
        logs.push(EventLog::of(&p));
        reapers.push(p);
    }
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(500, 10_500));
    let rv = range(500, 10_500);
    let mut with_v: Vec<&[u64]> = sets.iter().map(Vec::as_slice).collect();
    with_v.push(&rv);
    let all = expected_of(&schema, with_v.clone(), users);
    converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;
    let fields = dump_all(&urls, &schema)
        .await
        .iter()
        .find(|e| e.key.starts_with(&format!("{}i:v/", schema.base())))
        .map(|e| match &e.value {
            rollcall_core::model::DumpValue::Zset(m) => m.len(),
            _ => 0,
        })
        .unwrap_or(0);
    figure("f03", "victim_fields", fields);

    blocking(|| v.kill9());
    let killed = Instant::now();
    let fns: Vec<Box<dyn Fn() -> Vec<Event>>> = logs
        .iter()
        .map(|l| {
            let l = l.clone();
            Box::new(move || l.all()) as Box<dyn Fn() -> Vec<Event>>
        })
        .collect();
    let refs: Vec<&dyn Fn() -> Vec<Event>> = fns.iter().map(|f| f.as_ref()).collect();
    wait_event("v reaped", &refs, reaped("v"), Duration::from_secs(30)).await;
    figure("f03", "reaped_after_kill_ms", ms(killed.elapsed()));
    let survivors = expected_of(&schema, sets.iter().map(Vec::as_slice), users);
    converge(&urls, &schema, &survivors, &["v"], Duration::from_secs(10)).await;
    // Let more reap rounds pass: a second subtraction would show now.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(3 * REAP_MS) {
        let d = dump_all(&urls, &schema).await;
        let bad = fault::problems(&d, &schema, &survivors, &["v"]);
        assert_eq!(bad, Vec::<String>::new(), "after the reap");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let all_logs: Vec<Vec<Event>> = logs.iter().map(EventLog::all).collect();
    let done: usize = all_logs
        .iter()
        .map(|l| l.iter().filter(|e| reaped("v")(e)).count())
        .sum();
    assert_eq!(done, 1, "exactly one node finishes the reap");
    let before = sockets_of(with_v.iter().flat_map(|s| s.iter().copied()), users);
    let after = sockets_of(sets.iter().flat_map(|s| s.iter().copied()), users);
    let want: BTreeMap<_, usize> = went_offline(&before, &after)
        .into_iter()
        .map(|k| (k, 1))
        .collect();
    let got = offline_events(&all_logs, OfflineReason::Reaped);
    assert_eq!(got, want, "exactly one offline event per user and scope");
    let emitters = all_logs
        .iter()
        .filter(|l| {
            l.iter().any(|e| {
                matches!(
                    e,
                    Event::UserOffline {
                        reason: OfflineReason::Reaped,
                        ..
                    }
                )
            })
        })
        .count();
    figure("f03", "reapers_that_emitted", emitters);
    figure("f03", "offline_events", got.len());
    for p in &reapers {
        p.shutdown().await.unwrap();
    }
    assert_eq!(node_keys_all(&urls, &schema).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_07_quick_restart_same_node_id() {
    let redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f07");
    let schema = Schema::new(&prefix);
    let users = 500;
    let a = fault::node(&redis.url(), &prefix, "a").await;
    open_in(&a, 0, 300, users).await;
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(300, 1_300));
    let ra = range(0, 300);
    let all = expected_of(&schema, [&ra[..], &range(300, 1_300)[..]], users);
    converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;
    let old = incarnation_of(&dump_all(&urls, &schema).await, &schema, "v").unwrap();

    // Crash and restart at once, same id, well inside the TTL; the new
    // process holds an overlapping set (same socket ids reconnect).
    blocking(|| v.kill9());
    let restarted = Instant::now();
    let mut v2 = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v2.open(800, 1_800));
    let after = expected_of(&schema, [&ra[..], &range(800, 1_800)[..]], users);
    let took = converge(&urls, &schema, &after, &[&old], Duration::from_secs(15)).await;
    figure("f07", "restart_converged_ms", ms(restarted.elapsed()));
    let _ = took;
    let new = incarnation_of(&dump_all(&urls, &schema).await, &schema, "v").unwrap();
    assert_ne!(new, old);
    // Old self replaced within TTL + reap (its lease was set to 0 at the
    // re-registration: the next reap anywhere takes it).
    assert!(
        restarted.elapsed() <= Duration::from_millis(TTL_MS + REAP_MS + 3 * SLACK_MS),
        "old incarnation gone only after {:?}",
        restarted.elapsed()
    );

    blocking(|| v2.shutdown(Duration::from_secs(20)));
    a.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &schema).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_08_graceful_shutdown_leaves_nothing() {
    let redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f08");
    let schema = Schema::new(&prefix);
    let users = 1_500;
    let a = fault::node(&redis.url(), &prefix, "a").await;
    let la = EventLog::of(&a);
    open_in(&a, 0, 500, users).await;
    let mut procs = Vec::new();
    let mut sets = vec![range(0, 500)];
    for (i, name) in ["p1", "p2", "p3"].into_iter().enumerate() {
        let mut args = NodeArgs::new(&redis.url(), &prefix, name);
        args.users = users;
        let mut p = blocking(|| NodeProc::spawn(BIN, &args));
        let from = 500 + i as u64 * 2_000;
        blocking(|| p.open(from, from + 2_000));
        sets.push(range(from, from + 2_000));
        procs.push(p);
    }
    let all = expected_of(&schema, sets.iter().map(Vec::as_slice), users);
    converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;
    // Some sockets leave first, as in real life.
    close_in(&a, 0, 100, users).await;
    sets[0] = range(100, 500);

    let start = Instant::now();
    for p in &mut procs {
        blocking(|| p.terminate(Duration::from_secs(20)));
    }
    a.shutdown().await.unwrap();
    figure("f08", "shutdown_all_ms", ms(start.elapsed()));
    wait_event(
        "a closed",
        &[&|| la.all()],
        |e| *e == Event::Closed,
        Duration::from_secs(5),
    )
    .await;
    let left = keys_all(&urls, &schema).await;
    assert_eq!(
        left,
        [schema.feed(), schema.seen()],
        "nothing of the nodes is left: only the change feed and last seen"
    );
    // Both expire on their own (last_seen_ms after their last change).
    let store = rollcall_host::RedisStore::open(&urls[0], Duration::from_secs(5))
        .await
        .unwrap();
    for key in &left {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut store.connection())
            .await
            .unwrap();
        let max = rollcall_core::Config::default().last_seen_ms as i64;
        assert!(ttl > 0 && ttl <= max, "{key} expires: PTTL {ttl}");
    }
    for p in &procs {
        assert!(
            p.events().contains(&Event::Closed),
            "{} closed cleanly",
            p.node
        );
    }
}
