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
    /// Answer the call with this token (`Input::Reply`).
    pub token: Token,
    /// Which script: `EVALSHA` its [`Script::sha1`].
    pub script: Script,
    /// `KEYS`: all of one hash slot.
    pub keys: Vec<String>,
    /// `ARGV`, as the script's typed arguments encode them.
    pub args: Vec<String>,
}

/// A Redis reply, in the flat shapes our scripts return. Hosts map RESP2 and
/// RESP3 replies onto it; a failed call (connection lost, timeout, a script
/// error) is an [`Reply::Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// Redis nil (a Lua `false`).
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk or simple string.
    Str(String),
    /// An array of these.
    Array(Vec<Reply>),
    /// The call failed, or its outcome is unknown.
    Error {
        /// What the store or the host said.
        error: String,
    },
}

impl Reply {
    /// A failed call with this message.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply::Error {
            error: message.into(),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Reply::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// Accepts exactly the shapes above, with errors that say which shape was
/// expected; a number that is integral is an integer even when it arrives as
/// a float (JavaScript numbers do).
impl<'de> Deserialize<'de> for Reply {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Reply, D::Error> {
        d.deserialize_any(ReplyVisitor)
    }
}

struct ReplyVisitor;

/// Largest integer a float carries exactly (2^53).
const EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

impl<'de> serde::de::Visitor<'de> for ReplyVisitor {
    type Value = Reply;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Redis reply: null, an integer, a string, an array of replies or {\"error\": \"...\"}")
    }

    fn visit_unit<E>(self) -> Result<Reply, E> {
        Ok(Reply::Nil)
    }

    fn visit_none<E>(self) -> Result<Reply, E> {
        Ok(Reply::Nil)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Reply, D::Error> {
        Reply::deserialize(d)
    }

    fn visit_i64<E>(self, v: i64) -> Result<Reply, E> {
        Ok(Reply::Int(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Reply, E> {
        i64::try_from(v)
            .map(Reply::Int)
            .map_err(|_| E::custom(format!("reply integer {v} is out of range")))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Reply, E> {
        if v.fract() == 0.0 && v.abs() <= EXACT_FLOAT_INT {
            Ok(Reply::Int(v as i64))
        } else {
            Err(E::custom(format!("reply number {v} is not an integer")))
        }
    }

    fn visit_str<E>(self, v: &str) -> Result<Reply, E> {
        Ok(Reply::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Reply, E> {
        Ok(Reply::Str(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Reply, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Reply::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Reply, A::Error> {
        use serde::de::Error;
        let mut error = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "error" || error.is_some() {
                return Err(A::Error::custom(format!(
                    "a reply object has exactly one field, \"error\"; found {key:?}"
                )));
            }
            error = Some(map.next_value::<String>()?);
        }
        error
            .map(|error| Reply::Error { error })
            .ok_or_else(|| A::Error::custom("a reply object needs an \"error\" field"))
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

    #[test]
    fn wrong_shapes_say_what_was_expected() {
        let e = serde_json::from_str::<Reply>("1.5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an integer"), "{e}");
        let e = serde_json::from_str::<Reply>("true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a Redis reply"), "{e}");
        let e = serde_json::from_str::<Reply>(r#"{"err":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"error\""), "{e}");
        assert_eq!(serde_json::from_str::<Reply>("3.0").unwrap(), Reply::Int(3));
    }
}
