//! Waiting for conditions: poll with a generous deadline, never a fixed sleep.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns true; panics with `what` at
/// the deadline.
pub fn eventually(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < end, "timed out after {deadline:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Async version: polls `check` every 20 ms; returns the last value it
/// produced once `done` accepts it, or panics with it at the deadline.
pub async fn eventually_async<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut check: F,
    done: impl Fn(&T) -> bool,
) -> T
where
    T: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        let v = check().await;
        if done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {deadline:?}: {what}; last seen {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
