//! Differential test: the core's in-memory model against real Redis.
//!
//! A seeded random workload drives a small cluster of trackers (connects,
//! disconnects, rooms, clients, a zombie paused past its lease and fenced,
//! a crash reaped in slices, a restart under the same id). Every script call
//! runs in lockstep on a real redis-server and on the model: the model gets
//! the Redis time the script itself used (read back from `{p}:clock` in the
//! same MULTI, else `TIME` just before the call), every reply must be equal,
//! and the two keyspaces are dumped and compared, excluding only what
//! holds times (the value of `{p}:clock`, the scores of `{p}:live`).
//!
//! Rerun a failure with `ROLLCALL_SEED=<seed>`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionManager;
use rollcall_core::model::{DumpEntry, DumpValue};
use rollcall_core::{
    Config, Event, Input, KeyKind, Keyspace, Millis, Op, Reply, Schema, Tracker, invariants,
};
use rollcall_host::{RedisStore, dump, reply::to_reply};
use rollcall_tests::{RedisServer, Rng};
use tokio::time::Instant;

/// Runs each call on Redis and on the model, and checks the replies agree.
struct Lockstep {
    conn: ConnectionManager,
    model: Keyspace,
    schema: Schema,
    seed: u64,
    /// `script:status` -> how often it was seen.
    stats: BTreeMap<String, usize>,
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => panic!("unexpected {other:?}"),
    }
}

impl Lockstep {
    async fn run(&mut self, op: &Op) -> Reply {
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        pipe.cmd("TIME");
        pipe.cmd("EVALSHA")
            .arg(op.script.sha1())
            .arg(op.keys.len())
            .arg(&op.keys)
            .arg(&op.args);
        pipe.cmd("GET").arg(self.schema.clock());
        let values: Vec<Value> = pipe
            .query_async(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("seed {}: Redis call failed: {e}", self.seed));
        let [time, result, clock] = <[Value; 3]>::try_from(values).expect("three replies");
        let time_ms = match time {
            Value::Array(parts) => {
                text(&parts[0]).parse::<Millis>().unwrap() * 1000
                    + text(&parts[1]).parse::<Millis>().unwrap() / 1000
            }
            other => panic!("TIME replied {other:?}"),
        };
        let now = match clock {
            Value::Nil => time_ms,
            v => text(&v).parse().unwrap(),
        };
        let real = to_reply(result);
        let model = self.model.run(now, op);
        assert_eq!(
            real, model,
            "seed {}: Redis and the model disagree on {op:?}",
            self.seed
        );
        if let Reply::Array(items) = &real
            && let Some(Reply::Str(status)) = items.first()
        {
            *self
                .stats
                .entry(format!("{}:{status}", op.script.name()))
                .or_default() += 1;
        }
        real
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Paused { until: Millis },
    Crashed,
}

struct Node {
    tracker: Tracker,
    state: State,
    /// Replies that reached the node while it was paused.
    inbox: Vec<Input>,
    sockets: Vec<String>,
    clients: Vec<String>,
}

struct Sim {
    config: Config,
    nodes: Vec<Node>,
    queue: VecDeque<(usize, Op)>,
    start: Instant,
    rng: Rng,
    serial: u64,
    events: Vec<Event>,
}

const USERS: [&str; 6] = ["ann", "bob", "cy", "dee", "eve", "fay"];
const NAMESPACES: [&str; 2] = ["/", "/chat"];
const ROOMS: [&str; 3] = ["lobby", "news", "r:1{x}"];

impl Sim {
    fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    fn add_node(&mut self, name: &str) -> usize {
        let tracker = Tracker::new(self.config.clone(), name).unwrap();
        self.nodes.push(Node {
            tracker,
            state: State::Running,
            inbox: Vec::new(),
            sockets: Vec::new(),
            clients: Vec::new(),
        });
        let i = self.nodes.len() - 1;
        self.input(i, Input::Tick);
        i
    }

