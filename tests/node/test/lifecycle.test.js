"use strict";
// Socket.IO lifecycle (issue 11, parts 2 and 3), with real Socket.IO servers
// and socket.io-client clients, embedded and with a real redis-server through
// node-redis and ioredis:
// - a socket the app disconnects before rollcall sees "connection" (a
//   "connect" listener, io.of(ns, fn), a "connection" listener registered
//   before attach, a parent namespace's listener of a dynamic namespace,
//   socket.disconnect(true)) is never counted; one disconnected after is
//   counted and removed; an engine client closed by disconnect(true) is not
//   left counted;
// - io.close() then io.listen(port): the new engine's clients are counted,
//   the old engine's hooks are gone.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const { requireRollcall, waitFor, startRedis, freePort, trustClientUserId } = require("./helpers");

const { Presence } = requireRollcall();
const FAST = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500, retryMs: 200 };

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

/** A socket.io-client socket with `auth`; resolves once connected (and, with `rejected`, disconnected by the server). */
function open(url, ns, auth, { rejected = false, transports = ["websocket"] } = {}) {
  const { io } = require("socket.io-client");
  const socket = io(url + (ns === "/" ? "" : ns), { forceNew: true, transports, reconnection: false, auth });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`socket ${JSON.stringify(auth)} on ${ns}: no ${rejected ? "disconnect" : "connect"} in 10 s`));
    }, 10000);
    const done = () => {
      clearTimeout(timer);
      resolve(socket);
    };
    socket.once("connect_error", (e) => {
      clearTimeout(timer);
      socket.close();
      reject(e);
    });
    if (rejected) socket.once("disconnect", done);
    else socket.once("connect", done);
  });
}

async function counts(p) {
  return {
    clients: await p.clientsCount(),
    root: await p.socketsCount(),
    x: await p.socketsCount({ namespace: "/x" }),
    dyn: await p.socketsCount({ namespace: "/dyn-1" }),
    users: await p.usersList(),
    ghost: await p.userSocketsCount("ghost"),
  };
}

