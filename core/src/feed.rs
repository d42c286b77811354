//! The change feed: every user transition of the cluster, in the order
//! Redis made them, in one stream (`{p}:feed`, see [`crate::schema`]).
//!
//! The write scripts append each transition in the same call that makes it
//! (`publish` in `lua/prelude.lua`), so the feed holds each one exactly
//! once, whichever node made it and whether or not that node lived to read
//! its reply. A watcher reads it on a connection of its own (XREAD BLOCK:
//! [`read_command`]), or from the embedded keyspace
//! ([`crate::Keyspace::feed_after`]); both give [`Change`]s. An entry's id
//! ([`Change::id`]) orders the feed: a watcher that resumes from the last id
//! it saw misses nothing the feed still holds, and drops a repeat by it.

use serde::{Deserialize, Serialize};

use crate::event::OfflineReason;
use crate::model::StreamId;
use crate::op::Reply;
use crate::protocol::Mark;
use crate::schema::{Field, Schema, Target};
use crate::scope::Scope;

/// What happened to a user in a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Their first socket anywhere.
    Online,
    /// Their last socket anywhere is gone.
    Offline,
    /// Their first socket in a namespace or a room.
    Joined,
    /// Their last socket in a namespace or a room is gone.
    Left,
    /// Their data changed (a socket set, changed or dropped its data).
    Updated,
}

impl ChangeKind {
    /// Its name: `online`, `offline`, `joined`, `left`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Online => "online",
            ChangeKind::Offline => "offline",
            ChangeKind::Joined => "joined",
            ChangeKind::Left => "left",
            ChangeKind::Updated => "updated",
        }
    }
}

/// One change of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The feed entry's id (`<ms>-<seq>`): resume after it, drop a repeat by it.
    pub id: String,
    /// What happened.
    pub kind: ChangeKind,
    /// Who.
    pub user: String,
    /// Where: global for online, offline and updated, else a namespace or
    /// a room.
    pub scope: Scope,
    /// Why a user went offline or left; `None` for online and joined.
    pub reason: Option<OfflineReason>,
    /// The node whose call made it (for a reap, the reaper).
    pub node: String,
    /// When, on the Redis clock (ms).
    pub at: u64,
    /// The transition's change id, as the events carry it
    /// (`<incarnation>:<call id>:<index>`).
    pub change_id: String,
    /// For `updated`: the user's data after the change, a JSON array (one
    /// object per socket with data); `None` for the other kinds.
    pub data: Option<String>,
}

// The field names of an entry (the Lua spells them in `publish`).
const CHANGE_ID: &str = "c";
const MARK: &str = "t";
const FIELD: &str = "f";
const AT: &str = "a";
const DATA: &str = "v";
/// The `t` of an update (the marks of transitions are [`Mark`]s).
const UPDATE: &str = "u";

/// The (field, value) pairs of one feed entry, in the order the Lua
/// appends them.
pub fn entry_fields(change_id: &str, mark: Mark, field: &str, at: i64) -> Vec<(String, String)> {
    vec![
        (CHANGE_ID.to_owned(), change_id.to_owned()),
        (MARK.to_owned(), mark.as_str().to_owned()),
        (FIELD.to_owned(), field.to_owned()),
        (AT.to_owned(), at.to_string()),
    ]
}

/// The (field, value) pairs of the feed entry of a user's data update:
/// `t` is `u`, `f` the user, `v` the data as one JSON array.
pub fn update_fields(
    change_id: &str,
    user: &str,
    at: i64,
    data: &[String],
) -> Vec<(String, String)> {
    vec![
        (CHANGE_ID.to_owned(), change_id.to_owned()),
        (MARK.to_owned(), UPDATE.to_owned()),
        (FIELD.to_owned(), user.to_owned()),
        (AT.to_owned(), at.to_string()),
        (DATA.to_owned(), format!("[{}]", data.join(","))),
    ]
}

/// A feed entry or reply that is not what the scripts write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry(pub String);

impl std::fmt::Display for BadEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rollcall: unexpected change feed entry: {}", self.0)
    }
}

impl std::error::Error for BadEntry {}

