//! Unit tests of each script's model: what one call does to the keyspace
//! and what it replies. The real-Redis tests of the host crate check that
//! the Lua scripts do the same.

use rollcall_core::model::{DumpValue, Keyspace, Value};
use rollcall_core::protocol::{ScriptReply, Updated};
use rollcall_core::{Op, Reply, Schema, Script, Token};

const HB: &str = "500";
const TTL: &str = "2000";
/// The feed cap and last-seen retention every write call carries.
const FEED_MAX: &str = "100";
const SEEN_MS: &str = "60000";

struct Store {
    ks: Keyspace,
    schema: Schema,
    /// The last call id `call` made up.
    calls: u64,
}

fn s(v: &str) -> String {
    v.to_owned()
}

impl Store {
    fn new() -> Store {
        Store {
            ks: Keyspace::new(),
            schema: Schema::new("t"),
            calls: 0,
        }
    }

    /// Runs a script; the call id (and, for a reap, the lane) that the
    /// tracker adds is made up here, a new one per call (`call_as` to give
    /// it).
    fn call(&mut self, now: u64, script: Script, args: &[&str]) -> Reply {
        self.calls += 1;
        let id = self.calls.to_string();
        self.call_as(now, script, args, &id)
    }

    fn call_as(&mut self, now: u64, script: Script, args: &[&str], id: &str) -> Reply {
        let mut args: Vec<String> = args.iter().map(|a| s(a)).collect();
        match script {
            Script::Apply if args.len() >= 4 => {
                args.insert(4, s(id));
                args.insert(5, s(FEED_MAX));
                args.insert(6, s(SEEN_MS));
            }
            Script::Heartbeat if args.len() >= 4 => {
                args.insert(4, s(id));
            }
            // And max_write_fields: the default, unless the test gives it
            // (`max=N` as the 5th argument).
            Script::Reassert if args.len() >= 4 => {
                let max = match args.get(4).and_then(|a| a.strip_prefix("max=")) {
                    Some(n) => {
                        let n = n.to_owned();
                        args.remove(4);
                        n
                    }
                    None => s("2000"),
                };
                args.insert(4, s(id));
                args.insert(5, max);
                args.insert(6, s(FEED_MAX));
                args.insert(7, s(SEEN_MS));
            }
            // The reap lane's users are reaped; the write lane's leave
            // with a node that shuts down.
            Script::Reap if args.len() == 4 => {
                let (lane, mark) = if args[3].is_empty() {
                    ("r", "r")
                } else {
                    ("w", "s")
                };
                args.extend([s(id), s(lane), s(mark), s(FEED_MAX), s(SEEN_MS)]);
            }
            _ => {}
        }
        let op = Op {
            token: Token(1),
            script,
            keys: vec![self.schema.live()],
            args,
        };
        self.ks.run(now, &op)
    }

    fn status(
        &mut self,
        now: u64,
        script: Script,
        args: &[&str],
    ) -> (String, String, Vec<String>, Vec<String>) {
        let r = self.parsed(now, script, args);
        (s(r.status.as_str()), r.detail, r.online, r.offline)
    }

    /// A call's reply, parsed (adopted transitions included).
    fn parsed(&mut self, now: u64, script: Script, args: &[&str]) -> ScriptReply {
        self.calls += 1;
        let id = self.calls.to_string();
        self.parsed_as(now, script, args, &id)
    }

    fn parsed_as(&mut self, now: u64, script: Script, args: &[&str], id: &str) -> ScriptReply {
        let reply = self.call_as(now, script, args, id);
        ScriptReply::parse(script, &reply).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
    }

    /// A process' first registration (`replace` 1).
    fn register(&mut self, now: u64, node: &str, k: &str) -> String {
        self.register_with(now, node, k, "1")
    }

    fn register_with(&mut self, now: u64, node: &str, k: &str, replace: &str) -> String {
        let (status, k, _, _) = self.status(now, Script::Register, &[HB, node, TTL, k, replace]);
        assert_eq!(status, "OK");
        format!("{node}/{k}")
    }

    fn apply(
        &mut self,
        now: u64,
        inc: &str,
        version: &str,
        pairs: &[(&str, i64)],
    ) -> (String, Vec<String>, Vec<String>) {
        let mut args = vec![
            HB.to_owned(),
            inc.to_owned(),
            TTL.to_owned(),
            version.to_owned(),
        ];
        for (f, d) in pairs {
            args.push(s(f));
            args.push(d.to_string());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, _, on, off) = self.status(now, Script::Apply, &refs);
        (status, on, off)
    }

    /// The keys that are not the feed or last seen (those outlive nodes).
    fn node_keys(&self) -> Vec<String> {
        self.ks
            .dump()
            .into_iter()
            .filter(|e| {
                !self
                    .schema
                    .parse_key(&e.key)
                    .is_some_and(|k| k.outlives_nodes())
            })
            .map(|e| e.key)
            .collect()
    }

    /// The feed's entries: (change id, mark, field, at).
    fn feed(&self) -> Vec<(&'static str, &'static str, &'static str, i64)> {
        let Some(x) = self.ks.stream(&self.schema.feed()) else {
            return Vec::new();
        };
        let leak = |v: &str| -> &'static str { Box::leak(v.to_owned().into_boxed_str()) };
        x.after(Default::default(), usize::MAX)
            .map(|(_, f)| {
                (
                    leak(&f[0].1),
                    leak(&f[1].1),
                    leak(&f[2].1),
                    f[3].1.parse().unwrap(),
                )
            })
            .collect()
    }

    fn hget(&self, key: &str, field: &str) -> Option<i64> {
        self.ks.hash_get(&format!("{{t}}:{key}"), field)
    }

    fn zscore(&self, key: &str, member: &str) -> Option<i64> {
        match self.ks.get(&format!("{{t}}:{key}")) {
            Some(Value::ZSet(z)) => z.score(member),
            _ => None,
        }
    }
}

