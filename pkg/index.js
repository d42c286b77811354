"use strict";
// rollcall: cluster-wide presence for Socket.IO servers.
//
// The logic lives in rollcall-core (Rust, compiled to rollcall_wasm_bg.wasm):
// a state machine that is told every socket event with the time, and answers
// with Redis script calls to run, events to deliver and when to tick. The
// host is in lib/:
//   lib/presence.js  Presence: feeds the core, acts on its output, reads
//   lib/hooks.js     Socket.IO hooking (namespaces, rooms, sockets, engines)
//   lib/options.js   option checking (the names come from the core's config)
//   lib/store.js     the app's Redis client: detection, script calls, replies
//   lib/trace.js     trace recording sinks
//   lib/util.js      the clock, warnings, id limits

const { Presence } = require("./lib/presence.js");
const { normalise } = require("./lib/store.js");
const wasm = require("./rollcall_wasm.js");

/**
 * Replays a trace one line at a time: `new Replayer(headerLine)`, then
 * `step(line)` per line, which returns the output line of that step. Throws
 * `trace line N: ...` for a malformed line. The CLI: `rollcall-replay`.
 */
const { Replayer } = wasm;

module.exports = { Presence, Replayer, normalise };
module.exports.default = module.exports;
