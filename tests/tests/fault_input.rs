//! Fault suite, fault 11: bad input at every boundary.
//!
//! - The core's decoders (serde_json of `Input`, `Reply`, `Config`, trace
//!   headers and lines, whole traces) get arbitrary bytes and strings in a
//!   long property run with a fixed budget (`ROLLCALL_FUZZ_CASES`, default
//!   20,000 per property): never a panic, always an error that says what.
//! - A tracker gets replies of every wrong shape for its calls: typed
//!   errors, never a panic.
//! - Real Redis: hostile ids (very long, with `:` `{` `}` and NUL) through a
//!   real node: clear errors for what is refused, no key injection, other
//!   users' counts unchanged; a keyspace corrupted under the nodes (wrong
//!   types: replies of the wrong shape) reports errors and heals.

use std::time::Duration;

use proptest::prelude::*;
use rollcall_core::trace::{Header, Replayer, replay};
use rollcall_core::{Config, Input, Reply, Schema, Token, Tracker};
use rollcall_host::{Error, Event};
use rollcall_tests::fault::{
    self, EventLog, blocking, converge, counters, dump_all, expected_of, figure, keys_all,
    node_keys_all, open_in, range, wait_event,
};
use rollcall_tests::workload::{WorkSocket, expected_counters, sockets_of};
use rollcall_tests::{NodeArgs, NodeProc, RedisServer, unique_prefix};

const BIN: &str = env!("CARGO_BIN_EXE_fault_node");

fn cases() -> u32 {
    std::env::var("ROLLCALL_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// JSON-ish text: often near-valid, so the decoders get past the first byte.
fn jsonish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"type\"",
        "\"connect\"",
        "\"reply\"",
        "\"sid\"",
        "\"user\"",
        "\"namespace\"",
        "\"token\"",
        "\"error\"",
        "\"at\"",
        "\"input\"",
        "null",
        "1",
        "-1",
        "1.5",
        "1e400",
        "18446744073709551616",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "true",
        "\"x\"",
        "\"tick\"",
        "\"rollcall_trace\"",
        "\"config\"",
        "\"node\"",
    ]);
    prop::collection::vec(atoms, 0..24).prop_map(|v| v.concat())
}

fn assert_clear<E: std::fmt::Display>(r: Result<impl Sized, E>) {
    if let Err(e) = r {
        assert!(
            !e.to_string().trim().is_empty(),
            "an error without a message"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fault_11_decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        assert_clear(serde_json::from_slice::<Input>(&bytes));
        assert_clear(serde_json::from_slice::<Reply>(&bytes));
        assert_clear(serde_json::from_slice::<Config>(&bytes));
        assert_clear(serde_json::from_slice::<Header>(&bytes));
        assert_clear(serde_json::from_slice::<rollcall_core::trace::Entry>(&bytes));
        let text = String::from_utf8_lossy(&bytes);
        assert_clear(replay(&text));
    }

    #[test]
    fn fault_11_decoders_never_panic_on_jsonish(text in jsonish(), line in jsonish()) {
        assert_clear(serde_json::from_str::<Input>(&text));
        assert_clear(serde_json::from_str::<Reply>(&text));
        assert_clear(serde_json::from_str::<Config>(&text));
        assert_clear(serde_json::from_str::<rollcall_core::trace::Entry>(&text));
        let header = Header::new(&Config::default(), "n1").to_line();
        let mut r = Replayer::new(&header).expect("a valid header");
        assert_clear(r.step(&text));
        assert_clear(r.step(&line));
        assert_clear(r.step(&format!("{{\"at\":5,\"input\":{text}}}")));
        assert_clear(replay(&format!("{header}\n{text}\n{line}\n")));
    }
}

fn any_reply() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        Just(Reply::Nil),
        any::<i64>().prop_map(Reply::Int),
        prop::sample::select(vec![
            "OK", "FENCED", "DRIFT", "SLICE", "DONE", "IDLE", "", "GONE", "u1:gx"
        ])
        .prop_map(|s| Reply::Str(s.to_owned())),
        ".{0,12}".prop_map(Reply::Str),
        ".{0,12}".prop_map(Reply::error),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop::collection::vec(inner, 0..6).prop_map(Reply::Array)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 10, ..config() })]

    /// Replies of every wrong shape to a tracker's own calls: it refuses
    /// them with a typed error or takes them; it never panics and keeps
    /// answering.
    #[test]
    fn fault_11_tracker_survives_wrong_shaped_replies(replies in prop::collection::vec(any_reply(), 1..40)) {
        let mut t = Tracker::new(Config::default(), "n1").unwrap();
        let mut now = 1_000;
        let mut pending: Vec<Token> = t.handle(now, Input::Tick).unwrap().ops.iter().map(|o| o.token).collect();
        for (i, reply) in replies.into_iter().enumerate() {
            now += 250;
            let step = t.handle(now, Input::Connect {
                sid: format!("s{i}"), user: Some(format!("u{}", i % 3)), namespace: "/".into(),
            });
            if let Ok(s) = step { pending.extend(s.ops.iter().map(|o| o.token)); }
            let token = pending.pop().unwrap_or(Token(u64::MAX));
            match t.handle(now, Input::Reply { token, reply }) {
                Ok(s) => pending.extend(s.ops.iter().map(|o| o.token)),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            if let Ok(s) = t.handle(now, Input::Tick) { pending.extend(s.ops.iter().map(|o| o.token)); }
        }
    }
}

