//! Members in pages and where a user is, through rollcall-host on a real
//! redis-server and on the in-memory store: pages in user-id order cover
//! every member exactly once, carry the sockets and since of each, a page
//! stays bounded by its limit, `user_rooms` follows joins and leaves on
//! two nodes, and bad pages are clear errors.

use std::collections::BTreeSet;
use std::time::Duration;

use rollcall_host::{Error, Input, MemoryStore, Presence, Scope};
use rollcall_tests::{RedisServer, rooms_of, unique_prefix};

fn builder(prefix: &str, name: &str) -> rollcall_host::Builder {
    Presence::builder()
        .prefix(prefix)
        .node_id(name)
        .ttl(Duration::from_millis(3000))
        .heartbeat(Duration::from_millis(500))
        .grace(Duration::ZERO)
}

fn connect(sid: &str, user: &str) -> Input {
    Input::Connect {
        sid: sid.into(),
        user: Some(user.into()),
        namespace: "/".into(),
    }
}

fn join(sid: &str, room: &str) -> Input {
    Input::Join {
        sid: sid.into(),
        room: room.into(),
    }
}

/// Every page of `scope` with `limit`, as (user, sockets, since) in order.
async fn all_pages(p: &Presence, scope: Scope, limit: u32) -> (Vec<(String, u64, u64)>, usize) {
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = p
            .members(scope.clone(), limit, cursor.as_deref())
            .await
            .unwrap();
        assert!(
            page.members.len() <= limit as usize,
            "a page holds at most its limit"
        );
        pages += 1;
        got.extend(
            page.members
                .into_iter()
                .map(|m| (m.user, m.sockets, m.since)),
        );
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return (got, pages),
        }
    }
}

async fn two_nodes_page_and_place(a: Presence, b: Presence) {
    // 25 users, each with a socket on a; every third also on b; odd ones in "lobby".
    for i in 0..25 {
        let user = format!("user-{i:02}");
        a.input(connect(&format!("a{i}"), &user)).await.unwrap();
        if i % 3 == 0 {
            b.input(connect(&format!("b{i}"), &user)).await.unwrap();
        }
        if i % 2 == 1 {
            a.input(join(&format!("a{i}"), "lobby")).await.unwrap();
        }
    }
    // A read waits for its own node's writes only: wait for the other's.
    for p in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while p.users_count(Scope::Global).await.unwrap() != 25
            || p.users_count(Scope::room("/", "lobby")).await.unwrap() != 12
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "25 users within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let (all, pages) = all_pages(&b, Scope::Global, 7).await;
    assert_eq!(pages, 4, "25 members in pages of 7");
    let users: Vec<&str> = all.iter().map(|(u, _, _)| u.as_str()).collect();
    let want: Vec<String> = (0..25).map(|i| format!("user-{i:02}")).collect();
    assert_eq!(users, want, "every member once, in id order");
    for (i, (_, sockets, _)) in all.iter().enumerate() {
        assert_eq!(*sockets, 1 + u64::from(i % 3 == 0), "user-{i:02}'s sockets");
    }
    // The users only on a came online in id order, by a's writes in turn:
    // their since (the store's clock) never goes back.
    let since: Vec<u64> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, m)| m.2)
        .collect();
    assert!(
        since[0] > 0 && since.windows(2).all(|w| w[0] <= w[1]),
        "since in order: {since:?}"
    );
    // A page exactly the size of the scope has no cursor (no empty page after it).
    let page = a.members(Scope::Global, 25, None).await.unwrap();
    assert_eq!((page.members.len(), page.cursor), (25, None));

    let (lobby, _) = all_pages(&a, Scope::room("/", "lobby"), 1000).await;
    let odd: Vec<String> = (0..25)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("user-{i:02}"))
        .collect();
    assert_eq!(lobby.iter().map(|m| m.0.clone()).collect::<Vec<_>>(), odd);

    // Where is user-03 (a socket on each node; on a in the lobby)?
    // (Each read sees its own node's inputs; the other's are there already.)
    b.input(join("b3", "vip")).await.unwrap();
    let places = rooms_of(&b, "user-03").await;
    assert_eq!(
        places,
        vec![
            Scope::namespace("/"),
            Scope::room("/", "lobby"),
            Scope::room("/", "vip")
        ]
    );
    // Leaving a room on one node leaves it; the other node's room stays.
    a.input(Input::Leave {
        sid: "a3".into(),
        room: "lobby".into(),
    })
    .await
    .unwrap();
    let places = rooms_of(&a, "user-03").await;
    assert_eq!(places, vec![Scope::namespace("/"), Scope::room("/", "vip")]);
    assert!(a.user_rooms("nobody").await.unwrap().is_empty());

    // Pages under change: a member there from the first page to the last
    // is in exactly one page, whoever comes and goes in between.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut k = 0;
    loop {
        let page = a
            .members(Scope::Global, 5, cursor.as_deref())
            .await
            .unwrap();
        seen.extend(page.members.into_iter().map(|m| m.user));
        k += 1;
        a.input(connect(&format!("new{k}"), &format!("user-{k:02}x")))
            .await
            .unwrap();
        a.input(Input::Disconnect {
            sid: format!("a{}", 24 - k),
        })
        .await
        .unwrap();
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let distinct: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no member twice: {seen:?}");
    // Page k took user-(24-k)'s socket on a away; those also on b stayed.
    for i in (0..25).filter(|i| i % 3 == 0 || *i < 24 - k || *i == 24) {
        let user = format!("user-{i:02}");
        assert!(
            seen.contains(&user),
            "{user} stayed throughout and is missing: {seen:?}"
        );
    }

    for (limit, cursor) in [(0, None), (1001, None), (5, Some(""))] {
        match a.members(Scope::Global, limit, cursor).await {
            Err(Error::BadArgument { name, .. }) => assert!(name == "limit" || name == "cursor"),
            other => panic!("limit {limit}, cursor {cursor:?}: {other:?}"),
        }
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_and_places_on_redis() {
    let redis = RedisServer::start();
    let prefix = unique_prefix("members");
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
    two_nodes_page_and_place(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_and_places_in_memory() {
    let store = MemoryStore::new();
    let a = builder("m", "a")
        .store(store.clone())
        .start()
        .await
        .unwrap();
    let b = builder("m", "b").store(store).start().await.unwrap();
    two_nodes_page_and_place(a, b).await;
}
