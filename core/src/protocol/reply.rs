//! The reply of every script but `read`:
//! `[status, detail, n, online*n, offline*]`, flat strings and one integer,
//! the same under RESP2 and RESP3. The Lua prelude's `reply` builds it;
//! [`ScriptReply::encode`] (the model's side) and [`ScriptReply::parse`]
//! (the tracker's and the simulator's) are its only spellings in Rust.

use std::fmt;

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
        let n = match items.get(2) {
            Some(Reply::Int(n)) if *n >= 0 && (*n as usize) <= items.len() - 3 => *n as usize,
            other => {
                return Err(shape(format!(
                    "online count (item 2) is invalid: {other:?}"
                )));
            }
        };
        let mut fields = (3..items.len())
            .map(|i| text(i, "field"))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(name) = fields.iter().find(|name| user_of(name).is_none()) {
            return Err(shape(format!("{name:?} is not a user field")));
        }
        let status = Status::parse(&status).ok_or(BadReply::Status { script, status })?;
        let offline = fields.split_off(n);
        Ok(ScriptReply {
            status,
            detail,
            online: fields,
            offline,
        })
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
            }
            .encode(),
            Reply::Array(vec![s("OK"), s(""), Reply::Int(0)])
        );
    }

    #[test]
    fn edges_are_typed_online_first() {
        let reply = ScriptReply {
            status: Status::Ok,
            detail: String::new(),
            online: vec![bob_in_room()],
            offline: vec![ann()],
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
