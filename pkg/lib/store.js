"use strict";
// The app's Redis client: detection, the script calls, reply normalising.

const wasm = require("../rollcall_wasm.js");
const { message } = require("./util.js");

/** @typedef {{ name: string, sha: string, source: string }} Script */
/** @type {Map<string, Script>} */
const SCRIPTS = new Map(JSON.parse(wasm.scripts()).map((/** @type {Script} */ s) => [s.name, s]));

/**
 * One command to the store: its arguments and the first key (for clusters).
 * @typedef {(args: string[], firstKey?: string) => Promise<unknown>} Send
 */

/**
 * A script call the core asks for.
 * @typedef {{ script: string, token: number, keys: string[], args: string[] }} Op
 */

/**
 * Duck-types the app's Redis client into `send(args, firstKey) -> Promise`.
 * @param {any} client
 * @returns {Send}
 */
function storeOf(client) {
  if (typeof client !== "object" && typeof client !== "function") {
    throw new TypeError("rollcall: redis must be a node-redis or ioredis client");
  }
  if (typeof client.call === "function") {
    // ioredis (Redis or Cluster). It has a sendCommand too, of another kind:
    // test for call first.
    return (args) => client.call(...args);
  }
  if (typeof client.sendCommand === "function") {
    // node-redis. Its cluster client takes (firstKey, isReadonly, args).
    const cluster = client.masters !== undefined && typeof client.getSlotRandomNode === "function";
    return cluster
      ? (args, key) => client.sendCommand(key, false, args)
      : (args) => client.sendCommand(args);
  }
  throw new TypeError(
    "rollcall: redis must be a node-redis client (with sendCommand) or an ioredis client (with call)",
  );
}

/**
 * A reply in the core's form.
 * @typedef {null | number | string | unknown[] | { error: string }} Reply
 */

/**
 * A reply of node-redis or ioredis, RESP2 or RESP3, in the core's form:
 * null | integer | string | array | {error}. The same rules are written in
 * Rust for `replyValue` (wasm/src/value.rs); boundary.test.js holds the two
 * to one answer.
 * @param {unknown} v
 * @returns {Reply}
 */
function normalise(v) {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "number":
      return Number.isInteger(v) ? v : Math.trunc(v);
    case "bigint":
      return Number(v);
    case "string":
      return v;
    case "boolean":
      return v ? 1 : null;
    default:
      break;
  }
  if (Array.isArray(v)) return v.map(normalise);
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("utf8");
  if (v instanceof Error) return { error: v.message };
  if (v instanceof Set) return [...v].map(normalise);
  if (v instanceof Map) {
    /** @type {unknown[]} */
    const flat = [];
    for (const [k, x] of v) flat.push(normalise(k), normalise(x));
    return flat;
  }
  if (typeof v === "object") {
    if (typeof v.toString === "function" && v.toString !== Object.prototype.toString) {
      return String(v); // a verbatim string or a big number wrapper
    }
    /** @type {unknown[]} */
    const flat = [];
    const obj = /** @type {{ [key: string]: unknown }} */ (v);
    for (const k of Object.keys(obj)) flat.push(k, normalise(obj[k]));
    return flat;
  }
  return String(v);
}

/**
 * A reply (or the Error of a failed call) as the JSON text the core reads
 * (`reply`, `parseAnswer`, `parseFeed`). The binding also takes the value
 * itself (`replyValue`, read with js-sys); JSON text measured as fast or
 * faster (BENCHMARKS.md 14), so the package sends that.
 * @param {unknown} v
 * @returns {string}
 */
function replyText(v) {
  return JSON.stringify(v instanceof Error ? { error: v.message } : normalise(v));
}

/**
 * Runs a script call: EVALSHA, with EVAL when Redis does not know the
 * script (yet, or any more). The reply is the client's, as it resolved.
 * @param {Send} send
 * @param {Op} op
 * @returns {Promise<unknown>}
 */
async function exec(send, op) {
  const script = /** @type {Script} */ (SCRIPTS.get(op.script));
  const tail = [String(op.keys.length), ...op.keys, ...op.args];
  const key = op.keys[0];
  try {
    return await send(["EVALSHA", script.sha, ...tail], key);
  } catch (e) {
    if (!message(e).includes("NOSCRIPT")) throw e;
  }
  return await send(["EVAL", script.source, ...tail], key);
}

module.exports = { storeOf, normalise, replyText, exec };
