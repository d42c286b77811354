//! The reply of every script but `read`:
//! `[status, detail, n, online*n, offline*]`, flat strings and one integer,
//! the same under RESP2 and RESP3; a reap that finished a dead incarnation
//! and adopted transitions from its kept replies appends
//! `m, (change id, mark, field)*m` (a second integer, then triples); a call
//! that changed the data of users still online appends, after the adopted
//! block (`m` then 0 when none was adopted), `u, (user, n, json*n)*u`. The
//! Lua prelude's `reply` builds it;
//! [`ScriptReply::encode`] (the model's side) and [`ScriptReply::parse`]
//! (the tracker's and the simulator's) are its only spellings in Rust.

use std::fmt;

use crate::event::OfflineReason;
use crate::op::Reply;
use crate::protocol::Status;
use crate::schema::Field;
use crate::scope::Scope;
use crate::scripts::Script;

/// One script reply, in its wire form: the user fields as the script named
/// them (encoded [`Field::User`] names, byte for byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptReply {
    /// What the call did.
    pub status: Status,
    /// register `OK`: the k granted; reap `SLICE` and `DONE`: the target
    /// incarnation; else empty.
    pub detail: String,
    /// The user fields whose user came online in their scope, in the order
    /// the call moved them.
    pub online: Vec<String>,
    /// The user fields whose user went offline in their scope.
    pub offline: Vec<String>,
    /// Transitions a reap took over from the dead incarnation it finished
    /// (from its kept replies, whose calls that incarnation may never have
    /// handled), each with the change id it was made under; reported
    /// before this call's own.
    pub adopted: Vec<Adopted>,
    /// The users, still online, whose data the call changed, with their
    /// data as it left it; reported after the transitions. Not kept: a
    /// retried write reports them again, as they are then.
    pub updated: Vec<Updated>,
}

/// A user's data after a call changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// The user.
    pub user: String,
    /// One JSON text per socket with data, in slot order.
    pub data: Vec<String>,
}

/// One transition a reap adopted from a dead incarnation's kept reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// The change id the dead incarnation's call made it under
    /// (`<incarnation>:<call id>:<index>`, see [`change_id`]).
    pub change_id: String,
    /// Online, or offline and why.
    pub mark: Mark,
    /// The user field, as the dead incarnation's call named it.
    pub field: String,
}

/// Which way an adopted transition went, as the scripts spell it: `+`
/// online; offline `d` (disconnect), `r` (reaped), `s` (shutdown): the
/// reason the dead node would have given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The user came online.
    Online,
    /// The user went offline, for this reason.
    Offline(OfflineReason),
}

impl Mark {
    /// Every mark.
    pub const ALL: [Mark; 4] = [
        Mark::Online,
        Mark::Offline(OfflineReason::Disconnect),
        Mark::Offline(OfflineReason::Reaped),
        Mark::Offline(OfflineReason::Shutdown),
    ];

    /// The mark as the scripts spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Online => "+",
            Mark::Offline(OfflineReason::Disconnect) => "d",
            Mark::Offline(OfflineReason::Reaped) => "r",
            Mark::Offline(OfflineReason::Shutdown) => "s",
        }
    }

    /// Inverse of [`Mark::as_str`].
    pub fn parse(text: &str) -> Option<Mark> {
        Mark::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// The change id of the transition at `index` (online ones first, from 0)
/// of the reply to call `call_id` of `incarnation`: the same however many
/// times, and by whichever node, the transition is reported.
pub fn change_id(incarnation: &str, call_id: &str, index: usize) -> String {
    format!("{incarnation}:{call_id}:{index}")
}

/// A user who came online (or went offline) in a scope, cluster-wide, as a
/// reply reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEdge {
    /// The scope.
    pub scope: Scope,
    /// The user.
    pub user: String,
    /// Online (`true`) or offline.
    pub online: bool,
}

/// A transition a reply reports, typed, with its change id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The scope, the user and the way.
    pub edge: UserEdge,
    /// Its change id (see [`change_id`]).
    pub change_id: String,
    /// For an adopted offline transition, the reason it was made with;
    /// `None` for this call's own (the caller knows why it called).
    pub reason: Option<OfflineReason>,
}

