//! Presence on the in-memory store (no Redis): the single-server default.
//! Bursts coalesce into few round trips, an outage keeps the local truth,
//! shutdown leaves nothing behind.

use std::time::Duration;

use rollcall_host::{Event, MemoryStore, OfflineReason, Presence, Scope, Store};

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < end, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_burst_of_inputs_coalesces_into_few_round_trips() {
    let store = MemoryStore::new();
    let p = Presence::builder()
        .store(store.clone())
        .start()
        .await
        .unwrap();
    let reader = p.reader().clone();
    eventually("registered", || async {
        store.dump().iter().any(|e| e.key.ends_with(":live"))
    })
    .await;
    let before = store.round_trips();
    // Queued without awaiting each: they arrive as one burst.
    let pending: Vec<_> = (0..1000)
        .map(|i| p.connect(&format!("s{i}"), Some(&format!("u{}", i % 100)), "/"))
        .collect();
    for f in pending {
        f.await.unwrap();
    }
    eventually("1000 sockets counted", || async {
        reader.sockets_count(Scope::Global).await.unwrap() == 1000
    })
    .await;
    assert_eq!(p.users_count(Scope::Global).await.unwrap(), 100);
    let trips = store.round_trips() - before;
    // The reads above are round trips too; the writes took a handful.
    assert!(trips < 20, "{trips} round trips for one burst");
    p.shutdown().await.unwrap();
    assert_eq!(store.node_keys(), Vec::<String>::new());
}

#[tokio::test]
async fn an_outage_keeps_the_local_truth_and_heals() {
    let store = MemoryStore::new();
    let p = Presence::builder()
        .store(store.clone())
        .ttl(Duration::from_millis(400))
        .heartbeat(Duration::from_millis(100))
        .reap_interval(Duration::from_millis(100))
        .retry(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let mut events = p.subscribe();
    p.connect("a", Some("ann"), "/").await.unwrap();
    store.set_available(false);
    p.connect("b", Some("bob"), "/chat").await.unwrap();
    p.join("b", "dev").await.unwrap();
    p.disconnect("a").await.unwrap();
    assert!(p.users_count(Scope::Global).await.is_err());
    // The store comes back (empty, as a Redis restarted without data).
    store.clear();
    store.set_available(true);
    let reader = p.reader().clone();
    eventually("bob alone, in /chat dev", || async {
        reader.users_list(Scope::Global).await.ok() == Some(vec!["bob".to_owned()])
            && reader.sockets_count(Scope::room("/chat", "dev")).await.ok() == Some(1)
    })
    .await;
    let mut saw_error = false;
    while let Ok(e) = events.try_recv() {
        saw_error |= matches!(e, Event::StoreError { .. });
    }
    assert!(saw_error, "the outage was reported as StoreError events");
    p.shutdown().await.unwrap();
    let mut offline = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::UserOffline { user, reason, .. } = e {
            offline.push((user, reason));
        }
    }
    assert!(offline.contains(&("bob".to_owned(), OfflineReason::Shutdown)));
    match p.store() {
        Store::Memory(m) => assert_eq!(m.node_keys(), Vec::<String>::new()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_killed_node_is_reaped_by_a_peer() {
    let store = MemoryStore::new();
    let start = |name: &str| {
        Presence::builder()
            .store(store.clone())
            .node_id(name)
            .ttl(Duration::from_millis(300))
            .heartbeat(Duration::from_millis(100))
            .reap_interval(Duration::from_millis(100))
            .start()
    };
    let a = start("a").await.unwrap();
    let b = start("b").await.unwrap();
    let mut events = a.subscribe();
    b.connect("s1", Some("zed"), "/").await.unwrap();
    let reader = a.reader().clone();
    eventually("zed online", || async {
        reader.is_user_connected("zed").await.unwrap_or(false)
    })
    .await;
    b.kill();
    assert!(b.connect("s2", None, "/").await.is_err());
    let mut reaped = false;
    while !reaped {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Ok(Event::NodeReaped { node, .. })) => reaped = node == "b",
            Ok(Ok(_)) => {}
            other => panic!("no reap: {other:?}"),
        }
    }
    assert!(!reader.is_user_connected("zed").await.unwrap());
    a.shutdown().await.unwrap();
    assert_eq!(store.node_keys(), Vec::<String>::new());
}

#[tokio::test]
async fn start_returns_once_registered_and_fails_if_registration_fails() {
    let store = MemoryStore::new();
    let p = Presence::builder()
        .store(store.clone())
        .start()
        .await
        .unwrap();
    // No waiting: the node is in the store when start returns.
    assert!(
        store.dump().iter().any(|e| e.key.ends_with(":live")),
        "{:?}",
        store.dump()
    );
    p.shutdown().await.unwrap();

    store.set_available(false);
    let e = Presence::builder()
        .store(store.clone())
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, rollcall_host::Error::Register { message } if message.contains("unavailable")),
        "{e:?}"
    );
    store.set_available(true);
    assert!(
        store.dump().is_empty(),
        "nothing of the failed node is left"
    );
}
