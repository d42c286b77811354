//! The Redis key schema: every key and field name is built here and nowhere
//! else, and every key parses back into its [`KeyKind`].
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
//! | `{p}:m:<scope>` | zset | the users of the scope, every score 0: pages in user-id order |
//! | `{p}:w:<user>` | hash | scope -> when the user came online there (ms, Redis clock) |
//! | `{p}:d:<user>` | hash | `<len(inc)>:<inc><sid>` -> one socket's data (JSON) |
//! | `{p}:i:<incarnation>` | zset | one node's own share: field -> count |
//! | `{p}:o:<lane>:<incarnation>` | string | the kept reply of a lane's last call ([`crate::protocol`]) |
//! | `{p}:feed` | stream | the change feed: one entry per transition ([`crate::feed`]) |
//! | `{p}:seen` | zset | user -> when their last socket left (ms, Redis clock), while offline |
//!
//! `m:` and `w:` follow `u:`: a user is in `m:<scope>` and `<scope>` is in
//! `w:<user>` exactly while the user's field of `u:<scope>` exists; the
//! scripts keep them so at each user's edge (`enter`/`exit` in the prelude).
//!
//! A socket's data is in `d:<user>` exactly while its marker
//! `d<len(user)>:<user><sid>` (score 1, [`data_field`]) is in its node's own
//! zset, so a reap removes it like a count (`put` in the prelude).
//!
//! The feed and the last-seen stamps outlive the nodes (a watcher resumes
//! from the feed, `last_seen` answers after a restart); both are bounded
//! (`changes_max_len` entries, stamps younger than `last_seen_ms`) and
//! expire after `last_seen_ms` without a change.
//!
//! An incarnation is `<node id>/<k>`: one registration of one node. A node's
//! own zset uses the field names of [`Field::encode`]; each maps to exactly one
//! cluster-wide counter ([`Field::target`]), which is what makes a reap possible.

use serde::Serialize;

use crate::protocol::Lane;
use crate::scope::{Scope, push_decimal, split_len};

/// Longest prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 64;

// The suffixes of the keys, after `{prefix}:` (the Lua spells them too).
const LIVE: &str = "live";
const DEAD: &str = "dead";
const VERSIONS: &str = "ver";
const NODES: &str = "nodes";
const CLOCK: &str = "clock";
const COUNTS: &str = "count";
const USERS: &str = "u:";
const MEMBERS: &str = "m:";
const WHERE: &str = "w:";
const OWN: &str = "i:";
const DATA: &str = "d:";
const KEPT: &str = "o:";
const FEED: &str = "feed";
const SEEN: &str = "seen";

/// The keys of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    base: String,
}

/// What a key of the schema holds (see the table above); the parts of the
/// key after its suffix, as they are in the key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyKind {
    /// `{p}:live`.
    Live,
    /// `{p}:dead`.
    Dead,
    /// `{p}:ver`.
    Versions,
    /// `{p}:nodes`.
    Nodes,
    /// `{p}:clock`.
    Clock,
    /// `{p}:count`.
    Counts,
    /// `{p}:u:<scope id>`: the users of one scope.
    Users {
        /// The scope's [`Scope::encode`]d id.
        scope_id: String,
    },
    /// `{p}:m:<scope id>`: the users of one scope in id order.
    Members {
        /// The scope's [`Scope::encode`]d id.
        scope_id: String,
    },
    /// `{p}:w:<user>`: the scopes of one user, with since when.
    UserScopes {
        /// The user.
        user: String,
    },
    /// `{p}:d:<user>`: the data of one user's sockets.
    Data {
        /// The user.
        user: String,
    },
    /// `{p}:i:<incarnation>`: one incarnation's own share.
    Own {
        /// The incarnation.
        incarnation: String,
    },
    /// `{p}:o:<lane>:<incarnation>`: the kept reply of one lane.
    KeptReply {
        /// The lane.
        lane: Lane,
        /// The incarnation.
        incarnation: String,
    },
    /// `{p}:feed`: the change feed.
    Feed,
    /// `{p}:seen`: last seen of offline users.
    Seen,
}

