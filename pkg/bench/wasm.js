"use strict";
// Item 2: the core through WASM in Node, inputs per second, with the
// workload of core/benches/tracker.rs (10,000 sockets: connect, join a room,
// leave it, disconnect = 40,000 inputs; 3 sockets per user, 2 namespaces).
//
//   raw      the package's binding (rollcall/wasm RawTracker), called as
//            pkg/index.js calls it: outputs as JSON text, parsed;
//            raw_single_values: the same with outputs as objects
//            (serde-wasm-bindgen, valueOutputs)
//   presence the public API: Presence.attach() on a real Socket.IO Server,
//            fed by fake sockets that the Server's namespace, adapter and
//            engine emit exactly as socket.io emits its own
//   naive    the same fake sockets into the users article's single-server
//            Map bookkeeping (the JS baseline)
// Single-server mode (embedded store, flushed after the burst) and Redis
// mode (a registered node with one write in flight, so inputs coalesce).

const http = require("node:http");
const { Server } = require("socket.io");
const redis = require("redis");
const wasm = require("../rollcall_wasm.js");
const { Presence } = require("..");
const L = require("./lib.js");

const SOCKETS = 10_000;
const INPUTS = 4 * SOCKETS;
const REPS = Number(process.env.REPS || 9);

const sids = Array.from({ length: SOCKETS }, (_, i) => `sock${String(i).padStart(16, "0")}`);
const users = sids.map((_, i) => `user${Math.floor(i / 3)}`);
const nss = sids.map((_, i) => (i % 2 === 0 ? "/" : "/chat"));
const rooms = sids.map((_, i) => `room${i % 10}`);

function now() {
  return Math.floor(performance.timeOrigin + performance.now());
}

function parse(out) {
  return typeof out === "string" ? JSON.parse(out) : out;
}

/** The binding alone, as pkg/index.js drives it. */
function rawLifecycle(t) {
  const t0 = L.ms();
  for (let i = 0; i < SOCKETS; i++) {
    parse(t.connect(now(), sids[i], users[i], nss[i]));
    parse(t.join(now(), sids[i], rooms[i]));
  }
  for (let i = 0; i < SOCKETS; i++) {
    parse(t.leave(now(), sids[i], rooms[i]));
    parse(t.disconnect(now(), sids[i]));
  }
  return L.ms() - t0;
}

/** Registers a raw tracker on real Redis, then leaves one write in flight. */
async function rawRegistered(client, node) {
  const scripts = new Map(JSON.parse(wasm.scripts()).map((s) => [s.name, s]));
  const t = new wasm.RawTracker(JSON.stringify({ prefix: `raw${node}` }), `raw-${node}`, false);
  const run = async (out) => {
    if (out === undefined) return;
    for (const op of parse(out).ops || []) {
      const s = scripts.get(op.script);
      const reply = await client.sendCommand(["EVAL", s.source, String(op.keys.length), ...op.keys, ...op.args]);
      await run(t.replyValue(now(), op.token, reply));
    }
  };
  await run(t.tick(now()));
  const o = parse(t.connect(now(), "warm", "warm", "/"));
  if (!o.ops || o.ops.length !== 1) throw new Error("expected one write in flight");
  return t;
}

function fakeLifecycle(io) {
  const chat = io.of("/chat");
  const main = io.of("/");
  const sockets = new Array(SOCKETS);
  const t0 = L.ms();
  for (let i = 0; i < SOCKETS; i++) {
    sockets[i] = L.fakeConnect(io, i % 2 === 0 ? main : chat, sids[i], users[i]);
    L.fakeJoin(sockets[i], rooms[i]);
  }
  for (let i = 0; i < SOCKETS; i++) {
    L.fakeLeave(sockets[i], rooms[i]);
    L.fakeDisconnect(sockets[i]);
  }
  return L.ms() - t0;
}

function newIo() {
  const io = new Server(http.createServer());
  io.of("/chat");
  return io;
}

/** The users article's single-server Map, on the same fake sockets. */
function naiveMap(io) {
  const users = new Map();
  const handler = (socket) => {
    const userId = socket.handshake.auth.userId;
    const count = users.get(userId) || 0;
    users.set(userId, count + 1);
    socket.on("disconnect", () => {
      const c = users.get(userId) - 1;
      if (c === 0) users.delete(userId);
      else users.set(userId, c);
    });
  };
  io.of("/").on("connection", handler);
  io.of("/chat").on("connection", handler);
}

async function main() {
  const r = await L.startRedis();
  const client = redis.createClient({ url: r.url });
  client.on("error", () => {});
  await client.connect();
  const times = {
    raw_single: [], raw_single_values: [], raw_redis: [], presence_single: [], presence_redis: [], naive_map: [], harness_only: [],
  };
  try {
    // Warm up the JIT and the WASM once per path.
    for (let rep = 0; rep < REPS + 1; rep++) {
      // raw, single-server (embedded store): the burst, then its flush.
      // Outputs as JSON text, then as objects (the other path).
      for (const [values, into] of [[false, times.raw_single], [true, times.raw_single_values]]) {
        const t = new wasm.RawTracker("{}", `bench${rep}`, true);
        t.valueOutputs = values;
        parse(t.tick(now()));
        const t0 = L.ms();
        rawLifecycle(t);
        parse(t.flush(now()));
        if (rep) into.push(L.ms() - t0);
        t.free();
      }
      // raw, Redis mode, one write in flight.
      {
        const t = await rawRegistered(client, rep);
        const d = rawLifecycle(t);
        if (rep) times.raw_redis.push(d);
        t.free();
      }
      // Presence, single-server.
      {
        const io = newIo();
        const p = await Presence.attach(io, {});
        const t0 = L.ms();
        fakeLifecycle(io);
        await L.tick(); // its flush runs in the next setImmediate
        if (rep) times.presence_single.push(L.ms() - t0);
        if ((await p.socketsCount()) !== 0) throw new Error("presence single: count not 0");
        await p.close();
        io.close();
      }
      // Presence, Redis mode: registered, one write in flight, then the burst.
      {
        const io = newIo();
        const p = await Presence.attach(io, { redis: client, prefix: `p${rep}` });
        L.fakeConnect(io, io.of("/"), "warm", "warm");
        const d = fakeLifecycle(io);
        if (rep) times.presence_redis.push(d);
        await p.close();
        io.close();
      }
      // The naive Map, and the harness alone.
      {
        const io = newIo();
        naiveMap(io);
        const d = fakeLifecycle(io);
        if (rep) times.naive_map.push(d);
        io.close();
        const io2 = newIo();
        const d2 = fakeLifecycle(io2);
        if (rep) times.harness_only.push(d2);
        io2.close();
      }
    }
  } finally {
    await client.quit().catch(() => {});
    r.stop();
  }
  const out = { inputs: INPUTS, reps: REPS, ms: {}, inputs_per_s: {} };
  for (const [k, v] of Object.entries(times)) {
    out.ms[k] = v;
    out.inputs_per_s[k] = INPUTS / (L.median(v) / 1000);
  }
  L.save("wasm", out);
  for (const [k, v] of Object.entries(out.inputs_per_s)) {
    L.log(`wasm: ${k.padEnd(16)} median ${L.median(out.ms[k]).toFixed(1)} ms  ${(v / 1e6).toFixed(3)} M inputs/s`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
