"use strict";
// Read-your-writes: what waiting for this node's own writes adds to a read.
// One Socket.IO server with rollcall on a real redis-server, real
// socket.io-client sockets connecting one after the other. Two latencies of
// usersCount():
//   after_connect: called in the app's "connection" handler, right after
//     rollcall was given the connect (its write is pending: the read waits
//     for it, then runs);
//   idle: called with no write pending (the read runs at once, as before).
// p50 / p99 / max in ms, REPS each, per Redis client (node-redis, and
// ioredis when installed). ROLLCALL: the package to load (default "..").
//   NODE_PATH=tests/node/node_modules node pkg/bench/ryw.js

const http = require("node:http");
const L = require("./lib.js");

const { Presence } = require(process.env.ROLLCALL || "..");
const { Server } = require("socket.io");
const { io: ioClient } = require("socket.io-client");

const REPS = Number(process.env.REPS || 500);

function stats(xs) {
  const r = (x) => Math.round(x * 1000) / 1000;
  return { n: xs.length, p50_ms: r(L.median(xs)), p99_ms: r(L.pct(xs, 99)), max_ms: r(Math.max(...xs)) };
}

async function clientOf(kind, url) {
  if (kind === "ioredis") {
    const Redis = require("ioredis");
    const client = new Redis(url);
    client.on("error", () => {});
    return { client, quit: () => client.quit() };
  }
  const { createClient } = require("redis");
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  return { client, quit: () => client.quit() };
}

async function run(kind, redisUrl) {
  const { client, quit } = await clientOf(kind, redisUrl);
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  const presence = await Presence.attach(io, { redis: client, prefix: `ryw-bench-${kind}` });
  const afterConnect = [];
  let stale = 0;
  let expected = 0;
  let seen = null;
  io.on("connection", (socket) => {
    const t0 = L.ms();
    const want = ++expected;
    presence.usersCount().then((n) => {
      afterConnect.push(L.ms() - t0);
      if (n !== want) stale++;
      if (seen) seen();
    });
  });
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${httpServer.address().port}`;
  const sockets = [];
  for (let i = 0; i < REPS; i++) {
    const answered = new Promise((r) => {
      seen = r;
    });
    const s = ioClient(url, { forceNew: true, transports: ["websocket"], reconnection: false, auth: { userId: `u${i}` } });
    sockets.push(s);
    await answered;
  }
  const idle = [];
  for (let i = 0; i < REPS; i++) {
    await L.sleep(1);
    const t0 = L.ms();
    await presence.usersCount();
    idle.push(L.ms() - t0);
  }
  for (const s of sockets) s.close();
  await presence.close();
  await new Promise((r) => io.close(() => r()));
  await quit();
  return { client: kind, after_connect: stats(afterConnect), stale_after_connect: stale, idle: stats(idle) };
}

async function main() {
  const r = await L.startRedis();
  try {
    const kinds = ["node-redis"];
    try {
      require.resolve("ioredis");
      kinds.push("ioredis");
    } catch {
      // not installed: node-redis only
    }
    for (const kind of kinds) console.log(JSON.stringify(await run(kind, r.url)));
  } finally {
    r.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
