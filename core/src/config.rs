//! Options of a tracker, with defaults and validation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::op::Millis;
use crate::schema::MAX_PREFIX_LEN;

/// Options shared by every node of one application (same prefix, same
/// timings). Unknown fields in serialized form are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Names this application's keys: `{prefix}:...`. No `{` or `}`.
    pub prefix: String,
    /// How long a node's lease lasts without a write or heartbeat.
    pub ttl_ms: Millis,
    /// How often an idle node renews its lease. At most `ttl_ms / 3`: after
    /// a Redis stall the leases move forward by the stall minus one
    /// heartbeat, so a lease needs a heartbeat of margin beyond the renewal
    /// it waits for.
    pub heartbeat_ms: Millis,
    /// How often a node looks for dead nodes to reap.
    pub reap_ms: Millis,
    /// How long a user's last socket on this node lingers after it
    /// disconnects; a reconnect within it causes no event and no write.
    pub grace_ms: Millis,
    /// Most fields a single reap call removes (bounds how long it blocks Redis).
    pub reap_slice: u32,
    /// Wait before retrying a failed call.
    pub retry_ms: Millis,
    /// Most (field, count) pairs a single write call carries (bounds how
    /// long an apply or a re-assert blocks Redis). A coalesced burst larger
    /// than this goes in several calls; a re-assert of a larger state moves
    /// the node to a new incarnation instead (see `Tracker`). Left out of a
    /// serialized config while it has its default, so traces recorded
    /// before it existed are unchanged.
    #[serde(skip_serializing_if = "is_default_max_write_fields")]
    pub max_write_fields: u32,
    /// About how many changes the cluster's change feed keeps (`{p}:feed`),
    /// for a watcher that resumes; 0 keeps none. Left out of a serialized
    /// config while it has its default, like `max_write_fields`.
    #[serde(skip_serializing_if = "is_default_changes_max_len")]
    pub changes_max_len: u32,
    /// How long a user's last seen is kept after they went offline (ms).
    /// Left out of a serialized config while it has its default.
    #[serde(skip_serializing_if = "is_default_last_seen_ms")]
    pub last_seen_ms: Millis,
    /// Largest data a socket may show, in bytes of its JSON text. Left out
    /// of a serialized config while it has its default.
    #[serde(skip_serializing_if = "is_default_max_data_bytes")]
    pub max_data_bytes: u32,
}

/// Default of [`Config::max_data_bytes`].
pub const DEFAULT_MAX_DATA_BYTES: u32 = 1024;

/// Largest [`Config::max_data_bytes`] (a Redis value per socket should
/// stay small: every member page carries it).
pub const MAX_DATA_BYTES: u32 = 1 << 20;

fn is_default_max_data_bytes(n: &u32) -> bool {
    *n == DEFAULT_MAX_DATA_BYTES
}

/// Default of [`Config::changes_max_len`].
pub const DEFAULT_CHANGES_MAX_LEN: u32 = 100_000;

/// Default of [`Config::last_seen_ms`]: seven days.
pub const DEFAULT_LAST_SEEN_MS: Millis = 7 * 86_400_000;

/// Longest [`Config::last_seen_ms`]: a year.
pub const MAX_LAST_SEEN_MS: Millis = 366 * 86_400_000;

fn is_default_changes_max_len(n: &u32) -> bool {
    *n == DEFAULT_CHANGES_MAX_LEN
}

fn is_default_last_seen_ms(n: &Millis) -> bool {
    *n == DEFAULT_LAST_SEEN_MS
}

/// Default of [`Config::max_write_fields`].
pub const DEFAULT_MAX_WRITE_FIELDS: u32 = 2_000;

fn is_default_max_write_fields(n: &u32) -> bool {
    *n == DEFAULT_MAX_WRITE_FIELDS
}

impl Default for Config {
    fn default() -> Config {
        Config {
            prefix: "rollcall".to_owned(),
            ttl_ms: 10_000,
            heartbeat_ms: 3_000,
            reap_ms: 5_000,
            grace_ms: 0,
            reap_slice: 1_000,
            retry_ms: 1_000,
            max_write_fields: DEFAULT_MAX_WRITE_FIELDS,
            changes_max_len: DEFAULT_CHANGES_MAX_LEN,
            last_seen_ms: DEFAULT_LAST_SEEN_MS,
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
        }
    }
}

/// An invalid option: which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The option's name, as in [`Config`].
    pub option: &'static str,
    /// `true` when the value is out of range (a JS `RangeError`), `false`
    /// when it is malformed (a `TypeError`).
    pub out_of_range: bool,
    /// What is wrong with it, for a person.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.option, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Longest timing accepted (one day): catches seconds passed as milliseconds
/// the other way round, and keeps every sum far from overflow.
pub const MAX_MS: Millis = 86_400_000;

