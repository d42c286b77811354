//! A plain bytes-in/bytes-out ABI for running the shipped `.wasm` without JS
//! (wasmtime: `rollcall replay --engine wasm`). These exports are
//! `extern "C"` with fixed names; wasm-bindgen leaves them as they are.
//!
//! Protocol: the host asks for a buffer with `rollcall_alloc(len)`, writes
//! UTF-8 into it, calls `rollcall_replay_open` with the header line or
//! `rollcall_replay_step` with an input line (each takes the buffer and
//! frees it), then reads the result from `rollcall_out_ptr()` /
//! `rollcall_out_len()`. A call returns 0 when the result is an output line
//! and 1 when it is an error message.

use std::cell::RefCell;

use rollcall_core::trace::Replayer;

struct State {
    replayer: Option<Replayer>,
    out: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State { replayer: None, out: Vec::new() }) };
}

/// A buffer of `len` bytes for the host to fill; it is freed by the call it
/// is passed to.
#[unsafe(no_mangle)]
pub extern "C" fn rollcall_alloc(len: usize) -> *mut u8 {
    let mut buf = Vec::<u8>::with_capacity(len.max(1));
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

/// Takes back a buffer from [`rollcall_alloc`] and reads it as UTF-8.
///
/// # Safety
/// `ptr` and `len` come from one `rollcall_alloc(len)` call, filled with
/// `len` bytes, and are not used again.
unsafe fn take_input(ptr: *mut u8, len: usize) -> Result<String, String> {
    let bytes = unsafe { Vec::from_raw_parts(ptr, len, len.max(1)) };
    String::from_utf8(bytes).map_err(|e| format!("input is not UTF-8: {e}"))
}

fn finish(result: Result<String, String>) -> i32 {
    STATE.with_borrow_mut(|s| match result {
        Ok(line) => {
            s.out = line.into_bytes();
            0
        }
        Err(message) => {
            s.out = message.into_bytes();
            1
        }
    })
}

/// Starts a replay from a trace's header line.
///
/// # Safety
/// As for [`take_input`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rollcall_replay_open(ptr: *mut u8, len: usize) -> i32 {
    let result = unsafe { take_input(ptr, len) }.and_then(|header| {
        let replayer = Replayer::new(&header).map_err(|e| e.to_string())?;
        STATE.with_borrow_mut(|s| s.replayer = Some(replayer));
        Ok(String::new())
    });
    finish(result)
}

/// Replays one input line; the output line is the result.
///
/// # Safety
/// As for [`take_input`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rollcall_replay_step(ptr: *mut u8, len: usize) -> i32 {
    let result = unsafe { take_input(ptr, len) }.and_then(|line| {
        STATE.with_borrow_mut(|s| match s.replayer.as_mut() {
            Some(r) => r.step(&line).map_err(|e| e.to_string()),
            None => Err("no replay is open: call rollcall_replay_open first".to_owned()),
        })
    });
    finish(result)
}

/// Where the last result is.
#[unsafe(no_mangle)]
pub extern "C" fn rollcall_out_ptr() -> *const u8 {
    STATE.with_borrow(|s| s.out.as_ptr())
}

/// How long the last result is.
#[unsafe(no_mangle)]
pub extern "C" fn rollcall_out_len() -> usize {
    STATE.with_borrow(|s| s.out.len())
}
