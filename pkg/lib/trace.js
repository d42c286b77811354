"use strict";
// Trace recording: where the lines go.

const fs = require("node:fs");
const { finished } = require("node:stream");
const { message } = require("./util.js");

/** @typedef {{ path: string | URL, stream?: undefined } | { stream: NodeJS.WritableStream, path?: undefined }} TraceTarget */

/**
 * Checks `trace` / `traceOutput`: a file path (string or file: URL) or a
 * writable stream. Returns null when not given.
 * @param {unknown} value
 * @param {string} option
 * @returns {TraceTarget | null}
 */
function traceTargetOf(value, option) {
  if (value === undefined || value === null) return null;
  if ((typeof value === "string" && value.length > 0) || value instanceof URL) return { path: value };
  if (typeof value === "object") {
    const s = /** @type {{ write?: unknown, on?: unknown, writableEnded?: unknown, destroyed?: unknown }} */ (value);
    if (typeof s.write === "function" && typeof s.on === "function") {
      if (s.writableEnded === true || s.destroyed === true) {
        throw new TypeError(`rollcall: ${option} is a stream that has already ended`);
      }
      return { stream: /** @type {NodeJS.WritableStream} */ (value) };
    }
  }
  throw new TypeError(
    `rollcall: ${option} must be a file path or a writable stream, got ${
      typeof value === "string" ? "an empty string" : typeof value
    }`,
  );
}

/** Where a recording goes: a stream, opened here from a path (and then ended on close) or the user's. */
class TraceSink {
  /**
   * @param {TraceTarget} target
   * @param {string} option
   */
  constructor(target, option) {
    this.option = option;
    this.failed = false;
    /** @type {NodeJS.WritableStream} */
    this.stream;
    if (target.stream) {
      this.stream = target.stream;
      this.owned = false;
    } else {
      // Opened now, so a bad path fails attach() at once.
      let fd;
      try {
        fd = fs.openSync(target.path, "w");
      } catch (e) {
        throw new Error(`rollcall: cannot record ${option} to ${String(target.path)}: ${message(e)}`);
      }
      this.stream = fs.createWriteStream(target.path, { fd });
      this.owned = true;
    }
    /** @param {unknown} err */
    this.onError = (err) => {
      if (this.failed) return;
      this.failed = true;
      process.emitWarning(
        `rollcall: recording ${this.option} failed, the trace is incomplete: ${message(err)}`,
        "RollcallWarning",
      );
    };
    this.stream.on("error", this.onError);
  }

  /** @param {string} text */
  write(text) {
    if (!this.failed) this.stream.write(text);
  }

  /**
   * Ends a stream opened here (resolves once it is written); leaves the user's open.
   * @returns {Promise<void>}
   */
  end() {
    const stream = this.stream;
    if (!this.owned) {
      stream.off("error", this.onError);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      finished(stream, () => resolve());
      stream.end();
    });
  }

  /** attach() failed after the files were opened. */
  discard() {
    if (this.owned) /** @type {fs.WriteStream} */ (this.stream).destroy();
    else this.stream.off("error", this.onError);
  }
}

/**
 * Whether two targets are the same file or stream.
 * @param {TraceTarget} a
 * @param {TraceTarget} b
 */
function sameTarget(a, b) {
  return a.stream ? a.stream === b.stream : String(a.path) === String(b.path);
}

module.exports = { traceTargetOf, TraceSink, sameTarget };
