//! The phase machine's transitions: what each reply does to a tracker.

use crate::event::{Event, OfflineReason};
use crate::op::{Millis, Op, Reply, Token};
use crate::protocol::{Args, BadReply, Reap, ScriptReply, Status, change_base, unexpected_status};
use crate::schema::{incarnation, split_incarnation};
use crate::scripts::Script;
use crate::tracker::state::{Old, Pending, Phase, Write};
use crate::tracker::{InputError, Step, Tracker};

impl Tracker {
    /// Hands a reply to the call it answers.
    pub(super) fn on_reply(
        &mut self,
        now: Millis,
        token: Token,
        reply: Reply,
        step: &mut Step,
    ) -> Result<(), InputError> {
        if self.write.as_ref().is_some_and(|p| p.token == token) {
            let pending = self.write.take().expect("checked");
            return self.on_write_reply(now, pending, reply, step);
        }
        if self.reap.as_ref().is_some_and(|p| p.token == token) {
            let pending = self.reap.take().expect("checked");
            return self.on_reap_reply(now, pending, reply, step);
        }
        Err(InputError::UnknownToken { token })
    }

    fn on_write_reply(
        &mut self,
        now: Millis,
        pending: Pending<Write>,
        reply: Reply,
        step: &mut Step,
    ) -> Result<(), InputError> {
        let script = pending.what.script();
        if let Reply::Error { error } = &reply {
            step.events.push(Event::StoreError {
                script,
                message: error.clone(),
            });
            self.write_in_doubt(now, pending);
            return Ok(());
        }
        let parsed = match ScriptReply::parse(script, &reply) {
            Ok(p) => p,
            Err(e @ BadReply::Shape { .. }) => {
                self.write_in_doubt(now, pending);
                return Err(e.into());
            }
            Err(e @ BadReply::Status { .. }) => {
                self.write_failed(now, &pending.what);
                return Err(e.into());
            }
        };
        // The reason the call was sent with: the feed says the same.
        let reason = sent_reason(&pending.sent).unwrap_or(OfflineReason::Disconnect);
        let bad = |reason: String| Err(InputError::BadReply { script, reason });
        // Transitions first: `Closed` must be the last event of all.
        let base = base_of(&pending.sent);
        step.events.extend(transitions(&parsed, reason, &base));
        step.events.extend(updates(&parsed, &base));
        match (pending.what, parsed.status) {
            (Write::Register { keep }, Status::Ok) => {
                let Ok(k) = parsed.detail.parse::<u64>() else {
                    self.write_failed(now, &Write::Register { keep });
                    return bad(format!("registration number {:?}", parsed.detail));
                };
                if let Some(old) = keep {
                    self.old.push(Old {
                        k: old,
                        retired: false,
                    });
                    // Its last renewal was a call ago: renew it first.
                    self.old_renew_due = now;
                }
                self.k = k;
                self.first_registration = false;
                self.must_rotate = false;
                self.version = 0;
                self.local.forget_committed();
                self.needs_reassert = true;
                self.fresh = true;
                if self.phase == Phase::Unregistered {
                    self.phase = Phase::Live;
                }
                self.reap_due = now.saturating_add(self.config.reap_ms);
            }
            (Write::Apply(deltas, data), Status::Ok) => {
                self.local.commit_deltas(&deltas);
                self.local.commit_data(&data);
                self.version += 1;
                self.acked_inputs = self.acked_inputs.max(pending.covers);
            }
            (
                Write::Reassert {
                    snapshot,
                    data,
                    version,
                },
                Status::Ok,
            ) => {
                self.local.commit_snapshot(&snapshot);
                self.local.commit_data_snapshot(&data);
                self.acked_inputs = self.acked_inputs.max(pending.covers);
                self.version = version;
                self.needs_reassert = false;
            }
            (Write::Heartbeat, Status::Ok) => {}
            (Write::Apply(..) | Write::Reassert { .. } | Write::Heartbeat, Status::Drift) => {
                self.needs_reassert = true;
            }
            // Redis holds more of this incarnation than one call may walk:
            // rotate (the kept one is retired and reaped in slices).
            (Write::Reassert { .. }, Status::Rotate) => {
                self.needs_reassert = true;
                self.must_rotate = true;
            }
            (Write::Apply(..) | Write::Reassert { .. } | Write::Heartbeat, Status::Fenced) => {
                self.fenced(pending.k, step);
            }
            (Write::RenewOld(_), Status::Drift | Status::Ok) => {}
            // Reaped by another node meanwhile (its lease had lapsed).
            (Write::RenewOld(k), Status::Fenced) => self.old.retain(|o| o.k != k),
            (Write::Retire, Status::Ok) => self.phase = Phase::Leaving,
            (Write::Retire, Status::Gone) => self.close(step),
            (Write::SelfReap, Status::Slice) => {}
            (Write::SelfReap, Status::Done | Status::Idle) => self.close(step),
            (Write::RetireOld(k), Status::Ok) => {
                if let Some(o) = self.old.iter_mut().find(|o| o.k == k) {
                    o.retired = true;
                }
            }
            (Write::RetireOld(k), Status::Gone)
            | (Write::ReapOld(k), Status::Done | Status::Idle) => {
                self.old.retain(|o| o.k != k);
            }
            (Write::ReapOld(_), Status::Slice) => {}
            (what, status) => {
                self.write_failed(now, &what);
                return bad(unexpected_status(status.as_str()));
            }
        }
        Ok(())
    }

