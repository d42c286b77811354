//! `Tracker::stats` and `Tracker::local_users` (what both hosts export as
//! metrics) agree with what the tracker really sent and emitted.

use rollcall_core::{Config, Event, Input, Keyspace, Reply, Scope, Script, Stats, Tracker};
use rollcall_sim::Cluster;

fn connect(sid: &str, user: Option<&str>, namespace: &str) -> Input {
    Input::Connect {
        sid: sid.into(),
        user: user.map(Into::into),
        namespace: namespace.into(),
    }
}

/// Feeds `input`, runs every call on `ks` (the first `fail` of them fail),
/// and returns the scripts sent and the events emitted.
fn drive(
    t: &mut Tracker,
    ks: &mut Keyspace,
    now: u64,
    input: Input,
    fail: &mut usize,
) -> (Vec<Script>, Vec<Event>) {
    let mut scripts = Vec::new();
    let mut events = Vec::new();
    let step = t.handle(now, input).unwrap();
    let mut ops = step.ops;
    events.extend(step.events);
    while let Some(op) = ops.pop() {
        scripts.push(op.script);
        let reply = if *fail > 0 {
            *fail -= 1;
            Reply::Error {
                error: "connection lost".into(),
            }
        } else {
            ks.run(now, &op)
        };
        let step = t
            .handle(
                now,
                Input::Reply {
                    token: op.token,
                    reply,
                },
            )
            .unwrap();
        ops.extend(step.ops);
        events.extend(step.events);
    }
    (scripts, events)
}

#[test]
fn stats_count_every_call_sent_and_every_event_emitted() {
    let mut t = Tracker::new(Config::default(), "n1").unwrap();
    let mut ks = Keyspace::new();
    let mut scripts = Vec::new();
    let mut events = Vec::new();
    let mut fail = 0;
    let mut now = 1_000;
    let mut feed =
        |t: &mut Tracker, ks: &mut Keyspace, now: u64, input: Input, fail: &mut usize| {
            let (s, e) = drive(t, ks, now, input, fail);
            scripts.extend(s);
            events.extend(e);
        };
    feed(&mut t, &mut ks, now, Input::Tick, &mut fail);
    feed(
        &mut t,
        &mut ks,
        now,
        connect("s1", Some("ann"), "/"),
        &mut fail,
    );
    feed(
        &mut t,
        &mut ks,
        now,
        connect("s2", Some("ann"), "/chat"),
        &mut fail,
    );
    feed(
        &mut t,
        &mut ks,
        now,
        connect("s3", Some("bob"), "/"),
        &mut fail,
    );
    feed(&mut t, &mut ks, now, connect("s4", None, "/"), &mut fail);
    assert_eq!(
        t.local_users(),
        2,
        "ann (two namespaces) and bob; the anonymous socket is no user"
    );
    assert_eq!(t.local_sockets(), 4);
    feed(
        &mut t,
        &mut ks,
        now,
        Input::SetData {
            sid: "s1".into(),
            data: Some(r#"{"status":"away"}"#.into()),
        },
        &mut fail,
    );
    // Failed calls: store errors, sent again.
    fail = 2;
    feed(
        &mut t,
        &mut ks,
        now,
        Input::Disconnect { sid: "s3".into() },
        &mut fail,
    );
    assert_eq!(
        t.local_users(),
        1,
        "bob's only socket is gone (no grace period)"
    );
    // A wiped store: the next heartbeat finds the node gone, it re-asserts.
    ks = Keyspace::new();
    for _ in 0..6 {
        now += 3_000;
        feed(&mut t, &mut ks, now, Input::Tick, &mut fail);
    }
    feed(&mut t, &mut ks, now, Input::Shutdown, &mut fail);

    let mut want = Stats::default();
    for s in &scripts {
        match s {
            Script::Reap => want.reaps += 1,
            Script::Read => {}
            Script::Reassert => {
                want.writes += 1;
                want.reasserts += 1;
            }
            _ => want.writes += 1,
        }
    }
    for e in &events {
        match e {
            Event::UserOnline {
                scope: Scope::Global,
                ..
            } => want.users_online += 1,
            Event::UserOffline {
                scope: Scope::Global,
                ..
            } => want.users_offline += 1,
            Event::UserOnline { .. } | Event::UserOffline { .. } => want.scope_transitions += 1,
            Event::UserUpdated { .. } => want.users_updated += 1,
            Event::NodeReaped { .. } => want.reaped_nodes += 1,
            Event::Fenced { .. } => want.fenced += 1,
            Event::StoreError { .. } => want.store_errors += 1,
            _ => {}
        }
    }
    assert_eq!(t.stats(), &want);
    // The run did what the counts claim to see.
    assert!(want.store_errors >= 2, "{want:?}");
    assert!(want.reasserts >= 1, "{want:?}");
    assert!(
        want.users_online >= 2 && want.users_offline >= 1,
        "{want:?}"
    );
    assert!(want.scope_transitions > 0 && want.reaps > 0, "{want:?}");
    assert!(want.users_updated >= 1, "{want:?}");
}

#[test]
fn stats_count_reaps_and_fences_across_a_cluster() {
    let cfg = Config {
        ttl_ms: 2_000,
        heartbeat_ms: 500,
        reap_ms: 500,
        ..Config::default()
    };
    let mut c = Cluster::new(cfg);
    let a = c.add_node("a");
    let z = c.add_node("z");
    c.settle();
    c.input(z, connect("s1", Some("ann"), "/")).unwrap();
    c.input(a, connect("s2", Some("bob"), "/")).unwrap();
    c.settle();
    c.pause(z);
    c.advance(3_000);
    c.resume(z);
    c.settle();
    c.advance(1_000);
    for node in [a, z] {
        let of = |f: &dyn Fn(&Event) -> bool| {
            c.events
                .iter()
                .filter(|e| e.node == node && f(&e.event))
                .count() as u64
        };
        let stats = c.tracker(node).stats();
        assert_eq!(stats.fenced, of(&|e| matches!(e, Event::Fenced { .. })));
        assert_eq!(
            stats.reaped_nodes,
            of(&|e| matches!(e, Event::NodeReaped { .. }))
        );
        assert_eq!(
            stats.users_online,
            of(&|e| matches!(
                e,
                Event::UserOnline {
                    scope: Scope::Global,
                    ..
                }
            ))
        );
        assert_eq!(
            stats.users_offline,
            of(&|e| matches!(
                e,
                Event::UserOffline {
                    scope: Scope::Global,
                    ..
                }
            ))
        );
    }
    assert_eq!(
        c.tracker(z).stats().fenced,
        1,
        "the paused node was fenced once"
    );
    assert_eq!(c.tracker(a).stats().reaped_nodes, 1, "and reaped once");
    assert!(
        c.tracker(z).stats().reasserts >= 1,
        "the fenced node re-asserted"
    );
    assert_eq!(c.tracker(z).local_users(), 1);
}
