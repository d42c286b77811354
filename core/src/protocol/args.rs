//! The arguments (ARGV) of each script, one struct per script, its fields
//! in ARGV order: the tracker builds them and [`Args::encode`]s them, the
//! model [`Args::decode`]s them. The Lua side of each layout is the comment
//! that opens its `lua/*.lua`.
//!
//! Decoding is as lenient as the Lua: where a script compares an argument
//! as text, any text is accepted and one that the encoder cannot make
//! simply matches nothing; where a script computes with it, it must be an
//! integer.

use std::fmt;

use crate::event::OfflineReason;
use crate::protocol::{Lane, Mark};
use crate::schema::is_data_field;
use crate::scripts::Script;

/// An argument list a script cannot run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    /// The script called.
    pub script: Script,
    /// What is wrong, naming the argument (`ARGV[n]`, 1-based as in Lua).
    pub message: String,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rollcall: {}", self.message)
    }
}

impl std::error::Error for ArgError {}

/// The arguments of one script.
pub trait Args: Sized {
    /// The script these are the arguments of.
    const SCRIPT: Script;
    /// ARGV, as sent.
    fn encode(&self) -> Vec<String>;
    /// Inverse of [`Args::encode`], for the model.
    fn decode(argv: &[String]) -> Result<Self, ArgError>;
}

/// Reads an ARGV list for one script, naming the argument in its errors.
struct Argv<'a> {
    script: Script,
    argv: &'a [String],
}

impl<'a> Argv<'a> {
    #[inline(never)]
    fn fail(&self, message: String) -> ArgError {
        ArgError {
            script: self.script,
            message,
        }
    }

    // Not inlined: the decoders call these often, and the shipped .wasm
    // is kept small.
    #[inline(never)]
    fn text(&self, i: usize, what: &str) -> Result<&'a str, ArgError> {
        self.argv
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| self.fail(format!("ARGV[{}] ({what}) is missing", i + 1)))
    }

    /// A number the script computes with (`tonumber`): a non-negative
    /// integer that fits the scripts' arithmetic (an `i64`).
    #[inline(never)]
    fn number(&self, i: usize, what: &str) -> Result<u64, ArgError> {
        self.argv
            .get(i)
            .and_then(|a| a.parse::<i64>().ok())
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| {
                self.fail(format!(
                    "ARGV[{}] ({what}) must be a non-negative integer",
                    i + 1
                ))
            })
    }

    /// The (field, integer) pairs from argument `from` on.
    #[inline(never)]
    /// The (field, number) pairs from `from`, and apart from them the
    /// (data field, JSON) pairs ([`is_data_field`]), each in order.
    fn pairs_and_data(&self, from: usize) -> Result<(Pairs, Vec<(String, String)>), ArgError> {
        let rest = self.argv.get(from..).unwrap_or_default();
        if rest.len() % 2 != 0 {
            return Err(self.fail("field/value arguments must come in pairs".into()));
        }
        let mut data = Vec::new();
        let mut numbers = Vec::new();
        for (n, pair) in rest.chunks(2).enumerate() {
            if is_data_field(&pair[0]) {
                data.push((pair[0].clone(), pair[1].clone()));
            } else {
                numbers.push(n);
            }
        }
        let pairs = numbers
            .into_iter()
            .map(|n| {
                let pair = &rest[2 * n..2 * n + 2];
                let v = pair[1].parse().map_err(|_| {
                    self.fail(format!("ARGV[{}] must be an integer", from + 2 * n + 2))
                })?;
                Ok((pair[0].clone(), v))
            })
            .collect::<Result<Pairs, ArgError>>()?;
        Ok((pairs, data))
    }
}

type Pairs = Vec<(String, i64)>;

/// A version compared as text by the scripts: `None` (sent as `""`)
/// matches none, nor does a text that is no version number.
fn version_text(version: Option<u64>) -> String {
    version.map(|v| v.to_string()).unwrap_or_default()
}

/// A number the scripts compare as text with a stored one: only the
/// canonical decimal of a number can match (inverse of `to_string`).
fn canonical(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().filter(|v| v.to_string() == text)
}

/// Appends (field, number) pairs.
fn push_pairs(out: &mut Vec<String>, pairs: &[(String, i64)]) {
    for (field, n) in pairs {
        out.push(field.clone());
        out.push(n.to_string());
    }
}

fn push_data(out: &mut Vec<String>, data: &[(String, String)]) {
    for (field, json) in data {
        out.push(field.clone());
        out.push(json.clone());
    }
}