/// A reply that is not a [`ScriptReply`]: it names the script it answers
/// and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadReply {
    /// Not the shape of a script reply (or a field that is no user's).
    Shape {
        /// The script the reply answers.
        script: Script,
        /// What was wrong, with the offending item.
        reason: String,
    },
    /// The right shape, but a status no script replies.
    Status {
        /// The script the reply answers.
        script: Script,
        /// The status text received.
        status: String,
    },
}

impl BadReply {
    /// The script the reply answers.
    pub fn script(&self) -> Script {
        match self {
            BadReply::Shape { script, .. } | BadReply::Status { script, .. } => *script,
        }
    }

    /// What was wrong, without the script's name.
    pub fn reason(&self) -> String {
        match self {
            BadReply::Shape { reason, .. } => reason.clone(),
            BadReply::Status { status, .. } => unexpected_status(status),
        }
    }
}

/// The reason given for a status that does not fit (unknown, or not one
/// the call may reply).
pub fn unexpected_status(status: &str) -> String {
    format!("unexpected status {status:?}")
}

impl fmt::Display for BadReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed reply to the {} script: {}",
            self.script().name(),
            self.reason()
        )
    }
}

impl std::error::Error for BadReply {}

impl ScriptReply {
    /// The reply as Redis returns it.
    pub fn encode(&self) -> Reply {
        let mut out = Vec::with_capacity(3 + self.online.len() + self.offline.len());
        out.extend([
            Reply::Str(self.status.as_str().to_owned()),
            Reply::Str(self.detail.clone()),
            Reply::Int(self.online.len() as i64),
        ]);
        out.extend(self.online.iter().cloned().map(Reply::Str));
        out.extend(self.offline.iter().cloned().map(Reply::Str));
        if !self.adopted.is_empty() || !self.updated.is_empty() {
            out.push(Reply::Int(self.adopted.len() as i64));
            for a in &self.adopted {
                out.extend([
                    Reply::Str(a.change_id.clone()),
                    Reply::Str(a.mark.as_str().to_owned()),
                    Reply::Str(a.field.clone()),
                ]);
            }
        }
        if !self.updated.is_empty() {
            out.push(Reply::Int(self.updated.len() as i64));
            for u in &self.updated {
                out.push(Reply::Str(u.user.clone()));
                out.push(Reply::Int(u.data.len() as i64));
                out.extend(u.data.iter().cloned().map(Reply::Str));
            }
        }
        Reply::Array(out)
    }

    /// Parses a reply to `script`, checked in this order: the shape, then
    /// that every field is a user field, then the status. A reply that
    /// fails is a [`BadReply`] (an error reply too: hosts handle those
    /// before).
    pub fn parse(script: Script, reply: &Reply) -> Result<ScriptReply, BadReply> {
        let shape = |reason: String| BadReply::Shape { script, reason };
        let Reply::Array(items) = reply else {
            return Err(shape(format!("expected an array, got {reply:?}")));
        };
        let text = |i: usize, what: &str| match items.get(i) {
            Some(Reply::Str(s)) => Ok(s.clone()),
            other => Err(shape(format!(
                "{what} (item {i}) should be a string, got {other:?}"
            ))),
        };
        let status = text(0, "status")?;
        let detail = text(1, "detail")?;
        // This call's own fields run up to the adopted block's count (the
        // only other integer), if any.
        let own_end = (3..items.len())
            .find(|&i| matches!(items[i], Reply::Int(_)))
            .unwrap_or(items.len());
        let n = match items.get(2) {
            Some(Reply::Int(n)) if *n >= 0 && (*n as usize) <= own_end.saturating_sub(3) => {
                *n as usize
            }
            other => {
                return Err(shape(format!(
                    "online count (item 2) is invalid: {other:?}"
                )));
            }
        };
        let mut fields = (3..own_end)
            .map(|i| text(i, "field"))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(name) = fields.iter().find(|name| user_of(name).is_none()) {
            return Err(shape(format!("{name:?} is not a user field")));
        }
        let mut adopted = Vec::new();
        let mut updated = Vec::new();
        if own_end < items.len() {
            let int = |i: usize, what: &str| match items.get(i) {
                Some(Reply::Int(n)) if *n >= 0 => Ok(*n as usize),
                other => Err(shape(format!("{what} (item {i}) is invalid: {other:?}"))),
            };
            let m = int(own_end, "adopted count")?;
            let end = own_end + 1 + 3 * m;
            if end > items.len() || (m == 0 && end == items.len()) {
                return Err(shape(format!(
                    "adopted count (item {own_end}) is invalid: {m}"
                )));
            }
            for k in 0..m {
                let at = own_end + 1 + 3 * k;
                let change_id = text(at, "change id")?;
                let mark = text(at + 1, "mark")?;
                let field = text(at + 2, "field")?;
                let Some(mark) = Mark::parse(&mark) else {
                    return Err(shape(format!("{mark:?} (item {}) is not a mark", at + 1)));
                };
                if user_of(&field).is_none() {
                    return Err(shape(format!("{field:?} is not a user field")));
                }
                adopted.push(Adopted {
                    change_id,
                    mark,
                    field,
                });
            }
            if end < items.len() {
                let u = int(end, "updated count")?;
                let mut at = end + 1;
                for _ in 0..u {
                    let user = text(at, "user")?;
                    let n = int(at + 1, "data count")?;
                    let data = (at + 2..at + 2 + n)
                        .map(|i| text(i, "data"))
                        .collect::<Result<Vec<_>, _>>()?;
                    updated.push(Updated { user, data });
                    at += 2 + n;
                }
                if u == 0 || at != items.len() {
                    return Err(shape(format!(
                        "updated block (item {end}) is invalid: {} items after it",
                        items.len() - end - 1
                    )));
                }
            }
        }
        let status = Status::parse(&status).ok_or(BadReply::Status { script, status })?;
        let offline = fields.split_off(n);
        Ok(ScriptReply {
            status,
            detail,
            online: fields,
            offline,
            adopted,
            updated,
        })
    }

