"use strict";
// Items 3 and 5: writes to Redis from one Node server, rollcall against the
// naive recipe of the users article (node-redis v4, one MULTI per event),
// same client object, same redis-server, same run, trials interleaved; then
// redis-benchmark on that same redis-server (the physical limit).
//
// The socket events come from fake sockets that a real Socket.IO Server's
// namespace and engine emit exactly as socket.io does (see lib.js): this
// measures the presence writes, not socket.io's handshakes. storm.js does
// the reconnect storm with real socket.io-client clients.
//
//   churn/b   a population of 1,000 sockets; then 10,000 connects and 10,000
//             disconnects, b events per macrotask (setImmediate), as fast as
//             Node runs them; timed until Redis holds every write
//   storm     10,000 connects in one tick (a restart), timed until Redis
//             holds them: from the first and from the last connect

const http = require("node:http");
const { execFileSync } = require("node:child_process");
const { Server } = require("socket.io");
const redis = require("redis");
const { Presence } = require("..");
const L = require("./lib.js");

const REPS = Number(process.env.REPS || 5);
const POP = 1000;
const CHURN = Number(process.env.CHURN || 10_000);
const STORM = Number(process.env.STORM || 10_000);
const BATCHES = (process.env.BATCHES || "1,16").split(",").map(Number);
const KINDS = (process.env.KINDS || "none,rollcall,naive").split(",");

const userOf = (i) => `user${Math.floor(i / 3)}`;

async function setup(kind, client, rep) {
  await client.flushAll();

  const io = new Server(http.createServer());
  const ctx = { io, kind, pending: [], sockets: [], next: 0 };
  if (kind === "rollcall") {
    ctx.wrapped = L.counting(client);
    ctx.presence = await Presence.attach(io, {
      redis: ctx.wrapped,
      userId: (s) => s.handshake.auth.userId,
      prefix: `w${rep}`,
    });
  } else if (kind === "naive") {
    await L.naiveAttach(io, client, `proc${rep}`, (s) => s.handshake.auth.userId, ctx.pending);
  }
  return ctx;
}

function connect(ctx) {
  const i = ctx.next++;
  ctx.sockets.push(L.fakeConnect(ctx.io, ctx.io.of("/"), `s${i}`, userOf(i)));
}

function disconnect(ctx) {
  L.fakeDisconnect(ctx.sockets.shift());
}

async function written(ctx) {
  if (ctx.kind === "none") return;
  if (ctx.kind === "rollcall") {
    await ctx.wrapped.drained();
  } else {
    // Every MULTI so far, including ones issued while waiting.
    while (ctx.pending.length) {
      const batch = ctx.pending;
      ctx.pending = [];
      await Promise.all(batch);
    }
  }
}

async function counts(ctx, client) {
  if (ctx.kind === "none") return { sockets: ctx.sockets.length, users: expectedUsers(ctx) };
  if (ctx.kind === "rollcall") {
    return { sockets: await ctx.presence.socketsCount(), users: await ctx.presence.usersCount() };
  }
  const h = await client.hGetAll("users");
  return { sockets: Object.values(h).reduce((a, b) => a + Number(b), 0), users: Object.keys(h).length };
}

function expectedUsers(ctx) {
  return new Set(ctx.sockets.map((s) => s.handshake.auth.userId)).size;
}

async function teardown(ctx) {
  if (ctx.presence) await ctx.presence.close();
  ctx.io.close();
}

async function churn(kind, client, rep, b) {
  const ctx = await setup(kind, client, rep);
  for (let i = 0; i < POP; i++) connect(ctx);
  await written(ctx);
  const calls0 = ctx.wrapped ? ctx.wrapped.calls : 0;
  const cpu0 = await L.redisCpu(client);
  const t0 = L.ms();
  let left = 2 * CHURN;
  let flip = false;
  while (left > 0) {
    for (let k = 0; k < b && left > 0; k++, left--) {
      if ((flip = !flip)) connect(ctx);
      else disconnect(ctx);
    }
    await L.tick();
  }
  await written(ctx);
  const dt = L.ms() - t0;
  const busy = (await L.redisCpu(client)) - cpu0;
  const c = await counts(ctx, client);
  const ok = c.sockets === POP && c.users === expectedUsers(ctx);
  const calls = ctx.wrapped ? ctx.wrapped.calls - calls0 : ctx.kind === "naive" ? 2 * CHURN : 0;
  await teardown(ctx);
  return { ms: dt, events_per_s: (2 * CHURN) / (dt / 1000), calls, redis_busy_ms: busy * 1000, ok, counts: c };
}

async function storm(kind, client, rep) {
  const ctx = await setup(kind, client, rep);
  const cpu0 = await L.redisCpu(client);
  const t0 = L.ms();
  for (let i = 0; i < STORM; i++) connect(ctx);
  const tLast = L.ms();
  await written(ctx);
  const t1 = L.ms();
  const busy = (await L.redisCpu(client)) - cpu0;
  const c = await counts(ctx, client);
  const ok = c.sockets === STORM && c.users === expectedUsers(ctx);
  await teardown(ctx);
  return { ms: t1 - t0, after_last_ms: t1 - tLast, events_per_s: STORM / ((t1 - t0) / 1000), redis_busy_ms: busy * 1000, ok, counts: c };
}

