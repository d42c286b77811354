//! rollcall-sim: the test simulator of rollcall, kept out of the
//! production core. A deterministic cluster: several trackers over one [`Keyspace`], one
//! shared clock, and the faults a real deployment meets (crashes, pauses,
//! restarts, lost replies, a store that forgets everything). Used by the
//! property tests and the golden traces.
//!
//! Script calls queue in one FIFO, like commands on the connections of one
//! Redis, and run when [`Cluster::deliver`] is called, so tests can
//! interleave inputs with calls in flight.

pub mod random;
pub mod scenarios;

use std::collections::{BTreeMap, VecDeque};

use rollcall_core::config::Config;
use rollcall_core::event::Event;
use rollcall_core::model::Keyspace;
use rollcall_core::op::{Millis, Op, Reply};
use rollcall_core::protocol::{Call, ScriptReply, UserEdge, change_base};
use rollcall_core::query::{Answer, Query};
use rollcall_core::schema::Schema;
use rollcall_core::scope::Scope;
use rollcall_core::scripts::Script;
use rollcall_core::trace::{Recorder, step_line};
use rollcall_core::tracker::{Input, InputError, Tracker};

/// What a node of the simulation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Running,
    /// Stopped in time (a GC pause, SIGSTOP): replies wait for it.
    Paused,
    /// Gone for good, without a shutdown.
    Crashed,
}

#[derive(Debug)]
struct SimNode {
    tracker: Tracker,
    /// The node's trace and its live output lines, when recording.
    trace: Option<(Recorder, Vec<String>)>,
    state: NodeState,
    next_tick: Option<Millis>,
    /// Replies that reached a paused node, with the transitions they carry.
    inbox: VecDeque<(Input, Vec<usize>)>,
    /// It was paused at some time (so it may have been reaped and fenced).
    was_paused: bool,
}

/// One event with the node that emitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    pub node: usize,
    pub at: Millis,
    pub event: Event,
}

/// A simulated cluster.
#[derive(Debug)]
pub struct Cluster {
    pub config: Config,
    pub store: Keyspace,
    pub now: Millis,
    nodes: Vec<SimNode>,
    queue: VecDeque<(usize, Op)>,
    /// Every event emitted, in order.
    pub events: Vec<Emitted>,
    /// Every user transition the store made, in the order it made them,
    /// with whether its reply reached a running node (which emitted it).
    pub transitions: Vec<Transition>,
    /// Where in `transitions` the store was wiped: a store that forgot
    /// everything starts its transitions afresh (users come online again).
    pub wipes: Vec<usize>,
    /// Replies to drop (as if the connection broke after the call ran).
    lose_replies: usize,
    /// The transitions each call with a call id made (node, incarnation,
    /// call id): a retry answered with the kept reply makes none, it
    /// delivers these.
    calls: BTreeMap<(usize, String, String), Vec<usize>>,
    /// Record a trace of every node from now on.
    pub record: bool,
}

/// A user came online (or went offline) in a scope, cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub scope: Scope,
    pub user: String,
    pub online: bool,
    /// The node whose call made it.
    pub node: usize,
    /// Its reply was lost or its node had crashed: its node did not emit
    /// it (the reap of a dead node may, see [`Event::UserOnline`]).
    pub lost: bool,
    /// The change id every report of it must carry.
    pub change_id: String,
}

/// The user transitions a script call made in the store, with their change
/// ids (none for an error or a read). Transitions a reap adopted from a
/// dead incarnation are not new: they are not among them.
fn transitions_of(op: &Op, reply: &Reply) -> Vec<(UserEdge, String)> {
    if op.script == Script::Read {
        return Vec::new();
    }
    let base = change_base(op.script, &op.args).unwrap_or_default();
    ScriptReply::parse(op.script, reply)
        .map(|r| {
            r.edges()
                .into_iter()
                .enumerate()
                .map(|(i, e)| (e, format!("{base}:{i}")))
                .collect()
        })
        .unwrap_or_default()
}

/// The call id of a call that carries one (apply, reassert, heartbeat and
/// reap), with its node and incarnation.
fn call_of(node: usize, op: &Op) -> Option<(usize, String, String)> {
    let call = Call::decode(op.script, &op.args).ok()?;
    let (incarnation, id) = call.call_id()?;
    Some((node, incarnation.to_owned(), id.to_owned()))
}

