"use strict";
// The change feed: what it costs and how fast it delivers.
// 1. Cost: one Socket.IO server with rollcall and node-redis on its own
//    redis-server; SOCKETS fake sockets (a real Server emits them) each
//    join "lobby", then disconnect: 4 changes per user (online, joined "/",
//    joined "lobby", and their ends). The same run with the feed off
//    (changesMaxLen: 0) and on (the default): Redis CPU, Redis memory per
//    change the feed holds, lifecycles per second until Redis holds them.
// 2. Lag: three servers (one process, three clients) on one redis-server,
//    each with a watcher; one server connects USERS users in bursts of 20
//    per tick (busy), then QUIET users one every 5 ms (quiet); for every
//    change each watcher reads, the time from the script that made it (its
//    `at`, Redis' clock, the same host's clock here) to the watcher's loop
//    body: p50, p99, max. One process holds the three servers, so a busy
//    event loop delays the watchers too.
//   node pkg/bench/feed.js          (SOCKETS=5000 USERS=2000 by default)

const http = require("node:http");
const L = require("./lib.js");

const { Presence } = require(process.env.ROLLCALL || "..");
const { Server } = require("socket.io");
const { createClient } = require("redis");

const SOCKETS = Number(process.env.SOCKETS || 5000);
const USERS = Number(process.env.USERS || 2000);
const QUIET = Number(process.env.QUIET || 200);

async function connected(url) {
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  return client;
}

async function cost(feedOn, url) {
  const client = await connected(url);
  const admin = await connected(url);
  const io = new Server(http.createServer());
  const prefix = feedOn ? "feed-on" : "feed-off";
  const presence = await Presence.attach(io, { redis: client, prefix, ...(feedOn ? {} : { changesMaxLen: 0 }) });
  const nsp = io.of("/");
  const cpu0 = await L.redisCpu(admin);
  const t0 = L.ms();
  const sockets = [];
  for (let i = 0; i < SOCKETS; i++) {
    const s = L.fakeConnect(io, nsp, `s${i}`, `u${i}`);
    L.fakeJoin(s, "lobby");
    sockets.push(s);
    if (i % 100 === 99) await L.tick();
  }
  // Every connect lands before the disconnects (a read waits for this
  // node's writes), so both runs make the same 6 changes per user.
  await presence.socketsCount({ room: "lobby" });
  for (let i = 0; i < SOCKETS; i++) {
    L.fakeDisconnect(sockets[i]);
    if (i % 100 === 99) await L.tick();
  }
  // A read waits for this node's writes: Redis holds them all after it.
  const left = await presence.socketsCount();
  const total = L.ms() - t0;
  const cpu = (await L.redisCpu(admin)) - cpu0;
  const feedKey = `{${prefix}}:feed`;
  const entries = Number(await admin.sendCommand(["XLEN", feedKey]));
  const feedBytes = entries > 0 ? Number(await admin.sendCommand(["MEMORY", "USAGE", feedKey])) : 0;
  await presence.close();
  await Promise.all([client.quit(), admin.quit()]);
  if (left !== 0) throw new Error(`wrong count: ${left} left`);
  return {
    feed: feedOn,
    sockets: SOCKETS,
    feed_entries: entries,
    feed_bytes_per_change: entries > 0 ? Math.round(feedBytes / entries) : 0,
    redis_cpu_ms: Math.round(cpu * 1000),
    lifecycles_per_s: Math.round(SOCKETS / (total / 1000)),
  };
}

async function lag(url) {
  const servers = [];
  for (let i = 0; i < 3; i++) {
    const client = await connected(url);
    const io = new Server(http.createServer());
    const presence = await Presence.attach(io, { redis: client, prefix: "feed-lag" });
    servers.push({ client, io, presence, lags: [], seen: 0 });
  }
  /** Connects `n` users from `from` (`burst` per tick, or one per 5 ms); resolves once every watcher read their changes. */
  const phase = async (from, n, burst) => {
    const want = n * 2; // online and joined "/" per user
    const lags = [];
    const readers = servers.map((s) =>
      (async () => {
        let seen = 0;
        for await (const c of s.presence.watch()) {
          lags.push(Date.now() - c.at);
          if (++seen === want) break;
        }
      })(),
    );
    await L.sleep(50); // the watchers have started
    const nsp = servers[0].io.of("/");
    for (let i = from; i < from + n; i++) {
      L.fakeConnect(servers[0].io, nsp, `s${i}`, `u${i}`);
      if (burst) {
        if (i % burst === burst - 1) await L.tick();
      } else await L.sleep(5);
    }
    await Promise.all(readers);
    return {
      changes_per_watcher: want,
      lag_ms_p50: L.pct(lags, 50),
      lag_ms_p99: L.pct(lags, 99),
      lag_ms_max: Math.max(...lags),
    };
  };
  const busy = await phase(0, USERS, 20);
  const quiet = await phase(USERS, QUIET, 0);
  for (const s of servers) {
    await s.presence.close();
    await s.client.quit();
  }
  return { watchers: servers.length, busy, quiet };
}

async function main() {
  const redis = await L.startRedis();
  try {
    // Alternated, twice each (the first runs warm the JIT): the better run of each.
    const runs = [];
    for (const feedOn of [false, true, false, true]) runs.push(await cost(feedOn, redis.url));
    const best = (on) => runs.filter((r) => r.feed === on).sort((a, b) => a.redis_cpu_ms - b.redis_cpu_ms)[0];
    const off = best(false);
    const on = best(true);
    const delivery = await lag(redis.url);
    const ratio = (a, b) => Math.round((a / b) * 100) / 100;
    const result = {
      off,
      on,
      redis_cpu_ratio: ratio(on.redis_cpu_ms, Math.max(off.redis_cpu_ms, 1)),
      lifecycles_ratio: ratio(on.lifecycles_per_s, off.lifecycles_per_s),
      delivery,
    };
    L.save("feed", result);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    redis.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
