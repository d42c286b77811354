//! Read-your-writes: a read started after an input waits for the write that
//! carries it (`Tracker::read_barrier` / `Tracker::is_visible`).

use rollcall_core::{Config, Input, Keyspace, Op, Query, Reply, Scope, Token, Tracker};

fn connect(sid: &str, user: &str) -> Input {
    Input::Connect {
        sid: sid.into(),
        user: Some(user.into()),
        namespace: "/".into(),
    }
}

/// Runs every op at once, feeding each reply back, until nothing is asked.
fn settle(t: &mut Tracker, ks: &mut Keyspace, now: u64, mut ops: Vec<Op>) {
    while let Some(op) = ops.pop() {
        let reply = ks.run(now, &op);
        ops.extend(
            t.handle(
                now,
                Input::Reply {
                    token: op.token,
                    reply,
                },
            )
            .unwrap()
            .ops,
        );
    }
}

fn users(t: &Tracker, ks: &mut Keyspace) -> Reply {
    let q = Query::Users {
        scope: Scope::Global,
    };
    ks.run(0, &q.op(t.schema(), Token(0)))
}

#[test]
fn a_read_after_an_input_is_visible_only_once_its_write_is_acknowledged() {
    let mut ks = Keyspace::new();
    let mut t = Tracker::new(Config::default(), "n1").unwrap();
    let ops = t.handle(0, Input::Tick).unwrap().ops;
    settle(&mut t, &mut ks, 0, ops);
    let idle = t.read_barrier();
    assert!(t.is_visible(idle), "nothing written: visible at once");

    // The connect goes out as a write; until its reply, a read must wait.
    let step = t.handle(1, connect("s1", "ann")).unwrap();
    let barrier = t.read_barrier();
    assert!(barrier > idle);
    assert!(!t.is_visible(barrier), "the write is in flight");
    assert_eq!(
        users(&t, &mut ks),
        Reply::Int(0),
        "Redis has not seen it yet"
    );
    // A second input while the first write is in flight: it rides the next one.
    let coalesced = t.handle(1, connect("s2", "bob")).unwrap();
    assert!(coalesced.ops.is_empty(), "one write in flight at a time");
    let second = t.read_barrier();
    let [op] = step.ops.try_into().unwrap();
    let reply = ks.run(1, &op);
    let next = t
        .handle(
            2,
            Input::Reply {
                token: op.token,
                reply,
            },
        )
        .unwrap();
    assert!(t.is_visible(barrier), "the first write is acknowledged");
    assert!(
        !t.is_visible(second),
        "the second input is in the next write"
    );
    settle(&mut t, &mut ks, 2, next.ops);
    assert!(t.is_visible(second));
    assert_eq!(users(&t, &mut ks), Reply::Int(2));
}

#[test]
fn inputs_that_cancel_out_are_visible_without_a_write() {
    let mut ks = Keyspace::new();
    let mut t = Tracker::new(Config::default(), "n1").unwrap();
    let ops = t.handle(0, Input::Tick).unwrap().ops;
    settle(&mut t, &mut ks, 0, ops);
    let step = t.handle(1, connect("s1", "ann")).unwrap();
    settle(&mut t, &mut ks, 1, step.ops);
    // Join and leave while no write is in flight: the join asks for a
    // write, the leave cancels it; nothing is pending after that write.
    let join = t
        .handle(
            2,
            Input::Join {
                sid: "s1".into(),
                room: "r".into(),
            },
        )
        .unwrap();
    let leave = t
        .handle(
            2,
            Input::Leave {
                sid: "s1".into(),
                room: "r".into(),
            },
        )
        .unwrap();
    let barrier = t.read_barrier();
    let mut ops = join.ops;
    ops.extend(leave.ops);
    settle(&mut t, &mut ks, 2, ops);
    assert!(t.is_visible(barrier));
}

#[test]
fn a_failed_write_keeps_reads_waiting_until_the_retry_lands() {
    let mut ks = Keyspace::new();
    let config = Config::default();
    let retry = config.retry_ms;
    let mut t = Tracker::new(config, "n1").unwrap();
    let ops = t.handle(0, Input::Tick).unwrap().ops;
    settle(&mut t, &mut ks, 0, ops);
    let step = t.handle(1, connect("s1", "ann")).unwrap();
    let barrier = t.read_barrier();
    let [op] = step.ops.try_into().unwrap();
    let after = t
        .handle(
            2,
            Input::Reply {
                token: op.token,
                reply: Reply::error("timeout"),
            },
        )
        .unwrap();
    assert!(after.ops.is_empty(), "no retry before retry_ms");
    assert!(
        !t.is_visible(barrier),
        "a failed write is not an acknowledgement"
    );
    let retry_step = t.handle(2 + retry, Input::Tick).unwrap();
    assert!(!retry_step.ops.is_empty(), "retried");
    settle(&mut t, &mut ks, 2 + retry, retry_step.ops);
    assert!(t.is_visible(barrier));
    assert_eq!(users(&t, &mut ks), Reply::Int(1));
}
