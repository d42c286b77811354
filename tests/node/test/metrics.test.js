"use strict";
// presence.metrics() and the metricsRegistry option (prom-client): real
// Socket.IO server and clients, embedded store and a real redis-server.

const { test, describe, after } = require("node:test");
const assert = require("node:assert/strict");
const { requireRollcall, waitFor, startServer, connect, startRedis, redisCli } = require("./helpers");

const { Presence } = requireRollcall();
const FAST = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500 };

/** Prometheus text -> { "name{labels}": value }; checks every family has HELP and TYPE. */
function parse(text) {
  const out = {};
  const typed = new Set();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const m = /^# TYPE (\S+) (gauge|counter|histogram)$/.exec(line);
    if (m) {
      typed.add(m[1]);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const s = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    assert.ok(s, `a sample line: ${JSON.stringify(line)}`);
    const family = s[1].replace(/_(bucket|sum|count)$/, "");
    assert.ok(typed.has(s[1]) || typed.has(family), `${s[1]} has a TYPE line before it`);
    out[`${s[1]}${s[2] || ""}`] = Number(s[3]);
  }
  return out;
}

describe("metrics", () => {
  const cleanup = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  test("embedded: gauges and counters follow the sockets, users and events", async () => {
    const server = await startServer();
    cleanup.push(() => server.close());
    const presence = await Presence.attach(server.io, FAST);
    cleanup.push(() => presence.close());
    const sockets = [];
    cleanup.push(() => sockets.forEach((s) => s.close()));
    for (const user of ["ann", "ann", "bob", undefined]) sockets.push(await connect(server.url, { userId: user }));
    sockets.push(await connect(`${server.url}/chat`, { userId: "ann" }));
    await waitFor(async () => {
      const m = parse(await presence.metrics());
      assert.equal(m.rollcall_local_sockets, 5);
      assert.equal(m.rollcall_local_users, 2);
      assert.equal(m.rollcall_cluster_sockets, 5);
      assert.equal(m.rollcall_cluster_users, 2);
      assert.equal(m['rollcall_events_total{type="user_online"}'], 2);
      assert.equal(m['rollcall_events_total{type="user_offline"}'], 0);
      assert.ok(m.rollcall_writes_total >= 2, "register and at least one apply");
      assert.equal(m.rollcall_fenced_total, 0);
      assert.equal(m.rollcall_store_errors_total, 0);
    });
    sockets[2].close(); // bob's only socket
    await waitFor(async () => {
      const m = parse(await presence.metrics());
      assert.equal(m.rollcall_local_sockets, 4);
      assert.equal(m.rollcall_local_users, 1);
      assert.equal(m.rollcall_cluster_users, 1);
      assert.equal(m['rollcall_events_total{type="user_offline"}'], 1);
    });
  });

  test("Redis: the write latency histogram and a prom-client registry with the same metrics; they leave it on close()", async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const { createClient } = require("redis");
    const client = createClient({ url: redis.url });
    client.on("error", () => {});
    await client.connect();
    cleanup.push(() => client.quit().catch(() => {}));
    const { Registry } = require("prom-client");
    const registry = new Registry();
    const server = await startServer();
    cleanup.push(() => server.close());
    const presence = await Presence.attach(server.io, { ...FAST, redis: client, prefix: "m1", metricsRegistry: registry });
    const sockets = [];
    cleanup.push(() => sockets.forEach((s) => s.close()));
    for (const user of ["ann", "bob", "cy"]) sockets.push(await connect(server.url, { userId: user }));
    // A second server on the same Redis: the cluster gauges count it, the local ones do not.
    const other = await startServer();
    cleanup.push(() => other.close());
    const otherPresence = await Presence.attach(other.io, { ...FAST, redis: client, prefix: "m1" });
    cleanup.push(() => otherPresence.close());
    sockets.push(await connect(other.url, { userId: "dan" }));
    await waitFor(async () => {
      const m = parse(await presence.metrics());
      assert.equal(m.rollcall_local_sockets, 3);
      assert.equal(m.rollcall_local_users, 3);
      assert.equal(m.rollcall_cluster_sockets, 4);
      assert.equal(m.rollcall_cluster_users, 4);
      assert.ok(m.rollcall_write_seconds_count >= 2, "writes timed");
      assert.equal(m['rollcall_write_seconds_bucket{le="+Inf"}'], m.rollcall_write_seconds_count);
      assert.ok(m['rollcall_write_seconds_bucket{le="5"}'] <= m.rollcall_write_seconds_count);
      assert.ok(m.rollcall_write_seconds_sum > 0);
    });
    // prom-client renders the same families with the same values.
    const ours = parse(await presence.metrics());
    const theirs = parse(await registry.metrics());
    for (const name of ["rollcall_local_sockets", "rollcall_local_users", "rollcall_cluster_sockets", "rollcall_cluster_users", 'rollcall_events_total{type="user_online"}']) {
      assert.equal(theirs[name], ours[name], name);
    }
    assert.ok(theirs.rollcall_write_seconds_count >= ours.rollcall_write_seconds_count);
    assert.deepEqual(
      Object.keys(theirs).map((k) => k.replace(/\{.*/, "")).filter((k, i, a) => a.indexOf(k) === i).sort(),
      Object.keys(ours).map((k) => k.replace(/\{.*/, "")).filter((k, i, a) => a.indexOf(k) === i).sort(),
      "the registry holds exactly our families",
    );
    // A Redis that does not answer: the cluster gauges are left out, the local ones stay.
    redis.child.kill("SIGSTOP");
    try {
      const m = parse(await presence.metrics());
      assert.equal(m.rollcall_local_sockets, 3);
      assert.equal(m.rollcall_cluster_sockets, undefined, "no cluster gauge while Redis does not answer");
    } finally {
      redis.child.kill("SIGCONT");
    }
    await presence.close();
    assert.doesNotMatch(await registry.metrics(), /rollcall_/, "a closed server's metrics leave the registry");
    assert.ok((await redisCli(redis.port, "PING")).includes("PONG"));
  });

  test("a metricsRegistry that is not a registry is a TypeError", async () => {
    const server = await startServer();
    cleanup.push(() => server.close());
    // As every bad option: attach throws at once.
    assert.throws(() => Presence.attach(server.io, { metricsRegistry: {} }), {
      name: "TypeError",
      message: /metricsRegistry must be a prom-client Registry/,
    });
  });
});
