//! Seeded random workloads for a [`Cluster`]: the same seed gives the same
//! run, byte for byte, so a failure is reproduced from the seed alone.

use rollcall_core::config::Config;
use rollcall_core::tracker::Input;

use super::{Cluster, NodeState};

/// A small, fast, seedable generator (SplitMix64). Deterministic by
/// construction: it is the only source of choices in a run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One item of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How a random run is shaped.
#[derive(Debug, Clone)]
pub struct Workload {
    pub nodes: usize,
    pub steps: usize,
    pub users: u64,
    /// Faults: crashes, pauses, restarts, lost replies, store wipes.
    pub faults: bool,
}

/// Runs a seeded random workload on a fresh cluster (recording traces when
/// `record`), lets it go quiet, and returns the cluster.
pub fn run(seed: u64, workload: &Workload, record: bool) -> Cluster {
    let mut rng = Rng::new(seed);
    let config = Config {
        ttl_ms: 2_000,
        heartbeat_ms: 500,
        reap_ms: 700,
        grace_ms: if rng.chance(50) { 300 } else { 0 },
        reap_slice: [1, 3, 1000][rng.below(3) as usize],
        retry_ms: 200,
        max_write_fields: [1, 3, 2000][rng.below(3) as usize],
        ..Config::default()
    };
    let mut c = Cluster::new(config);
    c.record = record;
    for i in 0..workload.nodes {
        c.add_node(&format!("n{i}"));
    }
    let mut next_id = 0u64;
    for _ in 0..workload.steps {
        let open: Vec<usize> = (0..c.len())
            .filter(|&i| c.state(i) == NodeState::Running && !c.tracker(i).is_closed())
            .collect();
        let node = (!open.is_empty()).then(|| open[rng.below(open.len() as u64) as usize]);
        let roll = rng.below(100);
        next_id += 1;
        match (roll, node) {
            (0..=29, Some(n)) => {
                let user = (!rng.chance(15)).then(|| format!("user{}", rng.below(workload.users)));
                let namespace = ["/", "/chat", "/admin"][rng.below(3) as usize].to_owned();
                let _ = c.input(
                    n,
                    Input::Connect {
                        sid: format!("s{next_id}"),
                        user,
                        namespace,
                    },
                );
            }
            (30..=49, Some(n)) => {
                // Now and then an unknown socket: refused, and recorded so.
                let sid = pick(&c, n, &mut rng).unwrap_or_else(|| format!("s{next_id}"));
                let _ = c.input(n, Input::Disconnect { sid });
            }
            (50..=59, Some(n)) => {
                if let Some(sid) = pick(&c, n, &mut rng) {
                    let room = format!("room{}", rng.below(4));
                    let input = match rng.below(12) {
                        0..=5 => Input::Join { sid, room },
                        6..=7 => Input::Leave { sid, room },
                        8..=9 => Input::SetData {
                            sid,
                            data: (!rng.chance(20)).then(|| format!(r#"{{"v":{}}}"#, rng.below(4))),
                        },
                        _ => Input::Identify {
                            sid,
                            user: (!rng.chance(15))
                                .then(|| format!("user{}", rng.below(workload.users))),
                        },
                    };
                    let _ = c.input(n, input);
                }
            }
            (60..=63, Some(n)) => {
                let cid = format!("c{}", rng.below(next_id + 1));
                let input = if rng.chance(60) {
                    Input::ClientOpen { cid }
                } else {
                    Input::ClientClose { cid }
                };
                let _ = c.input(n, input);
            }
            (64..=79, _) => {
                for _ in 0..rng.below(6) + 1 {
                    c.deliver();
                }
            }
            (80..=89, _) => c.advance(rng.below(1_500) + 1),
            (90..=99, Some(n)) if workload.faults => match rng.below(7) {
                0 => c.crash(n),
                1 => c.pause(n),
                2 => {
                    let paused: Vec<usize> = (0..c.len())
                        .filter(|&i| c.state(i) == NodeState::Paused)
                        .collect();
                    if let Some(&p) = paused.first() {
                        c.resume(p);
                    }
                }
                3 if c.len() < 12 => {
                    c.restart(n);
                }
                4 => c.lose_next_replies(1),
                5 if rng.chance(20) => c.wipe_store(),
                6 if rng.chance(30) => {
                    let _ = c.input(n, Input::Shutdown);
                }
                _ => c.advance(rng.below(3_000)),
            },
            _ => c.settle(),
        }
    }
    quiesce(&mut c);
    c
}

/// Wakes paused nodes and lets time pass until every dead node is reaped;
/// starts a node if none is left to do the reaping.
pub fn quiesce(c: &mut Cluster) {
    for i in 0..c.len() {
        c.resume(i);
    }
    let cfg = c.config.clone();
    for _ in 0..4 {
        c.settle();
        c.advance(cfg.heartbeat_ms);
        let any_open =
            (0..c.len()).any(|i| c.state(i) == NodeState::Running && !c.tracker(i).is_closed());
        if !any_open {
            let name = format!("n{}", c.len());
            c.add_node(&name);
        }
        c.advance(cfg.ttl_ms + cfg.reap_ms);
    }
    c.settle();
}

fn pick(c: &Cluster, node: usize, rng: &mut Rng) -> Option<String> {
    let ids = c.tracker(node).local_socket_ids();
    (!ids.is_empty()).then(|| ids[rng.below(ids.len() as u64) as usize].to_owned())
}