#[test]
fn register_grants_increasing_incarnations_and_retires_the_old_self() {
    let mut st = Store::new();
    let a1 = st.register(1_000, "a", "1");
    assert_eq!(a1, "a/1");
    assert_eq!(st.zscore("live", "a/1"), Some(3_000));
    assert_eq!(st.hget("ver", "a/1"), Some(0));
    // The same node id again from a new process (a restart): a new
    // incarnation; the old one is fenced at once (moved to the dead set, so
    // its lease cannot be renewed) and the next reap takes it.
    let a2 = st.register(1_100, "a", "1");
    assert_eq!(a2, "a/2");
    assert_eq!(st.zscore("live", "a/1"), None);
    assert_eq!(st.zscore("dead", "a/1"), Some(0));
    assert_eq!(st.hget("nodes", "a"), Some(2));
    // A process that was fenced registers again (`replace` 0): it must not
    // fence the incarnation that took its place; both stay live.
    let a3 = st.register_with(1_200, "a", "1", "0");
    assert_eq!(a3, "a/3");
    assert_eq!(st.zscore("live", "a/2"), Some(3_100));
    assert_eq!(st.zscore("live", "a/3"), Some(3_200));
    assert_eq!(st.hget("nodes", "a"), Some(3));
}

#[test]
fn register_with_keep_leaves_that_previous_incarnation_live() {
    let mut st = Store::new();
    let a1 = st.register(1_000, "a", "1");
    st.apply(1_001, &a1, "0", &[("u1:gann", 1)]);
    // A rotation: the new incarnation is granted, the kept one keeps its
    // lease (and its share) until the node retires it.
    let (status, k, _, _) = st.status(1_100, Script::Register, &[HB, "a", TTL, "2", "0", "1"]);
    assert_eq!((status.as_str(), k.as_str()), ("OK", "2"));
    assert_eq!(st.zscore("live", "a/1"), Some(3_001));
    assert_eq!(st.zscore("live", "a/2"), Some(3_100));
    assert_eq!(st.hget("nodes", "a"), Some(2));
    // The new share is written, then the old one retired and reaped: the
    // user never goes offline, the count heals from 2 to 1.
    let (status, on, _) = st.apply(1_101, "a/2", "0", &[("u1:gann", 1)]);
    assert_eq!((status.as_str(), on.len()), ("OK", 0));
    assert_eq!(st.hget("u:g", "ann"), Some(2));
    let (status, _, _, _) = st.status(1_102, Script::Retire, &[HB, "a/1"]);
    assert_eq!(status, "OK");
    let (status, detail, on, off) = st.status(1_103, Script::Reap, &[HB, "a/2", "1000", "a/1"]);
    assert_eq!((status.as_str(), detail.as_str()), ("DONE", "a/1"));
    assert!(on.is_empty() && off.is_empty());
    assert_eq!(st.hget("u:g", "ann"), Some(1));
    assert_eq!(st.hget("nodes", "a"), Some(2), "the reap leaves the new k");
    assert_eq!(st.hget("ver", "a/1"), None);
    // A keep that is not the previous incarnation (a lost reply of the
    // rotation's register) still retires that previous one.
    let (status, k, _, _) = st.status(1_200, Script::Register, &[HB, "a", TTL, "3", "1", "1"]);
    assert_eq!((status.as_str(), k.as_str()), ("OK", "3"));
    assert_eq!(st.zscore("live", "a/2"), None);
    assert_eq!(st.zscore("dead", "a/2"), Some(0));
    assert_eq!(
        rollcall_core::invariants::check(&st.ks.dump(), &st.schema),
        Vec::<String>::new()
    );
}

#[test]
fn apply_moves_own_and_global_counts_and_reports_transitions() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let (status, on, off) = st.apply(1_001, &a, "0", &[("sg", 2), ("u1:gann", 2)]);
    assert_eq!(
        (status.as_str(), on, off),
        ("OK", vec![s("u1:gann")], vec![])
    );
    assert_eq!(st.hget("count", "sg"), Some(2));
    assert_eq!(st.hget("u:g", "ann"), Some(2));
    assert_eq!(st.zscore(&format!("i:{a}"), "u1:gann"), Some(2));
    assert_eq!(st.hget("ver", &a), Some(1));

    let (_, on, off) = st.apply(1_002, &a, "1", &[("sg", -2), ("u1:gann", -2)]);
    assert_eq!((on, off), (vec![], vec![s("u1:gann")]));
    assert_eq!(st.hget("count", "sg"), None, "a counter at 0 is deleted");
    assert_eq!(st.ks.get("{t}:u:g"), None);
    assert_eq!(st.ks.get(&format!("{{t}}:i:{a}")), None);
}

#[test]
fn a_node_never_takes_away_more_than_it_added() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let b = st.register(1_000, "b", "1");
    st.apply(1_001, &a, "0", &[("u1:gann", 1)]);
    st.apply(1_001, &b, "0", &[("u1:gann", 1)]);
    // b decrements by 5 though it only holds 1: only its own 1 goes.
    let (status, _, off) = st.apply(1_002, &b, "1", &[("u1:gann", -5)]);
    assert_eq!((status.as_str(), off), ("OK", vec![]));
    assert_eq!(st.hget("u:g", "ann"), Some(1));
}

#[test]
fn writes_of_an_unregistered_incarnation_are_fenced_and_change_nothing() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    st.apply(1_001, &a, "0", &[("sg", 1)]);
    let before = st.ks.dump();
    let (status, _, _) = st.apply(1_002, "zombie/1", "0", &[("sg", 1)]);
    assert_eq!(status, "FENCED");
    let after: Vec<_> = st
        .ks
        .dump()
        .into_iter()
        .filter(|e| !e.key.ends_with("clock"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|e| !e.key.ends_with("clock"))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_version_mismatch_is_drift_and_applies_nothing() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let (status, _, _) = st.apply(1_001, &a, "7", &[("sg", 1)]);
    assert_eq!(status, "DRIFT");
    assert_eq!(st.hget("count", "sg"), None);
    let (status, _, _, _) = st.status(1_002, Script::Heartbeat, &[HB, &a, TTL, "7"]);
    assert_eq!(status, "DRIFT");
    let (status, _, _, _) = st.status(1_003, Script::Heartbeat, &[HB, &a, TTL, "0"]);
    assert_eq!(status, "OK");
    assert_eq!(
        st.zscore("live", &a),
        Some(3_003),
        "the heartbeat renewed the lease"
    );
}

