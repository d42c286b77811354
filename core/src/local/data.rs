//! Per-socket data: what each socket wants shown (its JSON, under its
//! user's marker field) against what Redis acknowledged, for the sockets
//! that have data only. A write sends what differs: a socket's marker
//! field with its JSON, or with `""` to remove it (see `put` in the Lua
//! prelude).

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use crate::compact::Id;
use crate::schema::data_field;

/// One data write: socket `sid`'s marker `field` set to `json` (`""`:
/// removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataWrite {
    pub(crate) sid: Box<str>,
    pub(crate) field: String,
    pub(crate) json: String,
}

#[derive(Debug, Default)]
struct Entry {
    /// The socket's data, while it is shown (connected, or lingering in a
    /// grace period).
    json: Option<Box<str>>,
    /// Its user while it has one.
    user: Option<Box<str>>,
    /// What Redis holds of it: the marker field and the JSON.
    committed: Option<(String, Box<str>)>,
}

impl Entry {
    /// The marker field and JSON this socket wants in Redis.
    fn desired(&self, sid: &str) -> Option<(String, &str)> {
        match (&self.user, &self.json) {
            (Some(user), Some(json)) => Some((data_field(user, sid), json)),
            _ => None,
        }
    }
}

/// The data of this node's sockets.
#[derive(Debug, Default)]
pub(crate) struct Data {
    by_socket: FxHashMap<Id, Entry>,
    /// Sockets whose desired data may differ from the committed, by id
    /// (writes go in id order).
    dirty: BTreeSet<Box<str>>,
}

impl Data {
    /// Socket `sid` (of `user`, if any) shows `json` from now on (`None`:
    /// nothing).
    pub(crate) fn set(&mut self, sid: &str, user: Option<&str>, json: Option<&str>) {
        if json.is_none() && !self.by_socket.contains_key(sid.as_bytes()) {
            return;
        }
        let entry = self.by_socket.entry(Id::new(sid)).or_default();
        entry.json = json.map(Into::into);
        entry.user = user.map(Into::into);
        self.dirty.insert(sid.into());
    }

    /// Socket `sid` now belongs to `user` (its data moves with it).
    pub(crate) fn set_user(&mut self, sid: &str, user: Option<&str>) {
        if let Some(entry) = self.by_socket.get_mut(sid.as_bytes()) {
            entry.user = user.map(Into::into);
            self.dirty.insert(sid.into());
        }
    }

    /// Socket `sid`'s data is shown no more (it left, or its grace period
    /// ended).
    pub(crate) fn drop_socket(&mut self, sid: &str) {
        self.set(sid, None, None);
    }

    /// Whether `sid` shows data.
    pub(crate) fn shows(&self, sid: &str) -> bool {
        self.by_socket
            .get(sid.as_bytes())
            .is_some_and(|e| e.json.is_some())
    }

    /// Something is left to write.
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// How many data fields the whole local truth has.
    /// (The sockets `Entry::desired` shows, without building their fields.)
    pub(crate) fn field_count(&self) -> usize {
        self.by_socket
            .values()
            .filter(|e| e.user.is_some() && e.json.is_some())
            .count()
    }

    /// The writes that make Redis hold what the sockets want, in socket id
    /// order: at most `limit` of them (a socket that changed users takes
    /// two); the sockets left wait for the next call.
    pub(crate) fn take(&mut self, limit: usize) -> Vec<DataWrite> {
        let mut out = Vec::new();
        while let Some(sid) = self.dirty.first().cloned() {
            let Some(entry) = self.by_socket.get(sid.as_bytes()) else {
                self.dirty.pop_first();
                continue;
            };
            let desired = entry.desired(&sid);
            let committed = entry.committed.as_ref();
            let mut writes = Vec::new();
            if let Some((field, _)) =
                committed.filter(|(f, _)| desired.as_ref().is_none_or(|(d, _)| d != f))
            {
                writes.push((field.clone(), String::new()));
            }
            if let Some((field, json)) = &desired
                && committed.is_none_or(|(f, j)| f != field || **j != **json)
            {
                writes.push((field.clone(), (*json).to_owned()));
            }
            if out.len() + writes.len() > limit {
                // What fits goes (a removal before its move), the socket
                // stays dirty for the rest: every call makes progress.
                let room = limit - out.len();
                out.extend(
                    writes
                        .into_iter()
                        .take(room)
                        .map(|(field, json)| DataWrite {
                            sid: sid.clone(),
                            field,
                            json,
                        }),
                );
                break;
            }
            self.dirty.pop_first();
            out.extend(writes.into_iter().map(|(field, json)| DataWrite {
                sid: sid.clone(),
                field,
                json,
            }));
            self.forget_if_empty(&sid);
        }
        out
    }

