//! `fault_node`: one rollcall host node as its own OS process, for the
//! fault suite (kill -9, SIGSTOP/SIGCONT, load spread over processes).
//!
//! ```text
//! fault_node --redis URL | --cluster URL,URL,..  --prefix P --node ID
//!            [--ttl MS] [--heartbeat MS] [--reap MS] [--slice N]
//!            [--users N] [--op-timeout MS]
//! ```
//!
//! It prints `ready <node id>` once started, `event <json>` for every event,
//! and answers commands read from stdin, one per line (sockets are numbered;
//! `rollcall_tests::workload::socket` says what number `i` is):
//!
//! - `open A B`: connect sockets A..B (those not held) -> `ok open <n>`
//! - `close A B`: disconnect the held ones in A..B -> `ok close <n>`
//! - `swap A B C D`: in one burst, disconnect the held ones in A..B and
//!   connect C..D -> `ok swap <closed> <opened>`
//! - `storm SECS SEED LO HI TARGET`: for SECS seconds, bursts of random
//!   disconnects and connects in LO..HI around TARGET held ->
//!   `ok storm <bursts> <inputs>`
//! - `held` -> `held <n> <i,i,...>`
//! - `shutdown` (or SIGTERM): clean shutdown -> `closed`, exit 0
//!
//! A Node.js fixture that speaks the same lines can be driven by the same
//! tests (`rollcall_tests::node::NodeProc`).

use std::collections::HashSet;
use std::time::Duration;

use rollcall_host::{Config, Input, Presence, RedisStore};
use rollcall_tests::Rng;
use rollcall_tests::workload::socket;
use tokio::io::{AsyncBufReadExt, BufReader};

