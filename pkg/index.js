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

/**
 * Replays a trace one line at a time: `new Replayer(headerLine)`, then
 * `step(line)` per line, which returns the output line of that step. Throws
 * `trace line N: ...` for a malformed line. The CLI: `rollcall-replay`.
 * The replay module (rollcall_tools_bg.wasm) loads with the first one: a
 * server that never replays never loads it.
 */
class Replayer {
  /** @type {{ step(line: string): string, free(): void }} */
  #inner;

  /** @param {string} header */
  constructor(header) {
    const tools = require("./rollcall_tools.js");
    this.#inner = new tools.Replayer(header);
  }

  /**
   * @param {string} line
   * @returns {string}
   */
  step(line) {
    return this.#inner.step(line);
  }

  /** Frees the replay's memory in the module now, not at collection. */
  free() {
    this.#inner.free();
  }
}

module.exports = { Presence, Replayer, normalise };
module.exports.default = module.exports;
