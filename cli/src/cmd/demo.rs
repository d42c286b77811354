//! `rollcall demo`: a small cluster in one process. Sockets from users with
//! several tabs connect to a few nodes, in namespaces and rooms; one node
//! crashes (no shutdown); the others reap it; the counts are compared with
//! the ground truth before and after, and the offline events of the reap
//! are checked: exactly one per user and scope that lost its last socket.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use rollcall_core::{Event, OfflineReason, Schema, Scope, invariants};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::inspect::scope_label;
use super::table;
use rollcall_host::store::{MemoryStore, RedisStore, Store};
use rollcall_host::{Error, Presence, dump};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Nodes (server processes) to simulate.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=32))]
    nodes: u16,
    /// Sockets to connect, spread over the nodes.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..=500_000))]
    sockets: u32,
    /// Distinct users (default: a quarter of the sockets, so several tabs
    /// per user); about one socket in ten is anonymous.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    users: Option<u32>,
    /// Run on this Redis instead of the embedded in-memory model.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Key prefix (default: a fresh `rollcall-demo-<hex>`, so runs never
    /// meet).
    #[arg(long)]
    prefix: Option<String>,
    /// Seed of the simulated workload.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Node lease, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    ttl_ms: u64,
    /// Heartbeat interval, in milliseconds (at most a third of the lease).
    #[arg(long, default_value_t = 500)]
    heartbeat_ms: u64,
    /// How often nodes look for dead nodes, in milliseconds.
    #[arg(long, default_value_t = 500)]
    reap_ms: u64,
    /// Print every offline event (default: the first 20).
    #[arg(long)]
    all_events: bool,
}

/// One simulated socket and where it lives.
#[derive(Debug, Clone)]
struct Sock {
    node: usize,
    user: Option<String>,
    namespace: &'static str,
    rooms: Vec<&'static str>,
}

const NAMESPACES: [(&str, u64, &[&str]); 3] = [
    ("/", 6, &["lobby", "news", "sports"]),
    ("/chat", 3, &["general", "random", "help", "dev"]),
    ("/admin", 1, &["ops"]),
];

/// splitmix64: a tiny seeded generator, the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn workload(args: &Args) -> Vec<Sock> {
    let mut rng = Rng(args.seed);
    let users = u64::from(args.users.unwrap_or((args.sockets / 4).max(1)));
    let total_weight: u64 = NAMESPACES.iter().map(|(_, w, _)| w).sum();
    (0..args.sockets)
        .map(|_| {
            let node = rng.below(u64::from(args.nodes)) as usize;
            let user = (rng.below(10) != 0).then(|| format!("user-{}", rng.below(users)));
            let mut pick = rng.below(total_weight);
            let (namespace, rooms) = NAMESPACES
                .iter()
                .find(|(_, w, _)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .map(|(ns, _, rooms)| (*ns, *rooms))
                .unwrap_or(("/", &[]));
            let mut joined = Vec::new();
            for _ in 0..rng.below(3) {
                let room = rooms[rng.below(rooms.len() as u64) as usize];
                if !joined.contains(&room) {
                    joined.push(room);
                }
            }
            Sock {
                node,
                user,
                namespace,
                rooms: joined,
            }
        })
        .collect()
}

/// What the store should say: sockets and distinct users per scope, and
/// engine clients (one per socket here).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Truth {
    clients: u64,
    scopes: BTreeMap<Scope, (u64, BTreeSet<String>)>,
}

fn truth(socks: &[Sock], alive: &[bool], all_scopes: &BTreeSet<Scope>) -> Truth {
    let mut t = Truth::default();
    for scope in all_scopes {
        t.scopes.insert(scope.clone(), (0, BTreeSet::new()));
    }
    for s in socks.iter().filter(|s| alive[s.node]) {
        t.clients += 1;
        let mut scopes = vec![Scope::Global, Scope::namespace(s.namespace)];
        scopes.extend(s.rooms.iter().map(|r| Scope::room(s.namespace, *r)));
        for scope in scopes {
            let entry = t.scopes.entry(scope).or_default();
            entry.0 += 1;
            if let Some(u) = &s.user {
                entry.1.insert(u.clone());
            }
        }
    }
    t
}

