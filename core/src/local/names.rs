//! The names behind the packed keys: scope ids and user names interned, and
//! the field names the scripts know built from them. Every id and name is
//! written by the one encoding in [`crate::scope`] and [`crate::schema`],
//! here into a reused buffer so an input about a known scope allocates
//! nothing.

use super::interner::Interner;
use super::key::{GLOBAL, Key, Kind};
use crate::schema::{Field, push_sockets_field, push_user_field};
use crate::scope::{Scope, namespace_of_id, push_namespace_id, push_room_id};

/// Interned scope ids and user names, with a buffer to build ids in.
#[derive(Debug)]
pub(crate) struct Names {
    /// Scope ids ([`Scope::encode`]), the global one first.
    scopes: Interner,
    /// User names.
    users: Interner,
    /// Scope ids are built here.
    scratch: String,
}

impl Names {
    /// Only the global scope, interned as [`GLOBAL`] and never freed.
    pub(crate) fn new() -> Names {
        let mut scopes = Interner::default();
        let g = scopes.intern(&Scope::Global.encode());
        debug_assert_eq!(g, GLOBAL);
        scopes.acquire(GLOBAL);
        Names {
            scopes,
            users: Interner::default(),
            scratch: String::new(),
        }
    }

    /// The scope id of `namespace`, interned.
    #[inline]
    pub(crate) fn namespace(&mut self, namespace: &str) -> u32 {
        self.scratch.clear();
        push_namespace_id(&mut self.scratch, namespace);
        self.scopes.intern(&self.scratch)
    }

    /// The scope id of `room` in the namespace whose scope id is `ns`,
    /// interned.
    #[inline]
    pub(crate) fn room(&mut self, ns: u32, room: &str) -> u32 {
        self.build_room(ns, room);
        self.scopes.intern(&self.scratch)
    }

    /// The scope id of `room` in the namespace whose scope id is `ns`, if it
    /// is interned.
    #[inline]
    pub(crate) fn lookup_room(&mut self, ns: u32, room: &str) -> Option<u32> {
        self.build_room(ns, room);
        self.scopes.lookup(&self.scratch)
    }

    /// Builds the id of `room` of namespace scope `ns` in the buffer.
    #[inline]
    fn build_room(&mut self, ns: u32, room: &str) {
        let namespace = namespace_of_id(self.scopes.name(ns)).expect("a namespace scope");
        self.scratch.clear();
        push_room_id(&mut self.scratch, namespace, room);
    }

    /// The id of `user`, interned.
    #[inline]
    pub(crate) fn user(&mut self, user: &str) -> u32 {
        self.users.intern(user)
    }

    /// The name of an interned user.
    #[inline]
    pub(crate) fn user_name(&self, user: u32) -> &str {
        self.users.name(user)
    }

    /// The key of `field`, if its names are interned.
    pub(crate) fn lookup(&self, field: &Field) -> Option<Key> {
        match field {
            Field::Clients => Some(Key::CLIENTS),
            Field::Sockets(scope) => self.scopes.lookup(&scope.encode()).map(Key::sockets),
            Field::User(scope, user) => self
                .scopes
                .lookup(&scope.encode())
                .zip(self.users.lookup(user))
                .map(|(s, u)| Key::user(s, u)),
        }
    }

    /// A new counter uses the names of `key`.
    #[inline]
    pub(crate) fn acquire(&mut self, key: Key) {
        match key.kind() {
            Kind::Clients => {}
            Kind::Sockets(s) => self.scopes.acquire(s),
            Kind::User(s, u) => {
                self.scopes.acquire(s);
                self.users.acquire(u);
            }
        }
    }

    /// The counter of `key` is gone; names nothing else uses are freed.
    #[inline]
    pub(crate) fn release(&mut self, key: Key) {
        match key.kind() {
            Kind::Clients => {}
            Kind::Sockets(s) => self.scopes.release(s),
            Kind::User(s, u) => {
                self.scopes.release(s);
                self.users.release(u);
            }
        }
    }

