//! Writes to Redis from one Rust node (issue 13):
//! `cargo bench -p rollcall-tests --bench host_writes`
//!
//! rollcall through `rollcall-host` against the naive recipe of the
//! Socket.IO users article written with redis-rs (one `MULTI` per event, as
//! `naiveAttach` in pkg/bench/lib.js), on the same redis-server (its own,
//! on a free port), in the same run.
//!
//! Workload, the same for both (pkg/bench/writes.js's churn): a population
//! of 1,000 sockets (user `i / 3`), then `CHURN` connects and `CHURN`
//! disconnects alternating (default 10,000 each; the oldest socket leaves),
//! `BATCH` events at a time (default 16) with a yield to the runtime in
//! between. Timed from the first event until Redis holds every write:
//!
//! - rollcall: every input queued without awaiting it (the futures are
//!   collected, then awaited), then a read on the node, which waits for the
//!   node's own writes (read-your-writes);
//! - naive: one future per event, all in flight at once, pipelined on one
//!   `MultiplexedConnection` in the order of the events; timed until every
//!   `MULTI` has been answered.
//!
//! Each churn is one criterion iteration (`iter_custom`); after criterion,
//! `REPS` (default 5) more churns of each, alternating, give the figures
//! printed at the end: events/s, redis-server CPU (INFO cpu, user + sys)
//! per 10,000 events, and the ratio rollcall / naive. After every churn the
//! counts are checked against what they must be; a wrong count panics, so a
//! broken run reports no figure.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use redis::aio::MultiplexedConnection;
use rollcall_host::{Input, Presence, Scope};
use rollcall_tests::RedisServer;
use tokio::runtime::Runtime;

const POP: usize = 1_000;

/// The article's `hDecr` (pkg/bench/lib.js `HDECR`).
const HDECR: &str = r"
  local count = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)

  if count == 0 then
    redis.call('HDEL', KEYS[1], ARGV[1])
  end

  return count
";

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

fn sid(i: usize) -> String {
    format!("s{i}")
}

fn user_of(i: usize) -> String {
    format!("user{}", i / 3)
}

/// Distinct users of the sockets `alive` (the oldest left first).
fn users_of(alive: std::ops::Range<usize>) -> usize {
    alive.map(|i| i / 3).collect::<HashSet<_>>().len()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Rollcall,
    Naive,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rollcall => "rollcall",
            Kind::Naive => "naive",
        }
    }
}

/// One churn: how long until Redis held every write, and redis-server's
/// CPU time meanwhile.
#[derive(Clone, Copy, Debug)]
struct Trial {
    elapsed: Duration,
    redis_cpu: Duration,
}

struct Bench {
    rt: Runtime,
    redis: RedisServer,
    /// INFO, FLUSHALL and the checks: never the connection measured.
    admin: MultiplexedConnection,
    /// The naive recipe's one client (node-redis's single connection).
    naive: MultiplexedConnection,
    hdecr: redis::Script,
    churn: usize,
    batch: usize,
    serial: Cell<u32>,
}

/// redis-server's CPU time so far (INFO cpu: used_cpu_user + used_cpu_sys).
async fn redis_cpu(conn: &mut MultiplexedConnection) -> Duration {
    let text: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(conn)
        .await
        .expect("INFO cpu");
    let field = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("INFO cpu has no {name}"))
            .trim()
            .parse()
            .expect("a number of seconds")
    };
    Duration::from_secs_f64(field("used_cpu_user") + field("used_cpu_sys"))
}

/// One event of the naive recipe, issued when first polled: the MULTI's
/// first reply (`HINCRBY users` on connect, `hDecr users` on disconnect).
fn naive_event(
    conn: &MultiplexedConnection,
    pipe: redis::Pipeline,
    connect: bool,
) -> impl Future<Output = (bool, i64)> + use<> {
    let mut conn = conn.clone();
    async move {
        let (first, _): (i64, i64) = pipe
            .query_async(&mut conn)
            .await
            .expect("a naive MULTI failed");
        (connect, first)
    }
}

