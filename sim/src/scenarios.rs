//! Scripted cluster runs that the golden traces in `tests/traces/` are
//! recorded from. Each names the node whose trace is kept: the one that sees
//! the interesting part (the reaper, the zombie, ...).

use rollcall_core::config::Config;
use rollcall_core::tracker::Input;

use super::Cluster;
use super::random::Rng;

/// A recorded scenario: its name, one node's trace and that node's live
/// output.
#[derive(Debug, Clone)]
pub struct Golden {
    pub name: &'static str,
    pub trace: String,
    pub output: String,
}

fn config() -> Config {
    Config {
        ttl_ms: 2_000,
        heartbeat_ms: 500,
        reap_ms: 700,
        reap_slice: 4,
        retry_ms: 200,
        ..Config::default()
    }
}

fn cluster(config: Config, nodes: usize) -> Cluster {
    let mut c = Cluster::new(config);
    c.record = true;
    for i in 0..nodes {
        c.add_node(&format!("n{i}"));
    }
    c.settle();
    c
}

fn connect(c: &mut Cluster, node: usize, sid: &str, user: Option<&str>, ns: &str) {
    let _ = c.input(
        node,
        Input::Connect {
            sid: sid.into(),
            user: user.map(Into::into),
            namespace: ns.into(),
        },
    );
}

fn keep(name: &'static str, mut c: Cluster, node: usize) -> Golden {
    let (trace, output) = c.trace_of(node).expect("recording");
    Golden {
        name,
        trace,
        output,
    }
}

/// Users come and go on two nodes; heartbeats and reaps find nothing.
fn quiet_day() -> Golden {
    let mut c = cluster(config(), 2);
    let mut rng = Rng::new(1);
    for i in 0..60 {
        let node = (i % 2) as usize;
        connect(
            &mut c,
            node,
            &format!("s{i}"),
            Some(&format!("u{}", rng.below(8))),
            "/",
        );
        if i % 3 == 0 {
            let _ = c.input(
                node,
                Input::Join {
                    sid: format!("s{i}"),
                    room: "lobby".into(),
                },
            );
        }
        if i >= 10 && i % 4 == 0 {
            let old = i - 10;
            let _ = c.input(
                (old % 2) as usize,
                Input::Disconnect {
                    sid: format!("s{old}"),
                },
            );
        }
        c.settle();
        c.advance(250);
    }
    keep("quiet_day", c, 0)
}

/// A deploy: 300 sockets reconnect at once; they coalesce into few writes.
fn reconnect_storm() -> Golden {
    let mut c = cluster(config(), 1);
    for i in 0..300 {
        let _ = c.input(
            0,
            Input::ClientOpen {
                cid: format!("c{i}"),
            },
        );
        connect(
            &mut c,
            0,
            &format!("s{i}"),
            Some(&format!("u{}", i / 3)),
            "/",
        );
        if i % 50 == 49 {
            c.deliver();
        }
    }
    c.settle();
    c.advance(1_000);
    keep("reconnect_storm", c, 0)
}

/// A node crashes; the survivor reaps it in slices and emits "reaped".
fn crash_and_reap() -> Golden {
    let mut c = cluster(config(), 2);
    for i in 0..20 {
        connect(
            &mut c,
            1,
            &format!("s{i}"),
            Some(&format!("u{}", i % 7)),
            "/chat",
        );
    }
    connect(&mut c, 0, "a1", Some("u0"), "/chat");
    c.settle();
    c.crash(1);
    c.advance(4_000);
    keep("crash_and_reap", c, 0)
}

/// A node pauses past its TTL, is reaped, wakes, is fenced and re-asserts.
fn zombie_fenced() -> Golden {
    let mut c = cluster(config(), 2);
    for i in 0..6 {
        connect(&mut c, 1, &format!("s{i}"), Some(&format!("u{i}")), "/");
    }
    c.settle();
    c.pause(1);
    c.advance(3_500);
    c.resume(1);
    c.settle();
    c.advance(1_000);
    keep("zombie_fenced", c, 1)
}

/// Redis restarts empty: every node is fenced and re-asserts.
fn redis_restart_empty() -> Golden {
    let mut c = cluster(config(), 2);
    for i in 0..8 {
        connect(
            &mut c,
            i % 2,
            &format!("s{i}"),
            Some(&format!("u{}", i % 5)),
            "/",
        );
    }
    c.settle();
    c.advance(600);
    c.wipe_store();
    c.advance(1_500);
    keep("redis_restart_empty", c, 0)
}

/// Inputs the tracker refuses, recorded with their error lines.
fn bad_input() -> Golden {
    let mut c = cluster(config(), 1);
    connect(&mut c, 0, "s1", Some("ann"), "/");
    connect(&mut c, 0, "s1", Some("ann"), "/");
    let _ = c.input(
        0,
        Input::Disconnect {
            sid: "ghost".into(),
        },
    );
    connect(&mut c, 0, &"x".repeat(300), None, "/");
    connect(&mut c, 0, "s2", Some(""), "/");
    let _ = c.input(
        0,
        Input::Join {
            sid: "ghost".into(),
            room: "r".into(),
        },
    );
    let _ = c.input(0, Input::ClientClose { cid: "c0".into() });
    connect(&mut c, 0, "s3", Some("}{rollcall}:u:g\u{0}"), "/x:{y}");
    c.settle();
    c.advance(600);
    keep("bad_input", c, 0)
}

/// Page reloads within the grace period: no offline/online flicker.
fn grace_reloads() -> Golden {
    let mut c = cluster(
        Config {
            grace_ms: 400,
            ..config()
        },
        1,
    );
    connect(&mut c, 0, "s1", Some("ann"), "/");
    let _ = c.input(
        0,
        Input::Join {
            sid: "s1".into(),
            room: "news".into(),
        },
    );
    c.settle();
    for i in 2..6 {
        let _ = c.input(
            0,
            Input::Disconnect {
                sid: format!("s{}", i - 1),
            },
        );
        c.advance(150);
        connect(&mut c, 0, &format!("s{i}"), Some("ann"), "/");
        let _ = c.input(
            0,
            Input::Join {
                sid: format!("s{i}"),
                room: "news".into(),
            },
        );
        c.settle();
    }
    let _ = c.input(0, Input::Disconnect { sid: "s5".into() });
    c.advance(1_000);
    keep("grace_reloads", c, 0)
}

/// Every golden scenario, in a fixed order.
pub fn all() -> Vec<Golden> {
    vec![
        quiet_day(),
        reconnect_storm(),
        crash_and_reap(),
        zombie_fenced(),
        redis_restart_empty(),
        bad_input(),
        grace_reloads(),
    ]
}