    /// The users whose data the call changed, each with its change id:
    /// after the call's own transitions, `<base>:<#online + #offline + k>`.
    pub fn updates<'a>(&'a self, base: &'a str) -> impl Iterator<Item = (&'a Updated, String)> {
        let first = self.online.len() + self.offline.len();
        self.updated
            .iter()
            .enumerate()
            .map(move |(k, u)| (u, format!("{base}:{}", first + k)))
    }

    /// The user transitions the reply reports, online ones first. Fields
    /// that are no user's are skipped ([`ScriptReply::parse`] refuses them).
    pub fn edges(&self) -> Vec<UserEdge> {
        let online = self.online.iter().map(|name| (name, true));
        let offline = self.offline.iter().map(|name| (name, false));
        online
            .chain(offline)
            .filter_map(|(name, online)| {
                let (scope, user) = user_of(name)?;
                Some(UserEdge {
                    scope,
                    user,
                    online,
                })
            })
            .collect()
    }

    /// Every transition the reply reports, in the order to report them:
    /// the adopted ones first (as made), then this call's own (online ones
    /// first), whose change ids are made of `base` (`<incarnation>:<call
    /// id>` of the call, see [`change_base`]) and their index.
    pub fn changes(&self, base: &str) -> Vec<Change> {
        let adopted = self.adopted.iter().filter_map(|a| {
            let (scope, user) = user_of(&a.field)?;
            let (online, reason) = match a.mark {
                Mark::Online => (true, None),
                Mark::Offline(r) => (false, Some(r)),
            };
            Some(Change {
                edge: UserEdge {
                    scope,
                    user,
                    online,
                },
                change_id: a.change_id.clone(),
                reason,
            })
        });
        let own = self
            .edges()
            .into_iter()
            .enumerate()
            .map(|(i, edge)| Change {
                edge,
                change_id: format!("{base}:{i}"),
                reason: None,
            });
        adopted.chain(own).collect()
    }
}

/// The `<incarnation>:<call id>` that the change ids of a call's own
/// transitions start with, for a call that carries a call id (every such
/// script has the incarnation at `ARGV[2]` and the call id at `ARGV[5]`).
pub fn change_base(script: Script, args: &[String]) -> Option<String> {
    match script {
        Script::Apply | Script::Reassert | Script::Heartbeat | Script::Reap => {
            Some(format!("{}:{}", args.get(1)?, args.get(4)?))
        }
        Script::Register | Script::Retire | Script::Read => None,
    }
}