/// What a call that makes transitions records beside them (see
/// `publish` in `lua/prelude.lua`): the change feed's length cap and how
/// long a user's last seen is kept. Two arguments, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    /// The feed keeps about this many changes; 0 appends none.
    pub max_len: u64,
    /// A last-seen stamp older than this goes (ms); the feed and the stamps
    /// expire after this long without a change.
    pub seen_ms: u64,
}

impl Feed {
    fn push(&self, out: &mut Vec<String>) {
        out.push(self.max_len.to_string());
        out.push(self.seen_ms.to_string());
    }

    fn read(a: &Argv<'_>, at: usize) -> Result<Feed, ArgError> {
        Ok(Feed {
            max_len: a.number(at, "feed_max")?,
            seen_ms: a.number(at + 1, "seen_ms")?,
        })
    }
}

/// `register`: a new incarnation of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// Longest expected gap between two calls of a node (its heartbeat).
    pub stall_ms: u64,
    /// The node id.
    pub node: String,
    /// Lease length.
    pub ttl_ms: u64,
    /// The registration number proposed (the store may grant a larger one).
    pub k: u64,
    /// Fence the node id's previous incarnation (a first registration or a
    /// rotation); `false` after FENCED.
    pub replace: bool,
    /// A rotation: the k of the incarnation that stays live meanwhile.
    pub keep: Option<u64>,
}

impl Args for Register {
    const SCRIPT: Script = Script::Register;

    fn encode(&self) -> Vec<String> {
        let mut out = vec![
            self.stall_ms.to_string(),
            self.node.clone(),
            self.ttl_ms.to_string(),
            self.k.to_string(),
            if self.replace { "1" } else { "0" }.to_owned(),
        ];
        out.extend(self.keep.map(|k| k.to_string()));
        out
    }

    fn decode(argv: &[String]) -> Result<Register, ArgError> {
        let a = Argv {
            script: Self::SCRIPT,
            argv,
        };
        Ok(Register {
            stall_ms: a.number(0, "stall_ms")?,
            node: a.text(1, "node")?.to_owned(),
            ttl_ms: a.number(2, "ttl_ms")?,
            k: a.number(3, "k")?,
            replace: argv.get(4).is_some_and(|r| r == "1"),
            // Compared as text with the previous k: no number, no match.
            keep: argv.get(5).and_then(|k| canonical(k)),
        })
    }
}

/// `apply`: deltas to an incarnation's share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    /// See [`Register::stall_ms`].
    pub stall_ms: u64,
    /// The incarnation written.
    pub incarnation: String,
    /// Lease length (the call renews it).
    pub ttl_ms: u64,
    /// The node's count of its acknowledged writes; `None` matches none.
    pub version: Option<u64>,
    /// Names the call for a retry (the lane's kept reply).
    pub call_id: String,
    /// The feed and last seen of its transitions.
    pub feed: Feed,
    /// (field, delta) pairs.
    pub deltas: Vec<(String, i64)>,
    /// (data field, JSON) pairs after them: a socket's data set, or
    /// removed with `""`.
    pub data: Vec<(String, String)>,
}

impl Args for Apply {
    const SCRIPT: Script = Script::Apply;

    fn encode(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(7 + 2 * (self.deltas.len() + self.data.len()));
        out.extend([
            self.stall_ms.to_string(),
            self.incarnation.clone(),
            self.ttl_ms.to_string(),
            version_text(self.version),
            self.call_id.clone(),
        ]);
        self.feed.push(&mut out);
        push_pairs(&mut out, &self.deltas);
        push_data(&mut out, &self.data);
        out
    }

    fn decode(argv: &[String]) -> Result<Apply, ArgError> {
        let a = Argv {
            script: Self::SCRIPT,
            argv,
        };
        let (deltas, data) = a.pairs_and_data(7)?;
        Ok(Apply {
            stall_ms: a.number(0, "stall_ms")?,
            incarnation: a.text(1, "incarnation")?.to_owned(),
            ttl_ms: a.number(2, "ttl_ms")?,
            version: canonical(a.text(3, "version")?),
            call_id: a.text(4, "call id")?.to_owned(),
            feed: Feed::read(&a, 5)?,
            deltas,
            data,
        })
    }
}

/// `reassert`: an incarnation's whole share, to be set exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassert {
    /// See [`Register::stall_ms`].
    pub stall_ms: u64,
    /// The incarnation written.
    pub incarnation: String,
    /// Lease length (the call renews it).
    pub ttl_ms: u64,
    /// The version the incarnation has after this call.
    pub version: u64,
    /// See [`Apply::call_id`].
    pub call_id: String,
    /// A larger share in the store is not walked: the reply is `ROTATE`.
    pub max_write_fields: u64,
    /// The feed and last seen of its transitions.
    pub feed: Feed,
    /// (field, count) pairs: the node's whole local truth.
    pub counts: Vec<(String, i64)>,
    /// (data field, JSON) pairs after them: every socket's data.
    pub data: Vec<(String, String)>,
}

