//! `identify` through rollcall-host, on a real redis-server and on the
//! in-memory store: a connected socket's user changes, its namespace and
//! rooms move with it, and the transitions come as events (the old user
//! goes at once, without a grace period).

use std::time::Duration;

use rollcall_host::{Event, Input, MemoryStore, OfflineReason, Presence, Scope};
use rollcall_tests::{RedisServer, rooms_of, unique_prefix};
use tokio::sync::broadcast::Receiver;

fn builder(prefix: &str) -> rollcall_host::Builder {
    Presence::builder()
        .prefix(prefix)
        .node_id("a")
        .ttl(Duration::from_millis(3000))
        .heartbeat(Duration::from_millis(500))
        // A grace period the old user must not get.
        .grace(Duration::from_secs(60))
}

/// The events until `want` lines are there (generous deadline), as lines.
async fn lines(rx: &mut Receiver<Event>, want: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < want {
        let e = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("20 s and only {got:?}"))
            .unwrap();
        let where_ = |s: &Scope| match s {
            Scope::Global => "global".to_owned(),
            Scope::Namespace { namespace } => namespace.clone(),
            Scope::Room { room, .. } => room.clone(),
        };
        match e {
            Event::UserOnline { scope, user, .. } => {
                got.push(format!("+{user} {}", where_(&scope)))
            }
            Event::UserOffline {
                scope,
                user,
                reason,
                ..
            } => {
                assert_eq!(reason, OfflineReason::Disconnect);
                got.push(format!("-{user} {}", where_(&scope)));
            }
            _ => {}
        }
    }
    got.sort();
    got
}

async fn story(p: Presence) {
    let mut rx = p.subscribe();
    p.connect("s1", None, "/").await.unwrap();
    p.input(Input::Join {
        sid: "s1".into(),
        room: "lobby".into(),
    })
    .await
    .unwrap();
    p.identify("s1", Some("ann")).await.unwrap();
    assert_eq!(
        lines(&mut rx, 3).await,
        ["+ann /", "+ann global", "+ann lobby"]
    );
    let rooms = rooms_of(&p, "ann").await;
    assert_eq!(rooms, [Scope::namespace("/"), Scope::room("/", "lobby")]);

    p.identify("s1", Some("bob")).await.unwrap();
    assert_eq!(
        lines(&mut rx, 6).await,
        [
            "+bob /",
            "+bob global",
            "+bob lobby",
            "-ann /",
            "-ann global",
            "-ann lobby"
        ],
        "ann goes at once, though the grace period is a minute"
    );
    assert_eq!(p.users_list(Scope::Global).await.unwrap(), ["bob"]);
    p.identify("s1", None).await.unwrap();
    assert_eq!(
        lines(&mut rx, 3).await,
        ["-bob /", "-bob global", "-bob lobby"]
    );
    assert_eq!(p.users_count(Scope::Global).await.unwrap(), 0);
    assert_eq!(p.sockets_count(Scope::room("/", "lobby")).await.unwrap(), 1);
    // An unknown socket is a clear error and changes nothing.
    match p.identify("nope", Some("cy")).await {
        Err(rollcall_host::Error::BadInput(e)) => assert!(e.to_string().contains("nope"), "{e}"),
        other => panic!("an unknown socket: {other:?}"),
    }
    assert_eq!(p.users_count(Scope::Global).await.unwrap(), 0);
    p.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identify_on_redis() {
    let redis = RedisServer::start();
    let p = builder(&unique_prefix("identify"))
        .redis(redis.url())
        .start()
        .await
        .unwrap();
    story(p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identify_in_memory() {
    let p = builder("m")
        .store(MemoryStore::new())
        .start()
        .await
        .unwrap();
    story(p).await;
}
