//! The keyspace itself: the Redis values rollcall uses (strings, hashes of
//! counts, sorted sets) and the commands the scripts call on them, with
//! Redis' semantics (a hash or zset that empties is deleted; a key of the
//! wrong type is WRONGTYPE).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A sorted set with integer scores, ordered like Redis: by score, then by
/// member bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZSet {
    scores: BTreeMap<String, i64>,
    order: BTreeSet<(i64, String)>,
}

impl ZSet {
    /// The member's score (ZSCORE).
    pub fn score(&self, member: &str) -> Option<i64> {
        self.scores.get(member).copied()
    }

    /// Adds the member or moves it to `score` (ZADD).
    pub fn insert(&mut self, member: &str, score: i64) {
        if let Some(old) = self.scores.insert(member.to_owned(), score) {
            self.order.remove(&(old, member.to_owned()));
        }
        self.order.insert((score, member.to_owned()));
    }

    /// Removes the member; whether it was there (ZREM).
    pub fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(old) => {
                self.order.remove(&(old, member.to_owned()));
                true
            }
            None => false,
        }
    }

    /// How many members (ZCARD).
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// No members (Redis would have deleted the key).
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Members with scores in Redis order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.order.iter().map(|(s, m)| (m.as_str(), *s))
    }

    /// The members after `(score, member)` in Redis order (on a zset whose
    /// scores are all equal, ZRANGEBYLEX `(member +`), without walking the
    /// ones before.
    pub fn iter_after(&self, score: i64, member: &str) -> impl Iterator<Item = (&str, i64)> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.order
            .range((Excluded((score, member.to_owned())), Unbounded))
            .map(|(s, m)| (m.as_str(), *s))
    }
}

/// A stream id, `<ms>-<seq>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId {
    /// Milliseconds.
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl StreamId {
    /// Parses `<ms>-<seq>` or `<ms>` (seq 0), as XREAD takes them.
    pub fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        Some(StreamId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// A stream of entries of (field, value) pairs, as XADD with `*` ids and an
/// exact MAXLEN makes it. Each entry is kept packed in one allocation
/// (`<length>:<bytes>` per item): a feed of 100,000 changes is about 10 MB,
/// not 40.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    entries: std::collections::VecDeque<(StreamId, Box<str>)>,
    last: StreamId,
}

/// Packs (field, value) pairs into one text.
fn pack(fields: &[(String, String)]) -> Box<str> {
    let mut out = String::new();
    for (f, v) in fields {
        for item in [f, v] {
            out.push_str(&item.len().to_string());
            out.push(':');
            out.push_str(item);
        }
    }
    out.into_boxed_str()
}

/// Inverse of [`pack`].
fn unpack(text: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut rest = text;
    while let Some((len, tail)) = rest.split_once(':') {
        let n: usize = len.parse().unwrap_or(tail.len()).min(tail.len());
        items.push(tail[..n].to_owned());
        rest = &tail[n..];
    }
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        pairs.push((f, v));
    }
    pairs
}

impl Stream {
    /// XADD key * fields...: the new entry's id (after the last one, at
    /// `now` ms when that is later).
    pub fn add(&mut self, now: u64, fields: &[(String, String)]) -> StreamId {
        let id = if now > self.last.ms {
            StreamId { ms: now, seq: 0 }
        } else {
            StreamId {
                ms: self.last.ms,
                seq: self.last.seq + 1,
            }
        };
        self.last = id;
        self.entries.push_back((id, pack(fields)));
        id
    }

    /// XTRIM key MAXLEN max: the oldest entries go, down to `max_len`.
    pub fn trim(&mut self, max_len: usize) {
        while self.entries.len() > max_len {
            self.entries.pop_front();
        }
    }

    /// Entries after `from`, at most `count` (XREAD COUNT count STREAMS key from).
    pub fn after(
        &self,
        from: StreamId,
        count: usize,
    ) -> impl Iterator<Item = (StreamId, Vec<(String, String)>)> + '_ {
        let start = self.entries.partition_point(|(id, _)| *id <= from);
        self.entries
            .range(start..)
            .take(count)
            .map(|(id, packed)| (*id, unpack(packed)))
    }

    /// The last id added (`0-0` before any); XREAD's `$`.
    pub fn last_id(&self) -> StreamId {
        self.last
    }

    /// How many entries it holds (XLEN).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One Redis value of the types rollcall uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string.
    Str(String),
    /// A hash of integer fields (counts, times).
    Hash(BTreeMap<String, i64>),
    /// A hash of text fields (sockets' data).
    Texts(BTreeMap<String, String>),
    /// A sorted set.
    ZSet(ZSet),
    /// A stream.
    Stream(Stream),
}

/// A canonical dump of a keyspace, for comparing the model with real Redis:
/// keys sorted, hash fields sorted, zset members in Redis order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpEntry {
    /// The key.
    pub key: String,
    /// Its value.
    #[serde(flatten)]
    pub value: DumpValue,
}

