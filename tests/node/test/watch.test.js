"use strict";
// The change feed (presence.watch) and last seen (presence.lastSeen) as an
// app sees them: three server processes on one real redis-server, each
// with a watcher, real socket.io-client clients, a server killed with
// SIGKILL; both Redis clients; and single-server mode in this process.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { requireRollcall, waitFor, startRedis, startNode, startServer, connect, room } = require("./helpers");

const { Presence } = requireRollcall();
const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500 };

/** The global online/offline story of a watcher's changes. */
const story = (changes) =>
  changes.filter((c) => c.type === "online" || c.type === "offline").map((c) => `${c.type}:${c.userId}:${c.reason || ""}`);

for (const clientKind of ["node-redis", "ioredis"]) {
  describe(`change feed on every server (${clientKind})`, () => {
    let redis;
    let nodes = [];
    const sockets = [];

    before(async () => {
      redis = await startRedis();
      nodes = await Promise.all([0, 1, 2].map((i) => startNode(i, { redisUrl: redis.url, clientKind, timings: TIMINGS })));
      await Promise.all(nodes.map((n) => n.ask("watch")));
    });

    after(async () => {
      for (const s of sockets) s.close();
      for (const n of nodes) if (n.alive) n.child.kill("SIGKILL");
      if (redis) await redis.stop();
    });

    test("every server sees every change of the cluster, in the same order", async () => {
      sockets.push(await connect(nodes[0].url, { userId: "ann" }));
      sockets.push(await connect(nodes[1].url, { userId: "ann" }));
      sockets.push(await connect(nodes[1].url, { userId: "bob" }));
      sockets.push(await connect(nodes[2].url, { userId: "carl", ns: "/chat" }));
      await room(sockets[2], "lobby");
      sockets[0].close();
      // ann keeps her socket on server 1: no offline for her.
      const want = (changes) =>
        ["online:ann:", "online:bob:", "online:carl:"].every((s) => story(changes).includes(s)) &&
        changes.some((c) => c.type === "joined" && c.userId === "bob" && c.room === "lobby");
      await waitFor(() => nodes.every((n) => want(n.changes)), { what: "every watcher saw the joins", timeout: 10000 });
      // Settled: the same changes, same ids, same order, on every server.
      await waitFor(
        () => {
          const ids = nodes.map((n) => n.changes.map((c) => c.id).join(","));
          assert.ok(ids.every((x) => x === ids[0]), ids.join("\n"));
        },
        { what: "every watcher has the same changes" },
      );
      const changes = nodes[0].changes;
      assert.deepEqual(story(changes).sort(), ["online:ann:", "online:bob:", "online:carl:"]);
      const joined = changes
        .filter((c) => c.type === "joined")
        .map((c) => `${c.userId}@${c.namespace}${c.room ? `#${c.room}` : ""}`)
        .sort();
      assert.deepEqual(joined, ["ann@/", "bob@/", "bob@/#lobby", "carl@/chat"]);
      // Each change names the server whose call made it.
      const by = Object.fromEntries(changes.filter((c) => c.type === "online").map((c) => [c.userId, c.nodeId]));
      assert.equal(by.bob, nodes[1].nodeId);
      assert.equal(by.carl, nodes[2].nodeId);
      assert.ok([nodes[0].nodeId, nodes[1].nodeId].includes(by.ann));
      assert.equal(new Set(changes.map((c) => c.id)).size, changes.length, "no id twice");
      assert.equal((await nodes[0].ask("lastSeen", { user: "ann" })).lastSeen, null, "ann is online");
    });

    test("kill -9 a server: its users go offline (reaped) in every survivor's feed; last seen says when", async () => {
      const victim = nodes[2];
      const survivors = [nodes[0], nodes[1]];
      victim.child.kill("SIGKILL");
      sockets[3].close();
      await waitFor(() => survivors.every((n) => story(n.changes).includes("offline:carl:reaped")), {
        what: "carl reaped in every feed",
        timeout: TIMINGS.ttlMs + TIMINGS.reapMs + 8000,
      });
      const left = survivors.map((n) => n.changes.filter((c) => c.userId === "carl" && c.type === "left"));
      for (const l of left) assert.deepEqual(l.map((c) => [c.namespace, c.reason]), [["/chat", "reaped"]]);
      const offline = survivors[0].changes.find((c) => c.userId === "carl" && c.type === "offline");
      assert.ok(survivors.map((n) => n.nodeId).includes(offline.nodeId), "a survivor reaped it");
      for (const n of survivors) {
        assert.equal((await n.ask("lastSeen", { user: "carl" })).lastSeen, offline.at, `server ${n.index}`);
        assert.equal((await n.ask("lastSeen", { user: "nobody" })).lastSeen, null);
      }
    });
  });
}

describe("change feed with a client command timeout (ioredis commandTimeout: 300)", () => {
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    if (redis) await redis.stop();
  });

  test("a quiet feed is no error: the watcher blocks less than the client's timeout, and reads on", async () => {
    const Redis = require("ioredis");
    const client = new Redis(redis.url, { commandTimeout: 300, maxRetriesPerRequest: 1 });
    const server = await startServer();
    const presence = await Presence.attach(server.io, { redis: client, userId: (s) => s.handshake.auth.userId });
    const errors = [];
    presence.on("store error", (e) => errors.push(e.message));
    const changes = [];
    const reading = (async () => {
      for await (const c of presence.watch()) {
        changes.push(c);
        if (c.type === "offline") break;
      }
    })();
    try {
      // Quiet for several block times, then a user comes and goes.
      const quietUntil = Date.now() + 1500;
      await waitFor(() => assert.ok(Date.now() >= quietUntil), { what: "a quiet feed", timeout: 5000 });
      const s = await connect(server.url, { userId: "ann" });
      s.close();
      // A deadline, so a lost change fails the test instead of hanging it.
      let done = false;
      reading.then(() => (done = true));
      await waitFor(() => done, { what: "ann's offline change", timeout: 20000 });
      await reading;
      assert.deepEqual(story(changes), ["online:ann:", "offline:ann:disconnect"]);
      assert.deepEqual(errors, [], "no store errors");
    } finally {
      await presence.close();
      await server.close();
      await client.quit().catch(() => {});
    }
  });
});

