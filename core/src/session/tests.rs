use super::*;
use crate::scope::Scope;

fn config() -> Config {
    Config {
        ttl_ms: 2_000,
        heartbeat_ms: 500,
        reap_ms: 500,
        ..Config::default()
    }
}

fn embedded() -> Session {
    Session::new(config(), "n1", 0, true).unwrap()
}

fn remote() -> Session {
    Session::new(config(), "n1", 0, false).unwrap()
}

fn connect(sid: &str, user: Option<&str>) -> Input {
    Input::Connect {
        sid: sid.into(),
        user: user.map(Into::into),
        namespace: "/".into(),
    }
}

fn users(s: &mut Session) -> Answer {
    let q = Query::Users {
        scope: Scope::Global,
    };
    s.read_embedded(1_000, &q).unwrap().unwrap()
}

/// Feeds, flushes when asked to, and returns what the host must do.
fn step(s: &mut Session, now: Millis, input: Input) -> Output {
    let _ = s.feed(now, input).unwrap();
    if s.output().flush {
        s.flush(now);
    }
    s.take_output()
}

fn online(out: &Output) -> Vec<&str> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::UserOnline {
                scope: Scope::Global,
                user,
                ..
            } => Some(user.as_str()),
            _ => None,
        })
        .collect()
}

/// The first call of a remote session and its token.
fn first_call(s: &mut Session) -> Op {
    let _ = s.feed(0, Input::Tick).unwrap();
    let out = s.take_output();
    assert_eq!(out.ops.len(), 1, "{out:?}");
    out.ops.into_iter().next().unwrap()
}

#[test]
fn embedded_mode_runs_calls_inside_and_reports_only_events_and_ticks() {
    let mut s = embedded();
    let first = step(&mut s, 1_000, Input::Tick);
    assert!(
        first.ops.is_empty() && first.tick.is_some() && first.ready,
        "{first:?}"
    );
    let out = step(&mut s, 1_000, connect("s1", Some("ann")));
    assert_eq!(online(&out), ["ann"]);
    assert!(out.ops.is_empty(), "{out:?}");
    // A burst: the first input asks for a flush, the others coalesce into
    // the same write and need nothing.
    let _ = s.feed(1_001, connect("s2", Some("ann"))).unwrap();
    assert!(s.take_output().flush);
    let _ = s.feed(1_001, connect("s3", Some("bob"))).unwrap();
    assert!(s.take_output().is_empty());
    s.flush(1_002);
    assert_eq!(online(&s.take_output()), ["bob"]);
    assert_eq!(users(&mut s), Answer::Count(2));
}

#[test]
fn a_read_of_the_embedded_store_runs_the_held_writes_first() {
    let mut s = embedded();
    step(&mut s, 1_000, Input::Tick);
    let _ = s.feed(1_001, connect("s1", Some("ann"))).unwrap();
    assert!(s.output().flush, "held, not run");
    assert_eq!(users(&mut s), Answer::Count(1));
    assert!(remote().read_embedded(0, &Query::Clients).is_none());
}

#[test]
fn redundant_inputs_are_ignored_with_a_warning_and_bad_ids_refused() {
    let mut s = embedded();
    step(&mut s, 1_000, Input::Tick);
    step(&mut s, 1_000, connect("s1", Some("ann")));
    // Connection state recovery sends a connect again: nothing changes.
    let fed = s.feed(1_001, connect("s1", Some("ann"))).unwrap();
    assert!(matches!(
        fed,
        Fed::Ignored(InputError::DuplicateSocket { .. })
    ));
    let out = s.take_output();
    assert_eq!(out.warnings.len(), 1, "{out:?}");
    assert!(out.warnings[0].contains("already connected"), "{out:?}");
    let gone = Input::Disconnect { sid: "zz".into() };
    assert!(matches!(s.feed(1_002, gone), Ok(Fed::Ignored(_))));
    s.take_output();
    // A malformed id is the caller's bug: an error, and no warning.
    assert!(matches!(
        s.feed(1_003, connect("", None)),
        Err(InputError::BadId(_))
    ));
    assert!(s.take_output().warnings.is_empty());
    assert_eq!(users(&mut s), Answer::Count(1));
}

#[test]
fn a_malformed_reply_is_a_store_error_event_and_an_unknown_token_refused() {
    let mut s = remote();
    let op = first_call(&mut s);
    let bad = Input::Reply {
        token: op.token,
        reply: Reply::Str("what".into()),
    };
    assert_eq!(s.feed(1, bad), Ok(Fed::Applied));
    let out = s.take_output();
    assert!(
        matches!(
            &out.events[..],
            [Event::StoreError {
                script: Script::Register,
                ..
            }]
        ),
        "{out:?}"
    );
    let stray = Input::Reply {
        token: Token(999),
        reply: Reply::Nil,
    };
    assert!(matches!(
        s.feed(2, stray),
        Err(InputError::UnknownToken { .. })
    ));
}

