"use strict";
// Item 6: the reap of a dead node with 100,000 users. A victim process
// (victim.js) holds 100,000 sockets of 100,000 users through Presence; it
// is killed with SIGKILL; a second Presence node (this process) reaps it in
// slices of reapSlice (default 1,000) fields. Timed on the reaper's client
// (every `reap` script call, start to end) and inside Redis (SLOWLOG with
// slowlog-log-slower-than 1000 us: the longest single call inside Redis).

const http = require("node:http");
const { Server } = require("socket.io");
const redis = require("redis");
const wasm = require("../rollcall_wasm.js");
const { Presence } = require("..");
const L = require("./lib.js");

const USERS = Number(process.env.USERS || 100_000);
const REPS = Number(process.env.REPS || 3);
const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 250 };
const REAP_SHA = JSON.parse(wasm.scripts()).find((s) => s.name === "reap").sha;

async function once(r, admin) {
  await admin.flushAll();
  const victim = L.forkProc("victim.js", { REDIS_URL: r.url, USERS: String(USERS), TIMINGS: JSON.stringify(TIMINGS) });
  const v = await victim.ready;
  if (v.count !== USERS) throw new Error(`victim counted ${v.count}`);
  const client = redis.createClient({ url: r.url });
  client.on("error", () => {});
  await client.connect();
  const calls = [];
  const wrapped = {
    sendCommand(args) {
      const t0 = L.ms();
      const p = client.sendCommand(args);
      if (args[0] === "EVALSHA" && args[1] === REAP_SHA) {
        // Only the calls that reaped something (SLICE or DONE), not the idle polls.
        p.then((reply) => {
          const text = JSON.stringify(reply);
          if (text.includes('"SLICE"') || text.includes('"DONE"')) calls.push([t0, L.ms()]);
        }, () => {});
      }
      return p;
    },
    on: (e, f) => client.on(e, f),
    off: (e, f) => client.off(e, f),
  };
  const io = new Server(http.createServer());
  const reaper = await Presence.attach(io, { redis: wrapped, ...TIMINGS });
  let offline = 0;
  reaper.on("user disconnected", (_u, reason) => {
    if (reason === "reaped") offline++;
  });
  const reaped = new Promise((ok) => reaper.on("node reaped", ok));
  await admin.sendCommand(["CONFIG", "SET", "slowlog-log-slower-than", "1000"]);
  await admin.sendCommand(["CONFIG", "SET", "slowlog-max-len", "100000"]);
  await admin.sendCommand(["SLOWLOG", "RESET"]);
  const tKill = L.ms();
  victim.child.kill("SIGKILL");
  await reaped;
  const tReaped = L.ms();
  await L.sleep(200);
  const slow = await admin.sendCommand(["SLOWLOG", "GET", "100000"]);
  await admin.sendCommand(["CONFIG", "SET", "slowlog-log-slower-than", "10000"]);
  // Every call over 1 ms (with 0, the sub-commands the scripts run fill the
  // slowlog: Redis 7 logs them too). An idle reap poll runs in ~10 us.
  const reapExec = slow
    .filter((e) => e[3][0] === "EVALSHA" && e[3][1] === REAP_SHA)
    .map((e) => Number(e[2]))
    .filter((us) => us >= 1000);
  const others = slow.filter((e) => !(e[3][0] === "EVALSHA" && e[3][1] === REAP_SHA)).map((e) => Number(e[2]));
  const users = await reaper.usersCount();
  await reaper.close();
  io.close();
  await client.quit().catch(() => {});
  const rt = calls.map(([a, b]) => b - a);
  const out = {
    users: USERS,
    reap_calls: calls.length,
    total_ms: calls.length ? calls[calls.length - 1][1] - calls[0][0] : NaN,
    longest_call_ms: Math.max(...rt),
    median_call_ms: L.median(rt),
    slowlog_entries: slow.length,
    redis_reap_entries: reapExec.length,
    redis_exec_total_ms: reapExec.reduce((a, b) => a + b, 0) / 1000,
    redis_longest_exec_ms: Math.max(...reapExec) / 1000,
    redis_median_exec_ms: L.median(reapExec) / 1000,
    other_commands_longest_ms: others.length ? Math.max(...others) / 1000 : 0,
    kill_to_reaped_ms: tReaped - tKill,
    offline_events: offline,
    users_left: users,
  };
  L.log(`reap: ${JSON.stringify(out)}`);
  return out;
}

async function main() {
  const r = await L.startRedis();
  const admin = redis.createClient({ url: r.url });
  admin.on("error", () => {});
  await admin.connect();
  const runs = [];
  try {
    for (let i = 0; i < REPS; i++) runs.push(await once(r, admin));
  } finally {
    await admin.quit().catch(() => {});
    r.stop();
  }
  const median = {};
  for (const k of Object.keys(runs[0])) median[k] = L.median(runs.map((x) => x[k]));
  L.log(`reap: median ${JSON.stringify(median)}`);
  L.save("reap", { timings: TIMINGS, runs, median });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
