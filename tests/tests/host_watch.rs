//! The change feed and last seen through rollcall-host, on a real
//! redis-server and on the in-memory store: every node's watcher sees every
//! change of the cluster in order, a watcher resumes from an id, a killed
//! node's users go offline in every feed (reason reaped), a watcher lives
//! through a Redis outage, and `last_seen` answers for offline users only.

use std::time::Duration;

use rollcall_host::{
    Change, ChangeKind, Error, Input, MemoryStore, OfflineReason, Presence, Scope, Watch,
};
use rollcall_tests::{NodeArgs, NodeProc, RedisServer, unique_prefix};
use tokio::time::Instant;

const TTL: u64 = 1000;
const BIN: &str = env!("CARGO_BIN_EXE_fault_node");

fn builder(prefix: &str, name: &str) -> rollcall_host::Builder {
    Presence::builder()
        .prefix(prefix)
        .node_id(name)
        .ttl(Duration::from_millis(TTL))
        .heartbeat(Duration::from_millis(250))
        .reap_interval(Duration::from_millis(250))
        .retry(Duration::from_millis(100))
        .op_timeout(Duration::from_millis(800))
}

/// Changes of `w` until `done` holds for what was read (generous deadline).
async fn read_until(w: &mut Watch, what: &str, done: impl Fn(&[Change]) -> bool) -> Vec<Change> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while !done(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, w.next()).await {
            Ok(Some(Ok(c))) => got.push(c),
            Ok(Some(Err(e))) => eprintln!("watch: {e}"),
            Ok(None) => panic!("{what}: the watch ended"),
            Err(_) => panic!("{what}: not within 20 s; got {got:#?}"),
        }
    }
    got
}

fn story(changes: &[Change]) -> Vec<(String, &'static str, Option<OfflineReason>)> {
    changes
        .iter()
        .filter(|c| c.scope == Scope::Global)
        .map(|c| (c.user.clone(), c.kind.as_str(), c.reason))
        .collect()
}

