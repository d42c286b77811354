//! The tracker's contract with its host: bad input is refused with a typed
//! error and changes nothing; bursts coalesce; the grace period holds a
//! reload; replies of the wrong shape are errors, not panics.

use rollcall_core::protocol::Call;
use rollcall_core::{
    Config, Event, Field, IdError, IdKind, Input, InputError, Keyspace, MAX_ID_LEN, Reply, Scope,
    Script, Step, Token, Tracker,
};
use rollcall_sim::Cluster;

fn connect(sid: &str, user: Option<&str>) -> Input {
    Input::Connect {
        sid: sid.into(),
        user: user.map(Into::into),
        namespace: "/".into(),
    }
}

/// Runs `ops` on the keyspace at `now`, feeding each reply back, until the
/// tracker asks for nothing more.
fn run_to_quiet(t: &mut Tracker, ks: &mut Keyspace, now: u64, mut ops: Vec<rollcall_core::Op>) {
    while let Some(op) = ops.pop() {
        let reply = ks.run(now, &op);
        let token = op.token;
        ops.extend(t.handle(now, Input::Reply { token, reply }).unwrap().ops);
    }
}

/// A tracker over a keyspace, run to quiet after each input.
struct Solo {
    t: Tracker,
    ks: Keyspace,
    now: u64,
    events: Vec<Event>,
    calls: Vec<Script>,
    /// The most (field, count) pairs one apply or re-assert carried.
    widest: usize,
    /// The most fields one apply or re-assert could touch: its pairs, plus,
    /// for a re-assert, what Redis held of the incarnation.
    touched: usize,
}

impl Solo {
    fn new(config: Config) -> Solo {
        let mut s = Solo {
            t: Tracker::new(config, "solo").unwrap(),
            ks: Keyspace::new(),
            now: 10_000,
            events: Vec::new(),
            calls: Vec::new(),
            widest: 0,
            touched: 0,
        };
        s.feed(Input::Tick).unwrap();
        s
    }

    fn feed(&mut self, input: Input) -> Result<(), InputError> {
        let step = self.t.handle(self.now, input)?;
        self.run(step);
        Ok(())
    }

    fn run(&mut self, step: Step) {
        self.events.extend(step.events);
        for op in step.ops {
            self.calls.push(op.script);
            if let Ok(Call::Apply(a)) = Call::decode(op.script, &op.args) {
                let pairs = a.deltas.len();
                self.widest = self.widest.max(pairs);
                self.touched = self.touched.max(pairs);
            }
            let held = match self.ks.get(&format!("{{rollcall}}:i:{}", op.args[1])) {
                Some(rollcall_core::model::Value::ZSet(z)) => z.len(),
                _ => 0,
            };
            let reply = self.ks.run(self.now, &op);
            // A re-assert walks what Redis held, unless it refused (ROTATE).
            let walked = match &reply {
                Reply::Array(items) => items[0].as_str() != Some("ROTATE"),
                _ => false,
            };
            if let Ok(Call::Reassert(a)) = Call::decode(op.script, &op.args) {
                let pairs = a.counts.len();
                self.widest = self.widest.max(pairs);
                if walked {
                    self.touched = self.touched.max(pairs + held);
                }
            }
            let next = self
                .t
                .handle(
                    self.now,
                    Input::Reply {
                        token: op.token,
                        reply,
                    },
                )
                .unwrap();
            self.run(next);
        }
    }

    fn global_users(&self) -> Option<i64> {
        self.ks.hash_get("{rollcall}:u:g", "ann")
    }
}

#[test]
fn bad_ids_are_refused_by_kind_and_length() {
    let mut s = Solo::new(Config::default());
    let long = "x".repeat(MAX_ID_LEN + 1);
    assert_eq!(
        s.feed(connect(&long, Some("ann"))),
        Err(InputError::BadId(IdError::TooLong {
            kind: IdKind::Socket,
            len: MAX_ID_LEN + 1
        }))
    );
    assert_eq!(
        s.feed(connect("s1", Some(""))),
        Err(InputError::BadId(IdError::Empty(IdKind::User)))
    );
    assert_eq!(
        s.feed(Input::Join {
            sid: "s1".into(),
            room: long.clone()
        }),
        Err(InputError::BadId(IdError::TooLong {
            kind: IdKind::Room,
            len: MAX_ID_LEN + 1
        }))
    );
    assert_eq!(s.t.local_sockets(), 0);
    assert!(s.ks.hash_get("{rollcall}:count", "sg").is_none());
}

