//! One node's local truth: its sockets, clients, rooms and lingering users,
//! and per counter what it wants in Redis against what Redis acknowledged.
//! [`Local`] is the facade the tracker uses; each idea behind it has its
//! own file:
//!
//! - [`interner`]: strings to small ids, freed with their last use;
//! - [`key`]: a counter's ids packed in one word;
//! - [`names`]: scope ids and field names, by the one encoding;
//! - [`counters`]: desired against committed, per key;
//! - [`dirty`]: which counters the next write sends;
//! - [`grace`]: the grace period of a disconnected user;
//! - [`sockets`]: the socket table;
//! - [`data`]: each socket's data, desired against committed.

mod counters;
mod data;
mod dirty;
mod grace;
mod interner;
mod key;
mod names;
mod sockets;
#[cfg(test)]
mod tests;

use rustc_hash::FxHashSet;

use crate::compact::Id;
use crate::op::Millis;
use crate::schema::Field;
use counters::Counters;
use data::Data;
pub(crate) use data::DataWrite;
use grace::Grace;
pub(crate) use key::Key;
use sockets::{Socket, Sockets};

/// One node's local truth, and what of it Redis still lacks.
#[derive(Debug)]
pub(crate) struct Local {
    /// The counters and what Redis lacks of them.
    counters: Counters,
    /// The socket table.
    sockets: Sockets,
    /// The low-level clients by id.
    clients: FxHashSet<Id>,
    /// The sockets lingering in a grace period.
    grace: Grace,
    /// The sockets' data.
    data: Data,
}

/// Why an input about a socket or client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The id is taken.
    Duplicate,
    /// No such id.
    Unknown,
}

impl Local {
    /// No sockets, no clients, nothing to write.
    pub fn new() -> Local {
        Local {
            counters: Counters::new(),
            sockets: Sockets::default(),
            clients: FxHashSet::default(),
            grace: Grace::default(),
            data: Data::default(),
        }
    }

    // ----- inputs -----

    /// A socket connects to `namespace`, as `user` or anonymously.
    pub fn connect(
        &mut self,
        sid: &str,
        user: Option<&str>,
        namespace: &str,
    ) -> Result<(), Refusal> {
        let slot = self.sockets.slot(sid)?;
        let c = &mut self.counters;
        let ns = c.names.namespace(namespace);
        let user = user.map(|u| c.names.user(u));
        c.socket_contribution(ns, user, 1);
        slot.insert(Socket::new(user, ns));
        // A lingering socket of the same id (ids are reused only by hand)
        // shows its data no more.
        self.data.drop_socket(sid);
        if let Some(u) = user {
            self.grace.resume(u, ns, &mut self.counters);
            self.end_lingering_data();
        }
        Ok(())
    }

    /// A socket disconnects at `now`; a user's last socket in its namespace
    /// keeps counting for `grace` milliseconds.
    pub fn disconnect(&mut self, sid: &str, now: Millis, grace: Millis) -> Result<(), Refusal> {
        let socket = self.sockets.remove(sid)?;
        let (user, ns) = (socket.user(), socket.ns());
        match user {
            Some(user) if grace > 0 && self.counters.desired(Key::user(ns, user)) == 1 => {
                let rooms = self.sockets.rooms(&socket).to_vec();
                self.sockets.free(socket);
                let data = self.data.shows(sid).then(|| sid.into());
                self.grace
                    .begin(now.saturating_add(grace), user, ns, rooms, data);
            }
            _ => {
                for room in self.sockets.rooms(&socket) {
                    self.counters.room_contribution(*room, user, -1);
                }
                self.sockets.free(socket);
                self.counters.socket_contribution(ns, user, -1);
                self.data.drop_socket(sid);
            }
        }
        Ok(())
    }

