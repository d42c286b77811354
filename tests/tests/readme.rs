//! The README's Rust example is `host/examples/readme.rs` byte for byte, and
//! it runs as written against a real redis-server.

use std::process::Command;
use std::time::Duration;

use rollcall_tests::RedisServer;
use rollcall_tests::process::{host_example, run_with_deadline};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

#[test]
fn the_readme_rust_block_is_the_example_file() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let start = readme
        .find("```rust\n")
        .expect("README.md has a rust block")
        + "```rust\n".len();
    let end = start + readme[start..].find("```\n").expect("the rust block ends");
    let example = std::fs::read_to_string(format!("{ROOT}/host/examples/readme.rs")).unwrap();
    // The file's first line says where it comes from; the rest is the block.
    let (first, body) = example.split_once('\n').unwrap();
    assert!(first.starts_with("// The README's Rust example"), "{first}");
    assert_eq!(
        &readme[start..end],
        body,
        "README.md's rust block and host/examples/readme.rs differ"
    );
}

#[test]
fn the_readme_rust_example_runs_against_redis() {
    let redis = RedisServer::start();
    let out = run_with_deadline(
        Command::new(host_example("readme")).env("REDIS_URL", redis.url()),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "1 users in the lobby\nonline alice\n");
    // It shut down: nothing of it is left in Redis but the change feed and
    // last seen (they expire on their own).
    assert_eq!(redis.command(&["DBSIZE"]), Some(redis::Value::Int(2)));
    let schema = rollcall_core::Schema::new("rollcall");
    for key in [schema.feed(), schema.seen()] {
        assert_eq!(
            redis.command(&["EXISTS", &key]),
            Some(redis::Value::Int(1)),
            "{key}"
        );
    }
}
