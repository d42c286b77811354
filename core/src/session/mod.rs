//! A node's session: everything a host does that is not I/O, written once
//! for every host (the tokio driver of `rollcall-host`, the WASM binding of
//! the npm package).
//!
//! A host feeds it inputs with the time, takes its [`Output`] and does what
//! that says: send the script calls and feed their replies back, deliver
//! the events, arm the timer and feed a tick when it fires, write out the
//! trace lines. The session owns the tracker, the policy for bad input
//! ([`Fed`]), the timer that is armed, readiness (the first registration),
//! trace recording, and in single-server mode the embedded store, where the
//! calls run without leaving the process.
//!
//! The call queue itself (one write in flight, coalescing the inputs that
//! arrive meanwhile, sending a failed call again unchanged) is the
//! tracker's; a host sends what the output holds, as soon as it can.

mod output;
mod policy;
pub mod replay;

pub use output::Output;
pub use policy::Fed;

use std::fmt;

use crate::config::{Config, ConfigError};
use crate::event::Event;
use crate::model::Keyspace;
use crate::op::{Millis, Op, Reply, Token};
use crate::query::{Answer, BadAnswer, Query};
use crate::scripts::Script;
use crate::trace::Recorder;
use crate::tracker::{Input, InputError, Step, Tracker};
use policy::{Disposition, disposition};

/// A tracker with everything around it that every host needs.
#[derive(Debug)]
pub struct Session {
    tracker: Tracker,
    /// `Some` in single-server mode: calls run here and never leave.
    store: Option<Keyspace>,
    /// Single-server mode: calls waiting for [`Session::flush`].
    held: Vec<Op>,
    /// The tick the host has a timer for. A later `next_tick` needs no new
    /// timer: an early tick is harmless and reports the new time.
    armed: Option<Millis>,
    readiness: Readiness,
    recorder: Option<Recorder>,
    /// The host was told that trace lines are pending.
    announced: bool,
    /// An input reached the tracker: too late to start a recording.
    fed: bool,
    output: Output,
}

/// Where the node's first registration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    /// Not registered yet; the token of the first `register` call, once sent.
    Registering(Option<Token>),
    /// Registered, or the first registration failed: said once, done.
    Told,
}

/// A recording asked for after the first input: a trace replays from the
/// start, so it cannot begin in the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingTooLate;

impl fmt::Display for RecordingTooLate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rollcall: a recording must start before the first input")
    }
}

impl std::error::Error for RecordingTooLate {}

impl Session {
    /// A session for `node`. `embedded`: single-server mode, the store is in
    /// this process. `nonce`: the process' random nonce (see
    /// [`Tracker::with_nonce`]).
    pub fn new(
        config: Config,
        node: &str,
        nonce: u64,
        embedded: bool,
    ) -> Result<Session, ConfigError> {
        Ok(Session {
            tracker: Tracker::with_nonce(config, node, nonce)?,
            store: embedded.then(Keyspace::new),
            held: Vec::new(),
            armed: None,
            readiness: Readiness::Registering(None),
            recorder: None,
            announced: false,
            fed: false,
            output: Output::default(),
        })
    }

    /// The tracker, to read (counts, barriers, stats).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Single-server mode: the store is in this process.
    pub fn is_embedded(&self) -> bool {
        self.store.is_some()
    }

    /// Starts recording every input as a trace (the header first), and with
    /// `outputs` the output line of every step beside it.
    pub fn record(&mut self, outputs: bool) -> Result<(), RecordingTooLate> {
        if self.fed {
            return Err(RecordingTooLate);
        }
        let recorder = Recorder::of(&self.tracker);
        self.recorder = Some(if outputs {
            recorder.with_outputs()
        } else {
            recorder
        });
        self.announce_trace();
        Ok(())
    }

    /// The trace lines recorded since the last call, each ending in `\n`.
    pub fn take_trace(&mut self) -> Option<String> {
        self.announced = false;
        self.recorder.as_mut()?.take_text()
    }

    /// The output lines recorded since the last call (`None`: none, or not
    /// asked for).
    pub fn take_trace_output(&mut self) -> Option<String> {
        self.recorder.as_mut()?.take_output_text()
    }

    /// Feeds one input at `now` (the host's monotonic milliseconds). `Err`:
    /// refused, a bug of the caller (nothing changed). What the host must
    /// do next is in [`Session::output`].
    pub fn feed(&mut self, now: Millis, input: Input) -> Result<Fed, InputError> {
        if matches!(input, Input::Tick) {
            // The timer fired: whatever comes next needs a new one.
            self.armed = None;
        }
        let fed = self.step(now, input);
        if self.store.is_some() && !self.output.ops.is_empty() {
            // Hold the calls: the inputs that follow before the flush
            // coalesce into the next write, as with a Redis call in flight.
            self.output.flush |= self.held.is_empty();
            self.held.append(&mut self.output.ops);
        }
        self.settle();
        fed
    }

