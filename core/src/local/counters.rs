//! The counters this node contributes to: per packed key, what it wants in
//! Redis (`desired`) against what Redis has acknowledged (`committed`). The
//! difference is what the next write sends; a counter zero on both sides is
//! forgotten, and with it the names only it used.

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use super::dirty::Dirty;
use super::key::{GLOBAL, Key, Kind};
use super::names::Names;
use crate::schema::Field;

/// Set in [`Tally::desired`] while the tally changed since the last write.
const DIRTY: u32 = 1 << 31;

/// One counter: the count wanted here and the count Redis acknowledged.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    /// The count, with the [`DIRTY`] mark in its top bit.
    desired: u32,
    /// What Redis holds of this node's share.
    pub(crate) committed: u32,
}

impl Tally {
    /// The count wanted here.
    #[inline]
    pub(crate) fn desired(&self) -> u32 {
        self.desired & !DIRTY
    }

    /// Changed since the last write took it.
    #[inline]
    pub(crate) fn dirty(&self) -> bool {
        self.desired & DIRTY != 0
    }

    /// Clears the dirty mark.
    #[inline]
    pub(crate) fn clean(&mut self) {
        self.desired &= !DIRTY;
    }

    /// Sets the dirty mark.
    #[inline]
    pub(crate) fn mark(&mut self) {
        self.desired |= DIRTY;
    }

    /// What a write must add in Redis.
    #[inline]
    pub(crate) fn delta(&self) -> i64 {
        i64::from(self.desired()) - i64::from(self.committed)
    }

    /// Clean and zero here and in Redis: nothing to keep.
    #[inline]
    pub(crate) fn stale(&self) -> bool {
        self.desired == 0 && self.committed == 0
    }
}

/// The tallies by key.
pub(crate) type Tallies = FxHashMap<Key, Tally>;

/// Forgets the counter of `key` if it is stale, and releases its names.
pub(crate) fn collect(tallies: &mut Tallies, names: &mut Names, key: Key) {
    if tallies.get(&key).is_some_and(Tally::stale) {
        tallies.remove(&key);
        names.release(key);
    }
}

/// The counters, the names they use and which of them changed.
#[derive(Debug)]
pub(crate) struct Counters {
    /// Interned scope ids and user names.
    pub(crate) names: Names,
    /// Every counter this node contributes to or Redis still holds.
    tallies: Tallies,
    /// Which tallies the next write sends.
    dirty: Dirty,
}

impl Counters {
    /// No counters.
    pub(crate) fn new() -> Counters {
        Counters {
            names: Names::new(),
            tallies: Tallies::default(),
            dirty: Dirty::default(),
        }
    }

    // ----- changes -----

    /// A socket of `user` (if any) in namespace `ns` comes (`d = 1`) or
    /// goes (`d = -1`): it counts in the global scope and its namespace.
    #[inline]
    pub(crate) fn socket_contribution(&mut self, ns: u32, user: Option<u32>, d: i32) {
        self.bump(Key::sockets(GLOBAL), d);
        self.bump(Key::sockets(ns), d);
        if let Some(u) = user {
            self.bump(Key::user(GLOBAL, u), d);
            self.bump(Key::user(ns, u), d);
        }
    }

    /// A socket of `user` (if any) joins (`d = 1`) or leaves (`d = -1`)
    /// the room scope `room`.
    #[inline]
    pub(crate) fn room_contribution(&mut self, room: u32, user: Option<u32>, d: i32) {
        self.bump(Key::sockets(room), d);
        if let Some(u) = user {
            self.bump(Key::user(room, u), d);
        }
    }

    /// Adds `d` to the counter of `key` and marks it dirty.
    #[inline]
    pub(crate) fn bump(&mut self, key: Key, d: i32) {
        let tally = match self.tallies.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.names.acquire(key);
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
        if !was_dirty {
            self.dirty.marked(key, self.tallies.len());
        }
    }

    // ----- writes -----

    /// The net change of the counters touched since the last write, sorted
    /// by field name: at most `limit` of them (see [`Dirty::take`]).
    pub(crate) fn take_deltas(&mut self, limit: usize) -> Vec<(String, Key, i64)> {
        self.dirty.take(&mut self.tallies, &mut self.names, limit)
    }

    /// Every counter is to be written again, as deltas from what Redis
    /// acknowledged.
    pub(crate) fn mark_all_dirty(&mut self) {
        self.dirty.all_marked();
        for t in self.tallies.values_mut() {
            t.mark();
        }
    }

