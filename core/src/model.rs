//! The pure model: an in-memory keyspace that does exactly what each script
//! does to Redis. It is the embedded single-server store and the oracle the
//! real-Redis tests compare against.
//!
//! Each function below mirrors the Lua function of the same name in
//! `lua/*.lua`, line for line where it can; read them side by side.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::op::{Millis, Op, Reply};
use crate::schema::{Field, Target};
use crate::scripts::Script;

/// A sorted set with integer scores, ordered like Redis: by score, then by
/// member bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZSet {
    scores: BTreeMap<String, i64>,
    order: BTreeSet<(i64, String)>,
}

impl ZSet {
    pub fn score(&self, member: &str) -> Option<i64> {
        self.scores.get(member).copied()
    }

    pub fn insert(&mut self, member: &str, score: i64) {
        if let Some(old) = self.scores.insert(member.to_owned(), score) {
            self.order.remove(&(old, member.to_owned()));
        }
        self.order.insert((score, member.to_owned()));
    }

    pub fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(old) => {
                self.order.remove(&(old, member.to_owned()));
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

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
    Str(String),
    Hash(BTreeMap<String, i64>),
    ZSet(ZSet),
}

/// A canonical dump of a keyspace, for comparing the model with real Redis:
/// keys sorted, hash fields sorted, zset members in Redis order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpEntry {
    pub key: String,
    #[serde(flatten)]
    pub value: DumpValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum DumpValue {
    String(String),
    Hash(Vec<(String, String)>),
    Zset(Vec<(String, i64)>),
}

/// The in-memory keyspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyspace {
    keys: BTreeMap<String, Value>,
}

/// A script error, as Redis would report it.
type Failed = String;

impl Keyspace {
    pub fn new() -> Keyspace {
        Keyspace::default()
    }

    /// Runs one operation at Redis time `now`, as Redis would run the script.
    pub fn run(&mut self, now: Millis, op: &Op) -> Reply {
        let Some(live) = op.keys.first().filter(|k| k.ends_with("live")) else {
            return Reply::error("rollcall: KEYS[1] must be the live key");
        };
        let base = live[..live.len() - 4].to_owned();
        let mut call = Call {
            ks: self,
            base,
            online: Vec::new(),
            offline: Vec::new(),
            keep_as: None,
        };
        let args = &op.args;
        let result = match op.script {
            Script::Register => call.register(now, args),
            Script::Apply => call.apply(now, args),
            Script::Reassert => call.reassert(now, args),
            Script::Heartbeat => call.heartbeat(now, args),
            Script::Retire => call.retire(now, args),
            Script::Reap => call.reap(now, args),
            Script::Read => call.read(args),
        };
        result.unwrap_or_else(Reply::error)
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

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

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

    fn zset(&self, key: &str) -> Result<Option<&ZSet>, Failed> {
        match self.keys.get(key) {
            None => Ok(None),
            Some(Value::ZSet(z)) => Ok(Some(z)),
            Some(_) => Err(wrongtype(key)),
        }
    }

    fn zset_mut(&mut self, key: &str) -> Result<&mut ZSet, Failed> {
        match self
            .keys
            .entry(key.to_owned())
            .or_insert_with(|| Value::ZSet(ZSet::default()))
        {
            Value::ZSet(z) => Ok(z),
            _ => Err(wrongtype(key)),
        }
    }

    fn hash(&self, key: &str) -> Result<Option<&BTreeMap<String, i64>>, Failed> {
        match self.keys.get(key) {
            None => Ok(None),
            Some(Value::Hash(h)) => Ok(Some(h)),
            Some(_) => Err(wrongtype(key)),
        }
    }

    fn hash_mut(&mut self, key: &str) -> Result<&mut BTreeMap<String, i64>, Failed> {
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
    fn drop_if_empty(&mut self, key: &str) {
        let empty = match self.keys.get(key) {
            Some(Value::Hash(h)) => h.is_empty(),
            Some(Value::ZSet(z)) => z.is_empty(),
            _ => false,
        };
        if empty {
            self.keys.remove(key);
        }
    }

    fn zscore(&self, key: &str, member: &str) -> Result<Option<i64>, Failed> {
        Ok(self.zset(key)?.and_then(|z| z.score(member)))
    }

    fn zadd(&mut self, key: &str, member: &str, score: i64) -> Result<(), Failed> {
        self.zset_mut(key)?.insert(member, score);
        Ok(())
    }

    fn zrem(&mut self, key: &str, member: &str) -> Result<bool, Failed> {
        if self.zset(key)?.is_none() {
            return Ok(false);
        }
        let removed = self.zset_mut(key)?.remove(member);
        self.drop_if_empty(key);
        Ok(removed)
    }

    fn zcard(&self, key: &str) -> Result<usize, Failed> {
        Ok(self.zset(key)?.map_or(0, ZSet::len))
    }

    fn hget(&self, key: &str, field: &str) -> Result<Option<i64>, Failed> {
        Ok(self.hash(key)?.and_then(|h| h.get(field).copied()))
    }

    fn hset(&mut self, key: &str, field: &str, value: i64) -> Result<(), Failed> {
        self.hash_mut(key)?.insert(field.to_owned(), value);
        Ok(())
    }

    fn hincrby(&mut self, key: &str, field: &str, by: i64) -> Result<i64, Failed> {
        let v = self.hash_mut(key)?.entry(field.to_owned()).or_insert(0);
        *v += by;
        Ok(*v)
    }

    fn hdel(&mut self, key: &str, field: &str) -> Result<(), Failed> {
        if self.hash(key)?.is_some() {
            self.hash_mut(key)?.remove(field);
            self.drop_if_empty(key);
        }
        Ok(())
    }
}

fn wrongtype(key: &str) -> Failed {
    format!("WRONGTYPE Operation against a key holding the wrong kind of value ({key})")
}

fn int(args: &[String], i: usize, what: &str) -> Result<i64, Failed> {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("rollcall: ARGV[{}] ({what}) must be an integer", i + 1))
}

fn text<'a>(args: &'a [String], i: usize, what: &str) -> Result<&'a str, Failed> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("rollcall: ARGV[{}] ({what}) is missing", i + 1))
}

