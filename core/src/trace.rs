//! Traces: what a host fed one tracker, recorded as JSON Lines, and their
//! replay. The same trace replays to byte-identical output on every engine
//! (native, the shipped `.wasm` under wasmtime, the npm package in Node).
//!
//! A trace is a header line, then one line per call of [`Tracker::handle`]:
//!
//! ```text
//! {"rollcall_trace":1,"core":"0.1.0","node":"n1","config":{"prefix":"rollcall",...}}
//! {"at":1000,"input":{"type":"tick"}}
//! {"at":1000,"input":{"type":"reply","token":1,"reply":["OK","1",0]}}
//! {"at":1004,"input":{"type":"connect","sid":"s1","user":"ann","namespace":"/"}}
//! ```
//!
//! Replies are inputs like any other, so a trace holds everything the host
//! fed back. The replay output has one line per input line, in a canonical
//! encoding (fixed field order, integers only, no maps): two outputs compare
//! with `cmp`.
//!
//! ```text
//! {"ops":[...],"events":[...],"next_tick":1500}
//! {"error":"socket \"s9\" is not connected"}
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::op::Millis;
use crate::tracker::{Input, Step, Tracker};

/// The trace format version this core writes and reads.
pub const FORMAT: u32 = 1;

/// The first line of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version: [`FORMAT`].
    pub rollcall_trace: u32,
    /// The version of rollcall-core that recorded it (informative).
    pub core: String,
    /// The node id of the tracker recorded.
    pub node: String,
    /// The tracker's nonce ([`Tracker::with_nonce`]); absent in old traces.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonce: u64,
    /// The options the tracker ran with.
    pub config: Config,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Header {
    /// The header of a tracker of `node` with `config` and no nonce.
    pub fn new(config: &Config, node: &str) -> Header {
        Header {
            rollcall_trace: FORMAT,
            core: env!("CARGO_PKG_VERSION").to_owned(),
            node: node.to_owned(),
            nonce: 0,
            config: config.clone(),
        }
    }

    /// The header of a trace of `tracker`, nonce included.
    pub fn of(tracker: &Tracker) -> Header {
        Header {
            nonce: tracker.nonce(),
            ..Header::new(tracker.config(), tracker.node())
        }
    }

    /// The header as one JSON line (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a header always serializes")
    }
}

/// One recorded call: the host's time and the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// When the input was fed (the host's milliseconds).
    pub at: Millis,
    /// The input.
    pub input: Input,
}

/// One recorded input as a JSON line (no newline): what a recorder writes
/// before handing the input to the tracker.
pub fn input_line(at: Millis, input: &Input) -> String {
    serde_json::to_string(&EntryRef { at, input }).expect("an input always serializes")
}

#[derive(Serialize)]
struct EntryRef<'a> {
    at: Millis,
    input: &'a Input,
}

/// The canonical output line of one step (no newline).
pub fn step_line(result: &Result<Step, crate::tracker::InputError>) -> String {
    match result {
        Ok(step) => serde_json::to_string(step).expect("a step always serializes"),
        Err(e) => serde_json::to_string(&ErrorLine {
            error: e.to_string(),
        })
        .expect("an error always serializes"),
    }
}

#[derive(Serialize)]
struct ErrorLine {
    error: String,
}

/// A trace that cannot be replayed: which line (1-based) and why; serde's
/// message names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    /// The line, counted from 1 (the header first).
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trace line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for TraceError {}

/// Replays a trace line by line. Engines wrap this one type, so they can
/// only differ in how they run it, never in what it does.
#[derive(Debug)]
pub struct Replayer {
    tracker: Tracker,
    line: usize,
}

impl Replayer {
    /// Starts from the header line.
    pub fn new(header: &str) -> Result<Replayer, TraceError> {
        let header = Header::parse(header)?;
        let tracker =
            Tracker::with_nonce(header.config, &header.node, header.nonce).map_err(|e| {
                TraceError {
                    line: 1,
                    message: format!("bad header: {e}"),
                }
            })?;
        Ok(Replayer { tracker, line: 1 })
    }

    /// Feeds one input line; returns its output line (no newline). A line
    /// that is not a valid entry is an error; an input the tracker refuses
    /// is an output line like any other.
    pub fn step(&mut self, line: &str) -> Result<String, TraceError> {
        self.line += 1;
        let entry = Entry::parse(line, self.line)?;
        Ok(step_line(&self.tracker.handle(entry.at, entry.input)))
    }

    /// The tracker the trace drives, as it stands after the last line.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }
}

impl Header {
    /// Reads a trace's first line, in a format this core replays.
    pub fn parse(line: &str) -> Result<Header, TraceError> {
        let fail = |message: String| TraceError { line: 1, message };
        let header: Header =
            serde_json::from_str(line.trim_end()).map_err(|e| fail(format!("bad header: {e}")))?;
        if header.rollcall_trace != FORMAT {
            return Err(fail(format!(
                "trace format {} is not supported (this core reads {FORMAT})",
                header.rollcall_trace
            )));
        }
        Ok(header)
    }
}

impl Entry {
    /// Reads input line `line` (counted from 1, the header first).
    pub fn parse(text: &str, line: usize) -> Result<Entry, TraceError> {
        serde_json::from_str(text.trim_end()).map_err(|e| TraceError {
            line,
            message: e.to_string(),
        })
    }
}

