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
}

/// One Redis value of the types rollcall uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string.
    Str(String),
    /// A hash of integer fields (rollcall's hashes hold counts only).
    Hash(BTreeMap<String, i64>),
    /// A sorted set.
    ZSet(ZSet),
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
                    Value::ZSet(z) => {
                        DumpValue::Zset(z.iter().map(|(m, s)| (m.to_owned(), s)).collect())
                    }
                },
            })
            .collect()
    }

    // Typed access; a key holding another type is Redis' WRONGTYPE error.

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

    /// Redis deletes a hash or zset when its last element goes.
    pub(super) fn drop_if_empty(&mut self, key: &str) {
        let empty = match self.keys.get(key) {
            Some(Value::Hash(h)) => h.is_empty(),
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
