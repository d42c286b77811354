"use strict";
// A clean close() of one server holding USERS users (default 100,000, one
// fake socket each, in one room): the leave runs in bounded slices. Wall
// time and Redis CPU, with the change feed off (changesMaxLen: 0, the
// baseline of the same run) and on at its default cap (100,000 entries:
// the 300,000 offline/left changes of the leave keep it at the cap, so
// every call trims it).
//   node pkg/bench/leave.js          (USERS=100000)

const http = require("node:http");
const L = require("./lib.js");

const { Presence } = require(process.env.ROLLCALL || "..");
const { Server } = require("socket.io");
const { createClient } = require("redis");

const USERS = Number(process.env.USERS || 100000);

async function run(url, changesMaxLen) {
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  const prefix = `leave-${changesMaxLen}`;
  const io = new Server(http.createServer());
  // A long TTL: the read below waits up to opTimeoutMs for 100,000 connects.
  const presence = await Presence.attach(io, { redis: client, prefix, ttlMs: 60000, opTimeoutMs: 30000, changesMaxLen });
  const nsp = io.of("/");
  for (let i = 0; i < USERS; i++) {
    L.fakeJoin(L.fakeConnect(io, nsp, `s${i}`, `u${i}`), "big");
    if (i % 500 === 499) await L.tick();
  }
  const counted = await presence.usersCount({ room: "big" });
  if (counted !== USERS) throw new Error(`${counted} users, not ${USERS}`);
  const cpu0 = await L.redisCpu(client);
  const t0 = L.ms();
  await presence.close();
  const out = {
    changes_max_len: changesMaxLen,
    close_ms: Math.round(L.ms() - t0),
    redis_cpu_ms: Math.round(((await L.redisCpu(client)) - cpu0) * 1000),
    left: (await client.keys(`{${prefix}}:*`)).filter((k) => !/:(feed|seen)$/.test(k)).length,
  };
  await client.quit();
  L.log(`leave: ${JSON.stringify(out)}`);
  return out;
}

async function main() {
  const redis = await L.startRedis();
  try {
    const off = await run(redis.url, 0);
    const on = await run(redis.url, 100000);
    const result = {
      users: USERS,
      feed_off: off,
      feed_on: on,
      redis_cpu_ratio: Math.round((on.redis_cpu_ms / off.redis_cpu_ms) * 100) / 100,
    };
    L.save("leave", result);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    redis.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
