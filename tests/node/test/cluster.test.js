"use strict";
// A cluster: three Node server processes with rollcall, one real
// redis-server, 100+ real clients. Counts must be identical from every
// server and equal to the truth the test keeps; a server killed with
// SIGKILL is reaped within TTL + one reap interval, and each user it took
// offline gets exactly one "user disconnected" (reason "reaped") in the
// whole cluster; a server paused past its TTL (SIGSTOP) is reaped, then
// re-asserts its sockets when resumed (SIGCONT).
// The suite runs once with node-redis and once with ioredis.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { waitFor, startRedis, startNode } = require("./helpers");
const { plan, connectAll, onlineOncePerUser, truth, converge, eventsSince, withoutRepeats } = require("./cluster-checks");

const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500 };
const USERS = 45;
const ANONYMOUS = 15;

for (const clientKind of ["node-redis", "ioredis"]) {
  describe(`cluster of 3 servers with ${clientKind}`, () => {
    let redis;
    let nodes = [];
    const conns = [];
    let probeUsers;

    before(async () => {
      redis = await startRedis();
      nodes = await Promise.all([0, 1, 2].map((i) => startNode(i, { redisUrl: redis.url, clientKind, timings: TIMINGS })));
    });

    after(async () => {
      for (const c of conns) c.socket.close();
      for (const n of nodes) {
        if (n.alive) {
          n.child.kill("SIGCONT");
          n.child.kill("SIGKILL");
        }
      }
      if (redis) await redis.stop();
    });

    test("counts from every server equal the truth with 100+ clients", async () => {
      // Single-tab users on each server, users with tabs on several.
      const planned = plan(USERS, ANONYMOUS);
      assert.ok(planned.length >= 100, `${planned.length} clients`);
      probeUsers = ["user-000", "user-002", "user-008", "nobody"];

      const mark = Date.now();
      await connectAll(nodes, planned, conns);
      const expected = truth(conns, probeUsers);
      assert.equal(expected.users, USERS);
      await converge(nodes, expected, "all servers agree with the truth");

      // Each user came online exactly once, on exactly one server.
      onlineOncePerUser(eventsSince(nodes, mark), USERS);
    });

    test("kill -9 one server: reaped within TTL + reap interval, one 'reaped' event per user it took offline", async () => {
      const victim = nodes[2];
      const survivors = [nodes[0], nodes[1]];
      const before = new Set(conns.filter((c) => c.live && c.user).map((c) => c.user));
      const mark = Date.now();
      victim.child.kill("SIGKILL");
      for (const c of conns) if (c.server === 2) c.live = false;
      const after = new Set(conns.filter((c) => c.live && c.user).map((c) => c.user));
      const wentOffline = [...before].filter((u) => !after.has(u)).sort();
      assert.ok(wentOffline.length >= 3, `${wentOffline.length} users only on the killed server`);

      const took = await converge(survivors, truth(conns, probeUsers), "survivors agree after the kill");
      const bound = TIMINGS.ttlMs + TIMINGS.reapMs + 2000; // + slack for a loaded machine
      assert.ok(took <= bound, `counts were right after ${took} ms (bound ${bound})`);

      // The reap is finished once a survivor reports the node reaped; a
      // ping to each survivor then flushes whatever it emitted before.
      await waitFor(
        () => eventsSince(survivors, mark).some((e) => e.event === "reaped" && e.node === victim.nodeId),
        { what: "a 'node reaped' event" },
      );
      await Promise.all(survivors.map((n) => n.ask("ping")));
      const all = eventsSince(survivors, mark).filter((e) => e.event === "connected" || e.event === "disconnected");
      const events = withoutRepeats(all, victim.events);
      const offline = events.filter((e) => e.event === "disconnected");
      assert.deepEqual(offline.map((e) => e.user).sort(), wentOffline, "exactly one 'user disconnected' per user");
      assert.deepEqual([...new Set(offline.map((e) => e.reason))], ["reaped"]);
      assert.deepEqual(events.filter((e) => e.event === "connected"), []);
    });

    test("SIGSTOP one server past its TTL: reaped; SIGCONT: it re-asserts and counts are right again", async () => {
      const paused = nodes[1];
      const other = nodes[0];
      const mark = Date.now();
      const earlier = [...paused.events];
      paused.child.kill("SIGSTOP");
      paused.stopped = true;
      try {
        // Seen from the other server, the paused one is gone.
        const without = conns.map((c) => ({ ...c, live: c.live && c.server !== 1 }));
        await converge([other], truth(without, probeUsers), "the paused server is reaped");
      } finally {
        paused.child.kill("SIGCONT");
        paused.stopped = false;
      }
      // Its sockets never left: once it runs again, it heals the counts.
      await converge([other, paused], truth(conns, probeUsers), "the resumed server re-asserted");
      await Promise.all([other, paused].map((n) => n.ask("ping")));

      // Users that were only on the paused server went offline (reaped)
      // and came back (connected): one of each, in that order.
      const only = new Set(conns.filter((c) => c.live && c.server === 1 && c.user).map((c) => c.user));
      for (const c of conns) if (c.live && c.server !== 1 && c.user) only.delete(c.user);
      assert.ok(only.size > 0);
      const all = eventsSince([other, paused], mark).filter((e) => e.event === "connected" || e.event === "disconnected");
      const events = withoutRepeats(all, earlier);
      for (const user of only) {
        const mine = events.filter((e) => e.user === user).map((e) => `${e.event}${e.reason ? `:${e.reason}` : ""}`);
        assert.deepEqual(mine, ["disconnected:reaped", "connected"], user);
      }
      const others = events.filter((e) => !only.has(e.user));
      assert.deepEqual(others, [], "no events for users that stayed online elsewhere");
    });

    test("a clean close: the server leaves and its users go offline once (shutdown)", async () => {
      const leaving = nodes[1];
      const mark = Date.now();
      const before = new Set(conns.filter((c) => c.live && c.user).map((c) => c.user));
      await leaving.ask("close", {}, 10000);
      for (const c of conns) if (c.server === 1) c.live = false;
      const after = new Set(conns.filter((c) => c.live && c.user).map((c) => c.user));
      const wentOffline = [...before].filter((u) => !after.has(u)).sort();
      assert.ok(wentOffline.length > 0);
      await converge([nodes[0]], truth(conns, probeUsers), "after the clean close");
      await waitFor(() => assert.equal(leaving.alive, false), { what: "the server exits" });
      await nodes[0].ask("ping");
      const offline = nodes.flatMap((n) => n.events.filter((e) => e.at >= mark && e.event === "disconnected"));
      assert.deepEqual(offline.map((e) => e.user).sort(), wentOffline);
      assert.deepEqual([...new Set(offline.map((e) => e.reason))], ["shutdown"]);
    });
  });
}