    fn on_reap_reply(
        &mut self,
        now: Millis,
        pending: Pending<()>,
        reply: Reply,
        step: &mut Step,
    ) -> Result<(), InputError> {
        let later = now.saturating_add(self.config.reap_ms);
        let k = pending.k;
        if let Reply::Error { error } = &reply {
            step.events.push(Event::StoreError {
                script: Script::Reap,
                message: error.clone(),
            });
            self.reap_due = later;
            self.reap_again = Some(pending);
            return Ok(());
        }
        let bad = |reason: String| {
            Err(InputError::BadReply {
                script: Script::Reap,
                reason,
            })
        };
        let parsed = match ScriptReply::parse(Script::Reap, &reply) {
            Ok(p) => p,
            Err(e @ BadReply::Shape { .. }) => {
                self.reap_due = later;
                self.reap_again = Some(pending);
                return Err(e.into());
            }
            Err(e @ BadReply::Status { .. }) => {
                self.reap_due = later;
                return Err(e.into());
            }
        };
        let base = base_of(&pending.sent);
        let mut events = transitions(&parsed, OfflineReason::Reaped, &base);
        events.extend(updates(&parsed, &base));
        match parsed.status {
            // More to do: go on at once (each call is bounded).
            Status::Slice => self.reap_due = now,
            Status::Done => {
                self.reap_due = now;
                let node = split_incarnation(&parsed.detail)
                    .map(|(n, _)| n.to_owned())
                    .unwrap_or_default();
                step.events.extend(events);
                step.events.push(Event::NodeReaped {
                    node,
                    incarnation: parsed.detail,
                });
                return Ok(());
            }
            Status::Idle => self.reap_due = later,
            Status::Fenced => {
                self.reap_due = later;
                self.fenced(k, step);
            }
            other => {
                self.reap_due = later;
                return bad(unexpected_status(other.as_str()));
            }
        }
        step.events.extend(events);
        Ok(())
    }

    /// The store no longer knows this registration: register again and
    /// re-assert everything.
    pub(super) fn fenced(&mut self, k: u64, step: &mut Step) {
        if k != self.k || self.phase != Phase::Live {
            return;
        }
        step.events.push(Event::Fenced {
            incarnation: incarnation(&self.node, self.k),
        });
        self.phase = Phase::Unregistered;
        self.local.forget_committed();
        self.needs_reassert = true;
    }

    /// A write's outcome is unknown (an error, a lost or malformed reply):
    /// a call with a call id goes again as the same call, so the store
    /// either runs it now or answers with the reply it kept of it, and no
    /// transition is lost or repeated. Other writes fail.
    pub(super) fn write_in_doubt(&mut self, now: Millis, pending: Pending<Write>) {
        if pending.sent.is_some() {
            self.retry_at = now.saturating_add(self.config.retry_ms);
            self.write_again = Some(pending);
        } else {
            self.write_failed(now, &pending.what);
        }
    }

    /// A write failed: retry later; the local truth is re-asserted as a
    /// whole, which heals whatever happened.
    pub(super) fn write_failed(&mut self, now: Millis, what: &Write) {
        self.retry_at = now.saturating_add(self.config.retry_ms);
        if matches!(what, Write::Apply(..) | Write::Reassert { .. }) {
            self.needs_reassert = true;
        }
    }

    /// The tracker is done: [`Event::Closed`] is its last event.
    fn close(&mut self, step: &mut Step) {
        self.phase = Phase::Closed;
        step.events.push(Event::Closed);
    }
}

/// The data updates of a reply, as events, after its transitions.
fn updates(reply: &ScriptReply, base: &str) -> Vec<Event> {
    reply
        .updates(base)
        .map(|(u, change_id)| Event::UserUpdated {
            user: u.user.clone(),
            data: u.data.clone(),
            change_id,
        })
        .collect()
}

/// The offline reason a reap was sent with (`None` for other calls).
fn sent_reason(sent: &Option<Op>) -> Option<OfflineReason> {
    let op = sent.as_ref().filter(|op| op.script == Script::Reap)?;
    Reap::decode(&op.args).ok().map(|r| r.down)
}

/// The `<incarnation>:<call id>` of a call as sent (every call that can
/// make transitions carries a call id; empty for one that does not).
fn base_of(sent: &Option<Op>) -> String {
    sent.as_ref()
        .and_then(|op| change_base(op.script, &op.args))
        .unwrap_or_default()
}

/// The user transitions of a reply, as events: the adopted ones first (with
/// the reason they were made with), then the call's own (online ones first,
/// offline ones with `reason`), each with its change id.
fn transitions(reply: &ScriptReply, reason: OfflineReason, base: &str) -> Vec<Event> {
    reply
        .changes(base)
        .into_iter()
        .map(|c| {
            if c.edge.online {
                Event::UserOnline {
                    scope: c.edge.scope,
                    user: c.edge.user,
                    change_id: c.change_id,
                }
            } else {
                Event::UserOffline {
                    scope: c.edge.scope,
                    user: c.edge.user,
                    reason: c.reason.unwrap_or(reason),
                    change_id: c.change_id,
                }
            }
        })
        .collect()
}