#[test]
fn reassert_sets_the_share_to_exactly_the_truth() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    st.apply(1_001, &a, "0", &[("sg", 3), ("u1:gann", 1), ("u1:gbob", 2)]);
    let (status, _, on, off) = st.status(
        1_002,
        Script::Reassert,
        &[HB, &a, TTL, "5", "sg", "2", "u1:gbob", "1", "u1:gcat", "1"],
    );
    assert_eq!(status, "OK");
    assert_eq!(on, vec![s("u1:gcat")]);
    assert_eq!(off, vec![s("u1:gann")]);
    assert_eq!(st.hget("count", "sg"), Some(2));
    assert_eq!(st.hget("u:g", "bob"), Some(1));
    assert_eq!(st.hget("ver", &a), Some(5));
}

#[test]
fn reaps_go_in_bounded_slices_are_idempotent_and_remove_the_node_last() {
    let mut st = Store::new();
    let dead = st.register(1_000, "dead", "1");
    let r1 = st.register(1_000, "r1", "1");
    let r2 = st.register(1_000, "r2", "1");
    st.apply(
        1_000,
        &dead,
        "0",
        &[("sg", 3), ("u1:ga", 1), ("u1:gb", 1), ("u1:gc", 1)],
    );
    st.apply(1_000, &r1, "0", &[("sg", 1), ("u1:ga", 1)]);
    // r1 and r2 renew every 400 ms; `dead` does not.
    for now in (1_400..=3_000).step_by(400) {
        st.status(now, Script::Heartbeat, &[HB, &r1, TTL, "1"]);
        st.status(now, Script::Heartbeat, &[HB, &r2, TTL, "0"]);
    }
    let now = 3_100;
    // Two reapers take turns, two fields per call.
    let mut offline = Vec::new();
    let mut statuses = Vec::new();
    for reaper in [&r1, &r2, &r1, &r2, &r1] {
        let (status, target, on, off) = st.status(now, Script::Reap, &[HB, reaper, "2", ""]);
        assert!(on.is_empty());
        statuses.push(status.clone());
        if status != "IDLE" {
            assert_eq!(target, dead);
        }
        offline.extend(off);
    }
    assert_eq!(statuses, ["SLICE", "DONE", "IDLE", "IDLE", "IDLE"]);
    offline.sort();
    assert_eq!(
        offline,
        vec![s("u1:gb"), s("u1:gc")],
        "ann stays online through r1"
    );
    assert_eq!(st.hget("count", "sg"), Some(1));
    assert_eq!(st.hget("u:g", "a"), Some(1));
    assert_eq!(st.zscore("live", &dead), None);
    assert_eq!(st.ks.get("{t}:dead"), None);
    assert_eq!(st.hget("ver", &dead), None);
    assert_eq!(st.hget("nodes", "dead"), None);
}

#[test]
fn a_reaper_whose_own_lease_lapsed_reaps_nobody() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let _b = st.register(1_000, "b", "1");
    let (status, _, _, _) = st.status(3_500, Script::Reap, &[HB, &a, "10", ""]);
    assert_eq!(status, "IDLE");
    let (status, _, _, _) = st.status(3_500, Script::Reap, &[HB, "x/1", "10", ""]);
    assert_eq!(status, "FENCED");
}

#[test]
fn a_stall_of_the_store_moves_every_lease_forward() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let b = st.register(1_000, "b", "1");
    // Nothing runs for 8 s (Redis stalled): the first call after it shifts
    // every lease by the stall beyond one heartbeat.
    let (status, _, _, _) = st.status(9_000, Script::Heartbeat, &[HB, &a, TTL, "0"]);
    assert_eq!(status, "OK");
    assert_eq!(st.zscore("live", &b), Some(3_000 + 7_500));
    let (status, _, _, _) = st.status(9_001, Script::Reap, &[HB, &a, "10", ""]);
    assert_eq!(status, "IDLE", "b is not reaped for Redis' own stall");
}

#[test]
fn retire_then_self_reap_leaves_only_the_feed_and_last_seen() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    st.apply(1_001, &a, "0", &[("c", 1), ("sg", 1), ("u1:gann", 1)]);
    let (status, _, _, _) = st.status(1_002, Script::Retire, &[HB, &a]);
    assert_eq!(status, "OK");
    // The last slice says SLICE (its reply is kept for a retry); the call
    // after it, with nothing left to move, says DONE and leaves nothing.
    let (status, _, _, off) = st.status(1_003, Script::Reap, &[HB, &a, "1000", &a]);
    assert_eq!((status.as_str(), off), ("SLICE", vec![s("u1:gann")]));
    let (status, _, on, off) = st.status(1_003, Script::Reap, &[HB, &a, "1000", &a]);
    assert_eq!((status.as_str(), on.len(), off.len()), ("DONE", 0, 0));
    assert_eq!(st.node_keys(), Vec::<String>::new());
    // ann's online (apply), then her offline with the shutdown's reason.
    assert_eq!(
        st.feed(),
        [
            ("a/1:2:0", "+", "u1:gann", 1_001),
            ("a/1:4:0", "s", "u1:gann", 1_003)
        ]
    );
    assert_eq!(st.zscore("seen", "ann"), Some(1_003));
    let (status, _, _, _) = st.status(1_004, Script::Retire, &[HB, &a]);
    assert_eq!(status, "GONE");
    assert_eq!(
        st.node_keys(),
        Vec::<String>::new(),
        "a call that finds nobody leaves no clock"
    );
}

#[test]
fn each_transition_goes_into_the_feed_once_and_last_seen_follows_global_offline() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let room = "u8:r3:/ch1:xann";
    st.apply(1_001, &a, "0", &[("u1:gann", 2), (room, 1)]);
    st.apply(1_002, &a, "1", &[("u1:gann", -1), (room, -1)]);
    // A call sent again gets its kept reply and appends nothing.
    let again = st.call_as(
        1_003,
        Script::Apply,
        &[HB, &a, TTL, "2", "u1:gann", "-1"],
        "9",
    );
    let first = st.feed().len();
    assert_eq!(
        st.call_as(
            1_004,
            Script::Apply,
            &[HB, &a, TTL, "2", "u1:gann", "-1"],
            "9"
        ),
        again
    );
    assert_eq!(st.feed().len(), first);
    assert_eq!(
        st.feed(),
        [
            ("a/1:2:0", "+", "u1:gann", 1_001),
            ("a/1:2:1", "+", room, 1_001),
            ("a/1:3:0", "d", room, 1_002),
            ("a/1:9:0", "d", "u1:gann", 1_003),
        ]
    );
    // Offline globally: stamped. The room's leave stamps nothing.
    assert_eq!(st.zscore("seen", "ann"), Some(1_003));
    let read = |st: &mut Store, now, keep: &str| st.call(now, Script::Read, &["seen", "ann", keep]);
    assert_eq!(read(&mut st, 1_010, "60000"), Reply::Int(1_003));
    assert_eq!(read(&mut st, 1_010, "6"), Reply::Nil, "older than keep_ms");
    // Online again: no stamp; a read says nil.
    st.apply(1_020, &a, "3", &[("u1:gann", 1)]);
    assert_eq!(st.zscore("seen", "ann"), None);
    assert_eq!(read(&mut st, 1_021, "60000"), Reply::Nil);
    // Stamps older than seen_ms go with the next stamp.
    st.apply(1_030, &a, "4", &[("u1:gann", -1)]);
    let b = st.register(61_000, "b", "1");
    st.apply(61_030, &b, "0", &[("u1:gbob", 1)]);
    st.apply(61_040, &b, "1", &[("u1:gbob", -1)]);
    assert_eq!(st.zscore("seen", "ann"), None, "trimmed");
    assert_eq!(st.zscore("seen", "bob"), Some(61_040));
}