/// Replays a whole trace held in memory: the output, one line per input
/// line, each ending in `\n`. Every engine splits a trace the same way:
/// at `\n` (a `\r` before it is dropped), the last line needing no `\n`.
pub fn replay(trace: &str) -> Result<String, TraceError> {
    let mut lines = trace.lines();
    let header = lines.next().ok_or(TraceError {
        line: 1,
        message: "the trace is empty".to_owned(),
    })?;
    let mut replayer = Replayer::new(header)?;
    let mut out = String::new();
    for line in lines {
        out.push_str(&replayer.step(line)?);
        out.push('\n');
    }
    Ok(out)
}

/// Records a trace in memory; the host writes the lines where it likes (a
/// file, a stream). With `outputs`, the output line of every step too, so a
/// replay can be checked against what the node did live.
#[derive(Debug, Default)]
pub struct Recorder {
    lines: Vec<String>,
    outputs: Option<Vec<String>>,
}

impl Recorder {
    /// A recorder of inputs only, its header first.
    pub fn new(config: &Config, node: &str) -> Recorder {
        Recorder {
            lines: vec![Header::new(config, node).to_line()],
            outputs: None,
        }
    }

    /// A recorder for `tracker`, before its first input (nonce included).
    pub fn of(tracker: &Tracker) -> Recorder {
        Recorder {
            lines: vec![Header::of(tracker).to_line()],
            outputs: None,
        }
    }

    /// Keeps the output line of every step too.
    pub fn with_outputs(mut self) -> Recorder {
        self.outputs = Some(Vec::new());
        self
    }

    /// Records an input, before the tracker handles it.
    pub fn record(&mut self, at: Millis, input: &Input) {
        self.lines.push(input_line(at, input));
    }

    /// Records what the tracker made of the last input (kept only when
    /// asked for outputs).
    pub fn record_step(&mut self, result: &Result<Step, crate::tracker::InputError>) {
        if let Some(outputs) = &mut self.outputs {
            outputs.push(step_line(result));
        }
    }

    /// Whether input lines wait to be taken.
    pub fn has_lines(&self) -> bool {
        !self.lines.is_empty()
    }

    /// The lines recorded since the last call.
    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }

    /// The input lines since the last take, each ending in `\n`.
    pub fn take_text(&mut self) -> Option<String> {
        joined(&mut self.lines)
    }

    /// The output lines since the last take, each ending in `\n`.
    pub fn take_output_text(&mut self) -> Option<String> {
        joined(self.outputs.as_mut()?)
    }
}

fn joined(lines: &mut Vec<String>) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines.drain(..) {
        text.push_str(&line);
        text.push('\n');
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Keyspace;

    /// A small live run, recorded; its replay must give what it gave live.
    #[test]
    fn a_recorded_run_replays_to_the_same_steps() {
        let config = Config::default();
        let mut t = Tracker::new(config.clone(), "n1").unwrap();
        let mut ks = Keyspace::new();
        let mut rec = Recorder::new(&config, "n1");
        let mut live_out = String::new();
        let feed = |t: &mut Tracker, rec: &mut Recorder, out: &mut String, at, input: Input| {
            rec.record(at, &input);
            let r = t.handle(at, input);
            out.push_str(&step_line(&r));
            out.push('\n');
            r
        };
        let inputs = [
            Input::Tick,
            Input::Connect {
                sid: "s1".into(),
                user: Some("ann".into()),
                namespace: "/".into(),
            },
            Input::Disconnect { sid: "nope".into() },
        ];
        for (i, input) in inputs.into_iter().enumerate() {
            let at = 1_000 + i as u64;
            let mut queue = match feed(&mut t, &mut rec, &mut live_out, at, input) {
                Ok(step) => step.ops,
                Err(_) => continue,
            };
            while let Some(op) = queue.pop() {
                let reply = ks.run(at, &op);
                let input = Input::Reply {
                    token: op.token,
                    reply,
                };
                queue.extend(
                    feed(&mut t, &mut rec, &mut live_out, at, input)
                        .unwrap()
                        .ops,
                );
            }
        }
        let trace = rec.take().join("\n");
        assert_eq!(replay(&trace).unwrap(), live_out);
        assert!(live_out.contains(r#"{"error":"socket \"nope\" is not connected"}"#));
    }

    #[test]
    fn bad_lines_name_their_line_and_field() {
        let header = Header::new(&Config::default(), "n").to_line();
        let trace = format!(
            "{header}\n{{\"at\":1,\"input\":{{\"type\":\"tick\"}}}}\n{{\"at\":2,\"input\":{{\"type\":\"connect\",\"sid\":\"s\"}}}}\n"
        );
        let e = replay(&trace).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("namespace"), "{e}");
        let e = replay("{\"rollcall_trace\":9}").unwrap_err();
        assert_eq!(e.line, 1);
        let e = replay(&format!("{header}\nnot json")).unwrap_err();
        assert_eq!(e.line, 2);
        let e = replay(&format!(
            "{header}\n{{\"at\":-1,\"input\":{{\"type\":\"tick\"}}}}"
        ))
        .unwrap_err();
        assert_eq!(e.line, 2);
    }
}
