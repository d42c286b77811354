"use strict";
// The rooms option: sockets that each join 1 shared room and 5 private ones
// ("user:<id>", "doc:<id>:<k>"), as apps that address users or documents by
// room do, then leave everything; with every room followed (the default)
// and with `rooms: (room) => !room.includes(":")`. One Socket.IO server
// with rollcall on its own redis-server, fake sockets emitted by a real
// Server (lib.js), node-redis. Per run: Redis script calls, Redis CPU
// seconds, Redis memory while every socket is in its rooms, and the
// wall-clock rate of socket lifecycles until Redis holds the result.
//   node pkg/bench/rooms.js          (SOCKETS=5000 by default)

const http = require("node:http");
const L = require("./lib.js");

const { Presence } = require(process.env.ROLLCALL || "..");
const { Server } = require("socket.io");
const { createClient } = require("redis");

const SOCKETS = Number(process.env.SOCKETS || 5000);
const PRIVATE = 5;

async function usedMemory(client) {
  return Number(/used_memory:(\d+)/.exec(await client.info("memory"))[1]);
}

async function evalCalls(client) {
  const text = await client.info("commandstats");
  const m = /cmdstat_evalsha:calls=(\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

async function run(filtered, url) {
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  const admin = client.duplicate();
  await admin.connect();
  const io = new Server(http.createServer());
  const prefix = filtered ? "rooms-filtered" : "rooms-every";
  const presence = await Presence.attach(io, {
    redis: client,
    prefix,
    ...(filtered ? { rooms: (room) => !room.includes(":") } : {}),
  });
  const nsp = io.of("/");
  const mem0 = await usedMemory(admin);
  const calls0 = await evalCalls(admin);
  const cpu0 = await L.redisCpu(admin);
  const t0 = L.ms();
  const sockets = [];
  for (let i = 0; i < SOCKETS; i++) {
    const s = L.fakeConnect(io, nsp, `s${i}`, `u${i}`);
    L.fakeJoin(s, "lobby");
    L.fakeJoin(s, `user:u${i}`);
    for (let k = 1; k < PRIVATE; k++) L.fakeJoin(s, `doc:${i}:${k}`);
    sockets.push(s);
    if (i % 100 === 99) await L.tick();
  }
  // A read waits for this node's writes: Redis holds them all after it.
  const inLobby = await presence.socketsCount({ room: "lobby" });
  const joined = L.ms() - t0;
  const mem = (await usedMemory(admin)) - mem0;
  for (let i = 0; i < SOCKETS; i++) {
    L.fakeDisconnect(sockets[i]);
    if (i % 100 === 99) await L.tick();
  }
  const left = await presence.socketsCount();
  const total = L.ms() - t0;
  const calls = (await evalCalls(admin)) - calls0;
  const cpu = (await L.redisCpu(admin)) - cpu0;
  await presence.close();
  await Promise.all([client.quit(), admin.quit()]);
  if (inLobby !== SOCKETS || left !== 0) throw new Error(`wrong counts: ${inLobby} in lobby, ${left} left`);
  return {
    filtered,
    sockets: SOCKETS,
    rooms_per_socket: 1 + PRIVATE,
    script_calls: calls,
    redis_cpu_ms: Math.round(cpu * 1000),
    redis_bytes_per_socket: Math.round(mem / SOCKETS),
    join_ms: Math.round(joined),
    lifecycles_per_s: Math.round(SOCKETS / (total / 1000)),
  };
}

async function main() {
  const redis = await L.startRedis();
  try {
    const every = await run(false, redis.url);
    const filtered = await run(true, redis.url);
    const ratio = (a, b) => Math.round((a / b) * 10) / 10;
    const result = {
      every,
      filtered,
      redis_cpu_ratio: ratio(every.redis_cpu_ms, Math.max(filtered.redis_cpu_ms, 1)),
      redis_bytes_ratio: ratio(every.redis_bytes_per_socket, Math.max(filtered.redis_bytes_per_socket, 1)),
      lifecycles_ratio: ratio(filtered.lifecycles_per_s, every.lifecycles_per_s),
    };
    L.save("rooms", result);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    redis.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
