//! Issue 11, item 4: a process paused past its TTL and reaped, replaced by a
//! new process with the same node id, then resumed. Each process draws its
//! own nonce, so the resumed one's incarnation id is not its successor's:
//! it is fenced, registers again beside it, and every user is counted.

use rollcall_core::{Answer, Config, Input, Query, Scope};
use rollcall_sim::Cluster;

fn connect(c: &mut Cluster, node: usize, sid: &str, user: &str) {
    c.input(
        node,
        Input::Connect {
            sid: sid.into(),
            user: Some(user.into()),
            namespace: "/".into(),
        },
    )
    .unwrap();
}

fn users(c: &mut Cluster) -> Answer {
    c.query(&Query::Users {
        scope: Scope::Global,
    })
}

fn sockets(c: &mut Cluster) -> Answer {
    c.query(&Query::Sockets {
        scope: Scope::Global,
    })
}

/// Runs the scenario; `successor_first` also lets the successor register
/// before the paused one is reaped (the restart fences it instead).
fn paused_reaped_replaced_resumed(successor_first: bool) {
    let mut c = Cluster::new(Config::default());
    let old = c.add_node("web-1");
    let reaper = c.add_node("web-3");
    c.settle();
    for i in 0..10 {
        connect(&mut c, old, &format!("old-{i}"), &format!("old-user-{i}"));
    }
    for i in 0..5 {
        connect(&mut c, reaper, &format!("r-{i}"), &format!("r-user-{i}"));
    }
    c.settle();
    assert_eq!(users(&mut c), Answer::Count(15));
    let first_incarnation = c.tracker(old).incarnation().unwrap();

    c.pause(old);
    let new = if successor_first {
        let new = c.add_node("web-1");
        c.settle();
        new
    } else {
        c.advance(c.config.ttl_ms + 2 * c.config.reap_ms);
        // Reaped, and the reap forgot the node id.
        assert_eq!(users(&mut c), Answer::Count(5));
        let new = c.add_node("web-1");
        c.settle();
        new
    };
    assert_ne!(c.tracker(new).incarnation(), Some(first_incarnation));
    for i in 0..10 {
        connect(&mut c, new, &format!("new-{i}"), &format!("new-user-{i}"));
    }
    c.settle();
    c.advance(c.config.ttl_ms + 2 * c.config.reap_ms);

    // The paused process wakes: it still holds its 10 sockets.
    c.resume(old);
    c.settle();
    c.advance(c.config.ttl_ms + 4 * c.config.reap_ms);
    let truth = c.truth();
    assert_eq!(truth.get("sg").copied(), Some(25), "{truth:?}");
    assert_eq!(users(&mut c), Answer::Count(25));
    assert_eq!(sockets(&mut c), Answer::Count(25));
    assert!(c.tracker(new).incarnation().is_some());
    assert!(c.tracker(old).incarnation().is_some());
    assert_ne!(c.tracker(new).incarnation(), c.tracker(old).incarnation());
    assert_eq!(c.violations(), Vec::<String>::new());
}

#[test]
fn a_resumed_process_does_not_write_into_its_successors_share() {
    paused_reaped_replaced_resumed(false);
}

#[test]
fn a_restart_fences_the_paused_predecessor_at_once() {
    paused_reaped_replaced_resumed(true);
}

#[test]
fn nonce_is_bounded() {
    use rollcall_core::Tracker;
    assert!(Tracker::with_nonce(Config::default(), "n", Tracker::MAX_NONCE).is_ok());
    let err = Tracker::with_nonce(Config::default(), "n", Tracker::MAX_NONCE + 1).unwrap_err();
    assert_eq!(err.option, "nonce");
    assert!(err.out_of_range);
}