    /// The field name of `key`, as [`Field::encode`] writes it.
    pub(crate) fn field(&self, key: Key) -> String {
        let mut out = String::new();
        match key.kind() {
            Kind::Clients => return Field::Clients.encode(),
            Kind::Sockets(s) => {
                let scope = self.scopes.name(s);
                out.reserve(1 + scope.len());
                push_sockets_field(&mut out, scope);
            }
            Kind::User(s, u) => {
                let (scope, user) = (self.scopes.name(s), self.users.name(u));
                out.reserve(5 + scope.len() + user.len());
                push_user_field(&mut out, scope, user);
            }
        }
        out
    }

    /// How many scope ids and user names are interned (for tests).
    #[cfg(test)]
    pub(crate) fn interned(&self) -> (usize, usize) {
        (self.scopes.len(), self.users.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names with `:`, `{`, `}`, digits after the length, non-ASCII and
    /// empty rooms: where a hand-written copy of the encoding would drift.
    const NAMESPACES: [&str; 7] = ["/", "", "/chat", "/a:b", "/{x}:1", "/é", LONG];
    /// A namespace whose length takes three digits.
    const LONG: &str = "/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    const ROOMS: [&str; 6] = ["", "news", "1:2{}", ":", "}{", "ü漢"];
    const USERS: [&str; 4] = ["ann", "", "u:9{}", "ß:"];

    #[test]
    fn scope_ids_are_the_scope_encodings() {
        let mut n = Names::new();
        for namespace in NAMESPACES {
            let ns = n.namespace(namespace);
            assert_eq!(
                n.scopes.name(ns),
                Scope::namespace(namespace).encode(),
                "{namespace:?}"
            );
            for room in ROOMS {
                assert_eq!(n.lookup_room(ns, room), None);
                let r = n.room(ns, room);
                assert_eq!(n.lookup_room(ns, room), Some(r));
                assert_eq!(
                    n.scopes.name(r),
                    Scope::room(namespace, room).encode(),
                    "{namespace:?} {room:?}"
                );
            }
        }
    }

    #[test]
    fn field_names_are_the_field_encodings_and_found_again() {
        let mut n = Names::new();
        for namespace in NAMESPACES {
            let ns = n.namespace(namespace);
            for room in ROOMS {
                let r = n.room(ns, room);
                for (id, scope) in [
                    (GLOBAL, Scope::Global),
                    (ns, Scope::namespace(namespace)),
                    (r, Scope::room(namespace, room)),
                ] {
                    let field = Field::Sockets(scope.clone());
                    assert_eq!(n.field(Key::sockets(id)), field.encode());
                    assert_eq!(n.lookup(&field), Some(Key::sockets(id)));
                    for user in USERS {
                        let u = n.user(user);
                        let field = Field::User(scope.clone(), user.to_owned());
                        assert_eq!(n.field(Key::user(id, u)), field.encode());
                        assert_eq!(n.lookup(&field), Some(Key::user(id, u)));
                    }
                }
            }
        }
        assert_eq!(n.field(Key::CLIENTS), Field::Clients.encode());
        assert_eq!(n.lookup(&Field::Clients), Some(Key::CLIENTS));
    }

    #[test]
    fn names_live_as_long_as_a_key_uses_them() {
        let mut n = Names::new();
        let ns = n.namespace("/");
        let r = n.room(ns, "a");
        let u = n.user("ann");
        n.acquire(Key::user(r, u));
        n.acquire(Key::sockets(ns));
        assert_eq!(n.interned(), (3, 1));
        n.release(Key::user(r, u));
        assert_eq!(n.interned(), (2, 0));
        n.release(Key::sockets(ns));
        assert_eq!(n.interned(), (1, 0), "only the global scope stays");
    }
}
