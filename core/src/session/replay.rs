//! A trace replayed through a session, so the golden traces hold every
//! host's behaviour too (the input policy, readiness, the armed timer),
//! not only the tracker's: one line per input, the session's output.
//!
//! The replay runs the session with a remote store: the replies a trace
//! holds are its inputs, whichever store gave them live.

use crate::trace::{Entry, Header, TraceError};

use super::Session;

/// Replays `trace` (the format of `rollcall_core::trace`) through a
/// session: per input line, the session's output as compact JSON (`{}`
/// when there is nothing to do), or `{"error": ...}` for an input the
/// session refuses. Every line ends in `\n`.
pub fn replay(trace: &str) -> Result<String, TraceError> {
    let mut lines = trace.lines();
    let header = Header::parse(lines.next().ok_or(TraceError {
        line: 1,
        message: "the trace is empty".to_owned(),
    })?)?;
    let mut session =
        Session::new(header.config, &header.node, header.nonce, false).map_err(|e| TraceError {
            line: 1,
            message: format!("bad header: {e}"),
        })?;
    let mut out = String::new();
    for (i, line) in lines.enumerate() {
        let entry = Entry::parse(line, i + 2)?;
        let json = match session.feed(entry.at, entry.input) {
            Ok(_) => serde_json::to_string(session.output()).expect("plain data serializes"),
            Err(e) => crate::trace::step_line(&Err(e)),
        };
        session.clear_output();
        out.push_str(&json);
        out.push('\n');
    }
    Ok(out)
}
