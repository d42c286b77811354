"use strict";
// The JS/WASM boundary of the installed package, both paths: replies in as
// JSON text (normalise, JSON.stringify: what the package sends) or as the
// client's values (replyValue, read in Rust with js-sys); outputs out as
// JSON text (the default) or as objects (valueOutputs, serde-wasm-bindgen).
// Both must give the core the same reply and the host the same output.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { createRequire } = require("node:module");
const path = require("node:path");
const { APP, requireRollcall } = require("./helpers");

const raw = createRequire(path.join(APP, "package.json"))("rollcall/wasm");
const { normalise } = requireRollcall();

/** A big-number wrapper, as some clients resolve one: an own toString. */
class Wrapped {
  /** @param {string} digits */
  constructor(digits) {
    this.digits = digits;
  }
  toString() {
    return this.digits;
  }
}

const REPLIES = [
  ["nil", null],
  ["undefined", undefined],
  ["an integer", 42],
  ["a negative integer", -7],
  ["a large safe integer", 2 ** 53 - 1],
  ["a float (truncated)", 3.75],
  ["a negative float", -2.5],
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["a bigint", 12345678901234n],
  ["a string", "OK"],
  ["an empty string", ""],
  ["a unicode string", "zoë 🙂 名前"],
  ["true", true],
  ["false", false],
  ["a Buffer", Buffer.from("bytes ü")],
  ["a Uint8Array", new TextEncoder().encode("plain")],
  ["an Error", new Error("ERR boom")],
  ["a flat array", ["OK", 1, null, "x"]],
  ["a nested array", [["a", [1, [2, ["deep"]]]], [], [null]]],
  ["a Set (RESP3)", new Set(["a", "b", 3])],
  ["a Map (RESP3)", new Map([["k1", 1], ["k2", ["v", 2]]])],
  ["an object map (RESP3 node-redis)", { field: "value", n: 3, list: [1, "2"] }],
  ["an empty object", {}],
  ["a verbatim-string wrapper", new Wrapped("txt:hello")],
  ["an array of everything", [Buffer.from("b"), new Set([1]), new Map([["m", null]]), { o: true }, 9.9]],
];

test("a reply read in place is the reply the JSON path gives", () => {
  for (const [name, value] of REPLIES) {
    // What the JSON path hands the core: the normalised value's JSON.
    const viaJson = JSON.parse(JSON.stringify(normalise(value)));
    assert.deepEqual(JSON.parse(raw.replyJson(value)), viaJson, name);
  }
});

test("a failed call reads as an error reply", () => {
  assert.deepEqual(JSON.parse(raw.replyJson(new Error("rollcall: the store did not answer"))), {
    error: "rollcall: the store did not answer",
  });
  // A RangeError is an Error too.
  assert.deepEqual(JSON.parse(raw.replyJson(new RangeError("r"))), { error: "r" });
});

/**
 * Feeds one workload to a tracker: connects, rooms, data, disconnects,
 * ticks and the flushes it asks for; returns its outputs, JSON-parsed when
 * they are text.
 * @param {boolean} values
 */
function outputs(values) {
  const t = new raw.RawTracker(JSON.stringify({ prefix: "b" }), "n1", true, 7);
  t.valueOutputs = values;
  assert.equal(t.valueOutputs, values);
  const seen = [];
  const take = (out) => {
    if (out === undefined) return;
    assert.equal(typeof out, values ? "object" : "string");
    seen.push(values ? out : JSON.parse(out));
  };
  let now = 1_000;
  take(t.tick(now));
  take(t.flush(now));
  for (let i = 0; i < 40; i++) {
    now += 3;
    take(t.connect(now, `s${i}`, i % 5 === 0 ? undefined : `u${i % 7}`, i % 2 ? "/" : "/chat"));
    take(t.join(now, `s${i}`, `room${i % 3}`));
    if (i % 4 === 0) take(t.setData(now, `s${i}`, JSON.stringify({ status: "away", i })));
    take(t.flush(now));
  }
  // A refused input: a warning in the output, not an exception.
  take(t.connect(now, "s1", "u1", "/"));
  for (let i = 0; i < 40; i += 3) {
    now += 5;
    take(t.disconnect(now, `s${i}`));
    take(t.flush(now));
  }
  take(t.tick(now + 60_000));
  take(t.flush(now + 60_000));
  take(t.shutdown(now + 60_001));
  take(t.flush(now + 60_001));
  return seen;
}

test("outputs as objects are the outputs as JSON, event for event", () => {
  const asValues = outputs(true);
  const asJson = outputs(false);
  assert.ok(asJson.length > 40, `${asJson.length} outputs`);
  assert.ok(asJson.some((o) => o.events && o.events.some((e) => e.type === "user_updated")));
  assert.ok(asJson.some((o) => o.warnings));
  assert.deepEqual(asValues, asJson);
});

test("Redis mode: ops come out as objects and replies go in as values", () => {
  const t = new raw.RawTracker(JSON.stringify({ prefix: "b" }), "n1", false, 7);
  assert.equal(t.valueOutputs, false, "JSON text by default");
  t.valueOutputs = true;
  const first = t.tick(1);
  assert.equal(first.ops[0].script, "register");
  assert.ok(Array.isArray(first.ops[0].keys) && Array.isArray(first.ops[0].args));
  // The client failed: the host hears it once, as it does through JSON.
  const out = t.replyValue(2, first.ops[0].token, new Error("connection lost"));
  assert.equal(out.failed, "connection lost");
  assert.ok(out.events.some((e) => e.type === "store_error"));
  // An unknown token is a host bug: thrown, as from reply().
  assert.throws(() => t.replyValue(3, 999, null), /token/);
});