impl Args for Reassert {
    const SCRIPT: Script = Script::Reassert;

    fn encode(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(8 + 2 * (self.counts.len() + self.data.len()));
        out.extend([
            self.stall_ms.to_string(),
            self.incarnation.clone(),
            self.ttl_ms.to_string(),
            self.version.to_string(),
            self.call_id.clone(),
            self.max_write_fields.to_string(),
        ]);
        self.feed.push(&mut out);
        push_pairs(&mut out, &self.counts);
        push_data(&mut out, &self.data);
        out
    }

    fn decode(argv: &[String]) -> Result<Reassert, ArgError> {
        let a = Argv {
            script: Self::SCRIPT,
            argv,
        };
        let (counts, data) = a.pairs_and_data(8)?;
        Ok(Reassert {
            stall_ms: a.number(0, "stall_ms")?,
            incarnation: a.text(1, "incarnation")?.to_owned(),
            ttl_ms: a.number(2, "ttl_ms")?,
            version: a.number(3, "version")?,
            call_id: a.text(4, "call id")?.to_owned(),
            max_write_fields: a.number(5, "max_write_fields")?,
            feed: Feed::read(&a, 6)?,
            counts,
            data,
        })
    }
}

/// `heartbeat`: renews a lease and checks the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// See [`Register::stall_ms`].
    pub stall_ms: u64,
    /// The incarnation renewed.
    pub incarnation: String,
    /// Lease length.
    pub ttl_ms: u64,
    /// See [`Apply::version`]; `None` renews and replies `DRIFT` (or
    /// `FENCED`), as for the incarnation a rotation keeps.
    pub version: Option<u64>,
    /// See [`Apply::call_id`].
    pub call_id: String,
}

impl Args for Heartbeat {
    const SCRIPT: Script = Script::Heartbeat;

    fn encode(&self) -> Vec<String> {
        vec![
            self.stall_ms.to_string(),
            self.incarnation.clone(),
            self.ttl_ms.to_string(),
            version_text(self.version),
            self.call_id.clone(),
        ]
    }

    fn decode(argv: &[String]) -> Result<Heartbeat, ArgError> {
        let a = Argv {
            script: Self::SCRIPT,
            argv,
        };
        Ok(Heartbeat {
            stall_ms: a.number(0, "stall_ms")?,
            incarnation: a.text(1, "incarnation")?.to_owned(),
            ttl_ms: a.number(2, "ttl_ms")?,
            version: canonical(a.text(3, "version")?),
            call_id: a.text(4, "call id")?.to_owned(),
        })
    }
}

/// `retire`: an incarnation stops being live and waits for its reap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retire {
    /// See [`Register::stall_ms`].
    pub stall_ms: u64,
    /// The incarnation retired.
    pub incarnation: String,
}

impl Args for Retire {
    const SCRIPT: Script = Script::Retire;

    fn encode(&self) -> Vec<String> {
        vec![self.stall_ms.to_string(), self.incarnation.clone()]
    }

    fn decode(argv: &[String]) -> Result<Retire, ArgError> {
        let a = Argv {
            script: Self::SCRIPT,
            argv,
        };
        Ok(Retire {
            stall_ms: a.number(0, "stall_ms")?,
            incarnation: a.text(1, "incarnation")?.to_owned(),
        })
    }
}

/// `reap`: one bounded slice of a dead incarnation's share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reap {
    /// See [`Register::stall_ms`].
    pub stall_ms: u64,
    /// The caller's incarnation (its lane keeps the reply).
    pub incarnation: String,
    /// At most this many fields per call.
    pub slice: u64,
    /// `None` (sent as `""`): any dead or expired incarnation, on the
    /// [`Lane::Reap`]; else that retired one, on the [`Lane::Write`].
    pub target: Option<String>,
    /// See [`Apply::call_id`].
    pub call_id: String,
    /// The lane whose reply is kept.
    pub lane: Lane,
    /// The reason the caller gives for the users it takes offline.
    pub down: OfflineReason,
    /// The feed and last seen of its transitions.
    pub feed: Feed,
}

impl Args for Reap {
    const SCRIPT: Script = Script::Reap;