struct Opts {
    redis: Option<String>,
    cluster: Vec<String>,
    config: Config,
    node: Option<String>,
    users: u64,
    op_timeout: Option<u64>,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts {
        redis: None,
        cluster: Vec::new(),
        config: Config::default(),
        node: None,
        users: 1_000,
        op_timeout: None,
    };
    o.config.retry_ms = 100;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--redis" => o.redis = Some(value.clone()),
            "--cluster" => o.cluster = value.split(',').map(str::to_owned).collect(),
            "--prefix" => o.config.prefix = value.clone(),
            "--node" => o.node = Some(value.clone()),
            "--ttl" => o.config.ttl_ms = num()?,
            "--heartbeat" => o.config.heartbeat_ms = num()?,
            "--reap" => o.config.reap_ms = num()?,
            "--slice" => o.config.reap_slice = num()? as u32,
            "--users" => o.users = num()?,
            "--op-timeout" => o.op_timeout = Some(num()?),
            "--max-write-fields" => o.config.max_write_fields = num()? as u32,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

struct Node {
    presence: Presence,
    users: u64,
    held: Vec<u64>,
    index: HashSet<u64>,
}

impl Node {
    /// Marks socket `i` held; false when it already is.
    fn hold(&mut self, i: u64) -> bool {
        if !self.index.insert(i) {
            return false;
        }
        self.held.push(i);
        true
    }
}

type Sent = Vec<std::pin::Pin<Box<dyn Future<Output = Result<(), rollcall_host::Error>>>>>;

async fn open_range(node: &mut Node, from: u64, to: u64) -> usize {
    let mut futures = Vec::new();
    let n = start_open(node, from, to, &mut futures);
    wait_all(futures).await;
    n
}

/// Feeds the connects of `from..to` (those not held) without waiting.
fn start_open(node: &mut Node, from: u64, to: u64, futures: &mut Sent) -> usize {
    let mut n = 0;
    for i in from..to {
        if node.hold(i) {
            n += 1;
            let s = socket(i, node.users);
            futures.push(Box::pin(node.presence.input(Input::Connect {
                sid: s.sid.clone(),
                user: s.user.clone(),
                namespace: s.namespace.to_owned(),
            })));
            for r in &s.rooms {
                futures.push(Box::pin(node.presence.input(Input::Join {
                    sid: s.sid.clone(),
                    room: r.clone(),
                })));
            }
        }
    }
    n
}

async fn wait_all(futures: Sent) {
    for f in futures {
        if let Err(e) = f.await {
            eprintln!("fault_node: input refused: {e}");
        }
    }
}

async fn close_some(node: &mut Node, which: Vec<u64>) -> usize {
    let mut futures = Vec::new();
    let n = start_close(node, which, &mut futures);
    wait_all(futures).await;
    n
}

/// Feeds the disconnects of the held ones of `which` without waiting.
fn start_close(node: &mut Node, which: Vec<u64>, futures: &mut Sent) -> usize {
    let mut n = 0;
    for i in &which {
        if node.index.remove(i) {
            n += 1;
            futures.push(Box::pin(
                node.presence.disconnect(&socket(*i, node.users).sid),
            ));
        }
    }
    node.held.retain(|i| node.index.contains(i));
    n
}

/// The held sockets in `from..to`.
fn held_in(node: &Node, from: u64, to: u64) -> Vec<u64> {
    node.held
        .iter()
        .copied()
        .filter(|i| (from..to).contains(i))
        .collect()
}

async fn storm(node: &mut Node, secs: u64, seed: u64, lo: u64, hi: u64, target: u64) -> (u64, u64) {
    let mut rng = Rng::new(seed);
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    let (mut bursts, mut inputs) = (0u64, 0u64);
    let span = hi.saturating_sub(lo).max(1);
    while tokio::time::Instant::now() < end {
        pace.tick().await;
        bursts += 1;
        // A storm: a random share of the sockets leaves, as many come.
        let k = 1 + rng.below((target / 8).max(1));
        let mut leaving = Vec::new();
        for _ in 0..k.min(node.held.len() as u64) {
            let at = rng.below(node.held.len() as u64) as usize;
            leaving.push(node.held[at]);
        }
        inputs += close_some(node, leaving).await as u64;
        let want = target.saturating_sub(node.held.len() as u64) + rng.below(k + 1);
        let mut opened = 0;
        let mut tries = 0;
        while opened < want && tries < want * 4 {
            tries += 1;
            let i = lo + rng.below(span);
            opened += open_range(node, i, i + 1).await as u64;
        }
        inputs += opened;
    }
    (bursts, inputs)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = opts().unwrap_or_else(|e| {
        eprintln!("fault_node: {e}");
        std::process::exit(2)
    });
    let mut builder = Presence::builder().config(o.config.clone());
    if let Some(ms) = o.op_timeout {
        builder = builder.op_timeout(Duration::from_millis(ms));
    }
    if let Some(node) = &o.node {
        builder = builder.node_id(node);
    }
    let op_timeout = Duration::from_millis(o.op_timeout.unwrap_or(o.config.ttl_ms / 2));
    if !o.cluster.is_empty() {
        let store = RedisStore::connect_cluster(&o.cluster, op_timeout)
            .await
            .unwrap_or_else(|e| {
                eprintln!("fault_node: {e}");
                std::process::exit(1)
            });
        builder = builder.store(store);
    } else if let Some(url) = &o.redis {
        builder = builder.redis(url);
    }
    let presence = builder.start().await.unwrap_or_else(|e| {
        eprintln!("fault_node: {e}");
        std::process::exit(1)
    });
    let mut events = presence.subscribe();
    let printer = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Ok(line) = serde_json::to_string(&event) {
                        println!("event {line}");
                    }
                    if event == rollcall_host::Event::Closed {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    println!("lagged {n}");
                }
                Err(_) => break,
            }
        }
    });
    println!("ready {}", presence.node_id());
    let mut node = Node {
        presence: presence.clone(),
        users: o.users,
        held: Vec::new(),
        index: HashSet::new(),
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = term.recv() => Ok(Some("shutdown".to_owned())),
        };
        let line = match line {
            Ok(Some(line)) => line,
            // stdin closed: the test is gone; leave as a crash would.
            _ => std::process::exit(3),
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| -> u64 { words.get(i).and_then(|w| w.parse().ok()).unwrap_or(0) };
        match words.first().copied() {
            Some("open") => {
                let got = open_range(&mut node, n(1), n(2)).await;
                println!("ok open {got}");
            }
            Some("close") => {
                let which = held_in(&node, n(1), n(2));
                let got = close_some(&mut node, which).await;
                println!("ok close {got}");
            }
            Some("swap") => {
                // One burst: the closes and the opens reach the tracker
                // before any of them is awaited, so they go in one write.
                let mut futures = Vec::new();
                let which = held_in(&node, n(1), n(2));
                let closed = start_close(&mut node, which, &mut futures);
                let opened = start_open(&mut node, n(3), n(4), &mut futures);
                wait_all(futures).await;
                println!("ok swap {closed} {opened}");
            }
            Some("storm") => {
                let (bursts, inputs) = storm(&mut node, n(1), n(2), n(3), n(4), n(5)).await;
                println!("ok storm {bursts} {inputs}");
            }
            Some("held") => {
                let mut held = node.held.clone();
                held.sort_unstable();
                let list: Vec<String> = held.iter().map(u64::to_string).collect();
                println!("held {} {}", held.len(), list.join(","));
            }
            Some("shutdown") => match presence.shutdown().await {
                Ok(()) => {
                    // Every event (Closed last) is out before the line.
                    let _ = tokio::time::timeout(Duration::from_secs(5), printer).await;
                    println!("closed");
                    std::process::exit(0)
                }
                Err(e) => {
                    println!("shutdown-error {e}");
                    std::process::exit(1)
                }
            },
            _ => println!("error unknown command {line:?}"),
        }
    }
}