    /// Something may be left to write.
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The whole local truth, sorted by field name; clears the dirty marks.
    pub(crate) fn snapshot(&mut self) -> Vec<(String, Key, u32)> {
        self.dirty.clear();
        for t in self.tallies.values_mut() {
            t.clean();
        }
        let mut out: Vec<(String, Key, u32)> = self
            .tallies
            .iter()
            .filter(|(_, t)| t.desired() > 0)
            .map(|(k, t)| (self.names.field(*k), *k, t.desired()))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// An apply of these deltas went through.
    pub(crate) fn commit_deltas(&mut self, deltas: &[(Key, i64)]) {
        for (key, delta) in deltas {
            if let Some(t) = self.tallies.get_mut(key) {
                t.committed = (i64::from(t.committed) + delta) as u32;
            }
            collect(&mut self.tallies, &mut self.names, *key);
        }
    }

    /// A re-assert went through: Redis holds exactly `snapshot`.
    pub(crate) fn commit_snapshot(&mut self, snapshot: &[(Key, u32)]) {
        self.forget_committed();
        for (key, count) in snapshot {
            if let Some(t) = self.tallies.get_mut(key) {
                t.committed = *count;
            }
        }
        let names = &mut self.names;
        self.tallies.retain(|key, t| {
            let stale = t.stale();
            if stale {
                names.release(*key);
            }
            !stale
        });
    }

    /// Redis holds nothing of this node (a new incarnation).
    pub(crate) fn forget_committed(&mut self) {
        for t in self.tallies.values_mut() {
            t.committed = 0;
        }
    }

    // ----- reads -----

    /// The count wanted here for `key`.
    #[inline]
    pub(crate) fn desired(&self, key: Key) -> u32 {
        self.tallies.get(&key).map_or(0, Tally::desired)
    }

    /// The count wanted here for `field`.
    pub(crate) fn desired_of(&self, field: &Field) -> u32 {
        self.names.lookup(field).map_or(0, |k| self.desired(k))
    }

    /// How many fields the whole local truth has.
    pub(crate) fn field_count(&self) -> usize {
        self.tallies.values().filter(|t| t.desired() > 0).count()
    }

    /// Users counted in the global scope.
    pub(crate) fn user_count(&self) -> usize {
        self.tallies
            .iter()
            .filter(|(k, t)| matches!(k.kind(), Kind::User(GLOBAL, _)) && t.desired() > 0)
            .count()
    }

    /// Every field wanted counted, with its count, sorted.
    pub(crate) fn desired_fields(&self) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = self
            .tallies
            .iter()
            .filter(|(_, t)| t.desired() > 0)
            .map(|(k, t)| (self.names.field(*k), t.desired()))
            .collect();
        out.sort();
        out
    }

    /// Whether the dirty list gave way to a scan (for tests).
    #[cfg(test)]
    pub(crate) fn scanning(&self) -> bool {
        self.dirty.scanning()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_keeps_its_count_under_the_dirty_mark() {
        let mut t = Tally::default();
        assert!(t.stale() && !t.dirty());
        t.desired = 5;
        t.mark();
        assert!(t.dirty());
        assert_eq!(t.desired(), 5);
        t.committed = 7;
        assert_eq!(t.delta(), -2);
        t.clean();
        assert!(!t.dirty());
        assert_eq!(t.desired(), 5);
    }

    #[test]
    fn a_counter_zero_on_both_sides_is_forgotten_with_its_names() {
        let mut c = Counters::new();
        let ns = c.names.namespace("/");
        let u = c.names.user("ann");
        c.socket_contribution(ns, Some(u), 1);
        assert_eq!(c.desired(Key::user(ns, u)), 1);
        assert_eq!(c.field_count(), 4);
        assert_eq!(c.user_count(), 1);
        let deltas: Vec<(Key, i64)> = c
            .take_deltas(usize::MAX)
            .into_iter()
            .map(|(_, k, d)| (k, d))
            .collect();
        c.commit_deltas(&deltas);
        assert!(!c.has_dirty());
        c.socket_contribution(ns, Some(u), -1);
        assert_eq!(c.field_count(), 0);
        assert_eq!(c.names.interned(), (2, 1), "Redis still holds them");
        let deltas: Vec<(Key, i64)> = c
            .take_deltas(usize::MAX)
            .into_iter()
            .map(|(_, k, d)| (k, d))
            .collect();
        assert!(deltas.iter().all(|(_, d)| *d == -1));
        c.commit_deltas(&deltas);
        assert_eq!(c.names.interned(), (1, 0));
    }

    #[test]
    #[should_panic(expected = "below zero")]
    fn a_counter_below_zero_is_a_bug() {
        let mut c = Counters::new();
        c.bump(Key::CLIENTS, -1);
    }

    #[test]
    fn a_snapshot_is_the_whole_truth_and_its_commit_is_what_redis_holds() {
        let mut c = Counters::new();
        let ns = c.names.namespace("/");
        c.socket_contribution(ns, None, 1);
        c.bump(Key::CLIENTS, 1);
        let snap = c.snapshot();
        assert!(!c.has_dirty());
        let names: Vec<&str> = snap.iter().map(|(f, _, _)| f.as_str()).collect();
        assert_eq!(names, ["c", "sg", "sn/"]);
        let held: Vec<(Key, u32)> = snap.iter().map(|(_, k, n)| (*k, *n)).collect();
        c.commit_snapshot(&held);
        assert!(c.take_deltas(usize::MAX).is_empty());
        c.forget_committed();
        c.mark_all_dirty();
        assert_eq!(c.take_deltas(usize::MAX).len(), 3);
    }
}
