//! The two lanes of a node's script calls.

use std::fmt;

use serde::Serialize;

/// A node sends one call at a time on each lane; each lane keeps the reply
/// of its last call with a call id (see [`crate::Schema::kept_reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Lane {
    /// The node's own writes: register, apply, reassert, heartbeat, retire,
    /// and the reaps of its own (retired) incarnations.
    #[serde(rename = "w")]
    Write,
    /// The reaps of other nodes' dead incarnations.
    #[serde(rename = "r")]
    Reap,
}

impl Lane {
    /// Both lanes.
    pub const ALL: [Lane; 2] = [Lane::Write, Lane::Reap];

    /// The lane as the scripts and keys spell it: `w` or `r`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Write => "w",
            Lane::Reap => "r",
        }
    }

    /// Inverse of [`Lane::as_str`].
    pub fn parse(text: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_round_trip_through_their_text() {
        for lane in Lane::ALL {
            assert_eq!(Lane::parse(lane.as_str()), Some(lane));
        }
        assert_eq!(Lane::parse("x"), None);
        assert_eq!(Lane::parse(""), None);
    }
}
