"use strict";
// Issue 11, item 1: a lost reply loses no event. The app's Redis client
// gives up on commands after 500 ms (ioredis commandTimeout) while Redis
// holds every write for 2 s (CLIENT PAUSE 2000 WRITE): the scripts run
// once the pause ends, but their replies are gone. rollcall sends each such
// call again with the same call id and gets the reply Redis kept, so every
// "user connected" and "user disconnected" of the users who came and went
// meanwhile fires exactly once, cluster-wide. Before: 11 of 15
// disconnects and 1 of 12 connects never fired.
// Real redis-server, 2 real server processes (ioredis), real socket.io-client clients.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { waitFor, startRedis, startNode, connect, redisCli } = require("./helpers");

const TIMINGS = { ttlMs: 4000, heartbeatMs: 1000, reapMs: 1000 };
// 500 ms, not less: a loaded CI machine must still register at start-up.
const ENV = { REDIS_COMMAND_TIMEOUT: "500" };

describe("replies lost to a client command timeout during CLIENT PAUSE WRITE", () => {
  let redis;
  const nodes = [];
  const conns = [];

  before(async () => {
    redis = await startRedis();
    // One by one, so `after` stops every server that started.
    for (const i of [0, 1]) nodes.push(await startNode(i, { redisUrl: redis.url, clientKind: "ioredis", timings: TIMINGS, env: ENV }));
  });

  after(async () => {
    for (const c of conns) c.socket.close();
    for (const n of nodes) if (n.alive) n.child.kill("SIGKILL");
    if (redis) await redis.stop();
  });

  /** Waits until both servers count exactly the users the test holds sockets of. */
  async function converge(what) {
    const want = [...new Set(conns.filter((c) => c.live).map((c) => c.user))].sort();
    await waitFor(
      async () => {
        for (const n of nodes) {
          const counts = await n.counts([]);
          assert.deepEqual(counts.list, want, `server ${n.index}`);
        }
      },
      { timeout: 30000, interval: 100, what },
    );
  }

  /** Events of a kind for `user`, from every server, since `mark`. */
  const eventsOf = (kind, user, mark) =>
    nodes.flatMap((n) => n.events.filter((e) => e.at >= mark && e.event === kind && e.user === user));

  test("every user who came or went during the pause gets exactly one event", async () => {
    const leaving = [];
    for (let i = 0; i < 15; i++) leaving.push(`leaving-${i}`);
    for (const [i, user] of leaving.entries()) {
      conns.push({ user, socket: await connect(nodes[i % 2].url, { userId: user }), live: true });
    }
    await converge("the first users are counted");

    const mark = Date.now();
    const coming = [];
    const pausing = redisCli(redis.port, "CLIENT", "PAUSE", "2000", "WRITE");
    await pausing;
    // Users come and go one by one while the writes are held; each write
    // is a call whose reply the client will have given up on.
    for (let i = 0; i < 15; i++) {
      const c = conns[i];
      c.socket.close();
      c.live = false;
      if (i < 12) {
        const user = `coming-${i}`;
        coming.push(user);
        conns.push({ user, socket: await connect(nodes[i % 2].url, { userId: user }), live: true });
      }
      await new Promise((r) => setImmediate(r));
    }
    await converge("counts right after the pause");
    // Every event arrives (the check below says which did not).
    await waitFor(
      () =>
        leaving.every((u) => eventsOf("disconnected", u, mark).length > 0) &&
        coming.every((u) => eventsOf("connected", u, mark).length > 0),
      { timeout: 20000, what: "an event for every user who came or went" },
    ).catch(() => {});
    // Reads wait for each server's writes in doubt: once both answer, no
    // late repeat can still be on its way.
    await converge("counts still right");
    const missing = [];
    for (const u of leaving) {
      const n = eventsOf("disconnected", u, mark).length;
      if (n !== 1) missing.push(`${u}: ${n} "user disconnected"`);
    }
    for (const u of coming) {
      const n = eventsOf("connected", u, mark).length;
      if (n !== 1) missing.push(`${u}: ${n} "user connected"`);
    }
    assert.deepEqual(missing, [], `exactly one event per user (${missing.length} of ${leaving.length + coming.length} wrong)`);
    // Each carries a change id of its own (a repeat would share one).
    const ids = [...leaving.map((u) => eventsOf("disconnected", u, mark)), ...coming.map((u) => eventsOf("connected", u, mark))]
      .flat()
      .map((e) => e.changeId);
    assert.ok(ids.every((id) => typeof id === "string" && id.length > 0), "every event has a change id");
    assert.equal(new Set(ids).size, ids.length, "distinct transitions have distinct change ids");
    const errors = nodes.flatMap((n) => n.events.filter((e) => e.at >= mark && e.event === "store_error"));
    assert.ok(errors.length > 0, "the client's command timeout really fired (store errors seen)");
  });
});
