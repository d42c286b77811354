//! A tracker's writes and reaps as script calls: the typed arguments of
//! [`crate::protocol`], from the write and the tracker's state.

use crate::event::OfflineReason;
use crate::local::DataWrite;
use crate::op::{Op, Token};
use crate::protocol::{Apply, Call, Feed, Heartbeat, Lane, Reap, Reassert, Register, Retire};
use crate::schema::incarnation;
use crate::tracker::Tracker;
use crate::tracker::state::Write;

impl Tracker {
    /// The op of a write; `fields` are the names of its entries, from
    /// `Tracker::next_write`.
    pub(super) fn write_op(&self, token: Token, write: &Write, fields: Vec<String>) -> Op {
        let stall_ms = self.config.heartbeat_ms;
        let ttl_ms = self.config.ttl_ms;
        let slice = u64::from(self.config.reap_slice);
        let current = incarnation(&self.node, self.k);
        let old = |k: u64| incarnation(&self.node, k);
        let call_id = token.0.to_string();
        let feed = self.feed();
        let call = match write {
            Write::Register { keep } => Call::Register(Register {
                stall_ms,
                node: self.node.clone(),
                ttl_ms,
                k: self.k + 1,
                // Only a registration after FENCED leaves the previous
                // incarnation alone: that one is now another process'.
                replace: self.first_registration || keep.is_some(),
                keep: *keep,
            }),
            Write::Apply(deltas, data) => {
                debug_assert_eq!(fields.len(), deltas.len());
                Call::Apply(Apply {
                    stall_ms,
                    incarnation: current,
                    ttl_ms,
                    version: Some(self.version),
                    call_id,
                    feed,
                    deltas: fields
                        .into_iter()
                        .zip(deltas)
                        .map(|(f, (_, d))| (f, *d))
                        .collect(),
                    data: data_pairs(data),
                })
            }
            Write::Reassert {
                snapshot,
                data,
                version,
            } => {
                debug_assert_eq!(fields.len(), snapshot.len());
                Call::Reassert(Reassert {
                    stall_ms,
                    incarnation: current,
                    ttl_ms,
                    version: *version,
                    call_id,
                    max_write_fields: u64::from(self.config.max_write_fields),
                    feed,
                    counts: fields
                        .into_iter()
                        .zip(snapshot)
                        .map(|(f, (_, n))| (f, i64::from(*n)))
                        .collect(),
                    data: data_pairs(data),
                })
            }
            Write::Heartbeat => Call::Heartbeat(Heartbeat {
                stall_ms,
                incarnation: current,
                ttl_ms,
                version: Some(self.version),
                call_id,
            }),
            Write::Retire => Call::Retire(Retire {
                stall_ms,
                incarnation: current,
            }),
            Write::SelfReap => Call::Reap(Reap {
                stall_ms,
                incarnation: current.clone(),
                slice,
                target: Some(current),
                call_id,
                lane: Lane::Write,
                down: OfflineReason::Shutdown,
                feed,
            }),
            // No version: the lease is renewed, the reply DRIFT.
            Write::RenewOld(k) => Call::Heartbeat(Heartbeat {
                stall_ms,
                incarnation: old(*k),
                ttl_ms,
                version: None,
                call_id,
            }),
            Write::RetireOld(k) => Call::Retire(Retire {
                stall_ms,
                incarnation: old(*k),
            }),
            Write::ReapOld(k) => Call::Reap(Reap {
                stall_ms,
                incarnation: current,
                slice,
                target: Some(old(*k)),
                call_id,
                lane: Lane::Write,
                // An old incarnation's users leave with the node when it
                // is leaving; else they had left this node already.
                down: if self.leaving() {
                    OfflineReason::Shutdown
                } else {
                    OfflineReason::Disconnect
                },
                feed,
            }),
        };
        debug_assert_eq!(call.script(), write.script());
        call.op(token, &self.schema)
    }

    /// The op of a call on the reap lane: any dead or expired incarnation.
    pub(super) fn reap_op(&self, token: Token) -> Op {
        Call::Reap(Reap {
            stall_ms: self.config.heartbeat_ms,
            incarnation: incarnation(&self.node, self.k),
            slice: u64::from(self.config.reap_slice),
            target: None,
            call_id: token.0.to_string(),
            lane: Lane::Reap,
            down: OfflineReason::Reaped,
            feed: self.feed(),
        })
        .op(token, &self.schema)
    }

    /// What every call that makes transitions records beside them.
    fn feed(&self) -> Feed {
        Feed {
            max_len: u64::from(self.config.changes_max_len),
            seen_ms: self.config.last_seen_ms,
        }
    }
}

/// The (field, JSON) pairs of data writes, as the scripts take them.
fn data_pairs(data: &[DataWrite]) -> Vec<(String, String)> {
    data.iter()
        .map(|w| (w.field.clone(), w.json.clone()))
        .collect()
}
