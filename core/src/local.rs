//! One node's local truth: its sockets, clients, rooms and lingering users,
//! and per counter what it wants in Redis (`desired`) against what Redis has
//! acknowledged (`committed`). The difference is what the next write sends.
//!
//! Strings are interned to `u32`s so the hot path hashes small keys; an
//! interned name is freed when the last counter that uses it goes. Scope
//! names are built in a reused buffer, so an input about a known scope does
//! not allocate.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::compact::{Id, Rooms, Spill};
use crate::op::Millis;
use crate::schema::{Field, push_sockets_field, push_user_field};
use crate::scope::{Scope, namespace_of_id, push_namespace_id, push_room_id};

/// A counter this node contributes to, by interned ids, packed in one word:
/// scope id in the high half, user id (or [`NO_USER`]) in the low half.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key(u64);

/// No user: a socket count, or an anonymous socket.
const NO_USER: u32 = u32::MAX;

/// A [`Key`], unpacked.
enum Kind {
    Clients,
    Sockets(u32),
    User(u32, u32),
}

impl Key {
    /// Scope and user ids stay below `u32::MAX`, so no other key packs to this.
    const CLIENTS: Key = Key(u64::MAX);

    fn sockets(scope: u32) -> Key {
        Key::user(scope, NO_USER)
    }

    fn user(scope: u32, user: u32) -> Key {
        Key(u64::from(scope) << 32 | u64::from(user))
    }

    fn kind(self) -> Kind {
        if self == Key::CLIENTS {
            return Kind::Clients;
        }
        let (scope, user) = ((self.0 >> 32) as u32, self.0 as u32);
        if user == NO_USER {
            Kind::Sockets(scope)
        } else {
            Kind::User(scope, user)
        }
    }
}

/// Set in [`Tally::desired`] while the tally changed since the last write.
const DIRTY: u32 = 1 << 31;

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// The count, with the [`DIRTY`] mark in its top bit.
    desired: u32,
    committed: u32,
}

impl Tally {
    fn desired(&self) -> u32 {
        self.desired & !DIRTY
    }

    fn dirty(&self) -> bool {
        self.desired & DIRTY != 0
    }
}

/// Strings by id, with a use count; ids of freed strings are reused.
#[derive(Debug, Default)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    uses: Vec<u32>,
    free: Vec<u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = name.into();
                id
            }
            None => {
                self.names.push(name.into());
                self.uses.push(0);
                (self.names.len() - 1) as u32
            }
        };
        assert!(id < NO_USER - 1, "too many names");
        self.ids.insert(name.into(), id);
        id
    }

    fn lookup(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    fn acquire(&mut self, id: u32) {
        self.uses[id as usize] += 1;
    }

    fn release(&mut self, id: u32) {
        let uses = &mut self.uses[id as usize];
        *uses -= 1;
        if *uses == 0 {
            let name = std::mem::take(&mut self.names[id as usize]);
            self.ids.remove(&name);
            self.free.push(id);
        }
    }
}

/// The id [`Scope::encode`] gives `namespace`, built in `buf`.
fn namespace_scope<'a>(buf: &'a mut String, namespace: &str) -> &'a str {
    buf.clear();
    push_namespace_id(buf, namespace);
    buf
}

/// The id [`Scope::encode`] gives `room`, built in `buf`; `ns` is the id of
/// the room's namespace scope.
fn room_scope<'a>(buf: &'a mut String, ns: &str, room: &str) -> &'a str {
    let namespace = namespace_of_id(ns).expect("a namespace scope");
    buf.clear();
    push_room_id(buf, namespace, room);
    buf
}

#[derive(Debug)]
struct SocketEntry {
    /// [`NO_USER`] when anonymous.
    user: u32,
    ns: u32,
    rooms: Rooms,
}

impl SocketEntry {
    fn user(&self) -> Option<u32> {
        (self.user != NO_USER).then_some(self.user)
    }
}

/// What a disconnected user's last socket still holds during the grace
/// period. `whole` until the user reconnects; after that only `rooms` linger,
/// until the new socket joins them again or the period ends.
#[derive(Debug)]
struct Linger {
    user: u32,
    ns: u32,
    rooms: Vec<u32>,
    whole: bool,
}

type LingerId = (Millis, u64);

/// Global scope id: interned first and never freed.
const GLOBAL: u32 = 0;