    /// Joins a room; `Ok(false)` when the socket was in it already.
    pub fn join(&mut self, sid: &str, namespace_room: &str) -> Result<bool, Refusal> {
        let names = &mut self.counters.names;
        let Some((user, ns, room)) = self
            .sockets
            .join(sid, |ns| names.room(ns, namespace_room))?
        else {
            return Ok(false);
        };
        self.counters.room_contribution(room, user, 1);
        if let Some(u) = user {
            self.grace.adopt_room(u, ns, room, &mut self.counters);
        }
        Ok(true)
    }

    /// Leaves a room; `Ok(false)` when the socket was not in it.
    pub fn leave(&mut self, sid: &str, room_name: &str) -> Result<bool, Refusal> {
        let names = &mut self.counters.names;
        let Some((user, room)) = self
            .sockets
            .leave(sid, |ns| names.lookup_room(ns, room_name))?
        else {
            return Ok(false);
        };
        self.counters.room_contribution(room, user, -1);
        Ok(true)
    }

    /// The socket's user becomes `user` (`None`: anonymous): its namespace
    /// and rooms count for the new user instead of the old one, in the same
    /// write. No grace period: the socket did not go, it changed hands.
    /// `Ok(false)` when it was that user's already.
    pub fn identify(&mut self, sid: &str, user: Option<&str>) -> Result<bool, Refusal> {
        let new = match user {
            Some(u) => Some(self.counters.names.user(u)),
            None => None,
        };
        let (old, ns, rooms) = self.sockets.set_user(sid, new)?;
        if old == new {
            return Ok(false);
        }
        self.data.set_user(sid, user);
        for room in &rooms {
            self.counters.room_contribution(*room, old, -1);
        }
        self.counters.socket_contribution(ns, old, -1);
        self.counters.socket_contribution(ns, new, 1);
        for room in &rooms {
            self.counters.room_contribution(*room, new, 1);
        }
        // A lingering socket of the new user (a reload) gives way, as on
        // a connect.
        if let Some(u) = new {
            self.grace.resume(u, ns, &mut self.counters);
            for room in &rooms {
                self.grace.adopt_room(u, ns, *room, &mut self.counters);
            }
            self.end_lingering_data();
        }
        Ok(true)
    }

    /// A connected socket's data becomes `json` (`None`: none). Shown
    /// while the socket has a user.
    pub fn set_data(&mut self, sid: &str, json: Option<&str>) -> Result<(), Refusal> {
        let (user, ns) = self.sockets.user_of(sid)?;
        let name = user.map(|u| self.counters.names.user_name(u));
        self.data.set(sid, name, json);
        // A reload: the data the user's lingering socket still shows goes
        // in the same write as the new socket's.
        if let Some(u) = user
            && json.is_some()
        {
            self.grace.replace_data(u, ns);
            self.end_lingering_data();
        }
        Ok(())
    }

    /// The data of lingering sockets whose grace period ended, or whose
    /// user set new data, is shown no more (unless the id is connected
    /// again).
    fn end_lingering_data(&mut self) {
        for sid in self.grace.take_ended() {
            if self.sockets.user_of(&sid).is_err() {
                self.data.drop_socket(&sid);
            }
        }
    }

    /// A low-level client connection opens.
    pub fn client_open(&mut self, cid: &str) -> Result<(), Refusal> {
        if !self.clients.insert(Id::new(cid)) {
            return Err(Refusal::Duplicate);
        }
        self.counters.bump(Key::CLIENTS, 1);
        Ok(())
    }

    /// A low-level client connection closes.
    pub fn client_close(&mut self, cid: &str) -> Result<(), Refusal> {
        if !self.clients.remove(cid.as_bytes()) {
            return Err(Refusal::Unknown);
        }
        self.counters.bump(Key::CLIENTS, -1);
        Ok(())
    }

    /// Ends every grace period due by `now` (called on every input).
    #[inline]
    pub fn expire_lingering(&mut self, now: Millis) {
        self.grace.expire(now, &mut self.counters);
        self.end_lingering_data();
    }

