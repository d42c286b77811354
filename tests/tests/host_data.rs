//! Per-socket data through rollcall-host, on a real redis-server (and the
//! in-memory store): data set on one node is in the other's member pages;
//! the node whose call changed a user's data reports `UserUpdated` once,
//! with the data of the user's sockets on every node; every watcher sees
//! the update with the data; a socket with data that leaves takes its data
//! with it; data that is no object or too long is refused and changes
//! nothing; identify moves the data; a crashed node's data goes with the
//! reap while its user stays online elsewhere.

use std::time::Duration;

use rollcall_host::{
    Change, ChangeKind, DataExt, Error, Event, InputError, MemoryStore, Presence, Scope, Watch,
};
use rollcall_tests::{RedisServer, eventually_async, unique_prefix};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

const TTL: u64 = 1000;
const DEADLINE: Duration = Duration::from_secs(20);

fn builder(prefix: &str, name: &str) -> rollcall_host::Builder {
    Presence::builder()
        .prefix(prefix)
        .node_id(name)
        .ttl(Duration::from_millis(TTL))
        .heartbeat(Duration::from_millis(250))
        .reap_interval(Duration::from_millis(250))
        .retry(Duration::from_millis(100))
        .op_timeout(Duration::from_millis(800))
}

/// A node's events, all of them kept in `log` as they are read.
struct Events {
    rx: broadcast::Receiver<Event>,
    log: Vec<Event>,
    name: &'static str,
}

impl Events {
    fn of(p: &Presence, name: &'static str) -> Events {
        Events {
            rx: p.subscribe(),
            log: Vec::new(),
            name,
        }
    }

    /// Reads until an event `want` accepts (generous deadline) and returns it.
    async fn until(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Ok(e)) => e,
                Ok(Err(e)) => panic!("{}: {what}: events: {e}", self.name),
                Err(_) => panic!(
                    "{}: {what}: not within {DEADLINE:?}; got {:#?}",
                    self.name, self.log
                ),
            };
            self.log.push(e.clone());
            if want(&e) {
                return e;
            }
        }
    }

    /// The next `UserUpdated` of `user`, as its data.
    async fn updated(&mut self, what: &str, user: &str) -> Vec<Value> {
        let e = self
            .until(
                what,
                |e| matches!(e, Event::UserUpdated { user: u, .. } if u == user),
            )
            .await;
        e.data_values().expect("an update's data parses")
    }

    /// Every event the node emitted so far: it connects a socket of a user
    /// of its own (`marker`) and reads until that user's online event,
    /// which the node emits after those of every earlier input.
    async fn drain(&mut self, p: &Presence, marker: &str) {
        p.connect(marker, Some(marker), "/").await.unwrap();
        self.until(
            "the marker's online",
            |e| matches!(e, Event::UserOnline { user, scope: Scope::Global, .. } if user == marker),
        )
        .await;
        p.disconnect(marker).await.unwrap();
    }

    /// The data of every `UserUpdated` of `user` in the log, in order.
    fn updates_of(&self, user: &str) -> Vec<Vec<Value>> {
        self.log
            .iter()
            .filter(|e| matches!(e, Event::UserUpdated { user: u, .. } if u == user))
            .map(|e| e.data_values().unwrap())
            .collect()
    }
}

/// Data as a sorted list of its JSON texts (the order is the core's own).
fn sorted<'a>(data: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut v: Vec<String> = data.into_iter().map(Value::to_string).collect();
    v.sort();
    v
}

/// The member `user` of the global scope as `p` reads it: (sockets, data).
async fn member(p: &Presence, user: &str) -> Option<(u64, Vec<String>)> {
    let page = p.members(Scope::Global, 1000, None).await.unwrap();
    page.members
        .into_iter()
        .find(|m| m.user == user)
        .map(|m| (m.sockets, sorted(&m.data_values().unwrap())))
}

/// Waits until `p`'s page shows `user` as `want` (`None`: not a member).
async fn shows(p: &Presence, user: &str, want: Option<(u64, Vec<Value>)>) {
    let want = want.map(|(n, d)| (n, sorted(&d)));
    eventually_async(
        &format!("{}'s members show {user} as {want:?}", p.node_id()),
        DEADLINE,
        || member(p, user),
        |seen| *seen == want,
    )
    .await;
}

/// Changes of `w` until one `want` accepts (generous deadline).
async fn change(w: &mut Watch, what: &str, want: impl Fn(&Change) -> bool) -> Change {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, w.next()).await {
            Ok(Some(Ok(c))) if want(&c) => return c,
            Ok(Some(Ok(c))) => got.push(c),
            Ok(Some(Err(e))) => eprintln!("watch: {e}"),
            Ok(None) => panic!("{what}: the watch ended"),
            Err(_) => panic!("{what}: not within {DEADLINE:?}; got {got:#?}"),
        }
    }
}

