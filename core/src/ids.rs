//! Validation of the ids that reach Redis keys and fields.
//!
//! Ids are opaque UTF-8 strings. They never need escaping: every place an id
//! lands in a key or field is length-prefixed or last (see [`crate::schema`]),
//! so an id containing `:`, `{` or `}` cannot forge another key.

use std::fmt;

/// Longest id accepted, in bytes (socket, user, namespace, room, node).
pub const MAX_ID_LEN: usize = 256;

/// Which kind of id was rejected, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// A Socket.IO socket id (one per namespace connection).
    Socket,
    /// An engine-level connection id.
    Client,
    /// An application user id.
    User,
    /// A Socket.IO namespace, such as `/chat`.
    Namespace,
    /// A room of a namespace.
    Room,
    /// A server's node id.
    Node,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Socket => "socket id",
            IdKind::Client => "client id",
            IdKind::User => "user id",
            IdKind::Namespace => "namespace",
            IdKind::Room => "room",
            IdKind::Node => "node id",
        })
    }
}

/// Why an id was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    /// The id is the empty string.
    Empty(IdKind),
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    TooLong {
        /// Which id.
        kind: IdKind,
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty(kind) => write!(f, "{kind} is empty"),
            IdError::TooLong { kind, len } => {
                write!(f, "{kind} is {len} bytes long; the limit is {MAX_ID_LEN}")
            }
        }
    }
}

impl std::error::Error for IdError {}

/// Checks one id: non-empty and at most [`MAX_ID_LEN`] bytes.
pub fn check(kind: IdKind, id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        Err(IdError::Empty(kind))
    } else if id.len() > MAX_ID_LEN {
        Err(IdError::TooLong {
            kind,
            len: id.len(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_up_to_the_limit_and_rejects_beyond() {
        assert_eq!(check(IdKind::User, &"x".repeat(MAX_ID_LEN)), Ok(()));
        assert_eq!(
            check(IdKind::User, &"x".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong {
                kind: IdKind::User,
                len: MAX_ID_LEN + 1
            })
        );
        assert_eq!(check(IdKind::Room, ""), Err(IdError::Empty(IdKind::Room)));
    }

    #[test]
    fn separators_and_braces_are_plain_characters() {
        assert_eq!(check(IdKind::Room, "a:b{c}"), Ok(()));
    }
}
