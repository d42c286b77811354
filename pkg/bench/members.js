"use strict";
// Member lists of a big room: one Socket.IO server with rollcall on its own
// redis-server, USERS fake sockets (default 100,000, one user each) in room
// "big". Latency (median, p99 over REPS) of a members() page of 100 and of
// 1,000 at random cursors, beside usersCount() (an O(1) read: the baseline
// of the same run); the whole usersList() (pages of 1,000); and the longest
// single script call Redis ran for each (SLOWLOG at 0 µs: how long Redis
// was blocked), beside HKEYS of the room's hash in one call, which is what
// usersList() did before it read in pages.
//   node pkg/bench/members.js        (USERS=100000 REPS=200)

const http = require("node:http");
const L = require("./lib.js");

const { Presence } = require(process.env.ROLLCALL || "..");
const { Server } = require("socket.io");
const { createClient } = require("redis");

const USERS = Number(process.env.USERS || 100000);
const REPS = Number(process.env.REPS || 200);
const name = (i) => `u${String(i).padStart(7, "0")}`;

/** Runs `fn` REPS times: client latency and the longest Redis call (µs). */
async function timed(admin, reps, fn) {
  await admin.sendCommand(["SLOWLOG", "RESET"]);
  const ms = [];
  for (let i = 0; i < reps; i++) {
    const t0 = L.ms();
    await fn(i);
    ms.push(L.ms() - t0);
  }
  const log = await admin.sendCommand(["SLOWLOG", "GET", "100000"]);
  const calls = log.filter((e) => /^eval/i.test(String(e[3][0])));
  const longest = Math.max(0, ...calls.map((e) => Number(e[2])));
  const round = (x) => Math.round(x * 1000) / 1000;
  return { reps, median_ms: round(L.median(ms)), p99_ms: round(L.pct(ms, 99)), longest_redis_call_us: longest };
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
    const presence = await Presence.attach(io, { redis: client, prefix: "members" });
    const nsp = io.of("/");
    const t0 = L.ms();
    for (let i = 0; i < USERS; i++) {
      L.fakeJoin(L.fakeConnect(io, nsp, `s${i}`, name(i)), "big");
      if (i % 500 === 499) await L.tick();
    }
    // The writes of 100,000 users take longer than one read's wait: poll.
    let inRoom = 0;
    while (inRoom !== USERS) {
      inRoom = await presence.usersCount({ room: "big" }).catch(() => 0);
      if (L.ms() - t0 > 300000) throw new Error(`${inRoom} users in the room, not ${USERS}`);
    }
    L.log(`members: ${USERS} users in the room after ${Math.round(L.ms() - t0)} ms`);
    await admin.sendCommand(["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    await admin.sendCommand(["CONFIG", "SET", "slowlog-max-len", "100000"]);

    const scope = { room: "big" };
    const cursor = () => name(Math.floor(Math.random() * USERS));
    const out = { users: USERS };
    out.users_count = await timed(admin, REPS, () => presence.usersCount(scope));
    for (const limit of [100, 1000]) {
      out[`page_${limit}`] = await timed(admin, REPS, async (i) => {
        const page = await presence.members(scope, { limit, cursor: i === 0 ? null : cursor() });
        if (page.members.length === 0) throw new Error("an empty page");
      });
    }
    out.users_list = await timed(admin, 5, async () => {
      const all = await presence.usersList(scope);
      if (all.length !== USERS) throw new Error(`usersList: ${all.length}`);
    });
    const hash = "{members}:u:" + "r1:/big";
    out.hkeys_one_call = await timed(admin, 5, async () => {
      const all = await admin.sendCommand(["EVAL", "return redis.call('HKEYS', KEYS[1])", "1", hash]);
      if (all.length !== USERS) throw new Error(`HKEYS: ${all.length}`);
    });
    const base = out.users_count.median_ms;
    out.page_100_vs_users_count = Math.round((out.page_100.median_ms / base) * 10) / 10;
    out.hkeys_vs_page_1000_longest_call = Math.round(
      (out.hkeys_one_call.longest_redis_call_us / Math.max(out.page_1000.longest_redis_call_us, 1)) * 10,
    ) / 10;
    L.save("members", out);
    console.log(JSON.stringify(out, null, 2));
    // Leaving with 100,000 users takes longer than close()'s wait; the
    // redis-server goes anyway.
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