impl Cluster {
    pub fn new(config: Config) -> Cluster {
        config.validate().expect("valid simulation config");
        Cluster {
            config,
            store: Keyspace::new(),
            now: 1_000_000,
            nodes: Vec::new(),
            queue: VecDeque::new(),
            events: Vec::new(),
            transitions: Vec::new(),
            wipes: Vec::new(),
            lose_replies: 0,
            calls: BTreeMap::new(),
            record: false,
        }
    }

    pub fn schema(&self) -> Schema {
        Schema::new(&self.config.prefix)
    }

    /// Starts a node; returns its index.
    pub fn add_node(&mut self, name: &str) -> usize {
        // Each process its own nonce, as hosts draw one: a restart with the
        // same node id never reuses an incarnation id.
        let nonce = self.nodes.len() as u64 * 1_000_000;
        let tracker = Tracker::with_nonce(self.config.clone(), name, nonce).expect("valid node");
        let trace = self.record.then(|| (Recorder::of(&tracker), Vec::new()));
        self.nodes.push(SimNode {
            tracker,
            trace,
            state: NodeState::Running,
            next_tick: None,
            inbox: VecDeque::new(),
            was_paused: false,
        });
        let i = self.nodes.len() - 1;
        self.input(i, Input::Tick)
            .expect("a tick is always accepted");
        i
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn state(&self, node: usize) -> NodeState {
        self.nodes[node].state
    }

    /// Whether the node was ever paused.
    pub fn was_paused(&self, node: usize) -> bool {
        self.nodes[node].was_paused
    }

    pub fn tracker(&self, node: usize) -> &Tracker {
        &self.nodes[node].tracker
    }

    /// Feeds an input to a running node; its calls join the queue.
    pub fn input(&mut self, node: usize, input: Input) -> Result<(), InputError> {
        let n = &mut self.nodes[node];
        assert_eq!(
            n.state,
            NodeState::Running,
            "input to a node that is not running"
        );
        if let Some((recorder, _)) = &mut n.trace {
            recorder.record(self.now, &input);
        }
        let result = n.tracker.handle(self.now, input);
        if let Some((_, out)) = &mut n.trace {
            out.push(step_line(&result));
        }
        n.next_tick = n.tracker.next_tick();
        let step = result?;
        n.next_tick = step.next_tick;
        for op in step.ops {
            self.queue.push_back((node, op));
        }
        let at = self.now;
        self.events.extend(
            step.events
                .into_iter()
                .map(|event| Emitted { node, at, event }),
        );
        Ok(())
    }

    /// Calls waiting to run.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// The next `n` replies are lost: their calls run, the node gets an error.
    pub fn lose_next_replies(&mut self, n: usize) {
        self.lose_replies += n;
    }

    /// Runs the oldest queued call and hands its reply to its node.
    pub fn deliver(&mut self) -> bool {
        let Some((node, op)) = self.queue.pop_front() else {
            return false;
        };
        let mut reply = self.store.run(self.now, &op);
        let mut lost = self.nodes[node].state == NodeState::Crashed;
        if self.lose_replies > 0 {
            self.lose_replies -= 1;
            lost = true;
        }
        let made = transitions_of(&op, &reply);
        let call = call_of(node, &op);
        let replayed = call
            .as_ref()
            .and_then(|c| self.calls.get(c))
            .filter(|earlier| {
                !earlier.is_empty()
                    && made.len() == earlier.len()
                    && earlier.iter().zip(&made).all(|(&i, (edge, _))| {
                        let t = &self.transitions[i];
                        t.scope == edge.scope && t.user == edge.user && t.online == edge.online
                    })
            });
        let carried: Vec<usize> = if let Some(earlier) = replayed {
            // The kept reply of a call that ran already: nothing new in the
            // store; its transitions reach the node this time.
            let earlier = earlier.clone();
            for &i in &earlier {
                self.transitions[i].lost = lost;
            }
            earlier
        } else {
            let first = self.transitions.len();
            self.transitions
                .extend(made.into_iter().map(|(edge, change_id)| Transition {
                    scope: edge.scope,
                    user: edge.user,
                    online: edge.online,
                    node,
                    lost,
                    change_id,
                }));
            let carried: Vec<usize> = (first..self.transitions.len()).collect();
            if let Some(call) = call {
                self.calls.entry(call).or_insert_with(|| carried.clone());
            }
            carried
        };
        if lost {
            reply = Reply::error("connection lost");
        }
        let input = Input::Reply {
            token: op.token,
            reply,
        };
        match self.nodes[node].state {
            NodeState::Running => {
                // A reply is never refused by the node that asked for it.
                self.input(node, input).expect("reply accepted");
            }
            NodeState::Paused => {
                self.nodes[node].inbox.push_back((input, carried));
            }
            NodeState::Crashed => {}
        }
        true
    }

    /// Runs calls until none is queued.
    pub fn settle(&mut self) {
        let mut budget = 1_000_000;
        while self.deliver() {
            budget -= 1;
            assert!(budget > 0, "the cluster never settles");
        }
    }

    /// Moves time forward to `now + ms`, ticking every running node at each
    /// of its due times on the way and settling after each tick.
    pub fn advance(&mut self, ms: Millis) {
        let end = self.now + ms;
        loop {
            let due = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.state == NodeState::Running)
                .filter_map(|(i, n)| n.next_tick.map(|t| (t.max(self.now), i)))
                .filter(|(t, _)| *t <= end)
                .min();
            let Some((at, node)) = due else { break };
            self.now = at;
            self.input(node, Input::Tick)
                .expect("a tick is always accepted");
            self.settle();
        }
        self.now = end;
    }

