"use strict";
// The options of Presence.attach: checked here, validated by the core.

const wasm = require("../rollcall_wasm.js");
const { MAX_TIMER_MS, MAX_ID_BYTES, tooLong } = require("./util.js");

/** @param {string} name snake_case */
function camel(name) {
  return name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

/**
 * The core's options (from the core's Config, in its order): the JS name
 * (camelCase), the core's (snake_case) name, and the kind of value.
 * @type {ReadonlyArray<{ js: string, core: string, kind: "string" | "number" }>}
 */
const CORE_OPTIONS = Object.entries(JSON.parse(wasm.configOptions())).map(([core, value]) => ({
  js: camel(core),
  core,
  kind: typeof value === "string" ? "string" : "number",
}));

/** Every option, in the order the "known:" list gives them. */
const KNOWN = new Set([
  "redis",
  "userId",
  "rooms",
  ...CORE_OPTIONS.filter((o) => o.kind === "string").map((o) => o.js),
  "nodeId",
  ...CORE_OPTIONS.filter((o) => o.kind === "number").map((o) => o.js),
  "opTimeoutMs",
  "trace",
  "traceOutput",
  "metricsRegistry",
]);

/** Core option name -> the JS option the user wrote. @type {Map<string, string>} */
const JS_NAME = new Map([
  ...CORE_OPTIONS.map((o) => /** @type {[string, string]} */ ([o.core, o.js])),
  ["node", "nodeId"],
  ["options", "options"],
]);

const CORE_NAMES = new RegExp(
  `\\b(${CORE_OPTIONS.filter((o) => o.core !== o.js).map((o) => o.core).join("|")})\\b`,
  "g",
);

/**
 * Replaces the core's option names in a message with the JS ones.
 * @param {string} text
 */
function jsMessage(text) {
  return text.replace(CORE_NAMES, (m) => JS_NAME.get(m) || m);
}

/**
 * @typedef {{ [key: string]: unknown }} Options
 * @typedef {{ json: string, config: { ttl_ms: number, [key: string]: unknown }, opTimeoutMs: number }} Config
 */

/**
 * Checks the options; returns the core's config (JSON) or throws TypeError / RangeError.
 * @param {unknown} input
 * @returns {Config}
 */
function configOf(input) {
  if (input === undefined || input === null) input = {};
  if (typeof input !== "object") {
    throw new TypeError("rollcall: options must be an object");
  }
  const options = /** @type {Options} */ (input);
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new TypeError(
        `rollcall: unknown option ${JSON.stringify(key)} (known: ${[...KNOWN].join(", ")})`,
      );
    }
  }
  /** @type {{ [key: string]: unknown }} */
  const config = {};
  for (const { js, core, kind } of CORE_OPTIONS) {
    const value = options[js];
    if (value === undefined) continue;
    if (kind === "string") {
      if (typeof value !== "string") {
        throw new TypeError(`rollcall: ${js} must be a string, got ${typeof value}`);
      }
    } else {
      if (typeof value !== "number" || !Number.isInteger(value)) {
        throw new TypeError(`rollcall: ${js} must be a whole number, got ${String(value)}`);
      }
      if (value < 0) throw new RangeError(`rollcall: ${js} must not be negative, got ${value}`);
    }
    config[core] = value;
  }
  // The host's own option: the longest wait for one store call.
  /** @type {number | undefined} */
  let opTimeoutMs;
  if (options.opTimeoutMs !== undefined) {
    const value = options.opTimeoutMs;
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw new TypeError(`rollcall: opTimeoutMs must be a whole number, got ${String(value)}`);
    }
    if (value < 1 || value > MAX_TIMER_MS) {
      throw new RangeError(`rollcall: opTimeoutMs must be between 1 and ${MAX_TIMER_MS} ms, got ${value}`);
    }
    opTimeoutMs = value;
  }
  const json = JSON.stringify(config);
  const bad = wasm.validateConfig(json);
  if (bad !== undefined) {
    const e = JSON.parse(bad);
    const name = JS_NAME.get(e.option) || e.option;
    const Err = e.out_of_range ? RangeError : TypeError;
    throw new Err(`rollcall: ${name} ${jsMessage(e.message)}`);
  }
  const full = { ttl_ms: 10000, ...config };
  const ttlMs = /** @type {number} */ (full.ttl_ms);
  // Default: half the TTL, at most 5 s (as the Rust host's op_timeout).
  if (opTimeoutMs === undefined) opTimeoutMs = Math.min(Math.max(Math.floor(ttlMs / 2), 100), 5000);
  return { json, config: { ...full, ttl_ms: ttlMs }, opTimeoutMs };
}