/// A dirty list this long (and a quarter of the tallies or more) is dropped:
/// the next write finds the dirty tallies by their mark instead, which costs
/// a pass over the tallies but keeps no list as long as they are.
const SCAN_MIN: usize = 1024;

/// The counters and the names they use.
#[derive(Debug)]
struct Counters {
    scopes: Interner,
    users: Interner,
    tallies: FxHashMap<Key, Tally>,
    /// The tallies marked dirty, unless `scan`.
    dirty: Vec<Key>,
    /// The dirty list was dropped: the marks say which tallies are dirty.
    scan: bool,
    /// Dirty tallies a capped write left for the next one, by field name.
    /// They keep their dirty mark and are in neither `dirty` nor a scan.
    backlog: BTreeMap<String, Key>,
    backlog_keys: FxHashSet<Key>,
}

#[derive(Debug)]
pub(crate) struct Local {
    counters: Counters,
    sockets: FxHashMap<Id, SocketEntry>,
    spill: Spill,
    clients: FxHashSet<Id>,
    lingering: BTreeMap<LingerId, Linger>,
    linger_by_user: FxHashMap<(u32, u32), Vec<LingerId>>,
    linger_seq: u64,
    /// Scope names are built here.
    scratch: String,
}

/// Why an input about a socket or client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Duplicate,
    Unknown,
}

impl Local {
    pub fn new() -> Local {
        let mut scopes = Interner::default();
        let g = scopes.intern(&Scope::Global.encode());
        debug_assert_eq!(g, GLOBAL);
        scopes.acquire(GLOBAL);
        Local {
            counters: Counters {
                scopes,
                users: Interner::default(),
                tallies: FxHashMap::default(),
                dirty: Vec::new(),
                scan: false,
                backlog: BTreeMap::new(),
                backlog_keys: FxHashSet::default(),
            },
            sockets: FxHashMap::default(),
            spill: Spill::default(),
            clients: FxHashSet::default(),
            lingering: BTreeMap::new(),
            linger_by_user: FxHashMap::default(),
            linger_seq: 0,
            scratch: String::new(),
        }
    }

    // ----- inputs -----

    pub fn connect(
        &mut self,
        sid: &str,
        user: Option<&str>,
        namespace: &str,
    ) -> Result<(), Refusal> {
        let Entry::Vacant(slot) = self.sockets.entry(Id::new(sid)) else {
            return Err(Refusal::Duplicate);
        };
        let c = &mut self.counters;
        let ns = c
            .scopes
            .intern(namespace_scope(&mut self.scratch, namespace));
        let user = user.map(|u| c.users.intern(u));
        c.socket_contribution(ns, user, 1);
        slot.insert(SocketEntry {
            user: user.unwrap_or(NO_USER),
            ns,
            rooms: Rooms::NONE,
        });
        if let Some(u) = user {
            self.resume_lingering(u, ns);
        }
        Ok(())
    }

    pub fn disconnect(&mut self, sid: &str, now: Millis, grace: Millis) -> Result<(), Refusal> {
        let entry = self
            .sockets
            .remove(sid.as_bytes())
            .ok_or(Refusal::Unknown)?;
        let user = entry.user();
        match user {
            Some(user) if grace > 0 && self.counters.desired(Key::user(entry.ns, user)) == 1 => {
                let rooms = entry.rooms.as_slice(&self.spill).to_vec();
                entry.rooms.free(&mut self.spill);
                let id = (now.saturating_add(grace), self.linger_seq);
                self.linger_seq += 1;
                self.linger_by_user
                    .entry((user, entry.ns))
                    .or_default()
                    .push(id);
                self.lingering.insert(
                    id,
                    Linger {
                        user,
                        ns: entry.ns,
                        rooms,
                        whole: true,
                    },
                );
            }
            _ => {
                for room in entry.rooms.as_slice(&self.spill) {
                    self.counters.room_contribution(*room, user, -1);
                }
                entry.rooms.free(&mut self.spill);
                self.counters.socket_contribution(entry.ns, user, -1);
            }
        }
        Ok(())
    }