impl KeyKind {
    /// The kinds that outlive every node (they expire on their own).
    pub fn outlives_nodes(&self) -> bool {
        matches!(self, KeyKind::Feed | KeyKind::Seen)
    }
}

impl Schema {
    /// `prefix` must be non-empty, without `{` or `}` (it becomes the hash tag);
    /// [`crate::Config::validate`] checks that.
    pub fn new(prefix: &str) -> Schema {
        Schema {
            base: format!("{{{prefix}}}:"),
        }
    }

    /// The schema whose [`Schema::live`] key is `live`, as the scripts
    /// derive it from `KEYS[1]`: `None` unless it ends in the live suffix.
    pub fn of_live_key(live: &str) -> Option<Schema> {
        live.strip_suffix(LIVE).map(|base| Schema {
            base: base.to_owned(),
        })
    }

    /// `{prefix}:`, the start of every key.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.base)
    }

    /// The key every script names as `KEYS[1]`; the scripts derive the others.
    pub fn live(&self) -> String {
        self.key(LIVE)
    }

    /// Incarnations being reaped.
    pub fn dead(&self) -> String {
        self.key(DEAD)
    }

    /// Each incarnation's count of acknowledged writes.
    pub fn versions(&self) -> String {
        self.key(VERSIONS)
    }

    /// Each node id's newest incarnation number.
    pub fn nodes(&self) -> String {
        self.key(NODES)
    }

    /// The Redis time seen by the newest script.
    pub fn clock(&self) -> String {
        self.key(CLOCK)
    }

    /// The cluster-wide counters of clients and sockets.
    pub fn counts(&self) -> String {
        self.key(COUNTS)
    }

    /// The users of one scope.
    pub fn users(&self, scope: &Scope) -> String {
        self.users_of_id(&scope.encode())
    }

    /// [`Schema::users`] of an encoded scope id (as a field's
    /// [`Target::User`] names it).
    pub fn users_of_id(&self, scope_id: &str) -> String {
        format!("{}{USERS}{scope_id}", self.base)
    }

    /// The users of one scope (an encoded scope id) in id order.
    pub fn members_of_id(&self, scope_id: &str) -> String {
        format!("{}{MEMBERS}{scope_id}", self.base)
    }

    /// The scopes one user is in, with since when.
    pub fn user_scopes(&self, user: &str) -> String {
        format!("{}{WHERE}{user}", self.base)
    }

    /// The data of one user's sockets (a hash of JSON texts by
    /// [`data_slot`]).
    pub fn data(&self, user: &str) -> String {
        format!("{}{DATA}{user}", self.base)
    }

    /// One incarnation's own share.
    pub fn own(&self, incarnation: &str) -> String {
        format!("{}{OWN}{incarnation}", self.base)
    }

    /// The kept reply of the last call of one lane of an incarnation, for
    /// a retry whose reply was lost.
    pub fn kept_reply(&self, lane: Lane, incarnation: &str) -> String {
        format!("{}{KEPT}{lane}:{incarnation}", self.base)
    }

    /// The change feed (a stream).
    pub fn feed(&self) -> String {
        self.key(FEED)
    }

    /// Offline users' last seen (a zset).
    pub fn seen(&self) -> String {
        self.key(SEEN)
    }

    /// The key of a kind.
    pub fn key_of(&self, kind: &KeyKind) -> String {
        match kind {
            KeyKind::Live => self.live(),
            KeyKind::Dead => self.dead(),
            KeyKind::Versions => self.versions(),
            KeyKind::Nodes => self.nodes(),
            KeyKind::Clock => self.clock(),
            KeyKind::Counts => self.counts(),
            KeyKind::Users { scope_id } => self.users_of_id(scope_id),
            KeyKind::Members { scope_id } => self.members_of_id(scope_id),
            KeyKind::UserScopes { user } => self.user_scopes(user),
            KeyKind::Data { user } => self.data(user),
            KeyKind::Own { incarnation } => self.own(incarnation),
            KeyKind::KeptReply { lane, incarnation } => self.kept_reply(*lane, incarnation),
            KeyKind::Feed => self.feed(),
            KeyKind::Seen => self.seen(),
        }
    }

    /// Inverse of [`Schema::key_of`]: the kind of a key of this prefix;
    /// `None` for a key of another prefix or no key of the schema.
    pub fn parse_key(&self, key: &str) -> Option<KeyKind> {
        let name = key.strip_prefix(&self.base)?;
        match name {
            LIVE => return Some(KeyKind::Live),
            DEAD => return Some(KeyKind::Dead),
            VERSIONS => return Some(KeyKind::Versions),
            NODES => return Some(KeyKind::Nodes),
            CLOCK => return Some(KeyKind::Clock),
            COUNTS => return Some(KeyKind::Counts),
            FEED => return Some(KeyKind::Feed),
            SEEN => return Some(KeyKind::Seen),
            _ => {}
        }
        if let Some(scope_id) = name.strip_prefix(USERS) {
            return Some(KeyKind::Users {
                scope_id: scope_id.to_owned(),
            });
        }
        if let Some(scope_id) = name.strip_prefix(MEMBERS) {
            return Some(KeyKind::Members {
                scope_id: scope_id.to_owned(),
            });
        }
        if let Some(user) = name.strip_prefix(WHERE) {
            return Some(KeyKind::UserScopes {
                user: user.to_owned(),
            });
        }
        if let Some(user) = name.strip_prefix(DATA) {
            return Some(KeyKind::Data {
                user: user.to_owned(),
            });
        }
        if let Some(incarnation) = name.strip_prefix(OWN) {
            return Some(KeyKind::Own {
                incarnation: incarnation.to_owned(),
            });
        }
        let (lane, incarnation) = name.strip_prefix(KEPT)?.split_once(':')?;
        Some(KeyKind::KeptReply {
            lane: Lane::parse(lane)?,
            incarnation: incarnation.to_owned(),
        })
    }
}