/// What the store says, for the same scopes.
async fn observed(
    p: &Presence,
    scopes: &BTreeSet<Scope>,
) -> Result<BTreeMap<Scope, (u64, u64)>, Error> {
    let mut out = BTreeMap::new();
    for scope in scopes {
        let sockets = p.sockets_count(scope.clone()).await?;
        let users = p.users_count(scope.clone()).await?;
        out.insert(scope.clone(), (sockets, users));
    }
    Ok(out)
}

fn matches(truth: &Truth, clients: u64, seen: &BTreeMap<Scope, (u64, u64)>) -> bool {
    clients == truth.clients
        && truth.scopes.iter().all(|(scope, (sockets, users))| {
            seen.get(scope) == Some(&(*sockets, users.len() as u64))
        })
}

/// Polls the store until it agrees with the truth or the deadline passes.
async fn converge(
    p: &Presence,
    truth: &Truth,
    within: Duration,
) -> Result<(bool, u64, BTreeMap<Scope, (u64, u64)>), Error> {
    let scopes: BTreeSet<Scope> = truth.scopes.keys().cloned().collect();
    let deadline = Instant::now() + within;
    loop {
        let clients = p.clients_count().await?;
        let seen = observed(p, &scopes).await?;
        let ok = matches(truth, clients, &seen);
        if ok || Instant::now() >= deadline {
            return Ok((ok, clients, seen));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn print_table(title: &str, truth: &Truth, clients: u64, seen: &BTreeMap<Scope, (u64, u64)>) {
    println!("{title}");
    let mark = |ok: bool| if ok { "ok" } else { "MISMATCH" }.to_owned();
    let mut rows = vec![vec![
        "clients".to_owned(),
        clients.to_string(),
        truth.clients.to_string(),
        String::new(),
        String::new(),
        mark(clients == truth.clients),
    ]];
    for (scope, (sockets, users)) in &truth.scopes {
        let (got_s, got_u) = seen.get(scope).copied().unwrap_or((0, 0));
        let want_u = users.len() as u64;
        rows.push(vec![
            scope_label(scope),
            got_s.to_string(),
            sockets.to_string(),
            got_u.to_string(),
            want_u.to_string(),
            mark(got_s == *sockets && got_u == want_u),
        ]);
    }
    print!(
        "{}",
        table::render(&["scope", "sockets", "truth", "users", "truth", ""], &rows)
    );
    println!();
}

struct Progress {
    tty: bool,
    last: u64,
}

impl Progress {
    fn show(&mut self, what: &str, done: u64, total: u64) {
        let pct = done * 100 / total.max(1);
        if self.tty {
            eprint!("\r  {what}: {done}/{total} ({pct}%)   ");
            if done == total {
                eprintln!();
            }
        } else if pct >= self.last + 25 || done == total {
            self.last = pct;
            eprintln!("  {what}: {done}/{total} ({pct}%)");
        }
        let _ = std::io::stderr().flush();
    }
}

pub async fn run(args: Args) -> ExitCode {
    match demo(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rollcall demo: {e}");
            ExitCode::from(2)
        }
    }
}

async fn demo(args: Args) -> Result<bool, Error> {
    // The core's rules for the timings, before anything starts.
    rollcall_core::Config {
        ttl_ms: args.ttl_ms,
        heartbeat_ms: args.heartbeat_ms,
        reap_ms: args.reap_ms,
        ..rollcall_core::Config::default()
    }
    .validate()
    .map_err(Error::Config)?;
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| format!("rollcall-demo-{:08x}", rollcall_host::node_id::random_u32()));
    let mode = match &args.redis {
        Some(url) => format!("Redis at {}", rollcall_host::error::redact(url)),
        None => "the embedded in-memory model".to_owned(),
    };
    println!(
        "rollcall demo: {} nodes, {} sockets, on {mode} (prefix {prefix:?}, seed {})",
        args.nodes, args.sockets, args.seed
    );
    println!(
        "lease {} ms, heartbeat {} ms, reap every {} ms",
        args.ttl_ms, args.heartbeat_ms, args.reap_ms
    );
    println!();

    let memory = MemoryStore::new();
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        let store: Store = match &args.redis {
            Some(url) => RedisStore::connect(url, Duration::from_secs(2))
                .await?
                .into(),
            None => memory.clone().into(),
        };
        let p = Presence::builder()
            .store(store)
            .prefix(prefix.clone())
            .node_id(format!("node-{}", i + 1))
            .ttl(Duration::from_millis(args.ttl_ms))
            .heartbeat(Duration::from_millis(args.heartbeat_ms))
            .reap_interval(Duration::from_millis(args.reap_ms))
            .retry(Duration::from_millis(args.heartbeat_ms.clamp(1, 1000)))
            // The demo's feed and last seen expire a minute after it ends.
            .last_seen(Duration::from_secs(60))
            .start()
            .await?;
        nodes.push(p);
    }
    // Every node's events, tagged with the node, in one channel.
    let (tx, mut events) = mpsc::unbounded_channel::<(usize, Event)>();
    for (i, p) in nodes.iter().enumerate() {
        let mut rx = p.subscribe();
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if tx.send((i, e)).is_err() {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        eprintln!("rollcall demo: node-{} events lagged, {n} missed", i + 1);
                    }
                    Err(_) => break,
                }
            }
        });
    }
    drop(tx);

    let socks = workload(&args);
    let mut all_scopes: BTreeSet<Scope> = BTreeSet::new();
    all_scopes.insert(Scope::Global);
    for s in &socks {
        all_scopes.insert(Scope::namespace(s.namespace));
        for r in &s.rooms {
            all_scopes.insert(Scope::room(s.namespace, *r));
        }
    }
    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        last: 0,
    };
    let started = Instant::now();
    let total = socks.len() as u64;
    for (i, s) in socks.iter().enumerate() {
        let p = &nodes[s.node];
        let sid = format!("sid-{i}");
        p.client_open(&format!("cid-{i}")).await?;
        p.connect(&sid, s.user.as_deref(), s.namespace).await?;
        for room in &s.rooms {
            p.join(&sid, room).await?;
        }
        if (i + 1) % 100 == 0 || i + 1 == socks.len() {
            progress.show("connecting sockets", i as u64 + 1, total);
        }
    }
    let mut alive = vec![true; nodes.len()];
    let before = truth(&socks, &alive, &all_scopes);
    let (ok, clients, seen) = converge(&nodes[0], &before, Duration::from_secs(60)).await?;
    println!(
        "{} sockets connected in {} ms; the store {} the truth",
        total,
        started.elapsed().as_millis(),
        if ok {
            "agrees with"
        } else {
            "does NOT agree with"
        }
    );
    println!();
    print_table("before the crash", &before, clients, &seen);
    if !ok {
        println!("the counts never matched the truth before the crash");
        return Ok(false);
    }

    // Crash the last node: no shutdown, its share stays until reaped.
    let victim = nodes.len() - 1;
    let victim_id = nodes[victim].node_id().to_owned();
    while events.try_recv().is_ok() {}
    nodes[victim].kill();
    alive[victim] = false;
    let crashed_at = Instant::now();
    let after = truth(&socks, &alive, &all_scopes);
    println!(
        "crashed {victim_id} ({} sockets) without a shutdown; waiting for the reap",
        socks.iter().filter(|s| s.node == victim).count()
    );
    let limit = Duration::from_millis(args.ttl_ms + args.reap_ms) + Duration::from_secs(30);
    let mut offline: Vec<(usize, Scope, String)> = Vec::new();
    let mut reaped_by = None;
    while reaped_by.is_none() {
        let wait = limit.saturating_sub(crashed_at.elapsed());
        match tokio::time::timeout(wait, events.recv()).await {
            Ok(Some((
                i,
                Event::UserOffline {
                    scope,
                    user,
                    reason,
                    ..
                },
            ))) => {
                if reason == OfflineReason::Reaped {
                    offline.push((i, scope, user));
                }
            }
            Ok(Some((i, Event::NodeReaped { node, incarnation }))) if node == victim_id => {
                reaped_by = Some((i, incarnation));
            }
            // A failed call loses the events of its step: say so, it
            // explains a missing offline event.
            Ok(Some((i, Event::StoreError { script, message }))) => {
                println!("node-{} store error in {}: {message}", i + 1, script.name());
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let Some((reaper, incarnation)) = reaped_by else {
        println!("{victim_id} was not reaped within {} ms", limit.as_millis());
        return Ok(false);
    };
    let took = crashed_at.elapsed();
    println!(
        "node-{} reaped {incarnation} {} ms after the crash (lease {} ms + reap interval {} ms)",
        reaper + 1,
        took.as_millis(),
        args.ttl_ms,
        args.reap_ms
    );
    println!();
    let (ok_after, clients, seen) = converge(&nodes[0], &after, Duration::from_secs(10)).await?;
    print_table("after the reap", &after, clients, &seen);

    // Expected: each (scope, user) online before and not after, once.
    let mut expected: BTreeSet<(Scope, String)> = BTreeSet::new();
    for (scope, (_, users)) in &before.scopes {
        let now = after
            .scopes
            .get(scope)
            .map(|(_, u)| u.clone())
            .unwrap_or_default();
        for u in users.difference(&now) {
            expected.insert((scope.clone(), u.clone()));
        }
    }
    // Offline events may trail the NodeReaped event: another reaper's last
    // slice can be in the store (the counts are right) before that node has
    // handled its reply. Wait for them, for a while; one that never comes
    // is reported below.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let missing = |offline: &[(usize, Scope, String)]| {
        let got: BTreeSet<(&Scope, &str)> =
            offline.iter().map(|(_, s, u)| (s, u.as_str())).collect();
        expected
            .iter()
            .any(|(s, u)| !got.contains(&(s, u.as_str())))
    };
    while missing(&offline) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some((
                i,
                Event::UserOffline {
                    scope,
                    user,
                    reason: OfflineReason::Reaped,
                    ..
                },
            ))) => offline.push((i, scope, user)),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    // And what is already queued (a repeat would show as WRONG).
    while let Ok((i, e)) = events.try_recv() {
        if let Event::UserOffline {
            scope,
            user,
            reason: OfflineReason::Reaped,
            ..
        } = e
        {
            offline.push((i, scope, user));
        }
    }
    let mut got: BTreeMap<(Scope, String), usize> = BTreeMap::new();
    for (_, scope, user) in &offline {
        *got.entry((scope.clone(), user.clone())).or_default() += 1;
    }
    println!(
        "offline events with reason \"reaped\": {} (expected {})",
        offline.len(),
        expected.len()
    );
    let shown = if args.all_events { offline.len() } else { 20 };
    for (i, scope, user) in offline.iter().take(shown) {
        println!(
            "  node-{} user_offline {user} in {} reason=reaped",
            i + 1,
            scope_label(scope)
        );
    }
    if offline.len() > shown {
        println!(
            "  ... and {} more (--all-events shows them all)",
            offline.len() - shown
        );
    }
    let mut events_ok = true;
    for key in &expected {
        match got.get(key) {
            Some(1) => {}
            Some(n) => {
                events_ok = false;
                println!(
                    "  WRONG: {} in {} went offline {n} times",
                    key.1,
                    scope_label(&key.0)
                );
            }
            None => {
                events_ok = false;
                println!(
                    "  MISSING: no offline event for {} in {}",
                    key.1,
                    scope_label(&key.0)
                );
            }
        }
    }
    for (key, _) in got.iter().filter(|(k, _)| !expected.contains(*k)) {
        events_ok = false;
        println!(
            "  UNEXPECTED: {} in {} went offline",
            key.1,
            scope_label(&key.0)
        );
    }
    println!();

    let schema = Schema::new(&prefix);
    let dumped = match nodes[0].store() {
        Store::Memory(m) => m.dump(),
        Store::Redis(r) => dump::dump(r, &schema).await?,
    };
    let violations = invariants::check(&dumped, &schema);
    if violations.is_empty() {
        println!("invariants: ok ({} keys)", dumped.len());
    } else {
        println!("invariants: {} violation(s)", violations.len());
        for v in &violations {
            println!("  - {v}");
        }
    }

    // The survivors leave cleanly: nothing of the nodes stays in the
    // store (the change feed and last seen expire a minute later).
    for p in nodes.iter().take(victim) {
        p.shutdown().await?;
    }
    let left = match nodes[0].store() {
        Store::Memory(m) => m.node_keys().len(),
        Store::Redis(r) => dump::keys(r, &schema)
            .await?
            .iter()
            .filter(|k| !rollcall_core::schema::outlives_nodes(k))
            .count(),
    };
    println!(
        "survivors shut down cleanly; keys of the nodes left under the prefix: {left} (the change feed and last seen expire in 60 s)"
    );
    println!();
    let pass = ok_after && events_ok && violations.is_empty() && left == 0;
    if pass {
        println!("PASS: the counts match the truth after the reap");
    } else {
        println!("FAIL: the counts or events do not match the truth");
    }
    Ok(pass)
}
