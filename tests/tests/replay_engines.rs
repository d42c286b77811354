//! One trace, every engine, byte-identical output: the golden traces of
//! `tests/traces/`, a seeded corpus of generated traces, and traces
//! recorded from live host nodes on a real redis-server, replayed natively
//! and with the npm package's own `.wasm` under wasmtime. (The Node engine,
//! `npx rollcall-replay`, is held to the same golden files by tests/node.)

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use rollcall_cli::replay::{Native, Wasm, replay};
use rollcall_sim::random::{Workload, run};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The replay module npm ships, as `npm --prefix pkg run build` leaves it.
fn wasm_path() -> PathBuf {
    let path = root().join("pkg/rollcall_tools_bg.wasm");
    assert!(
        path.is_file(),
        "{} is missing: build the package first (npm --prefix pkg run build; tests/run-all.sh does)",
        path.display()
    );
    path
}

/// Compiling the module takes a while: once per test binary, then a fresh
/// instance per trace (`Wasm::load` instantiates).
fn wasm() -> Wasm {
    static BYTES: OnceLock<PathBuf> = OnceLock::new();
    Wasm::load(BYTES.get_or_init(wasm_path)).expect("the shipped .wasm loads under wasmtime")
}

fn both(trace: &str) -> (Result<String, String>, Result<String, String>) {
    let native = replay(&mut Native::default(), trace);
    let wasm = replay(&mut wasm(), trace);
    (native, wasm)
}

#[test]
fn golden_traces_give_their_output_on_every_engine() {
    let dir = root().join("tests/traces");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".trace.jsonl") else {
            continue;
        };
        let trace = fs::read_to_string(&path).unwrap();
        let expected = fs::read_to_string(dir.join(format!("{stem}.out.jsonl"))).unwrap();
        let (native, wasm) = both(&trace);
        assert!(
            native.as_deref() == Ok(expected.as_str()),
            "{stem}: native differs"
        );
        assert!(
            wasm.as_deref() == Ok(expected.as_str()),
            "{stem}: wasm differs"
        );
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} golden traces");
}

#[test]
fn malformed_traces_fail_alike_on_every_engine() {
    let dir = root().join("tests/traces/malformed");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let trace = fs::read_to_string(&path).unwrap();
        let want = fs::read_to_string(path.with_extension("err")).unwrap();
        let (native, wasm) = both(&trace);
        assert_eq!(
            native,
            Err(want.trim_end().to_owned()),
            "{}",
            path.display()
        );
        assert_eq!(wasm, native, "{}", path.display());
        checked += 1;
    }
    // Every committed malformed trace (five), not a directory that went
    // missing or empty.
    assert!(checked >= 5, "only {checked} malformed traces found");
}

/// How many generated traces and how long, from the environment for a
/// longer local run; the default is what CI runs.
fn corpus_size() -> (u64, u64) {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    (
        var("ROLLCALL_CORPUS_SEEDS", 400),
        var("ROLLCALL_CORPUS_FIRST_SEED", 0),
    )
}

#[test]
fn a_generated_corpus_replays_identically_natively_and_in_wasm() {
    let (seeds, first) = corpus_size();
    let mut traces = 0;
    let mut longest = 0;
    let mut wasm = wasm();
    for seed in first..first + seeds {
        // Mostly short runs with faults; every 50th a long one without
        // (faults end nodes early), for traces of up to ~10,000 steps.
        let long = seed % 50 == 7;
        let workload = Workload {
            nodes: if long { 2 } else { 3 },
            steps: if long {
                9_000
            } else {
                60 + (seed % 7) as usize * 20
            },
            users: 20,
            faults: !long,
        };
        let mut c = run(seed, &workload, true);
        for node in 0..c.len() {
            let (trace, live) = c.trace_of(node).unwrap();
            longest = longest.max(trace.lines().count());
            let native = replay(&mut Native::default(), &trace);
            assert!(
                native.as_deref() == Ok(live.as_str()),
                "seed {seed} node {node}: native replay differs from the live run"
            );
            // One wasm instance replays many traces: open resets it.
            let in_wasm = replay(&mut wasm, &trace);
            assert!(
                in_wasm == native,
                "seed {seed} node {node}: wasm differs from native"
            );
            traces += 1;
        }
    }
    eprintln!("corpus: {traces} traces from {seeds} seeds, longest {longest} lines");
    assert!(traces >= 1_000, "only {traces} traces");
    assert!(longest >= 5_000, "longest trace only {longest} lines");
}

/// A live host node on a real redis-server records its trace and what it
/// did; both engines replay the trace to exactly that.
#[test]
fn traces_recorded_live_from_the_host_replay_to_what_happened() {
    use rollcall_host::{Presence, Scope};
    use rollcall_tests::redis_server::RedisServer;

    let redis = RedisServer::start();
    let dir = tempdir();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cfg = |b: rollcall_host::Builder| {
            b.redis(redis.url())
                .ttl(Duration::from_millis(1_000))
                .heartbeat(Duration::from_millis(250))
                .reap_interval(Duration::from_millis(250))
        };
        let a = cfg(Presence::builder().node_id("a"))
            .trace(dir.join("a.trace.jsonl"))
            .trace_output(dir.join("a.out.jsonl"))
            .start()
            .await
            .unwrap();
        let b = cfg(Presence::builder().node_id("b")).start().await.unwrap();
        for i in 0..50 {
            let user = format!("u{}", i % 9);
            a.connect(&format!("a{i}"), Some(&user), "/").await.unwrap();
            b.connect(&format!("b{i}"), Some(&user), "/chat")
                .await
                .unwrap();
            if i % 4 == 0 {
                a.join(&format!("a{i}"), "room").await.unwrap();
                a.disconnect(&format!("a{}", i / 2)).await.unwrap();
            }
        }
        // b dies; a reaps it.
        b.kill();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while a.users_count(Scope::namespace("/chat")).await.unwrap() != 0 {
            assert!(tokio::time::Instant::now() < deadline, "b was never reaped");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        a.shutdown().await.unwrap();
    });
    let trace = fs::read_to_string(dir.join("a.trace.jsonl")).unwrap();
    let live = fs::read_to_string(dir.join("a.out.jsonl")).unwrap();
    assert!(
        live.contains("\"node_reaped\""),
        "the recorded run includes the reap"
    );
    assert!(
        live.contains("\"closed\""),
        "the recorded run includes the shutdown"
    );
    let (native, wasm) = both(&trace);
    assert!(
        native.as_deref() == Ok(live.as_str()),
        "native replay differs from the live run"
    );
    assert!(
        wasm.as_deref() == Ok(live.as_str()),
        "wasm replay differs from the live run"
    );
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollcall-replay-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir
}
