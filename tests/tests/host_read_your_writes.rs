//! Read-your-writes in the Rust host (issue 11, part 5): a read of a
//! `Presence` started after an input was given reflects it, on a real
//! redis-server and on the in-memory store, with the writes still
//! coalesced. Each socket has its own user and room, so every read has one
//! right answer whatever the other tasks do meanwhile. A read that cannot
//! see this node's writes (Redis paused) fails with a timeout in time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rollcall_host::{Error, MemoryStore, Presence, Scope};
use rollcall_tests::{RedisServer, eventually_async, unique_prefix};

const SOCKETS: usize = 200;
const TASKS: usize = 20;

fn builder(prefix: &str) -> rollcall_host::Builder {
    Presence::builder()
        .prefix(prefix)
        .ttl(Duration::from_millis(4000))
        .heartbeat(Duration::from_millis(1000))
        .reap_interval(Duration::from_millis(1000))
        .retry(Duration::from_millis(100))
        .op_timeout(Duration::from_millis(500))
}

/// Connect, join, leave, disconnect per socket, a read after each: the
/// number of stale answers of `4 * SOCKETS` reads.
async fn stale_reads(p: &Presence) -> u64 {
    let stale = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (p, stale, next) = (p.clone(), stale.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= SOCKETS {
                    break;
                }
                let (sid, user, room) = (format!("s{i}"), format!("u{i}"), format!("r{i}"));
                let mut wrong = 0;
                p.connect(&sid, Some(&user), "/").await.unwrap();
                wrong += u64::from(p.user_sockets_count(&user).await.unwrap() != 1);
                p.join(&sid, &room).await.unwrap();
                wrong += u64::from(p.sockets_count(Scope::room("/", &room)).await.unwrap() != 1);
                p.leave(&sid, &room).await.unwrap();
                wrong += u64::from(p.sockets_count(Scope::room("/", &room)).await.unwrap() != 0);
                p.disconnect(&sid).await.unwrap();
                wrong += u64::from(p.user_sockets_count(&user).await.unwrap() != 0);
                stale.fetch_add(wrong, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    stale.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_real_redis_see_this_nodes_inputs() {
    let redis = RedisServer::start();
    let p = builder(&unique_prefix("ryw"))
        .redis(redis.url())
        .start()
        .await
        .unwrap();
    let stale = stale_reads(&p).await;
    println!(
        "host read-your-writes (redis): {stale} stale of {} reads",
        4 * SOCKETS
    );
    assert_eq!(stale, 0, "{stale} stale answers of {} reads", 4 * SOCKETS);
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_the_memory_store_see_this_nodes_inputs() {
    let p = builder("ryw-mem")
        .store(MemoryStore::new())
        .start()
        .await
        .unwrap();
    let stale = stale_reads(&p).await;
    println!(
        "host read-your-writes (memory): {stale} stale of {} reads",
        4 * SOCKETS
    );
    assert_eq!(stale, 0, "{stale} stale answers of {} reads", 4 * SOCKETS);
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_cannot_see_this_nodes_writes_times_out_then_heals() {
    let mut redis = RedisServer::start();
    let p = builder(&unique_prefix("ryw-pause"))
        .redis(redis.url())
        .start()
        .await
        .unwrap();
    p.connect("s1", Some("ann"), "/").await.unwrap();
    assert_eq!(p.user_sockets_count("ann").await.unwrap(), 1);
    redis.pause();
    p.connect("s2", Some("bob"), "/").await.unwrap();
    let t0 = Instant::now();
    let read = p.user_sockets_count("bob").await;
    let took = t0.elapsed();
    redis.resume();
    match read {
        Err(Error::Timeout { what, .. }) => assert!(what.contains("read"), "{what}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(3),
        "the read failed after {took:?}"
    );
    let users = eventually_async(
        "bob counted after resume",
        Duration::from_secs(15),
        || async { p.users_list(Scope::Global).await },
        |r| matches!(r, Ok(u) if u.len() == 2),
    )
    .await;
    assert_eq!(users.unwrap(), vec!["ann".to_owned(), "bob".to_owned()]);
    p.shutdown().await.unwrap();
}