    /// Joins a room; `Ok(false)` when the socket was in it already.
    pub fn join(&mut self, sid: &str, namespace_room: &str) -> Result<bool, Refusal> {
        let entry = self
            .sockets
            .get_mut(sid.as_bytes())
            .ok_or(Refusal::Unknown)?;
        let scopes = &mut self.counters.scopes;
        let scope = room_scope(&mut self.scratch, scopes.name(entry.ns), namespace_room);
        let room = scopes.intern(scope);
        if entry.rooms.contains(room, &self.spill) {
            return Ok(false);
        }
        entry.rooms.push(room, &mut self.spill);
        let (user, ns) = (entry.user(), entry.ns);
        self.counters.room_contribution(room, user, 1);
        if let Some(u) = user {
            self.adopt_lingering_room(u, ns, room);
        }
        Ok(true)
    }

    /// Leaves a room; `Ok(false)` when the socket was not in it.
    pub fn leave(&mut self, sid: &str, room_name: &str) -> Result<bool, Refusal> {
        let entry = self
            .sockets
            .get_mut(sid.as_bytes())
            .ok_or(Refusal::Unknown)?;
        let scopes = &self.counters.scopes;
        let Some(room) = scopes.lookup(room_scope(
            &mut self.scratch,
            scopes.name(entry.ns),
            room_name,
        )) else {
            return Ok(false);
        };
        if !entry.rooms.remove(room, &mut self.spill) {
            return Ok(false);
        }
        let user = entry.user();
        self.counters.room_contribution(room, user, -1);
        Ok(true)
    }

    pub fn client_open(&mut self, cid: &str) -> Result<(), Refusal> {
        if !self.clients.insert(Id::new(cid)) {
            return Err(Refusal::Duplicate);
        }
        self.counters.bump(Key::CLIENTS, 1);
        Ok(())
    }

    pub fn client_close(&mut self, cid: &str) -> Result<(), Refusal> {
        if !self.clients.remove(cid.as_bytes()) {
            return Err(Refusal::Unknown);
        }
        self.counters.bump(Key::CLIENTS, -1);
        Ok(())
    }

