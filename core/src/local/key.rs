//! Counter keys packed in one machine word: scope id in the high half, user
//! id (or [`NO_USER`]) in the low half. The tallies are keyed by these, so
//! the hot path hashes a `u64` rather than a field name.

/// No user: a socket count, or an anonymous socket.
pub(crate) const NO_USER: u32 = u32::MAX;

/// Global scope id: interned first and never freed.
pub(crate) const GLOBAL: u32 = 0;

/// A counter this node contributes to, by interned ids, packed in one word:
/// scope id in the high half, user id (or [`NO_USER`]) in the low half.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key(u64);

/// A [`Key`], unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The low-level client count.
    Clients,
    /// The socket count of a scope.
    Sockets(u32),
    /// One user's socket count in a scope: (scope, user).
    User(u32, u32),
}

impl Key {
    /// Scope and user ids stay below `u32::MAX`, so no other key packs to this.
    pub(crate) const CLIENTS: Key = Key(u64::MAX);

    /// The socket count of `scope`.
    #[inline]
    pub(crate) fn sockets(scope: u32) -> Key {
        Key::user(scope, NO_USER)
    }

    /// The socket count of `user` in `scope`.
    #[inline]
    pub(crate) fn user(scope: u32, user: u32) -> Key {
        Key(u64::from(scope) << 32 | u64::from(user))
    }

    /// What the key counts.
    #[inline]
    pub(crate) fn kind(self) -> Kind {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_unpack_to_what_they_packed() {
        assert_eq!(Key::CLIENTS.kind(), Kind::Clients);
        assert_eq!(Key::sockets(7).kind(), Kind::Sockets(7));
        assert_eq!(Key::user(0, 9).kind(), Kind::User(0, 9));
        let top = u32::MAX - 2;
        assert_eq!(Key::user(top, top).kind(), Kind::User(top, top));
        assert_eq!(Key::sockets(top).kind(), Kind::Sockets(top));
    }

    #[test]
    fn different_ids_pack_to_different_keys() {
        let keys = [
            Key::CLIENTS,
            Key::sockets(0),
            Key::sockets(1),
            Key::user(0, 1),
            Key::user(1, 0),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
