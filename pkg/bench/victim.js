"use strict";
// The node that dies in reap.js: USERS fake sockets (one per user) through
// Presence on a real Socket.IO Server; -> {ready, nodeId} once Redis holds
// them all. The parent then kills it with SIGKILL.
const http = require("node:http");
const { Server } = require("socket.io");
const redis = require("redis");
const { Presence } = require("..");
const L = require("./lib.js");

(async () => {
  const client = redis.createClient({ url: process.env.REDIS_URL });
  client.on("error", () => {});
  await client.connect();
  const wrapped = L.counting(client);
  const io = new Server(http.createServer());
  const presence = await Presence.attach(io, { redis: wrapped, ...JSON.parse(process.env.TIMINGS) });
  const n = Number(process.env.USERS);
  for (let i = 0; i < n; i++) {
    L.fakeConnect(io, io.of("/"), `s${i}`, `user${i}`);
    if (i % 1000 === 999) await L.tick();
  }
  await wrapped.drained();
  const count = await presence.usersCount();
  process.send({ ready: true, nodeId: presence.nodeId, count });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