    /// When the next grace period ends.
    pub fn next_linger_deadline(&self) -> Option<Millis> {
        self.grace.next_deadline()
    }

    /// Drops all lingering users at once (shutdown).
    pub fn clear_lingering(&mut self) {
        self.expire_lingering(Millis::MAX);
    }

    // ----- what to write -----

    /// The net change of the counters touched since the last write, sorted
    /// by field name: at most `limit` of them, the first by name. Clears
    /// their dirty marks; the others stay dirty, in the backlog (their names
    /// built once), for the next call.
    pub fn take_deltas(&mut self, limit: usize) -> Vec<(String, Key, i64)> {
        self.counters.take_deltas(limit)
    }

    /// Every counter this node wants counted is to be written again, as
    /// deltas from what Redis acknowledged (after a fresh registration,
    /// nothing): the next writes carry the whole local truth, in bounded
    /// calls.
    pub fn mark_all_dirty(&mut self) {
        self.counters.mark_all_dirty();
        self.data.mark_all_dirty();
    }

    /// The data writes that follow the counters' deltas: at most `limit`,
    /// in socket id order (see [`Local::take_deltas`]).
    pub fn take_data(&mut self, limit: usize) -> Vec<DataWrite> {
        self.data.take(limit)
    }

    /// Every socket's data, as a re-assert sends it; clears the marks.
    pub fn data_snapshot(&mut self) -> Vec<DataWrite> {
        self.data.snapshot()
    }

    /// An apply's data writes went through.
    pub fn commit_data(&mut self, writes: &[DataWrite]) {
        self.data.commit(writes);
    }

    /// A re-assert went through: Redis holds exactly `snapshot` of data.
    pub fn commit_data_snapshot(&mut self, snapshot: &[DataWrite]) {
        self.data.commit_snapshot(snapshot);
    }

    /// How many fields the whole local truth has (a re-assert's size).
    pub fn field_count(&self) -> usize {
        self.counters.field_count() + self.data.field_count()
    }

    /// Something may be left to write.
    pub fn has_dirty(&self) -> bool {
        self.counters.has_dirty() || self.data.has_dirty()
    }

    /// The whole local truth, sorted by field name; clears the dirty marks.
    pub fn snapshot(&mut self) -> Vec<(String, Key, u32)> {
        self.counters.snapshot()
    }

    /// An apply went through.
    pub fn commit_deltas(&mut self, deltas: &[(Key, i64)]) {
        self.counters.commit_deltas(deltas);
    }

    /// A re-assert went through: Redis holds exactly `snapshot`.
    pub fn commit_snapshot(&mut self, snapshot: &[(Key, u32)]) {
        self.counters.commit_snapshot(snapshot);
    }

    /// Redis holds nothing of this node (a new incarnation).
    pub fn forget_committed(&mut self) {
        self.counters.forget_committed();
        self.data.forget_committed();
    }

    // ----- local truth, for hosts and tests -----

    /// Sockets of this node.
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    /// Low-level clients of this node.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Users with a socket here, in any namespace (lingering ones included).
    pub fn user_count(&self) -> usize {
        self.counters.user_count()
    }

    /// What this node contributes to one field (sockets still lingering in
    /// a grace period included).
    pub fn desired_of(&self, field: &Field) -> u32 {
        self.counters.desired_of(field)
    }

    /// Every field this node wants counted, with its count, sorted.
    pub fn desired_fields(&self) -> Vec<(String, u32)> {
        self.counters.desired_fields()
    }

    /// The data the sockets show: (marker field, JSON), sorted by field.
    pub fn desired_data(&self) -> Vec<(String, String)> {
        self.data.desired()
    }

    /// Sockets of this node, sorted by id (for hosts that need to list them).
    pub fn socket_ids(&self) -> Vec<&str> {
        self.sockets.ids()
    }

    /// How many scope ids and user names are interned (for tests).
    #[cfg(test)]
    pub fn interned(&self) -> (usize, usize) {
        self.counters.names.interned()
    }
}
