//! The fault suite's deterministic workload: socket number `i` always has
//! the same id, user, namespace and rooms, so a node process and the test
//! that drives it agree on what is held by exchanging only numbers.
//!
//! Any node implementation (the Rust `fault-node` binary, a Node.js
//! fixture) that maps numbers to sockets the same way can be driven and
//! checked by the same tests.

use std::collections::BTreeMap;

use rollcall_core::schema::Target;
use rollcall_core::{Field, Schema, Scope};

/// One socket of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkSocket {
    pub sid: String,
    pub user: Option<String>,
    pub namespace: &'static str,
    pub rooms: Vec<String>,
}

/// Socket number `i` among `users` distinct users: every tenth socket is
/// anonymous, a third are in `/chat`, two fifths in one of four rooms.
pub fn socket(i: u64, users: u64) -> WorkSocket {
    let users = users.max(1);
    WorkSocket {
        sid: format!("s{i}"),
        user: (i % 10 != 9).then(|| format!("u{}", i % users)),
        namespace: if i.is_multiple_of(3) { "/chat" } else { "/" },
        rooms: if i % 5 < 2 {
            vec![format!("r{}", i % 4)]
        } else {
            Vec::new()
        },
    }
}

impl WorkSocket {
    /// The scopes this socket counts in.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut v = vec![Scope::Global, Scope::namespace(self.namespace)];
        v.extend(self.rooms.iter().map(|r| Scope::room(self.namespace, r)));
        v
    }

    /// The fields (with count 1 each) this socket adds.
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        for scope in self.scopes() {
            if let Some(u) = &self.user {
                out.push(Field::User(scope.clone(), u.clone()));
            }
            out.push(Field::Sockets(scope));
        }
        out
    }
}

/// The cluster-wide counters (key, hash field) -> count that exactly these
/// sockets make; what `{p}:count` and `{p}:u:*` must hold, nothing more.
pub fn expected_counters<'a>(
    schema: &Schema,
    sockets: impl IntoIterator<Item = &'a WorkSocket>,
) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for s in sockets {
        for f in s.fields() {
            let target = match Field::target(&f.encode()) {
                Some(Target::Count(name)) => (schema.counts(), name),
                Some(Target::User { scope_id, user }) => {
                    (format!("{}u:{scope_id}", schema.base()), user)
                }
                Some(Target::Data { .. }) | None => {
                    unreachable!("a count field the workload built decodes")
                }
            };
            *out.entry(target).or_insert(0) += 1;
        }
    }
    out
}

/// The workload sockets numbered by `held`.
pub fn sockets_of(held: impl IntoIterator<Item = u64>, users: u64) -> Vec<WorkSocket> {
    held.into_iter().map(|i| socket(i, users)).collect()
}
