"use strict";
// The cost of per-socket data: one Socket.IO server with rollcall on its
// own redis-server, SOCKETS fake sockets (default 20,000; one user per two
// sockets, so users have two data objects), each in room "lobby".
//  1. Memory: Redis used_memory per socket with no data, then with a data
//     object on every socket (about 50 bytes of JSON: a name, a status, a
//     device): the extra bytes per socket, beside the JSON's own length,
//     and how much of it is the change feed's entry of each update (it is
//     trimmed to changesMaxLen, default 100,000).
//  2. Writes: for SECONDS seconds (default 10), every second 10% of the
//     sockets change their status (setData); beside it, in the same run,
//     the same 10% leave and rejoin a room every second (the baseline: a
//     write rollcall has made since its first version). Redis CPU per
//     second and script calls per second for each, and Redis CPU per change.
//   node pkg/bench/data.js        (SOCKETS=20000 SECONDS=10)

const http = require("node:http");
const L = require("./lib.js");

const { Presence } = require(process.env.ROLLCALL || "..");
const { Server } = require("socket.io");
const { createClient } = require("redis");

const SOCKETS = Number(process.env.SOCKETS || 20000);
const SECONDS = Number(process.env.SECONDS || 10);
const SHARE = 0.1;

/** A socket's data: a name, a status, a device (about 60 bytes). */
const dataOf = (i, status) => ({ name: `User ${Math.floor(i / 2)}`, status, device: i % 2 ? "phone" : "web" });

async function usedMemory(admin) {
  const text = await admin.info("memory");
  return Number(/^used_memory:(\d+)/m.exec(text)[1]);
}

async function evalCalls(admin) {
  const text = await admin.info("commandstats");
  let calls = 0;
  for (const m of text.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) calls += Number(m[2]);
  return calls;
}

/** Waits until `check()` is true (polling), or fails after 5 minutes. */
async function until(what, check) {
  const t0 = L.ms();
  while (!(await check())) {
    if (L.ms() - t0 > 300000) throw new Error(`timed out: ${what}`);
    await L.sleep(50);
  }
}

/**
 * For SECONDS seconds, every second, `change(socket, second)` on 10% of
 * the sockets (a different tenth each second), then waits until Redis holds
 * it. Redis CPU and script calls over the whole run.
 */
async function churn(admin, presence, sockets, change) {
  const n = Math.round(sockets.length * SHARE);
  const cpu0 = await L.redisCpu(admin);
  const calls0 = await evalCalls(admin);
  const t0 = L.ms();
  for (let s = 0; s < SECONDS; s++) {
    const start = L.ms();
    const from = (s * n) % sockets.length;
    const pending = [];
    for (let k = 0; k < n; k++) {
      const p = change(sockets[(from + k) % sockets.length], s);
      if (p) pending.push(p);
      if (k % 500 === 499) await L.tick();
    }
    await Promise.all(pending);
    // A read after the writes: Redis holds every change of this second.
    await presence.socketsCount();
    const left = 1000 - (L.ms() - start);
    if (left > 0) await L.sleep(left);
  }
  const wall = (L.ms() - t0) / 1000;
  const cpu = (await L.redisCpu(admin)) - cpu0;
  const calls = (await evalCalls(admin)) - calls0;
  const changes = n * SECONDS;
  return {
    changes_per_second: n,
    seconds: Math.round(wall * 10) / 10,
    redis_cpu_ms_per_second: Math.round((cpu * 1000) / wall),
    script_calls_per_second: Math.round(calls / wall),
    redis_cpu_us_per_change: Math.round(((cpu * 1e6) / changes) * 10) / 10,
  };
}

async function main() {
  const redis = await L.startRedis();
  const client = createClient({ url: redis.url });
  client.on("error", () => {});
  await client.connect();
  const admin = client.duplicate();
  await admin.connect();
  try {
    const io = new Server(http.createServer());
    const presence = await Presence.attach(io, { redis: client, prefix: "data" });
    const nsp = io.of("/");
    const sockets = [];
    for (let i = 0; i < SOCKETS; i++) {
      const s = L.fakeConnect(io, nsp, `s${i}`, `u${Math.floor(i / 2)}`);
      L.fakeJoin(s, "lobby");
      sockets.push(s);
      if (i % 500 === 499) await L.tick();
    }
    await until("every socket counted", async () => (await presence.socketsCount()) === SOCKETS);
    const feedBytes = async () => Number((await admin.sendCommand(["MEMORY", "USAGE", "{data}:feed", "SAMPLES", "0"])) || 0);
    const bare = await usedMemory(admin);
    const bareFeed = await feedBytes();

    const json = JSON.stringify(dataOf(0, "online"));
    const t0 = L.ms();
    const writes = [];
    for (let i = 0; i < SOCKETS; i++) {
      writes.push(presence.setData(sockets[i], dataOf(i, "online")));
      if (i % 500 === 499) await L.tick();
    }
    await Promise.all(writes);
    const setAll = L.ms() - t0;
    const page = await presence.members({ room: "lobby" }, { limit: 10 });
    if (page.members[0].data.length !== 2) throw new Error(`members data: ${JSON.stringify(page.members[0])}`);
    const withData = await usedMemory(admin);
    const feed = (await feedBytes()) - bareFeed;
    const out = {
      sockets: SOCKETS,
      users: SOCKETS / 2,
      json_bytes: Buffer.byteLength(json),
      redis_bytes_per_socket_without_data: Math.round(bare / SOCKETS),
      redis_bytes_per_socket_of_data: Math.round((withData - bare) / SOCKETS),
      of_which_change_feed: Math.round(feed / SOCKETS),
      set_data_on_every_socket_ms: Math.round(setAll),
    };
    out.data_overhead_vs_json = Math.round((out.redis_bytes_per_socket_of_data / out.json_bytes) * 10) / 10;
    L.log(`data: ${JSON.stringify(out)}`);

    // The baseline first (the same sockets, the same tenth each second).
    out.rejoin_room = await churn(admin, presence, sockets, (s, second) => {
      const room = `r${second % 2}`;
      L.fakeLeave(s, `r${(second + 1) % 2}`);
      L.fakeJoin(s, room);
      return null;
    });
    const statuses = ["online", "away", "busy"];
    out.set_data = await churn(admin, presence, sockets, (s, second) =>
      presence.setData(s, dataOf(Number(s.id.slice(1)), statuses[second % 3])),
    );
    out.set_data_vs_rejoin_cpu = Math.round((out.set_data.redis_cpu_ms_per_second / Math.max(out.rejoin_room.redis_cpu_ms_per_second, 1)) * 100) / 100;
    L.save("data", out);
    console.log(JSON.stringify(out, null, 2));
    await presence.close().catch(() => {});
  } finally {
    await Promise.all([client.quit(), admin.quit()]).catch(() => {});
    redis.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