#[test]
fn the_feed_keeps_at_most_its_cap_and_a_cap_of_zero_appends_nothing() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let users: Vec<String> = (0..150).map(|i| format!("u1:gu{i:03}")).collect();
    let pairs: Vec<(&str, i64)> = users.iter().map(|u| (u.as_str(), 1)).collect();
    st.apply(1_001, &a, "0", &pairs);
    let feed = st.feed();
    assert_eq!(feed.len(), 100, "FEED_MAX");
    assert_eq!(feed[0].2, "u1:gu050", "the oldest went first");
    let none = st.call_as(
        1_002,
        Script::Apply,
        &[HB, &a, TTL, "1", "u1:gzed", "1"],
        "z",
    );
    let _ = none;
    let mut args: Vec<String> = [HB, a.as_str(), TTL, "2", "y", "0", SEEN_MS, "u1:gyan", "1"]
        .iter()
        .map(|x| s(x))
        .collect();
    let op = Op {
        token: Token(1),
        script: Script::Apply,
        keys: vec![st.schema.live()],
        args: std::mem::take(&mut args),
    };
    let r = st.ks.run(1_003, &op);
    let parsed = ScriptReply::parse(Script::Apply, &r).unwrap();
    assert_eq!(parsed.online, vec![s("u1:gyan")]);
    assert!(
        st.feed().iter().all(|e| e.2 != "u1:gyan"),
        "a cap of 0 appends nothing"
    );
}

#[test]
fn a_feed_or_last_seen_of_the_wrong_type_fails_the_call_before_anything_is_written() {
    for key in ["{t}:feed", "{t}:seen"] {
        let mut st = Store::new();
        let a = st.register(1_000, "a", "1");
        st.ks.set_string(key, "x");
        let before = st.ks.dump();
        let r = st.call(1_001, Script::Apply, &[HB, &a, TTL, "0", "u1:gann", "1"]);
        assert!(
            matches!(&r, Reply::Error { error } if error.contains("WRONGTYPE") && error.contains(key)),
            "{r:?}"
        );
        let mut after = st.ks.dump();
        // Only the lease renewal and clock moved.
        after.retain(|e| !e.key.ends_with("live") && !e.key.ends_with("clock"));
        let mut want = before;
        want.retain(|e| !e.key.ends_with("live") && !e.key.ends_with("clock"));
        assert_eq!(after, want);
    }
}

#[test]
fn reads_are_counts_and_lists() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    st.apply(
        1_001,
        &a,
        "0",
        &[("c", 2), ("sn/", 3), ("u2:n/bob", 1), ("u2:n/ann", 2)],
    );
    let read = |st: &mut Store, what: &str, arg: &str| st.call(1_002, Script::Read, &[what, arg]);
    assert_eq!(read(&mut st, "clients", ""), Reply::Int(2));
    assert_eq!(read(&mut st, "sockets", "n/"), Reply::Int(3));
    assert_eq!(read(&mut st, "users", "n/"), Reply::Int(2));
    assert_eq!(
        read(&mut st, "user", "ann"),
        Reply::Int(0),
        "ann is not in the global scope here"
    );
    assert!(matches!(read(&mut st, "nope", ""), Reply::Error { .. }));
}

/// A page of `members` as (more, [(user, sockets, since)]).
fn page(st: &mut Store, scope: &str, after: &str, limit: u32) -> (i64, Vec<(String, i64, i64)>) {
    let limit = limit.to_string();
    let Reply::Array(items) = st.call(9_000, Script::Read, &["members", scope, after, &limit])
    else {
        panic!("members is an array");
    };
    let Reply::Int(more) = items[0] else {
        panic!("a flag first: {items:?}")
    };
    let mut members = Vec::new();
    let mut rest = &items[1..];
    while let [
        Reply::Str(u),
        Reply::Int(n),
        Reply::Int(t),
        Reply::Int(d),
        tail @ ..,
    ] = rest
    {
        members.push((u.clone(), *n, *t));
        rest = &tail[*d as usize..];
    }
    assert!(rest.is_empty(), "members: {items:?}");
    (more, members)
}

/// The data of each member of a page of `scope`.
fn page_data(st: &mut Store, scope: &str) -> Vec<(String, Vec<String>)> {
    let reply = st.call(9_000, Script::Read, &["members", scope, "", "100"]);
    let Ok(rollcall_core::Answer::Members(page)) = (rollcall_core::Query::Members {
        scope: rollcall_core::Scope::decode(scope).unwrap(),
        after: None,
        limit: 100,
    })
    .parse(&reply) else {
        panic!("a member page: {reply:?}");
    };
    page.members.into_iter().map(|m| (m.user, m.data)).collect()
}

