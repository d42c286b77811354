//! rollcall-tools-wasm: what the npm package `rollcall` ships beside its
//! hot path, in a module of its own (`rollcall_tools_bg.wasm`) so that a
//! running server never loads it.
//!
//! [`replay`] re-runs recorded traces for JavaScript (`Replayer`,
//! `replay`, `replaySession`); [`abi`] is the same as plain
//! bytes-in/bytes-out exports for wasmtime (`rollcall replay --engine
//! wasm`, no JS); [`keys`] classifies Redis keys (for the Node tests).
//! Both engines wrap the core's replayers, compiled from the same core in
//! the same build as the hot path's `rollcall_wasm_bg.wasm`.

pub mod abi;
pub mod keys;
pub mod replay;
