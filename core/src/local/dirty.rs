//! Which counters changed since the last write, so a write costs what
//! changed rather than what exists. A tally carries a dirty mark; the marked
//! keys are also listed, until the list would grow as long as the tallies
//! (then a write finds them by a pass over the tallies instead, which keeps
//! the memory of a burst flat: the bench's bytes per socket). A write queues
//! the changed ones in a backlog sorted by field name and takes the first;
//! what a capped write leaves waits there, its names built once.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use super::counters::{Tallies, collect};
use super::key::Key;
use super::names::Names;

/// A dirty list this long (and a quarter of the tallies or more) is dropped:
/// the next write finds the dirty tallies by their mark instead, which costs
/// a pass over the tallies but keeps no list as long as they are.
const SCAN_MIN: usize = 1024;

/// The dirty tallies, besides their marks.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    /// The tallies marked dirty, unless `scan`, and not in the backlog.
    list: Vec<Key>,
    /// The list was dropped: the marks say which tallies are dirty.
    scan: bool,
    /// Changed tallies queued by a write and not taken yet (a capped write
    /// leaves some for the next), by field name. They keep their dirty mark
    /// and are in neither `list` nor a scan.
    backlog: BTreeMap<String, Key>,
    /// The keys of `backlog`.
    queued: FxHashSet<Key>,
}

impl Dirty {
    /// The tally of `key` was clean and is now marked; `tallies` is how many
    /// tallies there are.
    #[inline]
    pub(crate) fn marked(&mut self, key: Key, tallies: usize) {
        if self.scan {
            return;
        }
        self.list.push(key);
        if self.list.len() >= SCAN_MIN && self.list.len() * 4 >= tallies {
            self.list = Vec::new();
            self.scan = true;
        }
    }

    /// Every tally is about to be marked: the next write scans them all.
    pub(crate) fn all_marked(&mut self) {
        self.list.clear();
        self.backlog.clear();
        self.queued.clear();
        self.scan = true;
    }

    /// Every mark is about to be cleared: nothing is dirty.
    pub(crate) fn clear(&mut self) {
        self.list.clear();
        self.backlog.clear();
        self.queued.clear();
        self.scan = false;
    }

    /// Nothing is left to write.
    pub(crate) fn is_empty(&self) -> bool {
        !self.scan && self.list.is_empty() && self.backlog.is_empty()
    }

    /// The list gave way to a scan (for tests).
    #[cfg(test)]
    pub(crate) fn scanning(&self) -> bool {
        self.scan
    }