#[test]
fn readiness_is_told_once_when_the_first_registration_succeeds() {
    let mut s = remote();
    let op = first_call(&mut s);
    assert_eq!(op.script, Script::Register);
    let mut embedded_twin = embedded();
    let mut live = Keyspace::new();
    let reply = live.run(1, &op);
    let _ = s
        .feed(
            1,
            Input::Reply {
                token: op.token,
                reply,
            },
        )
        .unwrap();
    let out = s.take_output();
    assert!(out.ready && out.failed.is_none(), "{out:?}");
    let _ = s.feed(2, Input::Tick).unwrap();
    assert!(!s.take_output().ready, "told once");
    // The embedded store registers on the first flush.
    assert!(step(&mut embedded_twin, 1, Input::Tick).ready);
}

#[test]
fn readiness_fails_when_the_first_registration_fails() {
    let mut s = remote();
    let op = first_call(&mut s);
    let _ = s
        .feed(
            1,
            Input::Reply {
                token: op.token,
                reply: Reply::error("NOSCRIPT no such script"),
            },
        )
        .unwrap();
    let out = s.take_output();
    assert_eq!(out.failed.as_deref(), Some("NOSCRIPT no such script"));
    assert!(!out.ready);
    // Only the first registration decides: a later failure says nothing.
    let _ = s.feed(10_000, Input::Tick).unwrap();
    let again = s.take_output();
    if let Some(op) = again.ops.first() {
        let _ = s
            .feed(
                10_001,
                Input::Reply {
                    token: op.token,
                    reply: Reply::error("down"),
                },
            )
            .unwrap();
        assert!(s.take_output().failed.is_none());
    }
}

#[test]
fn a_timer_is_asked_for_only_when_an_earlier_one_is_needed() {
    let mut s = embedded();
    let first = step(&mut s, 1_000, Input::Tick).tick.unwrap();
    // Inputs before the timer fires need no new timer.
    assert_eq!(step(&mut s, 1_001, connect("s1", None)).tick, None);
    // The tick the timer asked for: it asks for the next one again.
    let next = step(&mut s, first, Input::Tick).tick.unwrap();
    assert!(next > first, "{next} > {first}");
}

#[test]
fn a_recording_replays_to_the_live_output_in_both_modes() {
    for embedded_mode in [true, false] {
        let mut s = if embedded_mode { embedded() } else { remote() };
        s.record(true).unwrap();
        assert!(s.take_output().trace, "the header is pending");
        let _ = s.feed(1_000, Input::Tick).unwrap();
        let first = s.take_output();
        if embedded_mode {
            s.flush(1_000);
        } else {
            let token = first.ops[0].token;
            let reply = Reply::Array(vec![
                Reply::Str("OK".into()),
                Reply::Str("1".into()),
                Reply::Int(0),
            ]);
            let _ = s.feed(1_001, Input::Reply { token, reply }).unwrap();
        }
        // Announced once per batch: the next output does not repeat it.
        s.clear_output();
        let _ = s.feed(1_002, connect("s1", Some("ann"))).unwrap();
        assert!(!s.output().trace);
        // Inputs the session ignores or refuses are recorded too.
        let _ = s
            .feed(1_003, Input::Disconnect { sid: "zz".into() })
            .unwrap();
        assert!(s.feed(1_003, connect("", None)).is_err());
        if embedded_mode {
            s.flush(1_004);
        }
        let trace = s.take_trace().unwrap();
        let live = s.take_trace_output().unwrap();
        assert_eq!(s.take_trace(), None);
        assert!(trace.starts_with("{\"rollcall_trace\":1,"), "{trace}");
        assert_eq!(trace.lines().count(), live.lines().count() + 1);
        assert_eq!(crate::trace::replay(&trace).unwrap(), live);
        // Lines after a take are announced again.
        s.clear_output();
        let _ = s.feed(1_005, Input::Tick).unwrap();
        assert!(s.output().trace);
        assert!(s.take_trace().unwrap().ends_with("{\"type\":\"tick\"}}\n"));
        assert_eq!(s.record(false), Err(RecordingTooLate), "too late to start");
    }
}

#[test]
fn the_output_serializes_only_what_says_something() {
    let mut s = embedded();
    let _ = s.feed(1_000, Input::Tick).unwrap();
    let json = serde_json::to_string(s.output()).unwrap();
    assert!(
        json.starts_with("{\"tick\":") && json.ends_with(",\"flush\":true}"),
        "{json}"
    );
    s.clear_output();
    assert!(s.output().is_empty());
    assert_eq!(serde_json::to_string(s.output()).unwrap(), "{}");
}