/// One dumped value, in the shape of its Redis type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum DumpValue {
    /// A string.
    String(String),
    /// A hash: fields sorted, values as Redis returns them.
    Hash(Vec<(String, String)>),
    /// A sorted set: members in Redis order with their scores.
    Zset(Vec<(String, i64)>),
    /// A stream: each entry's (field, value) pairs, oldest first; the ids
    /// are left out (Redis makes them from its own clock).
    Stream(Vec<Vec<(String, String)>>),
}

/// The in-memory keyspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyspace {
    pub(super) keys: BTreeMap<String, Value>,
}

/// A script error, as Redis would report it.
/// A script error, as Redis would report it.
pub(super) type Failed = String;

impl Keyspace {
    /// An empty keyspace.
    pub fn new() -> Keyspace {
        Keyspace::default()
    }

    /// Sets a string key, as `SET` would: for tests that corrupt a keyspace
    /// (a key of the wrong type).
    pub fn set_string(&mut self, key: &str, value: &str) {
        self.keys
            .insert(key.to_owned(), Value::Str(value.to_owned()));
    }

    /// Forgets everything, like a Redis that restarted without persistence.
    pub fn clear(&mut self) {
        self.keys.clear();
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys that belong to nodes: all but the change feed and last
    /// seen, which outlive them ([`crate::schema::outlives_nodes`]). Empty
    /// once every node has left.
    pub fn node_keys(&self) -> Vec<&str> {
        self.keys
            .keys()
            .map(String::as_str)
            .filter(|k| !crate::schema::outlives_nodes(k))
            .collect()
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.keys.get(key)
    }

    /// The value of one hash field, if present.
    pub fn hash_get(&self, key: &str, field: &str) -> Option<i64> {
        match self.keys.get(key) {
            Some(Value::Hash(h)) => h.get(field).copied(),
            _ => None,
        }
    }

    /// The canonical dump (see [`DumpEntry`]).
    pub fn dump(&self) -> Vec<DumpEntry> {
        self.keys
            .iter()
            .map(|(key, value)| DumpEntry {
                key: key.clone(),
                value: match value {
                    Value::Str(s) => DumpValue::String(s.clone()),
                    Value::Hash(h) => {
                        DumpValue::Hash(h.iter().map(|(f, v)| (f.clone(), v.to_string())).collect())
                    }
                    Value::Texts(h) => {
                        DumpValue::Hash(h.iter().map(|(f, v)| (f.clone(), v.clone())).collect())
                    }
                    Value::ZSet(z) => {
                        DumpValue::Zset(z.iter().map(|(m, s)| (m.to_owned(), s)).collect())
                    }
                    Value::Stream(x) => DumpValue::Stream(
                        x.after(StreamId::default(), usize::MAX)
                            .map(|(_, f)| f)
                            .collect(),
                    ),
                },
            })
            .collect()
    }

    /// The stream at `key`, if it is one.
    pub fn stream(&self, key: &str) -> Option<&Stream> {
        match self.keys.get(key) {
            Some(Value::Stream(x)) => Some(x),
            _ => None,
        }
    }

    // Typed access; a key holding another type is Redis' WRONGTYPE error.

    pub(super) fn stream_mut(&mut self, key: &str) -> Result<&mut Stream, Failed> {
        match self
            .keys
            .entry(key.to_owned())
            .or_insert_with(|| Value::Stream(Stream::default()))
        {
            Value::Stream(x) => Ok(x),
            _ => Err(wrongtype(key)),
        }
    }

    /// ZREMRANGEBYSCORE key -inf (below: the members scored under `below`.
    pub(super) fn zrem_below(&mut self, key: &str, below: i64) -> Result<(), Failed> {
        let Some(z) = self.zset(key)? else {
            return Ok(());
        };
        let old: Vec<String> = z
            .iter()
            .take_while(|(_, s)| *s < below)
            .map(|(m, _)| m.to_owned())
            .collect();
        for m in old {
            self.zset_mut(key)?.remove(&m);
        }
        self.drop_if_empty(key);
        Ok(())
    }

    pub(super) fn zset(&self, key: &str) -> Result<Option<&ZSet>, Failed> {
        match self.keys.get(key) {
            None => Ok(None),
            Some(Value::ZSet(z)) => Ok(Some(z)),
            Some(_) => Err(wrongtype(key)),
        }
    }

    pub(super) fn zset_mut(&mut self, key: &str) -> Result<&mut ZSet, Failed> {
        match self
            .keys
            .entry(key.to_owned())
            .or_insert_with(|| Value::ZSet(ZSet::default()))
        {
            Value::ZSet(z) => Ok(z),
            _ => Err(wrongtype(key)),
        }
    }

    pub(super) fn hash(&self, key: &str) -> Result<Option<&BTreeMap<String, i64>>, Failed> {
        match self.keys.get(key) {
            None => Ok(None),
            Some(Value::Hash(h)) => Ok(Some(h)),
            Some(_) => Err(wrongtype(key)),
        }
    }

    pub(super) fn hash_mut(&mut self, key: &str) -> Result<&mut BTreeMap<String, i64>, Failed> {
        match self
            .keys
            .entry(key.to_owned())
            .or_insert_with(|| Value::Hash(BTreeMap::new()))
        {
            Value::Hash(h) => Ok(h),
            _ => Err(wrongtype(key)),
        }
    }

    pub(super) fn texts(&self, key: &str) -> Result<Option<&BTreeMap<String, String>>, Failed> {
        match self.keys.get(key) {
            None => Ok(None),
            Some(Value::Texts(h)) => Ok(Some(h)),
            Some(_) => Err(wrongtype(key)),
        }
    }

    /// HSET of a text field.
    pub(super) fn tset(&mut self, key: &str, field: &str, value: &str) -> Result<(), Failed> {
        match self
            .keys
            .entry(key.to_owned())
            .or_insert_with(|| Value::Texts(BTreeMap::new()))
        {
            Value::Texts(h) => {
                h.insert(field.to_owned(), value.to_owned());
                Ok(())
            }
            _ => Err(wrongtype(key)),
        }
    }

    /// HDEL of a text field.
    pub(super) fn tdel(&mut self, key: &str, field: &str) -> Result<(), Failed> {
        if let Some(Value::Texts(h)) = self.keys.get_mut(key) {
            h.remove(field);
        } else if self.keys.contains_key(key) {
            return Err(wrongtype(key));
        }
        self.drop_if_empty(key);
        Ok(())
    }

    /// Redis deletes a hash or zset when its last element goes.
    pub(super) fn drop_if_empty(&mut self, key: &str) {
        let empty = match self.keys.get(key) {
            Some(Value::Hash(h)) => h.is_empty(),
            Some(Value::Texts(h)) => h.is_empty(),
            Some(Value::ZSet(z)) => z.is_empty(),
            _ => false,
        };
        if empty {
            self.keys.remove(key);
        }
    }

    pub(super) fn zscore(&self, key: &str, member: &str) -> Result<Option<i64>, Failed> {
        Ok(self.zset(key)?.and_then(|z| z.score(member)))
    }

    pub(super) fn zadd(&mut self, key: &str, member: &str, score: i64) -> Result<(), Failed> {
        self.zset_mut(key)?.insert(member, score);
        Ok(())
    }

    pub(super) fn zrem(&mut self, key: &str, member: &str) -> Result<bool, Failed> {
        if self.zset(key)?.is_none() {
            return Ok(false);
        }
        let removed = self.zset_mut(key)?.remove(member);
        self.drop_if_empty(key);
        Ok(removed)
    }

    pub(super) fn zcard(&self, key: &str) -> Result<usize, Failed> {
        Ok(self.zset(key)?.map_or(0, ZSet::len))
    }

    pub(super) fn hget(&self, key: &str, field: &str) -> Result<Option<i64>, Failed> {
        Ok(self.hash(key)?.and_then(|h| h.get(field).copied()))
    }

    pub(super) fn hset(&mut self, key: &str, field: &str, value: i64) -> Result<(), Failed> {
        self.hash_mut(key)?.insert(field.to_owned(), value);
        Ok(())
    }

    pub(super) fn hincrby(&mut self, key: &str, field: &str, by: i64) -> Result<i64, Failed> {
        let v = self.hash_mut(key)?.entry(field.to_owned()).or_insert(0);
        *v += by;
        Ok(*v)
    }

    pub(super) fn hdel(&mut self, key: &str, field: &str) -> Result<(), Failed> {
        if self.hash(key)?.is_some() {
            self.hash_mut(key)?.remove(field);
            self.drop_if_empty(key);
        }
        Ok(())
    }
}

pub(super) fn wrongtype(key: &str) -> Failed {
    format!("WRONGTYPE Operation against a key holding the wrong kind of value ({key})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_entries_keep_any_text_and_their_order_and_trim_to_max_len() {
        let odd = ["", "1:2", "a:b:c", "12", "é:ü", "{x}:y", ":", "0:"];
        let mut x = Stream::default();
        let fields: Vec<Vec<(String, String)>> = odd
            .iter()
            .map(|v| {
                vec![
                    ("c".to_owned(), (*v).to_owned()),
                    ((*v).to_owned(), "9".to_owned()),
                ]
            })
            .collect();
        for f in &fields {
            x.add(5, f);
        }
        x.trim(6);
        let back: Vec<(StreamId, Vec<(String, String)>)> =
            x.after(StreamId::default(), 100).collect();
        assert_eq!(back.len(), 6, "trimmed to max_len");
        assert_eq!(
            back.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>(),
            fields[2..]
        );
        // Ids: the same ms, then the next sequence numbers.
        assert_eq!(back[0].0, StreamId { ms: 5, seq: 2 });
        assert_eq!(x.last_id(), StreamId { ms: 5, seq: 7 });
        let after = x.after(StreamId { ms: 5, seq: 5 }, 100).count();
        assert_eq!(after, 2);
        assert_eq!(
            x.add(4, &fields[0]),
            StreamId { ms: 5, seq: 8 },
            "never back in time"
        );
    }
}