fn hostile_socket(sid: &str, user: &str, ns: &str, room: Option<&str>) -> WorkSocket {
    WorkSocket {
        sid: sid.to_owned(),
        user: Some(user.to_owned()),
        namespace: Box::leak(ns.to_owned().into_boxed_str()),
        rooms: room.map(|r| vec![r.to_owned()]).unwrap_or_default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_11_hostile_ids_and_corrupt_keyspace_on_real_redis() {
    let redis = RedisServer::start();
    let urls = vec![redis.url()];
    let prefix = unique_prefix("f11");
    let schema = Schema::new(&prefix);
    let users = 50;
    // Ordinary users on a node process.
    let mut args = NodeArgs::new(&redis.url(), &prefix, "v");
    args.users = users;
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(0, 200));
    let a = fault::node(&redis.url(), &prefix, "a").await;
    let la = EventLog::of(&a);
    open_in(&a, 200, 300, users).await;
    let ordinary = expected_of(&schema, [&range(0, 200)[..], &range(200, 300)[..]], users);
    converge(&urls, &schema, &ordinary, &[], Duration::from_secs(30)).await;
    // The ordinary users' counters as Redis holds them before any hostile id.
    let before_hostile = counters(&dump_all(&urls, &schema).await, &schema);

    // Ids that look like keys, tags, separators, other users, NUL.
    let long = "x".repeat(rollcall_core::MAX_ID_LEN);
    let hostile = [
        hostile_socket("h1", "u1:gu2", "/", Some("r0")),
        hostile_socket("h2", "}:u:g", "/", None),
        hostile_socket("h3", &format!("{{{prefix}}}:count"), "/chat", Some("}{")),
        hostile_socket("h4", "a\0b", "/\0", Some("\0")),
        hostile_socket("h5", "u3", "/", Some("r0:u4")),
        hostile_socket("h6", &long, &long, Some(&long)),
        hostile_socket("h7", "{x}", "r5:/chat", Some(":")),
    ];
    for s in &hostile {
        a.connect(&s.sid, s.user.as_deref(), s.namespace)
            .await
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        for r in &s.rooms {
            a.join(&s.sid, r).await.unwrap();
        }
    }
    // Too long by one byte: refused, clearly, changing nothing.
    let too_long = "y".repeat(rollcall_core::MAX_ID_LEN + 1);
    for (sid, user, ns) in [
        (too_long.as_str(), "u", "/"),
        ("t1", too_long.as_str(), "/"),
        ("t2", "u", too_long.as_str()),
        ("", "u", "/"),
        ("t3", "", "/"),
    ] {
        let err = a.connect(sid, Some(user), ns).await.unwrap_err();
        assert!(matches!(err, Error::BadInput(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("limit") || text.contains("empty"),
            "a clear message: {text}"
        );
    }
    let err = a.join("h1", &too_long).await.unwrap_err();
    assert!(matches!(err, Error::BadInput(_)), "{err}");

    let mut all: Vec<WorkSocket> = sockets_of(0..300, users);
    all.extend(hostile.iter().cloned());
    let want = expected_counters(&schema, &all);
    converge(&urls, &schema, &want, &[], Duration::from_secs(15)).await;
    // No key injection: every key is one the schema names (the invariant
    // check reports unknown keys), and only the prefix' keys exist.
    let dbsize: usize = redis
        .command_string(&["DBSIZE"])
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert_eq!(dbsize, keys_all(&urls, &schema).await.len());
    // The ordinary users' counters are exactly what they were: every
    // counter Redis held before the hostile ids, except the ones a hostile
    // socket itself counts in (its scopes' socket counts, and user `u3`,
    // which h5 shares), reads back unchanged from Redis. A hostile id that
    // spelt its way into another user's field or another scope would show
    // here.
    let hostile_targets = expected_counters(&schema, &hostile);
    let now = counters(&dump_all(&urls, &schema).await, &schema);
    let mut unchanged = 0;
    for (k, v) in &before_hostile {
        if hostile_targets.contains_key(k) {
            continue;
        }
        assert_eq!(now.get(k), Some(v), "ordinary counter {k:?} changed");
        unchanged += 1;
    }
    assert!(
        unchanged >= 100,
        "only {unchanged} ordinary counters compared"
    );
    // Reads with hostile ids answer exactly; the refused 257-byte id is
    // held by nobody.
    assert_eq!(a.user_sockets_count("u1:gu2").await.unwrap(), 1);
    assert_eq!(a.user_sockets_count("a\0b").await.unwrap(), 1);
    assert_eq!(a.user_sockets_count(&long).await.unwrap(), 1);
    assert_eq!(
        a.user_sockets_count(&too_long).await.unwrap(),
        0,
        "a refused id is counted nowhere"
    );

    // Replies of the wrong shape: a key of the prefix holds the wrong type
    // (someone wrote over it). The scripts fail; the nodes report it, keep
    // running, and heal once it is gone.
    let ver_key = schema.versions();
    let before = la
        .all()
        .iter()
        .filter(|e| matches!(e, Event::StoreError { .. }))
        .count();
    redis.command(&["DEL", &ver_key]);
    redis.command(&["SET", &ver_key, "not a hash"]);
    open_in(&a, 300, 310, users).await;
    wait_event(
        "a store error on a corrupt keyspace",
        &[&|| la.all()],
        |e| matches!(e, Event::StoreError { message, .. } if message.contains("WRONGTYPE")),
        Duration::from_secs(10),
    )
    .await;
    let errors = la
        .all()
        .iter()
        .filter(|e| matches!(e, Event::StoreError { .. }))
        .count()
        - before;
    figure("f11", "store_errors_on_wrongtype", errors);
    assert!(v.alive(), "the node process survived");
    assert_eq!(a.status(), rollcall_host::driver::Status::Running);
    redis.command(&["DEL", &ver_key]);
    all.extend(sockets_of(300..310, users));
    let want = expected_counters(&schema, &all);
    let took = converge(&urls, &schema, &want, &[], Duration::from_secs(15)).await;
    figure(
        "f11",
        "healed_after_corruption_removed_ms",
        took.as_millis(),
    );

    blocking(|| v.shutdown(Duration::from_secs(20)));
    a.shutdown().await.unwrap();
    assert_eq!(node_keys_all(&urls, &schema).await, Vec::<String>::new());
}