    pub fn crash(&mut self, node: usize) {
        self.nodes[node].state = NodeState::Crashed;
        for (_, carried) in std::mem::take(&mut self.nodes[node].inbox) {
            for i in carried {
                self.transitions[i].lost = true;
            }
        }
    }

    pub fn pause(&mut self, node: usize) {
        if self.nodes[node].state == NodeState::Running {
            self.nodes[node].state = NodeState::Paused;
            self.nodes[node].was_paused = true;
        }
    }

    /// Wakes a paused node: it first gets the replies that waited for it.
    pub fn resume(&mut self, node: usize) {
        if self.nodes[node].state != NodeState::Paused {
            return;
        }
        self.nodes[node].state = NodeState::Running;
        while let Some((input, _)) = self.nodes[node].inbox.pop_front() {
            self.input(node, input).expect("reply accepted");
        }
        self.input(node, Input::Tick)
            .expect("a tick is always accepted");
    }

    /// The process dies and a new one starts with the same node id.
    pub fn restart(&mut self, node: usize) -> usize {
        self.crash(node);
        let name = self.nodes[node].tracker.node().to_owned();
        self.add_node(&name)
    }

    /// Redis restarted without persistence.
    pub fn wipe_store(&mut self) {
        self.store.clear();
        self.wipes.push(self.transitions.len());
    }

    /// Asks the store a question directly.
    pub fn query(&mut self, query: &Query) -> Answer {
        let op = query.op(&self.schema(), rollcall_core::op::Token(0));
        let reply = self.store.run(self.now, &op);
        query.parse(&reply).expect("the model answers reads")
    }

    /// The fields every node that is not crashed wants counted, summed:
    /// the ground truth the store must converge to.
    pub fn truth(&self) -> BTreeMap<String, u64> {
        let mut sum = BTreeMap::new();
        for n in self.nodes.iter().filter(|n| n.state != NodeState::Crashed) {
            if n.tracker.is_closed() {
                continue;
            }
            for (field, count) in n.tracker.local_fields() {
                *sum.entry(field).or_default() += u64::from(count);
            }
        }
        sum
    }

    /// A recording node's trace (header and inputs) and the output lines it
    /// produced live, each line ending in `\n`.
    pub fn trace_of(&mut self, node: usize) -> Option<(String, String)> {
        let (recorder, out) = self.nodes[node].trace.as_mut()?;
        let lines = recorder.take();
        let trace: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let output: String = out.iter().map(|l| format!("{l}\n")).collect();
        Some((trace, output))
    }

    /// Invariant violations of the store right now.
    pub fn violations(&self) -> Vec<String> {
        rollcall_core::invariants::check(&self.store.dump(), &self.schema())
    }
}
