//! Issue 11, item 9: a Redis clock that goes backwards. The keyspace is
//! moved an hour ahead of the Redis clock (as after a failover or a restore
//! onto a host whose clock is an hour behind: the shared clock and every
//! lease come from the old host), then a node is killed -9. The leases move
//! back with the clock, so the dead node is reaped within TTL + one reap
//! interval, and the live one is not. Before, the clock held at the old
//! time and reaping stopped for the whole hour.

use std::time::Duration;

use rollcall_core::Schema;
use rollcall_host::Event;
use rollcall_tests::fault::{
    self, EventLog, REAP_MS, TTL_MS, blocking, converge, expected_of, figure, ms, open_in, range,
    wait_event,
};
use rollcall_tests::{NodeArgs, NodeProc, RedisServer, unique_prefix};

const BIN: &str = env!("CARGO_BIN_EXE_fault_node");
const SLACK_MS: u64 = 1_000;
const HOUR_MS: u64 = 3_600_000;

/// Moves the shared clock and every lease of `schema` forward by `ms`, in
/// one script (nothing runs in between).
fn move_ahead(redis: &RedisServer, schema: &Schema, ms: u64) {
    let script = "local c = tonumber(redis.call('GET', KEYS[2])) \
        redis.call('SET', KEYS[2], c + tonumber(ARGV[1])) \
        local l = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') \
        for i = 1, #l, 2 do redis.call('ZADD', KEYS[1], tonumber(l[i + 1]) + tonumber(ARGV[1]), l[i]) end \
        return #l / 2";
    let moved = redis.command(&[
        "EVAL",
        script,
        "2",
        &schema.live(),
        &schema.clock(),
        &ms.to_string(),
    ]);
    assert_eq!(moved, Some(redis::Value::Int(2)), "two leases moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clock_an_hour_behind_does_not_stop_reaping() {
    let redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("clk");
    let schema = Schema::new(&prefix);
    let users = 50;
    let a = fault::node(&redis.url(), &prefix, "a").await;
    let log = EventLog::of(&a);
    open_in(&a, 0, 50, users).await;
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(1_000, 1_100));
    let (ra, rv) = (range(0, 50), range(1_000, 1_100));
    let all = expected_of(&schema, [&ra[..], &rv[..]], users);
    converge(&urls, &schema, &all, &[], Duration::from_secs(30)).await;

    move_ahead(&redis, &schema, HOUR_MS);
    blocking(|| v.kill9());
    let events = || log.all();
    let took = wait_event(
        "v reaped",
        &[&events],
        |e| matches!(e, Event::NodeReaped { node, .. } if node == "v"),
        Duration::from_millis(TTL_MS + REAP_MS + 10_000),
    )
    .await;
    figure("clock", "reaped_after_kill_ms", ms(took));
    let bound = Duration::from_millis(TTL_MS + REAP_MS + SLACK_MS);
    assert!(
        took <= bound,
        "reaped {took:?} after the kill, more than TTL + reap interval (+ slack) {bound:?}"
    );
    let survivors = expected_of(&schema, [&ra[..]], users);
    converge(&urls, &schema, &survivors, &["v"], Duration::from_secs(10)).await;
    // The live node was never fenced: its lease moved back with the clock.
    assert!(
        !log.all().iter().any(|e| matches!(e, Event::Fenced { .. })),
        "{:?}",
        log.all()
    );
    a.shutdown().await.unwrap();
}
