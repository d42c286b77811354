//! The statuses the write scripts reply with.

use std::fmt;

/// The first item of every script reply but `read`'s: what the call did.
/// Which statuses a script may reply is in its Lua text (`lua/*.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// The call did what it was asked (register: the detail is the k granted).
    Ok,
    /// The incarnation is not registered (any more): nothing was written.
    Fenced,
    /// The version the node sent is not the store's: a write was lost, the
    /// node must re-assert.
    Drift,
    /// reassert: the store holds more of the incarnation than one call may
    /// walk; the node moves to a new incarnation.
    Rotate,
    /// retire: the incarnation is neither live nor being reaped.
    Gone,
    /// reap: one slice of the target (the detail) is reaped, more is left.
    Slice,
    /// reap: the target (the detail) is reaped completely.
    Done,
    /// reap: nothing to reap now.
    Idle,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 8] = [
        Status::Ok,
        Status::Fenced,
        Status::Drift,
        Status::Rotate,
        Status::Gone,
        Status::Slice,
        Status::Done,
        Status::Idle,
    ];

    /// The status as the scripts spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Fenced => "FENCED",
            Status::Drift => "DRIFT",
            Status::Rotate => "ROTATE",
            Status::Gone => "GONE",
            Status::Slice => "SLICE",
            Status::Done => "DONE",
            Status::Idle => "IDLE",
        }
    }

    /// Inverse of [`Status::as_str`]; `None` for a text no script replies.
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_text() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        let mut texts: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), Status::ALL.len());
    }

    #[test]
    fn texts_no_script_replies_are_not_statuses() {
        for text in ["", "ok", "Ok", " OK", "OK ", "FENCE", "SLICED"] {
            assert_eq!(Status::parse(text), None, "{text:?}");
        }
    }
}
