//! Grace periods: a user's last socket in a namespace that disconnects
//! keeps counting until its deadline, so a page reload writes nothing. A
//! reconnect takes the namespace share back at once; the rooms linger until
//! the new socket joins them again or the period ends.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::counters::Counters;
use crate::op::Millis;

/// What a disconnected user's last socket still holds during the grace
/// period. `whole` until the user reconnects; after that only `rooms` linger,
/// until the new socket joins them again or the period ends.
#[derive(Debug)]
struct Linger {
    /// The user, interned.
    user: u32,
    /// The namespace's scope id.
    ns: u32,
    /// The room scope ids still held.
    rooms: Vec<u32>,
    /// The namespace share is still held too.
    whole: bool,
    /// The socket whose data is still shown: until the deadline, or until a
    /// socket of the same user in the namespace sets its own (a reload
    /// shows the old data until the new socket's replaces it in one write).
    data: Option<Box<str>>,
}

/// Deadline first, then the order the periods began: expiry goes in this
/// order, whatever the hashing.
type LingerId = (Millis, u64);

/// The lingering sockets, by deadline and by (user, namespace).
#[derive(Debug, Default)]
pub(crate) struct Grace {
    /// Every linger, the next to end first.
    lingering: BTreeMap<LingerId, Linger>,
    /// The lingers of each (user, namespace), oldest first.
    by_user: FxHashMap<(u32, u32), Vec<LingerId>>,
    /// The next linger's place among those of the same deadline.
    seq: u64,
    /// Sockets whose data stopped being shown, for [`Grace::take_ended`].
    ended: Vec<Box<str>>,
}

impl Grace {
    /// The last socket of `user` in `ns` went, in `rooms`; its share keeps
    /// counting until `deadline`, and its data (socket `data`) is shown
    /// until then or until [`Grace::replace_data`]
    /// while its namespace share is.
    pub(crate) fn begin(
        &mut self,
        deadline: Millis,
        user: u32,
        ns: u32,
        rooms: Vec<u32>,
        data: Option<Box<str>>,
    ) {
        let id = (deadline, self.seq);
        self.seq += 1;
        self.by_user.entry((user, ns)).or_default().push(id);
        self.lingering.insert(
            id,
            Linger {
                user,
                ns,
                rooms,
                whole: true,
                data,
            },
        );
    }

    /// The sockets whose data stopped being shown since the last call.
    pub(crate) fn take_ended(&mut self) -> Vec<Box<str>> {
        std::mem::take(&mut self.ended)
    }

    /// A reconnect of `user` in `ns`: the oldest whole linger of that user
    /// gives back its namespace share (the new socket holds it now).
    #[inline]
    pub(crate) fn resume(&mut self, user: u32, ns: u32, counters: &mut Counters) {
        let Some(ids) = self.by_user.get(&(user, ns)) else {
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
        let empty = linger.rooms.is_empty() && linger.data.is_none();
        counters.socket_contribution(ns, Some(user), -1);
        if empty {
            self.lingering.remove(&id);
            self.unindex(user, ns, id);
        }
    }

    /// The new socket of `user` joined `room`, which its lingering socket
    /// held: the linger gives that room back.
    #[inline]
    pub(crate) fn adopt_room(&mut self, user: u32, ns: u32, room: u32, counters: &mut Counters) {
        let Some(ids) = self.by_user.get(&(user, ns)) else {
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
        let empty = linger.rooms.is_empty() && !linger.whole && linger.data.is_none();
        counters.room_contribution(room, Some(user), -1);
        if empty {
            self.lingering.remove(&id);
            self.unindex(user, ns, id);
        }
    }

    /// A socket of `user` in `ns` set its own data: the data its lingering
    /// sockets still show goes (in the same write as the new).
    pub(crate) fn replace_data(&mut self, user: u32, ns: u32) {
        let Some(ids) = self.by_user.get(&(user, ns)).cloned() else {
            return;
        };
        for id in ids {
            let linger = self.lingering.get_mut(&id).expect("indexed");
            self.ended.extend(linger.data.take());
            if !linger.whole && linger.rooms.is_empty() {
                self.lingering.remove(&id);
                self.unindex(user, ns, id);
            }
        }
    }

    /// Ends every grace period due by `now`, in deadline order.
    #[inline]
    pub(crate) fn expire(&mut self, now: Millis, counters: &mut Counters) {
        while let Some(entry) = self.lingering.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (id, linger) = entry.remove_entry();
            self.unindex(linger.user, linger.ns, id);
            self.ended.extend(linger.data);
            for room in &linger.rooms {
                counters.room_contribution(*room, Some(linger.user), -1);
            }
            if linger.whole {
                counters.socket_contribution(linger.ns, Some(linger.user), -1);
            }
        }
    }

    /// When the next grace period ends.
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        self.lingering.first_key_value().map(|((at, _), _)| *at)
    }