/// Whether `key` (of any prefix) is one of the kinds that outlive the
/// nodes ([`KeyKind::outlives_nodes`]): the change feed, last seen.
pub fn outlives_nodes(key: &str) -> bool {
    key.find("}:")
        .map(|end| Schema {
            base: key[..end + 2].to_owned(),
        })
        .and_then(|schema| schema.parse_key(key))
        .is_some_and(|kind| kind.outlives_nodes())
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
    User {
        /// The scope's encoded id.
        scope_id: String,
        /// The user.
        user: String,
    },
    /// A socket's data marker: the socket `sid` of `user` has data in
    /// `{p}:d:<user>` (see [`data_field`]).
    Data {
        /// The user.
        user: String,
        /// The socket.
        sid: String,
    },
}

/// The marker of socket `sid`'s data in its node's own zset, when the
/// socket is `user`'s: `d<len(user)>:<user><sid>`.
pub fn data_field(user: &str, sid: &str) -> String {
    let mut name = String::with_capacity(user.len() + sid.len() + 5);
    name.push('d');
    push_decimal(&mut name, user.len());
    name.push(':');
    name.push_str(user);
    name.push_str(sid);
    name
}

/// The field of socket `sid` of incarnation `inc` in `{p}:d:<user>`:
/// `<len(inc)>:<inc><sid>` (the prelude's `put` builds it).
pub fn data_slot(inc: &str, sid: &str) -> String {
    let mut name = String::with_capacity(inc.len() + sid.len() + 4);
    push_decimal(&mut name, inc.len());
    name.push(':');
    name.push_str(inc);
    name.push_str(sid);
    name
}

