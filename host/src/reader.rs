//! Cluster-wide reads: each is one `read` script call of bounded work on
//! the store (member lists come in pages). A [`Reader`] needs no tracker,
//! so a process that only watches (a dashboard, a test) does not register
//! a node.

use rollcall_core::{Answer, MAX_PAGE, MemberPage, Place, Query, Reply, Schema, Scope, Token};

use crate::error::Error;
use crate::store::Store;

/// Reads presence from a store under one prefix. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reader {
    store: Store,
    schema: Schema,
}

impl Reader {
    /// Reads the keys of `prefix` on `store`.
    pub fn new(store: Store, prefix: &str) -> Reader {
        Reader {
            store,
            schema: Schema::new(prefix),
        }
    }

    /// The store it reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key names of its prefix.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Asks one question.
    pub async fn query(&self, query: &Query) -> Result<Answer, Error> {
        let op = query.op(&self.schema, Token(0));
        let reply = match &self.store {
            Store::Memory(m) => m.run(std::slice::from_ref(&op)).remove(0),
            Store::Redis(r) => {
                let mut replies = tokio::time::timeout(
                    std::time::Duration::from_secs(30),
                    r.try_run(std::slice::from_ref(&op)),
                )
                .await
                .map_err(|_| Error::Timeout {
                    what: "a read".into(),
                    after: std::time::Duration::from_secs(30),
                })?
                .map_err(|e| crate::error::classify(&e, r.url()))?;
                replies.remove(0)
            }
        };
        if let Reply::Error { error } = &reply {
            return Err(if error.contains("NOPERM") || error.contains("script") {
                Error::ScriptRejected {
                    script: "read".into(),
                    message: error.clone(),
                }
            } else {
                Error::Store {
                    message: error.clone(),
                }
            });
        }
        Ok(query.parse(&reply)?)
    }

    async fn count(&self, query: Query) -> Result<u64, Error> {
        match self.query(&query).await? {
            Answer::Count(n) => Ok(n),
            other => Err(Error::Store {
                message: format!("expected a count, got {other:?}"),
            }),
        }
    }

    /// Low-level (engine) connections, cluster-wide.
    pub async fn clients_count(&self) -> Result<u64, Error> {
        self.count(Query::Clients).await
    }

    /// Sockets in a scope.
    pub async fn sockets_count(&self, scope: Scope) -> Result<u64, Error> {
        self.count(Query::Sockets { scope }).await
    }

    /// Distinct users in a scope.
    pub async fn users_count(&self, scope: Scope) -> Result<u64, Error> {
        self.count(Query::Users { scope }).await
    }

    /// The users of a scope, sorted, read in pages of [`MAX_PAGE`] (each
    /// its own bounded call, so a scope of a million users never blocks
    /// Redis).
    pub async fn users_list(&self, scope: Scope) -> Result<Vec<String>, Error> {
        let mut users = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .members(scope.clone(), MAX_PAGE, cursor.as_deref())
                .await?;
            users.extend(page.members.into_iter().map(|m| m.user));
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(users),
            }
        }
    }

    /// One page of the members of a scope in user-id order (each with its
    /// sockets there, since when, and the user's data): up to `limit`
    /// (1 to [`MAX_PAGE`]) after `cursor` (the [`MemberPage::cursor`] of the
    /// page before; `None`: the first page). With no change in between the
    /// pages hold every member exactly once (Node: `members`).
    pub async fn members(
        &self,
        scope: Scope,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<MemberPage, Error> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::BadArgument {
                name: "limit",
                message: format!("{limit} is not between 1 and {MAX_PAGE}"),
            });
        }
        if let Some(c) = cursor {
            rollcall_core::ids::check(rollcall_core::IdKind::User, c).map_err(|e| {
                Error::BadArgument {
                    name: "cursor",
                    message: format!("{c:?} is no cursor of a page ({e})"),
                }
            })?;
        }
        let query = Query::Members {
            scope,
            after: cursor.map(str::to_owned),
            limit,
        };
        match self.query(&query).await? {
            Answer::Members(page) => Ok(page),
            other => Err(Error::Store {
                message: format!("expected a page of members, got {other:?}"),
            }),
        }
    }

    /// The namespaces and rooms a user is in, with since when, sorted
    /// (Node: `userRooms`).
    pub async fn user_rooms(&self, user: &str) -> Result<Vec<Place>, Error> {
        let query = Query::UserScopes {
            user: user.to_owned(),
        };
        match self.query(&query).await? {
            Answer::Places(places) => Ok(places),
            other => Err(Error::Store {
                message: format!("expected places, got {other:?}"),
            }),
        }
    }

    /// How many sockets a user holds, over all namespaces (0: offline).
    pub async fn user_sockets_count(&self, user: &str) -> Result<u64, Error> {
        self.count(Query::UserSockets {
            user: user.to_owned(),
        })
        .await
    }

    /// When the user's last socket left (ms, Redis clock), for a user
    /// offline now whose stamp is younger than `keep_ms`; `None` when online
    /// or unknown.
    pub async fn last_seen(&self, user: &str, keep_ms: u64) -> Result<Option<u64>, Error> {
        match self
            .query(&Query::LastSeen {
                user: user.to_owned(),
                keep_ms,
            })
            .await?
        {
            Answer::Time(at) => Ok(at),
            other => Err(Error::Store {
                message: format!("expected a time, got {other:?}"),
            }),
        }
    }

    /// The cluster's changes from now on, or after change `from` (a
    /// [`rollcall_core::Change::id`]) while the feed still holds it.
    pub async fn watch(&self, from: Option<&str>) -> Result<crate::Watch, Error> {
        crate::Watch::start(&self.store, self.schema.clone(), from).await
    }

    /// Whether a user has at least one socket anywhere in the cluster.
    pub async fn is_user_connected(&self, user: &str) -> Result<bool, Error> {
        Ok(self.user_sockets_count(user).await? > 0)
    }
}
