//! Seeded random cluster runs with faults: the invariants hold once quiet,
//! and every node's recorded trace replays natively to exactly the output
//! it produced live. A failure prints its seed; rerun one seed with
//! `ROLLCALL_SEED=<seed> cargo test -p rollcall-core --test random_runs`.

use rollcall_core::trace::replay;
use rollcall_sim::random::{Workload, run};

fn seeds() -> Vec<u64> {
    match std::env::var("ROLLCALL_SEED") {
        Ok(s) => vec![s.parse().expect("ROLLCALL_SEED is a number")],
        Err(_) => (0..200).collect(),
    }
}

#[test]
fn random_runs_converge_and_replay_to_their_live_output() {
    let workload = Workload {
        nodes: 3,
        steps: 400,
        users: 12,
        faults: true,
    };
    for seed in seeds() {
        let mut c = run(seed, &workload, true);
        let violations = c.violations();
        assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
        for node in 0..c.len() {
            let (trace, live) = c.trace_of(node).expect("recording");
            let replayed =
                replay(&trace).unwrap_or_else(|e| panic!("seed {seed} node {node}: {e}"));
            assert!(
                replayed == live,
                "seed {seed} node {node}: replay differs from the live run"
            );
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let workload = Workload {
        nodes: 2,
        steps: 300,
        users: 5,
        faults: true,
    };
    let mut a = run(42, &workload, true);
    let mut b = run(42, &workload, true);
    assert_eq!(a.store.dump(), b.store.dump());
    assert_eq!(a.trace_of(0), b.trace_of(0));
}
