//! What a tracker sends next, on each of its two lanes.

use crate::local::Key;
use crate::op::{Millis, Token};
use crate::tracker::state::{Pending, Phase, Write, resend};
use crate::tracker::{Step, Tracker};

impl Tracker {
    fn token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    /// Sends what is due: the next write (or the one in doubt) when the
    /// write lane is free, and the next reap when the reap lane is.
    pub(super) fn pump(&mut self, now: Millis, step: &mut Step) {
        if self.write.is_none() && now >= self.retry_at {
            self.write_again_or_next(now, step);
        }
        if self.reap.is_none() && self.reap_lane_open() && now >= self.reap_due {
            let token = self.token();
            let again = self.reap_again.take().filter(|p| p.k == self.k);
            let sent = match again.and_then(|p| p.sent) {
                Some(sent) => sent,
                None if self.phase == Phase::Live => self.reap_op(token),
                // Leaving: only a reap in doubt goes again, no new one.
                None => return,
            };
            step.ops.push(resend(token, &sent));
            self.reap = Some(Pending {
                token,
                what: (),
                covers: 0,
                k: self.k,
                sent: Some(sent),
            });
        }
    }

    /// Sends the write in doubt again if it still applies, else the next
    /// write.
    fn write_again_or_next(&mut self, now: Millis, step: &mut Step) {
        let token;
        let pending = match self.write_again.take() {
            Some(again)
                if again.k == self.k
                    && !matches!(self.phase, Phase::Unregistered | Phase::Closed) =>
            {
                token = self.token();
                step.ops.push(resend(
                    token,
                    again.sent.as_ref().expect("only calls with an id wait"),
                ));
                Pending { token, ..again }
            }
            // Fenced meanwhile: the incarnation and its share are gone, and
            // the re-registration re-asserts everything.
            _ => {
                let Some((write, fields)) = self.next_write(now) else {
                    return;
                };
                token = self.token();
                let op = self.write_op(token, &write, fields);
                let sent = write.has_call_id().then(|| op.clone());
                step.ops.push(op);
                // A write holds every input so far unless the cap left some
                // deltas for the next one.
                let covers = match write {
                    Write::Reassert { .. } => self.inputs,
                    Write::Apply(..) if !self.local.has_dirty() => self.inputs,
                    _ => self.acked_inputs,
                };
                Pending {
                    token,
                    what: write,
                    covers,
                    k: self.k,
                    sent,
                }
            }
        };
        if !matches!(
            pending.what,
            Write::Retire
                | Write::SelfReap
                | Write::RenewOld(_)
                | Write::RetireOld(_)
                | Write::ReapOld(_)
        ) {
            self.heartbeat_due = now.saturating_add(self.config.heartbeat_ms);
        }
        self.write = Some(pending);
    }

    /// The next write, with the field names of an apply or re-assert (in
    /// the order of its entries; empty for the other writes).
    fn next_write(&mut self, now: Millis) -> Option<(Write, Vec<String>)> {
        let max = self.config.max_write_fields as usize;
        let write = match self.phase {
            Phase::Closed => return None,
            Phase::Unregistered => Write::Register { keep: None },
            // A reap in flight or in doubt first: once this node has left, the
            // store no longer answers its reap calls with their kept replies,
            // and the transitions of one whose reply was lost would be lost.
            Phase::Retiring if self.holds_retire() => return None,
            Phase::Retiring => Write::Retire,
            Phase::Leaving => self.old_write().unwrap_or(Write::SelfReap),
            Phase::Live
                if self.needs_reassert && self.local.field_count() <= max && !self.must_rotate =>
            {
                self.fresh = false;
                let (fields, snapshot) = self
                    .local
                    .snapshot()
                    .into_iter()
                    .map(|(f, k, n)| (f, (k, n)))
                    .unzip();
                return Some((
                    Write::Reassert {
                        snapshot,
                        data: self.local.data_snapshot(),
                        version: self.version + 1,
                    },
                    fields,
                ));
            }
            Phase::Live if self.needs_reassert && !self.fresh => {
                // Too large for one call, and Redis holds an unknown share
                // of this incarnation: rotate to a new one.
                Write::Register { keep: Some(self.k) }
            }
            Phase::Live => {
                if self.needs_reassert {
                    // A fresh incarnation holds nothing: the whole local
                    // truth goes as deltas from zero, in bounded applies.
                    self.needs_reassert = false;
                    self.local.mark_all_dirty();
                }
                // While the new share is still being written (after that,
                // the kept one is retired at once).
                if now >= self.old_renew_due
                    && self.local.has_dirty()
                    && let Some(kept) = self.old.iter().find(|o| !o.retired)
                {
                    // Every half TTL, not every heartbeat: the lane's other
                    // calls (the new share) go between, however slow.
                    self.old_renew_due = now.saturating_add(self.config.ttl_ms / 2);
                    return Some((Write::RenewOld(kept.k), Vec::new()));
                }
                let (fields, deltas): (Vec<String>, Vec<(Key, i64)>) = self
                    .local
                    .take_deltas(max)
                    .into_iter()
                    .map(|(f, k, d)| (f, (k, d)))
                    .unzip();
                // The lease was last renewed a heartbeat before it is due.
                let renewed_at = self.heartbeat_due.saturating_sub(self.config.heartbeat_ms);
                let urgent = now >= renewed_at.saturating_add(self.config.ttl_ms / 2);
                let data = self.local.take_data(max.saturating_sub(deltas.len()));
                if !deltas.is_empty() || !data.is_empty() {
                    self.fresh = false;
                    return Some((Write::Apply(deltas, data), fields));
                } else if now >= self.heartbeat_due && (urgent || self.old.is_empty()) {
                    Write::Heartbeat
                } else if let Some(old) = self.old_write() {
                    // Retiring what a rotation left goes before a heartbeat
                    // that can wait: on a slow lane it would never go.
                    old
                } else if now >= self.heartbeat_due {
                    Write::Heartbeat
                } else {
                    return None;
                }
            }
        };
        Some((write, Vec::new()))
    }

    /// The next step of retiring an earlier incarnation, if one is left.
    fn old_write(&self) -> Option<Write> {
        self.old.first().map(|o| {
            if o.retired {
                Write::ReapOld(o.k)
            } else {
                Write::RetireOld(o.k)
            }
        })
    }
}
