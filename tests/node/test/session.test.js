"use strict";
// The core's session through the installed package's raw binding
// (`rollcall/wasm`): the outputs Presence acts on, readiness and the policy
// for inputs the core ignores, as the shipped .wasm produces them.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { createRequire } = require("node:module");
const path = require("node:path");
const { APP } = require("./helpers");

const raw = createRequire(path.join(APP, "package.json"))("rollcall/wasm");
const CONFIG = JSON.stringify({ ttl_ms: 3000, heartbeat_ms: 1000, reap_ms: 1000 });

/** Outputs are JSON text (the default; `valueOutputs = true`: objects). */
const parse = (out) => (typeof out === "string" ? JSON.parse(out) : out);

/** Feeds one input and, when asked to, flushes: both outputs. */
function step(t, now, feed) {
  const first = feed();
  const out = first === undefined ? {} : parse(first);
  if (out.flush !== true) return out;
  const second = t.flush(now);
  return { ...out, ...(second === undefined ? {} : parse(second)) };
}

test("single-server mode: ready once registered, redundant inputs are warnings, bad ids throw", () => {
  const t = new raw.RawTracker(CONFIG, "n1", true, 7);
  const first = step(t, 1000, () => t.tick(1000));
  assert.equal(first.ready, true, JSON.stringify(first));
  assert.equal(typeof first.tick, "number");
  const online = step(t, 1001, () => t.connect(1001, "s1", "ann", "/"));
  assert.deepEqual(online.events.map((e) => e.type), ["user_online", "user_online"]);
  assert.equal(online.ready, undefined, "ready is said once");
  const again = step(t, 1002, () => t.connect(1002, "s1", "ann", "/"));
  assert.deepEqual(again, { warnings: ['rollcall: ignored: socket "s1" is already connected'] });
  const gone = step(t, 1003, () => t.disconnect(1003, "nobody"));
  assert.deepEqual(gone, { warnings: ['rollcall: ignored: socket "nobody" is not connected'] });
  assert.throws(() => t.connect(1004, "", "ann", "/"), /empty/);
  assert.equal(t.readEmbedded(1005, "sockets"), "1");
});

test("Redis mode: the first registration's failure is said once, with the store's message", () => {
  const t = new raw.RawTracker(CONFIG, "n1", false, 7);
  const first = parse(t.tick(0));
  const [op] = first.ops;
  assert.equal(op.script, "register");
  const out = parse(t.reply(1, op.token, JSON.stringify({ error: "NOPERM no scripts" })));
  assert.equal(out.failed, "NOPERM no scripts", JSON.stringify(out));
  assert.equal(out.ready, undefined);
  assert.ok(out.events.some((e) => e.type === "store_error"), JSON.stringify(out));
});
