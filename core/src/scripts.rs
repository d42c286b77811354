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

macro_rules! with_prelude {
    ($file:literal) => {
        concat!(
            include_str!("lua/data_of.lua"),
            include_str!("lua/prelude.lua"),
            include_str!($file)
        )
    };
}

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
        match self {
            Script::Register => with_prelude!("lua/register.lua"),
            Script::Apply => with_prelude!("lua/apply.lua"),
            Script::Reassert => with_prelude!("lua/reassert.lua"),
            Script::Heartbeat => with_prelude!("lua/heartbeat.lua"),
            Script::Retire => with_prelude!("lua/retire.lua"),
            Script::Reap => with_prelude!("lua/reap.lua"),
            Script::Read => concat!(
                include_str!("lua/data_of.lua"),
                include_str!("lua/read.lua")
            ),
        }
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
    fn names_match_serde() {
        for s in Script::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
    }
}
