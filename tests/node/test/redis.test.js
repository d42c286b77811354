"use strict";
// One server process with a real redis-server: every supported client
// (node-redis 4, 5, 6; ioredis 5, 6; RESP2 and RESP3), Redis errors, and a
// Redis that restarts empty.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { requireRollcall, waitFor, startRedis, startServer, connect, room, recordEvents } = require("./helpers");

const { Presence } = requireRollcall();
const FAST = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500, retryMs: 200 };

/** Client factories: [name, (url) => Promise<{client, quit}>]. */
const CLIENTS = [
  ["node-redis 6 (RESP3)", "redis", {}],
  ["node-redis 6 (RESP2)", "redis", { RESP: 2 }],
  ["node-redis 5", "redis5", {}],
  ["node-redis 5 (RESP3)", "redis5", { RESP: 3 }],
  ["node-redis 4", "redis4", {}],
  ["ioredis 6 (RESP3)", "ioredis", {}],
  ["ioredis 6 (RESP2)", "ioredis", { protocol: 2 }],
  ["ioredis 5", "ioredis5", {}],
].map(([name, module, extra]) => [
  name,
  async (url) => {
    if (module.startsWith("ioredis")) {
      const Redis = require(module);
      const client = new Redis(url, { maxRetriesPerRequest: 1, ...extra });
      return { client, quit: () => client.quit().catch(() => {}) };
    }
    const { createClient } = require(module);
    const client = createClient({ url, ...extra });
    client.on("error", () => {});
    await client.connect();
    return { client, quit: () => client.quit().catch(() => {}) };
  },
]);

describe("Redis clients", () => {
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    if (redis) await redis.stop();
  });

  for (const [name, make] of CLIENTS) {
    test(`${name}: writes, reads and events`, async () => {
      const { client, quit } = await make(redis.url);
      try {
        await clientCase(name, client);
      } finally {
        await quit();
      }
    });
  }

  /** The case of one client: the server, presence, sockets and checks. */
  async function clientCase(name, client) {
    {
      const server = await startServer();
      const prefix = `t-${name.replace(/\W+/g, "-")}`;
      const presence = await Presence.attach(server.io, { ...FAST, redis: client, prefix });
      const events = recordEvents(presence);
      const sockets = [];
      const send = (...args) => (client.call ? client.call(...args) : client.sendCommand(args));
      const connections = async () => String(await send("CLIENT", "LIST")).trim().split("\n").length;
      const before = await connections();
      // The change feed, read on a connection of its own until bob leaves.
      const changes = [];
      const reading = (async () => {
        for await (const c of presence.watch()) {
          changes.push(c);
          if (c.type === "offline" && c.userId === "bob") break;
        }
      })();
      try {
        sockets.push(await connect(server.url, { userId: "ann" }));
        sockets.push(await connect(server.url, { userId: "ann", ns: "/chat" }));
        sockets.push(await connect(server.url, { userId: "bob" }));
        sockets.push(await connect(server.url, {}));
        await room(sockets[0], "news");
        await waitFor(async () => {
          assert.equal(await presence.clientsCount(), 4);
          assert.equal(await presence.socketsCount(), 3);
          assert.equal(await presence.socketsCount({ namespace: "/chat" }), 1);
          assert.equal(await presence.usersCount(), 2);
          assert.deepEqual(await presence.usersList(), ["ann", "bob"]);
          assert.deepEqual(await presence.usersList({ room: "news" }), ["ann"]);
          assert.equal(await presence.userSocketsCount("ann"), 2);
          assert.equal(await presence.isUserConnected("bob"), true);
          assert.equal(await presence.isUserConnected("eve"), false);
        });
        sockets[2].close();
        await waitFor(() => assert.deepEqual(events.filter((e) => e.type === "disconnected").map((e) => e.user), ["bob"]));
        assert.equal(await presence.usersCount(), 1);
        await reading;
        const story = changes.map((c) => [c.type, c.userId, c.namespace, c.room, c.reason]);
        assert.deepEqual(
          story.filter(([type]) => type === "online" || type === "offline"),
          [
            ["online", "ann", undefined, undefined, undefined],
            ["online", "bob", undefined, undefined, undefined],
            ["offline", "bob", undefined, undefined, "disconnect"],
          ],
        );
        assert.deepEqual(
          story.filter(([type]) => type === "joined").sort(),
          [
            ["joined", "ann", "/", undefined, undefined],
            ["joined", "ann", "/", "news", undefined],
            ["joined", "ann", "/chat", undefined, undefined],
            ["joined", "bob", "/", undefined, undefined],
          ],
        );
        assert.ok(changes.every((c) => c.nodeId === presence.nodeId && Number.isInteger(c.at) && c.changeId));
        assert.equal(new Set(changes.map((c) => c.id)).size, changes.length, "ids are unique");
        // Last seen: bob's offline time; nobody else has one.
        const bobLeft = changes.find((c) => c.type === "offline");
        assert.equal(await presence.lastSeen("bob"), bobLeft.at);
        assert.equal(await presence.lastSeen("ann"), null);
        assert.equal(await presence.lastSeen("eve"), null);
        // Resumed from the first change: the rest again, in order.
        const resumed = [];
        for await (const c of presence.watch({ from: changes[0].id })) {
          resumed.push(c);
          if (resumed.length === changes.length - 1) break;
        }
        assert.deepEqual(resumed, changes.slice(1));
        // Leaving the loops closed the watchers' connections.
        await waitFor(async () => assert.equal(await connections(), before), { what: "the watchers' connections closed" });
      } finally {
        for (const s of sockets) s.close();
        await presence.close();
        await server.close();
      }
      // A clean close leaves nothing of this prefix behind but the change
      // feed and last seen (they expire on their own).
      const keys = await send("KEYS", `{${prefix}}*`);
      assert.deepEqual([...keys].sort(), [`{${prefix}}:feed`, `{${prefix}}:seen`]);
    }
  }
});

