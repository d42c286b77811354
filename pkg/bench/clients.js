"use strict";
// Real socket.io-client sockets (websocket transport), forked by storm.js
// and reads.js. Environment: PORTS (comma separated), COUNT, FIRST (index of
// the first user). All sockets connect at once; -> {ready, ms} when all are
// connected. Exits when its parent goes.

const { io } = require("socket.io-client");

const ports = process.env.PORTS.split(",");
const count = Number(process.env.COUNT);
const first = Number(process.env.FIRST || 0);
const sockets = [];
let connected = 0;
let errors = 0;
const t0 = performance.now();
for (let i = 0; i < count; i++) {
  const n = first + i;
  const s = io(`http://127.0.0.1:${ports[n % ports.length]}`, {
    transports: ["websocket"],
    auth: { userId: `user${Math.floor(n / 3)}` },
    // A refused or reset handshake (listen backlog overflow under a storm) retries.
    reconnectionDelay: 100,
    reconnectionDelayMax: 1000,
    forceNew: true,
  });
  s.once("connect", () => {
    if (++connected === count && process.connected) process.send({ ready: true, ms: performance.now() - t0, errors });
  });
  s.on("connect_error", () => {
    errors++;
  });
  sockets.push(s);
}
process.on("disconnect", () => process.exit(0));
