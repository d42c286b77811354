"use strict";
// Item 4: "how many are online" with SERVERS real Socket.IO servers (each
// with @socket.io/redis-adapter and rollcall, one redis-server) and N real
// socket.io-client sockets spread over them. From server 0: rollcall's
// socketsCount() and usersCount(), fetchSockets().length and
// serverSideEmitWithAck("totalCount") as the clients article writes them.
// Latency median and p99, and bytes through redis-server per query (INFO
// stats total_net_input_bytes + total_net_output_bytes, delta over the reps
// / reps, including the idle traffic of that window). Then the same with one
// server dead (SIGSTOP: its Redis connections stay open, so the adapter
// still waits for it until its requestsTimeout, 5 s).
// SIZES="3x1000,3x10000" (servers x sockets).

const redis = require("redis");
const L = require("./lib.js");

const SIZES = (process.env.SIZES || "3x1000,3x10000").split(",").map((s) => s.split("x").map(Number));
const KINDS = ["rollcall", "rollcall_users", "serverSideEmitWithAck", "fetchSockets"];
const REPS = { rollcall: 200, rollcall_users: 200, serverSideEmitWithAck: 50, fetchSockets: 20 };
const DEAD_REPS = { rollcall: 50, rollcall_users: 50, serverSideEmitWithAck: 2, fetchSockets: 2 };

async function measure(server, admin, kind, reps) {
  const a = await L.infoStats(admin);
  const r = await server.ask({ cmd: "query", kind, reps });
  const b = await L.infoStats(admin);
  const bytes = (b.total_net_input_bytes - a.total_net_input_bytes + b.total_net_output_bytes - a.total_net_output_bytes) / reps;
  return {
    reps, median_ms: L.median(r.ms), p99_ms: L.pct(r.ms, 99), max_ms: Math.max(...r.ms),
    bytes_per_query: Math.round(bytes), value: r.value, error: r.error,
  };
}

async function size(nServers, nSockets) {
  const r = await L.startRedis();
  const admin = redis.createClient({ url: r.url });
  admin.on("error", () => {});
  await admin.connect();
  const servers = [];
  const clients = [];
  const out = { servers: nServers, sockets: nSockets, alive: {}, one_dead: {} };
  try {
    for (let i = 0; i < nServers; i++) {
      servers.push(L.forkProc("server.js", { REDIS_URL: r.url, MODE: "rollcall", ADAPTER: "1" }));
    }
    const ports = (await Promise.all(servers.map((s) => s.ready))).map((m) => m.port);
    const procs = Math.max(1, Math.ceil(nSockets / 5000));
    const per = nSockets / procs;
    for (let k = 0; k < procs; k++) {
      clients.push(L.forkProc("clients.js", { PORTS: ports.join(","), COUNT: String(per), FIRST: String(k * per) }));
    }
    await Promise.all(clients.map((c) => c.ready));
    await L.sleep(1000);
    for (const kind of KINDS) {
      out.alive[kind] = await measure(servers[0], admin, kind, REPS[kind]);
      L.log(`reads ${nServers}x${nSockets}: ${kind} ${JSON.stringify(out.alive[kind])}`);
    }
    const victim = servers[nServers - 1];
    victim.child.kill("SIGSTOP");
    for (const kind of KINDS) {
      out.one_dead[kind] = await measure(servers[0], admin, kind, DEAD_REPS[kind]);
      L.log(`reads ${nServers}x${nSockets} one dead: ${kind} ${JSON.stringify(out.one_dead[kind])}`);
    }
    victim.child.kill("SIGCONT");
  } finally {
    for (const c of clients) c.kill();
    for (const s of servers) s.kill();
    await admin.quit().catch(() => {});
    await L.sleep(500);
    r.stop();
  }
  return out;
}

async function main() {
  const res = [];
  for (const [s, n] of SIZES) res.push(await size(s, n));
  L.save("reads", res);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
