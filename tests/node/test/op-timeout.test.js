"use strict";
// opTimeoutMs (issue 11, part 9): node-redis waits forever on a Redis that
// does not answer; rollcall answers such a call to the core as failed after
// opTimeoutMs, ignores its late reply, and heals once Redis answers again.
// A real redis-server, SIGSTOPped; a real Socket.IO server and client.

const { describe, test, after } = require("node:test");
const assert = require("node:assert/strict");
const { requireRollcall, waitFor, startRedis, startServer, connect } = require("./helpers");

const { Presence } = requireRollcall();
const FAST = { ttlMs: 4000, heartbeatMs: 1000, reapMs: 1000, retryMs: 200 };

describe("opTimeoutMs", () => {
  let redis;
  after(async () => {
    if (redis) {
      redis.child.kill("SIGCONT");
      await redis.stop();
    }
  });

  test("options: whole numbers from 1 ms, TypeError / RangeError otherwise", async () => {
    const server = await startServer();
    try {
      for (const [bad, Err] of [
        ["100", TypeError],
        [1.5, TypeError],
        [null, TypeError],
        [0, RangeError],
        [-1, RangeError],
        [2 ** 31, RangeError],
      ]) {
        await assert.rejects(
          async () => Presence.attach(server.io, { opTimeoutMs: bad }),
          (e) => e instanceof Err && /opTimeoutMs/.test(e.message),
          `opTimeoutMs: ${String(bad)}`,
        );
      }
      const p = await Presence.attach(server.io, { opTimeoutMs: 250 });
      await p.close();
    } finally {
      await server.close();
    }
  });

  test("node-redis, redis-server SIGSTOPped: the call fails after opTimeoutMs, reads reject, counts heal after SIGCONT", async () => {
    redis = await startRedis();
    const { createClient } = require("redis");
    const client = createClient({ url: redis.url });
    client.on("error", () => {});
    await client.connect();
    const server = await startServer();
    const presence = await Presence.attach(server.io, { ...FAST, redis: client, opTimeoutMs: 300 });
    const errors = [];
    presence.on("store error", (e) => errors.push({ message: e.message, at: Date.now() }));
    const warnings = [];
    const onWarning = (w) => warnings.push(w.message);
    process.on("warning", onWarning);
    const sockets = [];
    try {
      sockets.push(await connect(server.url, { userId: "ann" }));
      await waitFor(async () => assert.equal(await presence.socketsCount(), 1));
      redis.child.kill("SIGSTOP");
      const paused = Date.now();
      sockets.push(await connect(server.url, { userId: "bob" }));
      await waitFor(() => errors.some((e) => /did not answer within 300 ms/.test(e.message)), {
        timeout: 10000,
        what: "a store error for the call Redis did not answer",
      });
      const first = errors.find((e) => /did not answer within 300 ms/.test(e.message));
      console.log(`op timeout: store error ${first.at - paused} ms after SIGSTOP: ${first.message}`);
      assert.ok(first.at - paused < 3000, `${first.at - paused} ms`);
      // A read waits for bob's write, which cannot land: it rejects, clearly, in time.
      const t0 = Date.now();
      await assert.rejects(presence.usersCount(), /rollcall: .*(did not answer|waited 300 ms)/);
      assert.ok(Date.now() - t0 < 3000, `read rejected after ${Date.now() - t0} ms`);
      redis.child.kill("SIGCONT");
      await waitFor(
        async () => {
          assert.deepEqual(
            [await presence.socketsCount(), await presence.usersList()],
            [2, ["ann", "bob"]],
          );
        },
        { timeout: 15000, what: "counts after SIGCONT" },
      );
      // The late replies were ignored, not fed to the core as unknown tokens.
      assert.deepEqual(warnings.filter((w) => /token/i.test(w)), []);
    } finally {
      process.off("warning", onWarning);
      redis.child.kill("SIGCONT");
      for (const s of sockets) s.close();
      await presence.close().catch(() => {});
      await server.close();
      await client.quit().catch(() => {});
    }
  });
});
