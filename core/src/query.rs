//! Reads of cluster-wide presence: each is one `read` script call of
//! bounded work (a member list comes in pages). Pure: build the call, run
//! it, parse the reply.

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
    /// A page of the users of a scope, in the order of their bytes: up to
    /// `limit` (1 to [`MAX_PAGE`]) after the cursor `after` (`None`: from
    /// the first). With no change in between, the pages hold every member
    /// exactly once; a member there from the first page to the last is in
    /// one of them whatever else changes.
    Members {
        /// Where.
        scope: Scope,
        /// The cursor of the page before ([`MemberPage::cursor`]).
        after: Option<String>,
        /// At most this many members (clamped to 1..=[`MAX_PAGE`]).
        limit: u32,
    },
    /// The namespaces and rooms a user is in, with since when.
    UserScopes {
        /// Whose.
        user: String,
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

/// The most members one page holds.
pub const MAX_PAGE: u32 = 1_000;

/// The members a page holds by default.
pub const DEFAULT_PAGE: u32 = 100;

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// A count (clients, sockets, users).
    Count(u64),
    /// A page of members.
    Members(MemberPage),
    /// Where a user is.
    Places(Vec<Place>),
    /// A time (ms, Redis clock), or none.
    Time(Option<u64>),
}

/// One page of [`Query::Members`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberPage {
    /// The members, in the order of their user ids' bytes.
    pub members: Vec<Member>,
    /// The cursor of the next page; `None`: this page is the last.
    pub cursor: Option<String>,
}

/// A user present in a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The user.
    pub user: String,
    /// Their sockets in the scope, over every node.
    pub sockets: u64,
    /// When they came online in the scope (ms, Redis clock).
    pub since: u64,
    /// Their data: one JSON object text per socket with data, over every
    /// node and every scope, in a stable order.
    pub data: Vec<String>,
}

/// A namespace or room a user is in ([`Query::UserScopes`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Place {
    /// The namespace or room (never [`Scope::Global`]).
    pub scope: Scope,
    /// When the user came online there (ms, Redis clock).
    pub since: u64,
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
            Query::Members {
                scope,
                after,
                limit,
            } => Read::Members {
                scope_id: scope.encode(),
                after: after.clone().unwrap_or_default(),
                limit: (*limit).clamp(1, MAX_PAGE),
            },
            Query::UserScopes { user } => Read::Scopes { user: user.clone() },
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
            (Query::Members { .. }, Reply::Array(items)) => parse_members(items),
            (Query::UserScopes { .. }, Reply::Array(items)) => parse_places(items),
            (Query::Members { .. } | Query::UserScopes { .. }, other) => {
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

fn text(r: &Reply, what: &str) -> Result<String, BadAnswer> {
    r.as_str()
        .map(str::to_owned)
        .ok_or_else(|| BadAnswer(format!("{what} that is not a string: {r:?}")))
}

fn number(r: &Reply, what: &str) -> Result<u64, BadAnswer> {
    match r {
        Reply::Int(n) if *n >= 0 => Ok(*n as u64),
        other => Err(BadAnswer(format!("{what} that is not a count: {other:?}"))),
    }
}

/// `{more, (user, sockets, since, n, json * n)...}` (read.lua).
fn parse_members(items: &[Reply]) -> Result<Answer, BadAnswer> {
    let (more, mut rest) = items
        .split_first()
        .ok_or_else(|| BadAnswer("an empty member page".to_owned()))?;
    let more = number(more, "a page flag")? == 1;
    let mut members = Vec::new();
    while !rest.is_empty() {
        let [user, sockets, since, n, tail @ ..] = rest else {
            return Err(BadAnswer(format!(
                "a member page ends in {} items, not a member",
                rest.len()
            )));
        };
        let n = usize::try_from(number(n, "a data count")?).unwrap_or(usize::MAX);
        if n > tail.len() {
            return Err(BadAnswer(format!(
                "a data count of {n} past the page's end"
            )));
        }
        members.push(Member {
            user: text(user, "a user")?,
            sockets: number(sockets, "a socket count")?,
            since: number(since, "a since")?,
            data: tail[..n]
                .iter()
                .map(|d| text(d, "data"))
                .collect::<Result<_, _>>()?,
        });
        rest = &tail[n..];
    }
    let cursor = match (more, members.last()) {
        (true, Some(last)) => Some(last.user.clone()),
        (true, None) => return Err(BadAnswer("an empty page that says more".to_owned())),
        (false, _) => None,
    };
    Ok(Answer::Members(MemberPage { members, cursor }))
}

/// `{scope id, since, ...}` (read.lua), sorted, without the global scope.
fn parse_places(items: &[Reply]) -> Result<Answer, BadAnswer> {
    if !items.len().is_multiple_of(2) {
        return Err(BadAnswer(format!("{} items, not pairs", items.len())));
    }
    let mut places = Vec::with_capacity(items.len() / 2);
    for pair in items.chunks(2) {
        let id = text(&pair[0], "a scope")?;
        let scope = Scope::decode(&id).ok_or_else(|| BadAnswer(format!("no scope id: {id:?}")))?;
        let since = number(&pair[1], "a since")?;
        if scope != Scope::Global {
            places.push(Place { scope, since });
        }
    }
    places.sort();
    Ok(Answer::Places(places))
}
