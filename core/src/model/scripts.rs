//! The scripts, as the model runs them: each function mirrors the Lua
//! function of the same name in `lua/*.lua`, line for line where it can;
//! read them side by side.

use std::collections::BTreeSet;

use crate::event::OfflineReason;
use crate::op::{Millis, Op, Reply};
use crate::protocol::{
    Adopted, Apply, Call, Feed, Heartbeat, Lane, Mark, Read, Reap, Reassert, Register, Retire,
    ScriptReply, Status, Updated, change_id,
};
use crate::schema::{Field, Schema, Target, is_data_field};
use crate::scope::Scope;

use super::keyspace::{Failed, Keyspace, Value, wrongtype};

impl Keyspace {
    /// Runs one operation at Redis time `now`, as Redis would run the script.
    pub fn run(&mut self, now: Millis, op: &Op) -> Reply {
        let Some(schema) = op.keys.first().and_then(|k| Schema::of_live_key(k)) else {
            return Reply::error("rollcall: KEYS[1] must be the live key");
        };
        let call = match Call::decode(op.script, &op.args) {
            Ok(call) => call,
            Err(e) => return Reply::error(e.to_string()),
        };
        let mut run = Run {
            ks: self,
            schema,
            online: Vec::new(),
            offline: Vec::new(),
            adopted: Vec::new(),
            updated: Vec::new(),
            keep_as: None,
            feed: None,
            at: 0,
        };
        let result = match &call {
            Call::Register(a) => run.register(now, a),
            Call::Apply(a) => run.apply(now, a),
            Call::Reassert(a) => run.reassert(now, a),
            Call::Heartbeat(a) => run.heartbeat(now, a),
            Call::Retire(a) => run.retire(now, a),
            Call::Reap(a) => run.reap(now, a),
            Call::Read(a) => return run.read(now, a).unwrap_or_else(Reply::error),
        };
        result.map_or_else(Reply::error, |r| r.encode())
    }
}

/// One script call in progress: the Lua locals `base` (as the schema of
/// its keys), `online`, `offline`, `adopted`, and where its reply is kept
/// (`keep_as`, `keep_id`).
struct Run<'a> {
    ks: &'a mut Keyspace,
    schema: Schema,
    online: Vec<String>,
    offline: Vec<String>,
    adopted: Vec<Adopted>,
    /// The prelude's `updated`: users whose data the call changed, in
    /// first-change order.
    updated: Vec<String>,
    keep_as: Option<(String, String)>,
    feed: Option<FeedCall>,
    /// The prelude's `at`: the time of this call, as `clock` gave it.
    at: i64,
}

/// The prelude's `feed`: what a call that makes transitions records.
struct FeedCall {
    base: String,
    down: OfflineReason,
    feed: Feed,
    now: i64,
}

