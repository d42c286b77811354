//! Fault suite, fault 10: Redis Cluster. Three primaries on loopback free
//! ports, created by the harness (`redis-server --cluster-enabled yes` +
//! `redis-cli --cluster create`); host nodes (in process and as their own
//! OS process) on the redis-rs cluster client: no CROSSSLOT error, counts
//! right, a killed node reaped, a clean shutdown leaves nothing.

use std::time::Duration;

use rollcall_core::Schema;
use rollcall_host::{Event, Presence, RedisStore, Scope};
use rollcall_tests::cluster::hash_slot;
use rollcall_tests::fault::{
    self, EventLog, blocking, converge, expected_of, figure, keys_all, ms, node_keys_all, open_in,
    range, wait_event,
};
use rollcall_tests::{NodeArgs, NodeProc, RedisCluster, unique_prefix};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_fault_node");

async fn cluster_node(seeds: &[String], prefix: &str, name: &str) -> Presence {
    let store = RedisStore::connect_cluster(seeds, Duration::from_millis(600))
        .await
        .unwrap_or_else(|e| panic!("connect {name} to the cluster: {e}"));
    assert!(store.is_cluster());
    Presence::builder()
        .store(store)
        .config(fault::config(prefix))
        .node_id(name)
        .op_timeout(Duration::from_millis(600))
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_10_redis_cluster_no_crossslot() {
    let started = Instant::now();
    let cluster = blocking(|| RedisCluster::start(3));
    figure("f10", "cluster_create_ms", ms(started.elapsed()));
    let seeds = cluster.urls();
    // Two applications whose prefixes land on different primaries.
    let p1 = unique_prefix("f10");
    let mut p2 = unique_prefix("f10");
    while cluster.owner_of(&p2) == cluster.owner_of(&p1) {
        p2 = unique_prefix("f10");
    }
    figure(
        "f10",
        "slots",
        format!("{}/{}", hash_slot(&p1), hash_slot(&p2)),
    );
    let users = 300;
    let mut done = Vec::new();
    for prefix in [&p1, &p2] {
        let schema = Schema::new(prefix);
        let a = cluster_node(&seeds, prefix, "a").await;
        let b = cluster_node(&seeds, prefix, "b").await;
        let (la, lb) = (EventLog::of(&a), EventLog::of(&b));
        open_in(&a, 0, 300, users).await;
        open_in(&b, 300, 600, users).await;
        let mut args = NodeArgs::new(&seeds[0], prefix, "v");
        args.redis = seeds.clone();
        args.cluster = true;
        args.users = users;
        let mut v = blocking(|| NodeProc::spawn(BIN, &args));
        blocking(|| v.open(600, 1_100));
        let all = expected_of(
            &schema,
            [
                &range(0, 300)[..],
                &range(300, 600)[..],
                &range(600, 1_100)[..],
            ],
            users,
        );
        let took = converge(&seeds, &schema, &all, &[], Duration::from_secs(30)).await;
        figure("f10", "counted_ms", ms(took));
        // Reads through the cluster client.
        let n = a
            .sockets_count(Scope::Global)
            .await
            .expect("a cluster read");
        assert_eq!(n, 1_100);
        // Every key of the prefix is on the one primary that owns its slot.
        let owner = cluster.owner_of(prefix);
        assert!(
            !keys_all(std::slice::from_ref(&owner), &schema)
                .await
                .is_empty()
        );
        for other in seeds.iter().filter(|u| **u != owner) {
            assert_eq!(
                node_keys_all(std::slice::from_ref(other), &schema).await,
                Vec::<String>::new()
            );
        }

        blocking(|| v.kill9());
        let t = wait_event(
            "v reaped on the cluster",
            &[&|| la.all(), &|| lb.all()],
            |e| matches!(e, Event::NodeReaped { node, .. } if node == "v"),
            Duration::from_secs(20),
        )
        .await;
        figure("f10", "reaped_after_kill_ms", ms(t));
        let rest = expected_of(&schema, [&range(0, 300)[..], &range(300, 600)[..]], users);
        converge(&seeds, &schema, &rest, &["v"], Duration::from_secs(10)).await;
        let errors: Vec<Event> = la
            .all()
            .into_iter()
            .chain(lb.all())
            .filter(|e| matches!(e, Event::StoreError { .. }))
            .collect();
        assert!(
            !errors
                .iter()
                .any(|e| format!("{e:?}").contains("CROSSSLOT")),
            "{errors:?}"
        );
        figure("f10", "store_errors", errors.len());
        done.push((a, b, schema));
    }
    for (a, b, schema) in done {
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        assert_eq!(node_keys_all(&seeds, &schema).await, Vec::<String>::new());
    }
}