describe("Redis failures", () => {
  let redis;
  after(async () => {
    if (redis) await redis.stop();
  });

  test("attach rejects when its client cannot reach Redis; nothing keeps running", async () => {
    const { createClient } = require("redis");
    const client = createClient({ url: "redis://127.0.0.1:1" }); // never connected
    const server = await startServer();
    try {
      await assert.rejects(Presence.attach(server.io, { ...FAST, redis: client }), /could not register/);
      // No listener is left on the server.
      assert.equal(server.io.of("/").listenerCount("connection"), 1);
    } finally {
      await server.close();
    }
  });

  test("Redis restarts empty: reads reject meanwhile, local state stays right, counts heal (NOSCRIPT, re-assert)", async () => {
    redis = await startRedis();
    const port = redis.port;
    const { createClient } = require("redis");
    const client = createClient({
      url: redis.url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: () => 50 },
    });
    client.on("error", () => {});
    await client.connect();
    const server = await startServer();
    const presence = await Presence.attach(server.io, { ...FAST, redis: client });
    const storeErrors = [];
    presence.on("store error", (e) => storeErrors.push(e));
    const sockets = [];
    try {
      sockets.push(await connect(server.url, { userId: "ann" }));
      const bob = await connect(server.url, { userId: "bob" });
      sockets.push(bob);
      await waitFor(async () => assert.equal(await presence.usersCount(), 2));

      await redis.stop();
      await assert.rejects(presence.usersCount());
      // Sockets come and go while Redis is down.
      bob.close();
      sockets.push(await connect(server.url, { userId: "cy" }));
      sockets.push(await connect(server.url, {}));

      redis = await startRedis(port); // empty: no keys, no scripts
      await waitFor(
        async () => {
          assert.deepEqual(await presence.usersList(), ["ann", "cy"]);
          assert.equal(await presence.socketsCount(), 3);
          assert.equal(await presence.clientsCount(), 3);
        },
        { what: "counts healed after the restart" },
      );
      assert.ok(storeErrors.length > 0, "the failures were reported");
    } finally {
      for (const s of sockets) s.close();
      await presence.close();
      await server.close();
      await client.quit().catch(() => {});
    }
  });
});
