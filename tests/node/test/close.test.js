"use strict";
// close() is bounded by a lack of progress, not by its whole time: a
// server whose leave takes many slices keeps leaving while Redis answers
// (here every answer of Redis is held 200 ms by a proxy, so the leave, one
// field per slice, lasts longer than the bound), and gives up with a clear
// error once Redis stops answering (SIGSTOP), leaving its share for the
// others to reap.

const { test, after } = require("node:test");
const net = require("node:net");
const assert = require("node:assert/strict");
const { requireRollcall, startRedis, startServer, connect, redisCli } = require("./helpers");

const { Presence } = requireRollcall();
// The bound is max(ttlMs, 5000) ms without a reply.
const TIMINGS = { ttlMs: 3000, heartbeatMs: 500, reapMs: 500, reapSlice: 1, graceMs: 0 };
const BOUND_MS = 5000;

const USERS = 20;
const DELAY_MS = 200;

const cleanups = [];

/** A TCP proxy to `port` that holds each answer DELAY_MS while `slow()` says so. */
async function proxy(port, slow) {
  const server = net.createServer((c) => {
    const r = net.connect(port, "127.0.0.1");
    c.on("data", (d) => r.write(d));
    r.on("data", (d) => (slow() ? setTimeout(() => c.writable && c.write(d), DELAY_MS) : c.write(d)));
    const end = () => {
      c.destroy();
      r.destroy();
    };
    c.on("error", end).on("close", end);
    r.on("error", end).on("close", end);
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  cleanups.push(() => new Promise((ok) => server.close(() => ok())));
  return server.address().port;
}
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function setup(prefix, slow = () => false) {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const { createClient } = require("redis");
  const client = createClient({ url: `redis://127.0.0.1:${await proxy(redis.port, slow)}` });
  client.on("error", () => {});
  await client.connect();
  cleanups.push(() => client.disconnect());
  const server = await startServer();
  cleanups.push(() => server.close());
  const presence = await Presence.attach(server.io, { ...TIMINGS, redis: client, prefix });
  const sockets = [];
  for (let i = 0; i < USERS; i++) sockets.push(await connect(server.url, { userId: `user-${i}` }));
  cleanups.push(async () => sockets.forEach((s) => s.close()));
  // Every user counted (a read waits for this server's writes).
  assert.equal(await presence.usersCount(), USERS);
  return { redis, client, presence };
}

test("a leave that lasts longer than the bound goes on while Redis answers", async () => {
  let slow = false;
  const { client, presence } = await setup("close-slow", () => slow);
  // One field per slice (reapSlice 1), each answer 200 ms late: 20 users
  // (2 fields each) and the socket counters take longer than the bound.
  slow = true;
  const t0 = Date.now();
  await presence.close();
  const took = Date.now() - t0;
  slow = false;
  assert.ok(took > BOUND_MS, `the leave took ${took} ms: it must outlast the bound to test it`);
  const keys = await client.keys("{close-slow}:*");
  assert.deepEqual(
    keys.filter((k) => !/:(feed|seen)$/.test(k)),
    [],
    "it left: nothing of it is in Redis",
  );
});

test("a leave with no reply for the bound gives up with a clear error", async () => {
  const { redis, presence } = await setup("close-stuck");
  redis.child.kill("SIGSTOP");
  cleanups.push(async () => redis.child.kill("SIGCONT"));
  const t0 = Date.now();
  await assert.rejects(presence.close(), /could not leave the cluster: no reply for 5000 ms.*the other servers will reap this one/);
  const took = Date.now() - t0;
  assert.ok(took >= BOUND_MS - 100 && took < BOUND_MS + 5000, `gave up after ${took} ms`);
  redis.child.kill("SIGCONT");
});
