//! The argument layouts: each script's call round-trips through its ARGV,
//! which is exactly the layout the Lua reads.

use super::*;
use crate::op::Token;
use crate::schema::Schema;
use crate::scripts::Script;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// One call of each script (two of some), with its ARGV as the Lua reads it.
fn samples() -> Vec<(Call, Vec<String>)> {
    vec![
        (
            Call::Register(Register {
                stall_ms: 500,
                node: "n".into(),
                ttl_ms: 2000,
                k: 8,
                replace: true,
                keep: None,
            }),
            strings(&["500", "n", "2000", "8", "1"]),
        ),
        (
            Call::Register(Register {
                stall_ms: 500,
                node: "n".into(),
                ttl_ms: 2000,
                k: 8,
                replace: false,
                keep: Some(7),
            }),
            strings(&["500", "n", "2000", "8", "0", "7"]),
        ),
        (
            Call::Apply(Apply {
                stall_ms: 500,
                incarnation: "n/8".into(),
                ttl_ms: 2000,
                version: Some(3),
                call_id: "12".into(),
                feed: Feed {
                    max_len: 9,
                    seen_ms: 60000,
                },
                deltas: vec![("c".into(), 1), ("u1:gann".into(), -1)],
                data: vec![("d3:anns1".into(), r#"{"a":1}"#.into())],
            }),
            strings(&[
                "500",
                "n/8",
                "2000",
                "3",
                "12",
                "9",
                "60000",
                "c",
                "1",
                "u1:gann",
                "-1",
                "d3:anns1",
                r#"{"a":1}"#,
            ]),
        ),
        (
            Call::Reassert(Reassert {
                stall_ms: 500,
                incarnation: "n/8".into(),
                ttl_ms: 2000,
                version: 4,
                call_id: "13".into(),
                max_write_fields: 100,
                feed: Feed {
                    max_len: 9,
                    seen_ms: 60000,
                },
                counts: vec![("sg".into(), 2)],
                data: vec![],
            }),
            strings(&[
                "500", "n/8", "2000", "4", "13", "100", "9", "60000", "sg", "2",
            ]),
        ),
        (
            Call::Heartbeat(Heartbeat {
                stall_ms: 500,
                incarnation: "n/8".into(),
                ttl_ms: 2000,
                version: Some(4),
                call_id: "14".into(),
            }),
            strings(&["500", "n/8", "2000", "4", "14"]),
        ),
        (
            Call::Heartbeat(Heartbeat {
                stall_ms: 500,
                incarnation: "n/7".into(),
                ttl_ms: 2000,
                version: None,
                call_id: "15".into(),
            }),
            strings(&["500", "n/7", "2000", "", "15"]),
        ),
        (
            Call::Retire(Retire {
                stall_ms: 500,
                incarnation: "n/8".into(),
            }),
            strings(&["500", "n/8"]),
        ),
        (
            Call::Reap(Reap {
                stall_ms: 500,
                incarnation: "n/8".into(),
                slice: 64,
                target: None,
                call_id: "16".into(),
                lane: Lane::Reap,
                down: crate::OfflineReason::Reaped,
                feed: Feed {
                    max_len: 0,
                    seen_ms: 1,
                },
            }),
            strings(&["500", "n/8", "64", "", "16", "r", "r", "0", "1"]),
        ),
        (
            Call::Reap(Reap {
                stall_ms: 500,
                incarnation: "n/8".into(),
                slice: 64,
                target: Some("n/7".into()),
                call_id: "17".into(),
                lane: Lane::Write,
                down: crate::OfflineReason::Shutdown,
                feed: Feed {
                    max_len: 9,
                    seen_ms: 60000,
                },
            }),
            strings(&["500", "n/8", "64", "n/7", "17", "w", "s", "9", "60000"]),
        ),
        (Call::Read(Read::Clients), strings(&["clients", ""])),
        (
            Call::Read(Read::Seen {
                user: "ann".into(),
                keep_ms: 500,
            }),
            strings(&["seen", "ann", "500"]),
        ),
        (
            Call::Read(Read::Sockets {
                scope_id: "g".into(),
            }),
            strings(&["sockets", "g"]),
        ),
        (
            Call::Read(Read::Users {
                scope_id: "n/".into(),
            }),
            strings(&["users", "n/"]),
        ),
        (
            Call::Read(Read::Members {
                scope_id: "g".into(),
                after: "ann".into(),
                limit: 100,
            }),
            strings(&["members", "g", "ann", "100"]),
        ),
        (
            Call::Read(Read::Scopes { user: "ann".into() }),
            strings(&["scopes", "ann"]),
        ),
        (
            Call::Read(Read::User { user: "ann".into() }),
            strings(&["user", "ann"]),
        ),
    ]
}

#[test]
fn every_call_encodes_to_its_lua_layout_and_decodes_back() {
    let mut scripts: Vec<Script> = Vec::new();
    for (call, argv) in samples() {
        assert_eq!(call.encode(), argv, "{call:?}");
        assert_eq!(Call::decode(call.script(), &argv), Ok(call.clone()));
        let op = call.op(Token(3), &Schema::new("p"));
        assert_eq!(
            (op.token, op.script, op.keys, op.args),
            (Token(3), call.script(), vec!["{p}:live".to_owned()], argv)
        );
        scripts.push(call.script());
    }
    scripts.dedup();
    assert_eq!(scripts, Script::ALL, "every script has a sample");
}

#[test]
fn call_ids_are_those_of_the_calls_that_keep_their_reply() {
    for (call, argv) in samples() {
        let expected = match call.script() {
            Script::Apply | Script::Reassert | Script::Heartbeat | Script::Reap => {
                Some((argv[1].as_str(), argv[4].as_str()))
            }
            Script::Register | Script::Retire | Script::Read => None,
        };
        assert_eq!(call.call_id(), expected, "{call:?}");
    }
}

#[test]
fn texts_compared_as_text_decode_to_what_matches_nothing() {
    // A version that is no canonical number matches no stored one.
    for version in ["", "007", "x", "-1"] {
        let argv = strings(&["500", "n/1", "2000", version, "1"]);
        let Ok(Call::Heartbeat(h)) = Call::decode(Script::Heartbeat, &argv) else {
            panic!("{version:?}");
        };
        assert_eq!(h.version, None, "{version:?}");
    }
    let argv = strings(&["500", "n", "2000", "1", "yes", "07"]);
    assert_eq!(
        Register::decode(&argv).map(|r| (r.replace, r.keep)),
        Ok((false, None))
    );
    assert_eq!(
        Read::decode(&strings(&["clients"])),
        Ok(Read::Clients),
        "a missing argument is empty"
    );
}

#[test]
fn malformed_arguments_name_the_script_and_the_argument() {
    let cases: [(Script, &[&str], &str); 10] = [
        (
            Script::Register,
            &[],
            "ARGV[1] (stall_ms) must be a non-negative integer",
        ),
        (Script::Register, &["5"], "ARGV[2] (node) is missing"),
        (
            Script::Apply,
            &["5", "n/1", "ttl", "0", "1"],
            "ARGV[3] (ttl_ms) must be a non-negative integer",
        ),
        (
            Script::Apply,
            &["5", "n/1", "9", "0", "1", "9", "60000", "c"],
            "field/value arguments must come in pairs",
        ),
        (
            Script::Apply,
            &["5", "n/1", "9", "0", "1", "-1", "60000"],
            "ARGV[6] (feed_max) must be a non-negative integer",
        ),
        (
            Script::Reassert,
            &["5", "n/1", "9", "0", "1", "9", "9", "60000", "c", "x"],
            "ARGV[10] must be an integer",
        ),
        (
            Script::Reap,
            &["5", "n/1", "9", "", "1", "x", "r", "9", "1"],
            "ARGV[6] (lane) must be w or r, got \"x\"",
        ),
        (
            Script::Reap,
            &["5", "n/1", "9", "", "1", "r", "+", "9", "1"],
            "ARGV[7] (offline mark) must be d, r or s, got \"+\"",
        ),
        (
            Script::Read,
            &["seen", "ann"],
            "ARGV[3] (keep_ms) must be a non-negative integer",
        ),
        (Script::Read, &["nope"], "unknown read nope"),
    ];
    for (script, argv, message) in cases {
        let e = Call::decode(script, &strings(argv)).unwrap_err();
        assert_eq!((e.script, e.message.as_str()), (script, message));
        assert_eq!(e.to_string(), format!("rollcall: {message}"));
    }
}