impl Config {
    /// Checks every option and the rules between them (the TTL at least
    /// three heartbeats, limits, ids): the first one broken, named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |option, out_of_range, message: String| {
            Err(ConfigError {
                option,
                out_of_range,
                message,
            })
        };
        let p = &self.prefix;
        if p.is_empty() || p.len() > MAX_PREFIX_LEN {
            return bad(
                "prefix",
                true,
                format!("must be 1 to {MAX_PREFIX_LEN} bytes, got {}", p.len()),
            );
        }
        if p.contains(['{', '}']) {
            return bad(
                "prefix",
                false,
                format!("must not contain '{{' or '}}' (it becomes the hash tag), got {p:?}"),
            );
        }
        for (option, value, min) in [
            ("ttl_ms", self.ttl_ms, 2),
            ("heartbeat_ms", self.heartbeat_ms, 1),
            ("reap_ms", self.reap_ms, 1),
            ("grace_ms", self.grace_ms, 0),
            ("retry_ms", self.retry_ms, 1),
        ] {
            if value < min || value > MAX_MS {
                return bad(
                    option,
                    true,
                    format!("must be {min} to {MAX_MS} ms, got {value}"),
                );
            }
        }
        // Three heartbeats: the renewal a lease waits for, one late
        // heartbeat, and the one the stall rule takes off its shift.
        if self.ttl_ms < 3 * self.heartbeat_ms {
            return bad(
                "ttl_ms",
                true,
                format!(
                    "must be at least three times heartbeat_ms ({}), got {}: after a Redis stall a healthy node's lease would lapse with one late heartbeat",
                    self.heartbeat_ms, self.ttl_ms
                ),
            );
        }
        if !(1..=100_000).contains(&self.reap_slice) {
            return bad(
                "reap_slice",
                true,
                format!("must be 1 to 100000, got {}", self.reap_slice),
            );
        }
        if !(1..=100_000).contains(&self.max_write_fields) {
            return bad(
                "max_write_fields",
                true,
                format!("must be 1 to 100000, got {}", self.max_write_fields),
            );
        }
        if self.changes_max_len > 10_000_000 {
            return bad(
                "changes_max_len",
                true,
                format!("must be 0 to 10000000, got {}", self.changes_max_len),
            );
        }
        if !(2..=MAX_DATA_BYTES).contains(&self.max_data_bytes) {
            return bad(
                "max_data_bytes",
                true,
                format!("must be 2 to {MAX_DATA_BYTES}, got {}", self.max_data_bytes),
            );
        }
        if !(1..=MAX_LAST_SEEN_MS).contains(&self.last_seen_ms) {
            return bad(
                "last_seen_ms",
                true,
                format!(
                    "must be 1 to {MAX_LAST_SEEN_MS} ms, got {}",
                    self.last_seen_ms
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_options_are_bounded_and_serialized_only_when_set() {
        for (c, option) in [
            (
                Config {
                    changes_max_len: 10_000_001,
                    ..Config::default()
                },
                "changes_max_len",
            ),
            (
                Config {
                    last_seen_ms: 0,
                    ..Config::default()
                },
                "last_seen_ms",
            ),
            (
                Config {
                    last_seen_ms: MAX_LAST_SEEN_MS + 1,
                    ..Config::default()
                },
                "last_seen_ms",
            ),
        ] {
            let e = c.validate().unwrap_err();
            assert_eq!(e.option, option);
            assert!(e.out_of_range);
        }
        let json = serde_json::to_string(&Config::default()).unwrap();
        assert!(
            !json.contains("changes_max_len") && !json.contains("last_seen_ms"),
            "{json}"
        );
        let c: Config =
            serde_json::from_str(r#"{"changes_max_len":0,"last_seen_ms":60000}"#).unwrap();
        assert_eq!((c.changes_max_len, c.last_seen_ms), (0, 60_000));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn ttl_must_cover_three_heartbeats() {
        let c = Config {
            ttl_ms: 8_999,
            ..Config::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.option, "ttl_ms");
        assert!(e.out_of_range);
        assert!(e.message.contains("three times"), "{}", e.message);
        let at_least = Config {
            ttl_ms: 9_000,
            ..Config::default()
        };
        assert_eq!(at_least.validate(), Ok(()));
    }

    #[test]
    fn prefix_cannot_hold_braces() {
        let c = Config {
            prefix: "a{b".into(),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().option, "prefix");
    }

    #[test]
    fn unknown_options_are_rejected_when_deserialized() {
        let e = serde_json::from_str::<Config>(r#"{"ttl":1}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let c: Config = serde_json::from_str(r#"{"grace_ms":250}"#).unwrap();
        assert_eq!(c.grace_ms, 250);
        assert_eq!(c.ttl_ms, 10_000);
    }

    #[test]
    fn max_write_fields_is_bounded_and_serialized_only_when_set() {
        for bad in [0, 100_001] {
            let c = Config {
                max_write_fields: bad,
                ..Config::default()
            };
            let e = c.validate().unwrap_err();
            assert_eq!(e.option, "max_write_fields");
            assert!(e.out_of_range);
        }
        let json = serde_json::to_string(&Config::default()).unwrap();
        assert!(!json.contains("max_write_fields"), "{json}");
        let c: Config = serde_json::from_str(&json).unwrap();
        assert_eq!(c.max_write_fields, DEFAULT_MAX_WRITE_FIELDS);
        let small = Config {
            max_write_fields: 3,
            ..Config::default()
        };
        let json = serde_json::to_string(&small).unwrap();
        assert!(json.contains("\"max_write_fields\":3"), "{json}");
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), small);
    }
}
