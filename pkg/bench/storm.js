"use strict";
// Item 3, the reconnect storm with real Socket.IO: one server (rollcall or
// the naive recipe, node-redis v4, one redis-server) and 10,000
// socket.io-client sockets (websocket transport) from 2 processes, all
// connecting at once, as after a restart. Timed in the server from its last
// "connection" event until every write is acknowledged and the count
// reads 10,000. The two recipes alternate, REPS runs each.

const L = require("./lib.js");

const REPS = Number(process.env.REPS || 3);
const SOCKETS = Number(process.env.STORM || 10_000);
const PROCS = 2;

async function run(mode, r) {
  const server = L.forkProc("server.js", { REDIS_URL: r.url, MODE: mode, EXPECT: String(SOCKETS) });
  const { port } = await server.ready;
  const stormDone = server.wait((m) => m.storm);
  const per = SOCKETS / PROCS;
  const clients = [];
  for (let k = 0; k < PROCS; k++) {
    clients.push(L.forkProc("clients.js", { PORTS: String(port), COUNT: String(per), FIRST: String(k * per) }));
  }
  const { storm } = await stormDone;
  await Promise.all(clients.map((c) => c.ready));
  for (const c of clients) c.kill();
  server.kill();
  await L.sleep(300);
  return storm;
}

async function main() {
  const r = await L.startRedis();
  const res = { sockets: SOCKETS, reps: REPS, rollcall: [], naive: [] };
  try {
    for (let rep = 0; rep < REPS; rep++) {
      for (const mode of rep % 2 ? ["naive", "rollcall"] : ["rollcall", "naive"]) {
        await new Promise((ok) => require("node:child_process").execFile("redis-cli", ["-p", String(r.port), "FLUSHALL"], ok));
        const s = await run(mode, r);
        L.log(`storm: ${mode} ${JSON.stringify(s)}`);
        if (s.value !== SOCKETS) L.log(`storm: WRONG COUNT ${mode}: ${s.value}`);
        res[mode].push(s);
      }
    }
  } finally {
    r.stop();
  }
  res.median = {};
  for (const mode of ["rollcall", "naive"]) {
    for (const k of ["first_to_last_ms", "after_last_ms", "total_ms"]) {
      res.median[`${mode}_${k}`] = L.median(res[mode].map((x) => x[k]));
    }
  }
  res.median.ratio_after_last = res.median.naive_after_last_ms / res.median.rollcall_after_last_ms;
  L.log(`storm: median ${JSON.stringify(res.median)}`);
  L.save("storm", res);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