impl Run<'_> {
    fn live(&self) -> String {
        self.schema.live()
    }

    fn clock(&mut self, now: Millis, stall_ms: i64) -> Result<i64, Failed> {
        self.at = self.tick(now, stall_ms)?;
        Ok(self.at)
    }

    /// The prelude's `tick`: advances the shared clock, returns now.
    fn tick(&mut self, now: Millis, stall_ms: i64) -> Result<i64, Failed> {
        let now = now as i64;
        let key = self.schema.clock();
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
        let dead = self.schema.dead();
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

    /// The key, the hash field, and for a user field its scope id.
    fn target(&self, field: &str) -> Result<(String, String, Option<String>), Failed> {
        match Field::target(field) {
            Some(Target::User { scope_id, user }) => {
                Ok((self.schema.users_of_id(&scope_id), user, Some(scope_id)))
            }
            Some(Target::Count(name)) => Ok((self.schema.counts(), name, None)),
            Some(Target::Data { user, sid }) => Ok((self.schema.data(&user), sid, None)),
            None => Err(format!("rollcall: malformed field {field:?}")),
        }
    }

    /// The prelude's `enter`: a user came online in a scope.
    fn enter(&mut self, scope_id: &str, user: &str) -> Result<(), Failed> {
        self.ks
            .zadd(&self.schema.members_of_id(scope_id), user, 0)?;
        let at = self.at;
        self.ks.hset(&self.schema.user_scopes(user), scope_id, at)
    }

    /// The prelude's `exit`: a user went offline in a scope.
    fn exit(&mut self, scope_id: &str, user: &str) -> Result<(), Failed> {
        self.ks.zrem(&self.schema.members_of_id(scope_id), user)?;
        self.ks.hdel(&self.schema.user_scopes(user), scope_id)
    }

    /// The prelude's `touch`.
    fn touch(&mut self, user: &str) {
        if !self.updated.iter().any(|u| u == user) {
            self.updated.push(user.to_owned());
        }
    }

    /// The prelude's `put`: sets (`json` not empty) or removes one socket's
    /// data in `own`'s share.
    fn put(&mut self, own: &str, field: &str, json: &str) -> Result<(), Failed> {
        let Some(Target::Data { user, sid }) = Field::target(field) else {
            return Err(format!("rollcall: malformed field {field:?}"));
        };
        let key = self.schema.data(&user);
        let inc = &own[self.schema.own("").len()..];
        let slot = crate::schema::data_slot(inc, &sid);
        if json.is_empty() {
            if !self.ks.zrem(own, field)? {
                return Ok(());
            }
            self.ks.tdel(&key, &slot)?;
        } else {
            self.ks.zadd(own, field, 1)?;
            if self
                .ks
                .texts(&key)?
                .and_then(|h| h.get(&slot))
                .map(String::as_str)
                == Some(json)
            {
                return Ok(());
            }
            self.ks.tset(&key, &slot, json)?;
        }
        self.touch(&user);
        Ok(())
    }

    /// The prelude's `data_of`: a user's data, in slot order.
    fn data_of(&self, user: &str) -> Result<Vec<String>, Failed> {
        Ok(self
            .ks
            .texts(&self.schema.data(user))?
            .map(|h| h.values().cloned().collect())
            .unwrap_or_default())
    }

    /// The prelude's `updates`: the users of `updated` still online, with
    /// their data.
    fn updates(&mut self) -> Result<Vec<Updated>, Failed> {
        let global = self.schema.users(&Scope::Global);
        let mut out = Vec::new();
        for user in std::mem::take(&mut self.updated) {
            if self.ks.hget(&global, &user)?.is_some() {
                let data = self.data_of(&user)?;
                out.push(Updated { user, data });
            }
        }
        Ok(out)
    }

    /// The prelude's `recalled`: a kept reply with the data, as it is now,
    /// of the users whose data `fields` set.
    fn recalled<'f>(
        &mut self,
        mut again: ScriptReply,
        fields: impl IntoIterator<Item = &'f str>,
    ) -> Result<ScriptReply, Failed> {
        for field in fields {
            if let Some(Target::Data { user, .. }) = Field::target(field) {
                self.touch(&user);
            }
        }
        again.updated = self.updates()?;
        Ok(again)
    }

    fn mv(&mut self, own: &str, field: &str, mut d: i64) -> Result<i8, Failed> {
        if is_data_field(field) {
            if d < 0 {
                self.put(own, field, "")?;
            }
            return Ok(0);
        }
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
        let (key, name, scope) = self.target(field)?;
        let total = self.ks.hincrby(&key, &name, d)?;
        if total <= 0 {
            self.ks.hdel(&key, &name)?;
            if let Some(scope) = scope.filter(|_| total - d > 0) {
                self.exit(&scope, &name)?;
                return Ok(-1);
            }
        } else if let Some(scope) = scope.filter(|_| total - d <= 0) {
            self.enter(&scope, &name)?;
            return Ok(1);
        }
        Ok(0)
    }

    /// `check_types` of the prelude: refuses, before anything is written, a
    /// call whose counter keys hold another type than a hash.
    fn check_types<'f>(&self, fields: impl IntoIterator<Item = &'f str>) -> Result<(), Failed> {
        let mut hashes = BTreeSet::from([self.schema.counts()]);
        let mut zsets = BTreeSet::from([self.schema.seen()]);
        for field in fields {
            let (key, name, scope) = self.target(field)?;
            hashes.insert(key);
            if let Some(scope) = scope {
                zsets.insert(self.schema.members_of_id(&scope));
                hashes.insert(self.schema.user_scopes(&name));
            }
        }
        let is_hash: fn(&Value) -> bool = |v| matches!(v, Value::Hash(_) | Value::Texts(_));
        let is_zset: fn(&Value) -> bool = |v| matches!(v, Value::ZSet(_));
        let is_stream: fn(&Value) -> bool = |v| matches!(v, Value::Stream(_));
        let typed = (hashes.into_iter().map(|k| (k, is_hash)))
            .chain(zsets.into_iter().map(|k| (k, is_zset)))
            .chain([(self.schema.feed(), is_stream)]);
        for (key, fits) in typed {
            if self.ks.keys.get(&key).is_some_and(|v| !fits(v)) {
                return Err(wrongtype(&key));
            }
        }
        Ok(())
    }

    /// The prelude's `record`: what call `id` of `inc` records beside its
    /// transitions.
    fn record(&mut self, inc: &str, id: &str, down: OfflineReason, feed: Feed, now: i64) {
        self.feed = Some(FeedCall {
            base: format!("{inc}:{id}"),
            down,
            feed,
            now,
        });
    }

    /// The prelude's `publish`: each transition of this call into the feed
    /// and last seen.
    fn publish(&mut self, data: &[Updated]) -> Result<(), Failed> {
        let Some(call) = self.feed.as_ref() else {
            return Ok(());
        };
        if self.online.is_empty() && self.offline.is_empty() && data.is_empty() {
            return Ok(());
        }
        let (stream, seen) = (self.schema.feed(), self.schema.seen());
        let global = self.schema.users(&Scope::Global);
        let marks = self
            .online
            .iter()
            .map(|f| (Mark::Online, f))
            .chain(self.offline.iter().map(|f| (Mark::Offline(call.down), f)));
        let mut stamped = false;
        for (i, (mark, field)) in marks.enumerate() {
            if call.feed.max_len > 0 {
                let entry =
                    crate::feed::entry_fields(&format!("{}:{i}", call.base), mark, field, call.now);
                self.ks.stream_mut(&stream)?.add(call.now as u64, &entry);
            }
            let (key, name, _) = self.target(field)?;
            if key == global {
                stamped = true;
                if mark == Mark::Online {
                    self.ks.zrem(&seen, &name)?;
                } else {
                    self.ks.zadd(&seen, &name, call.now)?;
                }
            }
        }
        if call.feed.max_len > 0 {
            let first = self.online.len() + self.offline.len();
            for (k, u) in data.iter().enumerate() {
                let id = format!("{}:{}", call.base, first + k);
                let entry = crate::feed::update_fields(&id, &u.user, call.now, &u.data);
                self.ks.stream_mut(&stream)?.add(call.now as u64, &entry);
            }
            let max = usize::try_from(call.feed.max_len).unwrap_or(usize::MAX);
            self.ks.stream_mut(&stream)?.trim(max);
        }
        if stamped {
            let below = call.now - call.feed.seen_ms as i64;
            self.ks.zrem_below(&seen, below)?;
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

    fn reply(&mut self, status: Status, detail: &str) -> Result<ScriptReply, Failed> {
        let updated = self.updates()?;
        self.publish(&updated)?;
        let reply = ScriptReply {
            status,
            detail: detail.to_owned(),
            online: std::mem::take(&mut self.online),
            offline: std::mem::take(&mut self.offline),
            adopted: std::mem::take(&mut self.adopted),
            updated,
        };
        if let Some((key, id)) = self.keep_as.take() {
            self.ks.set_string(&key, &reply.pack_kept(&id));
        }
        Ok(reply)
    }

    /// The prelude's `recall`: the kept reply if call `id` of `inc`'s
    /// `lane` ran already; else this call's reply will be kept. A kept text
    /// that is no kept reply (a corrupted keyspace) is none.
    fn recall(&mut self, lane: Lane, inc: &str, id: &str) -> Result<Option<ScriptReply>, Failed> {
        let key = self.schema.kept_reply(lane, inc);
        let kept = match self.ks.keys.get(&key) {
            None => None,
            Some(Value::Str(s)) => ScriptReply::unpack_kept(s),
            Some(_) => return Err(wrongtype(&key)),
        };
        if let Some((kept_id, reply)) = kept
            && kept_id == id
        {
            return Ok(Some(reply));
        }
        self.keep_as = Some((key, id.to_owned()));
        Ok(None)
    }

    /// The prelude's `adopt`: the transitions of `inc`'s kept replies (their
    /// own, and those they adopted in turn) that still hold are adopted by
    /// this reply, with their change ids. An online holds while the user is
    /// online in the scope or this call took them offline; an offline holds
    /// while the user is offline. A kept text that is no kept reply adopts
    /// nothing.
    fn adopt(&mut self, inc: &str) -> Result<(), Failed> {
        let gone: BTreeSet<String> = self.offline.iter().cloned().collect();
        for lane in Lane::ALL {
            let key = self.schema.kept_reply(lane, inc);
            let Some((call_id, kept)) = (match self.ks.keys.get(&key) {
                None => None,
                Some(Value::Str(s)) => ScriptReply::unpack_kept(s),
                Some(_) => return Err(wrongtype(&key)),
            }) else {
                continue;
            };
            let down = match lane {
                Lane::Reap => OfflineReason::Reaped,
                Lane::Write if kept.detail == inc => OfflineReason::Shutdown,
                Lane::Write => OfflineReason::Disconnect,
            };
            let own = kept
                .online
                .iter()
                .map(|f| (Mark::Online, f))
                .chain(kept.offline.iter().map(|f| (Mark::Offline(down), f)))
                .enumerate()
                .map(|(i, (mark, field))| Adopted {
                    change_id: change_id(inc, &call_id, i),
                    mark,
                    field: field.clone(),
                });
            let candidates: Vec<Adopted> = kept.adopted.iter().cloned().chain(own).collect();
            for a in candidates {
                let (key, name, _) = self.target(&a.field)?;
                let on = self.ks.hget(&key, &name)?.is_some();
                let holds = match a.mark {
                    Mark::Online => on || gone.contains(&a.field),
                    Mark::Offline(_) => !on,
                };
                if holds {
                    self.adopted.push(a);
                }
            }
        }
        Ok(())
    }

    /// The prelude's `forget_kept`: an incarnation's kept replies go with it.
    fn forget_kept(&mut self, inc: &str) {
        for lane in Lane::ALL {
            let key = self.schema.kept_reply(lane, inc);
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

    fn register(&mut self, now: Millis, a: &Register) -> Result<ScriptReply, Failed> {
        let now = self.clock(now, a.stall_ms as i64)?;
        let node = a.node.as_str();
        let ttl = a.ttl_ms as i64;
        let mut k = a.k as i64;
        let (live, nodes, dead) = (self.live(), self.schema.nodes(), self.schema.dead());
        if let Some(prev) = self.ks.hget(&nodes, node)? {
            if k <= prev {
                k = prev + 1;
            }
            let old = format!("{node}/{prev}");
            if a.replace && u64::try_from(prev).ok() != a.keep && self.ks.zrem(&live, &old)? {
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
        let ver = self.schema.versions();
        self.ks.hset(&ver, &inc, 0)?;
        self.reply(Status::Ok, &k.to_string())
    }

    /// Whether `inc`'s stored version is `version` (the scripts compare
    /// the texts: `None` matches none).
    fn version_is(&self, inc: &str, version: Option<u64>) -> Result<bool, Failed> {
        let stored = self.ks.hget(&self.schema.versions(), inc)?;
        Ok(version.is_some() && stored.and_then(|v| u64::try_from(v).ok()) == version)
    }

    fn apply(&mut self, now: Millis, a: &Apply) -> Result<ScriptReply, Failed> {
        let now = self.clock(now, a.stall_ms as i64)?;
        let inc = a.incarnation.as_str();
        if !self.renew(now, inc, a.ttl_ms as i64)? {
            return self.reply(Status::Fenced, "");
        }
        if let Some(again) = self.recall(Lane::Write, inc, &a.call_id)? {
            return self.recalled(again, a.data.iter().map(|(f, _)| f.as_str()));
        }
        if !self.version_is(inc, a.version)? {
            return self.reply(Status::Drift, "");
        }
        self.check_types(
            (a.deltas.iter().map(|(f, _)| f.as_str()))
                .chain(a.data.iter().map(|(f, _)| f.as_str())),
        )?;
        self.ks.hincrby(&self.schema.versions(), inc, 1)?;
        self.record(inc, &a.call_id, OfflineReason::Disconnect, a.feed, now);
        let own = self.schema.own(inc);
        for (field, delta) in &a.deltas {
            let edge = self.mv(&own, field, *delta)?;
            self.note(field, edge);
        }
        for (field, json) in &a.data {
            self.put(&own, field, json)?;
        }
        self.reply(Status::Ok, "")
    }

    fn reassert(&mut self, now: Millis, a: &Reassert) -> Result<ScriptReply, Failed> {
        let now = self.clock(now, a.stall_ms as i64)?;
        let inc = a.incarnation.as_str();
        if !self.renew(now, inc, a.ttl_ms as i64)? {
            return self.reply(Status::Fenced, "");
        }
        if let Some(again) = self.recall(Lane::Write, inc, &a.call_id)? {
            return self.recalled(again, a.data.iter().map(|(f, _)| f.as_str()));
        }
        let own = self.schema.own(inc);
        if self.ks.zcard(&own)? as u64 > a.max_write_fields {
            return self.reply(Status::Rotate, "");
        }
        let want = &a.counts;
        let wanted: BTreeSet<&str> = (want.iter().map(|(f, _)| f.as_str()))
            .chain(a.data.iter().map(|(f, _)| f.as_str()))
            .collect();
        let have: Vec<(String, i64)> = match self.ks.zset(&own)? {
            Some(z) => z.iter().map(|(m, s)| (m.to_owned(), s)).collect(),
            None => Vec::new(),
        };
        self.check_types(
            have.iter()
                .map(|(f, _)| f.as_str())
                .chain(want.iter().map(|(f, _)| f.as_str()))
                .chain(a.data.iter().map(|(f, _)| f.as_str())),
        )?;
        self.record(inc, &a.call_id, OfflineReason::Disconnect, a.feed, now);
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
        for (field, json) in &a.data {
            self.put(&own, field, json)?;
        }
        self.ks
            .hset(&self.schema.versions(), inc, a.version as i64)?;
        self.reply(Status::Ok, "")
    }

    fn heartbeat(&mut self, now: Millis, a: &Heartbeat) -> Result<ScriptReply, Failed> {
        let now = self.clock(now, a.stall_ms as i64)?;
        let inc = a.incarnation.as_str();
        if !self.renew(now, inc, a.ttl_ms as i64)? {
            return self.reply(Status::Fenced, "");
        }
        if let Some(again) = self.recall(Lane::Write, inc, &a.call_id)? {
            return Ok(again);
        }
        if !self.version_is(inc, a.version)? {
            return self.reply(Status::Drift, "");
        }
        self.reply(Status::Ok, "")
    }

    fn retire(&mut self, now: Millis, a: &Retire) -> Result<ScriptReply, Failed> {
        self.clock(now, a.stall_ms as i64)?;
        let inc = a.incarnation.as_str();
        let (live, dead) = (self.live(), self.schema.dead());
        if self.ks.zrem(&live, inc)? {
            self.ks.zadd(&dead, inc, 0)?;
            return self.reply(Status::Ok, "");
        }
        if self.ks.zscore(&dead, inc)?.is_some() {
            return self.reply(Status::Ok, "");
        }
        self.reply(Status::Gone, "")
    }

    fn reap(&mut self, now: Millis, a: &Reap) -> Result<ScriptReply, Failed> {
        let now = self.clock(now, a.stall_ms as i64)?;
        let me = a.incarnation.as_str();
        let (live, dead) = (self.live(), self.schema.dead());
        let (id, lane) = (a.call_id.as_str(), a.lane);
        let other = a.target.is_none();
        let target = match &a.target {
            None => {
                let Some(mine) = self.ks.zscore(&live, me)? else {
                    return self.reply(Status::Fenced, "");
                };
                if let Some(again) = self.recall(lane, me, id)? {
                    return Ok(again);
                }
                if mine < now {
                    return self.reply(Status::Idle, "");
                }
                let first_dead = self
                    .ks
                    .zset(&dead)?
                    .and_then(|z| z.iter().next().map(|(m, _)| m.to_owned()));
                match first_dead {
                    Some(t) => t,
                    None => {
                        let expired = self.ks.zset(&live)?.and_then(|z| {
                            z.iter()
                                .next()
                                .filter(|(_, s)| *s < now)
                                .map(|(m, _)| m.to_owned())
                        });
                        let Some(t) = expired else {
                            return self.reply(Status::Idle, "");
                        };
                        self.ks.zrem(&live, &t)?;
                        self.ks.zadd(&dead, &t, 0)?;
                        t
                    }
                }
            }
            Some(target) => {
                // Only a registered incarnation keeps replies, and only one
                // reaps (its reaper adopted its last call's transitions).
                if self.ks.zscore(&live, me)?.is_none() && self.ks.zscore(&dead, me)?.is_none() {
                    return self.reply(Status::Idle, "");
                }
                if let Some(again) = self.recall(lane, me, id)? {
                    return Ok(again);
                }
                if self.ks.zscore(&dead, target)?.is_none() {
                    return self.reply(Status::Idle, "");
                }
                target.clone()
            }
        };
        self.record(me, id, a.down, a.feed, now);
        let own = self.schema.own(&target);
        // ZRANGE own 0 slice-1 (Config::validate keeps slice >= 1).
        let take = usize::try_from(a.slice).unwrap_or(usize::MAX);
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
            return self.reply(Status::Slice, &target);
        }
        self.ks.zrem(&dead, &target)?;
        self.ks.hdel(&self.schema.versions(), &target)?;
        if other {
            self.adopt(&target)?;
        }
        self.forget_kept(&target);
        if let Some((node, k)) = split_lua_incarnation(&target) {
            let nodes = self.schema.nodes();
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
            let clock = self.schema.clock();
            self.ks.keys.remove(&clock);
        }
        self.reply(Status::Done, &target)
    }

    fn read(&mut self, now: Millis, a: &Read) -> Result<Reply, Failed> {
        let count = self.schema.counts();
        Ok(match a {
            Read::Clients => {
                Reply::Int(self.ks.hget(&count, &Field::Clients.encode())?.unwrap_or(0))
            }
            Read::Sockets { scope_id } => Reply::Int(
                self.ks
                    .hget(&count, &Field::sockets_of_id(scope_id))?
                    .unwrap_or(0),
            ),
            Read::Users { scope_id } => Reply::Int(
                self.ks
                    .hash(&self.schema.users_of_id(scope_id))?
                    .map_or(0, |h| h.len() as i64),
            ),
            Read::Members {
                scope_id,
                after,
                limit,
            } => {
                let limit = *limit as usize;
                let mut users: Vec<String> =
                    match self.ks.zset(&self.schema.members_of_id(scope_id))? {
                        // ZRANGEBYLEX (after + LIMIT 0 limit+1: every score is 0.
                        // No user id is empty: after "" is from the first.
                        Some(z) => z
                            .iter_after(0, after)
                            .take(limit + 1)
                            .map(|(m, _)| m.to_owned())
                            .collect(),
                        None => Vec::new(),
                    };
                let more = users.len() > limit;
                users.truncate(limit);
                let mut out = vec![Reply::Int(i64::from(more))];
                let counts = self.schema.users_of_id(scope_id);
                for user in users {
                    let sockets = self.ks.hget(&counts, &user)?.unwrap_or(0);
                    let since = self
                        .ks
                        .hget(&self.schema.user_scopes(&user), scope_id)?
                        .unwrap_or(0);
                    let data = self.data_of(&user)?;
                    out.extend([
                        Reply::Str(user),
                        Reply::Int(sockets),
                        Reply::Int(since),
                        Reply::Int(data.len() as i64),
                    ]);
                    out.extend(data.into_iter().map(Reply::Str));
                }
                Reply::Array(out)
            }
            Read::Scopes { user } => Reply::Array(
                self.ks
                    .hash(&self.schema.user_scopes(user))?
                    .map(|h| {
                        h.iter()
                            .flat_map(|(scope, since)| {
                                [Reply::Str(scope.clone()), Reply::Int(*since)]
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Read::User { user } => Reply::Int(
                self.ks
                    .hget(&self.schema.users(&Scope::Global), user)?
                    .unwrap_or(0),
            ),
            Read::Seen { user, keep_ms } => {
                let at = self.ks.zscore(&self.schema.seen(), user)?;
                let online = self
                    .ks
                    .hget(&self.schema.users(&Scope::Global), user)?
                    .is_some();
                match at {
                    Some(at) if !online && at >= now as i64 - *keep_ms as i64 => Reply::Int(at),
                    _ => Reply::Nil,
                }
            }
        })
    }
}

/// Lua's `string.match(target, '^(.*)/(%d+)$')`: the k stays a string.
fn split_lua_incarnation(inc: &str) -> Option<(&str, &str)> {
    let slash = inc.rfind('/')?;
    let k = &inc[slash + 1..];
    (!k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())).then(|| (&inc[..slash], k))
}
