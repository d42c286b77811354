//! Reads of cluster-wide presence: each is one `read` script call, O(1) but
//! for the list of users. Pure: build the call, run it, parse the reply.

use serde::{Deserialize, Serialize};

use crate::op::{Op, Reply, Token};
use crate::protocol::{Call, Read};
use crate::schema::Schema;
use crate::scope::Scope;

/// A question about the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Query {
    /// Low-level (engine) connections.
    Clients,
    /// Sockets in a scope.
    Sockets {
        /// Where.
        scope: Scope,
    },
    /// Distinct users in a scope.
    Users {
        /// Where.
        scope: Scope,
    },
    /// The users of a scope, sorted by their bytes.
    UserList {
        /// Where.
        scope: Scope,
    },
    /// How many sockets one user has, over all namespaces (0: offline).
    UserSockets {
        /// Whose.
        user: String,
    },
    /// When the user's last socket left (Redis clock, ms), for a user
    /// offline now whose stamp is younger than `keep_ms`.
    LastSeen {
        /// Whose.
        user: String,
        /// [`crate::Config::last_seen_ms`].
        keep_ms: u64,
    },
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// A count (clients, sockets, users).
    Count(u64),
    /// User ids, sorted.
    Users(Vec<String>),
    /// A time (ms, Redis clock), or none.
    Time(Option<u64>),
}

/// A reply that does not fit the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAnswer(pub String);

impl std::fmt::Display for BadAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unexpected reply to a rollcall read: {}", self.0)
    }
}

impl std::error::Error for BadAnswer {}

impl Query {
    /// The script call that answers this query. Reads need no token; the
    /// host may use any.
    pub fn op(&self, schema: &Schema, token: Token) -> Op {
        let read = match self {
            Query::Clients => Read::Clients,
            Query::Sockets { scope } => Read::Sockets {
                scope_id: scope.encode(),
            },
            Query::Users { scope } => Read::Users {
                scope_id: scope.encode(),
            },
            Query::UserList { scope } => Read::List {
                scope_id: scope.encode(),
            },
            Query::UserSockets { user } => Read::User { user: user.clone() },
            Query::LastSeen { user, keep_ms } => Read::Seen {
                user: user.clone(),
                keep_ms: *keep_ms,
            },
        };
        Call::Read(read).op(token, schema)
    }

    /// The answer in a reply to [`Query::op`].
    pub fn parse(&self, reply: &Reply) -> Result<Answer, BadAnswer> {
        match (self, reply) {
            (_, Reply::Error { error }) => Err(BadAnswer(format!("error: {error}"))),
            (Query::UserList { .. }, Reply::Array(items)) => {
                let mut users = items
                    .iter()
                    .map(|r| {
                        r.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| BadAnswer(format!("a user that is not a string: {r:?}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                users.sort();
                Ok(Answer::Users(users))
            }
            (Query::UserList { .. }, other) => {
                Err(BadAnswer(format!("expected an array, got {other:?}")))
            }
            (Query::LastSeen { .. }, Reply::Nil) => Ok(Answer::Time(None)),
            (Query::LastSeen { .. }, Reply::Int(n)) if *n >= 0 => Ok(Answer::Time(Some(*n as u64))),
            (Query::LastSeen { .. }, other) => {
                Err(BadAnswer(format!("expected a time or nil, got {other:?}")))
            }
            (_, Reply::Int(n)) if *n >= 0 => Ok(Answer::Count(*n as u64)),
            (_, other) => Err(BadAnswer(format!("expected a count, got {other:?}"))),
        }
    }
}
