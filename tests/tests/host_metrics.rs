//! Metrics of the Rust host (feature `prometheus`): the text a `/metrics`
//! endpoint serves and the collector registered in an app's
//! prometheus-client registry report what the nodes really hold and did,
//! on the in-memory store and on a real redis-server; a cluster gauge whose
//! read fails is left out while the local gauges stay.

use std::time::Duration;

use prometheus_client::registry::Registry;
use rollcall_core::{METRICS, MetricKind};
use rollcall_host::{Event, MemoryStore, Presence, Scope};
use rollcall_tests::{RedisServer, eventually_async, unique_prefix};

/// The value of the sample `name{labels}` (exactly that series) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn builder(prefix: &str) -> rollcall_host::Builder {
    Presence::builder()
        .prefix(prefix)
        .ttl(Duration::from_millis(3000))
        .heartbeat(Duration::from_millis(500))
        .reap_interval(Duration::from_millis(500))
        .retry(Duration::from_millis(100))
        .op_timeout(Duration::from_millis(400))
}

/// Node `a`: alice twice and bob; node `b`: carol. Returns `a`'s global
/// "user online" events once both are written.
async fn populate(a: &Presence, b: &Presence) -> u64 {
    let mut events = a.subscribe();
    a.connect("a1", Some("alice"), "/").await.unwrap();
    a.connect("a2", Some("alice"), "/chat").await.unwrap();
    a.connect("a3", Some("bob"), "/").await.unwrap();
    a.join("a3", "lobby").await.unwrap();
    b.connect("b1", Some("carol"), "/").await.unwrap();
    // A read waits for its own node's writes only: after one read on each
    // node, both nodes' writes are in the store.
    a.users_count(Scope::Global).await.unwrap();
    b.users_count(Scope::Global).await.unwrap();
    assert_eq!(a.users_count(Scope::Global).await.unwrap(), 3);
    assert_eq!(b.users_count(Scope::Global).await.unwrap(), 3);
    let mut online = 0;
    while let Ok(e) = events.try_recv() {
        if let Event::UserOnline {
            scope: Scope::Global,
            ..
        } = e
        {
            online += 1;
        }
    }
    online
}

/// Checks `text` against what node `a` holds and did.
fn check(text: &str, a_stats: &rollcall_host::NodeStats, online: u64) {
    for m in METRICS {
        let declared = format!(
            "# TYPE {} ",
            m.name.strip_suffix("_total").unwrap_or(m.name)
        );
        assert!(text.contains(&declared), "{} missing in\n{text}", m.name);
        if m.kind == MetricKind::Counter && m.name != "rollcall_events_total" {
            let want = a_stats.stats.counter(m.name).unwrap() as f64;
            // Counters only grow: the scrape came after the stats.
            assert!(
                sample(text, m.name).unwrap() >= want,
                "{} in\n{text}",
                m.name
            );
        }
    }
    assert_eq!(sample(text, "rollcall_local_sockets"), Some(3.0), "{text}");
    assert_eq!(sample(text, "rollcall_local_users"), Some(2.0), "{text}");
    assert_eq!(
        sample(text, "rollcall_cluster_sockets"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(sample(text, "rollcall_cluster_users"), Some(3.0), "{text}");
    assert_eq!(
        sample(text, "rollcall_events_total{type=\"user_online\"}"),
        Some(online as f64),
        "{text}"
    );
    assert!(
        sample(text, "rollcall_writes_total").unwrap() >= 2.0,
        "{text}"
    );
    let timed = sample(text, "rollcall_write_seconds_count").unwrap();
    assert!(timed >= 2.0, "{text}");
    assert_eq!(
        sample(text, "rollcall_write_seconds_bucket{le=\"+Inf\"}"),
        Some(timed),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_the_memory_store() {
    let store = MemoryStore::new();
    let a = builder("m")
        .store(store.clone())
        .node_id("a")
        .start()
        .await
        .unwrap();
    let b = builder("m")
        .store(store)
        .node_id("b")
        .start()
        .await
        .unwrap();
    let online = populate(&a, &b).await;
    assert_eq!(online, 2, "alice and bob came online through a");
    let stats = a.stats().await.unwrap();
    assert_eq!((stats.local_sockets, stats.local_users), (3, 2));
    assert_eq!(stats.stats.users_online, online);
    check(&a.metrics().await.unwrap(), &stats, online);

    a.shutdown().await.unwrap();
    assert!(matches!(
        a.metrics().await,
        Err(rollcall_host::Error::Closed)
    ));
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_redis_and_in_a_registry() {
    let mut redis = RedisServer::start();
    let prefix = unique_prefix("metrics");
    let a = builder(&prefix).redis(redis.url()).start().await.unwrap();
    let b = builder(&prefix).redis(redis.url()).start().await.unwrap();
    let mut registry = Registry::default();
    a.register_metrics(&mut registry);
    let online = populate(&a, &b).await;
    let stats = a.stats().await.unwrap();
    check(&a.metrics().await.unwrap(), &stats, online);

    // The registry's numbers are refreshed in the background.
    let encode = |r: &Registry| {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, r).unwrap();
        text
    };
    let text = eventually_async(
        "the registry reports both nodes",
        Duration::from_secs(20),
        || async { encode(&registry) },
        |t| sample(t, "rollcall_cluster_sockets") == Some(4.0),
    )
    .await;
    check(&text, &stats, online);

    // Redis stopped: the cluster gauges go, the local ones stay.
    redis.pause();
    let text = a.metrics().await.unwrap();
    redis.resume();
    assert_eq!(sample(&text, "rollcall_cluster_users"), None, "{text}");
    assert_eq!(sample(&text, "rollcall_cluster_sockets"), None, "{text}");
    assert_eq!(sample(&text, "rollcall_local_sockets"), Some(3.0), "{text}");

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