describe("lifecycle", () => {
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    if (redis) await redis.stop();
  });

  for (const [mode, make] of MODES) {
    test(`${mode}: sockets the app disconnects before rollcall sees them are never counted`, async () => {
      const store = make ? await make(redis.url) : null;
      const httpServer = http.createServer();
      const { Server } = require("socket.io");
      const io = new Server(httpServer);
      trustClientUserId(io);
      const rejects = (socket, how) => socket.handshake.auth.reject === how;
      // The app's listeners, all registered before rollcall's.
      io.on("connect", (s) => rejects(s, "connect") && s.disconnect());
      io.of("/x", (s) => rejects(s, "of") && s.disconnect());
      io.on("connection", (s) => rejects(s, "connection") && s.disconnect());
      io.on("connection", (s) => rejects(s, "close") && s.disconnect(true));
      const dyn = io.of(/^\/dyn-\d+$/);
      dyn.on("connect", (s) => rejects(s, "dyn-connect") && s.disconnect());
      dyn.on("connection", (s) => rejects(s, "dyn") && s.disconnect(true));
      const presence = await Presence.attach(io, {
        ...FAST,
        ...(store ? { redis: store.client, prefix: `life-${mode}` } : {}),
      });
      // After rollcall's: counted, then removed.
      io.on("connection", (s) => rejects(s, "after") && s.disconnect());
      io.on("connection", (s) => rejects(s, "after-close") && s.disconnect(true));
      const events = [];
      presence.on("user connected", (u) => events.push(["connected", u]));
      presence.on("user disconnected", (u) => events.push(["disconnected", u]));
      await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
      const url = `http://127.0.0.1:${httpServer.address().port}`;
      const sockets = [];
      try {
        const cases = [
          ["/", "connect", ["websocket"]],
          ["/x", "of", ["websocket"]],
          ["/", "connection", ["websocket"]],
          ["/", "close", ["websocket"]],
          ["/", "close", ["polling"]],
          ["/dyn-1", "dyn-connect", ["websocket"]],
          ["/dyn-1", "dyn", ["websocket"]],
          ["/", "after", ["websocket"]],
          ["/", "after-close", ["websocket"]],
          ["/", "after-close", ["polling"]],
        ];
        for (const [ns, how, transports] of cases) {
          const s = await open(url, ns, { userId: "ghost", reject: how }, { rejected: true, transports });
          s.close();
        }
        // Accepted sockets, one per namespace, each on its own engine connection.
        for (const ns of ["/", "/x", "/dyn-1"]) sockets.push(await open(url, ns, { userId: "w" }));
        let last;
        await waitFor(
          async () => {
            last = await counts(presence);
            assert.deepEqual(last, { clients: 3, root: 1, x: 1, dyn: 1, users: ["w"], ghost: 0 });
          },
          { timeout: 10000, what: "only the accepted sockets counted" },
        );
        // Socket.IO's own view agrees.
        assert.equal(io.engine.clientsCount, 3);
        assert.equal(io.of("/").sockets.size, 1);
        // The ghost user was online only while a socket rollcall counted was connected.
        const ghost = events.filter((e) => e[1] === "ghost");
        assert.equal(ghost.length % 2, 0, `ghost events: ${JSON.stringify(ghost)}`);
      } finally {
        for (const s of sockets) s.close();
        await presence.close();
        await new Promise((r) => io.close(() => r()));
        if (store) await store.quit();
      }
    });
  }

  for (const [mode, make] of MODES) {
    test(`${mode}: io.close() then io.listen(port): the new engine's clients are counted, the old engine is unhooked`, async () => {
      const store = make ? await make(redis.url) : null;
      const { Server } = require("socket.io");
      const port1 = await freePort();
      const io = new Server();
      trustClientUserId(io);
      io.listen(port1);
      const presence = await Presence.attach(io, {
        ...FAST,
        ...(store ? { redis: store.client, prefix: `relisten-${mode}` } : {}),
      });
      const sockets = [];
      try {
        sockets.push(await open(`http://127.0.0.1:${port1}`, "/", { userId: "ann" }));
        await waitFor(async () => {
          assert.deepEqual([await presence.clientsCount(), await presence.socketsCount()], [1, 1]);
        });
        const oldEngine = io.engine;
        await new Promise((r) => io.close(() => r()));
        await waitFor(async () => {
          assert.deepEqual([await presence.clientsCount(), await presence.socketsCount()], [0, 0]);
        }, { what: "all closed" });
        const port2 = await freePort();
        io.listen(port2);
        assert.notEqual(io.engine, oldEngine, "a new engine");
        sockets.push(await open(`http://127.0.0.1:${port2}`, "/", { userId: "bob" }));
        sockets.push(await open(`http://127.0.0.1:${port2}`, "/", { userId: "cy" }, { transports: ["polling"] }));
        await waitFor(
          async () => {
            assert.deepEqual(
              { clients: await presence.clientsCount(), sockets: await presence.socketsCount(), users: await presence.usersList() },
              { clients: 2, sockets: 2, users: ["bob", "cy"] },
            );
          },
          { timeout: 10000, what: "the new engine's clients counted" },
        );
        // Only Socket.IO's own listener is left on the old engine.
        assert.equal(oldEngine.listenerCount("connection"), 1);
        sockets[2].close();
        await waitFor(async () => assert.equal(await presence.clientsCount(), 1), { what: "a new client closed" });
      } finally {
        for (const s of sockets) s.close();
        await presence.close();
        await new Promise((r) => io.close(() => r()));
        if (store) await store.quit();
      }
      // Closed: no listener of rollcall left on the engine.
      assert.equal(io.engine.listenerCount("connection"), 1);
    });
  }
});
