//! The Redis key schema: every key and field name is built here and nowhere else.
//!
//! All keys of one prefix start with the hash tag `{prefix}:`, so they live in
//! one Redis Cluster slot and one script may touch any of them.
//!
//! | key | type | content |
//! |---|---|---|
//! | `{p}:live` | zset | incarnation -> lease deadline (ms, Redis clock) |
//! | `{p}:dead` | zset | incarnations being reaped (score 0) |
//! | `{p}:ver` | hash | incarnation -> number of its acknowledged writes |
//! | `{p}:nodes` | hash | node id -> its newest incarnation number |
//! | `{p}:clock` | string | the Redis time seen by the newest script |
//! | `{p}:count` | hash | `c` -> low-level clients, `s<scope>` -> sockets |
//! | `{p}:u:<scope>` | hash | user -> sockets of that user in the scope |
//! | `{p}:i:<incarnation>` | zset | one node's own share: field -> count |
//!
//! An incarnation is `<node id>/<k>`: one registration of one node. A node's
//! own zset uses the field names of [`Field::encode`]; each maps to exactly one
//! cluster-wide counter ([`Field::target`]), which is what makes a reap possible.

use crate::scope::{Scope, push_decimal, split_len};

/// Longest prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 64;

/// The keys of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    base: String,
}

impl Schema {
    /// `prefix` must be non-empty, without `{` or `}` (it becomes the hash tag);
    /// [`crate::Config::validate`] checks that.
    pub fn new(prefix: &str) -> Schema {
        Schema {
            base: format!("{{{prefix}}}:"),
        }
    }

    /// `{prefix}:`, the start of every key.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The key every script names as `KEYS[1]`; the scripts derive the others.
    pub fn live(&self) -> String {
        format!("{}live", self.base)
    }
    pub fn dead(&self) -> String {
        format!("{}dead", self.base)
    }
    pub fn versions(&self) -> String {
        format!("{}ver", self.base)
    }
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.base)
    }
    pub fn clock(&self) -> String {
        format!("{}clock", self.base)
    }
    pub fn counts(&self) -> String {
        format!("{}count", self.base)
    }
    pub fn users(&self, scope: &Scope) -> String {
        format!("{}u:{}", self.base, scope.encode())
    }
    pub fn own(&self, incarnation: &str) -> String {
        format!("{}i:{incarnation}", self.base)
    }
    /// The kept reply of the last call of one lane (`w`: writes, `r`:
    /// reaps) of an incarnation, for a retry whose reply was lost.
    pub fn kept_reply(&self, lane: char, incarnation: &str) -> String {
        format!("{}o:{lane}:{incarnation}", self.base)
    }
}

/// The incarnation id of registration `k` of `node`.
pub fn incarnation(node: &str, k: u64) -> String {
    format!("{node}/{k}")
}

/// Splits an incarnation id into node id and registration number.
pub fn split_incarnation(incarnation: &str) -> Option<(&str, u64)> {
    let slash = incarnation.rfind('/')?;
    let k = incarnation[slash + 1..].parse().ok()?;
    Some((&incarnation[..slash], k))
}

/// One counter a node contributes to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// Low-level (engine) client connections.
    Clients,
    /// Sockets in a scope.
    Sockets(Scope),
    /// Sockets of one user in a scope.
    User(Scope, String),
}

/// Where a field is counted cluster-wide: which key, which hash field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A field of `{p}:count`.
    Count(String),
    /// User `user` in `{p}:u:<scope>`.
    User { scope_id: String, user: String },
}

impl Field {
    /// The field's name in a node's own zset.
    pub fn encode(&self) -> String {
        let mut name = String::new();
        match self {
            Field::Clients => name.push('c'),
            Field::Sockets(scope) => push_sockets_field(&mut name, &scope.encode()),
            Field::User(scope, user) => push_user_field(&mut name, &scope.encode(), user),
        }
        name
    }

    /// Inverse of [`Field::encode`].
    pub fn decode(name: &str) -> Option<Field> {
        match name.get(..1)? {
            "c" if name.len() == 1 => Some(Field::Clients),
            "s" => Scope::decode(&name[1..]).map(Field::Sockets),
            "u" => {
                let (len, rest) = split_len(&name[1..])?;
                let scope = Scope::decode(rest.get(..len)?)?;
                let user = rest.get(len..)?;
                (!user.is_empty()).then(|| Field::User(scope, user.to_owned()))
            }
            _ => None,
        }
    }

    /// The cluster-wide counter of an encoded field name, exactly as the Lua
    /// `target` function computes it (it never needs to decode the scope).
    pub fn target(name: &str) -> Option<Target> {
        if let Some(rest) = name.strip_prefix('u') {
            let (len, rest) = split_len(rest)?;
            Some(Target::User {
                scope_id: rest.get(..len)?.to_owned(),
                user: rest.get(len..)?.to_owned(),
            })
        } else {
            Some(Target::Count(name.to_owned()))
        }
    }
}

/// Appends the name [`Field::encode`] gives the socket count of the scope
/// whose id is `scope_id`, without allocating.
#[inline]
pub(crate) fn push_sockets_field(buf: &mut String, scope_id: &str) {
    buf.push('s');
    buf.push_str(scope_id);
}

/// Appends the name [`Field::encode`] gives `user`'s socket count in the
/// scope whose id is `scope_id`, without allocating.
#[inline]
pub(crate) fn push_user_field(buf: &mut String, scope_id: &str, user: &str) {
    buf.push('u');
    push_decimal(buf, scope_id.len());
    buf.push(':');
    buf.push_str(scope_id);
    buf.push_str(user);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let s = Schema::new("app");
        for key in [
            s.live(),
            s.dead(),
            s.versions(),
            s.nodes(),
            s.clock(),
            s.counts(),
            s.users(&Scope::room("/{x}", "}")),
            s.own("n{1}/3"),
        ] {
            assert!(key.starts_with("{app}:"), "{key}");
        }
    }

    #[test]
    fn fields_round_trip_and_name_their_target() {
        let fields = [
            Field::Clients,
            Field::Sockets(Scope::Global),
            Field::Sockets(Scope::room("/", "r:1")),
            Field::User(Scope::Global, "alice".into()),
            Field::User(Scope::room("/a", "b"), "u:9{}".into()),
        ];
        for f in fields {
            let name = f.encode();
            assert_eq!(Field::decode(&name), Some(f.clone()));
            let target = Field::target(&name).unwrap();
            match (&f, target) {
                (Field::User(scope, user), Target::User { scope_id, user: u }) => {
                    assert_eq!(scope_id, scope.encode());
                    assert_eq!(&u, user);
                }
                (_, Target::Count(c)) => assert_eq!(c, name),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn incarnations_split_at_the_last_slash() {
        assert_eq!(split_incarnation("a/b/7"), Some(("a/b", 7)));
        assert_eq!(split_incarnation(&incarnation("n", 2)), Some(("n", 2)));
        assert_eq!(split_incarnation("nope"), None);
    }
}
