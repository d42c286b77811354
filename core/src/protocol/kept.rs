//! The text of a kept reply (`o:<lane>:<incarnation>`): the reply of a
//! lane's last call with a call id, for a retry whose reply was lost. The
//! prelude's `pack` and `unpack_kept` make and read it: a list of strings,
//! each `<byte length>:<bytes>`, namely the call id, the status, the
//! detail, the online count, the adopted count, then the online and
//! offline fields, then the adopted triples (change id, mark, field).

use crate::protocol::reply::{Adopted, Mark};
use crate::protocol::{ScriptReply, Status};

impl ScriptReply {
    /// The kept text of this reply to call `call_id`.
    pub fn pack_kept(&self, call_id: &str) -> String {
        let n = self.online.len().to_string();
        let m = self.adopted.len().to_string();
        let items = [call_id, self.status.as_str(), &self.detail, &n, &m]
            .into_iter()
            .chain(self.online.iter().map(String::as_str))
            .chain(self.offline.iter().map(String::as_str))
            .chain(
                self.adopted
                    .iter()
                    .flat_map(|a| [a.change_id.as_str(), a.mark.as_str(), a.field.as_str()]),
            );
        let mut out = String::new();
        for item in items {
            out.push_str(&item.len().to_string());
            out.push(':');
            out.push_str(item);
        }
        out
    }

    /// Inverse of [`ScriptReply::pack_kept`]: the call id and the reply.
    /// `None` for a text that `pack_kept` did not make. A text of a version
    /// before adoption (no adopted count) is read too, as adopting nothing.
    pub fn unpack_kept(text: &str) -> Option<(String, ScriptReply)> {
        let mut items = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let colon = rest.find(':')?;
            let n: usize = rest[..colon].parse().ok()?;
            items.push(rest.get(colon + 1..colon + 1 + n)?);
            rest = &rest[colon + 1 + n..];
        }
        let [call_id, status, detail, n, rest @ ..] = items.as_slice() else {
            return None;
        };
        // A kept reply of a version before adoption has no adopted count
        // (its fifth item, if any, is a user field): none adopted.
        let (m, rest): (usize, &[&str]) = match rest.split_first() {
            Some((m, tail)) if m.parse::<usize>().is_ok() => (m.parse().ok()?, tail),
            _ => (0, rest),
        };
        let own = rest.len().checked_sub(m.checked_mul(3)?)?;
        let (fields, triples) = rest.split_at(own);
        let n: usize = n.parse().ok().filter(|n| *n <= fields.len())?;
        let owned = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
        let adopted = triples
            .chunks(3)
            .map(|t| {
                Some(Adopted {
                    change_id: t[0].to_string(),
                    mark: Mark::parse(t[1])?,
                    field: t[2].to_string(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some((
            call_id.to_string(),
            ScriptReply {
                status: Status::parse(status)?,
                detail: detail.to_string(),
                online: owned(&fields[..n]),
                offline: owned(&fields[n..]),
                adopted,
                updated: vec![],
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_replies_round_trip_and_are_the_preludes_text() {
        let reply = ScriptReply {
            status: Status::Slice,
            detail: "n/1".into(),
            online: vec!["u1:gann".into()],
            offline: vec!["u1:gbob".into(), "u1:g:é".into()],
            adopted: vec![],
            updated: vec![],
        };
        let text = reply.pack_kept("17");
        assert_eq!(text, "2:175:SLICE3:n/11:11:07:u1:gann7:u1:gbob7:u1:g:é");
        assert_eq!(ScriptReply::unpack_kept(&text), Some(("17".into(), reply)));
        let adopting = ScriptReply {
            status: Status::Done,
            detail: "d/2".into(),
            online: vec![],
            offline: vec!["u1:gbob".into()],
            adopted: vec![Adopted {
                change_id: "d/2:5:0".into(),
                mark: Mark::Online,
                field: "u1:gann".into(),
            }],
            updated: vec![],
        };
        let text = adopting.pack_kept("3");
        assert_eq!(text, "1:34:DONE3:d/21:01:17:u1:gbob7:d/2:5:01:+7:u1:gann");
        assert_eq!(
            ScriptReply::unpack_kept(&text),
            Some(("3".into(), adopting))
        );
        // Before adoption, the kept text had no adopted count.
        let legacy = "2:175:SLICE3:n/11:17:u1:gann7:u1:gbob";
        let (id, old) = ScriptReply::unpack_kept(legacy).unwrap();
        assert_eq!(id, "17");
        assert_eq!(
            (old.online, old.offline),
            (vec!["u1:gann".to_owned()], vec!["u1:gbob".to_owned()])
        );
        assert!(old.adopted.is_empty());
        for status in Status::ALL {
            let reply = ScriptReply {
                status,
                detail: String::new(),
                online: vec![],
                offline: vec![],
                adopted: vec![],
                updated: vec![],
            };
            let text = reply.pack_kept("");
            assert_eq!(
                ScriptReply::unpack_kept(&text),
                Some((String::new(), reply))
            );
        }
    }

    #[test]
    fn texts_pack_kept_did_not_make_are_none() {
        for text in [
            "",
            "x",
            "2:17",
            "2:175:SLICE0:",
            "2:175:SLICE0:1:21:0",
            "2:175:SLICE0:1:2",
            "2:174:NOPE0:1:01:0",
            "2:175:SLICE0:1:x1:0",
            "2:175:SLICE0:1:01:1",
            "2:175:SLICE0:1:01:11:a1:?1:b",
            "9:17",
        ] {
            assert_eq!(ScriptReply::unpack_kept(text), None, "{text:?}");
        }
    }
}
