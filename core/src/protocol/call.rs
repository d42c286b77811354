//! One script call, typed: the arguments of any script.

use crate::op::{Op, Token};
use crate::protocol::args::{
    Apply, ArgError, Args, Heartbeat, Read, Reap, Reassert, Register, Retire,
};
use crate::schema::Schema;
use crate::scripts::Script;

/// The arguments of one call of any script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// See [`Register`].
    Register(Register),
    /// See [`Apply`].
    Apply(Apply),
    /// See [`Reassert`].
    Reassert(Reassert),
    /// See [`Heartbeat`].
    Heartbeat(Heartbeat),
    /// See [`Retire`].
    Retire(Retire),
    /// See [`Reap`].
    Reap(Reap),
    /// See [`Read`].
    Read(Read),
}

impl Call {
    /// The script called.
    pub fn script(&self) -> Script {
        match self {
            Call::Register(_) => Register::SCRIPT,
            Call::Apply(_) => Apply::SCRIPT,
            Call::Reassert(_) => Reassert::SCRIPT,
            Call::Heartbeat(_) => Heartbeat::SCRIPT,
            Call::Retire(_) => Retire::SCRIPT,
            Call::Reap(_) => Reap::SCRIPT,
            Call::Read(_) => Read::SCRIPT,
        }
    }

    /// ARGV, as sent.
    pub fn encode(&self) -> Vec<String> {
        match self {
            Call::Register(a) => a.encode(),
            Call::Apply(a) => a.encode(),
            Call::Reassert(a) => a.encode(),
            Call::Heartbeat(a) => a.encode(),
            Call::Retire(a) => a.encode(),
            Call::Reap(a) => a.encode(),
            Call::Read(a) => a.encode(),
        }
    }

    /// The arguments of a call of `script` with `argv`.
    pub fn decode(script: Script, argv: &[String]) -> Result<Call, ArgError> {
        Ok(match script {
            Script::Register => Call::Register(Register::decode(argv)?),
            Script::Apply => Call::Apply(Apply::decode(argv)?),
            Script::Reassert => Call::Reassert(Reassert::decode(argv)?),
            Script::Heartbeat => Call::Heartbeat(Heartbeat::decode(argv)?),
            Script::Retire => Call::Retire(Retire::decode(argv)?),
            Script::Reap => Call::Reap(Reap::decode(argv)?),
            Script::Read => Call::Read(Read::decode(argv)?),
        })
    }

    /// The call as an [`Op`] of the keys of `schema` (`KEYS[1]` is always
    /// [`Schema::live`]; the scripts derive the other keys from it).
    pub fn op(&self, token: Token, schema: &Schema) -> Op {
        Op {
            token,
            script: self.script(),
            keys: vec![schema.live()],
            args: self.encode(),
        }
    }

    /// The caller's incarnation and the call id, for a call that carries one
    /// (apply, reassert, heartbeat, reap): the store keeps its reply.
    pub fn call_id(&self) -> Option<(&str, &str)> {
        match self {
            Call::Apply(a) => Some((&a.incarnation, &a.call_id)),
            Call::Reassert(a) => Some((&a.incarnation, &a.call_id)),
            Call::Heartbeat(a) => Some((&a.incarnation, &a.call_id)),
            Call::Reap(a) => Some((&a.incarnation, &a.call_id)),
            Call::Register(_) | Call::Retire(_) | Call::Read(_) => None,
        }
    }
}
