//! The golden traces of `tests/traces/`: each is recorded from a scripted
//! scenario (`rollcall_sim::scenarios`) and replays natively to its committed output.
//! Each also replays through a host session to its committed
//! `.session.jsonl` (what every host does: the input policy, readiness, the
//! timer). The wasm and Node engines are held to the same files elsewhere.
//! `ROLLCALL_BLESS=1 cargo test -p rollcall-core --test golden_traces`
//! rewrites them after an intended change.

use std::fs;
use std::path::PathBuf;

use rollcall_core::session;
use rollcall_core::trace::replay;
use rollcall_sim::scenarios;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/traces")
}

#[test]
fn golden_traces_replay_to_their_committed_output() {
    let bless = std::env::var_os("ROLLCALL_BLESS").is_some();
    let dir = dir();
    for golden in scenarios::all() {
        let trace_path = dir.join(format!("{}.trace.jsonl", golden.name));
        let out_path = dir.join(format!("{}.out.jsonl", golden.name));
        if bless {
            fs::create_dir_all(&dir).unwrap();
            fs::write(&trace_path, &golden.trace).unwrap();
            fs::write(&out_path, &golden.output).unwrap();
        }
        let trace = fs::read_to_string(&trace_path)
            .unwrap_or_else(|e| panic!("{}: {e} (bless to create)", trace_path.display()));
        let expected = fs::read_to_string(&out_path).unwrap();
        assert!(
            trace == golden.trace,
            "{}: the scenario no longer records this trace",
            golden.name
        );
        assert!(
            expected == golden.output,
            "{}: the live output changed",
            golden.name
        );
        let replayed = replay(&trace).unwrap();
        assert!(
            replayed == expected,
            "{}: native replay differs from the golden output",
            golden.name
        );
        let session_path = dir.join(format!("{}.session.jsonl", golden.name));
        let through_session = session::replay::replay(&trace).unwrap();
        if bless {
            fs::write(&session_path, &through_session).unwrap();
        }
        let expected = fs::read_to_string(&session_path)
            .unwrap_or_else(|e| panic!("{}: {e} (bless to create)", session_path.display()));
        assert!(
            through_session == expected,
            "{}: the session's replay differs from its golden output",
            golden.name
        );
        assert_eq!(through_session.lines().count(), trace.lines().count() - 1);
    }
}

#[test]
fn malformed_traces_fail_with_line_and_field() {
    let dir = dir().join("malformed");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let trace = fs::read_to_string(&path).unwrap();
        let want = fs::read_to_string(path.with_extension("err")).unwrap();
        let got = replay(&trace)
            .expect_err("a malformed trace must not replay")
            .to_string();
        assert_eq!(got.trim(), want.trim(), "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} malformed traces found");
}