    /// The net change of the dirty tallies, sorted by field name: at most
    /// `limit` of them, the first by name. Clears their dirty marks; the
    /// others stay dirty, in the backlog, for the next call. Tallies with no
    /// change are cleaned (and forgotten when stale) on the way.
    pub(crate) fn take(
        &mut self,
        tallies: &mut Tallies,
        names: &mut Names,
        limit: usize,
    ) -> Vec<(String, Key, i64)> {
        // Newly dirty counters (not in the backlog yet): those with a change
        // join it, those without one are cleaned or forgotten.
        let (backlog, queued) = (&mut self.backlog, &mut self.queued);
        if self.scan {
            self.scan = false;
            tallies.retain(|key, t| {
                if !t.dirty() || queued.contains(key) {
                    return true;
                }
                if t.delta() != 0 {
                    queued.insert(*key);
                    backlog.insert(names.field(*key), *key);
                    true
                } else if t.desired() == 0 {
                    // Zero here and in Redis: forget it.
                    names.release(*key);
                    false
                } else {
                    t.clean();
                    true
                }
            });
        } else {
            for key in self.list.drain(..) {
                let Some(t) = tallies.get_mut(&key) else {
                    continue;
                };
                if t.delta() != 0 {
                    queued.insert(key);
                    backlog.insert(names.field(key), key);
                } else {
                    t.clean();
                    collect(tallies, names, key);
                }
            }
        }
        // The first by name go; one back to its committed value since it
        // was queued is skipped.
        let mut out = Vec::with_capacity(backlog.len().min(limit));
        while out.len() < limit {
            let Some((field, key)) = backlog.pop_first() else {
                break;
            };
            queued.remove(&key);
            let Some(t) = tallies.get_mut(&key) else {
                continue;
            };
            t.clean();
            let delta = t.delta();
            if delta != 0 {
                out.push((field, key, delta));
            } else {
                collect(tallies, names, key);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::counters::Counters;
    use super::*;

    /// Takes deltas and commits them, as a write that went through.
    fn take(c: &mut Counters, limit: usize) -> Vec<(String, i64)> {
        let taken = c.take_deltas(limit);
        let deltas: Vec<(Key, i64)> = taken.iter().map(|(_, k, d)| (*k, *d)).collect();
        c.commit_deltas(&deltas);
        taken.into_iter().map(|(f, _, d)| (f, d)).collect()
    }

    #[test]
    fn a_short_burst_is_listed_and_a_long_one_scanned() {
        let mut c = Counters::new();
        let ns = c.names.namespace("/");
        for i in 0..100 {
            let u = c.names.user(&format!("u{i}"));
            c.socket_contribution(ns, Some(u), 1);
        }
        assert!(!c.scanning());
        assert_eq!(take(&mut c, usize::MAX).len(), 202);
        for i in 0..1000 {
            let u = c.names.user(&format!("v{i}"));
            c.socket_contribution(ns, Some(u), 1);
        }
        assert!(c.scanning());
        let got = take(&mut c, usize::MAX);
        assert_eq!(got.len(), 2002);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(!c.has_dirty());
        assert!(!c.scanning());
    }

    #[test]
    fn a_capped_write_takes_the_first_names_and_leaves_the_rest_for_the_next() {
        let mut c = Counters::new();
        let ns = c.names.namespace("/");
        for user in ["d", "b", "a", "c"] {
            let u = c.names.user(user);
            c.room_contribution(ns, Some(u), 1);
        }
        // "sn/" and "u2:n/a" .. "u2:n/d", five in all.
        let first = take(&mut c, 2);
        assert_eq!(first, [("sn/".into(), 4), ("u2:n/a".into(), 1)]);
        assert!(c.has_dirty());
        // Changes after the cap join the backlog in name order; one back to
        // its committed value is skipped when its turn comes.
        let a = c.names.user("a");
        c.room_contribution(ns, Some(a), 1);
        let d = c.names.user("d");
        c.bump(Key::user(ns, d), -1);
        let second = take(&mut c, 2);
        assert_eq!(second, [("sn/".into(), 1), ("u2:n/a".into(), 1)]);
        let third = take(&mut c, 2);
        assert_eq!(third, [("u2:n/b".into(), 1), ("u2:n/c".into(), 1)]);
        assert!(c.has_dirty(), "d waits in the backlog");
        assert!(take(&mut c, 2).is_empty());
        assert!(!c.has_dirty());
        assert_eq!(c.names.interned(), (2, 3), "d is forgotten");
    }

    #[test]
    fn marking_all_dirty_writes_every_change_again() {
        let mut c = Counters::new();
        let ns = c.names.namespace("/");
        c.socket_contribution(ns, None, 1);
        assert_eq!(take(&mut c, usize::MAX).len(), 2);
        assert!(!c.has_dirty());
        c.mark_all_dirty();
        assert!(c.has_dirty());
        // Redis holds them already: nothing changed.
        assert!(take(&mut c, usize::MAX).is_empty());
        assert!(!c.has_dirty());
        // A new incarnation holds nothing: all of it goes again.
        c.forget_committed();
        c.mark_all_dirty();
        let again = take(&mut c, usize::MAX);
        assert_eq!(again, [("sg".into(), 1), ("sn/".into(), 1)]);
    }
}
