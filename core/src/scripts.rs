//! The Lua scripts, as text. The core owns them so that every host (Node,
//! Rust) runs the very same scripts against the same keys.
//!
//! `KEYS[1]` is always [`crate::Schema::live`]; the scripts derive the other
//! keys from it. Each script's arguments are one struct of
//! [`crate::protocol`] ([`crate::protocol::Call`]), its fields in ARGV order;
//! every script but `read` replies a [`crate::protocol::ScriptReply`]. A
//! call with a call id keeps that reply (`o:<lane>:<incarnation>`) until the
//! lane's next call: the same call sent again after a lost reply gets the
//! kept reply and does not run twice.

use serde::{Deserialize, Serialize};

use std::sync::OnceLock;

/// Shared by every script that reads a user's data.
const DATA_OF: &str = include_str!("lua/data_of.lua");
/// Shared by every write script.
const PRELUDE: &str = include_str!("lua/prelude.lua");

/// One of rollcall's Lua scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Script {
    /// Registers a new incarnation of a node (fencing the one it replaces).
    Register,
    /// Applies one write of net deltas to the node's share and the counters.
    Apply,
    /// Makes the node's share in Redis what the node holds (after a drift).
    Reassert,
    /// Renews the lease and compares the write count.
    Heartbeat,
    /// Removes an incarnation a rotation left behind.
    Retire,
    /// Removes one slice of a dead incarnation's share.
    Reap,
    /// Answers a [`crate::Query`].
    Read,
}

impl Script {
    /// Every script, in a fixed order.
    pub const ALL: [Script; 7] = [
        Script::Register,
        Script::Apply,
        Script::Reassert,
        Script::Heartbeat,
        Script::Retire,
        Script::Reap,
        Script::Read,
    ];

    /// Its name, as in traces and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Script::Register => "register",
            Script::Apply => "apply",
            Script::Reassert => "reassert",
            Script::Heartbeat => "heartbeat",
            Script::Retire => "retire",
            Script::Reap => "reap",
            Script::Read => "read",
        }
    }

    /// Whether the call runs on the write lane (it writes this node's own
    /// share or lease): register, apply, reassert, heartbeat, retire.
    pub fn is_write(self) -> bool {
        !matches!(self, Script::Reap | Script::Read)
    }

    /// The Lua source, as sent with `EVAL` / `SCRIPT LOAD`.
    pub fn source(self) -> &'static str {
        // Joined once at run time: joined at compile time (`concat!`), each
        // script carried its own copy of the shared parts, and the shipped
        // .wasm held the prelude twelve times (185 KB).
        static SOURCES: OnceLock<[String; 7]> = OnceLock::new();
        let sources = SOURCES.get_or_init(|| Script::ALL.map(|s| s.parts().concat()));
        &sources[self as usize]
    }

    /// The texts that make up the source, in order.
    fn parts(self) -> [&'static str; 3] {
        let body = match self {
            Script::Register => include_str!("lua/register.lua"),
            Script::Apply => include_str!("lua/apply.lua"),
            Script::Reassert => include_str!("lua/reassert.lua"),
            Script::Heartbeat => include_str!("lua/heartbeat.lua"),
            Script::Retire => include_str!("lua/retire.lua"),
            Script::Reap => include_str!("lua/reap.lua"),
            Script::Read => include_str!("lua/read.lua"),
        };
        let prelude = if self == Script::Read { "" } else { PRELUDE };
        [DATA_OF, prelude, body]
    }

    /// The SHA1 of the source in lowercase hex, for `EVALSHA`. Computed on
    /// each call: hosts keep it.
    pub fn sha1(self) -> String {
        sha1_smol::Sha1::from(self.source()).digest().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_has_its_own_sha() {
        let mut shas: Vec<String> = Script::ALL.iter().map(|s| s.sha1()).collect();
        shas.sort();
        shas.dedup();
        assert_eq!(shas.len(), Script::ALL.len());
        assert!(shas.iter().all(|s| s.len() == 40));
    }

    #[test]
    fn every_script_is_indexed_by_its_place_in_all() {
        for (i, s) in Script::ALL.into_iter().enumerate() {
            assert_eq!(s as usize, i);
            assert!(s.source().ends_with(s.parts()[2]));
        }
    }

    #[test]
    fn names_match_serde() {
        for s in Script::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
    }
}