/// The pairs after the head arguments, as (field, integer).
fn pairs(args: &[String], from: usize) -> Result<Vec<(&str, i64)>, Failed> {
    let rest = args.get(from..).unwrap_or_default();
    if rest.len() % 2 != 0 {
        return Err("rollcall: field/number arguments must come in pairs".into());
    }
    rest.chunks(2)
        .enumerate()
        .map(|(n, pair)| {
            let v = pair[1]
                .parse()
                .map_err(|_| format!("rollcall: ARGV[{}] must be an integer", from + 2 * n + 2))?;
            Ok((pair[0].as_str(), v))
        })
        .collect()
}

/// One script call in progress: the Lua locals `base`, `online`, `offline`,
/// and where its reply is kept (`keep_as`, `keep_id`).
struct Call<'a> {
    ks: &'a mut Keyspace,
    base: String,
    online: Vec<String>,
    offline: Vec<String>,
    keep_as: Option<(String, String)>,
}

/// The prelude's `pack`: each item as `<byte length>:<bytes>`.
fn pack<'s>(items: impl IntoIterator<Item = &'s str>) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&item.len().to_string());
        out.push(':');
        out.push_str(item);
    }
    out
}

/// The prelude's `unpack_kept`; `None` for a text `pack` did not make.
fn unpack_kept(text: &str) -> Option<Vec<String>> {
    let mut items = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let colon = rest.find(':')?;
        let n: usize = rest[..colon].parse().ok()?;
        let item = rest.get(colon + 1..colon + 1 + n)?;
        items.push(item.to_owned());
        rest = &rest[colon + 1 + n..];
    }
    Some(items)
}