#[test]
fn refused_inputs_leave_every_other_socket_as_it_was() {
    let mut s = Solo::new(Config::default());
    s.feed(connect("s1", Some("ann"))).unwrap();
    s.feed(connect("s2", Some("bob"))).unwrap();
    let fields = s.t.local_fields();
    let dump = s.ks.dump();
    let refused = [
        (
            connect("s1", Some("eve")),
            InputError::DuplicateSocket { sid: "s1".into() },
        ),
        (
            Input::Disconnect { sid: "zz".into() },
            InputError::UnknownSocket { sid: "zz".into() },
        ),
        (
            Input::Leave {
                sid: "zz".into(),
                room: "r".into(),
            },
            InputError::UnknownSocket { sid: "zz".into() },
        ),
        (
            Input::ClientClose { cid: "c".into() },
            InputError::UnknownClient { cid: "c".into() },
        ),
        (
            Input::Reply {
                token: Token(999),
                reply: Reply::Nil,
            },
            InputError::UnknownToken { token: Token(999) },
        ),
    ];
    for (input, err) in refused {
        assert_eq!(s.feed(input), Err(err));
    }
    assert_eq!(s.t.local_fields(), fields);
    assert_eq!(s.ks.dump(), dump);
    s.feed(Input::ClientOpen { cid: "c".into() }).unwrap();
    assert_eq!(
        s.feed(Input::ClientOpen { cid: "c".into() }),
        Err(InputError::DuplicateClient { cid: "c".into() })
    );
}

#[test]
fn hostile_ids_cannot_reach_other_keys() {
    let mut s = Solo::new(Config::default());
    let evil = "}:count\u{0}{rollcall}:u:g:ann\n";
    s.feed(Input::Connect {
        sid: "s1".into(),
        user: Some(evil.into()),
        namespace: evil.into(),
    })
    .unwrap();
    s.feed(Input::Join {
        sid: "s1".into(),
        room: evil.into(),
    })
    .unwrap();
    s.feed(connect("s2", Some("ann"))).unwrap();
    assert_eq!(s.global_users(), Some(1));
    assert_eq!(s.ks.hash_get("{rollcall}:u:g", evil), Some(1));
    assert_eq!(
        s.t.local_count(&Field::User(Scope::room(evil, evil), evil.into())),
        1
    );
    let dump = s.ks.dump();
    assert!(dump.iter().all(|e| e.key.starts_with("{rollcall}:")));
    assert_eq!(
        rollcall_core::invariants::check(&dump, s.t.schema()),
        Vec::<String>::new()
    );
}

