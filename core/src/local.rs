//! One node's local truth: its sockets, clients, rooms and lingering users,
//! and per counter what it wants in Redis (`desired`) against what Redis has
//! acknowledged (`committed`). The difference is what the next write sends.
//!
//! Strings are interned to `u32`s so the hot path hashes small keys; an
//! interned name is freed when the last counter that uses it goes.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::op::Millis;
use crate::schema::Field;
use crate::scope::Scope;

/// A counter this node contributes to, by interned ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Clients,
    Sockets(u32),
    User(u32, u32),
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    desired: u32,
    committed: u32,
    dirty: bool,
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

#[derive(Debug)]
struct SocketEntry {
    user: Option<u32>,
    ns: u32,
    rooms: Vec<u32>,
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

#[derive(Debug)]
pub(crate) struct Local {
    scopes: Interner,
    users: Interner,
    sockets: FxHashMap<Box<str>, SocketEntry>,
    clients: FxHashSet<Box<str>>,
    tallies: FxHashMap<Key, Tally>,
    dirty: Vec<Key>,
    lingering: BTreeMap<LingerId, Linger>,
    linger_by_user: FxHashMap<(u32, u32), Vec<LingerId>>,
    linger_seq: u64,
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
            scopes,
            users: Interner::default(),
            sockets: FxHashMap::default(),
            clients: FxHashSet::default(),
            tallies: FxHashMap::default(),
            dirty: Vec::new(),
            lingering: BTreeMap::new(),
            linger_by_user: FxHashMap::default(),
            linger_seq: 0,
        }
    }

    // ----- inputs -----

    pub fn connect(
        &mut self,
        sid: &str,
        user: Option<&str>,
        namespace: &str,
    ) -> Result<(), Refusal> {
        if self.sockets.contains_key(sid) {
            return Err(Refusal::Duplicate);
        }
        let ns = self.scopes.intern(&Scope::namespace(namespace).encode());
        let user = user.map(|u| self.users.intern(u));
        self.bump(Key::Sockets(GLOBAL), 1);
        self.bump(Key::Sockets(ns), 1);
        if let Some(u) = user {
            self.bump(Key::User(GLOBAL, u), 1);
            self.bump(Key::User(ns, u), 1);
            self.resume_lingering(u, ns);
        }
        self.sockets.insert(
            sid.into(),
            SocketEntry {
                user,
                ns,
                rooms: Vec::new(),
            },
        );
        Ok(())
    }

    pub fn disconnect(&mut self, sid: &str, now: Millis, grace: Millis) -> Result<(), Refusal> {
        let entry = self.sockets.remove(sid).ok_or(Refusal::Unknown)?;
        let last_of_user = entry
            .user
            .is_some_and(|u| self.desired(Key::User(entry.ns, u)) == 1);
        match entry.user {
            Some(user) if grace > 0 && last_of_user => {
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
                        rooms: entry.rooms,
                        whole: true,
                    },
                );
            }
            _ => {
                for room in &entry.rooms {
                    self.room_contribution(*room, entry.user, -1);
                }
                self.socket_contribution(entry.ns, entry.user, -1);
            }
        }
        Ok(())
    }

    /// Joins a room; `Ok(false)` when the socket was in it already.
    pub fn join(&mut self, sid: &str, namespace_room: &str) -> Result<bool, Refusal> {
        let entry = self.sockets.get(sid).ok_or(Refusal::Unknown)?;
        let ns_name = &self.scopes.name(entry.ns)[1..];
        let scope = Scope::room(ns_name, namespace_room).encode();
        let room = self.scopes.intern(&scope);
        let entry = self.sockets.get_mut(sid).expect("checked above");
        if entry.rooms.contains(&room) {
            return Ok(false);
        }
        entry.rooms.push(room);
        let (user, ns) = (entry.user, entry.ns);
        self.room_contribution(room, user, 1);
        if let Some(u) = user {
            self.adopt_lingering_room(u, ns, room);
        }
        Ok(true)
    }

    /// Leaves a room; `Ok(false)` when the socket was not in it.
    pub fn leave(&mut self, sid: &str, room_name: &str) -> Result<bool, Refusal> {
        let entry = self.sockets.get(sid).ok_or(Refusal::Unknown)?;
        let ns_name = &self.scopes.name(entry.ns)[1..];
        let Some(room) = self
            .scopes
            .lookup(&Scope::room(ns_name, room_name).encode())
        else {
            return Ok(false);
        };
        let entry = self.sockets.get_mut(sid).expect("checked above");
        let Some(at) = entry.rooms.iter().position(|r| *r == room) else {
            return Ok(false);
        };
        entry.rooms.swap_remove(at);
        let user = entry.user;
        self.room_contribution(room, user, -1);
        Ok(true)
    }

    pub fn client_open(&mut self, cid: &str) -> Result<(), Refusal> {
        if !self.clients.insert(cid.into()) {
            return Err(Refusal::Duplicate);
        }
        self.bump(Key::Clients, 1);
        Ok(())
    }

    pub fn client_close(&mut self, cid: &str) -> Result<(), Refusal> {
        if !self.clients.remove(cid) {
            return Err(Refusal::Unknown);
        }
        self.bump(Key::Clients, -1);
        Ok(())
    }

    /// Ends every grace period due by `now`.
    pub fn expire_lingering(&mut self, now: Millis) {
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
        self.lingering.keys().next().map(|(at, _)| *at)
    }

    /// Drops all lingering users at once (shutdown).
    pub fn clear_lingering(&mut self) {
        self.expire_lingering(Millis::MAX);
    }

    // ----- grace period -----

    /// A reconnect of `user` in `ns`: the oldest whole linger of that user
    /// gives back its namespace share (the new socket holds it now).
    fn resume_lingering(&mut self, user: u32, ns: u32) {
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
        self.socket_contribution(ns, Some(user), -1);
        if empty {
            self.lingering.remove(&id);
            self.unindex_linger(user, ns, id);
        }
    }

    /// The new socket of a user joined a room its lingering socket held.
    fn adopt_lingering_room(&mut self, user: u32, ns: u32, room: u32) {
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
        self.room_contribution(room, Some(user), -1);
        if empty {
            self.lingering.remove(&id);
            self.unindex_linger(user, ns, id);
        }
    }

    fn drop_linger(&mut self, linger: Linger) {
        for room in &linger.rooms {
            self.room_contribution(*room, Some(linger.user), -1);
        }
        if linger.whole {
            self.socket_contribution(linger.ns, Some(linger.user), -1);
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

    // ----- counters -----

    fn socket_contribution(&mut self, ns: u32, user: Option<u32>, d: i32) {
        self.bump(Key::Sockets(GLOBAL), d);
        self.bump(Key::Sockets(ns), d);
        if let Some(u) = user {
            self.bump(Key::User(GLOBAL, u), d);
            self.bump(Key::User(ns, u), d);
        }
    }

    fn room_contribution(&mut self, room: u32, user: Option<u32>, d: i32) {
        self.bump(Key::Sockets(room), d);
        if let Some(u) = user {
            self.bump(Key::User(room, u), d);
        }
    }

    fn desired(&self, key: Key) -> u32 {
        self.tallies.get(&key).map_or(0, |t| t.desired)
    }

    fn bump(&mut self, key: Key, d: i32) {
        let tally = match self.tallies.get_mut(&key) {
            Some(t) => t,
            None => {
                self.acquire(key);
                self.tallies.entry(key).or_default()
            }
        };
        tally.desired = tally
            .desired
            .checked_add_signed(d)
            .expect("a counter below zero is a bookkeeping bug");
        if !tally.dirty {
            tally.dirty = true;
            self.dirty.push(key);
        }
    }

    fn acquire(&mut self, key: Key) {
        match key {
            Key::Clients => {}
            Key::Sockets(s) => self.scopes.acquire(s),
            Key::User(s, u) => {
                self.scopes.acquire(s);
                self.users.acquire(u);
            }
        }
    }

    fn release(&mut self, key: Key) {
        match key {
            Key::Clients => {}
            Key::Sockets(s) => self.scopes.release(s),
            Key::User(s, u) => {
                self.scopes.release(s);
                self.users.release(u);
            }
        }
    }

    /// Forgets a counter that is zero both here and in Redis.
    fn collect(&mut self, key: Key) {
        if let Some(t) = self.tallies.get(&key)
            && t.desired == 0
            && t.committed == 0
            && !t.dirty
        {
            self.tallies.remove(&key);
            self.release(key);
        }
    }

    // ----- what to write -----

    /// The field name of a key, as the scripts know it.
    pub fn field(&self, key: Key) -> String {
        let field = match key {
            Key::Clients => return Field::Clients.encode(),
            Key::Sockets(s) => return format!("s{}", self.scopes.name(s)),
            Key::User(s, u) => (self.scopes.name(s), self.users.name(u)),
        };
        format!("u{}:{}{}", field.0.len(), field.0, field.1)
    }

    /// The net change of every counter touched since the last write, sorted
    /// by field name; clears the dirty marks.
    pub fn take_deltas(&mut self) -> Vec<(String, Key, i64)> {
        let mut out = Vec::new();
        for key in std::mem::take(&mut self.dirty) {
            let Some(t) = self.tallies.get_mut(&key) else {
                continue;
            };
            t.dirty = false;
            let delta = i64::from(t.desired) - i64::from(t.committed);
            if delta != 0 {
                out.push((self.field(key), key, delta));
            } else {
                self.collect(key);
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The whole local truth, sorted by field name; clears the dirty marks.
    pub fn snapshot(&mut self) -> Vec<(String, Key, u32)> {
        for key in std::mem::take(&mut self.dirty) {
            if let Some(t) = self.tallies.get_mut(&key) {
                t.dirty = false;
            }
        }
        let mut out: Vec<(String, Key, u32)> = self
            .tallies
            .iter()
            .filter(|(_, t)| t.desired > 0)
            .map(|(k, t)| (self.field(*k), *k, t.desired))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// An apply went through.
    pub fn commit_deltas(&mut self, deltas: &[(Key, i64)]) {
        for (key, delta) in deltas {
            if let Some(t) = self.tallies.get_mut(key) {
                t.committed = (i64::from(t.committed) + delta) as u32;
            }
            self.collect(*key);
        }
    }

    /// A re-assert went through: Redis holds exactly `snapshot`.
    pub fn commit_snapshot(&mut self, snapshot: &[(Key, u32)]) {
        self.forget_committed();
        for (key, count) in snapshot {
            if let Some(t) = self.tallies.get_mut(key) {
                t.committed = *count;
            }
        }
        let stale: Vec<Key> = self
            .tallies
            .iter()
            .filter(|(_, t)| t.desired == 0 && t.committed == 0 && !t.dirty)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.collect(key);
        }
    }

    /// Redis holds nothing of this node (a new incarnation).
    pub fn forget_committed(&mut self) {
        for t in self.tallies.values_mut() {
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

    /// What this node contributes to one field (sockets still lingering in
    /// a grace period included).
    pub fn desired_of(&self, field: &Field) -> u32 {
        let key = match field {
            Field::Clients => Some(Key::Clients),
            Field::Sockets(scope) => self.scopes.lookup(&scope.encode()).map(Key::Sockets),
            Field::User(scope, user) => self
                .scopes
                .lookup(&scope.encode())
                .zip(self.users.lookup(user))
                .map(|(s, u)| Key::User(s, u)),
        };
        key.map_or(0, |k| self.desired(k))
    }

    /// Every field this node wants counted, with its count, sorted.
    pub fn desired_fields(&self) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = self
            .tallies
            .iter()
            .filter(|(_, t)| t.desired > 0)
            .map(|(k, t)| (self.field(*k), t.desired))
            .collect();
        out.sort();
        out
    }

    /// Sockets of this node, sorted by id (for hosts that need to list them).
    pub fn socket_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.sockets.keys().map(|s| &**s).collect();
        ids.sort_unstable();
        ids
    }

    #[cfg(test)]
    pub fn interned(&self) -> (usize, usize) {
        (self.scopes.ids.len(), self.users.ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(local: &mut Local) -> Vec<(String, i64)> {
        local
            .take_deltas()
            .into_iter()
            .map(|(f, _, d)| (f, d))
            .collect()
    }

    fn commit_all(local: &mut Local) {
        let d: Vec<(Key, i64)> = local
            .take_deltas()
            .into_iter()
            .map(|(_, k, d)| (k, d))
            .collect();
        local.commit_deltas(&d);
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
