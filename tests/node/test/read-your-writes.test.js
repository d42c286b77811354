"use strict";
// Read-your-writes on one node (issue 11, part 5): a read started after the
// node was given an input reflects it. Real Socket.IO server, real
// socket.io-client sockets, embedded and with a real redis-server through
// node-redis and ioredis. Every socket has its own user and room, so each
// read has one right answer whatever the other sockets do meanwhile:
// in "connection" the user has 1 socket (and usersCount() >= 1, the
// README's example), after socket.join its room has 1 socket, after
// socket.leave 0, in "disconnect" the user has 0 sockets.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const { requireRollcall, waitFor, startRedis, trustClientUserId } = require("./helpers");

const { Presence } = requireRollcall();
const FAST = { ttlMs: 4000, heartbeatMs: 1000, reapMs: 1000, retryMs: 200 };
const SOCKETS = 120;
const CONCURRENCY = 20;

const MODES = [
  ["embedded", null],
  [
    "node-redis",
    async (url) => {
      const { createClient } = require("redis");
      const client = createClient({ url });
      client.on("error", () => {});
      await client.connect();
      return { client, quit: () => client.quit().catch(() => {}) };
    },
  ],
  [
    "ioredis",
    async (url) => {
      const Redis = require("ioredis");
      const client = new Redis(url, { maxRetriesPerRequest: 1 });
      client.on("error", () => {});
      return { client, quit: () => client.quit().catch(() => {}) };
    },
  ],
];

describe("read-your-writes", () => {
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    if (redis) await redis.stop();
  });

  for (const [mode, make] of MODES) {
    test(`${mode}: reads in connection, after join, after leave and in disconnect see this node's inputs`, async () => {
      const store = make ? await make(redis.url) : null;
      const { Server } = require("socket.io");
      const httpServer = http.createServer();
      const io = new Server(httpServer);
      trustClientUserId(io);
      const presence = await Presence.attach(io, {
        ...FAST,
        ...(store ? { redis: store.client, prefix: `ryw-${mode}` } : {}),
      });
      const results = []; // [where, got, want]
      const failures = [];
      const check = (where, promise, want) =>
        promise.then(
          (got) => results.push([where, got, want]),
          (e) => failures.push(`${where}: ${e.message}`),
        );
      // The app's handler, registered after attach as in the README.
      io.on("connection", (socket) => {
        const user = socket.handshake.auth.userId;
        const room = `r-${user}`;
        const first = Promise.all([
          check("connection", presence.userSocketsCount(user), 1),
          presence.usersCount().then(
            (n) => results.push(["connection usersCount >= 1", n >= 1 ? 1 : 0, 1]),
            (e) => failures.push(`usersCount: ${e.message}`),
          ),
        ]);
        socket.on("join", (ack) => {
          socket.join(room);
          first.then(() => check("join", presence.socketsCount({ room }), 1)).then(() => ack());
        });
        socket.on("leave", (ack) => {
          socket.leave(room);
          check("leave", presence.socketsCount({ room }), 0).then(() => ack());
        });
        socket.on("disconnect", () => {
          check("disconnect", presence.userSocketsCount(user), 0);
        });
      });
      await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
      const url = `http://127.0.0.1:${httpServer.address().port}`;
      const { io: client } = require("socket.io-client");
      const live = new Set();
      try {
        let next = 0;
        const one = async () => {
          const i = next++;
          const s = client(url, { forceNew: true, transports: ["websocket"], reconnection: false, auth: { userId: `u${i}` } });
          live.add(s);
          await new Promise((resolve, reject) => {
            s.once("connect", resolve);
            s.once("connect_error", reject);
          });
          await s.timeout(10000).emitWithAck("join");
          await s.timeout(10000).emitWithAck("leave");
          s.close();
          live.delete(s);
        };
        const lane = async () => {
          while (next < SOCKETS) await one();
        };
        await Promise.all(Array.from({ length: CONCURRENCY }, lane));
        await waitFor(() => results.length + failures.length === SOCKETS * 5, {
          timeout: 20000,
          what: "every read answered",
        });
        const stale = results.filter(([, got, want]) => got !== want);
        const by = {};
        for (const [where] of stale) by[where] = (by[where] || 0) + 1;
        console.log(`read-your-writes ${mode}: ${stale.length} stale of ${results.length} reads ${JSON.stringify(by)}; ${failures.length} failed`);
        assert.deepEqual(failures, []);
        assert.equal(stale.length, 0, `${stale.length} stale answers: ${JSON.stringify(by)}`);
      } finally {
        for (const s of live) s.close();
        await presence.close();
        await new Promise((r) => io.close(() => r()));
        if (store) await store.quit();
      }
    });
  }
});