    /// Ends every grace period due by `now`.
    #[inline]
    pub fn expire_lingering(&mut self, now: Millis) {
        if self.lingering.is_empty() {
            return;
        }
        while let Some(entry) = self.lingering.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (id, linger) = entry.remove_entry();
            self.unindex_linger(linger.user, linger.ns, id);
            self.drop_linger(linger);
        }
    }

    /// When the next grace period ends.
    pub fn next_linger_deadline(&self) -> Option<Millis> {
        self.lingering.first_key_value().map(|((at, _), _)| *at)
    }

    /// Drops all lingering users at once (shutdown).
    pub fn clear_lingering(&mut self) {
        self.expire_lingering(Millis::MAX);
    }

    // ----- grace period -----

    /// A reconnect of `user` in `ns`: the oldest whole linger of that user
    /// gives back its namespace share (the new socket holds it now).
    fn resume_lingering(&mut self, user: u32, ns: u32) {
        if self.linger_by_user.is_empty() {
            return;
        }
        let Some(ids) = self.linger_by_user.get(&(user, ns)) else {
            return;
        };
        let Some(id) = ids
            .iter()
            .copied()
            .find(|id| self.lingering.get(id).is_some_and(|l| l.whole))
        else {
            return;
        };
        let linger = self.lingering.get_mut(&id).expect("indexed");
        linger.whole = false;
        let empty = linger.rooms.is_empty();
        self.counters.socket_contribution(ns, Some(user), -1);
        if empty {
            self.lingering.remove(&id);
            self.unindex_linger(user, ns, id);
        }
    }

    /// The new socket of a user joined a room its lingering socket held.
    fn adopt_lingering_room(&mut self, user: u32, ns: u32, room: u32) {
        if self.linger_by_user.is_empty() {
            return;
        }
        let Some(ids) = self.linger_by_user.get(&(user, ns)) else {
            return;
        };
        let found = ids.iter().copied().find(|id| {
            self.lingering
                .get(id)
                .is_some_and(|l| !l.whole && l.rooms.contains(&room))
        });
        let Some(id) = found else { return };
        let linger = self.lingering.get_mut(&id).expect("indexed");
        linger.rooms.retain(|r| *r != room);
        let empty = linger.rooms.is_empty();
        self.counters.room_contribution(room, Some(user), -1);
        if empty {
            self.lingering.remove(&id);
            self.unindex_linger(user, ns, id);
        }
    }

    fn drop_linger(&mut self, linger: Linger) {
        for room in &linger.rooms {
            self.counters
                .room_contribution(*room, Some(linger.user), -1);
        }
        if linger.whole {
            self.counters
                .socket_contribution(linger.ns, Some(linger.user), -1);
        }
    }

    fn unindex_linger(&mut self, user: u32, ns: u32, id: LingerId) {
        if let Some(ids) = self.linger_by_user.get_mut(&(user, ns)) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.linger_by_user.remove(&(user, ns));
            }
        }
    }

    // ----- what to write -----

    /// The net change of the counters touched since the last write, sorted
    /// by field name: at most `limit` of them, the first by name. Clears
    /// their dirty marks; the others stay dirty, in the backlog (their names
    /// built once), for the next call.
    pub fn take_deltas(&mut self, limit: usize) -> Vec<(String, Key, i64)> {
        let c = &mut self.counters;
        // Newly dirty counters (not in the backlog): the names of those with
        // a change, and forget those without one.
        let mut fresh: Vec<(String, Key)> = Vec::new();
        if c.scan {
            c.scan = false;
            let (scopes, users, backlog) = (&mut c.scopes, &mut c.users, &c.backlog_keys);
            c.tallies.retain(|key, t| {
                if !t.dirty() || backlog.contains(key) {
                    return true;
                }
                if i64::from(t.desired()) != i64::from(t.committed) {
                    fresh.push((field_of(scopes, users, *key), *key));
                    true
                } else if t.desired() == 0 {
                    // Zero here and in Redis: forget it.
                    release(scopes, users, *key);
                    false
                } else {
                    t.desired &= !DIRTY;
                    true
                }
            });
        } else {
            let mut dirty = std::mem::take(&mut c.dirty);
            for key in dirty.drain(..) {
                let Some(t) = c.tallies.get_mut(&key) else {
                    continue;
                };
                if t.desired() != t.committed {
                    fresh.push((c.field(key), key));
                } else {
                    t.desired &= !DIRTY;
                    c.collect(key);
                }
            }
            c.dirty = dirty;
        }
        fresh.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::with_capacity(fresh.len().min(limit));
        if c.backlog.is_empty() && fresh.len() <= limit {
            // The common case: everything fits in one call.
            for (field, key) in fresh {
                let t = c.tallies.get_mut(&key).expect("a dirty counter exists");
                t.desired &= !DIRTY;
                out.push((field, key, i64::from(t.desired) - i64::from(t.committed)));
            }
            return out;
        }
        for (field, key) in fresh {
            c.backlog_keys.insert(key);
            c.backlog.insert(field, key);
        }
        while out.len() < limit {
            let Some((field, key)) = c.backlog.pop_first() else {
                break;
            };
            c.backlog_keys.remove(&key);
            let Some(t) = c.tallies.get_mut(&key) else {
                continue;
            };
            t.desired &= !DIRTY;
            let delta = i64::from(t.desired) - i64::from(t.committed);
            if delta != 0 {
                out.push((field, key, delta));
            } else {
                c.collect(key);
            }
        }
        out
    }

    /// Every counter this node wants counted is to be written again, as
    /// deltas from what Redis acknowledged (after a fresh registration,
    /// nothing): the next writes carry the whole local truth, in bounded
    /// calls.
    pub fn mark_all_dirty(&mut self) {
        let c = &mut self.counters;
        c.dirty.clear();
        c.backlog.clear();
        c.backlog_keys.clear();
        for t in c.tallies.values_mut() {
            t.desired |= DIRTY;
        }
        c.scan = true;
    }

    /// How many fields the whole local truth has (a re-assert's size).
    pub fn field_count(&self) -> usize {
        self.counters
            .tallies
            .values()
            .filter(|t| t.desired() > 0)
            .count()
    }

    pub fn has_dirty(&self) -> bool {
        let c = &self.counters;
        c.scan || !c.dirty.is_empty() || !c.backlog.is_empty()
    }

    /// The whole local truth, sorted by field name; clears the dirty marks.
    pub fn snapshot(&mut self) -> Vec<(String, Key, u32)> {
        let c = &mut self.counters;
        c.dirty.clear();
        c.backlog.clear();
        c.backlog_keys.clear();
        c.scan = false;
        for t in c.tallies.values_mut() {
            t.desired &= !DIRTY;
        }
        let mut out: Vec<(String, Key, u32)> = c
            .tallies
            .iter()
            .filter(|(_, t)| t.desired > 0)
            .map(|(k, t)| (c.field(*k), *k, t.desired))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// An apply went through.
    pub fn commit_deltas(&mut self, deltas: &[(Key, i64)]) {
        let c = &mut self.counters;
        for (key, delta) in deltas {
            if let Some(t) = c.tallies.get_mut(key) {
                t.committed = (i64::from(t.committed) + delta) as u32;
            }
            c.collect(*key);
        }
    }

    /// A re-assert went through: Redis holds exactly `snapshot`.
    pub fn commit_snapshot(&mut self, snapshot: &[(Key, u32)]) {
        self.forget_committed();
        let c = &mut self.counters;
        for (key, count) in snapshot {
            if let Some(t) = c.tallies.get_mut(key) {
                t.committed = *count;
            }
        }
        let (scopes, users) = (&mut c.scopes, &mut c.users);
        c.tallies.retain(|key, t| {
            let stale = t.desired == 0 && t.committed == 0;
            if stale {
                release(scopes, users, *key);
            }
            !stale
        });
    }

    /// Redis holds nothing of this node (a new incarnation).
    pub fn forget_committed(&mut self) {
        for t in self.counters.tallies.values_mut() {
            t.committed = 0;
        }
    }

    // ----- local truth, for hosts and tests -----

    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Users with a socket here, in any namespace (lingering ones included).
    pub fn user_count(&self) -> usize {
        self.counters
            .tallies
            .iter()
            .filter(|(k, t)| matches!(k.kind(), Kind::User(GLOBAL, _)) && t.desired() > 0)
            .count()
    }

    /// What this node contributes to one field (sockets still lingering in
    /// a grace period included).
    pub fn desired_of(&self, field: &Field) -> u32 {
        let c = &self.counters;
        let key = match field {
            Field::Clients => Some(Key::CLIENTS),
            Field::Sockets(scope) => c.scopes.lookup(&scope.encode()).map(Key::sockets),
            Field::User(scope, user) => c
                .scopes
                .lookup(&scope.encode())
                .zip(c.users.lookup(user))
                .map(|(s, u)| Key::user(s, u)),
        };
        key.map_or(0, |k| c.desired(k))
    }

    /// Every field this node wants counted, with its count, sorted.
    pub fn desired_fields(&self) -> Vec<(String, u32)> {
        let c = &self.counters;
        let mut out: Vec<(String, u32)> = c
            .tallies
            .iter()
            .filter(|(_, t)| t.desired() > 0)
            .map(|(k, t)| (c.field(*k), t.desired()))
            .collect();
        out.sort();
        out
    }

    /// Sockets of this node, sorted by id (for hosts that need to list them).
    pub fn socket_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.sockets.keys().map(Id::as_str).collect();
        ids.sort_unstable();
        ids
    }

    #[cfg(test)]
    pub fn interned(&self) -> (usize, usize) {
        (
            self.counters.scopes.ids.len(),
            self.counters.users.ids.len(),
        )
    }
}