/**
 * @param {unknown} value
 * @param {string} what
 * @param {boolean} [numbers] numbers are taken too (as their string)
 * @returns {string}
 */
function checkId(value, what, numbers = false) {
  if (numbers && typeof value === "number" && Number.isFinite(value)) value = String(value);
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(`rollcall: ${what} must be a non-empty string`);
  }
  if (tooLong(value)) {
    throw new RangeError(`rollcall: ${what} is longer than ${MAX_ID_BYTES} bytes`);
  }
  return value;
}

/** @param {string} ns */
function namespaceName(ns) {
  return ns.startsWith("/") ? ns : `/${ns}`;
}

/**
 * `{ namespace, room }` -> [namespace | undefined, room | undefined].
 * @param {unknown} scope
 * @param {string} method
 * @param {string | undefined} defaultNamespace
 * @returns {[string | undefined, string | undefined]}
 */
function scopeOf(scope, method, defaultNamespace) {
  if (scope === undefined || scope === null) return [defaultNamespace, undefined];
  if (typeof scope !== "object") {
    throw new TypeError(`rollcall: ${method}() takes an object { namespace, room }`);
  }
  for (const key of Object.keys(scope)) {
    if (key !== "namespace" && key !== "room") {
      throw new TypeError(`rollcall: ${method}(): unknown scope field ${JSON.stringify(key)}`);
    }
  }
  const given = /** @type {{ namespace?: unknown, room?: unknown }} */ (scope);
  /** @type {string | undefined} */
  let namespace;
  /** @type {string | undefined} */
  let room;
  if (given.namespace !== undefined && given.namespace !== null) {
    namespace = namespaceName(checkId(given.namespace, "namespace"));
  }
  if (given.room !== undefined && given.room !== null) {
    room = checkId(given.room, "room");
    namespace = namespace || "/";
  }
  return [namespace === undefined ? defaultNamespace : namespace, room];
}

/** A page's default and largest size, as the core has them. */
const [DEFAULT_PAGE, MAX_PAGE] = Array.from(wasm.pageLimits());

/**
 * `{ limit?, cursor? }` of `members()` -> [limit, cursor | undefined].
 * @param {unknown} options
 * @returns {[number, string | undefined]}
 */
function pageOf(options) {
  if (options === undefined || options === null) return [DEFAULT_PAGE, undefined];
  if (typeof options !== "object") {
    throw new TypeError("rollcall: members() takes its page as an object { limit, cursor }");
  }
  for (const key of Object.keys(options)) {
    if (key !== "limit" && key !== "cursor") {
      throw new TypeError(`rollcall: members(): unknown option ${JSON.stringify(key)}`);
    }
  }
  const given = /** @type {{ limit?: unknown, cursor?: unknown }} */ (options);
  let limit = DEFAULT_PAGE;
  if (given.limit !== undefined) {
    if (typeof given.limit !== "number" || !Number.isInteger(given.limit)) {
      throw new TypeError(`rollcall: members(): limit must be a whole number, got ${String(given.limit)}`);
    }
    if (given.limit < 1 || given.limit > MAX_PAGE) {
      throw new RangeError(`rollcall: members(): limit must be between 1 and ${MAX_PAGE}, got ${given.limit}`);
    }
    limit = given.limit;
  }
  const cursor =
    given.cursor === undefined || given.cursor === null ? undefined : checkId(given.cursor, "members() cursor");
  return [limit, cursor];
}

module.exports = { CORE_OPTIONS, MAX_PAGE, configOf, jsMessage, checkId, scopeOf, pageOf };
