"use strict";
// Faults of issue 6 with Node.js Socket.IO servers (RELIABILITY.md, Node.js
// cells): real redis-server processes on free loopback ports, three forked
// Socket.IO servers with rollcall (fixtures/server.js, installed from the
// tarball), real socket.io-client clients. After each fault: the counts from
// every live server equal the truth the test keeps, and the keyspace of the
// prefix holds nothing of a server that is gone (read with redis-cli).
// Timings: TTL 2 s, heartbeat 500 ms, reap interval 500 ms.
// Figures are printed as `ROLLCALL-FIGURE node-fault-<n> <name>=<value>`.

const { describe, test, after } = require("node:test");
const assert = require("node:assert/strict");
const net = require("node:net");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { waitFor, startRedis, startNode, connect, redisCli } = require("./helpers");
// The suite's one scheduling slack (1 s, as in the Rust suite), and a wait
// for lease renewals that proves every pending reply is in.
const { SLACK_MS, heartbeatsSeen, checkKeys } = require("./fault-checks");

const PREFIX = "faults";
// The Rust suite's timings (tests/src/fault.rs), retry included: a call that
// failed in a stall is retried after 100 ms, not the default 1 s, so "one
// heartbeat + slack" bounds the same thing in both suites.
const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500, retryMs: 100, prefix: PREFIX };
const PROBES = ["u-0", "u-1", "u-7", "nobody"];

function figure(fault, name, value) {
  console.log(`ROLLCALL-FIGURE node-fault-${fault} ${name}=${value}`);
}

/** What every server should report, from the sockets the test holds open (all in "/"). */
function truth(conns) {
  const live = conns.filter((c) => c.live);
  const users = [...new Set(live.filter((c) => c.user).map((c) => c.user))].sort();
  const probes = {};
  for (const u of PROBES) probes[u] = live.filter((c) => c.user === u).length;
  return {
    clients: live.length,
    sockets: live.length,
    socketsChat: 0,
    users: users.length,
    usersChat: 0,
    usersLobby: 0,
    socketsLobby: 0,
    list: users,
    probes,
  };
}

/** Waits until each of `nodes` reports exactly the truth; returns how long it took. */
async function converge(nodes, conns, what, timeout = 20000) {
  const started = Date.now();
  const expected = truth(conns);
  await waitFor(
    async () => {
      for (const n of nodes) assert.deepEqual(await n.counts(PROBES), expected, `server ${n.index}`);
    },
    { timeout, interval: 50, what },
  );
  return Date.now() - started;
}

/** Opens `count` sockets spread over `nodes` (user u-<i % 10>, every fifth anonymous). */
async function openSockets(conns, nodes, count, tag = "") {
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const node = nodes[i % nodes.length];
      const user = i % 5 === 4 ? undefined : `u-${i % 10}${tag}`;
      const socket = await connect(node.url, { userId: user });
      conns.push({ user, server: node.index, socket, live: true });
    }),
  );
}

function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

/**
 * The keyspace of the prefix, over every Redis port given (a cluster's
 * primaries): nothing of a node that is gone, only schema keys, no field <= 0,
 * every key on one port. Returns the keys.
 */
async function checkKeyspace(ports, liveNodeIds) {
  const base = `{${PREFIX}}:`;
  const byPort = await Promise.all(ports.map(async (p) => lines(await redisCli(p, "--scan", "--pattern", `${base}*`))));
  const holders = ports.filter((_, i) => byPort[i].length > 0);
  assert.ok(holders.length <= 1, `keys of one prefix on ${holders.length} ports`);
  const keys = byPort.flat();
  if (keys.length === 0) return keys;
  await checkKeys(holders[0], PREFIX, keys, liveNodeIds);
  return keys;
}

/** Starts three servers; `env` per server (cluster nodes). */
function startNodes(redisUrl, clientKind, env = {}) {
  return Promise.all([0, 1, 2].map((i) => startNode(i, { redisUrl, clientKind, timings: TIMINGS, env })));
}

/** Kills every child, closes every client; for after() / finally, also after a failure. */
async function teardown(conns, nodes, redises) {
  for (const c of conns) c.socket.close();
  for (const n of nodes) {
    if (n.alive) {
      n.child.kill("SIGCONT");
      n.child.kill("SIGKILL");
    }
  }
  for (const r of redises) if (r) await r.stop();
}

