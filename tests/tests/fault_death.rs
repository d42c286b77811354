//! Issue 11, across a node's death: a node's write reaches Redis and runs,
//! but its reply never reaches the node (the proxy between them holds
//! Redis' replies), then the node is killed -9. Nobody heard that write's
//! transitions; the node that finishes reaping it takes them from the dead
//! incarnation's kept reply and emits them: each (scope, user) at least
//! once, with the dead node's change id, repeats with the same one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rollcall_core::{OfflineReason, Schema, Scope};
use rollcall_host::Event;
use rollcall_tests::fault::{
    self, EventLog, REAP_MS, TTL_MS, blocking, converge, dump_all, expected_of, figure,
    incarnation_of, range, users_by_scope, wait_event,
};
use rollcall_tests::workload::socket;
use rollcall_tests::{NodeArgs, NodeProc, Proxy, RedisServer, unique_prefix};

const BIN: &str = env!("CARGO_BIN_EXE_fault_node");

/// (scope, user, online) -> the change ids of its reports in `events`.
fn reports(events: &[Event]) -> BTreeMap<(Scope, String, bool), Vec<String>> {
    let mut out: BTreeMap<_, Vec<String>> = BTreeMap::new();
    for e in events {
        if let Some(t) = e.transition() {
            out.entry((t.scope.clone(), t.user.to_owned(), t.online))
                .or_default()
                .push(t.change_id.to_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_11_1_a_write_whose_reply_never_arrived_is_reported_by_the_reaper() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(redis.port());
    let urls = vec![redis.url()];
    let prefix = unique_prefix("death");
    let schema = Schema::new(&prefix);
    let users = 1_000;
    let r = fault::node(&redis.url(), &prefix, "r").await;
    let log = EventLog::of(&r);
    let mut args = NodeArgs::new(&proxy.url(), &prefix, "v");
    args.users = users;
    args.op_timeout_ms = Some(500);
    let mut v = blocking(|| NodeProc::spawn(BIN, &args));
    blocking(|| v.open(0, 40));
    converge(
        &urls,
        &schema,
        &expected_of(&schema, [&range(0, 40)[..]], users),
        &[],
        Duration::from_secs(30),
    )
    .await;
    let inc = incarnation_of(&dump_all(&urls, &schema).await, &schema, "v").expect("v registered");

    // Redis' replies to v are held from now on. 20 sockets leave and 20
    // come in one burst: the first input goes as a write of its own (it
    // runs, its reply is held), the others wait for it and coalesce. Once
    // that write ran, one reply passes: v sends the rest as one write,
    // which runs in Redis, and v never hears of it.
    proxy.freeze_replies(true);
    let answer = blocking(|| v.call("swap 0 20 40 60", Duration::from_secs(30)));
    assert_eq!(answer.trim(), "20 20", "closed, opened");
    let sockets_in_redis = || async {
        let dump = dump_all(&urls, &schema).await;
        fault::counters(&dump, &schema)
            .get(&(schema.counts(), "sg".to_owned()))
            .copied()
    };
    rollcall_tests::eventually_async(
        "the first write ran",
        Duration::from_secs(5),
        sockets_in_redis,
        |n| *n == Some(39),
    )
    .await;
    proxy.pass_replies(1);
    let after = expected_of(&schema, [&range(20, 60)[..]], users);
    converge(&urls, &schema, &after, &[], Duration::from_secs(5)).await;
    blocking(|| v.kill9());

    let events = || log.all();
    let took = wait_event(
        "v reaped",
        &[&events],
        |e| matches!(e, Event::NodeReaped { node, .. } if node == "v"),
        Duration::from_millis(TTL_MS + REAP_MS + 10_000),
    )
    .await;
    figure("f11_1", "reaped_after_kill_ms", took.as_millis());
    // The step's events are all out with NodeReaped; let the log catch up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    converge(
        &urls,
        &schema,
        &expected_of(&schema, [&[][..]], users),
        &["v"],
        Duration::from_secs(10),
    )
    .await;

    let sockets = |from, to| -> Vec<_> { (from..to).map(|i| socket(i, users)).collect() };
    let pairs = |socks: &[_]| -> BTreeSet<(Scope, String)> {
        users_by_scope(socks)
            .into_iter()
            .flat_map(|(scope, us)| us.into_iter().map(move |u| (scope.clone(), u)))
            .collect()
    };
    // Each socket has a user of its own (1,000 users), so every (scope,
    // user) of the swap made a transition: socket 0's in the first write
    // (v heard it), the others' in the lost one.
    let (left, came) = (pairs(&sockets(1, 20)), pairs(&sockets(40, 60)));
    let stayed = pairs(&sockets(20, 40));
    let dead_prefix = format!("{inc}:");
    let v_heard = reports(&v.events());
    let r_heard = reports(&log.all());
    for (scope, user) in pairs(&sockets(0, 1)) {
        let key = (scope, user, false);
        assert_eq!(v_heard.get(&key).map(Vec::len), Some(1), "{key:?} by v");
    }

    let mut adopted = 0;
    let mut repeats = 0;
    for ((scope, user), online) in left
        .iter()
        .map(|p| (p, false))
        .chain(came.iter().map(|p| (p, true)))
    {
        let key = (scope.clone(), user.clone(), online);
        if online {
            assert!(
                !v_heard.contains_key(&key),
                "v never got the reply, yet reported {key:?}"
            );
        } else {
            assert!(
                v_heard.get(&key).is_none_or(Vec::is_empty),
                "v never got the reply, yet reported {key:?}"
            );
        }
        let ids = r_heard.get(&key).cloned().unwrap_or_default();
        let from_v: Vec<&String> = ids
            .iter()
            .filter(|id| id.starts_with(&dead_prefix))
            .collect();
        assert!(
            !from_v.is_empty(),
            "{key:?}: the reaper did not report the lost transition (reported {ids:?})"
        );
        assert!(
            from_v.iter().all(|id| *id == from_v[0]),
            "{key:?}: repeats with different change ids {from_v:?}"
        );
        adopted += 1;
        repeats += from_v.len() - 1;
    }
    // The lost offlines are reported as v would have (disconnect).
    for e in log.all() {
        if let Event::UserOffline {
            scope,
            user,
            reason,
            change_id,
        } = &e
            && change_id.starts_with(&dead_prefix)
        {
            assert!(left.contains(&(scope.clone(), user.clone())), "{e:?}");
            assert_eq!(*reason, OfflineReason::Disconnect, "{e:?}");
        }
    }
    // Whoever v still held (20..60) goes offline by the reap itself, after
    // the adopted online of those that came in the lost write.
    for (scope, user) in stayed.iter().chain(&came) {
        let key = (scope.clone(), user.clone(), false);
        let ids = r_heard.get(&key).cloned().unwrap_or_default();
        assert_eq!(ids.len(), 1, "{key:?}: one reaped offline, got {ids:?}");
        assert!(!ids[0].starts_with(&dead_prefix), "{ids:?}");
    }
    let order: Vec<(Scope, String, bool)> = log
        .all()
        .iter()
        .filter_map(|e| match e {
            Event::UserOnline { scope, user, .. } => Some((scope.clone(), user.clone(), true)),
            Event::UserOffline { scope, user, .. } => Some((scope.clone(), user.clone(), false)),
            _ => None,
        })
        .collect();
    for (scope, user) in &came {
        let on = order
            .iter()
            .position(|k| *k == (scope.clone(), user.clone(), true));
        let off = order
            .iter()
            .rposition(|k| *k == (scope.clone(), user.clone(), false));
        assert!(
            on < off,
            "{scope:?} {user}: online must come before offline"
        );
    }
    let reaped = r_heard
        .iter()
        .filter(|((_, _, online), _)| !online)
        .map(|(_, ids)| {
            ids.iter()
                .filter(|id| !id.starts_with(&dead_prefix))
                .count()
        })
        .sum::<usize>();
    figure("f11_1", "lost_transitions_reported", adopted);
    figure("f11_1", "repeats", repeats);
    figure("f11_1", "reaped_offline_events", reaped);
    r.shutdown().await.unwrap();
}
