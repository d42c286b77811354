//! The one tokio task that drives a node's session.
//!
//! A thin loop around `rollcall_core::Session`, which decides everything
//! that is not I/O: it takes inputs from a channel, sends a `Tick` at the
//! tracker's next-tick time, runs the script calls of the session's output
//! on the store (every call made while handling one burst of inputs goes
//! out in one round trip), feeds each reply back (failures as
//! `Reply::Error`), broadcasts the events and writes out the trace lines.
//! It never waits for the store itself: calls run in tasks of their own, so
//! inputs that arrive meanwhile are taken at once and coalesce inside the
//! tracker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rollcall_core::{Event, Fed, Input, InputError, Millis, Op, Reply, Script, Session, Token};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use crate::metrics::{NodeStats, WriteLatency};
use crate::recording::Recording;
use crate::store::Store;

/// Where a driver is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Taking inputs and keeping its lease.
    Running,
    /// `Shutdown` was fed; waiting for [`Event::Closed`].
    ShuttingDown,
    /// Closed cleanly: nothing of this node is left in the store.
    Closed,
    /// Stopped without a shutdown (killed): the node will be reaped.
    Stopped,
}

/// What the handle sends to the driver.
#[derive(Debug)]
pub enum Command {
    /// A socket or client input; the reply says whether it was accepted.
    Input {
        /// The input to feed the tracker.
        input: Input,
        /// Told whether the tracker accepted it (`None`: nobody asks).
        done: Option<oneshot::Sender<Result<(), rollcall_core::InputError>>>,
    },
    /// Leave the cluster cleanly.
    Shutdown,
    /// This node's local truth: every field it wants counted.
    LocalFields {
        /// Told the fields (name, count).
        done: oneshot::Sender<Vec<(String, u32)>>,
    },
    /// This node's numbers for metrics.
    Stats {
        /// Told the numbers.
        done: oneshot::Sender<NodeStats>,
    },
    /// Read-your-writes: answered once the store holds every input sent
    /// before this command (the tracker's read barrier is visible). Never
    /// answered (dropped) if the driver stops first.
    Barrier {
        /// Told once the barrier is visible.
        done: oneshot::Sender<()>,
    },
}

/// Most inputs taken in one burst before the calls they caused are sent.
const BURST: usize = 4096;

/// How the first registration went: `Err` with the store's message.
pub(crate) type Readiness = oneshot::Sender<Result<(), String>>;

pub(crate) struct Driver {
    session: Session,
    store: Store,
    commands: mpsc::UnboundedReceiver<Command>,
    events: broadcast::Sender<Event>,
    status: Arc<watch::Sender<Status>>,
    /// How many replies of the store were answers, not failures: the
    /// progress a shutdown waits on.
    answers: Arc<watch::Sender<u64>>,
    /// The tracker's clock (milliseconds) counts from here.
    start: Instant,
    op_timeout: Duration,
    calls: JoinSet<Vec<Reply>>,
    /// The tokens each call task answers (to answer them even if it
    /// panics), and when it was sent.
    tokens: HashMap<Id, (Vec<(Token, Script)>, Instant)>,
    latency: WriteLatency,
    outbox: Vec<Op>,
    recording: Option<Recording>,
    /// Reads waiting for their barrier, in the order they came.
    barriers: Vec<(u64, oneshot::Sender<()>)>,
    /// Told once, when the session says the node is registered or failed to.
    readiness: Option<Readiness>,
}

impl Driver {
    #[allow(clippy::too_many_arguments)] // one of each channel, all required
    pub(crate) fn new(
        session: Session,
        store: Store,
        commands: mpsc::UnboundedReceiver<Command>,
        events: broadcast::Sender<Event>,
        status: Arc<watch::Sender<Status>>,
        answers: Arc<watch::Sender<u64>>,
        op_timeout: Duration,
        recording: Option<Recording>,
        readiness: Readiness,
    ) -> Driver {
        Driver {
            session,
            store,
            commands,
            events,
            status,
            answers,
            start: Instant::now(),
            op_timeout,
            calls: JoinSet::new(),
            tokens: HashMap::new(),
            latency: WriteLatency::default(),
            outbox: Vec::new(),
            recording,
            barriers: Vec::new(),
            readiness: Some(readiness),
        }
    }

    fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at)
    }

    /// Runs until the tracker is closed (after a shutdown, or when every
    /// handle is gone).
    pub(crate) async fn run(mut self) {
        let _ = self.feed(Input::Tick);
        self.flush();
        let mut inputs_open = true;
        while !self.session.tracker().is_closed() {
            let deadline = self.session.tracker().next_tick().map(|t| self.instant(t));
            tokio::select! {
                done = self.calls.join_next_with_id(), if !self.calls.is_empty() => {
                    if let Some(done) = done {
                        self.answer(done);
                    }
                }
                command = self.commands.recv(), if inputs_open => match command {
                    Some(command) => {
                        self.command(command);
                        for _ in 1..BURST {
                            match self.commands.try_recv() {
                                Ok(command) => self.command(command),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        // Every handle is gone: leave cleanly.
                        inputs_open = false;
                        self.shutdown();
                    }
                },
                () = sleep_until(deadline), if deadline.is_some() => {
                    let _ = self.feed(Input::Tick);
                }
            }
            self.flush();
            self.release_barriers();
        }
        self.status.send_replace(Status::Closed);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Input { input, done } => {
                // An input the session ignored changed nothing: its caller
                // hears why, as an error.
                let result = match self.feed(input) {
                    Ok(Fed::Applied) => Ok(()),
                    Ok(Fed::Ignored(e)) | Err(e) => Err(e),
                };
                if let Some(done) = done {
                    let _ = done.send(result);
                }
            }
            Command::Shutdown => self.shutdown(),
            Command::LocalFields { done } => {
                let _ = done.send(self.session.tracker().local_fields());
            }
            Command::Stats { done } => {
                let t = self.session.tracker();
                let _ = done.send(NodeStats {
                    stats: t.stats().clone(),
                    local_sockets: t.local_sockets() as u64,
                    local_users: t.local_users() as u64,
                    local_clients: t.local_clients() as u64,
                    write_seconds: self.latency.clone(),
                });
            }
            Command::Barrier { done } => {
                let t = self.session.tracker();
                let mark = t.read_barrier();
                if t.is_visible(mark) || t.is_closed() {
                    let _ = done.send(());
                } else {
                    self.barriers.push((mark, done));
                }
            }
        }
    }

    /// Answers the waiting reads whose barrier the store now holds (and
    /// forgets those whose reader gave up).
    fn release_barriers(&mut self) {
        if self.barriers.is_empty() {
            return;
        }
        for (mark, done) in std::mem::take(&mut self.barriers) {
            if done.is_closed() {
                continue;
            }
            let t = self.session.tracker();
            if t.is_visible(mark) || t.is_closed() {
                let _ = done.send(());
            } else {
                self.barriers.push((mark, done));
            }
        }
    }

    fn shutdown(&mut self) {
        if *self.status.borrow() == Status::Running {
            self.status.send_replace(Status::ShuttingDown);
        }
        let _ = self.feed(Input::Shutdown);
    }

    /// Feeds one input; the calls it causes wait in the outbox for
    /// [`Self::flush`], its events go out at once.
    fn feed(&mut self, input: Input) -> Result<Fed, InputError> {
        let now = self.now();
        let fed = self.session.feed(now, input);
        let out = self.session.take_output();
        self.outbox.extend(out.ops);
        for event in out.events {
            // No subscriber is fine: events are for those who listen.
            let _ = self.events.send(event);
        }
        let told = match (out.ready, out.failed) {
            (_, Some(error)) => Some(Err(error)),
            (true, None) => Some(Ok(())),
            (false, None) => None,
        };
        if let Some(told) = told
            && let Some(readiness) = self.readiness.take()
        {
            let _ = readiness.send(told);
        }
        // out.warnings: the input's caller gets the same as an error; the
        // timer (out.tick) is re-read from the tracker every turn.
        fed
    }

    /// Sends the calls of the last burst, in one round trip.
    fn flush(&mut self) {
        if let Some(rec) = &mut self.recording {
            rec.write(&mut self.session);
        }
        if self.outbox.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.outbox);
        let tokens = ops.iter().map(|op| (op.token, op.script)).collect();
        let store = self.store.clone();
        let timeout = self.op_timeout;
        let handle = self.calls.spawn(async move {
            // The in-memory store always answers: a timeout could only turn
            // a slow (starved) call that did run into a lost reply, and the
            // events of a lost reply are lost.
            if matches!(store, Store::Memory(_)) {
                return store.run(&ops).await;
            }
            match tokio::time::timeout(timeout, store.run(&ops)).await {
                Ok(replies) => replies,
                Err(_) => ops
                    .iter()
                    .map(|_| {
                        Reply::error(format!(
                            "rollcall: the store did not answer within {} ms",
                            timeout.as_millis()
                        ))
                    })
                    .collect(),
            }
        });
        self.tokens.insert(handle.id(), (tokens, Instant::now()));
    }

    /// Feeds back the replies of one finished round trip.
    fn answer(&mut self, done: Result<(Id, Vec<Reply>), tokio::task::JoinError>) {
        let (id, replies) = match done {
            Ok((id, replies)) => (id, replies),
            Err(e) => (
                e.id(),
                Vec::new(), // answered below as failures
            ),
        };
        let (tokens, sent) = self
            .tokens
            .remove(&id)
            .unwrap_or_else(|| (Vec::new(), Instant::now()));
        let took = sent.elapsed();
        let mut replies = replies.into_iter();
        for (token, script) in tokens {
            if script.is_write() {
                self.latency.observe(took);
            }
            let reply = replies
                .next()
                .unwrap_or_else(|| Reply::error("rollcall: the call was lost in the host"));
            if !matches!(reply, Reply::Error { .. }) {
                self.answers.send_modify(|n| *n += 1);
            }
            // A malformed reply: the session reports it as a store error
            // event (the tracker counts the call as failed and heals).
            let _ = self.feed(Input::Reply { token, reply });
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