impl Bench {
    fn new(churn: usize, batch: usize) -> Bench {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let redis = RedisServer::start();
        let hdecr = redis::Script::new(HDECR);
        let (admin, naive) = rt.block_on(async {
            let client = redis::Client::open(redis.url()).expect("a Redis URL");
            // node-redis has no per-command timeout; 500 ms (redis-rs's
            // default) is too short with 20,000 MULTIs queued at once.
            let config = redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(Duration::from_secs(60)));
            let admin = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .expect("the admin connection");
            let mut naive = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .expect("the naive recipe's connection");
            // MULTI runs EVALSHA without a retry on NOSCRIPT: load it first
            // (FLUSHALL keeps scripts).
            let _: String = hdecr
                .prepare_invoke()
                .load_async(&mut naive)
                .await
                .expect("SCRIPT LOAD hDecr");
            (admin, naive)
        });
        Bench {
            rt,
            redis,
            admin,
            naive,
            hdecr,
            churn,
            batch,
            serial: Cell::new(0),
        }
    }

    fn events(&self) -> usize {
        2 * self.churn
    }

    fn trial(&self, kind: Kind) -> Trial {
        let n = self.serial.get();
        self.serial.set(n + 1);
        self.rt.block_on(async {
            let mut admin = self.admin.clone();
            let _: () = redis::cmd("FLUSHALL")
                .query_async(&mut admin)
                .await
                .expect("FLUSHALL");
            match kind {
                Kind::Rollcall => self.rollcall(n).await,
                Kind::Naive => self.naive(n).await,
            }
        })
    }

    /// The sizes of the churn's batches: `batch` events each, the last
    /// one what is left.
    fn schedule(&self) -> Vec<usize> {
        let events = self.events();
        (0..events.div_ceil(self.batch))
            .map(|b| self.batch.min(events - b * self.batch))
            .collect()
    }

    async fn rollcall(&self, n: u32) -> Trial {
        let p = Presence::builder()
            .redis(self.redis.url())
            .prefix(format!("hw{n}"))
            .start()
            .await
            .expect("start a Presence");
        let pending: Vec<_> = (0..POP)
            .map(|i| p.connect(&sid(i), Some(&user_of(i)), "/"))
            .collect();
        for f in pending {
            f.await.expect("a population connect");
        }
        let sockets = p.sockets_count(Scope::Global).await.expect("a read");
        assert_eq!(sockets, POP as u64, "rollcall: the population");

        let mut admin = self.admin.clone();
        let cpu0 = redis_cpu(&mut admin).await;
        let t0 = Instant::now();
        let mut pending = Vec::with_capacity(self.events());
        let (mut next, mut oldest, mut flip) = (POP, 0, false);
        for b in self.schedule() {
            for _ in 0..b {
                flip = !flip;
                if flip {
                    // What connect() and disconnect() send, as one future type.
                    pending.push(p.input(Input::Connect {
                        sid: sid(next),
                        user: Some(user_of(next)),
                        namespace: "/".into(),
                    }));
                    next += 1;
                } else {
                    pending.push(p.input(Input::Disconnect { sid: sid(oldest) }));
                    oldest += 1;
                }
            }
            tokio::task::yield_now().await;
        }
        for f in pending {
            f.await.expect("an input the tracker refused");
        }
        let users = p.users_count(Scope::Global).await.expect("a read");
        let elapsed = t0.elapsed();
        let redis_cpu = redis_cpu(&mut admin).await.saturating_sub(cpu0);

        let want = users_of(oldest..next);
        assert_eq!(users, want as u64, "rollcall: users after the churn");
        let sockets = p.sockets_count(Scope::Global).await.expect("a read");
        assert_eq!(sockets, POP as u64, "rollcall: sockets after the churn");
        p.shutdown().await.expect("shutdown");
        Trial { elapsed, redis_cpu }
    }

    /// The MULTI of a connect: HINCRBY x2.
    fn naive_connect(&self, proc_users: &str, user: &str) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HINCRBY")
            .arg("users")
            .arg(user)
            .arg(1)
            .cmd("HINCRBY")
            .arg(proc_users)
            .arg(user)
            .arg(1);
        pipe
    }

    /// The MULTI of a disconnect: hDecr x2.
    fn naive_disconnect(&self, proc_users: &str, user: &str) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        let mut global = self.hdecr.key("users");
        global.arg(user);
        let mut local = self.hdecr.key(proc_users);
        local.arg(user);
        pipe.atomic().invoke_script(&global).invoke_script(&local);
        pipe
    }

    async fn naive(&self, n: u32) -> Trial {
        let proc_id = format!("proc{n}");
        let proc_users = format!("{proc_id}:users");
        let mut conn = self.naive.clone();
        let _: () = redis::pipe()
            .atomic()
            .cmd("SADD")
            .arg("processes")
            .arg(&proc_id)
            .ignore()
            .cmd("SET")
            .arg(format!("{proc_id}:is-up"))
            .arg("1")
            .arg("EX")
            .arg(10)
            .ignore()
            .query_async(&mut conn)
            .await
            .expect("register the process");
        let population: Vec<_> = (0..POP)
            .map(|i| {
                naive_event(
                    &self.naive,
                    self.naive_connect(&proc_users, &user_of(i)),
                    true,
                )
            })
            .collect();
        futures_util::future::join_all(population).await;
        let mut admin = self.admin.clone();
        let users0: usize = redis::cmd("HLEN")
            .arg("users")
            .query_async(&mut admin)
            .await
            .expect("HLEN");
        assert_eq!(users0, users_of(0..POP), "naive: the population");

        let cpu0 = redis_cpu(&mut admin).await;
        let t0 = Instant::now();
        // One future per event, first polled (so sent) in event order:
        // FuturesUnordered polls new futures in the order they were pushed.
        let mut inflight = FuturesUnordered::new();
        let (mut connected, mut disconnected) = (0usize, 0usize);
        let mut tally = |(connect, first): (bool, i64)| {
            if connect && first == 1 {
                connected += 1; // "user has connected"
            } else if !connect && first == 0 {
                disconnected += 1; // "user has disconnected"
            }
        };
        let (mut next, mut oldest, mut flip) = (POP, 0, false);
        for b in self.schedule() {
            for _ in 0..b {
                flip = !flip;
                if flip {
                    let pipe = self.naive_connect(&proc_users, &user_of(next));
                    inflight.push(naive_event(&self.naive, pipe, true));
                    next += 1;
                } else {
                    let pipe = self.naive_disconnect(&proc_users, &user_of(oldest));
                    inflight.push(naive_event(&self.naive, pipe, false));
                    oldest += 1;
                }
            }
            // Sends the new ones (and collects the answered ones) now,
            // without waiting for any.
            while let Some(Some(done)) = inflight.next().now_or_never() {
                tally(done);
            }
            tokio::task::yield_now().await;
        }
        while let Some(done) = inflight.next().await {
            tally(done);
        }
        let elapsed = t0.elapsed();
        let redis_cpu = redis_cpu(&mut admin).await.saturating_sub(cpu0);

        let want = users_of(oldest..next);
        for key in ["users", proc_users.as_str()] {
            let h: Vec<(String, i64)> = redis::cmd("HGETALL")
                .arg(key)
                .query_async(&mut admin)
                .await
                .expect("HGETALL");
            let sockets: i64 = h.iter().map(|(_, c)| c).sum();
            assert_eq!(h.len(), want, "naive: users in {key} after the churn");
            assert_eq!(
                sockets, POP as i64,
                "naive: sockets in {key} after the churn"
            );
        }
        assert_eq!(
            users0 + connected - disconnected,
            want,
            "naive: the 'user has (dis)connected' results"
        );
        Trial { elapsed, redis_cpu }
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn host_writes(c: &mut Criterion) {
    let churn = env_usize("CHURN", 10_000);
    let batch = env_usize("BATCH", 16).max(1);
    let reps = env_usize("REPS", 5).max(1);
    let bench = Bench::new(churn, batch);
    let events = bench.events();
    // Every churn run inside criterion too, for the sanity of the summary.
    let log: RefCell<Vec<(Kind, Trial)>> = RefCell::new(Vec::new());

    let mut group = c.benchmark_group("host_writes");
    group
        .throughput(Throughput::Elements(events as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for kind in [Kind::Rollcall, Kind::Naive] {
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = bench.trial(kind);
                    log.borrow_mut().push((kind, t));
                    total += t.elapsed;
                }
                total
            })
        });
    }
    group.finish();

    // `cargo test --benches` runs each benchmark once to see it works
    // (no `--bench` argument): no figures then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }

    // The figures: REPS churns of each, alternating (ABBA...), so drift
    // hits both alike; the ratio is the median of the per-pair ratios.
    let mut pairs = Vec::with_capacity(reps);
    for rep in 0..reps {
        let order = if rep % 2 == 0 {
            [Kind::Rollcall, Kind::Naive]
        } else {
            [Kind::Naive, Kind::Rollcall]
        };
        let mut r = None;
        let mut nv = None;
        for kind in order {
            let t = bench.trial(kind);
            match kind {
                Kind::Rollcall => r = Some(t),
                Kind::Naive => nv = Some(t),
            }
        }
        pairs.push((r.unwrap(), nv.unwrap()));
    }
    let per_s = |t: &Trial| events as f64 / t.elapsed.as_secs_f64();
    let cpu_per_10k = |t: &Trial| t.redis_cpu.as_secs_f64() * 1e3 * 10_000.0 / events as f64;
    let summary = |name: &str, ts: Vec<Trial>| -> (f64, f64) {
        let eps = median(ts.iter().map(per_s).collect());
        let cpu = median(ts.iter().map(cpu_per_10k).collect());
        let ms = median(ts.iter().map(|t| t.elapsed.as_secs_f64() * 1e3).collect());
        println!(
            "host_writes: {name:8} {eps:>9.0} events/s  {ms:>7.1} ms per churn  redis CPU {cpu:>6.1} ms per 10,000 events"
        );
        (eps, cpu)
    };
    println!(
        "host_writes: population {POP}, churn {churn} connects + {churn} disconnects ({events} events), {batch} per batch; medians of {reps} interleaved churns each"
    );
    let (r_eps, r_cpu) = summary("rollcall", pairs.iter().map(|p| p.0).collect());
    let (n_eps, n_cpu) = summary("naive", pairs.iter().map(|p| p.1).collect());
    let ratio = median(pairs.iter().map(|(r, n)| per_s(r) / per_s(n)).collect());
    let ratios: Vec<String> = pairs
        .iter()
        .map(|(r, n)| format!("{:.2}", per_s(r) / per_s(n)))
        .collect();
    println!(
        "host_writes: ratio rollcall / naive {ratio:.2}x events/s (per pair: {}; of the medians {:.2}x), redis CPU per event {:.2}x less",
        ratios.join(", "),
        r_eps / n_eps,
        n_cpu / r_cpu
    );
    let log = log.into_inner();
    for kind in [Kind::Rollcall, Kind::Naive] {
        let ts: Vec<Trial> = log
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, t)| *t)
            .collect();
        if !ts.is_empty() {
            println!(
                "host_writes: within criterion (one kind after the other), {}: {:.0} events/s, redis CPU {:.1} ms per 10,000 events (median of {} churns, warm-up included)",
                kind.name(),
                median(ts.iter().map(per_s).collect()),
                median(ts.iter().map(cpu_per_10k).collect()),
                ts.len()
            );
        }
    }
    // The server stops with `bench` (RedisServer kills it on drop).
    drop(bench);
}

criterion_group!(benches, host_writes);
criterion_main!(benches);
