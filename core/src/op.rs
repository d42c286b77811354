//! What the core asks a host to run, and what the host feeds back.

use serde::{Deserialize, Serialize};

use crate::scripts::Script;

/// Milliseconds. The host's clock for timers; the Redis clock for leases.
pub type Millis = u64;

/// Names one operation so that its reply finds its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(pub u64);

/// One script call for the host to run: `EVALSHA sha numkeys keys.. args..`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub token: Token,
    pub script: Script,
    pub keys: Vec<String>,
    pub args: Vec<String>,
}

/// A Redis reply, in the flat shapes our scripts return. Hosts map RESP2 and
/// RESP3 replies onto it; a failed call (connection lost, timeout, a script
/// error) is an [`Reply::Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Nil,
    Int(i64),
    Str(String),
    Array(Vec<Reply>),
    Error { error: String },
}

impl Reply {
    pub fn error(message: impl Into<String>) -> Reply {
        Reply::Error {
            error: message.into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Reply::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_have_a_compact_json_form() {
        let r = Reply::Array(vec![
            Reply::Str("OK".into()),
            Reply::Int(2),
            Reply::Nil,
            Reply::error("boom"),
        ]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"["OK",2,null,{"error":"boom"}]"#);
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), r);
    }
}
