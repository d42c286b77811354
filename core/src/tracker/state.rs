//! The state of a tracker's phase machine: its phase, the writes it sends
//! and the calls it has in flight.

use crate::local::{DataWrite, Key};
use crate::op::{Op, Token};
use crate::scripts::Script;

/// The one write this node has in flight.
#[derive(Debug)]
pub(super) enum Write {
    /// `keep`: a rotation away from this registration number, which stays
    /// live until the new incarnation holds the whole local truth.
    Register {
        keep: Option<u64>,
    },
    /// Counter deltas, then data writes.
    Apply(Vec<(Key, i64)>, Vec<DataWrite>),
    Reassert {
        snapshot: Vec<(Key, u32)>,
        data: Vec<DataWrite>,
        version: u64,
    },
    Heartbeat,
    Retire,
    SelfReap,
    /// Renew the lease of the earlier incarnation a rotation keeps (a
    /// heartbeat whose version never matches: it renews, then says DRIFT),
    /// so its users stay online however long the rotation takes.
    RenewOld(u64),
    /// Retire an earlier incarnation of this node, left by a rotation.
    RetireOld(u64),
    /// Reap a slice of an earlier incarnation of this node.
    ReapOld(u64),
}

impl Write {
    /// The script the write calls.
    pub(super) fn script(&self) -> Script {
        match self {
            Write::Register { .. } => Script::Register,
            Write::Apply(..) => Script::Apply,
            Write::Reassert { .. } => Script::Reassert,
            Write::Heartbeat | Write::RenewOld(_) => Script::Heartbeat,
            Write::Retire | Write::RetireOld(_) => Script::Retire,
            Write::SelfReap | Write::ReapOld(_) => Script::Reap,
        }
    }

    /// Whether a lost answer must not lose the reply: the write carries a
    /// call id and is sent again unchanged (see `Tracker::write_in_doubt`).
    pub(super) fn has_call_id(&self) -> bool {
        matches!(
            self,
            Write::Apply(..)
                | Write::Reassert { .. }
                | Write::Heartbeat
                | Write::SelfReap
                | Write::RenewOld(_)
                | Write::ReapOld(_)
        )
    }
}

/// An earlier incarnation of this node, left live by a rotation, to be
/// retired and reaped once the current one holds the whole local truth.
#[derive(Debug, Clone, Copy)]
pub(super) struct Old {
    pub(super) k: u64,
    /// Retired (in the dead set): reap it, slice by slice.
    pub(super) retired: bool,
}

#[derive(Debug)]
pub(super) struct Pending<T> {
    pub(super) token: Token,
    pub(super) what: T,
    /// The read barrier this write makes visible once acknowledged (see
    /// [`Tracker::read_barrier`]).
    pub(super) covers: u64,
    /// The registration the call was made for: a FENCED reply of an older
    /// registration is news already handled.
    pub(super) k: u64,
    /// The call as sent, when it carries a call id: a failed call (its
    /// reply lost, or an error) is sent again as this same call, and the
    /// store answers a call that ran already with its kept reply.
    pub(super) sent: Option<Op>,
}

/// A call with a call id goes again, unchanged but for its token.
pub(super) fn resend(token: Token, sent: &Op) -> Op {
    Op {
        token,
        ..sent.clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Not (or no longer) registered: the next write is a register.
    Unregistered,
    Live,
    /// Shutdown asked; retire once the write in flight is answered.
    Retiring,
    /// Retired: reaping its own share, slice by slice.
    Leaving,
    Closed,
}
