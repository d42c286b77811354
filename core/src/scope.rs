//! Scopes: the one idea behind global, namespace and room presence.
//!
//! Every scope has a socket count and a map user -> socket count. `Global`
//! spans every namespace of the application.

use serde::{Deserialize, Serialize};

/// Where presence is counted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// All namespaces together.
    Global,
    /// One Socket.IO namespace, such as `/` or `/chat`.
    Namespace {
        /// Its name, with the leading `/`.
        namespace: String,
    },
    /// One room of one namespace.
    Room {
        /// The namespace the room is in.
        namespace: String,
        /// The room's name.
        room: String,
    },
}

impl Scope {
    /// The namespace scope of `namespace`.
    pub fn namespace(namespace: impl Into<String>) -> Scope {
        Scope::Namespace {
            namespace: namespace.into(),
        }
    }

    /// The scope of `room` in `namespace`.
    pub fn room(namespace: impl Into<String>, room: impl Into<String>) -> Scope {
        Scope::Room {
            namespace: namespace.into(),
            room: room.into(),
        }
    }

    /// The scope's id in keys and fields. Injective: the first byte names the
    /// kind and a room carries the byte length of its namespace, so no two
    /// scopes share an id whatever characters their names hold.
    pub fn encode(&self) -> String {
        let mut id = String::new();
        match self {
            Scope::Global => id.push('g'),
            Scope::Namespace { namespace } => push_namespace_id(&mut id, namespace),
            Scope::Room { namespace, room } => push_room_id(&mut id, namespace, room),
        }
        id
    }

    /// Inverse of [`Scope::encode`]; `None` for a string no scope encodes to.
    pub fn decode(id: &str) -> Option<Scope> {
        let (kind, rest) = (id.get(..1)?, &id[1..]);
        match kind {
            "g" if rest.is_empty() => Some(Scope::Global),
            "n" if !rest.is_empty() => Some(Scope::namespace(rest)),
            "r" => {
                let (len, names) = split_len(rest)?;
                let namespace = names.get(..len)?;
                let room = names.get(len..)?;
                (!namespace.is_empty() && !room.is_empty()).then(|| Scope::room(namespace, room))
            }
            _ => None,
        }
    }
}

/// Appends the id [`Scope::encode`] gives namespace `namespace`, without
/// allocating (the local bookkeeping builds ids in a reused buffer).
#[inline]
pub(crate) fn push_namespace_id(buf: &mut String, namespace: &str) {
    buf.push('n');
    buf.push_str(namespace);
}

/// The namespace of a namespace scope's id: the inverse of
/// [`push_namespace_id`] (for any name, even an empty one that
/// [`Scope::decode`] refuses); `None` for any other kind of id.
#[inline]
pub(crate) fn namespace_of_id(id: &str) -> Option<&str> {
    id.strip_prefix('n')
}

/// Appends the id [`Scope::encode`] gives room `room` of `namespace`,
/// without allocating.
#[inline]
pub(crate) fn push_room_id(buf: &mut String, namespace: &str, room: &str) {
    buf.push('r');
    push_decimal(buf, namespace.len());
    buf.push(':');
    buf.push_str(namespace);
    buf.push_str(room);
}

/// Appends `n` in decimal, as `format!("{n}")` writes it, without the
/// formatting machinery (a join builds a room id with it).
#[inline]
pub(crate) fn push_decimal(buf: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

/// Splits `"<decimal>:<rest>"` into the number and the rest.
pub(crate) fn split_len(s: &str) -> Option<(usize, &str)> {
    let colon = s.find(':')?;
    let digits = &s[..colon];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
        return None;
    }
    Some((digits.parse().ok()?, &s[colon + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip_even_with_separators_in_names() {
        let scopes = [
            Scope::Global,
            Scope::namespace("/"),
            Scope::namespace("/a:b"),
            Scope::room("/", "news"),
            Scope::room("/x:1", ":2{}"),
            Scope::room("/é", "ü"),
        ];
        for scope in scopes {
            assert_eq!(
                Scope::decode(&scope.encode()),
                Some(scope.clone()),
                "{scope:?}"
            );
        }
    }

    #[test]
    fn rooms_that_split_differently_get_different_ids() {
        assert_ne!(
            Scope::room("/a", "b/c").encode(),
            Scope::room("/a/b", "/c").encode()
        );
        assert_ne!(
            Scope::room("/a:", "b").encode(),
            Scope::room("/a", ":b").encode()
        );
    }

    #[test]
    fn decimals_are_written_as_format_writes_them() {
        for n in [0, 7, 9, 10, 99, 100, 12_345, usize::MAX] {
            let mut buf = String::from("x");
            push_decimal(&mut buf, n);
            assert_eq!(buf, format!("x{n}"));
        }
    }

    #[test]
    fn garbage_does_not_decode() {
        for bad in ["", "x", "gx", "n", "r", "r3:ab", "r:ab", "r1x:ab", "r2:ab"] {
            assert_eq!(Scope::decode(bad), None, "{bad}");
        }
    }
}
