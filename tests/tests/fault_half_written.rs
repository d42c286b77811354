//! Issue 11, item 8: a script that fails midway must leave nothing half
//! written. A counter key whose type was changed under a live cluster (here
//! the user hash of a namespace set to a string before its first user) makes every write
//! that touches it fail with WRONGTYPE. Before the fix, the apply had
//! already moved the node's own share when the counter failed: after the key
//! was repaired, a re-assert found the share as it wanted it and never
//! restored the counter. Now the call is refused before anything is written,
//! and once the key is repaired the keyspace converges to the truth.

use std::time::{Duration, Instant};

use rollcall_core::{Schema, Scope};
use rollcall_host::Event;
use rollcall_tests::fault::{
    EventLog, blocking, converge, dump_all, expected_of, node, open_in, range,
};
use rollcall_tests::workload::{self, WorkSocket};
use rollcall_tests::{RedisServer, unique_prefix};

const USERS: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_of_the_wrong_type_fails_the_call_before_anything_is_written() {
    let redis = RedisServer::start();
    let url = redis.url();
    let prefix = unique_prefix("halfwritten");
    let schema = Schema::new(&prefix);
    let a = node(&url, &prefix, "a").await;
    let b = node(&url, &prefix, "b").await;
    open_in(&a, 0, 20, USERS).await;
    open_in(&b, 20, 40, USERS).await;
    let urls = [url.clone()];
    let first = [range(0, 20), range(20, 40)];
    converge(
        &urls,
        &schema,
        &expected_of(&schema, first.iter().map(Vec::as_slice), USERS),
        &[],
        Duration::from_secs(20),
    )
    .await;

    // A namespace nobody uses yet: its user hash is a string already.
    let fresh: Vec<WorkSocket> = (0..20)
        .map(|i| WorkSocket {
            sid: format!("f{i}"),
            user: Some(format!("fresh{}", i % 10)),
            namespace: "/fresh",
            rooms: Vec::new(),
        })
        .collect();
    let bad_key = schema.users(&Scope::namespace("/fresh"));
    blocking(|| redis.command(&["SET", &bad_key, "not a hash"]));
    let log = EventLog::of(&a);
    // Sockets of new users in that namespace, on both nodes: every write
    // that carries them fails.
    for (i, s) in fresh.iter().enumerate() {
        let p = if i % 2 == 0 { &a } else { &b };
        p.connect(&s.sid, s.user.as_deref(), s.namespace)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log
        .all()
        .iter()
        .any(|e| matches!(e, Event::StoreError { message, .. } if message.contains("WRONGTYPE")))
    {
        assert!(
            Instant::now() < deadline,
            "no WRONGTYPE store error: {:?}",
            log.all()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Nothing half written meanwhile: every counter still matches the
    // nodes' own shares (the invariants), with the bad key left out.
    let dump: Vec<_> = dump_all(&urls, &schema)
        .await
        .into_iter()
        .filter(|e| e.key != bad_key)
        .collect();
    let broken = rollcall_core::invariants::check(&dump, &schema);
    assert!(broken.is_empty(), "half written: {broken:?}");
    // Repaired (the operator deletes the bad key): the nodes write what
    // failed and every counter matches the live sockets.
    blocking(|| redis.command(&["DEL", &bad_key]));
    let mut all = workload::sockets_of(0..40, USERS);
    all.extend(fresh);
    converge(
        &urls,
        &schema,
        &workload::expected_counters(&schema, &all),
        &[],
        Duration::from_secs(30),
    )
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