#[test]
fn inputs_while_a_write_is_in_flight_coalesce_into_net_deltas() {
    let mut t = Tracker::new(Config::default(), "n").unwrap();
    let mut ks = Keyspace::new();
    let pending = t.handle(0, Input::Tick).unwrap().ops;
    // Register and the first re-assert go through.
    run_to_quiet(&mut t, &mut ks, 0, pending);
    let first = t.handle(1, connect("s0", Some("zed"))).unwrap().ops;
    assert_eq!(first.len(), 1, "the first input is written at once");
    // While it is in flight: ann connects and leaves, bob connects twice.
    for input in [
        connect("s1", Some("ann")),
        Input::Disconnect { sid: "s1".into() },
        connect("s2", Some("bob")),
        connect("s3", Some("bob")),
    ] {
        assert!(
            t.handle(2, input).unwrap().ops.is_empty(),
            "nothing is sent while a write is in flight"
        );
    }
    let reply = ks.run(3, &first[0]);
    let next = t
        .handle(
            3,
            Input::Reply {
                token: first[0].token,
                reply,
            },
        )
        .unwrap();
    assert_eq!(next.ops.len(), 1);
    let Ok(Call::Apply(apply)) = Call::decode(next.ops[0].script, &next.ops[0].args) else {
        panic!("an apply: {:?}", next.ops[0]);
    };
    let deltas: Vec<(String, String)> = apply
        .deltas
        .iter()
        .map(|(f, d)| (f.clone(), d.to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = deltas
        .iter()
        .map(|(f, d)| (f.as_str(), d.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("sg", "2"),
            ("sn/", "2"),
            ("u1:gbob", "2"),
            ("u2:n/bob", "2")
        ]
    );
}

#[test]
fn a_reload_within_grace_makes_no_event_and_no_write() {
    let mut s = Solo::new(Config {
        grace_ms: 1_000,
        ..Config::default()
    });
    s.feed(connect("s1", Some("ann"))).unwrap();
    assert_eq!(
        s.events.len(),
        2,
        "online globally and in '/': {:?}",
        s.events
    );
    let calls = s.calls.len();
    s.now += 10;
    s.feed(Input::Disconnect { sid: "s1".into() }).unwrap();
    s.now += 500;
    s.feed(connect("s2", Some("ann"))).unwrap();
    s.now += 2_000;
    s.feed(Input::Tick).unwrap();
    assert_eq!(s.events.len(), 2);
    assert!(
        s.calls[calls..].iter().all(|c| *c != Script::Apply),
        "{:?}",
        &s.calls[calls..]
    );

    // A real departure goes offline once the grace period ends.
    s.feed(Input::Disconnect { sid: "s2".into() }).unwrap();
    assert_eq!(s.global_users(), Some(1));
    s.now += 999;
    s.feed(Input::Tick).unwrap();
    assert_eq!(s.global_users(), Some(1));
    s.now += 1;
    s.feed(Input::Tick).unwrap();
    assert_eq!(s.global_users(), None);
    assert!(matches!(s.events.last(), Some(Event::UserOffline { .. })));
}

#[test]
fn replies_of_the_wrong_shape_are_errors_and_heal_by_reassert() {
    let mut t = Tracker::new(Config::default(), "n").unwrap();
    let mut ks = Keyspace::new();
    let ops = t.handle(0, Input::Tick).unwrap().ops;
    run_to_quiet(&mut t, &mut ks, 0, ops);
    let op = t
        .handle(1, connect("s1", Some("ann")))
        .unwrap()
        .ops
        .remove(0);
    ks.run(1, &op); // It ran, but the host got garbage back.
    let bad = Reply::Array(vec![Reply::Str("OK".into()), Reply::Int(7)]);
    let e = t
        .handle(
            1,
            Input::Reply {
                token: op.token,
                reply: bad,
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            InputError::BadReply {
                script: Script::Apply,
                ..
            }
        ),
        "{e}"
    );
    // The call is answered: a second reply to it is unknown.
    let e = t
        .handle(
            1,
            Input::Reply {
                token: op.token,
                reply: Reply::Int(3),
            },
        )
        .unwrap_err();
    assert_eq!(e, InputError::UnknownToken { token: op.token });
    // The tracker sends the same call again (same call id): the store ran
    // it already and answers with the reply it kept, so nothing is applied
    // twice and the counts are right.
    let due = t.next_tick().unwrap();
    let ops = t.handle(due, Input::Tick).unwrap().ops;
    assert_eq!(ops[0].script, Script::Apply);
    assert_eq!(ops[0].args, op.args, "the same call");
    assert_ne!(ops[0].token, op.token);
    run_to_quiet(&mut t, &mut ks, due, ops);
    assert_eq!(ks.hash_get("{rollcall}:u:g", "ann"), Some(1));
}

#[test]
fn a_paused_node_is_fenced_registers_again_and_reasserts() {
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
    c.input(z, connect("s1", Some("ann"))).unwrap();
    c.settle();
    c.pause(z);
    c.advance(3_000);
    assert_eq!(
        c.store.hash_get("{rollcall}:u:g", "ann"),
        None,
        "reaped while paused"
    );
    c.resume(z);
    c.settle();
    c.advance(1_000);
    assert_eq!(
        c.store.hash_get("{rollcall}:u:g", "ann"),
        Some(1),
        "re-asserted"
    );
    assert!(
        c.events
            .iter()
            .any(|e| e.node == z && matches!(e.event, Event::Fenced { .. }))
    );
    assert!(
        c.events
            .iter()
            .any(|e| e.node == a && matches!(e.event, Event::NodeReaped { .. }))
    );
    assert_eq!(c.violations(), Vec::<String>::new());
}

#[test]
fn shutdown_refuses_new_sockets_and_ends_closed() {
    let mut s = Solo::new(Config::default());
    s.feed(connect("s1", Some("ann"))).unwrap();
    s.feed(Input::Shutdown).unwrap();
    assert_eq!(s.feed(connect("s2", None)), Err(InputError::Closed));
    assert!(s.t.is_closed());
    assert_eq!(s.t.next_tick(), None);
    assert!(matches!(s.events.last(), Some(Event::Closed)));
    assert!(s.events.iter().any(|e| matches!(
        e,
        Event::UserOffline {
            reason: rollcall_core::OfflineReason::Shutdown,
            ..
        }
    )));
    let left: Vec<String> = s.ks.dump().into_iter().map(|e| e.key).collect();
    assert_eq!(
        left,
        ["{rollcall}:feed", "{rollcall}:seen"],
        "only what outlives the nodes"
    );
}

#[test]
fn bad_config_names_the_option() {
    let e = Tracker::new(
        Config {
            heartbeat_ms: 6_000,
            ..Config::default()
        },
        "n",
    )
    .unwrap_err();
    assert_eq!(e.option, "ttl_ms");
    let e = Tracker::new(Config::default(), "").unwrap_err();
    assert_eq!(e.option, "node");
}

fn small_writes(max_write_fields: u32) -> Config {
    Config {
        ttl_ms: 2_000,
        heartbeat_ms: 500,
        reap_ms: 700,
        retry_ms: 200,
        max_write_fields,
        ..Config::default()
    }
}

#[test]
fn a_large_burst_goes_in_applies_of_at_most_max_write_fields() {
    let mut t = Tracker::new(small_writes(5), "n").unwrap();
    let mut ks = Keyspace::new();
    let pending = t.handle(0, Input::Tick).unwrap().ops;
    run_to_quiet(&mut t, &mut ks, 0, pending);
    // The first connect is in flight; 40 more (160 fields) coalesce.
    let mut pending = t.handle(1, connect("s0", Some("u00"))).unwrap().ops;
    for i in 1..40 {
        let step = t.handle(1, connect(&format!("s{i}"), Some(&format!("u{i:02}"))));
        assert!(step.unwrap().ops.is_empty());
    }
    let mut sent = Vec::new();
    let mut online = 0;
    while let Some(op) = pending.pop() {
        if let Ok(Call::Apply(a)) = Call::decode(op.script, &op.args) {
            let fields: Vec<String> = a.deltas.iter().map(|(f, _)| f.clone()).collect();
            assert!(fields.len() <= 5, "{} pairs", fields.len());
            assert!(fields.windows(2).all(|w| w[0] < w[1]), "sorted");
            sent.extend(fields);
        }
        let reply = ks.run(2, &op);
        let token = op.token;
        let step = t.handle(2, Input::Reply { token, reply }).unwrap();
        online += step
            .events
            .iter()
            .filter(|e| matches!(e, Event::UserOnline { .. }))
            .count();
        pending.extend(step.ops);
    }
    // Each call takes the first fields by name; what is left waits.
    let mut later = sent[4..].to_vec();
    later.sort();
    assert_eq!(sent[4..], later[..], "the backlog goes in name order");
    assert_eq!(online, 80, "40 users online globally and in `/`");
    assert_eq!(ks.hash_get("{rollcall}:count", "sg"), Some(40));
    assert_eq!(ks.hash_get("{rollcall}:u:n/", "u39"), Some(1));
    assert_eq!(
        rollcall_core::invariants::check(&ks.dump(), t.schema()),
        Vec::<String>::new()
    );
}

#[test]
fn after_a_wipe_a_large_state_is_registered_and_written_in_bounded_applies() {
    let mut s = Solo::new(small_writes(3));
    for i in 0..10 {
        s.feed(connect(&format!("s{i}"), Some(&format!("u{i}"))))
            .unwrap();
    }
    s.ks.clear();
    s.calls.clear();
    s.now += 600;
    s.feed(Input::Tick).unwrap();
    assert_eq!(s.calls[..2], [Script::Heartbeat, Script::Register]);
    assert!(!s.calls.contains(&Script::Reassert), "{:?}", s.calls);
    assert!(s.calls[2..].iter().all(|c| *c == Script::Apply));
    assert!(s.widest <= 3);
    assert_eq!(s.ks.hash_get("{rollcall}:count", "sg"), Some(10));
    assert_eq!(s.ks.hash_get("{rollcall}:u:g", "u9"), Some(1));
    assert_eq!(
        rollcall_core::invariants::check(&s.ks.dump(), s.t.schema()),
        Vec::<String>::new()
    );
}

#[test]
fn a_small_state_still_reasserts_in_one_call() {
    let mut s = Solo::new(small_writes(3));
    s.feed(connect("s1", Some("ann"))).unwrap();
    s.ks.clear();
    s.calls.clear();
    s.now += 600;
    s.feed(Input::Tick).unwrap();
    // sg, sn/, u1:gann, u2:n/ann: 4 fields > 3; one anonymous socket fits.
    assert!(!s.calls.contains(&Script::Reassert));
    let mut s = Solo::new(small_writes(3));
    s.feed(connect("s1", None)).unwrap();
    s.ks.clear();
    s.calls.clear();
    s.now += 600;
    s.feed(Input::Tick).unwrap();
    assert_eq!(
        s.calls,
        [Script::Heartbeat, Script::Register, Script::Reassert]
    );
}

#[test]
fn a_large_reassert_rotates_without_any_user_going_offline() {
    rotation_keeps_every_user_online(0);
}

/// Each call takes 150 ms (the lane waits for the other calls queued at
/// Redis too): the rotation (about 10 applies) outlasts the TTL (2 s), so
/// the incarnation it keeps must be renewed meanwhile.
#[test]
fn a_rotation_longer_than_the_ttl_renews_what_it_keeps() {
    rotation_keeps_every_user_online(150);
}

/// A drift makes node `a` re-assert more than one call may carry: it
/// rotates. `call_ms`: how long each call takes.
fn rotation_keeps_every_user_online(call_ms: u64) {
    let mut c = Cluster::new(small_writes(3));
    let a = c.add_node("a");
    let b = c.add_node("b");
    c.settle();
    let users: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    for (i, u) in users.iter().enumerate() {
        c.input(a, connect(&format!("s{i}"), Some(u))).unwrap();
        c.input(
            a,
            Input::Join {
                sid: format!("s{i}"),
                room: "r".into(),
            },
        )
        .unwrap();
        c.settle();
    }
    c.input(b, connect("t0", Some("u0"))).unwrap();
    c.settle();
    let first = c.tracker(a).incarnation().unwrap();
    // An apply is acknowledged, then Redis loses it (a failover onto a
    // replica that lagged): the next heartbeat finds the version behind, so
    // the node no longer knows what Redis holds of it and must re-assert
    // 8 users x 3 scopes + counts.
    let before = c.store.clone();
    c.input(a, connect("s8", Some("u0"))).unwrap();
    c.settle();
    c.store = before;
    assert!(c.tracker(a).local_fields().len() > 3);
    let transitions = c.transitions.len();
    // Past the heartbeat: it finds the drift.
    c.now += c.config.heartbeat_ms;
    c.input(a, Input::Tick).unwrap();
    let mut most = 0;
    let mut steps = 0;
    let started = c.now;
    loop {
        for u in &users {
            let n = c.store.hash_get("{rollcall}:u:g", u);
            assert!(n.is_some(), "{u} went offline during the rotation");
            most = most.max(n.unwrap());
        }
        if call_ms > 0 {
            // Ticks never stop: done once the old incarnation is gone.
            let schema = c.schema();
            if c.tracker(a).incarnation().as_ref() != Some(&first)
                && c.store.get(&schema.own(&first)).is_none()
                && c.store.get(&schema.dead()).is_none()
            {
                c.settle();
                assert!(
                    c.now - started > c.config.ttl_ms,
                    "the rotation took {} ms, not longer than the TTL",
                    c.now - started
                );
                break;
            }
            steps += 1;
            assert!(steps < 10_000, "the rotation never finished");
            // Time passes during each call; both nodes tick when due
            // (b's reaps would take a's kept incarnation once it lapsed).
            c.now += call_ms;
            for n in [a, b] {
                if c.tracker(n).next_tick().is_some_and(|t| t <= c.now) {
                    c.input(n, Input::Tick).unwrap();
                }
            }
        }
        if !c.deliver() {
            break;
        }
    }
    assert!(
        most >= 2,
        "the new share is written before the old is reaped"
    );
    let second = c.tracker(a).incarnation().unwrap();
    assert_ne!(first, second, "rotated to a new incarnation");
    assert!(
        c.transitions[transitions..].iter().all(|t| t.online),
        "no user went offline"
    );
    // The old incarnation is gone, the counts are exact.
    let schema = c.schema();
    assert!(c.store.get(&schema.own(&first)).is_none());
    assert!(c.store.get(&schema.dead()).is_none());
    assert_eq!(c.store.hash_get("{rollcall}:u:g", "u0"), Some(3));
    assert_eq!(c.store.hash_get("{rollcall}:u:g", "u7"), Some(1));
    assert_eq!(c.store.hash_get("{rollcall}:count", "sg"), Some(10));
    assert_eq!(c.violations(), Vec::<String>::new());
    assert!(
        !c.events
            .iter()
            .any(|e| matches!(e.event, Event::UserOffline { .. } | Event::Fenced { .. })),
        "no offline event, no fence"
    );
    // Quiet later: still exact.
    c.advance(5_000);
    assert_eq!(c.store.hash_get("{rollcall}:count", "sg"), Some(10));
    assert_eq!(c.violations(), Vec::<String>::new());
}

#[test]
fn a_reassert_after_drift_rotates_instead_of_walking_a_large_share() {
    let mut s = Solo::new(Config {
        grace_ms: 0,
        ..small_writes(3)
    });
    for i in 0..10 {
        s.feed(connect(&format!("s{i}"), Some(&format!("u{i}"))))
            .unwrap();
    }
    let held = s.t.local_fields().len();
    assert!(held > 6, "{held} fields");
    // Every client of the node drops, then Redis loses those writes (a
    // failover onto a replica that lagged): it holds the node's whole old
    // share, under an older version, and the node holds nothing.
    let before = s.ks.clone();
    for i in 0..10 {
        s.feed(Input::Disconnect {
            sid: format!("s{i}"),
        })
        .unwrap();
    }
    s.ks = before;
    s.events.clear();
    let calls = s.calls.len();
    for _ in 0..60 {
        s.now += 250;
        s.feed(Input::Tick).unwrap();
    }
    // The re-assert found more in Redis than it may walk: a rotation, and
    // the old share reaped in slices, so no call touched more than 2 x 3.
    assert!(
        s.calls[calls..].contains(&Script::Register),
        "{:?}",
        &s.calls[calls..]
    );
    assert!(s.touched <= 6, "a call touched {} fields", s.touched);
    assert_eq!(s.t.local_fields(), Vec::<(String, u32)>::new());
    let dump = s.ks.dump();
    assert_eq!(
        rollcall_core::invariants::check(&dump, &rollcall_core::Schema::new("rollcall")),
        Vec::<String>::new()
    );
    assert!(
        !dump
            .iter()
            .any(|e| e.key.contains(":u:") || e.key.ends_with(":count")),
        "every counter gone: {dump:?}"
    );
    // Each of the users Redis still had went offline once more (the
    // failover brought them back; the reap of the old share reports them).
    for i in 0..10 {
        let user = format!("u{i}");
        let offline = s
            .events
            .iter()
            .filter(|e| matches!(e, Event::UserOffline { scope: Scope::Global, user: u, .. } if *u == user))
            .count();
        assert_eq!(offline, 1, "{user}");
    }
}
