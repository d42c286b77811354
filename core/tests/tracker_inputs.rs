//! The tracker's contract with its host: bad input is refused with a typed
//! error and changes nothing; bursts coalesce; the grace period holds a
//! reload; replies of the wrong shape are errors, not panics.

use rollcall_core::sim::Cluster;
use rollcall_core::{
    Config, Event, Field, IdError, IdKind, Input, InputError, Keyspace, MAX_ID_LEN, Reply, Scope,
    Script, Step, Token, Tracker,
};

fn connect(sid: &str, user: Option<&str>) -> Input {
    Input::Connect {
        sid: sid.into(),
        user: user.map(Into::into),
        namespace: "/".into(),
    }
}

/// A tracker over a keyspace, run to quiet after each input.
struct Solo {
    t: Tracker,
    ks: Keyspace,
    now: u64,
    events: Vec<Event>,
    calls: Vec<Script>,
}

impl Solo {
    fn new(config: Config) -> Solo {
        let mut s = Solo {
            t: Tracker::new(config, "solo").unwrap(),
            ks: Keyspace::new(),
            now: 10_000,
            events: Vec::new(),
            calls: Vec::new(),
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
            let reply = self.ks.run(self.now, &op);
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
    let mut pending = t.handle(0, Input::Tick).unwrap().ops;
    // Register and the first re-assert go through.
    while let Some(op) = pending.pop() {
        let reply = ks.run(0, &op);
        pending.extend(
            t.handle(
                0,
                Input::Reply {
                    token: op.token,
                    reply,
                },
            )
            .unwrap()
            .ops,
        );
    }
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
    let args = &next.ops[0].args[4..];
    let pairs: Vec<(&str, &str)> = args
        .chunks(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
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
    let mut ops = t.handle(0, Input::Tick).unwrap().ops;
    while let Some(op) = ops.pop() {
        let reply = ks.run(0, &op);
        ops.extend(
            t.handle(
                0,
                Input::Reply {
                    token: op.token,
                    reply,
                },
            )
            .unwrap()
            .ops,
        );
    }
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
    // The tracker retries with a re-assert, which finds the write and
    // changes nothing: the counts are right.
    let due = t.next_tick().unwrap();
    let mut ops = t.handle(due, Input::Tick).unwrap().ops;
    assert_eq!(ops[0].script, Script::Reassert);
    while let Some(op) = ops.pop() {
        let reply = ks.run(due, &op);
        ops.extend(
            t.handle(
                due,
                Input::Reply {
                    token: op.token,
                    reply,
                },
            )
            .unwrap()
            .ops,
        );
    }
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
    assert!(s.ks.is_empty(), "{:?}", s.ks.dump());
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