impl Counters {
    fn socket_contribution(&mut self, ns: u32, user: Option<u32>, d: i32) {
        self.bump(Key::sockets(GLOBAL), d);
        self.bump(Key::sockets(ns), d);
        if let Some(u) = user {
            self.bump(Key::user(GLOBAL, u), d);
            self.bump(Key::user(ns, u), d);
        }
    }

    fn room_contribution(&mut self, room: u32, user: Option<u32>, d: i32) {
        self.bump(Key::sockets(room), d);
        if let Some(u) = user {
            self.bump(Key::user(room, u), d);
        }
    }

    fn desired(&self, key: Key) -> u32 {
        self.tallies.get(&key).map_or(0, Tally::desired)
    }

    fn bump(&mut self, key: Key, d: i32) {
        let tally = match self.tallies.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                acquire(&mut self.scopes, &mut self.users, key);
                e.insert(Tally::default())
            }
        };
        let desired = tally
            .desired()
            .checked_add_signed(d)
            .filter(|n| n & DIRTY == 0)
            .expect("a counter below zero is a bookkeeping bug");
        let was_dirty = tally.dirty();
        tally.desired = desired | DIRTY;
        if !was_dirty && !self.scan {
            self.dirty.push(key);
            if self.dirty.len() >= SCAN_MIN && self.dirty.len() * 4 >= self.tallies.len() {
                self.dirty = Vec::new();
                self.scan = true;
            }
        }
    }

    /// Forgets a counter that is zero both here and in Redis.
    fn collect(&mut self, key: Key) {
        if let Some(t) = self.tallies.get(&key)
            && t.desired == 0
            && t.committed == 0
        {
            self.tallies.remove(&key);
            release(&mut self.scopes, &mut self.users, key);
        }
    }

    fn field(&self, key: Key) -> String {
        field_of(&self.scopes, &self.users, key)
    }
}

