"use strict";
// Issue 11, item 4: incarnation ids never repeat. A server with an explicit
// nodeId is paused (SIGSTOP) past its TTL and reaped by another server; a
// new process starts with the same nodeId and takes users; then the paused
// one is resumed (SIGCONT). Each process draws its own nonce, so the resumed
// one is fenced instead of renewing a lease that is now its successor's,
// registers again beside it, and every user is counted. Before the nonce,
// the counts settled at 15 of 25 and stayed there.
// Real redis-server, real server processes, real socket.io-client clients;
// once with node-redis and once with ioredis.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { waitFor, startRedis, startNode, connect } = require("./helpers");

const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500 };

for (const clientKind of ["node-redis", "ioredis"]) {
  describe(`a paused server's nodeId reused by a new process (${clientKind})`, () => {
    let redis;
    const nodes = [];
    const sockets = [];

    before(async () => {
      redis = await startRedis();
    });

    after(async () => {
      for (const s of sockets) s.close();
      for (const n of nodes) {
        if (n.alive) {
          n.child.kill("SIGCONT");
          n.child.kill("SIGKILL");
        }
      }
      if (redis) await redis.stop();
    });

    async function open(node, prefix, count) {
      for (let i = 0; i < count; i++) sockets.push(await connect(node.url, { userId: `${prefix}-${i}` }));
    }

    /** Waits until every server in `servers` reports `users` users and sockets. */
    async function counted(servers, users, what) {
      await waitFor(
        async () => {
          for (const n of servers) {
            const c = await n.counts([]);
            assert.equal(c.users, users, `server ${n.index}: users`);
            assert.equal(c.sockets, users, `server ${n.index}: sockets`);
          }
        },
        { timeout: 20000, interval: 50, what },
      );
    }

    test("paused past its TTL, reaped, replaced under the same nodeId, resumed: every user counted", async () => {
      const env = { NODE_ID: "web-1" };
      const old = await startNode(0, { redisUrl: redis.url, clientKind, timings: TIMINGS, env });
      const reaper = await startNode(1, { redisUrl: redis.url, clientKind, timings: TIMINGS });
      nodes.push(old, reaper);
      assert.equal(old.nodeId, "web-1");
      await open(old, "old", 10);
      await open(reaper, "other", 5);
      await counted([old, reaper], 15, "15 users before the pause");

      old.child.kill("SIGSTOP");
      // Reaped: the reap forgets the node id.
      await counted([reaper], 5, "the paused server is reaped");
      await waitFor(() => reaper.events.some((e) => e.event === "reaped" && e.node === "web-1"), {
        what: "a 'node reaped' event for web-1",
      });

      const successor = await startNode(2, { redisUrl: redis.url, clientKind, timings: TIMINGS, env });
      nodes.push(successor);
      assert.equal(successor.nodeId, "web-1");
      await open(successor, "new", 10);
      await counted([reaper, successor], 15, "the successor's users counted");

      old.child.kill("SIGCONT");
      // The resumed process still holds its 10 sockets: 25 users, and it
      // stays 25 (the successor's share is not overwritten).
      await counted([old, reaper, successor], 25, "all 25 users counted after the resume");
      await waitFor(() => old.events.some((e) => e.event === "fenced"), { what: "the resumed server is fenced" });
      // It stays 25 on every server for a full TTL and more (the old bug
      // settled after the next reaps), asked again and again.
      const until = Date.now() + TIMINGS.ttlMs + 4 * TIMINGS.reapMs;
      while (Date.now() < until) {
        for (const n of [old, reaper, successor]) {
          const c = await n.counts([]);
          assert.equal(c.users, 25, `server ${n.index}: users after the resume`);
          assert.equal(c.sockets, 25, `server ${n.index}: sockets after the resume`);
        }
      }
      assert.deepEqual(
        [reaper, successor, old].flatMap((n) => n.events.filter((e) => e.event === "store_error")),
        [],
        "no store errors",
      );
    });
  });
}
