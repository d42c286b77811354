use rollcall_core::{
    Answer, Config, Event, Input, Member, MemberPage, OfflineReason, Place, Query, Scope,
};
use rollcall_sim::Cluster;

fn connect(c: &mut Cluster, node: usize, sid: &str, user: Option<&str>, ns: &str) {
    c.input(
        node,
        Input::Connect {
            sid: sid.into(),
            user: user.map(Into::into),
            namespace: ns.into(),
        },
    )
    .unwrap();
}

#[test]
fn two_nodes_count_one_user_once_and_reap_a_crash() {
    let mut c = Cluster::new(Config::default());
    let a = c.add_node("a");
    let b = c.add_node("b");
    c.settle();
    let t0 = c.now;
    connect(&mut c, a, "s1", Some("ann"), "/");
    connect(&mut c, b, "s2", Some("ann"), "/");
    connect(&mut c, b, "s3", Some("bob"), "/chat");
    connect(&mut c, b, "s4", None, "/");
    c.settle();
    assert_eq!(
        c.query(&Query::Users {
            scope: Scope::Global
        }),
        Answer::Count(2)
    );
    assert_eq!(
        c.query(&Query::Sockets {
            scope: Scope::namespace("/")
        }),
        Answer::Count(3)
    );
    let Answer::Members(MemberPage { members, cursor }) = c.query(&Query::Members {
        scope: Scope::Global,
        after: None,
        limit: 10,
    }) else {
        panic!("a member page");
    };
    let who: Vec<(&str, u64)> = members
        .iter()
        .map(|m| (m.user.as_str(), m.sockets))
        .collect();
    assert_eq!((who, cursor), (vec![("ann", 2), ("bob", 1)], None));
    assert!(
        members
            .iter()
            .all(|m: &Member| m.since >= t0 && m.since <= c.now)
    );
    let Answer::Places(places) = c.query(&Query::UserScopes { user: "bob".into() }) else {
        panic!("places");
    };
    let scopes: Vec<&Scope> = places.iter().map(|p: &Place| &p.scope).collect();
    assert_eq!(scopes, vec![&Scope::namespace("/chat")]);
    assert_eq!(c.violations(), Vec::<String>::new());

    c.crash(b);
    c.advance(c.config.ttl_ms + c.config.reap_ms + 1);
    assert_eq!(
        c.query(&Query::Users {
            scope: Scope::Global
        }),
        Answer::Count(1)
    );
    let offline: Vec<_> = c
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::UserOffline {
                scope: Scope::Global,
                user,
                reason,
                ..
            } => Some((e.node, user.clone(), *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(offline, vec![(a, "bob".to_string(), OfflineReason::Reaped)]);
    assert_eq!(c.violations(), Vec::<String>::new());

    c.input(a, Input::Shutdown).unwrap();
    c.settle();
    c.advance(10);
    // Only the change feed and last seen outlive the nodes.
    let left: Vec<String> = c.store.dump().into_iter().map(|e| e.key).collect();
    assert_eq!(left, ["{rollcall}:feed", "{rollcall}:seen"]);
    let schema = rollcall_core::Schema::new("rollcall");
    let feed = c.store.feed_after(&schema, "0-0", 100).unwrap();
    let story: Vec<(&str, &str, Option<OfflineReason>)> = feed
        .iter()
        .filter(|ch| ch.scope == rollcall_core::Scope::Global)
        .map(|ch| (ch.user.as_str(), ch.kind.as_str(), ch.reason))
        .collect();
    assert_eq!(
        story,
        [
            ("ann", "online", None),
            ("bob", "online", None),
            ("bob", "offline", Some(OfflineReason::Reaped)),
            ("ann", "offline", Some(OfflineReason::Shutdown)),
        ]
    );
}