function storeErrors(nodes, pattern) {
  return nodes.flatMap((n) => n.events.filter((e) => e.event === "store_error" && pattern.test(e.message)));
}

/** A port P free with P + 10000 (the cluster bus) free too. */
async function clusterPort(taken) {
  const canBind = (port) =>
    new Promise((resolve) => {
      const s = net.createServer();
      s.unref();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if (taken.includes(port) || taken.includes(port + 10000) || taken.includes(port - 10000)) continue;
    if ((await canBind(port)) && (await canBind(port + 10000))) return port;
  }
}

for (const clientKind of ["node-redis-cluster", "ioredis-cluster"]) {
  describe(`fault 10: Redis Cluster of 3 primaries with ${clientKind}`, () => {
    const conns = [];
    let nodes = [];
    const redises = [];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollcall-cluster-"));
    after(async () => {
      await teardown(conns, nodes, redises);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test("counts right on every server, a kill -9 reaped, no CROSSSLOT", async () => {
      const ports = [];
      for (let i = 0; i < 3; i++) ports.push(await clusterPort(ports));
      const created = Date.now();
      for (const p of ports) {
        redises.push(
          await startRedis(p, {
            args: ["--cluster-enabled", "yes", "--cluster-config-file", path.join(dir, `nodes-${p}.conf`)],
          }),
        );
      }
      await redisCli(ports[0], "--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes");
      await waitFor(
        async () => {
          for (const p of ports) assert.match(await redisCli(p, "CLUSTER", "INFO"), /cluster_state:ok/);
        },
        { what: "cluster_state:ok on every primary", timeout: 30000, interval: 100 },
      );
      figure(10, `${clientKind}-cluster-created-ms`, Date.now() - created);

      nodes = await startNodes(undefined, clientKind, { REDIS_NODES: ports.map((p) => `127.0.0.1:${p}`).join(",") });
      await openSockets(conns, nodes, 30);
      figure(10, `${clientKind}-counted-ms`, await converge(nodes, conns, "every server agrees with the truth"));
      const keys = await checkKeyspace(ports, nodes.map((n) => n.nodeId));
      assert.ok(keys.length > 0);

      const victim = nodes[2];
      victim.child.kill("SIGKILL");
      for (const c of conns) if (c.server === 2) c.live = false;
      const survivors = [nodes[0], nodes[1]];
      const reaped = await converge(survivors, conns, "survivors agree after the kill");
      figure(10, `${clientKind}-reaped-ms`, reaped);
      assert.ok(reaped <= TIMINGS.ttlMs + TIMINGS.reapMs + SLACK_MS, `reaped after ${reaped} ms`);
      await waitFor(() => checkKeyspace(ports, survivors.map((n) => n.nodeId)), { what: "nothing left of the killed server" });
      assert.deepEqual(storeErrors(nodes, /CROSSSLOT/), [], "CROSSSLOT errors");
      assert.deepEqual(storeErrors(nodes, /./), [], "store errors");
      figure(10, `${clientKind}-store-errors`, 0);
    });
  });
}

describe("fault 5: Redis restarted empty", () => {
  const conns = [];
  let nodes = [];
  let redis;
  const redises = [];
  after(() => teardown(conns, nodes, redises));

  test("every server re-asserts within one heartbeat (+ slack); counts right", async () => {
    redis = await startRedis();
    redises.push(redis);
    nodes = await startNodes(redis.url, "node-redis");
    await openSockets(conns, nodes, 30);
    await converge(nodes, conns, "before the restart");

    await redis.stop();
    redis = await startRedis(redis.port);
    redises.push(redis);
    // The empty Redis knows no script: every call above went EVALSHA -> NOSCRIPT -> EVAL.
    const took = await converge(nodes, conns, "after the restart");
    figure(5, "counts-right-after-restart-ms", took);
    // The next write (a heartbeat, or a reap call: both every 500 ms here)
    // finds the server unregistered and it re-asserts: one heartbeat, plus
    // the slack that covers the client's reconnect on a loaded machine
    // (RELIABILITY.md row 5, the same bound as the Rust test). Servers that
    // wrote only every 3 s took 2.7 s and fail it; 4 heartbeats + 2 s passed them.
    assert.ok(took <= TIMINGS.heartbeatMs + SLACK_MS, `counts right ${took} ms after Redis was back`);
    await checkKeyspace([redis.port], nodes.map((n) => n.nodeId));
    // Every server registered again (the empty Redis knew none of them).
    const registered = lines(await redisCli(redis.port, "HKEYS", `{${PREFIX}}:nodes`)).sort();
    assert.deepEqual(registered, nodes.map((n) => n.nodeId).sort());
    for (const n of nodes) assert.ok(n.alive, `server ${n.index} alive`);
  });
});

describe("fault 13: DEBUG SLEEP longer than the TTL", () => {
  const conns = [];
  let nodes = [];
  const redises = [];
  after(() => teardown(conns, nodes, redises));

  test("no server crashes, none reaped or fenced; counts right after the stall", async () => {
    const redis = await startRedis(undefined, { args: ["--enable-debug-command", "yes"] });
    redises.push(redis);
    nodes = await startNodes(redis.url, "node-redis");
    await openSockets(conns, nodes, 30);
    await converge(nodes, conns, "before the stall");

    const stallMs = 3000; // > TTL 2000
    const stall = redisCli(redis.port, "DEBUG", "SLEEP", String(stallMs / 1000));
    const began = Date.now();
    // Inputs during the stall: new sockets, and some old ones leave.
    await openSockets(conns, nodes, 9, "-s");
    for (const c of conns.slice(0, 6)) {
      c.socket.close();
      c.live = false;
    }
    await stall;
    const stalled = Date.now() - began;
    figure(13, "stall-ms", stalled);
    assert.ok(stalled >= stallMs - 100, `the stall lasted ${stalled} ms`);
    const took = await converge(nodes, conns, "after the stall");
    figure(13, "counts-right-after-stall-ms", took);
    assert.ok(took <= TIMINGS.heartbeatMs + SLACK_MS, `counts right ${took} ms after the stall`);
    for (const n of nodes) {
      assert.ok(n.alive, `server ${n.index} alive`);
      await n.ask("ping");
    }
    await checkKeyspace([redis.port], nodes.map((n) => n.nodeId));
    // Every reply the servers were waiting for is in: two more lease
    // renewals of each after the stall.
    await heartbeatsSeen(redis.port, PREFIX, nodes);
    const reaped = nodes.flatMap((n) => n.events.filter((e) => e.event === "reaped"));
    const fenced = nodes.flatMap((n) => n.events.filter((e) => e.event === "fenced"));
    figure(13, "nodes-reaped", reaped.length);
    figure(13, "fenced", fenced.length);
    // The clock-stall rule shifts the leases by the stall: nobody's lease
    // runs out, so nobody is reaped and nobody fenced.
    assert.deepEqual(reaped, [], "no server reaped during the stall");
    assert.deepEqual(fenced, [], "no server fenced after the stall");
  });
});

describe("fault 14: sockets disconnect while Redis holds their connect write", () => {
  const conns = [];
  let nodes = [];
  const redises = [];
  after(() => teardown(conns, nodes, redises));

  test("CLIENT PAUSE WRITE: nothing leaks once Redis resumes", async () => {
    const redis = await startRedis();
    redises.push(redis);
    nodes = await startNodes(redis.url, "node-redis");
    await openSockets(conns, nodes, 15);
    await converge(nodes, conns, "before the pause");

    const pauseMs = 2000;
    await redisCli(redis.port, "CLIENT", "PAUSE", String(pauseMs), "WRITE");
    const began = Date.now();
    // Connect and disconnect while the connect writes are held.
    const brief = [];
    await openSockets(brief, nodes, 15, "-p");
    assert.ok(Date.now() - began < pauseMs, "sockets connected within the pause");
    for (const c of brief) {
      c.socket.close();
      c.live = false;
    }
    conns.push(...brief);
    // Some that stay: their connects must be applied.
    await openSockets(conns, nodes, 6, "-q");
    assert.ok(Date.now() - began < pauseMs, "all inputs given within the pause");
    const took = await converge(nodes, conns, "after the pause");
    figure(14, "counts-right-after-pause-began-ms", Date.now() - began);
    figure(14, "converge-poll-ms", took);
    // Still exact through three more heartbeats (an observation window).
    const watchUntil = Date.now() + 3 * TIMINGS.heartbeatMs;
    while (Date.now() < watchUntil) {
      for (const n of nodes) assert.deepEqual(await n.counts(PROBES), truth(conns), `server ${n.index} later`);
    }
    await checkKeyspace([redis.port], nodes.map((n) => n.nodeId));
  });
});
