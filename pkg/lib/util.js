"use strict";
// Small shared helpers of the host.

/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_ID_BYTES = 256;

/** Milliseconds on a clock that never goes back (timers only; leases use Redis' clock). */
function now() {
  return Math.floor(performance.timeOrigin + performance.now());
}

/** @param {string} s */
function tooLong(s) {
  return s.length > MAX_ID_BYTES / 3 && Buffer.byteLength(s) > MAX_ID_BYTES;
}

/** @param {unknown} err */
function message(err) {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** @param {string} text */
function warn(text) {
  process.emitWarning(`rollcall: ${text}`, "RollcallWarning");
}

/**
 * `promise`, or a rejection with `text` after `ms`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} text
 * @returns {Promise<T>}
 */
function timed(promise, ms, text) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  /** @type {Promise<never>} */
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(text)), ms);
    timer.unref();
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

module.exports = { MAX_TIMER_MS, MAX_ID_BYTES, now, tooLong, message, warn, timed };
