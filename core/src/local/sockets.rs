//! The socket table: per socket id, its user, namespace and rooms, by
//! interned ids in compact storage (short ids and up to two rooms inline),
//! since the table is most of a node's memory.

use std::collections::hash_map::{Entry, VacantEntry};

use rustc_hash::FxHashMap;

use super::Refusal;
use super::key::NO_USER;
use crate::compact::{Id, Rooms, Spill};

/// One socket: who, where, and in which rooms.
#[derive(Debug)]
pub(crate) struct Socket {
    /// [`NO_USER`] when anonymous.
    user: u32,
    /// Its namespace's scope id.
    ns: u32,
    /// Its room scope ids.
    rooms: Rooms,
}

impl Socket {
    /// A socket of `user` (if any) in namespace scope `ns`, in no room.
    #[inline]
    pub(crate) fn new(user: Option<u32>, ns: u32) -> Socket {
        Socket {
            user: user.unwrap_or(NO_USER),
            ns,
            rooms: Rooms::NONE,
        }
    }

    /// Its user, unless anonymous.
    #[inline]
    pub(crate) fn user(&self) -> Option<u32> {
        (self.user != NO_USER).then_some(self.user)
    }

    /// Its namespace's scope id.
    #[inline]
    pub(crate) fn ns(&self) -> u32 {
        self.ns
    }
}

/// The sockets of this node by id.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    /// The sockets by id.
    table: FxHashMap<Id, Socket>,
    /// The room lists of sockets in more than two rooms.
    spill: Spill,
}

impl Sockets {
    /// The empty slot of a new socket id; [`Refusal::Duplicate`] when the id
    /// is taken.
    #[inline]
    pub(crate) fn slot(&mut self, sid: &str) -> Result<VacantEntry<'_, Id, Socket>, Refusal> {
        match self.table.entry(Id::new(sid)) {
            Entry::Vacant(slot) => Ok(slot),
            Entry::Occupied(_) => Err(Refusal::Duplicate),
        }
    }

    /// The user (`None`: anonymous) and namespace of a connected socket.
    #[inline]
    pub(crate) fn user_of(&self, sid: &str) -> Result<(Option<u32>, u32), Refusal> {
        self.table
            .get(sid.as_bytes())
            .map(|s| (s.user(), s.ns()))
            .ok_or(Refusal::Unknown)
    }

    /// Takes a socket out of the table; [`Refusal::Unknown`] when absent.
    /// Its rooms stay readable ([`Sockets::rooms`]) until
    /// [`Sockets::free`].
    #[inline]
    pub(crate) fn remove(&mut self, sid: &str) -> Result<Socket, Refusal> {
        self.table.remove(sid.as_bytes()).ok_or(Refusal::Unknown)
    }

    /// The rooms of a socket.
    #[inline]
    pub(crate) fn rooms<'a>(&'a self, socket: &'a Socket) -> &'a [u32] {
        socket.rooms.as_slice(&self.spill)
    }

    /// Gives back the storage of a removed socket.
    #[inline]
    pub(crate) fn free(&mut self, socket: Socket) {
        socket.rooms.free(&mut self.spill);
    }

    /// Adds a room to a socket: `room` maps its namespace's scope id to the
    /// room's scope id. `Ok(None)` when the socket was in it already, else
    /// the socket's user, namespace and the room.
    #[inline]
    pub(crate) fn join(
        &mut self,
        sid: &str,
        room: impl FnOnce(u32) -> u32,
    ) -> Result<Option<(Option<u32>, u32, u32)>, Refusal> {
        let socket = self.table.get_mut(sid.as_bytes()).ok_or(Refusal::Unknown)?;
        let room = room(socket.ns);
        if socket.rooms.contains(room, &self.spill) {
            return Ok(None);
        }
        socket.rooms.push(room, &mut self.spill);
        Ok(Some((socket.user(), socket.ns, room)))
    }

    /// Takes a room from a socket: `room` finds the room's scope id from
    /// its namespace's, if the room is known at all. `Ok(None)` when the
    /// socket was not in it, else the socket's user and the room.
    #[inline]
    pub(crate) fn leave(
        &mut self,
        sid: &str,
        room: impl FnOnce(u32) -> Option<u32>,
    ) -> Result<Option<(Option<u32>, u32)>, Refusal> {
        let socket = self.table.get_mut(sid.as_bytes()).ok_or(Refusal::Unknown)?;
        let Some(room) = room(socket.ns) else {
            return Ok(None);
        };
        if !socket.rooms.remove(room, &mut self.spill) {
            return Ok(None);
        }
        Ok(Some((socket.user(), room)))
    }

    /// Gives a socket another user: its old user, its namespace and its
    /// rooms.
    #[inline]
    pub(crate) fn set_user(
        &mut self,
        sid: &str,
        user: Option<u32>,
    ) -> Result<(Option<u32>, u32, Vec<u32>), Refusal> {
        let socket = self.table.get_mut(sid.as_bytes()).ok_or(Refusal::Unknown)?;
        let old = socket.user();
        socket.user = user.unwrap_or(NO_USER);
        Ok((old, socket.ns, socket.rooms.as_slice(&self.spill).to_vec()))
    }

    /// How many sockets.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The socket ids, sorted.
    pub(crate) fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.table.keys().map(Id::as_str).collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_id_is_taken_once_and_known_until_removed() {
        let mut t = Sockets::default();
        t.slot("s1").unwrap().insert(Socket::new(Some(4), 1));
        assert_eq!(t.slot("s1").err(), Some(Refusal::Duplicate));
        assert_eq!(t.join("s2", |_| 9), Err(Refusal::Unknown));
        assert_eq!(t.leave("s2", |_| Some(9)), Err(Refusal::Unknown));
        let s = t.remove("s1").unwrap();
        assert_eq!((s.user(), s.ns()), (Some(4), 1));
        t.free(s);
        assert_eq!(t.remove("s1").err(), Some(Refusal::Unknown));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn rooms_are_joined_once_and_left_once() {
        let mut t = Sockets::default();
        t.slot("s1").unwrap().insert(Socket::new(None, 1));
        for room in [10, 11, 12] {
            assert_eq!(t.join("s1", |ns| ns + room - 1), Ok(Some((None, 1, room))));
        }
        assert_eq!(t.join("s1", |_| 11), Ok(None));
        assert_eq!(t.leave("s1", |_| None), Ok(None), "an unknown room");
        assert_eq!(t.leave("s1", |_| Some(11)), Ok(Some((None, 11))));
        assert_eq!(t.leave("s1", |_| Some(11)), Ok(None));
        let s = t.remove("s1").unwrap();
        let mut rooms = t.rooms(&s).to_vec();
        rooms.sort();
        assert_eq!(rooms, [10, 12]);
        t.free(s);
    }

    #[test]
    fn ids_are_listed_sorted() {
        let mut t = Sockets::default();
        for sid in ["b", "c", "a"] {
            t.slot(sid).unwrap().insert(Socket::new(None, 1));
        }
        assert_eq!(t.ids(), ["a", "b", "c"]);
    }
}