impl Call<'_> {
    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.base)
    }

    fn live(&self) -> String {
        self.key("live")
    }

    fn clock(&mut self, now: Millis, stall_ms: i64) -> Result<i64, Failed> {
        let now = now as i64;
        let key = self.key("clock");
        let live = self.live();
        let last = match self.ks.keys.get(&key) {
            None => None,
            Some(Value::Str(s)) => s.parse::<i64>().ok(),
            Some(_) => return Err(wrongtype(&key)),
        };
        if let Some(last) = last
            && now - last > stall_ms
        {
            self.shift_leases(now - last - stall_ms)?;
        }
        // The clock went back (a failover or restore onto a host behind):
        // leases move back with it.
        if let Some(last) = last
            && last - now > stall_ms
        {
            self.shift_leases(now - last)?;
            self.ks.keys.insert(key, Value::Str(now.to_string()));
            return Ok(now);
        }
        if let Some(last) = last
            && last >= now
        {
            return Ok(last);
        }
        let dead = self.key("dead");
        if self.ks.keys.contains_key(&live) || self.ks.keys.contains_key(&dead) {
            self.ks.keys.insert(key, Value::Str(now.to_string()));
        }
        Ok(now)
    }

    /// The prelude's `shift_leases`.
    fn shift_leases(&mut self, shift: i64) -> Result<(), Failed> {
        let live = self.live();
        let leases: Vec<(String, i64)> = match self.ks.zset(&live)? {
            Some(z) => z.iter().map(|(m, s)| (m.to_owned(), s)).collect(),
            None => Vec::new(),
        };
        for (member, score) in leases {
            self.ks.zadd(&live, &member, score + shift)?;
        }
        Ok(())
    }

    fn target(&self, field: &str) -> Result<(String, String, bool), Failed> {
        match Field::target(field) {
            Some(Target::User { scope_id, user }) => {
                Ok((self.key(&format!("u:{scope_id}")), user, true))
            }
            Some(Target::Count(name)) => Ok((self.key("count"), name, false)),
            None => Err(format!("rollcall: malformed field {field:?}")),
        }
    }

    fn mv(&mut self, own: &str, field: &str, mut d: i64) -> Result<i8, Failed> {
        let have = self.ks.zscore(own, field)?.unwrap_or(0);
        if have + d < 0 {
            d = -have;
        }
        if d == 0 {
            return Ok(0);
        }
        if have + d == 0 {
            self.ks.zrem(own, field)?;
        } else {
            self.ks.zadd(own, field, have + d)?;
        }
        let (key, name, is_user) = self.target(field)?;
        let total = self.ks.hincrby(&key, &name, d)?;
        if total <= 0 {
            self.ks.hdel(&key, &name)?;
            if is_user && total - d > 0 {
                return Ok(-1);
            }
        } else if is_user && total - d <= 0 {
            return Ok(1);
        }
        Ok(0)
    }

    /// `check_types` of the prelude: refuses, before anything is written, a
    /// call whose counter keys hold another type than a hash.
    fn check_types<'f>(&self, fields: impl IntoIterator<Item = &'f str>) -> Result<(), Failed> {
        let mut keys = BTreeSet::from([self.key("count")]);
        for field in fields {
            keys.insert(self.target(field)?.0);
        }
        for key in keys {
            if let Some(v) = self.ks.keys.get(&key)
                && !matches!(v, Value::Hash(_))
            {
                return Err(wrongtype(&key));
            }
        }
        Ok(())
    }

    fn note(&mut self, field: &str, edge: i8) {
        match edge {
            1 => self.online.push(field.to_owned()),
            -1 => self.offline.push(field.to_owned()),
            _ => {}
        }
    }

    fn reply(&mut self, status: &str, detail: &str) -> Result<Reply, Failed> {
        if let Some((key, id)) = self.keep_as.take() {
            let n = self.online.len().to_string();
            let kept = pack(
                [id.as_str(), status, detail, n.as_str()]
                    .into_iter()
                    .chain(self.online.iter().map(String::as_str))
                    .chain(self.offline.iter().map(String::as_str)),
            );
            self.ks.set_string(&key, &kept);
        }
        let mut out = vec![
            Reply::Str(status.to_owned()),
            Reply::Str(detail.to_owned()),
            Reply::Int(self.online.len() as i64),
        ];
        out.extend(self.online.drain(..).map(Reply::Str));
        out.extend(self.offline.drain(..).map(Reply::Str));
        Ok(Reply::Array(out))
    }

    fn kept_key(&self, lane: &str, inc: &str) -> String {
        self.key(&format!("o:{lane}:{inc}"))
    }

    /// The prelude's `recall`: the kept reply if call `id` of `inc`'s
    /// `lane` ran already; else this call's reply will be kept.
    fn recall(&mut self, lane: &str, inc: &str, id: &str) -> Result<Option<Reply>, Failed> {
        let key = self.kept_key(lane, inc);
        let kept = match self.ks.keys.get(&key) {
            None => None,
            Some(Value::Str(s)) => unpack_kept(s),
            Some(_) => return Err(wrongtype(&key)),
        };
        if let Some(items) = kept
            && items.len() >= 4
            && items[0] == id
        {
            let mut out = vec![
                Reply::Str(items[1].clone()),
                Reply::Str(items[2].clone()),
                Reply::Int(items[3].parse().unwrap_or(0)),
            ];
            out.extend(items[4..].iter().cloned().map(Reply::Str));
            return Ok(Some(Reply::Array(out)));
        }
        self.keep_as = Some((key, id.to_owned()));
        Ok(None)
    }

    /// The prelude's `forget_kept`: an incarnation's kept replies go with it.
    fn forget_kept(&mut self, inc: &str) {
        for lane in ["w", "r"] {
            let key = self.kept_key(lane, inc);
            self.ks.keys.remove(&key);
            if self.keep_as.as_ref().is_some_and(|(k, _)| *k == key) {
                self.keep_as = None;
            }
        }
    }

    fn renew(&mut self, now: i64, inc: &str, ttl: i64) -> Result<bool, Failed> {
        let live = self.live();
        if self.ks.zscore(&live, inc)?.is_none() {
            return Ok(false);
        }
        self.ks.zadd(&live, inc, now + ttl)?;
        Ok(true)
    }

    fn register(&mut self, now: Millis, args: &[String]) -> Result<Reply, Failed> {
        let now = self.clock(now, int(args, 0, "stall_ms")?)?;
        let node = text(args, 1, "node")?;
        let ttl = int(args, 2, "ttl_ms")?;
        let mut k = int(args, 3, "k")?;
        let replace = args.get(4).map(String::as_str) == Some("1");
        let keep = args.get(5).map(String::as_str);
        let (live, nodes, dead) = (self.live(), self.key("nodes"), self.key("dead"));
        if let Some(prev) = self.ks.hget(&nodes, node)? {
            if k <= prev {
                k = prev + 1;
            }
            let old = format!("{node}/{prev}");
            if replace && Some(prev.to_string().as_str()) != keep && self.ks.zrem(&live, &old)? {
                self.ks.zadd(&dead, &old, 0)?;
            }
        }
        while self.ks.zscore(&live, &format!("{node}/{k}"))?.is_some()
            || self.ks.zscore(&dead, &format!("{node}/{k}"))?.is_some()
        {
            k += 1;
        }
        let inc = format!("{node}/{k}");
        self.ks.hset(&nodes, node, k)?;
        self.ks.zadd(&live, &inc, now + ttl)?;
        let ver = self.key("ver");
        self.ks.hset(&ver, &inc, 0)?;
        self.reply("OK", &k.to_string())
    }

    fn apply(&mut self, now: Millis, args: &[String]) -> Result<Reply, Failed> {
        let now = self.clock(now, int(args, 0, "stall_ms")?)?;
        let inc = text(args, 1, "incarnation")?;
        if !self.renew(now, inc, int(args, 2, "ttl_ms")?)? {
            return self.reply("FENCED", "");
        }
        if let Some(again) = self.recall("w", inc, text(args, 4, "call id")?)? {
            return Ok(again);
        }
        let ver = self.key("ver");
        let version = text(args, 3, "version")?;
        if self.ks.hget(&ver, inc)?.map(|v| v.to_string()).as_deref() != Some(version) {
            return self.reply("DRIFT", "");
        }
        let deltas = pairs(args, 5)?;
        self.check_types(deltas.iter().map(|(f, _)| *f))?;
        self.ks.hincrby(&ver, inc, 1)?;
        let own = self.key(&format!("i:{inc}"));
        for (field, delta) in deltas {
            let edge = self.mv(&own, field, delta)?;
            self.note(field, edge);
        }
        self.reply("OK", "")
    }

    fn reassert(&mut self, now: Millis, args: &[String]) -> Result<Reply, Failed> {
        let now = self.clock(now, int(args, 0, "stall_ms")?)?;
        let inc = text(args, 1, "incarnation")?;
        if !self.renew(now, inc, int(args, 2, "ttl_ms")?)? {
            return self.reply("FENCED", "");
        }
        if let Some(again) = self.recall("w", inc, text(args, 4, "call id")?)? {
            return Ok(again);
        }
        let own = self.key(&format!("i:{inc}"));
        if self.ks.zcard(&own)? > int(args, 5, "max_write_fields")? as usize {
            return self.reply("ROTATE", "");
        }
        let want = pairs(args, 6)?;
        let wanted: BTreeSet<&str> = want.iter().map(|(f, _)| *f).collect();
        let have: Vec<(String, i64)> = match self.ks.zset(&own)? {
            Some(z) => z.iter().map(|(m, s)| (m.to_owned(), s)).collect(),
            None => Vec::new(),
        };
        self.check_types(
            have.iter()
                .map(|(f, _)| f.as_str())
                .chain(want.iter().map(|(f, _)| *f)),
        )?;
        for (field, count) in have {
            if !wanted.contains(field.as_str()) {
                let edge = self.mv(&own, &field, -count)?;
                self.note(&field, edge);
            }
        }
        for (field, count) in want {
            let cur = self.ks.zscore(&own, field)?.unwrap_or(0);
            let edge = self.mv(&own, field, count - cur)?;
            self.note(field, edge);
        }
        let ver = self.key("ver");
        self.ks.hset(&ver, inc, int(args, 3, "version")?)?;
        self.reply("OK", "")
    }

    fn heartbeat(&mut self, now: Millis, args: &[String]) -> Result<Reply, Failed> {
        let now = self.clock(now, int(args, 0, "stall_ms")?)?;
        let inc = text(args, 1, "incarnation")?;
        if !self.renew(now, inc, int(args, 2, "ttl_ms")?)? {
            return self.reply("FENCED", "");
        }
        if let Some(again) = self.recall("w", inc, text(args, 4, "call id")?)? {
            return Ok(again);
        }
        let ver = self.key("ver");
        let version = text(args, 3, "version")?;
        if self.ks.hget(&ver, inc)?.map(|v| v.to_string()).as_deref() != Some(version) {
            return self.reply("DRIFT", "");
        }
        self.reply("OK", "")
    }

    fn retire(&mut self, now: Millis, args: &[String]) -> Result<Reply, Failed> {
        self.clock(now, int(args, 0, "stall_ms")?)?;
        let inc = text(args, 1, "incarnation")?;
        let (live, dead) = (self.live(), self.key("dead"));
        if self.ks.zrem(&live, inc)? {
            self.ks.zadd(&dead, inc, 0)?;
            return self.reply("OK", "");
        }
        if self.ks.zscore(&dead, inc)?.is_some() {
            return self.reply("OK", "");
        }
        self.reply("GONE", "")
    }

    fn reap(&mut self, now: Millis, args: &[String]) -> Result<Reply, Failed> {
        let now = self.clock(now, int(args, 0, "stall_ms")?)?;
        let me = text(args, 1, "incarnation")?;
        let slice = int(args, 2, "slice")?;
        let (live, dead) = (self.live(), self.key("dead"));
        let mut target = text(args, 3, "target")?.to_owned();
        let (id, lane) = (text(args, 4, "call id")?, text(args, 5, "lane")?);
        if target.is_empty() {
            let Some(mine) = self.ks.zscore(&live, me)? else {
                return self.reply("FENCED", "");
            };
            if let Some(again) = self.recall(lane, me, id)? {
                return Ok(again);
            }
            if mine < now {
                return self.reply("IDLE", "");
            }
            let first_dead = self
                .ks
                .zset(&dead)?
                .and_then(|z| z.iter().next().map(|(m, _)| m.to_owned()));
            target = match first_dead {
                Some(t) => t,
                None => {
                    let expired = self.ks.zset(&live)?.and_then(|z| {
                        z.iter()
                            .next()
                            .filter(|(_, s)| *s < now)
                            .map(|(m, _)| m.to_owned())
                    });
                    let Some(t) = expired else {
                        return self.reply("IDLE", "");
                    };
                    self.ks.zrem(&live, &t)?;
                    self.ks.zadd(&dead, &t, 0)?;
                    t
                }
            };
        } else {
            // Only a registered incarnation keeps replies.
            if (self.ks.zscore(&live, me)?.is_some() || self.ks.zscore(&dead, me)?.is_some())
                && let Some(again) = self.recall(lane, me, id)?
            {
                return Ok(again);
            }
            if self.ks.zscore(&dead, &target)?.is_none() {
                return self.reply("IDLE", "");
            }
        }
        let own = self.key(&format!("i:{target}"));
        // ZRANGE own 0 slice-1 (Config::validate keeps slice >= 1).
        let take = usize::try_from(slice).unwrap_or(0);
        let fields: Vec<(String, i64)> = match self.ks.zset(&own)? {
            Some(z) => z
                .iter()
                .take(take)
                .map(|(m, s)| (m.to_owned(), s))
                .collect(),
            None => Vec::new(),
        };
        self.check_types(fields.iter().map(|(f, _)| f.as_str()))?;
        let fields_empty = fields.is_empty();
        for (field, count) in fields {
            let edge = self.mv(&own, &field, -count)?;
            self.note(&field, edge);
        }
        // A node reaping itself forgets its kept replies with DONE: its
        // last slice answers SLICE, so DONE carries no transitions.
        if self.ks.keys.contains_key(&own) || (target == me && !fields_empty) {
            return self.reply("SLICE", &target);
        }
        self.ks.zrem(&dead, &target)?;
        let ver = self.key("ver");
        self.ks.hdel(&ver, &target)?;
        self.forget_kept(&target);
        if let Some((node, k)) = split_lua_incarnation(&target) {
            let nodes = self.key("nodes");
            if self
                .ks
                .hget(&nodes, node)?
                .map(|v| v.to_string())
                .as_deref()
                == Some(k)
            {
                self.ks.hdel(&nodes, node)?;
            }
        }
        if self.ks.zcard(&live)? == 0 && self.ks.zcard(&dead)? == 0 {
            let clock = self.key("clock");
            self.ks.keys.remove(&clock);
        }
        self.reply("DONE", &target)
    }

    fn read(&mut self, args: &[String]) -> Result<Reply, Failed> {
        let what = args.first().map(String::as_str).unwrap_or("");
        let arg = args.get(1).map(String::as_str).unwrap_or("");
        let count = self.key("count");
        Ok(match what {
            "clients" => Reply::Int(self.ks.hget(&count, "c")?.unwrap_or(0)),
            "sockets" => Reply::Int(self.ks.hget(&count, &format!("s{arg}"))?.unwrap_or(0)),
            "users" => Reply::Int(
                self.ks
                    .hash(&self.key(&format!("u:{arg}")))?
                    .map_or(0, |h| h.len() as i64),
            ),
            "list" => Reply::Array(
                self.ks
                    .hash(&self.key(&format!("u:{arg}")))?
                    .map(|h| h.keys().cloned().map(Reply::Str).collect())
                    .unwrap_or_default(),
            ),
            "user" => Reply::Int(self.ks.hget(&self.key("u:g"), arg)?.unwrap_or(0)),
            other => return Err(format!("rollcall: unknown read {other}")),
        })
    }
}

/// Lua's `string.match(target, '^(.*)/(%d+)$')`: the k stays a string.
fn split_lua_incarnation(inc: &str) -> Option<(&str, &str)> {
    let slash = inc.rfind('/')?;
    let k = &inc[slash + 1..];
    (!k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())).then(|| (&inc[..slash], k))
}