    fn encode(&self) -> Vec<String> {
        let mut out = vec![
            self.stall_ms.to_string(),
            self.incarnation.clone(),
            self.slice.to_string(),
            self.target.clone().unwrap_or_default(),
            self.call_id.clone(),
            self.lane.as_str().to_owned(),
            Mark::Offline(self.down).as_str().to_owned(),
        ];
        self.feed.push(&mut out);
        out
    }

    fn decode(argv: &[String]) -> Result<Reap, ArgError> {
        let a = Argv {
            script: Self::SCRIPT,
            argv,
        };
        let target = a.text(3, "target")?;
        let lane = a.text(5, "lane")?;
        let down = a.text(6, "offline mark")?;
        Ok(Reap {
            stall_ms: a.number(0, "stall_ms")?,
            incarnation: a.text(1, "incarnation")?.to_owned(),
            slice: a.number(2, "slice")?,
            target: (!target.is_empty()).then(|| target.to_owned()),
            call_id: a.text(4, "call id")?.to_owned(),
            lane: Lane::parse(lane)
                .ok_or_else(|| a.fail(format!("ARGV[6] (lane) must be w or r, got {lane:?}")))?,
            down: match Mark::parse(down) {
                Some(Mark::Offline(reason)) => reason,
                _ => {
                    return Err(a.fail(format!(
                        "ARGV[7] (offline mark) must be d, r or s, got {down:?}"
                    )));
                }
            },
            feed: Feed::read(&a, 7)?,
        })
    }
}

/// `read`: one count or list (see [`crate::Query`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Low-level clients.
    Clients,
    /// Sockets in the scope of this encoded id.
    Sockets {
        /// [`crate::Scope::encode`]d.
        scope_id: String,
    },
    /// Distinct users in the scope.
    Users {
        /// [`crate::Scope::encode`]d.
        scope_id: String,
    },
    /// A page of the scope's users in id order: up to `limit` after
    /// `after` (empty: from the first), each with its sockets and since.
    Members {
        /// [`crate::Scope::encode`]d.
        scope_id: String,
        /// The last user of the page before (a cursor), or empty.
        after: String,
        /// At most this many users.
        limit: u32,
    },
    /// The scopes one user is in, with since when.
    Scopes {
        /// The user.
        user: String,
    },
    /// One user's sockets, over all namespaces.
    User {
        /// The user.
        user: String,
    },
    /// One offline user's last seen, if younger than `keep_ms`.
    Seen {
        /// The user.
        user: String,
        /// How old a stamp may be.
        keep_ms: u64,
    },
}

impl Args for Read {
    const SCRIPT: Script = Script::Read;

    fn encode(&self) -> Vec<String> {
        let (what, arg) = match self {
            Read::Clients => ("clients", ""),
            Read::Sockets { scope_id } => ("sockets", scope_id.as_str()),
            Read::Users { scope_id } => ("users", scope_id.as_str()),
            Read::Members {
                scope_id,
                after,
                limit,
            } => {
                return vec![
                    "members".to_owned(),
                    scope_id.clone(),
                    after.clone(),
                    limit.to_string(),
                ];
            }
            Read::Scopes { user } => ("scopes", user.as_str()),
            Read::User { user } => ("user", user.as_str()),
            Read::Seen { user, keep_ms } => {
                return vec!["seen".to_owned(), user.clone(), keep_ms.to_string()];
            }
        };
        vec![what.to_owned(), arg.to_owned()]
    }

    /// A missing argument is empty, as in the Lua.
    fn decode(argv: &[String]) -> Result<Read, ArgError> {
        let what = argv.first().map(String::as_str).unwrap_or("");
        let arg = argv.get(1).cloned().unwrap_or_default();
        Ok(match what {
            "clients" => Read::Clients,
            "sockets" => Read::Sockets { scope_id: arg },
            "users" => Read::Users { scope_id: arg },
            "members" => {
                let argv = Argv {
                    script: Self::SCRIPT,
                    argv,
                };
                Read::Members {
                    scope_id: arg,
                    after: argv.text(2, "after")?.to_owned(),
                    limit: u32::try_from(argv.number(3, "limit")?)
                        .map_err(|_| argv.fail("ARGV[4] (limit) is out of range".to_owned()))?,
                }
            }
            "scopes" => Read::Scopes { user: arg },
            "user" => Read::User { user: arg },
            "seen" => Read::Seen {
                user: arg,
                keep_ms: Argv {
                    script: Self::SCRIPT,
                    argv,
                }
                .number(2, "keep_ms")?,
            },
            other => {
                return Err(ArgError {
                    script: Self::SCRIPT,
                    message: format!("unknown read {other}"),
                });
            }
        })
    }
}
