//! rollcall-wasm: rollcall-core for JavaScript.
//!
//! [`js`] is the wasm-bindgen API that the npm package `rollcall` (in
//! `pkg/`) wraps in its `Presence` class; [`driver`] is the plain Rust under
//! it: the core's `Session` (which owns the embedded store, the timer,
//! readiness, recording and the input policy) with its outputs as compact
//! JSON, tested natively. Like the core, nothing here reads a clock or draws randomness:
//! the JS side passes the time into every call.
//!
//! The boundary is kept cheap for the hot path (one call per socket event):
//! ids go in as strings, and a call returns `undefined` unless the host has
//! something to do, else one JSON string (ops, events, when to tick).
//!
//! Replay and the key schema live in `rollcall-tools-wasm`, a module of
//! their own: a server never loads them.

pub mod driver;
pub mod js;
pub mod value;