/// The change of one entry.
pub fn decode(id: &str, fields: &[(String, String)]) -> Result<Change, BadEntry> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| BadEntry(format!("{id}: no {name:?}")))
    };
    let change_id = get(CHANGE_ID)?;
    let at = get(AT)?
        .parse()
        .map_err(|_| BadEntry(format!("{id}: time")))?;
    // `<node>/<k>:<call id>:<index>`: the node id may hold ':' or '/'.
    let node = change_id
        .rsplitn(3, ':')
        .nth(2)
        .and_then(|inc| inc.rsplit_once('/'))
        .map(|(node, _)| node.to_owned())
        .ok_or_else(|| BadEntry(format!("{id}: change id {change_id:?}")))?;
    if get(MARK)? == UPDATE {
        return Ok(Change {
            id: id.to_owned(),
            kind: ChangeKind::Updated,
            user: get(FIELD)?.to_owned(),
            scope: Scope::Global,
            reason: None,
            node,
            at,
            change_id: change_id.to_owned(),
            data: Some(get(DATA)?.to_owned()),
        });
    }
    let mark = Mark::parse(get(MARK)?).ok_or_else(|| BadEntry(format!("{id}: mark")))?;
    let field = get(FIELD)?;
    let Some(Target::User { scope_id, user }) = Field::target(field) else {
        return Err(BadEntry(format!("{id}: field {field:?}")));
    };
    let scope = Scope::decode(&scope_id).ok_or_else(|| BadEntry(format!("{id}: scope")))?;
    let (kind, reason) = match (mark, scope == Scope::Global) {
        (Mark::Online, true) => (ChangeKind::Online, None),
        (Mark::Online, false) => (ChangeKind::Joined, None),
        (Mark::Offline(r), true) => (ChangeKind::Offline, Some(r)),
        (Mark::Offline(r), false) => (ChangeKind::Left, Some(r)),
    };
    Ok(Change {
        id: id.to_owned(),
        kind,
        user,
        scope,
        reason,
        node,
        at,
        change_id: change_id.to_owned(),
        data: None,
    })
}

impl crate::Keyspace {
    /// The changes after `after` (an entry id; `0-0` for all the feed holds),
    /// at most `count`: the embedded store's XREAD.
    pub fn feed_after(
        &self,
        schema: &Schema,
        after: &str,
        count: usize,
    ) -> Result<Vec<Change>, BadEntry> {
        let from = StreamId::parse(after).ok_or_else(|| BadEntry(format!("feed id {after:?}")))?;
        let Some(stream) = self.stream(&schema.feed()) else {
            return Ok(Vec::new());
        };
        stream
            .after(from, count.clamp(1, MAX_READ))
            .map(|(id, fields)| decode(&id.to_string(), &fields))
            .collect()
    }

    /// The newest entry's id (`0-0` when there is none): where a watcher
    /// that starts now reads after.
    pub fn feed_newest(&self, schema: &Schema) -> String {
        self.stream(&schema.feed())
            .map_or_else(StreamId::default, |s| s.last_id())
            .to_string()
    }
}

/// Whether `id` is a feed entry id (`<ms>-<seq>` or `<ms>`), as `from` takes it.
pub fn is_entry_id(id: &str) -> bool {
    StreamId::parse(id).is_some()
}

/// Most entries one read returns.
pub const MAX_READ: usize = 1_000;

/// The arguments of `XREAD BLOCK <block_ms> COUNT <count> STREAMS <feed>
/// <after>`, the watcher's command (a blocking read cannot run in a
/// script), after the command name.
pub fn read_command(schema: &Schema, after: &str, count: usize, block_ms: u64) -> Vec<String> {
    vec![
        "BLOCK".to_owned(),
        block_ms.to_string(),
        "COUNT".to_owned(),
        count.clamp(1, MAX_READ).to_string(),
        "STREAMS".to_owned(),
        schema.feed(),
        after.to_owned(),
    ]
}

/// The arguments of `XREVRANGE <feed> + - COUNT 1`: the newest entry, whose
/// id a watcher that starts now reads after.
pub fn newest_command(schema: &Schema) -> Vec<String> {
    vec![
        schema.feed(),
        "+".to_owned(),
        "-".to_owned(),
        "COUNT".to_owned(),
        "1".to_owned(),
    ]
}

/// The id a watcher starting now reads after, from the reply to
/// [`newest_command`]: the newest entry's, or `0-0` when there is none.
pub fn parse_newest(reply: &Reply) -> Result<String, BadEntry> {
    match reply {
        Reply::Nil => Ok("0-0".to_owned()),
        Reply::Array(entries) => match entries.first() {
            None => Ok("0-0".to_owned()),
            Some(entry) => Ok(entry_of(entry)?.0),
        },
        other => Err(BadEntry(format!("XREVRANGE reply {other:?}"))),
    }
}

/// The changes of a reply to [`read_command`]: nil (the block timed out),
/// or `[[key, [[id, [field, value, ...]], ...]]]` (RESP2), or the same as a
/// map of key to entries (RESP3, which a host hands in as `[[key, entries]]`
/// or `[key, entries]`).
pub fn parse_read(reply: &Reply) -> Result<Vec<Change>, BadEntry> {
    let entries = match reply {
        Reply::Nil => return Ok(Vec::new()),
        Reply::Array(streams) if streams.is_empty() => return Ok(Vec::new()),
        Reply::Array(streams) => match streams.as_slice() {
            [Reply::Array(one)] => match one.as_slice() {
                [Reply::Str(_), Reply::Array(entries)] => entries,
                _ => return Err(BadEntry(format!("XREAD stream {one:?}"))),
            },
            [Reply::Str(_), Reply::Array(entries)] => entries,
            _ => return Err(BadEntry(format!("XREAD reply {streams:?}"))),
        },
        other => return Err(BadEntry(format!("XREAD reply {other:?}"))),
    };
    entries
        .iter()
        .map(|e| {
            let (id, fields) = entry_of(e)?;
            decode(&id, &fields)
        })
        .collect()
}