    /// Single-server mode: runs the held calls (and the calls their replies
    /// cause) on the embedded store. Call it when the output says `flush`,
    /// and before reading. Does nothing with a remote store.
    pub fn flush(&mut self, now: Millis) {
        let mut ops = std::mem::take(&mut self.held);
        while !ops.is_empty() {
            for op in ops.drain(..) {
                let Some(store) = &mut self.store else {
                    return;
                };
                let reply = store.run(now, &op);
                // The store's replies are inputs like any other: recorded.
                let input = Input::Reply {
                    token: op.token,
                    reply,
                };
                if let Err(e) = self.step(now, input) {
                    self.output.warnings.push(e.to_string());
                }
            }
            ops.append(&mut self.output.ops);
        }
        self.settle();
    }

    /// What the host must do, gathered since it was last cleared.
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// Forgets the output (the host has acted on it); keeps its buffers.
    pub fn clear_output(&mut self) {
        self.output.clear();
    }

    /// Takes the output (the host acts on it).
    pub fn take_output(&mut self) -> Output {
        std::mem::take(&mut self.output)
    }

    /// Answers `query` from the embedded store, with the held writes run
    /// first (read-your-writes). `None` with a remote store: read there.
    pub fn read_embedded(
        &mut self,
        now: Millis,
        query: &Query,
    ) -> Option<Result<Answer, BadAnswer>> {
        self.store.as_ref()?;
        self.flush(now);
        let op = query.op(self.tracker.schema(), Token(0));
        let reply = self.store.as_mut()?.run(now, &op);
        Some(query.parse(&reply))
    }

    /// The embedded store (single-server mode), to inspect.
    pub fn keyspace(&self) -> Option<&Keyspace> {
        self.store.as_ref()
    }

    /// Every input goes through here: recorded, handled, and its refusal
    /// dealt with by the policy.
    fn step(&mut self, now: Millis, input: Input) -> Result<Fed, InputError> {
        self.fed = true;
        if let Readiness::Registering(Some(token)) = self.readiness
            && let Input::Reply {
                token: answered,
                reply: Reply::Error { error },
            } = &input
            && *answered == token
        {
            self.readiness = Readiness::Told;
            self.output.failed = Some(error.clone());
        }
        if let Some(rec) = &mut self.recorder {
            rec.record(now, &input);
        }
        let result = self.tracker.handle(now, input);
        if let Some(rec) = &mut self.recorder {
            rec.record_step(&result);
        }
        match result {
            Ok(step) => {
                self.absorb(step);
                Ok(Fed::Applied)
            }
            Err(e) => match disposition(&e) {
                Disposition::Ignore => {
                    self.output.warnings.push(format!("rollcall: ignored: {e}"));
                    Ok(Fed::Ignored(e))
                }
                Disposition::StoreError => {
                    let script = match &e {
                        InputError::BadReply { script, .. } => *script,
                        _ => unreachable!("only a bad reply is a store error"),
                    };
                    self.output.events.push(Event::StoreError {
                        script,
                        message: e.to_string(),
                    });
                    Ok(Fed::Applied)
                }
                Disposition::Refuse => Err(e),
            },
        }
    }

    fn absorb(&mut self, step: Step) {
        if self.readiness == Readiness::Registering(None)
            && let Some(op) = step.ops.iter().find(|op| op.script == Script::Register)
        {
            self.readiness = Readiness::Registering(Some(op.token));
        }
        self.output.ops.extend(step.ops);
        self.output.events.extend(step.events);
    }

    /// After every input: readiness, the timer, the trace announcement.
    fn settle(&mut self) {
        if matches!(self.readiness, Readiness::Registering(_))
            && self.tracker.incarnation().is_some()
        {
            self.readiness = Readiness::Told;
            self.output.ready = true;
        }
        match (self.tracker.next_tick(), self.armed) {
            (Some(next), Some(armed)) if next >= armed => {}
            (Some(next), _) => {
                self.armed = Some(next);
                self.output.tick = Some(next);
            }
            (None, _) => self.armed = None,
        }
        self.announce_trace();
    }

    fn announce_trace(&mut self) {
        if !self.announced && self.recorder.as_ref().is_some_and(Recorder::has_lines) {
            self.announced = true;
            self.output.trace = true;
        }
    }
}

#[cfg(test)]
mod tests;
