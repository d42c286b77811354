//! Trace replay for JavaScript (`pkg/index.js` `Replayer`, the
//! `rollcall-replay` bin, the Node tests).

use wasm_bindgen::prelude::*;

fn fail(message: String) -> JsError {
    JsError::new(&message)
}

/// Replays a trace (JSON Lines, see `rollcall_core::trace`): the output,
/// one line per input line, byte for byte what every engine produces.
/// Throws with the line and the reason for a malformed trace.
#[wasm_bindgen]
pub fn replay(trace: &str) -> Result<String, JsError> {
    rollcall_core::trace::replay(trace).map_err(|e| fail(e.to_string()))
}

/// Replays a trace through a host session (`rollcall_core::session::replay`):
/// per input line, the session's output as JSON, byte for byte what the
/// native core gives.
#[wasm_bindgen(js_name = replaySession)]
pub fn replay_session(trace: &str) -> Result<String, JsError> {
    rollcall_core::session::replay::replay(trace).map_err(|e| fail(e.to_string()))
}

/// A trace replayed one line at a time: `new Replayer(headerLine)`, then
/// `step(line)` for every following line, which returns that step's output
/// line (no newline). Both throw for a malformed line, with the core's
/// message: `trace line N: ...` (lines counted from 1, the header first).
#[wasm_bindgen(js_name = Replayer)]
pub struct JsReplayer {
    inner: rollcall_core::trace::Replayer,
}

#[wasm_bindgen(js_class = Replayer)]
impl JsReplayer {
    #[wasm_bindgen(constructor)]
    pub fn new(header: &str) -> Result<JsReplayer, JsError> {
        rollcall_core::trace::Replayer::new(header)
            .map(|inner| JsReplayer { inner })
            .map_err(|e| fail(e.to_string()))
    }

    pub fn step(&mut self, line: &str) -> Result<String, JsError> {
        self.inner.step(line).map_err(|e| fail(e.to_string()))
    }
}

/// The version of the core compiled in (the hot path's `coreVersion`).
#[wasm_bindgen(js_name = coreVersion)]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
