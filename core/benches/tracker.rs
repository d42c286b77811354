//! Core speed and memory, natively. `cargo bench -p rollcall-core --bench tracker`
//!
//! - `inputs`: connect, join, leave, disconnect through a registered tracker
//!   whose write is in flight (so inputs coalesce, as under load), against
//!   the single-server `Map` bookkeeping of the Socket.IO users article as
//!   the baseline in the same run.
//! - memory: bytes allocated per tracked socket, printed once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rollcall_core::{Config, Input, Keyspace, Tracker};

/// Counts live heap bytes, to measure memory per socket.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SOCKETS: usize = 10_000;

/// A registered tracker with one write in flight that is never answered.
fn busy_tracker() -> Tracker {
    let mut t = Tracker::new(Config::default(), "bench").unwrap();
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
    let first = t.handle(1, connect("warm", 0)).unwrap();
    assert_eq!(first.ops.len(), 1, "one write in flight");
    t
}

fn connect(sid: &str, i: usize) -> Input {
    Input::Connect {
        sid: sid.to_owned(),
        user: Some(format!("user{}", i / 3)),
        namespace: if i.is_multiple_of(2) { "/" } else { "/chat" }.to_owned(),
    }
}

fn sids() -> Vec<String> {
    (0..SOCKETS).map(|i| format!("sock{i:016}")).collect()
}

fn feed(t: &mut Tracker, input: Input) {
    let _ = black_box(t.handle(2, input).unwrap());
}

/// One socket's life: connect, join a room, leave it, disconnect.
fn lifecycle(t: &mut Tracker, sids: &[String]) {
    for (i, sid) in sids.iter().enumerate() {
        feed(t, connect(sid, i));
        let room = format!("room{}", i % 10);
        feed(
            t,
            Input::Join {
                sid: sid.clone(),
                room,
            },
        );
    }
    for (i, sid) in sids.iter().enumerate() {
        let room = format!("room{}", i % 10);
        feed(
            t,
            Input::Leave {
                sid: sid.clone(),
                room,
            },
        );
        feed(t, Input::Disconnect { sid: sid.clone() });
    }
}

/// The users article's single-server bookkeeping: a Map user -> count,
/// plus the socket -> user map any server keeps.
fn naive_lifecycle(sids: &[String]) {
    let mut users: HashMap<String, u32> = HashMap::new();
    let mut sockets: HashMap<String, (String, String, Vec<String>)> = HashMap::new();
    for (i, sid) in sids.iter().enumerate() {
        let user = format!("user{}", i / 3);
        *users.entry(user.clone()).or_default() += 1;
        let ns = if i.is_multiple_of(2) { "/" } else { "/chat" }.to_owned();
        sockets.insert(sid.clone(), (user, ns, vec![format!("room{}", i % 10)]));
    }
    for (i, sid) in sids.iter().enumerate() {
        let room = format!("room{}", i % 10);
        if let Some(s) = sockets.get_mut(sid) {
            s.2.retain(|r| *r != room);
        }
        let (user, _, _) = sockets.remove(sid).unwrap();
        let n = users.get_mut(&user).unwrap();
        *n -= 1;
        if *n == 0 {
            users.remove(&user);
        }
    }
    black_box(users);
}

fn inputs(c: &mut Criterion) {
    let sids = sids();
    let mut g = c.benchmark_group("inputs");
    g.throughput(Throughput::Elements(4 * SOCKETS as u64));
    g.bench_function("rollcall_tracker", |b| {
        b.iter_batched(
            busy_tracker,
            |mut t| lifecycle(&mut t, &sids),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("naive_map_baseline", |b| b.iter(|| naive_lifecycle(&sids)));
    g.finish();
}

fn memory(_: &mut Criterion) {
    let n = 100_000;
    let mut t = busy_tracker();
    let sids: Vec<String> = (0..n).map(|i| format!("sock{i:016}")).collect();
    let before = LIVE.load(Ordering::Relaxed);
    for (i, sid) in sids.iter().enumerate() {
        feed(&mut t, connect(sid, i));
        let room = format!("room{}", i % 10);
        feed(
            &mut t,
            Input::Join {
                sid: sid.clone(),
                room,
            },
        );
    }
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) as f64 / n as f64;
    println!(
        "memory: {n} sockets (3 tabs per user, 2 namespaces, 1 room each): {per:.0} bytes per tracked socket"
    );
    black_box(t);
}

criterion_group!(benches, inputs, memory);
criterion_main!(benches);