/// Whether a field of an own zset is a data marker ([`data_field`]).
pub fn is_data_field(name: &str) -> bool {
    name.starts_with('d')
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

    /// The name of [`Field::Sockets`] of an encoded scope id.
    pub fn sockets_of_id(scope_id: &str) -> String {
        let mut name = String::new();
        push_sockets_field(&mut name, scope_id);
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
        if let Some(rest) = name.strip_prefix('d') {
            let (len, rest) = split_len(rest)?;
            Some(Target::Data {
                user: rest.get(..len)?.to_owned(),
                sid: rest.get(len..)?.to_owned(),
            })
        } else if let Some(rest) = name.strip_prefix('u') {
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
    fn data_fields_name_their_user_and_socket() {
        let name = data_field("u:1{x}", "sid:9");
        assert!(is_data_field(&name));
        assert_eq!(
            Field::target(&name),
            Some(Target::Data {
                user: "u:1{x}".into(),
                sid: "sid:9".into()
            })
        );
        assert_eq!(Field::decode(&name), None);
        assert_eq!(data_slot("n:1/2", "s"), "5:n:1/2s");
    }

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

    /// One key of every kind, with odd parts (braces, colons, slashes).
    fn every_kind() -> Vec<KeyKind> {
        vec![
            KeyKind::Live,
            KeyKind::Dead,
            KeyKind::Versions,
            KeyKind::Nodes,
            KeyKind::Clock,
            KeyKind::Counts,
            KeyKind::Users {
                scope_id: Scope::Global.encode(),
            },
            KeyKind::Users {
                scope_id: Scope::room("/{x}", "r:1").encode(),
            },
            KeyKind::Members {
                scope_id: Scope::room("/", "m:{y}").encode(),
            },
            KeyKind::UserScopes {
                user: "w:{u}:1".into(),
            },
            KeyKind::Data {
                user: "d:{u}:2".into(),
            },
            KeyKind::Own {
                incarnation: "n{1}/3".into(),
            },
            KeyKind::KeptReply {
                lane: Lane::Write,
                incarnation: "a:b/1".into(),
            },
            KeyKind::KeptReply {
                lane: Lane::Reap,
                incarnation: "n/2".into(),
            },
            KeyKind::Feed,
            KeyKind::Seen,
        ]
    }

    #[test]
    fn every_key_kind_round_trips() {
        for prefix in ["app", "a:b", "x/y"] {
            let s = Schema::new(prefix);
            for kind in every_kind() {
                let key = s.key_of(&kind);
                assert_eq!(s.parse_key(&key), Some(kind.clone()), "{key}");
            }
        }
        let s = Schema::new("app");
        assert_eq!(
            s.parse_key(&s.users(&Scope::namespace("/"))),
            Some(KeyKind::Users {
                scope_id: Scope::namespace("/").encode(),
            })
        );
        assert_eq!(
            s.parse_key(&s.kept_reply(Lane::Reap, "n/1")).unwrap(),
            KeyKind::KeptReply {
                lane: Lane::Reap,
                incarnation: "n/1".into()
            }
        );
    }

    #[test]
    fn keys_of_no_kind_parse_to_none() {
        let s = Schema::new("app");
        for key in [
            "{app}:",
            "{app}:lives",
            "{app}:o:x:n/1",
            "{app}:o:w",
            "{other}:live",
            "app:live",
            "{app}:LIVE",
        ] {
            assert_eq!(s.parse_key(key), None, "{key}");
        }
    }

    #[test]
    fn the_live_key_names_its_schema() {
        let s = Schema::new("app");
        assert_eq!(Schema::of_live_key(&s.live()), Some(s));
        assert_eq!(Schema::of_live_key("{app}:dead"), None);
        assert_eq!(Schema::of_live_key("live").unwrap().base(), "");
    }

    #[test]
    fn key_kinds_have_a_json_form() {
        let kind = KeyKind::KeptReply {
            lane: Lane::Write,
            incarnation: "n/1".into(),
        };
        assert_eq!(
            serde_json::to_string(&kind).unwrap(),
            r#"{"kind":"kept_reply","lane":"w","incarnation":"n/1"}"#
        );
        assert_eq!(
            serde_json::to_string(&KeyKind::Live).unwrap(),
            r#"{"kind":"live"}"#
        );
    }

    #[test]
    fn incarnations_split_at_the_last_slash() {
        assert_eq!(split_incarnation("a/b/7"), Some(("a/b", 7)));
        assert_eq!(split_incarnation(&incarnation("n", 2)), Some(("n", 2)));
        assert_eq!(split_incarnation("nope"), None);
    }
}
