//! `Presence::shutdown` through rollcall-host on a real redis-server: its
//! bound (`shutdown_timeout`) is on a lack of progress, not on the whole
//! leave. A node whose leave takes many more calls than fit in the bound
//! leaves while Redis answers them; a frozen Redis gives a timeout.

use std::time::{Duration, Instant};

use rollcall_host::{Error, Presence, Scope};
use rollcall_tests::{RedisServer, unique_prefix};

const BOUND: Duration = Duration::from_millis(1000);
const USERS: usize = 6000;

async fn node(redis: &RedisServer, prefix: &str) -> Presence {
    let config = rollcall_host::Config {
        prefix: prefix.to_owned(),
        // One field per slice: thousands of calls to leave.
        reap_slice: 1,
        ..rollcall_host::Config::default()
    };
    let p = Presence::builder()
        .config(config)
        .redis(redis.url())
        .shutdown_timeout(BOUND)
        .op_timeout(Duration::from_millis(800))
        .start()
        .await
        .unwrap();
    for i in 0..USERS {
        let (sid, user) = (format!("s{i}"), format!("user-{i}"));
        p.connect(&sid, Some(&user), "/").await.unwrap();
    }
    assert_eq!(p.users_count(Scope::Global).await.unwrap(), USERS as u64);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leave_longer_than_the_bound_goes_on_while_the_store_answers() {
    let redis = RedisServer::start();
    let prefix = unique_prefix("shutdown");
    let p = node(&redis, &prefix).await;
    let t0 = Instant::now();
    p.shutdown().await.unwrap();
    let took = t0.elapsed();
    assert!(
        took > BOUND,
        "the leave took {took:?}: it must outlast the bound to test it"
    );
    let reader = rollcall_host::Reader::new(p.store().clone(), &prefix);
    assert_eq!(reader.users_count(Scope::Global).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_store_makes_the_shutdown_time_out() {
    let mut redis = RedisServer::start();
    let p = node(&redis, &unique_prefix("shutdown-frozen")).await;
    redis.pause();
    let t0 = Instant::now();
    let result = p.shutdown().await;
    let took = t0.elapsed();
    redis.resume();
    match result {
        Err(Error::Timeout { after, .. }) => assert_eq!(after, BOUND),
        other => panic!("a frozen store: {other:?}"),
    }
    assert!(took < BOUND * 10, "gave up after {took:?}");
}
