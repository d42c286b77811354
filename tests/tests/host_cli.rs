//! The built `rollcall` binary: `demo` on the in-memory model and on a real
//! Redis, `inspect` on a live keyspace, a broken one and an unreachable
//! Redis, `inspect --watch` until Ctrl-C, `--help` and bad flags.

use std::process::Command;
use std::time::{Duration, Instant};

use rollcall_host::{Presence, Scope};
use rollcall_tests::process::{ChildGuard, rollcall_bin, run_with_deadline};
use rollcall_tests::{RedisServer, eventually_async, unique_prefix};

fn rollcall(args: &[&str]) -> (i32, String, String) {
    let out = run_with_deadline(
        Command::new(rollcall_bin()).args(args),
        Duration::from_secs(120),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_demo_output(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "demo failed:\n{out}\n{err}");
    assert!(out.contains("before the crash"), "{out}");
    assert!(out.contains("after the reap"), "{out}");
    assert!(out.contains("reason=reaped"), "{out}");
    assert!(out.contains("invariants: ok"), "{out}");
    assert!(
        out.contains("PASS: the counts match the truth after the reap"),
        "{out}"
    );
    assert!(!out.contains("MISMATCH"), "{out}");
    // "offline events with reason "reaped": N (expected N)" with equal N.
    let line = out
        .lines()
        .find(|l| l.starts_with("offline events with reason"))
        .expect("an offline events line");
    let nums: Vec<&str> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(nums.len(), 2, "{line}");
    assert_eq!(nums[0], nums[1], "{line}");
    assert_ne!(nums[0], "0", "{line}");
}

#[test]
fn demo_runs_on_the_in_memory_model() {
    let (code, out, err) = rollcall(&["demo"]);
    check_demo_output(code, &out, &err);
    assert!(out.contains("3 nodes, 3000 sockets"), "{out}");
    assert!(out.contains("in-memory model"), "{out}");
}

#[test]
fn demo_runs_on_real_redis() {
    let redis = RedisServer::start();
    let (code, out, err) = rollcall(&["demo", "--redis", &redis.url(), "--sockets", "1500"]);
    check_demo_output(code, &out, &err);
    assert!(out.contains(&format!("Redis at {}", redis.url())), "{out}");
}

#[test]
fn help_and_bad_flags() {
    for args in [
        &["--help"][..],
        &["demo", "--help"],
        &["inspect", "--help"],
        &["help", "demo"],
    ] {
        let (code, out, _) = rollcall(args);
        assert_eq!(code, 0, "{args:?}");
        assert!(out.contains("Usage: rollcall"), "{args:?}: {out}");
    }
    let (code, _, err) = rollcall(&["demo", "--nodes", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("--nodes"), "{err}");
    let (code, _, err) = rollcall(&["demo", "--frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("--frobnicate"), "{err}");
    let (code, _, err) = rollcall(&["inspect"]);
    assert_eq!(code, 2);
    assert!(err.contains("--redis"), "{err}");
    let (code, _, err) = rollcall(&["demo", "--ttl-ms", "100", "--heartbeat-ms", "80"]);
    assert_eq!(code, 2);
    assert!(err.contains("three times"), "{err}");
}

#[test]
fn unreachable_redis_is_a_clear_error() {
    let port = rollcall_tests::redis_server::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    for cmd in ["inspect", "demo"] {
        let (code, _, err) = rollcall(&[cmd, "--redis", &url]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("unreachable"), "{cmd}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_nodes_counts_and_violations() {
    let redis = RedisServer::start();
    let prefix = unique_prefix("inspect");
    let mut nodes = Vec::new();
    for name in ["web-1", "web-2"] {
        nodes.push(
            Presence::builder()
                .redis(redis.url())
                .prefix(&prefix)
                .node_id(name)
                .start()
                .await
                .unwrap(),
        );
    }
    nodes[0].connect("s1", Some("ann"), "/").await.unwrap();
    nodes[0].join("s1", "lobby").await.unwrap();
    nodes[1].connect("s2", Some("ann"), "/").await.unwrap();
    nodes[1].connect("s3", Some("bob"), "/chat").await.unwrap();
    let reader = nodes[0].reader().clone();
    let _ = eventually_async(
        "3 sockets counted",
        Duration::from_secs(10),
        || reader.sockets_count(Scope::Global),
        |n| matches!(n, Ok(3)),
    )
    .await;

    let url = redis.url();
    let (code, out, err) = rollcall(&["inspect", "--redis", &url, "--prefix", &prefix]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("web-1/") && out.contains("web-2/"), "{out}");
    assert!(out.contains("invariants: ok"), "{out}");
    assert!(out.contains("room / lobby"), "{out}");

    let (code, out, _) = rollcall(&["inspect", "--redis", &url, "--prefix", &prefix, "--json"]);
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(json["ok"], true);
    assert_eq!(json["nodes"].as_array().unwrap().len(), 2);
    for node in json["nodes"].as_array().unwrap() {
        let ttl = node["ttl_ms"].as_i64().unwrap();
        assert!(ttl > 0 && ttl <= 10_000, "{node}");
    }
    let global = json["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"]["kind"] == "global")
        .expect("a global row");
    assert_eq!(global["sockets"], 3);
    assert_eq!(global["users"], 2);

    // Break the keyspace behind rollcall's back: a counter no node owns.
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("{{{prefix}}}:u:g"))
        .arg("ghost")
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (code, out, _) = rollcall(&["inspect", "--redis", &url, "--prefix", &prefix]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("violation"), "{out}");
    assert!(out.contains("\"ghost\""), "{out}");
    let (code, out, _) = rollcall(&["inspect", "--redis", &url, "--prefix", &prefix, "--json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["ok"], false);
    assert!(!json["violations"].as_array().unwrap().is_empty());

    for p in &nodes {
        p.shutdown().await.unwrap();
    }
}

/// The first line of each frame of `inspect --watch`.
const WATCH_HEADER: &str = "rollcall inspect --watch: frame ";

/// The frames of a running `inspect --watch`, read from its stdout. A
/// frame is complete when the header of the next one arrives.
struct Frames<'a> {
    child: &'a ChildGuard,
    header: Option<String>,
}

impl Frames<'_> {
    /// The next complete frame, its header line first.
    fn next(&mut self, deadline: Duration) -> String {
        let end = Instant::now() + deadline;
        let mut frame = self.header.take();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = tokio::task::block_in_place(|| self.child.lines.recv_timeout(left))
                .unwrap_or_else(|e| panic!("no complete frame within {deadline:?} ({e})"));
            assert!(
                !line.contains('\x1b'),
                "no escape codes to a pipe: {line:?}"
            );
            if line.starts_with(WATCH_HEADER) {
                if let Some(done) = frame.take() {
                    self.header = Some(line);
                    return done;
                }
                frame = Some(line);
            } else {
                let f = frame
                    .as_mut()
                    .unwrap_or_else(|| panic!("output before the first frame: {line:?}"));
                f.push('\n');
                f.push_str(&line);
            }
        }
    }
}

/// `frame N, ...`: the frame's number.
fn frame_no(frame: &str) -> u64 {
    frame[WATCH_HEADER.len()..]
        .split(',')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame number in {frame:?}"))
}

/// The global row's sockets and users.
fn global_row(frame: &str) -> (u64, u64) {
    let row: Vec<&str> = frame
        .lines()
        .find(|l| l.starts_with("global "))
        .unwrap_or_else(|| panic!("no global row in\n{frame}"))
        .split_whitespace()
        .collect();
    (row[1].parse().unwrap(), row[2].parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_watch_refreshes_until_ctrl_c() {
    let redis = RedisServer::start();
    let url = redis.url();
    let prefix = unique_prefix("watch");
    let node = Presence::builder()
        .redis(&url)
        .prefix(&prefix)
        .node_id("web-1")
        .start()
        .await
        .unwrap();
    node.connect("s1", Some("ann"), "/").await.unwrap();
    // Presence reads wait for this node's own writes.
    assert_eq!(node.sockets_count(Scope::Global).await.unwrap(), 1);

    let mut child = ChildGuard::spawn(
        Command::new(rollcall_bin())
            .args(["inspect", "--redis", &url, "--prefix", &prefix, "--watch"]),
    );
    let mut frames = Frames {
        child: &child,
        header: None,
    };
    let first = frames.next(Duration::from_secs(30));
    assert_eq!(frame_no(&first), 1, "{first}");
    assert!(first.contains("Ctrl-C to stop"), "{first}");
    assert!(first.contains("web-1/"), "{first}");
    assert!(first.contains("invariants: ok"), "{first}");
    assert_eq!(global_row(&first), (1, 1), "{first}");
    let first_at = Instant::now();

    // A change behind the watch shows in a later frame, without restarting it.
    node.connect("s2", Some("bob"), "/").await.unwrap();
    let mut last = frame_no(&first);
    let seen = loop {
        let frame = frames.next(Duration::from_secs(10));
        assert_eq!(frame_no(&frame), last + 1, "frames in order:\n{frame}");
        last += 1;
        if global_row(&frame) == (2, 2) {
            break frame;
        }
        assert!(last < 15, "the new socket never showed:\n{frame}");
    };
    assert!(seen.contains("invariants: ok"), "{seen}");
    // Refreshed every second: two more frames take well over a second.
    let third = frames.next(Duration::from_secs(10));
    let _ = frames.next(Duration::from_secs(10));
    assert!(frame_no(&third) >= 3, "{third}");
    assert!(
        first_at.elapsed() >= Duration::from_millis(1500),
        "{} frames in {:?}",
        frame_no(&third) + 1,
        first_at.elapsed()
    );

    // Ctrl-C: exit status 0.
    let status = child.signal(libc::SIGINT, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status:?}");
    node.shutdown().await.unwrap();
}