fn acquire(scopes: &mut Interner, users: &mut Interner, key: Key) {
    match key.kind() {
        Kind::Clients => {}
        Kind::Sockets(s) => scopes.acquire(s),
        Kind::User(s, u) => {
            scopes.acquire(s);
            users.acquire(u);
        }
    }
}

fn release(scopes: &mut Interner, users: &mut Interner, key: Key) {
    match key.kind() {
        Kind::Clients => {}
        Kind::Sockets(s) => scopes.release(s),
        Kind::User(s, u) => {
            scopes.release(s);
            users.release(u);
        }
    }
}

/// The field name of a key, as [`Field::encode`] writes it.
fn field_of(scopes: &Interner, users: &Interner, key: Key) -> String {
    let mut out = String::new();
    match key.kind() {
        Kind::Clients => return Field::Clients.encode(),
        Kind::Sockets(s) => {
            let scope = scopes.name(s);
            out.reserve(1 + scope.len());
            push_sockets_field(&mut out, scope);
        }
        Kind::User(s, u) => {
            let (scope, user) = (scopes.name(s), users.name(u));
            out.reserve(5 + scope.len() + user.len());
            push_user_field(&mut out, scope, user);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(local: &mut Local) -> Vec<(String, i64)> {
        local
            .take_deltas(usize::MAX)
            .into_iter()
            .map(|(f, _, d)| (f, d))
            .collect()
    }

    fn commit_all(local: &mut Local) {
        let d: Vec<(Key, i64)> = local
            .take_deltas(usize::MAX)
            .into_iter()
            .map(|(_, k, d)| (k, d))
            .collect();
        local.commit_deltas(&d);
    }

    #[test]
    fn scope_names_are_built_as_scopes_encode_them() {
        let mut buf = String::new();
        let long = format!("/{}", "x".repeat(120));
        for ns in ["/", "", "/chat", "/a:b", "/{x}:1", "/é", &long] {
            let ns_id = namespace_scope(&mut buf, ns).to_owned();
            assert_eq!(ns_id, Scope::namespace(ns).encode());
            for room in ["", "r", "news", "1:2{}", ":", "}{", "é", "ü漢"] {
                assert_eq!(
                    room_scope(&mut buf, &ns_id, room),
                    Scope::room(ns, room).encode()
                );
            }
        }
    }

    #[test]
    fn field_names_are_the_schema_encodings() {
        let mut l = Local::new();
        let long = "x".repeat(200);
        l.connect("s1", Some("ann"), &format!("/{long}")).unwrap();
        l.join("s1", "room").unwrap();
        l.client_open("c1").unwrap();
        let scopes = [
            Scope::Global,
            Scope::namespace(format!("/{long}")),
            Scope::room(format!("/{long}"), "room"),
        ];
        let mut want = vec![Field::Clients.encode()];
        for scope in scopes {
            want.push(Field::Sockets(scope.clone()).encode());
            want.push(Field::User(scope, "ann".into()).encode());
        }
        want.sort();
        let got: Vec<String> = fields(&mut l).into_iter().map(|(f, _)| f).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn keys_unpack_to_what_they_packed() {
        assert!(matches!(Key::CLIENTS.kind(), Kind::Clients));
        assert!(matches!(Key::sockets(7).kind(), Kind::Sockets(7)));
        assert!(matches!(Key::user(0, 9).kind(), Kind::User(0, 9)));
    }

    #[test]
    fn a_long_dirty_list_gives_way_to_a_scan_with_the_same_deltas() {
        let mut l = Local::new();
        for i in 0..3000 {
            l.connect(&format!("s{i}"), Some(&format!("u{}", i / 3)), "/")
                .unwrap();
            l.join(&format!("s{i}"), &format!("r{}", i % 7)).unwrap();
        }
        assert!(l.counters.scan);
        for i in 0..1500 {
            l.disconnect(&format!("s{i}"), 0, 0).unwrap();
        }
        let got = fields(&mut l);
        assert!(!l.has_dirty());
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(got.contains(&("sg".to_string(), 1500)));
        assert!(!got.iter().any(|(f, _)| f == "u1:gu0"));
        assert_eq!(l.interned().1, 500);
    }

    #[test]
    fn a_socket_counts_in_global_namespace_and_rooms() {
        let mut l = Local::new();
        l.connect("s1", Some("ann"), "/").unwrap();
        l.join("s1", "news").unwrap();
        let mut got = fields(&mut l);
        got.sort();
        let mut want = vec![
            ("sg".to_string(), 1),
            ("sn/".to_string(), 1),
            ("sr1:/news".to_string(), 1),
            ("u1:gann".to_string(), 1),
            ("u2:n/ann".to_string(), 1),
            ("u8:r1:/newsann".to_string(), 1),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn connect_and_disconnect_in_one_burst_cancel_out_and_free_names() {
        let mut l = Local::new();
        l.connect("s1", Some("ann"), "/chat").unwrap();
        l.join("s1", "r").unwrap();
        l.disconnect("s1", 0, 0).unwrap();
        assert!(fields(&mut l).is_empty());
        assert_eq!(l.interned(), (1, 0), "only the global scope stays interned");
    }

    #[test]
    fn anonymous_sockets_count_as_sockets_only() {
        let mut l = Local::new();
        l.connect("s1", None, "/").unwrap();
        let got = fields(&mut l);
        assert!(got.iter().all(|(f, _)| f.starts_with('s')), "{got:?}");
    }

    #[test]
    fn duplicates_and_unknowns_are_refused_without_change() {
        let mut l = Local::new();
        l.connect("s1", Some("ann"), "/").unwrap();
        commit_all(&mut l);
        assert_eq!(l.connect("s1", Some("bob"), "/"), Err(Refusal::Duplicate));
        assert_eq!(l.disconnect("nope", 0, 0), Err(Refusal::Unknown));
        assert_eq!(l.join("nope", "r"), Err(Refusal::Unknown));
        assert_eq!(l.client_close("c"), Err(Refusal::Unknown));
        assert!(fields(&mut l).is_empty());
        assert_eq!(l.join("s1", "r"), Ok(true));
        assert_eq!(l.join("s1", "r"), Ok(false));
        assert_eq!(l.leave("s1", "other"), Ok(false));
    }

    #[test]
    fn a_reload_within_the_grace_period_writes_nothing() {
        let mut l = Local::new();
        l.connect("s1", Some("ann"), "/").unwrap();
        l.join("s1", "news").unwrap();
        commit_all(&mut l);
        l.disconnect("s1", 100, 500).unwrap();
        l.connect("s2", Some("ann"), "/").unwrap();
        l.join("s2", "news").unwrap();
        l.expire_lingering(1_000);
        assert!(fields(&mut l).is_empty());
        assert_eq!(l.next_linger_deadline(), None);
    }

    #[test]
    fn the_grace_period_ends_with_the_decrement() {
        let mut l = Local::new();
        l.connect("s1", Some("ann"), "/").unwrap();
        commit_all(&mut l);
        l.disconnect("s1", 100, 500).unwrap();
        assert_eq!(l.next_linger_deadline(), Some(600));
        l.expire_lingering(599);
        assert!(fields(&mut l).is_empty());
        l.expire_lingering(600);
        assert_eq!(fields(&mut l).len(), 4);
    }

    #[test]
    fn a_reconnect_that_skips_a_room_lets_that_room_go_at_the_deadline() {
        let mut l = Local::new();
        l.connect("s1", Some("ann"), "/").unwrap();
        l.join("s1", "a").unwrap();
        l.join("s1", "b").unwrap();
        commit_all(&mut l);
        l.disconnect("s1", 0, 100).unwrap();
        l.connect("s2", Some("ann"), "/").unwrap();
        l.join("s2", "a").unwrap();
        assert!(fields(&mut l).is_empty());
        l.expire_lingering(100);
        let mut got = fields(&mut l);
        got.sort();
        assert_eq!(
            got,
            vec![("sr1:/b".to_string(), -1), ("u5:r1:/bann".to_string(), -1)]
        );
    }
}