function redisBenchmark(port) {
  const sha = execFileSync("redis-cli", ["-p", String(port), "SCRIPT", "LOAD",
    "return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)"], { encoding: "utf8" }).trim();
  const cases = [
    ["HINCRBY", 1, ["HINCRBY", "bench:h", "f", "1"]],
    ["HINCRBY", 16, ["HINCRBY", "bench:h", "f", "1"]],
    ["EVALSHA", 1, ["EVALSHA", sha, "1", "bench:h", "f"]],
    ["EVALSHA", 16, ["EVALSHA", sha, "1", "bench:h", "f"]],
  ];
  const out = [];
  for (const [name, P, cmd] of cases) {
    const n = P === 1 ? 100_000 : 1_000_000;
    const args = ["-p", String(port), "-n", String(n), "-c", "50", "-P", String(P), "-q", ...cmd];
    const text = execFileSync("redis-benchmark", args, { encoding: "utf8" });
    const m = /([\d.]+) requests per second/.exec(text);
    const rps = m ? Number(m[1]) : NaN;
    out.push({ name, pipeline: P, rps, command: `redis-benchmark ${args.join(" ")}` });
    L.log(`writes: redis-benchmark ${name} -P ${P}: ${rps} requests/s`);
  }
  return out;
}

async function main() {
  const r = await L.startRedis();
  const client = redis.createClient(L.naiveClientOptions(redis, r.url));
  client.on("error", () => {});
  await client.connect();
  const res = { churn: {}, storm: {}, reps: REPS, population: POP, churn_events: 2 * CHURN, storm_sockets: STORM };
  try {
    for (const b of BATCHES) res.churn[b] = { rollcall: [], naive: [], none: [] };
    res.storm = { rollcall: [], naive: [], none: [] };
    for (let rep = 0; rep < REPS + 1; rep++) {
      // rep 0 warms up; the kinds alternate so drift hits both alike.
      const order = rep % 2 ? [...KINDS].reverse() : KINDS;
      for (const b of BATCHES) {
        for (const kind of order) {
          const x = await churn(kind, client, rep, b);
          if (!x.ok) L.log(`writes: WRONG COUNTS ${kind} churn/${b}: ${JSON.stringify(x.counts)}`);
          if (rep) res.churn[b][kind].push(x);
        }
      }
      for (const kind of order) {
        const x = await storm(kind, client, rep);
        if (!x.ok) L.log(`writes: WRONG COUNTS ${kind} storm: ${JSON.stringify(x.counts)}`);
        if (rep) res.storm[kind].push(x);
      }
      L.log(`writes: rep ${rep} done`);
    }
    await client.flushAll();
    if (process.env.NO_REDIS_BENCHMARK) throw Object.assign(new Error("skip"), { skip: true });
    res.redis_benchmark = redisBenchmark(r.port);
  } catch (e) {
    if (!e.skip) throw e;
  } finally {
    await client.quit().catch(() => {});
    r.stop();
  }
  const med = (xs, k) => L.median(xs.map((x) => x[k]));
  for (const b of BATCHES) {
    const c = res.churn[b];
    c.median = {
      rollcall: med(c.rollcall, "events_per_s"),
      naive: med(c.naive, "events_per_s"),
      rollcall_calls: med(c.rollcall, "calls"),
      harness_only: med(c.none, "events_per_s"),
      rollcall_redis_busy_ms: med(c.rollcall, "redis_busy_ms"),
      naive_redis_busy_ms: med(c.naive, "redis_busy_ms"),
      rollcall_ms: med(c.rollcall, "ms"),
      naive_ms: med(c.naive, "ms"),
    };
    c.ratios = c.rollcall.map((x, i) => x.events_per_s / c.naive[i].events_per_s);
    c.median.ratio = L.median(c.ratios);
    L.log(`writes: churn b=${b}: rollcall ${c.median.rollcall.toFixed(0)}/s, naive ${c.median.naive.toFixed(0)}/s, ratio ${c.median.ratio.toFixed(1)}x, harness alone ${c.median.harness_only.toFixed(0)}/s (rollcall script calls: ${c.median.rollcall_calls}; redis-server CPU: rollcall ${c.median.rollcall_redis_busy_ms.toFixed(0)} of ${c.median.rollcall_ms.toFixed(0)} ms, naive ${c.median.naive_redis_busy_ms.toFixed(0)} of ${c.median.naive_ms.toFixed(0)} ms)`);
  }
  const s = res.storm;
  s.median = {
    rollcall_ms: med(s.rollcall, "ms"), naive_ms: med(s.naive, "ms"),
    rollcall_after_last_ms: med(s.rollcall, "after_last_ms"), naive_after_last_ms: med(s.naive, "after_last_ms"),
    harness_only_ms: med(s.none, "ms"),
    rollcall_redis_busy_ms: med(s.rollcall, "redis_busy_ms"),
    naive_redis_busy_ms: med(s.naive, "redis_busy_ms"),
  };
  s.ratios = s.rollcall.map((x, i) => s.naive[i].ms / x.ms);
  s.median.ratio = L.median(s.ratios);
  L.log(`writes: storm ${STORM}: rollcall ${s.median.rollcall_ms.toFixed(1)} ms (after last ${s.median.rollcall_after_last_ms.toFixed(1)}), naive ${s.median.naive_ms.toFixed(1)} ms (after last ${s.median.naive_after_last_ms.toFixed(1)}), ratio ${s.median.ratio.toFixed(1)}x, harness alone ${s.median.harness_only_ms.toFixed(1)} ms`);
  L.save("writes", res);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