/// The scope and user of a user field.
fn user_of(name: &str) -> Option<(Scope, String)> {
    match Field::decode(name)? {
        Field::User(scope, user) => Some((scope, user)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> String {
        Field::User(Scope::Global, "ann".into()).encode()
    }

    fn bob_in_room() -> String {
        Field::User(Scope::room("/", "r"), "bob".into()).encode()
    }

    #[test]
    fn every_status_and_shape_round_trips() {
        for status in Status::ALL {
            for (online, offline) in [
                (vec![], vec![]),
                (vec![ann()], vec![]),
                (vec![], vec![bob_in_room()]),
                (vec![ann(), bob_in_room()], vec![bob_in_room()]),
            ] {
                let reply = ScriptReply {
                    status,
                    detail: "n/7".into(),
                    online,
                    offline,
                    adopted: vec![],
                    updated: vec![],
                };
                let wire = reply.encode();
                assert_eq!(ScriptReply::parse(Script::Reap, &wire), Ok(reply));
            }
        }
    }

    #[test]
    fn the_wire_form_is_the_preludes() {
        let reply = ScriptReply {
            status: Status::Slice,
            detail: "n/1".into(),
            online: vec![ann()],
            offline: vec![bob_in_room()],
            adopted: vec![],
            updated: vec![],
        };
        let s = |t: &str| Reply::Str(t.to_owned());
        assert_eq!(
            reply.encode(),
            Reply::Array(vec![
                s("SLICE"),
                s("n/1"),
                Reply::Int(1),
                s("u1:gann"),
                s(&bob_in_room())
            ])
        );
        assert_eq!(
            ScriptReply {
                status: Status::Ok,
                detail: String::new(),
                online: vec![],
                offline: vec![],
                adopted: vec![],
                updated: vec![],
            }
            .encode(),
            Reply::Array(vec![s("OK"), s(""), Reply::Int(0)])
        );
    }

    #[test]
    fn data_updates_follow_the_adopted_block_and_take_the_next_change_ids() {
        let reply = ScriptReply {
            status: Status::Ok,
            detail: String::new(),
            online: vec![ann()],
            offline: vec![],
            adopted: vec![],
            updated: vec![
                Updated {
                    user: "ann".into(),
                    data: vec![r#"{"a":1}"#.into(), "{}".into()],
                },
                Updated {
                    user: "bob".into(),
                    data: vec![],
                },
            ],
        };
        let s = |t: &str| Reply::Str(t.to_owned());
        let wire = reply.encode();
        assert_eq!(
            wire,
            Reply::Array(vec![
                s("OK"),
                s(""),
                Reply::Int(1),
                s("u1:gann"),
                Reply::Int(0),
                Reply::Int(2),
                s("ann"),
                Reply::Int(2),
                s(r#"{"a":1}"#),
                s("{}"),
                s("bob"),
                Reply::Int(0),
            ])
        );
        assert_eq!(ScriptReply::parse(Script::Apply, &wire), Ok(reply.clone()));
        let ids: Vec<String> = reply.updates("n/1:4").map(|(_, id)| id).collect();
        assert_eq!(ids, ["n/1:4:1", "n/1:4:2"]);
        let head = || vec![s("OK"), s(""), Reply::Int(0)];
        for tail in [
            // An adopted count of 0 with nothing after it.
            vec![Reply::Int(0)],
            // Fewer data items than counted, or more.
            vec![
                Reply::Int(0),
                Reply::Int(1),
                s("ann"),
                Reply::Int(2),
                s("{}"),
            ],
            vec![
                Reply::Int(0),
                Reply::Int(1),
                s("ann"),
                Reply::Int(0),
                s("{}"),
            ],
            // An updated count of 0.
            vec![Reply::Int(0), Reply::Int(0)],
        ] {
            let mut bad = head();
            bad.extend(tail);
            assert!(
                ScriptReply::parse(Script::Apply, &Reply::Array(bad.clone())).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn adopted_transitions_follow_a_second_integer_and_come_first() {
        let reply = ScriptReply {
            status: Status::Done,
            detail: "d/1".into(),
            online: vec![],
            offline: vec![ann()],
            adopted: vec![
                Adopted {
                    change_id: "d/1:7:0".into(),
                    mark: Mark::Online,
                    field: ann(),
                },
                Adopted {
                    change_id: "d/1:7:1".into(),
                    mark: Mark::Offline(OfflineReason::Shutdown),
                    field: bob_in_room(),
                },
            ],
            updated: vec![],
        };
        let s = |t: &str| Reply::Str(t.to_owned());
        let wire = reply.encode();
        assert_eq!(
            wire,
            Reply::Array(vec![
                s("DONE"),
                s("d/1"),
                Reply::Int(0),
                s("u1:gann"),
                Reply::Int(2),
                s("d/1:7:0"),
                s("+"),
                s("u1:gann"),
                s("d/1:7:1"),
                s("s"),
                s(&bob_in_room()),
            ])
        );
        assert_eq!(ScriptReply::parse(Script::Reap, &wire), Ok(reply.clone()));
        let ids: Vec<String> = reply
            .changes("r/2:9")
            .into_iter()
            .map(|c| c.change_id)
            .collect();
        assert_eq!(ids, ["d/1:7:0", "d/1:7:1", "r/2:9:0"]);
        for bad in [
            vec![
                s("DONE"),
                s(""),
                Reply::Int(0),
                Reply::Int(1),
                s("x"),
                s("+"),
            ],
            vec![
                s("DONE"),
                s(""),
                Reply::Int(0),
                Reply::Int(1),
                s("x"),
                s("?"),
                s("u1:gann"),
            ],
            vec![
                s("DONE"),
                s(""),
                Reply::Int(0),
                Reply::Int(1),
                s("x"),
                s("+"),
                s("c"),
            ],
            vec![
                s("DONE"),
                s(""),
                Reply::Int(1),
                Reply::Int(1),
                s("x"),
                s("+"),
                s("u1:gann"),
            ],
        ] {
            assert!(
                ScriptReply::parse(Script::Reap, &Reply::Array(bad.clone())).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn edges_are_typed_online_first() {
        let reply = ScriptReply {
            status: Status::Ok,
            detail: String::new(),
            online: vec![bob_in_room()],
            offline: vec![ann()],
            adopted: vec![],
            updated: vec![],
        };
        assert_eq!(
            reply.edges(),
            vec![
                UserEdge {
                    scope: Scope::room("/", "r"),
                    user: "bob".into(),
                    online: true
                },
                UserEdge {
                    scope: Scope::Global,
                    user: "ann".into(),
                    online: false
                },
            ]
        );
    }

    #[test]
    fn malformed_replies_name_the_script_and_the_problem() {
        let s = |t: &str| Reply::Str(t.to_owned());
        let cases = [
            (Reply::Int(3), "apply", "expected an array, got Int(3)"),
            (
                Reply::Array(vec![Reply::Int(1)]),
                "apply",
                "status (item 0) should be a string, got Some(Int(1))",
            ),
            (
                Reply::Array(vec![s("OK")]),
                "apply",
                "detail (item 1) should be a string, got None",
            ),
            (
                Reply::Array(vec![s("OK"), s(""), Reply::Int(2), s("u1:gann")]),
                "apply",
                "online count (item 2) is invalid: Some(Int(2))",
            ),
            (
                Reply::Array(vec![s("OK"), s(""), Reply::Int(-1)]),
                "apply",
                "online count (item 2) is invalid: Some(Int(-1))",
            ),
            (
                Reply::Array(vec![s("OK"), s(""), Reply::Int(0), Reply::Nil]),
                "apply",
                "field (item 3) should be a string, got Some(Nil)",
            ),
            (
                Reply::Array(vec![s("OK"), s(""), Reply::Int(1), s("c")]),
                "apply",
                "\"c\" is not a user field",
            ),
            (
                Reply::Array(vec![s("YES"), s(""), Reply::Int(0)]),
                "apply",
                "unexpected status \"YES\"",
            ),
        ];
        for (reply, script, reason) in cases {
            let e = ScriptReply::parse(Script::Apply, &reply).unwrap_err();
            assert_eq!(e.script(), Script::Apply);
            assert_eq!(e.reason(), reason);
            assert_eq!(
                e.to_string(),
                format!("malformed reply to the {script} script: {reason}")
            );
        }
    }

    #[test]
    fn the_shape_is_checked_before_the_status() {
        let s = |t: &str| Reply::Str(t.to_owned());
        let reply = Reply::Array(vec![s("YES"), s(""), Reply::Int(0), s("c")]);
        assert!(matches!(
            ScriptReply::parse(Script::Reap, &reply),
            Err(BadReply::Shape {
                script: Script::Reap,
                ..
            })
        ));
    }
}
