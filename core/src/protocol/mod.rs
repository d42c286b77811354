//! The protocol between the core and its Lua scripts, typed: what each
//! script is called with ([`Call`], one struct per script), what it replies
//! ([`ScriptReply`], with a [`Status`]), and the text of a kept reply.
//!
//! The Lua (`lua/*.lua`) is the other side of each layout; this module is
//! the only place the Rust side spells them. The tracker encodes calls and
//! parses replies; the model ([`crate::model`]) decodes calls and encodes
//! replies; the simulator parses replies the same way.

mod args;
mod call;
mod kept;
mod lane;
mod reply;
mod status;

pub use args::{Apply, ArgError, Args, Feed, Heartbeat, Read, Reap, Reassert, Register, Retire};
pub use call::Call;
pub use lane::Lane;
pub use reply::{
    Adopted, BadReply, Change, Mark, ScriptReply, Updated, UserEdge, change_base, change_id,
    unexpected_status,
};
pub use status::Status;

#[cfg(test)]
mod tests;