    /// Feeds a running node; refused socket inputs are fine (random ones).
    fn input(&mut self, i: usize, input: Input) {
        let now = self.now();
        let is_reply = matches!(input, Input::Reply { .. });
        match self.nodes[i].tracker.handle(now, input) {
            Ok(step) => {
                self.queue.extend(step.ops.into_iter().map(|op| (i, op)));
                self.events.extend(step.events);
            }
            Err(e) => assert!(!is_reply, "a reply was refused: {e}"),
        }
    }

    fn random_input(&mut self) {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].state == State::Running)
            .collect();
        if running.is_empty() {
            return;
        }
        let i = *self.rng.pick(&running);
        let n = &self.nodes[i];
        let pick_sock = |rng: &mut Rng, n: &Node| {
            (!n.sockets.is_empty())
                .then(|| n.sockets[rng.below(n.sockets.len() as u64) as usize].clone())
        };
        let input = match self.rng.below(12) {
            0..=3 => {
                self.serial += 1;
                let sid = format!("s{}", self.serial);
                self.nodes[i].sockets.push(sid.clone());
                Input::Connect {
                    sid,
                    user: (!self.rng.chance(20)).then(|| self.rng.pick(&USERS).to_string()),
                    namespace: self.rng.pick(&NAMESPACES).to_string(),
                }
            }
            4..=5 => match pick_sock(&mut self.rng, n) {
                Some(sid) => {
                    self.nodes[i].sockets.retain(|s| *s != sid);
                    Input::Disconnect { sid }
                }
                None => return,
            },
            6 => match pick_sock(&mut self.rng, n) {
                Some(sid) => Input::Leave {
                    sid,
                    room: self.rng.pick(&ROOMS).to_string(),
                },
                None => return,
            },
            7 => match pick_sock(&mut self.rng, n) {
                Some(sid) => Input::Join {
                    sid,
                    room: self.rng.pick(&ROOMS).to_string(),
                },
                None => return,
            },
            8 => {
                self.serial += 1;
                let cid = format!("c{}", self.serial);
                self.nodes[i].clients.push(cid.clone());
                Input::ClientOpen { cid }
            }
            // Data with odd text (quotes, braces, non-ASCII), or none.
            9 => match pick_sock(&mut self.rng, n) {
                Some(sid) => Input::SetData {
                    sid,
                    data: (!self.rng.chance(20))
                        .then(|| format!(r#"{{"s":"é \"{}\" {{x}}"}}"#, self.rng.below(3))),
                },
                None => return,
            },
            10 => match pick_sock(&mut self.rng, n) {
                Some(sid) => Input::Identify {
                    sid,
                    user: (!self.rng.chance(20)).then(|| self.rng.pick(&USERS).to_string()),
                },
                None => return,
            },
            _ => match n.clients.first().cloned() {
                Some(cid) => {
                    self.nodes[i].clients.remove(0);
                    Input::ClientClose { cid }
                }
                None => return,
            },
        };
        self.input(i, input);
    }

    /// Runs `count` queued calls in lockstep and routes their replies.
    async fn deliver(&mut self, lockstep: &mut Lockstep, count: usize) {
        for _ in 0..count {
            let Some((i, op)) = self.queue.pop_front() else {
                return;
            };
            let reply = lockstep.run(&op).await;
            let input = Input::Reply {
                token: op.token,
                reply,
            };
            match self.nodes[i].state {
                State::Running => self.input(i, input),
                State::Paused { .. } => self.nodes[i].inbox.push(input),
                State::Crashed => {}
            }
        }
    }

    /// Ticks every running node that is due; wakes paused nodes whose time
    /// has come (their held replies first).
    fn tick(&mut self) {
        let now = self.now();
        for i in 0..self.nodes.len() {
            if let State::Paused { until } = self.nodes[i].state
                && until <= now
            {
                self.nodes[i].state = State::Running;
                for input in std::mem::take(&mut self.nodes[i].inbox) {
                    self.input(i, input);
                }
                self.input(i, Input::Tick);
            }
            if self.nodes[i].state == State::Running
                && self.nodes[i].tracker.next_tick().is_some_and(|t| t <= now)
            {
                self.input(i, Input::Tick);
            }
        }
    }

    fn pause(&mut self, i: usize, ms: Millis) {
        if self.nodes[i].state == State::Running {
            self.nodes[i].state = State::Paused {
                until: self.now() + ms,
            };
        }
    }

    /// Crashes node `i` and starts a new process with the same id.
    fn crash_and_restart(&mut self, i: usize) -> usize {
        self.nodes[i].state = State::Crashed;
        let name = self.nodes[i].tracker.node().to_owned();
        self.add_node(&name)
    }

    /// The fields of every running node, summed: what the store must hold.
    fn truth(&self) -> BTreeMap<String, u64> {
        let mut sum = BTreeMap::new();
        for n in self.nodes.iter().filter(|n| n.state == State::Running) {
            if n.tracker.is_closed() {
                continue;
            }
            for (field, count) in n.tracker.local_fields() {
                *sum.entry(field).or_default() += u64::from(count);
            }
        }
        sum
    }
}

/// The model's counters as node-field sums, to compare with the truth.
fn counted(model: &Keyspace, schema: &Schema) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in model.dump() {
        let DumpValue::Hash(fields) = &e.value else {
            continue;
        };
        match schema.parse_key(&e.key) {
            Some(KeyKind::Counts) => {
                for (f, v) in fields {
                    out.insert(f.clone(), v.parse().unwrap());
                }
            }
            Some(KeyKind::Users { scope_id }) => {
                for (user, v) in fields {
                    out.insert(
                        format!("u{}:{scope_id}{user}", scope_id.len()),
                        v.parse().unwrap(),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether the cluster is quiet: nothing queued, nobody dead or being
/// reaped, every running node registered and its share equal to its truth.
fn quiet(sim: &Sim, model: &Keyspace, schema: &Schema) -> bool {
    if !sim.queue.is_empty() {
        return false;
    }
    let dumped = model.dump();
    let live: Vec<String> = dumped
        .iter()
        .find(|e| e.key == schema.live())
        .map(|e| match &e.value {
            DumpValue::Zset(m) => m.iter().map(|(x, _)| x.clone()).collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    let mut want: Vec<String> = sim
        .nodes
        .iter()
        .filter(|n| n.state == State::Running)
        .filter_map(|n| n.tracker.incarnation())
        .collect();
    want.sort();
    let mut live = live;
    live.sort();
    let truth: BTreeMap<String, u64> = sim.truth().into_iter().filter(|(_, n)| *n > 0).collect();
    live == want
        && !dumped.iter().any(|e| e.key == schema.dead())
        && counted(model, schema) == truth
}

/// Blanks what holds times: the clock's value and the live scores.
fn without_times(dump: Vec<DumpEntry>, schema: &Schema) -> Vec<DumpEntry> {
    dump.into_iter()
        .map(|mut e| {
            if e.key == schema.clock() {
                e.value = DumpValue::String("<time>".into());
            } else if e.key == schema.live()
                && let DumpValue::Zset(members) = &mut e.value
            {
                for m in members.iter_mut() {
                    m.1 = 0;
                }
                members.sort();
            }
            e
        })
        .collect()
}

async fn differential(seed: u64, grace_ms: Millis) {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    let config = Config {
        prefix: format!("diff{seed}"),
        ttl_ms: 400,
        heartbeat_ms: 100,
        reap_ms: 100,
        grace_ms,
        reap_slice: 2,
        max_write_fields: 3,
        retry_ms: 50,
        // A feed that is always at its cap: the trimming is compared too.
        changes_max_len: 7,
        ..Config::default()
    };
    let schema = Schema::new(&config.prefix);
    let mut lockstep = Lockstep {
        conn: store.connection(),
        model: Keyspace::new(),
        schema: schema.clone(),
        seed,
        stats: BTreeMap::new(),
    };
    let mut sim = Sim {
        config: config.clone(),
        nodes: Vec::new(),
        queue: VecDeque::new(),
        start: Instant::now(),
        rng: Rng::new(seed),
        serial: 0,
        events: Vec::new(),
    };
    for name in ["a", "b", "c"] {
        sim.add_node(name);
    }
    let zombie_pause = 2 * (config.ttl_ms + config.reap_ms);
    let mut restarted = None;
    for step in 0..450u32 {
        match step {
            // A zombie: paused past its lease, reaped, fenced on waking.
            60 => sim.pause(1, zombie_pause),
            // A crash, reaped in slices; later the same id comes back.
            150 => sim.nodes[2].state = State::Crashed,
            320 => restarted = Some(sim.add_node("c")),
            _ => {}
        }
        if sim.rng.chance(2) {
            // A short pause, well inside the lease.
            let i = sim.rng.below(sim.nodes.len() as u64) as usize;
            sim.pause(i, config.heartbeat_ms / 2);
        }
        if step == 250 {
            // A restart with the same id while the old process is alive in
            // the store: the old incarnation must be reaped.
            sim.crash_and_restart(0);
        }
        for _ in 0..sim.rng.below(4) {
            sim.random_input();
        }
        let n = if sim.rng.chance(80) {
            sim.queue.len()
        } else {
            sim.rng.below(sim.queue.len() as u64 + 1) as usize
        };
        sim.deliver(&mut lockstep, n).await;
        sim.tick();
        tokio::time::sleep(Duration::from_millis(sim.rng.below(12))).await;
    }
    assert!(restarted.is_some());

    // Quiet down: no more inputs; calls and timers until settled.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !quiet(&sim, &lockstep.model, &schema) {
        assert!(
            Instant::now() < deadline,
            "seed {seed}: never quiet; stats {:?}",
            lockstep.stats
        );
        let n = sim.queue.len();
        sim.deliver(&mut lockstep, n).await;
        sim.tick();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let real = dump::dump(&store, &schema).await.unwrap();
    let model = lockstep.model.dump();
    assert_eq!(
        invariants::check(&real, &schema),
        Vec::<String>::new(),
        "seed {seed}"
    );
    assert_eq!(
        invariants::check(&model, &schema),
        Vec::<String>::new(),
        "seed {seed}"
    );
    assert_eq!(
        without_times(real, &schema),
        without_times(model, &schema),
        "seed {seed}: the keyspaces differ"
    );

    // The workload did what it is for.
    let stats = &lockstep.stats.clone();
    let seen = |k: &str| stats.get(k).copied().unwrap_or(0);
    assert!(seen("reap:DONE") >= 3, "seed {seed}: reaps {stats:?}");
    assert!(seen("reap:SLICE") >= 1, "seed {seed}: slices {stats:?}");
    assert!(
        seen("heartbeat:FENCED") + seen("apply:FENCED") + seen("reassert:FENCED") >= 1,
        "seed {seed}: no zombie was fenced {stats:?}"
    );
    assert!(
        sim.events.iter().any(|e| matches!(e, Event::Fenced { .. })),
        "seed {seed}: no Fenced event"
    );

    // Everyone leaves cleanly: both keyspaces end empty.
    for i in 0..sim.nodes.len() {
        if sim.nodes[i].state == State::Running {
            sim.input(i, Input::Shutdown);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim
        .nodes
        .iter()
        .any(|n| n.state == State::Running && !n.tracker.is_closed())
    {
        assert!(
            Instant::now() < deadline,
            "seed {seed}: shutdown never closed"
        );
        let n = sim.queue.len();
        sim.deliver(&mut lockstep, n).await;
        sim.tick();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Nothing of the nodes is left; the change feed and last seen are the
    // same in both.
    let real = dump::dump(&store, &schema).await.unwrap();
    assert!(
        real.iter()
            .all(|e| rollcall_core::schema::outlives_nodes(&e.key)),
        "seed {seed}: {real:?}"
    );
    assert_eq!(real, lockstep.model.dump(), "seed {seed}");
    assert!(
        lockstep.model.node_keys().is_empty(),
        "seed {seed}: {:?}",
        lockstep.model.dump()
    );
    eprintln!("seed {seed}: {stats:?}");
}

fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("ROLLCALL_SEED") {
        Ok(s) => vec![s.parse().expect("ROLLCALL_SEED is a number")],
        Err(_) => default.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_and_redis_agree_without_grace() {
    for seed in seeds(&[1]) {
        differential(seed, 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_and_redis_agree_with_grace() {
    for seed in seeds(&[2]) {
        differential(seed, 150).await;
    }
}