/// One `[id, [field, value, ...]]` entry.
fn entry_of(entry: &Reply) -> Result<(String, Vec<(String, String)>), BadEntry> {
    let Reply::Array(parts) = entry else {
        return Err(BadEntry(format!("entry {entry:?}")));
    };
    let [Reply::Str(id), Reply::Array(flat)] = parts.as_slice() else {
        return Err(BadEntry(format!("entry {parts:?}")));
    };
    if flat.len() % 2 != 0 {
        return Err(BadEntry(format!("{id}: odd field list")));
    }
    let fields = flat
        .chunks(2)
        .map(|kv| match kv {
            [Reply::Str(k), Reply::Str(v)] => Ok((k.clone(), v.clone())),
            [Reply::Str(k), Reply::Int(v)] => Ok((k.clone(), v.to_string())),
            _ => Err(BadEntry(format!("{id}: field {kv:?}"))),
        })
        .collect::<Result<_, _>>()?;
    Ok((id.clone(), fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fields: Vec<(String, String)>) -> Reply {
        Reply::Array(vec![
            Reply::Str(id.into()),
            Reply::Array(
                fields
                    .into_iter()
                    .flat_map(|(k, v)| [Reply::Str(k), Reply::Str(v)])
                    .collect(),
            ),
        ])
    }

    #[test]
    fn entries_decode_into_changes_of_each_kind() {
        let room = Scope::room("/chat", "a:b");
        let cases = [
            (Scope::Global, Mark::Online, ChangeKind::Online, None),
            (
                Scope::Global,
                Mark::Offline(OfflineReason::Reaped),
                ChangeKind::Offline,
                Some(OfflineReason::Reaped),
            ),
            (
                Scope::namespace("/chat"),
                Mark::Online,
                ChangeKind::Joined,
                None,
            ),
            (
                room.clone(),
                Mark::Offline(OfflineReason::Shutdown),
                ChangeKind::Left,
                Some(OfflineReason::Shutdown),
            ),
        ];
        for (i, (scope, mark, kind, reason)) in cases.into_iter().enumerate() {
            let field = Field::User(scope.clone(), "u:1/x".into()).encode();
            let fields = entry_fields("node:a/b/7:12:3", mark, &field, 1_700 + i as i64);
            let id = format!("1700-{i}");
            let c = decode(&id, &fields).unwrap();
            assert_eq!(
                c,
                Change {
                    id,
                    kind,
                    user: "u:1/x".into(),
                    scope,
                    reason,
                    node: "node:a/b".into(),
                    at: 1_700 + i as u64,
                    change_id: "node:a/b/7:12:3".into(),
                    data: None,
                }
            );
        }
    }

    #[test]
    fn read_replies_of_both_protocols_and_timeouts_parse() {
        let field = Field::User(Scope::Global, "ann".into()).encode();
        let e = entry("5-1", entry_fields("n/1:2:0", Mark::Online, &field, 5));
        let key = Reply::Str("{app}:feed".into());
        let resp2 = Reply::Array(vec![Reply::Array(vec![
            key.clone(),
            Reply::Array(vec![e.clone()]),
        ])]);
        let resp3 = Reply::Array(vec![key, Reply::Array(vec![e.clone()])]);
        for reply in [resp2, resp3] {
            let got = parse_read(&reply).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!((got[0].id.as_str(), got[0].user.as_str()), ("5-1", "ann"));
        }
        assert_eq!(parse_read(&Reply::Nil).unwrap(), vec![]);
        assert_eq!(parse_newest(&Reply::Array(vec![])).unwrap(), "0-0");
        assert_eq!(parse_newest(&Reply::Array(vec![e])).unwrap(), "5-1");
    }

    #[test]
    fn entries_of_the_wrong_shape_are_errors() {
        for bad in [
            Reply::Int(1),
            Reply::Array(vec![Reply::Int(1)]),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Str("k".into()),
                Reply::Int(2),
            ])]),
        ] {
            assert!(parse_read(&bad).is_err(), "{bad:?}");
        }
        let field = Field::User(Scope::Global, "ann".into()).encode();
        let mut fields = entry_fields("n/1:2:0", Mark::Online, &field, 5);
        fields[1].1 = "?".into();
        assert!(decode("1-0", &fields).is_err());
        let fields = entry_fields("no-incarnation", Mark::Online, &field, 5);
        assert!(decode("1-0", &fields).is_err());
        let fields = entry_fields("n/1:2:0", Mark::Online, "c", 5);
        assert!(decode("1-0", &fields).is_err());
    }
}