fn connect(sid: &str, user: &str) -> Input {
    Input::Connect {
        sid: sid.into(),
        user: Some(user.into()),
        namespace: "/".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_sees_every_change_and_resumes_from_an_id() {
    let redis = RedisServer::start();
    let prefix = unique_prefix("watch");
    let a = builder(&prefix, "a")
        .redis(redis.url())
        .start()
        .await
        .unwrap();
    let b = builder(&prefix, "b")
        .redis(redis.url())
        .start()
        .await
        .unwrap();
    let mut wa = a.watch(None).await.unwrap();
    let mut wb = b.watch(None).await.unwrap();

    a.input(connect("s1", "ann")).await.unwrap();
    b.input(connect("s2", "bob")).await.unwrap();
    b.input(Input::Join {
        sid: "s2".into(),
        room: "lobby".into(),
    })
    .await
    .unwrap();
    a.input(Input::Disconnect { sid: "s1".into() })
        .await
        .unwrap();

    let four = |c: &[Change]| story(c).len() == 3 && c.len() == 7;
    let seen_a = read_until(&mut wa, "a's watcher", four).await;
    let seen_b = read_until(&mut wb, "b's watcher", four).await;
    // The same changes, in the same order, on both nodes.
    assert_eq!(seen_a, seen_b);
    let mut ann: Vec<_> = story(&seen_a)
        .into_iter()
        .filter(|s| s.0 == "ann")
        .collect();
    ann.dedup();
    assert_eq!(
        ann,
        [
            ("ann".to_owned(), "online", None),
            ("ann".to_owned(), "offline", Some(OfflineReason::Disconnect))
        ]
    );
    let lobby: Vec<_> = seen_a
        .iter()
        .filter(|c| c.scope == Scope::room("/", "lobby"))
        .map(|c| (c.user.as_str(), c.kind, c.node.as_str()))
        .collect();
    assert_eq!(lobby, [("bob", ChangeKind::Joined, "b")]);
    let mut ids: Vec<&str> = seen_a.iter().map(|c| c.id.as_str()).collect();
    let sorted = {
        let mut s = ids.clone();
        s.dedup();
        s
    };
    assert_eq!(ids, sorted, "ids are unique");
    ids.clear();

    // Resume after the second change: exactly the rest.
    let mut resumed = a.watch(Some(&seen_a[1].id)).await.unwrap();
    let rest = read_until(&mut resumed, "resumed", |c| c.len() == seen_a.len() - 2).await;
    assert_eq!(rest, seen_a[2..]);

    // Last seen: ann is offline (stamped when her socket left); bob is
    // online; nobody knows carl.
    let at = a.last_seen("ann").await.unwrap().expect("ann was seen");
    let left = seen_a
        .iter()
        .find(|c| c.user == "ann" && c.kind == ChangeKind::Offline)
        .unwrap();
    assert_eq!(at, left.at);
    assert_eq!(b.last_seen("bob").await.unwrap(), None);
    assert_eq!(b.last_seen("carl").await.unwrap(), None);

    // A `from` that is no id is refused.
    match a.watch(Some("yesterday")).await {
        Err(Error::BadArgument { name: "from", .. }) => {}
        other => panic!("{other:?}"),
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_nodes_users_leave_every_feed_and_a_watcher_outlives_a_redis_outage() {
    let mut redis = RedisServer::start();
    let prefix = unique_prefix("watchkill");
    let a = builder(&prefix, "a")
        .redis(redis.url())
        .start()
        .await
        .unwrap();
    let mut wa = a.watch(None).await.unwrap();
    let mut args = NodeArgs::new(&redis.url(), &prefix, "victim");
    (args.ttl_ms, args.heartbeat_ms, args.reap_ms, args.users) = (TTL, 250, 250, 5);
    let mut victim = tokio::task::block_in_place(|| NodeProc::spawn(BIN, &args));
    tokio::task::block_in_place(|| victim.open(0, 5));
    let users_online =
        |c: &[Change]| c.iter().filter(|c| c.kind == ChangeKind::Online).count() >= 5;
    let online = read_until(&mut wa, "the victim's users online", users_online).await;
    assert!(online.iter().all(|c| c.node == "victim"));
    victim.kill9();
    let gone = read_until(&mut wa, "the victim's users reaped", |c| {
        c.iter().filter(|c| c.kind == ChangeKind::Offline).count() >= 5
    })
    .await;
    let offline: Vec<_> = gone
        .iter()
        .filter(|c| c.kind == ChangeKind::Offline)
        .collect();
    assert!(
        offline
            .iter()
            .all(|c| c.reason == Some(OfflineReason::Reaped) && c.node == "a")
    );

    // Redis goes away and comes back (keeping its data): the watcher says
    // so once and reads on.
    redis.pause();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.resume();
    a.input(connect("s9", "zoe")).await.unwrap();
    let after = read_until(&mut wa, "zoe after the outage", |c| {
        c.iter().any(|c| c.user == "zoe")
    })
    .await;
    assert!(
        after
            .iter()
            .any(|c| c.user == "zoe" && c.kind == ChangeKind::Online)
    );
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_in_memory_store_has_the_feed_and_last_seen_too() {
    let store = MemoryStore::new();
    let prefix = "mem";
    let a = builder(prefix, "a")
        .store(store.clone())
        .start()
        .await
        .unwrap();
    let b = builder(prefix, "b")
        .store(store.clone())
        .start()
        .await
        .unwrap();
    let mut wb = b.watch(None).await.unwrap();
    a.input(connect("s1", "ann")).await.unwrap();
    a.input(Input::Disconnect { sid: "s1".into() })
        .await
        .unwrap();
    let seen = read_until(&mut wb, "ann on and off", |c| story(c).len() == 2).await;
    assert_eq!(
        story(&seen),
        [
            ("ann".to_owned(), "online", None),
            ("ann".to_owned(), "offline", Some(OfflineReason::Disconnect))
        ]
    );
    assert_eq!(
        b.last_seen("ann").await.unwrap(),
        Some(seen.last().unwrap().at)
    );
    // A dropped watcher stops; a new one from the first id reads the rest.
    drop(wb);
    let mut again = b.watch(Some(&seen[0].id)).await.unwrap();
    let rest = read_until(&mut again, "resumed", |c| c.len() == seen.len() - 1).await;
    assert_eq!(rest, seen[1..]);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(store.node_keys(), Vec::<String>::new());
}