    /// Forgets linger `id` in the index by (user, namespace).
    fn unindex(&mut self, user: u32, ns: u32, id: LingerId) {
        if let Some(ids) = self.by_user.get_mut(&(user, ns)) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.by_user.remove(&(user, ns));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::key::Key;
    use super::*;

    /// A user with a socket in `ns` and `rooms`, as the socket table would
    /// count it.
    fn counted(c: &mut Counters, user: u32, ns: u32, rooms: &[u32]) {
        c.socket_contribution(ns, Some(user), 1);
        for room in rooms {
            c.room_contribution(*room, Some(user), 1);
        }
    }

    #[test]
    fn periods_end_in_deadline_order_and_give_back_their_share() {
        let mut c = Counters::new();
        let ns = c.names.namespace("/");
        let (ann, bob) = (c.names.user("ann"), c.names.user("bob"));
        let room = c.names.room(ns, "r");
        counted(&mut c, ann, ns, &[room]);
        counted(&mut c, bob, ns, &[]);
        let mut g = Grace::default();
        g.begin(300, ann, ns, vec![room], None);
        g.begin(200, bob, ns, vec![], Some("b1".into()));
        assert_eq!(g.next_deadline(), Some(200));
        g.expire(199, &mut c);
        assert_eq!(c.desired(Key::user(ns, bob)), 1);
        assert!(g.take_ended().is_empty());
        g.expire(250, &mut c);
        assert_eq!(c.desired(Key::user(ns, bob)), 0);
        assert_eq!(g.take_ended(), [Box::from("b1")]);
        assert_eq!(c.desired(Key::user(room, ann)), 1);
        assert_eq!(g.next_deadline(), Some(300));
        g.expire(300, &mut c);
        assert_eq!(c.desired(Key::user(room, ann)), 0);
        assert_eq!(c.desired(Key::user(ns, ann)), 0);
        assert_eq!(g.next_deadline(), None);
        assert!(g.by_user.is_empty());
    }

    #[test]
    fn a_reconnect_takes_the_namespace_and_a_join_takes_the_room() {
        let mut c = Counters::new();
        let ns = c.names.namespace("/");
        let ann = c.names.user("ann");
        let (a, b) = (c.names.room(ns, "a"), c.names.room(ns, "b"));
        counted(&mut c, ann, ns, &[a, b]);
        let mut g = Grace::default();
        g.begin(100, ann, ns, vec![a, b], Some("a1".into()));
        // The new socket counts itself; the linger gives back the same.
        counted(&mut c, ann, ns, &[]);
        g.resume(ann, ns, &mut c);
        assert_eq!(c.desired(Key::user(ns, ann)), 1);
        // The new socket holds the namespace; the old one's data stays
        // until the new one sets its own.
        assert!(g.take_ended().is_empty());
        c.room_contribution(a, Some(ann), 1);
        g.adopt_room(ann, ns, a, &mut c);
        assert_eq!(c.desired(Key::user(a, ann)), 1);
        // A second join of the same room takes nothing more.
        g.adopt_room(ann, ns, a, &mut c);
        assert_eq!(c.desired(Key::user(a, ann)), 1);
        // The new socket sets its data: the old one's goes with it.
        g.replace_data(ann, ns);
        assert_eq!(g.take_ended(), [Box::from("a1")]);
        g.expire(100, &mut c);
        assert_eq!(c.desired(Key::user(b, ann)), 0);
        assert_eq!(c.desired(Key::user(a, ann)), 1);
        assert_eq!(c.desired(Key::user(ns, ann)), 1);
        assert_eq!(g.next_deadline(), None);
    }
}