    /// An apply of `writes` went through.
    pub(crate) fn commit(&mut self, writes: &[DataWrite]) {
        for w in writes {
            let entry = self.by_socket.entry(Id::new(&w.sid)).or_default();
            if w.json.is_empty() {
                if entry.committed.as_ref().is_some_and(|(f, _)| *f == w.field) {
                    entry.committed = None;
                }
            } else {
                entry.committed = Some((w.field.clone(), w.json.as_str().into()));
            }
            self.forget_if_empty(&w.sid);
        }
    }

    /// Every socket's data as a re-assert sends it, in socket id order;
    /// clears the dirty marks.
    pub(crate) fn snapshot(&mut self) -> Vec<DataWrite> {
        self.dirty.clear();
        let mut out = self.shown();
        out.sort_by(|a, b| a.sid.cmp(&b.sid));
        out
    }

    /// (marker field, JSON) of every socket that shows data, sorted.
    pub(crate) fn desired(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .shown()
            .into_iter()
            .map(|w| (w.field, w.json))
            .collect();
        out.sort();
        out
    }

    /// What every socket that shows data wants in Redis, in no order.
    fn shown(&self) -> Vec<DataWrite> {
        self.by_socket
            .iter()
            .filter_map(|(sid, e)| {
                let sid = std::str::from_utf8(sid.as_bytes()).expect("ids are text");
                let (field, json) = e.desired(sid)?;
                Some(DataWrite {
                    sid: sid.into(),
                    field,
                    json: json.to_owned(),
                })
            })
            .collect()
    }

    /// A re-assert of `snapshot` went through: Redis holds exactly it.
    pub(crate) fn commit_snapshot(&mut self, snapshot: &[DataWrite]) {
        self.forget_committed();
        self.commit(snapshot);
    }

    /// Redis holds nothing of this node (a new incarnation).
    pub(crate) fn forget_committed(&mut self) {
        for e in self.by_socket.values_mut() {
            e.committed = None;
        }
        self.by_socket.retain(|_, e| e.json.is_some());
    }

    /// Every socket's data is to be written again.
    pub(crate) fn mark_all_dirty(&mut self) {
        for sid in self.by_socket.keys() {
            let sid = std::str::from_utf8(sid.as_bytes()).expect("ids are text");
            self.dirty.insert(sid.into());
        }
    }

    fn forget_if_empty(&mut self, sid: &str) {
        if self
            .by_socket
            .get(sid.as_bytes())
            .is_some_and(|e| e.json.is_none() && e.committed.is_none())
        {
            self.by_socket.remove(sid.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(writes: &[DataWrite]) -> Vec<(&str, &str)> {
        writes
            .iter()
            .map(|w| (w.field.as_str(), w.json.as_str()))
            .collect()
    }

    #[test]
    fn writes_carry_what_differs_and_commits_settle_it() {
        let mut d = Data::default();
        d.set("s1", Some("ann"), Some(r#"{"a":1}"#));
        let w = d.take(10);
        assert_eq!(fields(&w), [("d3:anns1", r#"{"a":1}"#)]);
        d.commit(&w);
        assert!(d.take(10).is_empty());
        // The same data again writes nothing.
        d.set("s1", Some("ann"), Some(r#"{"a":1}"#));
        assert!(d.take(10).is_empty());
        // A new user moves the marker: the old goes, the new comes.
        d.set_user("s1", Some("bob"));
        let w = d.take(10);
        assert_eq!(fields(&w), [("d3:anns1", ""), ("d3:bobs1", r#"{"a":1}"#)]);
        d.commit(&w);
        // Anonymous: removed, and forgotten once committed... but the
        // socket keeps its data for when it has a user again.
        d.set_user("s1", None);
        let w = d.take(10);
        assert_eq!(fields(&w), [("d3:bobs1", "")]);
        d.commit(&w);
        assert_eq!(d.field_count(), 0);
        d.drop_socket("s1");
        assert!(d.take(10).is_empty());
        assert!(d.by_socket.is_empty());
    }

    #[test]
    fn a_capped_take_leaves_the_rest_and_a_snapshot_holds_everything() {
        let mut d = Data::default();
        for s in ["s3", "s1", "s2"] {
            d.set(s, Some("u"), Some("{}"));
        }
        let w = d.take(2);
        assert_eq!(w.iter().map(|w| &*w.sid).collect::<Vec<_>>(), ["s1", "s2"]);
        d.commit(&w);
        // A move that does not fit goes in parts: the removal first.
        d.set_user("s1", Some("v"));
        let w = d.take(1);
        assert_eq!(fields(&w), [("d1:us1", "")]);
        d.commit(&w);
        assert_eq!(fields(&d.take(1)), [("d1:vs1", "{}")]);
        assert!(d.has_dirty());
        // A failed write: the re-assert carries the whole truth.
        let snap = d.snapshot();
        assert_eq!(snap.len(), 3);
        assert!(!d.has_dirty());
        d.commit_snapshot(&snap);
        d.drop_socket("s2");
        assert_eq!(fields(&d.take(10)), [("d1:us2", "")]);
        // A new incarnation holds nothing: everything goes again.
        d.forget_committed();
        d.mark_all_dirty();
        assert_eq!(d.take(10).len(), 2);
    }
}
