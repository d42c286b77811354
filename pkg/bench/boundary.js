"use strict";
// Item 14: the JS/WASM boundary, each direction measured both ways in one
// run. Replies in: the client's value read in place by js-sys
// (`replyValue`) against the JSON path (`normalise`, `JSON.stringify`,
// serde_json: `reply`). Outputs out: objects from serde-wasm-bindgen
// against JSON text for `JSON.parse` (`valueOutputs`).
//
// Record once: a raw tracker in Redis mode on a real redis-server, fed a
// churn of connects, joins and disconnects at a fake clock, every op run at
// once (no coalescing: one write and one reply per input, the most
// crossings an input can cost). The replies are kept as node-redis
// resolved them. Then replay: fresh trackers with the same node, nonce and
// clock are fed the same inputs and the recorded replies (the core is
// deterministic, so they ask for the same ops with the same tokens), for
// each of the four combinations, alternating, REPS times.

const redis = require("redis");
const wasm = require("../rollcall_wasm.js");
const { normalise } = require("..");
const L = require("./lib.js");

const INPUTS = Number(process.env.INPUTS || 6000);
const REPS = Number(process.env.REPS || 9);
const CONFIG = JSON.stringify({ prefix: "boundary" });

/** The workload: connect, join, disconnect, one socket at a time. */
function workload() {
  const inputs = [];
  for (let i = 0; inputs.length < INPUTS; i++) {
    const sid = `sock${String(i).padStart(16, "0")}`;
    inputs.push(["connect", sid, `user${i % 500}`, i % 2 ? "/" : "/chat"]);
    inputs.push(["join", sid, `room${i % 10}`]);
    if (i >= 100) inputs.push(["disconnect", `sock${String(i - 100).padStart(16, "0")}`]);
  }
  return inputs.slice(0, INPUTS);
}

/** @param {any} t @param {number} at @param {any[]} input */
function feed(t, at, input) {
  switch (input[0]) {
    case "connect":
      return t.connect(at, input[1], input[2], input[3]);
    case "join":
      return t.join(at, input[1], input[2]);
    default:
      return t.disconnect(at, input[1]);
  }
}

const parse = (out) => (typeof out === "string" ? JSON.parse(out) : out);

/**
 * Drives a tracker through the workload; `answer(op)` gives each op's
 * reply (a promise when recording). Returns the replies in order.
 */
async function drive(t, inputs, answer) {
  const replies = [];
  const pending = [];
  const act = (out) => {
    if (out === undefined) return;
    const o = parse(out);
    if (o.ops) pending.push(...o.ops);
  };
  let at = 1_000;
  act(t.tick(at));
  const settle = async () => {
    while (pending.length > 0) {
      const op = pending.shift();
      const reply = await answer(op);
      replies.push(reply);
      act(t.replyValue(at, op.token, reply));
    }
  };
  await settle();
  for (const input of inputs) {
    at += 1;
    act(feed(t, at, input));
    await settle();
  }
  return replies;
}

/** Replays the recorded replies through one combination; ms. */
function replay(inputs, replies, valueReplies, valueOutputs) {
  const t = new wasm.RawTracker(CONFIG, "boundary-node", false, 7);
  t.valueOutputs = valueOutputs;
  let next = 0;
  const pending = [];
  let outputs = 0;
  const act = (out) => {
    if (out === undefined) return;
    outputs++;
    const o = typeof out === "string" ? JSON.parse(out) : out;
    if (o.ops) for (const op of o.ops) pending.push(op);
  };
  const give = (at, op) => {
    const r = replies[next++];
    return valueReplies
      ? t.replyValue(at, op.token, r)
      : t.reply(at, op.token, JSON.stringify(r instanceof Error ? { error: r.message } : normalise(r)));
  };
  const t0 = L.ms();
  let at = 1_000;
  act(t.tick(at));
  while (pending.length > 0) act(give(at, pending.shift()));
  for (const input of inputs) {
    at += 1;
    act(feed(t, at, input));
    while (pending.length > 0) act(give(at, pending.shift()));
  }
  const ms = L.ms() - t0;
  if (next !== replies.length) throw new Error(`replay used ${next} of ${replies.length} replies: the ops differ`);
  t.free();
  return { ms, outputs };
}

async function main() {
  const r = await L.startRedis();
  const client = redis.createClient({ url: r.url });
  client.on("error", () => {});
  await client.connect();
  const inputs = workload();
  const scripts = new Map(JSON.parse(wasm.scripts()).map((s) => [s.name, s]));
  let replies;
  try {
    const t = new wasm.RawTracker(CONFIG, "boundary-node", false, 7);
    replies = await drive(t, inputs, (op) => {
      const s = scripts.get(op.script);
      return client.sendCommand(["EVAL", s.source, String(op.keys.length), ...op.keys, ...op.args]);
    });
    t.free();
  } finally {
    await client.quit().catch(() => {});
    r.stop();
  }
  const combos = {
    json_in_json_out: [false, false],
    value_in_json_out: [true, false],
    json_in_value_out: [false, true],
    value_in_value_out: [true, true],
  };
  const times = Object.fromEntries(Object.keys(combos).map((k) => [k, []]));
  let outputs = 0;
  for (let rep = 0; rep < REPS + 1; rep++) {
    for (const [k, [vin, vout]] of Object.entries(combos)) {
      const res = replay(inputs, replies, vin, vout);
      outputs = res.outputs;
      if (rep) times[k].push(res.ms);
    }
  }
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, L.median(v)]));
  const perCrossing = (ms) => (ms * 1e3) / replies.length;
  const out = {
    inputs: INPUTS,
    replies: replies.length,
    outputs,
    reps: REPS,
    ms: times,
    median_ms: med,
    us_per_reply: Object.fromEntries(Object.entries(med).map(([k, v]) => [k, perCrossing(v)])),
    // Each direction's saving, the other held fixed (both pairs).
    replies_value_over_json: [med.json_in_json_out / med.value_in_json_out, med.json_in_value_out / med.value_in_value_out],
    outputs_value_over_json: [med.json_in_json_out / med.json_in_value_out, med.value_in_json_out / med.value_in_value_out],
  };
  L.save("boundary", out);
  for (const [k, v] of Object.entries(med)) {
    L.log(`boundary: ${k.padEnd(20)} median ${v.toFixed(1)} ms  ${perCrossing(v).toFixed(2)} µs per input+reply`);
  }
  L.log(`boundary: replies as values ${out.replies_value_over_json.map((x) => x.toFixed(2) + "x").join(" / ")} the JSON path's speed; outputs as objects ${out.outputs_value_over_json.map((x) => x.toFixed(2) + "x").join(" / ")}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