#[test]
fn socket_data_is_stored_per_user_reported_when_it_changes_and_reaped_with_its_node() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let b = st.register(1_000, "b", "1");
    let apply = |st: &mut Store, now, inc: &str, ver: &str, pairs: &[(&str, &str)], id: &str| {
        let mut args = vec![HB, inc, TTL, ver];
        for (f, v) in pairs {
            args.extend([*f, *v]);
        }
        st.parsed_as(now, Script::Apply, &args, id)
    };
    let ann = |data: &[&str]| Updated {
        user: s("ann"),
        data: data.iter().map(|d| s(d)).collect(),
    };
    let r = apply(
        &mut st,
        1_001,
        &a,
        "0",
        &[("u1:gann", "1"), ("d3:anns1", r#"{"s":"x"}"#)],
        "1",
    );
    assert_eq!(r.online, ["u1:gann"]);
    assert_eq!(r.updated, [ann(&[r#"{"s":"x"}"#])]);
    assert_eq!(st.zscore("i:a/1", "d3:anns1"), Some(1));
    // A second socket of hers on b: both, in slot order (a's first).
    let r = apply(
        &mut st,
        1_002,
        &b,
        "0",
        &[("u1:gann", "1"), ("d3:anns2", r#"{"s":"y"}"#)],
        "2",
    );
    assert_eq!(r.updated, [ann(&[r#"{"s":"x"}"#, r#"{"s":"y"}"#])]);
    // The same data again changes nothing and reports nothing.
    let r = apply(
        &mut st,
        1_003,
        &a,
        "1",
        &[("d3:anns1", r#"{"s":"x"}"#)],
        "3",
    );
    assert!(r.updated.is_empty());
    // Sent again after a lost reply: the kept reply, with her data now.
    let r = apply(
        &mut st,
        1_004,
        &b,
        "1",
        &[("d3:anns2", r#"{"s":"z"}"#)],
        "4",
    );
    assert_eq!(r.updated, [ann(&[r#"{"s":"x"}"#, r#"{"s":"z"}"#])]);
    let again = apply(
        &mut st,
        1_005,
        &b,
        "1",
        &[("d3:anns2", r#"{"s":"z"}"#)],
        "4",
    );
    assert_eq!(again, r);
    // Members carry the data of every socket of the user.
    assert_eq!(
        page_data(&mut st, "g"),
        [(s("ann"), vec![s(r#"{"s":"x"}"#), s(r#"{"s":"z"}"#)])]
    );
    // The feed has each update once, with the data as one JSON array.
    let updates: Vec<_> = st.feed().into_iter().filter(|e| e.1 == "u").collect();
    assert_eq!(
        updates.iter().map(|e| (e.0, e.2)).collect::<Vec<_>>(),
        [("a/1:1:1", "ann"), ("b/1:2:0", "ann"), ("b/1:4:0", "ann")]
    );
    let x = st.ks.stream(&st.schema.feed()).unwrap();
    let last = x.after(Default::default(), usize::MAX).last().unwrap().1;
    assert_eq!(last[4], (s("v"), s(r#"[{"s":"x"},{"s":"z"}]"#)));
    // b dies (a renews, b does not): the reaper drops its data and
    // reports what is left of hers.
    for now in (1_400..=3_400).step_by(400) {
        st.status(now, Script::Heartbeat, &[HB, &a, TTL, "2"]);
    }
    let r = st.parsed(3_500, Script::Reap, &[HB, &a, "100", ""]);
    assert_eq!(r.status.as_str(), "DONE");
    assert!(r.offline.is_empty(), "ann is still on a");
    assert_eq!(r.updated, [ann(&[r#"{"s":"x"}"#])]);
    // Her last socket's data removed: an update with no data.
    let r = apply(&mut st, 3_501, &a, "2", &[("d3:anns1", "")], "d9");
    assert_eq!(r.updated, [ann(&[])]);
    assert_eq!(st.ks.get("{t}:d:ann"), None);
    // Data and user going together: the offline says it, no update.
    apply(&mut st, 3_502, &a, "3", &[("d3:anns1", "{}")], "d10");
    let r = apply(
        &mut st,
        3_503,
        &a,
        "4",
        &[("u1:gann", "-1"), ("d3:anns1", "")],
        "d11",
    );
    assert_eq!(r.offline, ["u1:gann"]);
    assert!(r.updated.is_empty());
    assert!(rollcall_core::invariants::check(&st.ks.dump(), &st.schema).is_empty());
}

#[test]
fn members_come_in_pages_in_id_order_with_sockets_and_since() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let b = st.register(1_000, "b", "1");
    st.apply(
        1_001,
        &a,
        "0",
        &[("u2:n/bob", 1), ("u2:n/ann", 2), ("u2:n/cy", 1)],
    );
    st.apply(1_005, &b, "0", &[("u2:n/ann", 1), ("u2:n/dee", 1)]);
    // ann came at 1_001 (a's write); b's socket of hers changes nothing.
    assert_eq!(
        page(&mut st, "n/", "", 2),
        (1, vec![("ann".into(), 3, 1_001), ("bob".into(), 1, 1_001)])
    );
    assert_eq!(
        page(&mut st, "n/", "bob", 2),
        (0, vec![("cy".into(), 1, 1_001), ("dee".into(), 1, 1_005)])
    );
    assert_eq!(page(&mut st, "n/", "dee", 2), (0, vec![]));
    // A cursor that is no member (it left) still pages on from its place.
    assert_eq!(
        page(&mut st, "n/", "bz", 1),
        (1, vec![("cy".into(), 1, 1_001)])
    );
    assert_eq!(page(&mut st, "ng", "", 10), (0, vec![]), "an empty scope");

    // Leaving and coming back moves since; the member list follows the counts.
    st.apply(1_010, &a, "1", &[("u2:n/bob", -1)]);
    assert_eq!(
        page(&mut st, "n/", "ann", 1),
        (1, vec![("cy".into(), 1, 1_001)])
    );
    st.apply(1_020, &b, "1", &[("u2:n/bob", 1)]);
    assert_eq!(
        page(&mut st, "n/", "ann", 1),
        (1, vec![("bob".into(), 1, 1_020)])
    );
}

#[test]
fn a_users_scopes_follow_their_counts() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    st.apply(
        1_001,
        &a,
        "0",
        &[("u1:gann", 1), ("u2:n/ann", 1), ("u9:r1:/lobbyann", 1)],
    );
    st.apply(1_003, &a, "1", &[("u2:n/ann", 1)]);
    let scopes = |st: &mut Store| match st.call(9_000, Script::Read, &["scopes", "ann"]) {
        Reply::Array(items) => items,
        other => panic!("an array: {other:?}"),
    };
    assert_eq!(
        scopes(&mut st),
        vec![
            Reply::Str("g".into()),
            Reply::Int(1_001),
            Reply::Str("n/".into()),
            Reply::Int(1_001),
            Reply::Str("r1:/lobby".into()),
            Reply::Int(1_001),
        ]
    );
    st.apply(
        1_004,
        &a,
        "2",
        &[("u9:r1:/lobbyann", -1), ("u2:n/ann", -2), ("u1:gann", -1)],
    );
    assert_eq!(scopes(&mut st), vec![]);
    let left: Vec<String> = st.ks.dump().into_iter().map(|e| e.key).collect();
    assert!(
        !left
            .iter()
            .any(|k| k.starts_with("{t}:m:") || k.starts_with("{t}:w:")),
        "empty member lists and scopes go: {left:?}"
    );
}

#[test]
fn malformed_arguments_are_errors_not_panics() {
    let mut st = Store::new();
    for args in [
        vec![],
        vec!["x"],
        vec![HB, "a", TTL, "0", "sg"],
        vec![HB, "a", "ttl", "0"],
    ] {
        for script in Script::ALL {
            let r = st.call(1_000, script, &args);
            assert!(
                matches!(r, Reply::Error { .. } | Reply::Array(_) | Reply::Int(_)),
                "{script:?} {args:?}: {r:?}"
            );
        }
    }
    let mut bad_key = Keyspace::new();
    let op = Op {
        token: Token(1),
        script: Script::Apply,
        keys: vec![s("nope")],
        args: vec![],
    };
    assert!(matches!(bad_key.run(0, &op), Reply::Error { .. }));
    // Dumps are canonical: sorted keys.
    let dump = st.ks.dump();
    let keys: Vec<&String> = dump.iter().map(|e| &e.key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(
        dump.iter()
            .all(|e| !matches!(e.value, DumpValue::Zset(ref z) if z.is_empty()))
    );
}

#[test]
fn a_counter_of_the_wrong_type_fails_the_call_before_anything_is_written() {
    let mut st = Store::new();
    let a1 = st.register(1_000, "a", "1");
    st.apply(1_001, &a1, "0", &[("s", 1), ("u1:gann", 1)]);
    let before = st.ks.dump();
    // The user hash of namespace "/x" holds a string (scope id "n/x").
    st.ks.set_string("{t}:u:n/x", "oops");
    let mut after_corruption = st.ks.dump();
    // An apply that moves a field of the global scope first, then one of "/x".
    let reply = st.call(
        1_002,
        Script::Apply,
        &[
            HB,
            &a1,
            TTL,
            "1",
            "s",
            "1",
            "u1:gbob",
            "1",
            "u3:n/xbob",
            "1",
        ],
    );
    assert!(
        matches!(&reply, Reply::Error { error } if error.starts_with("WRONGTYPE")),
        "{reply:?}"
    );
    // Only the lease and the clock moved: no share, no counter, no version.
    let strip = |d: &mut Vec<rollcall_core::model::DumpEntry>| {
        d.retain(|e| !e.key.ends_with("live") && !e.key.ends_with("clock"))
    };
    let mut now = st.ks.dump();
    strip(&mut now);
    strip(&mut after_corruption);
    assert_eq!(now, after_corruption);
    // A re-assert that would move it is refused the same way.
    let reassert = st.call(
        1_003,
        Script::Reassert,
        &[HB, &a1, TTL, "2", "u3:n/xbob", "1"],
    );
    assert!(matches!(reassert, Reply::Error { .. }), "{reassert:?}");
    let mut now = st.ks.dump();
    strip(&mut now);
    assert_eq!(now, after_corruption);
    assert!(before.len() + 1 == st.ks.dump().len());
}

#[test]
fn a_call_sent_again_gets_its_kept_reply_and_runs_once() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let args = [HB, a.as_str(), TTL, "0", "sg", "1", "u1:gann", "1"];
    let first = st.call_as(1_001, Script::Apply, &args, "w7");
    let after_first = st.ks.dump();
    // Its reply was lost: the same call again (same id, same version).
    let again = st.call_as(1_050, Script::Apply, &args, "w7");
    assert_eq!(again, first, "the kept reply, transitions included");
    assert_eq!(st.hget("u:g", "ann"), Some(1), "applied once");
    assert_eq!(st.hget("ver", &a), Some(1));
    // Only the lease moved (renewed at 1_050).
    assert_eq!(st.zscore("live", &a), Some(3_050));
    let dump_now: Vec<_> = st
        .ks
        .dump()
        .into_iter()
        .filter(|e| !e.key.ends_with("live") && !e.key.ends_with("clock"))
        .collect();
    let dump_then: Vec<_> = after_first
        .into_iter()
        .filter(|e| !e.key.ends_with("live") && !e.key.ends_with("clock"))
        .collect();
    assert_eq!(dump_now, dump_then);
    // A new call with the stale version is drift, as before.
    let (status, _, _, _) = st.status(1_060, Script::Apply, &args);
    assert_eq!(status, "DRIFT");
    // The next call replaces the kept reply: the old id now runs afresh
    // (and drifts: its version is stale).
    let (status, _, on, _) =
        st.status(1_070, Script::Reassert, &[HB, &a, TTL, "2", "u1:gann", "1"]);
    assert_eq!((status.as_str(), on.len()), ("OK", 0));
    let Reply::Array(items) = st.call_as(1_080, Script::Apply, &args, "w7") else {
        panic!()
    };
    assert_eq!(items[0].as_str(), Some("DRIFT"));
}

#[test]
fn a_reap_slice_sent_again_gets_its_kept_reply_and_kept_replies_go_with_their_incarnation() {
    let mut st = Store::new();
    let dead = st.register(1_000, "d", "1");
    st.apply(
        1_001,
        &dead,
        "0",
        &[("u1:gann", 1), ("u1:gbob", 1), ("u1:gcat", 1)],
    );
    let r = st.register(1_002, "r", "1");
    // r's heartbeats keep the clock going (no stall shift); d's lapse.
    for now in (1_400..=3_800).step_by(400) {
        let (status, _, _, _) = st.status(now, Script::Heartbeat, &[HB, &r, TTL, "0"]);
        assert_eq!(status, "OK");
    }
    // d's lease lapsed at 3_001: r reaps it, two fields a slice.
    let slice = [HB, r.as_str(), "2", ""];
    let first = st.call_as(4_001, Script::Reap, &slice, "r9");
    let (on, off) = match &first {
        Reply::Array(items) => (items[2].as_int().unwrap(), items.len() - 3),
        other => panic!("{other:?}"),
    };
    assert_eq!((items_status(&first), on, off), ("SLICE", 0, 2));
    assert_eq!(st.call_as(4_002, Script::Reap, &slice, "r9"), first, "kept");
    assert!(
        st.zscore("i:d/1", "u1:gcat").is_some(),
        "the slice ran once"
    );
    let last = st.call_as(4_003, Script::Reap, &slice, "r10");
    assert_eq!(items_status(&last), "DONE");
    assert_eq!(st.call_as(4_004, Script::Reap, &slice, "r10"), last);
    // r retires and reaps itself: nothing of it is left, kept replies included.
    let (status, _, _, _) = st.status(4_005, Script::Retire, &[HB, &r]);
    assert_eq!(status, "OK");
    let (status, _, _, _) = st.status(4_006, Script::Reap, &[HB, &r, "10", &r]);
    assert_eq!(status, "DONE");
    assert_eq!(st.node_keys(), Vec::<String>::new());
    // Each transition is in the feed once: the reap sent again appended
    // nothing.
    let ids: Vec<&str> = st
        .feed()
        .iter()
        .map(|e| e.0)
        .collect::<Vec<_>>()
        .leak()
        .to_vec();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique);
}

fn items_status(reply: &Reply) -> &str {
    match reply {
        Reply::Array(items) => items[0].as_str().unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reassert_does_not_walk_a_share_larger_than_max_write_fields() {
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let (status, _, _) = st.apply(
        1_001,
        &a,
        "0",
        &[("u1:gann", 1), ("u1:gbob", 1), ("u1:gcat", 1), ("sg", 3)],
    );
    assert_eq!(status, "OK");
    let before = st.ks.dump();
    // Four fields in Redis, at most three a call: ROTATE, nothing written.
    let (status, _, on, off) = st.status(
        1_002,
        Script::Reassert,
        &[HB, &a, TTL, "5", "max=3", "sg", "1"],
    );
    assert_eq!((status.as_str(), on.len(), off.len()), ("ROTATE", 0, 0));
    let without_times = |d: Vec<rollcall_core::model::DumpEntry>| -> Vec<_> {
        d.into_iter()
            .filter(|e| {
                !e.key.ends_with("live") && !e.key.ends_with("clock") && !e.key.contains(":o:")
            })
            .collect()
    };
    assert_eq!(without_times(st.ks.dump()), without_times(before));
    // Four at most: walked.
    let (status, _, _, off) = st.status(
        1_003,
        Script::Reassert,
        &[HB, &a, TTL, "5", "max=4", "sg", "1"],
    );
    assert_eq!((status.as_str(), off.len()), ("OK", 3));
}

#[test]
fn a_clock_that_goes_back_moves_the_leases_back_and_reaping_goes_on() {
    let mut st = Store::new();
    // An hour in: a and b register, b then dies.
    let hour = 3_600_000;
    let a = st.register(hour, "a", "1");
    let b = st.register(hour, "b", "1");
    st.apply(hour + 1, &b, "0", &[("u1:gbob", 1)]);
    // Redis fails over onto a host whose clock is an hour behind.
    let mut now = 1_000;
    let (status, _, _, _) = st.status(now, Script::Heartbeat, &[HB, &a, TTL, "0"]);
    assert_eq!(status, "OK");
    assert_eq!(
        st.zscore("live", &a),
        Some(now as i64 + 2_000),
        "renewed on the new clock"
    );
    let lease_b = st.zscore("live", &b).unwrap();
    assert!(
        (2_000..=3_001).contains(&lease_b),
        "b keeps what it had left ({lease_b})"
    );
    // a lives on; b is reaped once its lease has passed on the new clock.
    let mut reaped = None;
    while now < 6_000 {
        now += 400;
        st.status(now, Script::Heartbeat, &[HB, &a, TTL, "0"]);
        let (status, _, _, off) = st.status(now, Script::Reap, &[HB, &a, "10", ""]);
        if status == "DONE" {
            assert_eq!(off, vec![s("u1:gbob")]);
            reaped = Some(now);
            break;
        }
    }
    let at = reaped.expect("b was never reaped: reaping waits for the old clock");
    assert!(at <= 1_000 + 2_000 + 800, "reaped at {at}");
    assert_eq!(st.zscore("live", &a), Some(at as i64 + 2_000));
}

/// Issue 11: the reap that finishes a dead incarnation reports the
/// transitions of its kept replies (its lanes' last calls, which it may
/// never have handled) with their change ids, unless they no longer hold.
#[test]
fn the_reap_that_finishes_a_dead_incarnation_adopts_its_last_calls() {
    use rollcall_core::OfflineReason;
    use rollcall_core::protocol::{Adopted, Mark};
    let mut st = Store::new();
    let d = st.register(1_000, "d", "1");
    let b = st.register(1_000, "b", "1");
    let apply = |st: &mut Store, now, inc: &str, ver: &str, id: &str, pairs: &[(&str, i64)]| {
        let mut args = vec![s(HB), s(inc), s(TTL), s(ver)];
        for (f, d) in pairs {
            args.extend([s(f), d.to_string()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = st.call_as(now, Script::Apply, &refs, id);
        ScriptReply::parse(Script::Apply, &r).unwrap()
    };
    apply(&mut st, 1_001, &d, "0", "w1", &[("u1:gann", 1)]);
    // d's last write: bob and dan come online, ann goes offline.
    let last = apply(
        &mut st,
        1_002,
        &d,
        "1",
        "w2",
        &[("u1:gbob", 1), ("u1:gdan", 1), ("u1:gann", -1)],
    );
    assert_eq!((last.online.len(), last.offline.len()), (2, 1), "{last:?}");
    // Meanwhile on b: ann comes back (so ann's offline no longer holds),
    // and dan has a socket there too.
    let on_b = apply(
        &mut st,
        1_003,
        &b,
        "0",
        "b1",
        &[("u1:gann", 1), ("u1:gdan", 1)],
    );
    assert_eq!(on_b.online, vec![s("u1:gann")]);
    for now in (1_400..=3_800).step_by(400) {
        let (status, _, _, _) = st.status(now, Script::Heartbeat, &[HB, &b, TTL, "1"]);
        assert_eq!(status, "OK");
    }
    // d's lease lapsed: b reaps it in one call.
    let slice = [HB, b.as_str(), "1000", ""];
    let wire = st.call_as(4_001, Script::Reap, &slice, "r1");
    let done = ScriptReply::parse(Script::Reap, &wire).unwrap();
    assert_eq!(done.status.as_str(), "DONE");
    assert_eq!(done.offline, vec![s("u1:gbob")], "the reap's own");
    // bob: online then (the reap's own) offline; dan: still online; ann's
    // offline is dropped (ann is online on b). Change ids are d's.
    assert_eq!(
        done.adopted,
        vec![
            Adopted {
                change_id: s("d/1:w2:0"),
                mark: Mark::Online,
                field: s("u1:gbob"),
            },
            Adopted {
                change_id: s("d/1:w2:1"),
                mark: Mark::Online,
                field: s("u1:gdan"),
            },
        ]
    );
    let changes = done.changes("b/1:r1");
    let ids: Vec<&str> = changes.iter().map(|c| c.change_id.as_str()).collect();
    assert_eq!(ids, ["d/1:w2:0", "d/1:w2:1", "b/1:r1:0"]);
    // The reap's reply is kept with what it adopted: a retry gets it all.
    assert_eq!(st.call_as(4_002, Script::Reap, &slice, "r1"), wire);
    assert!(
        st.ks.get("{t}:o:w:d/1").is_none(),
        "d's kept replies are gone"
    );

    // b now dies with that reap's reply unhandled: whoever finishes b adopts
    // it, the adopted transitions with d's change ids (those that hold).
    let c = st.register(4_100, "c", "1");
    for now in (4_500..=7_300).step_by(400) {
        let (status, _, _, _) = st.status(now, Script::Heartbeat, &[HB, &c, TTL, "0"]);
        assert_eq!(status, "OK");
    }
    let wire = st.call_as(7_400, Script::Reap, &[HB, c.as_str(), "1000", ""], "r1");
    let done = ScriptReply::parse(Script::Reap, &wire).unwrap();
    assert_eq!(
        (done.status.as_str(), done.detail.as_str()),
        ("DONE", "b/1")
    );
    let adopted: Vec<(&str, Mark, &str)> = done
        .adopted
        .iter()
        .map(|a| (a.change_id.as_str(), a.mark, a.field.as_str()))
        .collect();
    // b's write lane's last call was a heartbeat (nothing to adopt); its
    // reap lane's was r1 (adopting bob and dan online, then bob offline).
    // Now everyone is offline: of the onlines only dan's stays (c's reap
    // took dan offline itself), and b's reap's offline of bob (reaped).
    assert_eq!(
        adopted,
        vec![
            ("d/1:w2:1", Mark::Online, "u1:gdan"),
            ("b/1:r1:0", Mark::Offline(OfflineReason::Reaped), "u1:gbob"),
        ]
    );
    let mut own = done.offline.clone();
    own.sort();
    assert_eq!(own, vec![s("u1:gann"), s("u1:gdan")]);
}

/// The property test's case: a node shutting down loses the reply to its
/// last slice, and another node finishes its reap before the retry. The
/// finishing reap reports the slice's offline with reason shutdown; the
/// retry finds nothing (IDLE) and reports nothing.
#[test]
fn a_self_reap_finished_by_another_node_hands_over_its_last_slice() {
    use rollcall_core::OfflineReason;
    use rollcall_core::protocol::Mark;
    let mut st = Store::new();
    let a = st.register(1_000, "a", "1");
    let b = st.register(1_000, "b", "1");
    st.apply(1_001, &a, "0", &[("u1:gann", 1), ("u1:gbob", 1)]);
    let (status, _, _, _) = st.status(1_002, Script::Retire, &[HB, &a]);
    assert_eq!(status, "OK");
    let own = [HB, a.as_str(), "1", a.as_str()];
    let lost = st.parsed_as(1_003, Script::Reap, &own, "s1");
    assert_eq!((lost.status.as_str(), lost.offline.len()), ("SLICE", 1));
    let dropped = lost.offline[0].clone();
    // b's reap lane finishes a: its last field, and DONE.
    let slice = [HB, b.as_str(), "1", ""];
    let done = st.parsed_as(1_005, Script::Reap, &slice, "r2");
    assert_eq!(done.status.as_str(), "DONE");
    assert_eq!(done.adopted.len(), 1, "{done:?}");
    assert_eq!(done.adopted[0].change_id, format!("{a}:s1:0"));
    assert_eq!(done.adopted[0].mark, Mark::Offline(OfflineReason::Shutdown));
    assert_eq!(done.adopted[0].field, dropped);
    // a's retry: IDLE, nothing to report twice.
    let again = st.parsed_as(1_006, Script::Reap, &own, "s1");
    assert_eq!(again.status.as_str(), "IDLE");
    assert!(again.online.is_empty() && again.offline.is_empty() && again.adopted.is_empty());
}

/// An incarnation reaped meanwhile reaps nothing on its write lane: its
/// reaper adopted the transitions of its last call, so that call must not
/// run again under the same call id (one change id, two transitions).
#[test]
fn an_incarnation_reaped_meanwhile_does_not_reap_its_old_one() {
    let mut st = Store::new();
    let old = st.register(1_000, "a", "1");
    st.apply(1_001, &old, "0", &[("u1:gann", 1)]);
    // A rotation: a/2 keeps a/1, then retires it.
    let (status, k, _, _) = st.status(1_002, Script::Register, &[HB, "a", TTL, "2", "1", "1"]);
    assert_eq!((status.as_str(), k.as_str()), ("OK", "2"));
    let cur = s("a/2");
    let (status, _, _, _) = st.status(1_003, Script::Retire, &[HB, &old]);
    assert_eq!(status, "OK");
    // a/2 is reaped by another node (say it was paused), a/1 still dead.
    st.ks.run(
        1_004,
        &Op {
            token: Token(1),
            script: Script::Retire,
            keys: vec![st.schema.live()],
            args: vec![s(HB), cur.clone()],
        },
    );
    let (status, _, _, _) = st.status(1_005, Script::Reap, &[HB, &cur, "10", &cur]);
    assert_eq!(status, "DONE");
    let but_clock = |st: &Store| {
        let mut d = st.ks.dump();
        d.retain(|e| e.key != st.schema.clock());
        d
    };
    let before = but_clock(&st);
    let r = st.parsed(1_006, Script::Reap, &[HB, &cur, "10", &old]);
    assert_eq!(r.status.as_str(), "IDLE");
    assert!(r.offline.is_empty());
    assert_eq!(but_clock(&st), before, "nothing reaped, nothing kept");
}