/// The next updated change of `user` in `w`, as its data.
async fn updated_change(w: &mut Watch, what: &str, user: &str) -> Vec<Value> {
    let c = change(w, what, |c| c.kind == ChangeKind::Updated && c.user == user).await;
    assert_eq!(c.scope, Scope::Global, "{c:?}");
    assert!(c.data.is_some(), "an update carries data: {c:?}");
    c.data_values().expect("an updated change's data parses")
}

fn bad_data(r: Result<(), Error>) -> (bool, String) {
    match r {
        Err(Error::BadInput(e @ InputError::BadData { too_long, .. })) => (too_long, e.to_string()),
        other => panic!("expected a refusal of the data, got {other:?}"),
    }
}

async fn data_across_two_nodes(a: Presence, b: Presence) {
    let mut ea = Events::of(&a, "a");
    let mut eb = Events::of(&b, "b");
    let mut wb = b.watch(None).await.unwrap();
    let laptop = json!({"device": "laptop", "status": "here"});
    let phone = json!({"device": "phone"});

    a.connect("a1", Some("ann"), "/").await.unwrap();
    b.connect("b1", Some("ann"), "/").await.unwrap();
    // ann is on both nodes; the first data is b1's.
    b.set_data("b1", Some(&phone)).await.unwrap();
    assert_eq!(
        eb.updated("b's update of ann", "ann").await,
        vec![phone.clone()]
    );
    assert_eq!(
        updated_change(&mut wb, "b's update in b's feed", "ann").await,
        vec![phone.clone()]
    );
    shows(&a, "ann", Some((2, vec![phone.clone()]))).await;

    // a's call reports the data of both nodes' sockets.
    a.set_data("a1", Some(&laptop)).await.unwrap();
    let both = vec![laptop.clone(), phone.clone()];
    assert_eq!(
        sorted(&ea.updated("a's update of ann", "ann").await),
        sorted(&both)
    );
    assert_eq!(
        sorted(&updated_change(&mut wb, "a's update in b's feed", "ann").await),
        sorted(&both)
    );
    // Set on a, shown on b (and the other way round).
    shows(&b, "ann", Some((2, both.clone()))).await;
    shows(&a, "ann", Some((2, both.clone()))).await;

    // A socket with data leaves while ann stays: the rest of her data.
    b.disconnect("b1").await.unwrap();
    assert_eq!(
        eb.updated("b's socket leaves", "ann").await,
        vec![laptop.clone()]
    );
    assert_eq!(
        updated_change(&mut wb, "the leave in b's feed", "ann").await,
        vec![laptop.clone()]
    );
    shows(&a, "ann", Some((1, vec![laptop.clone()]))).await;

    // Refusals: clear errors, nothing changed.
    let (too_long, message) = bad_data(
        a.set_data("a1", Some(&json!({"x": "y".repeat(2000)})))
            .await,
    );
    assert!(too_long, "{message}");
    assert!(message.contains("max_data_bytes"), "{message}");
    assert!(message.contains("a1"), "{message}");
    for not_an_object in [json!([1, 2]), json!("away"), json!(7), Value::Null] {
        let (too_long, message) = bad_data(a.set_data("a1", Some(&not_an_object)).await);
        assert!(!too_long, "{message}");
        assert!(message.contains("not a JSON object"), "{message}");
    }
    match a.set_data("nope", Some(&phone)).await {
        Err(Error::BadInput(InputError::UnknownSocket { sid })) => assert_eq!(sid, "nope"),
        other => panic!("an unknown socket: {other:?}"),
    }
    shows(&a, "ann", Some((1, vec![laptop.clone()]))).await;
    shows(&b, "ann", Some((1, vec![laptop.clone()]))).await;

    // Removing the data: an update with none left.
    a.set_data("a1", None).await.unwrap();
    assert_eq!(
        ea.updated("a's data removed", "ann").await,
        Vec::<Value>::new()
    );
    shows(&b, "ann", Some((1, vec![]))).await;

    // Identify moves the data: an anonymous socket's data shows once it
    // has a user, and goes with it to the next.
    a.set_data("a1", Some(&laptop)).await.unwrap();
    assert_eq!(
        ea.updated("laptop again", "ann").await,
        vec![laptop.clone()]
    );
    b.connect("b2", None, "/").await.unwrap();
    let tablet = json!({"device": "tablet"});
    b.set_data("b2", Some(&tablet)).await.unwrap();
    b.identify("b2", Some("ann")).await.unwrap();
    assert_eq!(
        sorted(&eb.updated("the tablet is ann's", "ann").await),
        sorted([&laptop, &tablet])
    );
    shows(&a, "ann", Some((2, vec![laptop.clone(), tablet.clone()]))).await;
    b.identify("b2", Some("bob")).await.unwrap();
    assert_eq!(
        eb.updated("the tablet leaves ann", "ann").await,
        vec![laptop.clone()]
    );
    shows(&a, "ann", Some((1, vec![laptop.clone()]))).await;
    shows(&a, "bob", Some((1, vec![tablet.clone()]))).await;

    // Every update came once, from the node whose call made it: a's were
    // a's only, b's were b's only.
    ea.drain(&a, "marker-a").await;
    eb.drain(&b, "marker-b").await;
    assert_eq!(
        ea.updates_of("ann").iter().map(sorted).collect::<Vec<_>>(),
        [sorted(&both), vec![], sorted([&laptop])],
        "a's updates of ann: {:#?}",
        ea.log
    );
    let b_updates: Vec<_> = eb.updates_of("ann").iter().map(sorted).collect();
    assert_eq!(
        b_updates,
        [
            sorted([&phone]),
            sorted([&laptop]),
            sorted([&laptop, &tablet]),
            sorted([&laptop]),
        ],
        "b's updates of ann: {:#?}",
        eb.log
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Nodes a and b of `prefix` on `redis`.
async fn two_on_redis(redis: &RedisServer, prefix: &str) -> (Presence, Presence) {
    let start = |name| builder(prefix, name).redis(redis.url()).start();
    (start("a").await.unwrap(), start("b").await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_is_shown_and_reported_across_two_nodes_on_redis() {
    let redis = RedisServer::start();
    let prefix = unique_prefix("data");
    let (a, b) = two_on_redis(&redis, &prefix).await;
    data_across_two_nodes(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_is_shown_and_reported_across_two_nodes_in_memory() {
    let store = MemoryStore::new();
    let a = builder("m", "a")
        .store(store.clone())
        .start()
        .await
        .unwrap();
    let b = builder("m", "b")
        .store(store.clone())
        .start()
        .await
        .unwrap();
    data_across_two_nodes(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_nodes_data_goes_with_the_reap() {
    let redis = RedisServer::start();
    let prefix = unique_prefix("datareap");
    let (a, b) = two_on_redis(&redis, &prefix).await;
    let mut ea = Events::of(&a, "a");
    let mut wa = a.watch(None).await.unwrap();
    let here = json!({"on": "a"});
    let there = json!({"on": "b"});
    a.connect("a1", Some("ann"), "/").await.unwrap();
    a.set_data("a1", Some(&here)).await.unwrap();
    // Its data holds b's too if b's call ran first.
    ea.updated("a's update", "ann").await;
    b.connect("b1", Some("ann"), "/").await.unwrap();
    b.set_data("b1", Some(&there)).await.unwrap();
    shows(&a, "ann", Some((2, vec![here.clone(), there.clone()]))).await;
    // Read a's feed up to the update that holds both.
    let both = sorted([&here, &there]);
    change(&mut wa, "the update of both", |c| {
        c.kind == ChangeKind::Updated && sorted(&c.data_values().unwrap()) == both
    })
    .await;

    // b dies without a shutdown; a reaps it: ann stays online with a's data.
    b.kill();
    assert_eq!(
        ea.updated("the reap's update", "ann").await,
        vec![here.clone()]
    );
    let b_reaped = |e: &Event| matches!(e, Event::NodeReaped { node, .. } if node == "b");
    if !ea.log.iter().any(b_reaped) {
        ea.until("b reaped", b_reaped).await;
    }
    assert_eq!(ea.updates_of("ann").len(), 2, "{:#?}", ea.log);
    assert!(
        !ea.log.iter().any(|e| matches!(
            e,
            Event::UserOffline { user, scope: Scope::Global, .. } if user == "ann"
        )),
        "ann stays online: {:#?}",
        ea.log
    );
    assert_eq!(
        updated_change(&mut wa, "the reap's update", "ann").await,
        vec![here.clone()]
    );
    shows(&a, "ann", Some((1, vec![here.clone()]))).await;
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_data_bytes_is_an_option() {
    match builder("m", "a").max_data_bytes(1).start().await {
        Err(Error::Config(e)) => assert!(e.to_string().contains("max_data_bytes"), "{e}"),
        other => panic!("max_data_bytes 1: {other:?}"),
    }
    let p = builder("m", "a")
        .max_data_bytes(16)
        .store(MemoryStore::new())
        .start()
        .await
        .unwrap();
    assert_eq!(p.config().max_data_bytes, 16);
    p.connect("s1", Some("ann"), "/").await.unwrap();
    let sixteen = json!({"s": "abcdefgh"});
    assert_eq!(sixteen.to_string().len(), 16);
    p.set_data("s1", Some(&sixteen)).await.unwrap();
    let (too_long, message) = bad_data(p.set_data("s1", Some(&json!({"s": "abcdefghi"}))).await);
    assert!(too_long, "{message}");
    assert!(message.contains("17 bytes"), "{message}");
    assert!(message.contains("max_data_bytes (16)"), "{message}");
    shows(&p, "ann", Some((1, vec![sixteen]))).await;
    p.shutdown().await.unwrap();
}
