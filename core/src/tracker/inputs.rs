//! The inputs a tracker takes: socket and client events, replies,
//! shutdown.

use crate::event::Event;
use crate::ids::{self, IdKind};
use crate::local::Refusal;
use crate::op::Millis;
use crate::tracker::state::Phase;
use crate::tracker::{Input, InputError, Step, Tracker};

impl Tracker {
    /// Takes one input: socket and client inputs change the local truth,
    /// a reply goes to its call, a shutdown starts the retirement.
    pub(super) fn accept(
        &mut self,
        now: Millis,
        input: Input,
        step: &mut Step,
    ) -> Result<(), InputError> {
        let open = !matches!(self.phase, Phase::Retiring | Phase::Leaving | Phase::Closed);
        let refuse_closed = |is_socket_input: bool| {
            if is_socket_input && !open {
                Err(InputError::Closed)
            } else {
                Ok(())
            }
        };
        match input {
            Input::Tick => Ok(()),
            Input::Connect {
                sid,
                user,
                namespace,
            } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                ids::check(IdKind::Namespace, &namespace)?;
                if let Some(u) = &user {
                    ids::check(IdKind::User, u)?;
                }
                self.local
                    .connect(&sid, user.as_deref(), &namespace)
                    .map_err(|_| InputError::DuplicateSocket { sid })
            }
            Input::Disconnect { sid } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                self.local
                    .disconnect(&sid, now, self.config.grace_ms)
                    .map_err(|_| InputError::UnknownSocket { sid })
            }
            Input::Join { sid, room } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                ids::check(IdKind::Room, &room)?;
                self.local
                    .join(&sid, &room)
                    .map(drop)
                    .map_err(|_| InputError::UnknownSocket { sid })
            }
            Input::Leave { sid, room } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                ids::check(IdKind::Room, &room)?;
                self.local
                    .leave(&sid, &room)
                    .map(drop)
                    .map_err(|_| InputError::UnknownSocket { sid })
            }
            Input::Identify { sid, user } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                if let Some(u) = &user {
                    ids::check(IdKind::User, u)?;
                }
                self.local
                    .identify(&sid, user.as_deref())
                    .map(drop)
                    .map_err(|_| InputError::UnknownSocket { sid })
            }
            Input::SetData { sid, data } => {
                refuse_closed(true)?;
                ids::check(IdKind::Socket, &sid)?;
                if let Some(json) = &data {
                    check_data(&sid, json, self.config.max_data_bytes)?;
                }
                self.local
                    .set_data(&sid, data.as_deref())
                    .map_err(|_| InputError::UnknownSocket { sid })
            }
            Input::ClientOpen { cid } => {
                refuse_closed(true)?;
                ids::check(IdKind::Client, &cid)?;
                self.local.client_open(&cid).map_err(|r| match r {
                    Refusal::Duplicate => InputError::DuplicateClient { cid },
                    Refusal::Unknown => unreachable!("open never reports unknown"),
                })
            }
            Input::ClientClose { cid } => {
                refuse_closed(true)?;
                ids::check(IdKind::Client, &cid)?;
                self.local
                    .client_close(&cid)
                    .map_err(|_| InputError::UnknownClient { cid })
            }
            Input::Reply { token, reply } => self.on_reply(now, token, reply, step),
            Input::Shutdown => {
                match self.phase {
                    Phase::Unregistered if self.write.is_none() => {
                        self.phase = Phase::Closed;
                        step.events.push(Event::Closed);
                    }
                    Phase::Unregistered | Phase::Live => self.phase = Phase::Retiring,
                    Phase::Retiring | Phase::Leaving | Phase::Closed => {}
                }
                self.local.clear_lingering();
                Ok(())
            }
        }
    }
}

/// Data must be the JSON text of an object, at most `max` bytes long.
fn check_data(sid: &str, json: &str, max: u32) -> Result<(), InputError> {
    let bad = |reason: String, too_long: bool| InputError::BadData {
        sid: sid.to_owned(),
        reason,
        too_long,
    };
    if json.len() > max as usize {
        return Err(bad(
            format!(
                "{} bytes of JSON, more than max_data_bytes ({max})",
                json.len()
            ),
            true,
        ));
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(bad("not a JSON object".to_owned(), false)),
        Err(e) => Err(bad(format!("not JSON ({e})"), false)),
    }
}