describe("change feed without Redis (single server)", () => {
  test("watch and lastSeen work on the embedded store; leaving the loop or close() stops a watcher", async () => {
    const server = await startServer();
    const presence = await Presence.attach(server.io, { userId: (s) => s.handshake.auth.userId });
    const changes = [];
    const reading = (async () => {
      for await (const c of presence.watch()) {
        changes.push(c);
        if (c.type === "offline") break;
      }
    })();
    // A watcher nobody reads from; close() must stop it too.
    const idle = presence.watch();
    try {
      const s = await connect(server.url, { userId: "ann" });
      await room(s, "lobby");
      s.close();
      await reading;
      assert.deepEqual(
        changes.map((c) => [c.type, c.userId, c.namespace, c.room, c.reason]),
        [
          ["online", "ann", undefined, undefined, undefined],
          ["joined", "ann", "/", undefined, undefined],
          ["joined", "ann", "/", "lobby", undefined],
          ["offline", "ann", undefined, undefined, "disconnect"],
          ["left", "ann", "/", undefined, "disconnect"],
          ["left", "ann", "/", "lobby", "disconnect"],
        ].slice(0, changes.length),
      );
      assert.equal(changes.at(-1).type, "offline");
      assert.equal(await presence.lastSeen("ann"), changes.at(-1).at);
      assert.equal(await presence.lastSeen("bob"), null);
      // Resume after the first: the rest of what the feed holds.
      const rest = [];
      for await (const c of presence.watch({ from: changes[0].id })) {
        rest.push(c);
        if (c.type === "left" && c.room === "lobby") break;
      }
      assert.deepEqual(rest.slice(0, changes.length - 1), changes.slice(1));
      assert.throws(() => presence.watch({ from: "yesterday" }), TypeError);
      assert.throws(() => presence.watch({ since: 1 }), TypeError);
    } finally {
      await presence.close();
      await server.close();
    }
    // close() ended the idle watcher.
    assert.deepEqual(await idle.next(), { value: undefined, done: true });
    assert.throws(() => presence.watch(), /closed/);
  });
});
