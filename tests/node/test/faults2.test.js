"use strict";
// More faults of issue 6 with Node.js Socket.IO servers (RELIABILITY.md,
// Node.js cells of faults 1, 3, 6, 7, 8, 9, 11): real redis-server processes
// on free loopback ports, forked Socket.IO servers with rollcall installed
// from the tarball (fixtures/server.js), real socket.io-client clients (in
// this process, or thousands of them in forked client processes:
// fixtures/clients.js). After each fault: the counts from every live server
// equal the truth the test keeps, and the prefix' keyspace holds nothing of a
// server that is gone, no unknown key, no field <= 0.
// Timings: TTL 2 s, heartbeat 500 ms, reap interval 500 ms.
// Figures are printed as `ROLLCALL-FIGURE node-fault-<n> <name>=<value>`.

const { describe, test, after } = require("node:test");
const assert = require("node:assert/strict");
const { waitFor, startRedis, startNode, connect, redisCli, startClients, requireRollcall } = require("./helpers");

const {
  TIMINGS,
  SLACK_MS,
  figure,
  lines,
  truth,
  converge,
  openSockets,
  checkKeyspace,
  startNodes,
  teardown,
  eventsSince,
  wentOffline,
  liveUsers,
  leases,
  heartbeatsSeen,
  keySchema,
  nodeKeys,
  outliving,
} = require("./fault-checks");

/** Kill -9 of `victim` among `nodes` (Redis on `port`, prefix `prefix`): survivors converge, one "reaped" offline per user. */
async function killAndCheck(fault, state, victim, probes, port, prefix) {
  const survivors = state.nodes.filter((n) => n !== victim);
  const before = liveUsers(state.conns);
  const mark = Date.now();
  victim.child.kill("SIGKILL");
  for (const c of state.conns) if (c.server === victim.index) c.live = false;
  const reaped = await converge(survivors, state.conns, probes, "survivors agree after the kill");
  figure(fault, "reaped-ms", reaped);
  assert.ok(reaped <= TIMINGS.ttlMs + TIMINGS.reapMs + SLACK_MS, `reaped ${reaped} ms after the kill`);
  await waitFor(
    () => eventsSince(survivors, mark, "reaped").some((e) => e.node === victim.nodeId),
    { what: "a 'node reaped' event" },
  );
  const gone = wentOffline(state.conns, before);
  // Every offline event is in once the counts are right and the node reaped;
  // wait until the expected number is in, then check there is no extra. A
  // late duplicate would come from a reply still in flight: once every
  // survivor has renewed its lease twice more, each has had every reply
  // it was waiting for.
  await waitFor(() => eventsSince(survivors, mark, "disconnected").length >= gone.length, {
    what: `${gone.length} offline events`,
  });
  await heartbeatsSeen(port, prefix, survivors);
  const offline = eventsSince(survivors, mark, "disconnected");
  assert.deepEqual(offline.map((e) => e.user).sort(), gone, "exactly one offline event per user the kill took offline");
  assert.deepEqual([...new Set(offline.map((e) => e.reason))], gone.length ? ["reaped"] : []);
  assert.deepEqual(eventsSince(survivors, mark, "connected"), [], "no online events");
  figure(fault, "offline-events", offline.length);
  figure(fault, "reapers", new Set(offline.map((e) => e.server)).size);
  return { survivors, reaped, offline, gone };
}

describe("fault 1: kill -9 of a Node.js server with 2,000 sockets", () => {
  const state = { conns: [], nodes: [], redises: [], clients: [] };
  after(() => teardown(state));

  test("reaped within TTL + one reap interval; one 'reaped' offline event per affected user", async () => {
    const redis = await startRedis();
    state.redises.push(redis);
    state.nodes = await startNodes(3, redis.url, { ...TIMINGS, prefix: "f1" });
    const [a, b, victim] = state.nodes;
    // 2,000 sockets on the victim from two client processes: 800 users
    // (v-0..v-799), every fifth socket anonymous; users s-* also on survivors.
    const victimUsers = Array.from({ length: 2000 }, (_, i) => (i % 5 === 4 ? null : i % 10 === 3 ? `s-${i % 40}` : `v-${i % 800}`));
    state.clients.push(await startClients(), await startClients());
    const began = Date.now();
    const half = victimUsers.length / 2;
    await Promise.all([
      state.clients[0].open(victim.url, victimUsers.slice(0, half)),
      state.clients[1].open(victim.url, victimUsers.slice(half)),
    ]);
    for (const u of victimUsers) state.conns.push({ user: u === null ? undefined : u, server: victim.index, live: true });
    // The survivors hold some sockets too, of users also on the victim (s-*).
    await openSockets(state.conns, a, Array.from({ length: 20 }, (_, i) => `s-${(i * 2 + 3) % 40}`));
    await openSockets(state.conns, b, ["w-0", "w-1", undefined, "s-13"]);
    const probes = ["v-0", "v-799", "s-3", "s-13", "w-0", "nobody"];
    const counted = await converge(state.nodes, state.conns, probes, "2,000 sockets counted", 60000);
    figure(1, "sockets-on-victim", victimUsers.length);
    figure(1, "connected-and-counted-ms", Date.now() - began);
    figure(1, "counted-after-connect-ms", counted);

    const { survivors, gone } = await killAndCheck(1, state, victim, probes, redis.port, "f1");
    const onlyOnVictim = new Set(victimUsers.filter((u) => u && u.startsWith("v-")));
    assert.deepEqual(gone, [...onlyOnVictim].sort(), "the users only on the victim went offline");
    await waitFor(() => checkKeyspace(redis.port, "f1", survivors.map((n) => n.nodeId)), { what: "nothing left of the killed server" });
  });
});

describe("fault 6: Redis unreachable for a while (SIGSTOP of redis-server)", () => {
  const state = { conns: [], nodes: [], redises: [] };
  after(() => teardown(state));

  test("servers keep running, store errors reported, reads reject; none reaped or fenced, a server back late included; counts right after, with the inputs of the outage", async () => {
    const redis = await startRedis();
    state.redises.push(redis);
    // A heartbeat of 1 s: a lease keeps what it had at the stop less one
    // heartbeat (the stall shift), so the late server below has about
    // TTL - 2 heartbeats of margin when it comes back.
    const timings = { ...TIMINGS, ttlMs: 3000, heartbeatMs: 1000, prefix: "f6" };
    // A command timeout on the app's client (ioredis commandTimeout): without
    // one, calls to a stopped Redis just wait (node-redis' default
    // commandOptions.timeout does not apply to sendCommand, which rollcall uses).
    const env = { REDIS_COMMAND_TIMEOUT: "500" };
    const servers = await startNodes(3, redis.url, timings, env, "ioredis");
    // A server with no sockets that is stopped with Redis and resumed a
    // while after it: without the stall shift its lease has run out when
    // Redis returns, and the others' first reap after their own renewal
    // reaps it, every time.
    const late = await startNode(3, { redisUrl: redis.url, timings, env, clientKind: "ioredis" });
    state.nodes = [...servers, late];
    const probes = ["u-0", "u-1", "u-9", "nobody"];
    for (const n of servers) await openSockets(state.conns, n, ["u-0", "u-1", `u-${n.index + 2}`, undefined]);
    await converge(state.nodes, state.conns, probes, "before the outage");

    const outageMs = timings.ttlMs + 600; // longer than the TTL
    const lateMs = 1200; // the late server resumes this long after Redis (> reap interval + retry)
    // Stop the late server right after its lease renewal ran, then Redis.
    const renewed = (await leases(redis.port, "f6")).get(late.nodeId);
    await waitFor(async () => assert.ok((await leases(redis.port, "f6")).get(late.nodeId) > renewed), {
      interval: 5,
      what: "a lease renewal of the late server",
    });
    late.child.kill("SIGSTOP");
    const mark = Date.now();
    redis.child.kill("SIGSTOP");
    try {
      // Inputs while Redis is unreachable: new sockets on every server, some old ones leave.
      for (const n of servers) await openSockets(state.conns, n, [`u-${n.index + 7}`, "u-0"]);
      for (const c of state.conns.filter((c) => c.user === "u-1")) {
        c.socket.close();
        c.live = false;
      }
      // A read while down rejects (the client's command timeout), it does not hang or lie.
      for (const n of servers) {
        await assert.rejects(n.counts(probes), (e) => /server \d+: /.test(e.message) && !/did not answer/.test(e.message));
      }
      await waitFor(() => servers.every((n) => eventsSince([n], mark, "store_error").length > 0), {
        what: "a store error on every server",
        timeout: outageMs,
      });
      const left = outageMs - (Date.now() - mark);
      if (left > 0) await new Promise((r) => setTimeout(r, left)); // the outage's own length
    } finally {
      redis.child.kill("SIGCONT");
    }
    const resumed = Date.now();
    try {
      await new Promise((r) => setTimeout(r, lateMs)); // the late server's own delay
    } finally {
      late.child.kill("SIGCONT");
    }
    figure(6, "outage-ms", resumed - mark);
    figure(6, "late-server-back-after-ms", Date.now() - resumed);
    const errors = eventsSince(servers, mark, "store_error");
    figure(6, "store-errors-during-outage", errors.length);
    figure(6, "store-error-example", JSON.stringify(errors[0].message));
    const took = await converge(state.nodes, state.conns, probes, "after Redis returns");
    figure(6, "counts-right-after-resume-ms", took);
    assert.ok(took <= lateMs + timings.heartbeatMs + SLACK_MS, `counts right ${took} ms after Redis returned`);
    for (const n of state.nodes) {
      assert.ok(n.alive, `server ${n.index} alive`);
      await n.ask("ping");
    }
    await checkKeyspace(redis.port, "f6", state.nodes.map((n) => n.nodeId));
    // Nobody reaped, nobody fenced: through two more heartbeats of every
    // server after Redis returned (a reap or fence would be decided by then).
    await heartbeatsSeen(redis.port, "f6", state.nodes);
    const reaped = eventsSince(state.nodes, mark, "reaped");
    const fenced = eventsSince(state.nodes, mark, "fenced");
    figure(6, "nodes-reaped", reaped.length);
    figure(6, "fenced", fenced.length);
    assert.deepEqual(reaped, [], "no server reaped during the outage, the late one included");
    assert.deepEqual(eventsSince(state.nodes, mark, "disconnected").filter((e) => e.reason === "reaped"), [], "no user went offline by a reap");
    assert.deepEqual(fenced, [], "no server fenced after the outage");
  });
});

/** Closes a server gracefully (presence.close(), then the process exits). */
async function closeNode(n) {
  const exited = new Promise((r) => (n.alive ? n.child.once("exit", r) : r()));
  await n.ask("close", {}, 10000);
  await exited;
}

describe("fault 7: a server restarts quickly with the same nodeId", () => {
  const state = { conns: [], nodes: [], redises: [] };
  after(() => teardown(state));

  test("the old incarnation is replaced: no double count", async () => {
    const redis = await startRedis();
    state.redises.push(redis);
    const timings = { ...TIMINGS, prefix: "f7" };
    state.nodes = [
      await startNode(0, { redisUrl: redis.url, timings }),
      await startNode(1, { redisUrl: redis.url, timings }),
      await startNode(2, { redisUrl: redis.url, timings: { ...timings, nodeId: "restarting" } }),
    ];
    const old = state.nodes[2];
    assert.equal(old.nodeId, "restarting");
    const probes = ["u-0", "u-1", "u-5", "nobody"];
    await openSockets(state.conns, state.nodes[0], ["u-0", "u-1", undefined]);
    await openSockets(state.conns, state.nodes[1], ["u-2"]);
    await openSockets(state.conns, old, ["u-0", "u-1", "u-5", "u-5", "u-6", undefined]);
    await converge(state.nodes, state.conns, probes, "before the restart");
    const oldInc = lines(await redisCli(redis.port, "ZRANGE", keySchema("f7").keys.live, "0", "-1")).find((i) => i.startsWith("restarting/"));
    assert.ok(oldInc, "the first incarnation holds a lease");

    old.child.kill("SIGKILL");
    for (const c of state.conns) if (c.server === 2) c.live = false;
    const restarted = Date.now();
    const fresh = await startNode(2, { redisUrl: redis.url, timings: { ...timings, nodeId: "restarting" } });
    state.nodes[2] = fresh;
    state.nodes.push(old); // killed in teardown if anything went wrong
    assert.equal(fresh.nodeId, "restarting");
    // The new incarnation has sockets of the same users (overlapping).
    await openSockets(state.conns, fresh, ["u-0", "u-5", "u-7", undefined]);
    const live = state.nodes.slice(0, 3);
    await converge(live, state.conns, probes, "after the restart");
    const took = Date.now() - restarted;
    figure(7, "counts-right-after-restart-ms", took);
    assert.ok(took <= TIMINGS.ttlMs + TIMINGS.reapMs + SLACK_MS, `counts right ${took} ms after the restart`);
    // Exact through the old incarnation's TTL and a reap round: counted neither twice nor subtracted twice.
    const watchUntil = restarted + TIMINGS.ttlMs + 2 * TIMINGS.reapMs;
    while (Date.now() < watchUntil) {
      for (const n of live) assert.deepEqual(await n.counts(probes), truth(state.conns, probes), `server ${n.index} later`);
    }
    await waitFor(() => checkKeyspace(redis.port, "f7", live.map((n) => n.nodeId)), { what: "nothing of the old incarnation" });
    const incs = lines(await redisCli(redis.port, "ZRANGE", keySchema("f7").keys.live, "0", "-1")).filter((i) => i.startsWith("restarting/"));
    assert.equal(incs.length, 1, `one incarnation of the restarted node: ${incs}`);
    assert.notEqual(incs[0], oldInc, "a new incarnation");
    assert.equal((await redisCli(redis.port, "EXISTS", `{f7}:i:${oldInc}`)).trim(), "0", "the old incarnation's share is gone");
  });
});

describe("fault 8: graceful close of every server", () => {
  const state = { conns: [], nodes: [], redises: [], clients: [] };
  after(() => teardown(state));

  test("nothing of the servers is left afterwards: only the change feed and last seen, which expire", async () => {
    const redis = await startRedis();
    state.redises.push(redis);
    state.nodes = await startNodes(3, redis.url, { ...TIMINGS, prefix: "f8" });
    state.clients.push(await startClients());
    const users = Array.from({ length: 300 }, (_, i) => (i % 5 === 4 ? null : `u-${i % 50}`));
    for (const n of state.nodes) {
      await state.clients[0].open(n.url, users);
      for (const u of users) state.conns.push({ user: u === null ? undefined : u, server: n.index, live: true });
      await openSockets(state.conns, n, ["u-0", `only-${n.index}`]);
    }
    const probes = ["u-0", "u-49", "only-1", "nobody"];
    await converge(state.nodes, state.conns, probes, "before the close");
    assert.ok(lines(await redisCli(redis.port, "--scan", "--pattern", "{f8}:*")).length > 0);
    const began = Date.now();
    await Promise.all(state.nodes.map(closeNode));
    figure(8, "all-closed-ms", Date.now() - began);
    figure(8, "sockets-at-close", state.conns.length);
    assert.deepEqual(await nodeKeys(redis.port, "f8"), [], "keys of the servers left");
    const left = await outliving(redis.port, "f8");
    assert.equal(left.length, 2, "the feed and last seen");
    assert.equal((await redisCli(redis.port, "DBSIZE")).trim(), String(left.length));
  });
});

describe("fault 9: two applications (prefixes) on one Redis", () => {
  const state = { conns: [], nodes: [], redises: [] };
  after(() => teardown(state));

  test("isolated: a reap or a shutdown in one leaves the other untouched", async () => {
    const redis = await startRedis();
    state.redises.push(redis);
    // Same node ids, same users in both; the second prefix starts with the first.
    const start = (i, prefix, nodeId) => startNode(i, { redisUrl: redis.url, timings: { ...TIMINGS, prefix, nodeId } });
    const appA = [await start(0, "iso", "n0"), await start(1, "iso", "n1")];
    const appB = [await start(2, "iso:x", "n0"), await start(3, "iso:x", "n1")];
    state.nodes = [...appA, ...appB];
    const connsA = [];
    const connsB = [];
    for (const [app, conns] of [[appA, connsA], [appB, connsB]]) {
      await openSockets(conns, app[0], ["u-0", "u-1", undefined]);
      await openSockets(conns, app[1], ["u-1", "u-2", "u-3", undefined]);
      state.conns.push(...conns);
    }
    const probes = ["u-0", "u-1", "u-3", "nobody"];
    await converge(appA, connsA, probes, "app A before");
    await converge(appB, connsB, probes, "app B before");

    // A server of A dies and is reaped; B sees nothing of it.
    const mark = Date.now();
    appA[1].child.kill("SIGKILL");
    for (const c of connsA) if (c.server === appA[1].index) c.live = false;
    const took = await converge([appA[0]], connsA, probes, "app A reaped its dead server");
    figure(9, "reaped-ms", took);
    await waitFor(() => eventsSince([appA[0]], mark, "reaped").length === 1, { what: "A's node reaped event" });
    // Every reply A's survivor and B's servers were waiting for is in.
    await heartbeatsSeen(redis.port, "iso", [appA[0]]);
    await heartbeatsSeen(redis.port, "iso:x", appB);
    for (const n of appB) assert.deepEqual(await n.counts(probes), truth(connsB, probes), `app B server ${n.index} unchanged`);
    assert.deepEqual(eventsSince(appB, mark), [], "app B emitted nothing");
    await checkKeyspace(redis.port, "iso", [appA[0].nodeId]);
    await checkKeyspace(redis.port, "iso:x", appB.map((n) => n.nodeId));

    // A leaves entirely: nothing of its servers is left, B's intact.
    await closeNode(appA[0]);
    assert.deepEqual(await nodeKeys(redis.port, "iso"), [], "keys of A left");
    const keysB = await checkKeyspace(redis.port, "iso:x", appB.map((n) => n.nodeId));
    assert.ok(keysB.length > 0);
    for (const n of appB) assert.deepEqual(await n.counts(probes), truth(connsB, probes), `app B server ${n.index} after A left`);
    assert.deepEqual(eventsSince(appB, mark), [], "app B emitted nothing");
    await Promise.all(appB.map(closeNode));
    assert.deepEqual(await nodeKeys(redis.port, "iso:x"), [], "keys of B left");
    const left = [...(await outliving(redis.port, "iso")), ...(await outliving(redis.port, "iso:x"))];
    assert.equal((await redisCli(redis.port, "DBSIZE")).trim(), String(left.length));
  });
});

describe("fault 3: five servers, one killed, four reaping it at once", () => {
  const state = { conns: [], nodes: [], redises: [], clients: [] };
  after(() => teardown(state));

  test("subtracted once: counts right, one offline event per user, one 'node reaped'", async () => {
    const redis = await startRedis();
    state.redises.push(redis);
    // Small reap slices: the four reapers contend for ~50 of them.
    state.nodes = await startNodes(5, redis.url, { ...TIMINGS, prefix: "f3", reapSlice: 20 });
    const victim = state.nodes[4];
    const victimUsers = Array.from({ length: 1200 }, (_, i) => (i % 6 === 5 ? null : i % 7 === 0 ? `s-${i % 30}` : `v-${i % 500}`));
    state.clients.push(await startClients());
    await state.clients[0].open(victim.url, victimUsers);
    for (const u of victimUsers) state.conns.push({ user: u === null ? undefined : u, server: victim.index, live: true });
    for (const n of state.nodes.slice(0, 4)) await openSockets(state.conns, n, [`s-${n.index * 7}`, `w-${n.index}`, undefined]);
    const probes = ["v-1", "s-0", "s-7", "w-0", "nobody"];
    await converge(state.nodes, state.conns, probes, "1,200 sockets counted", 60000);

    const mark = Date.now();
    const { survivors } = await killAndCheck(3, state, victim, probes, redis.port, "f3");
    // Still exact through three more reap rounds (nothing subtracted twice).
    const watchUntil = Date.now() + 3 * TIMINGS.reapMs;
    while (Date.now() < watchUntil) {
      for (const n of survivors) assert.deepEqual(await n.counts(probes), truth(state.conns, probes), `server ${n.index} later`);
    }
    const reapedEvents = eventsSince(survivors, mark, "reaped").filter((e) => e.node === victim.nodeId);
    figure(3, "node-reaped-events", reapedEvents.length);
    assert.equal(reapedEvents.length, 1, "exactly one 'node reaped' in the cluster");
    await checkKeyspace(redis.port, "f3", survivors.map((n) => n.nodeId));
  });
});

describe("fault 11 (JS API): invalid arguments and hostile ids", () => {
  const state = { conns: [], nodes: [], redises: [] };
  let server;
  let presence;
  let client;
  after(async () => {
    if (presence) await presence.close().catch(() => {});
    if (client) await client.quit().catch(() => {});
    if (server) await server.close();
    await teardown(state);
  });

  test("clear TypeError/RangeError or documented ignore; hostile ids counted exactly; others unchanged", async () => {
    const { Presence } = requireRollcall();
    const { createClient } = require("redis");
    const { startServer } = require("./helpers");
    const redis = await startRedis();
    state.redises.push(redis);
    client = createClient({ url: redis.url });
    client.on("error", () => {});
    await client.connect();
    server = await startServer();

    // Bad options, with a real Redis client.
    const bad = [
      [{ nodeId: "" }, TypeError, /nodeId/],
      [{ nodeId: {} }, TypeError, /nodeId/],
      [{ nodeId: "n".repeat(257) }, RangeError, /nodeId/],
      [{ prefix: "a}b" }, TypeError, /prefix/],
      [{ ttlMs: Number.NaN }, TypeError, /ttlMs/],
      [{ ttlMs: -5 }, RangeError, /ttlMs/],
      [{ userId: 42 }, TypeError, /userId/],
    ];
    for (const [opts, Err, re] of bad) {
      await assert.rejects(
        async () => Presence.attach(server.io, { redis: client, prefix: "f11", ...opts }),
        (e) => e instanceof Err && re.test(e.message),
        JSON.stringify(opts),
      );
    }
    assert.equal((await client.sendCommand(["DBSIZE"])), 0, "a refused attach writes nothing");

    const warnings = [];
    const onWarning = (w) => w.name === "RollcallWarning" && warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      presence = await Presence.attach(server.io, {
        redis: client,
        prefix: "f11",
        ...TIMINGS,
        userId: (socket) => {
          const u = socket.handshake.auth.userId;
          if (u === "THROW") throw new Error("boom");
          return u;
        },
      });
      // [what the client sends, what rollcall counts (undefined: anonymous)]
      const ids = [
        ["ann", "ann"],
        ["bob", "bob"],
        ["ann", "ann"],
        [42, "42"],
        [true, undefined],
        [{ id: "ann" }, undefined],
        [["ann"], undefined],
        ["", undefined],
        ["THROW", undefined],
        ["x".repeat(257), undefined],
        ["y".repeat(256), "y".repeat(256)],
        ["é".repeat(128), "é".repeat(128)], // 256 bytes
        ["a:b", "a:b"],
        ["{f11}:count", "{f11}:count"],
        ["u:ann", "u:ann"],
        ["{x}", "{x}"],
        ["}{", "}{"],
        ["nul\u0000id", "nul\u0000id"],
        ["\u0000", "\u0000"],
      ];
      const conns = state.conns;
      for (const [sent, counted] of ids) {
        const socket = await connect(server.url, { userId: sent });
        conns.push({ user: counted, socket, live: true });
      }
      const expectedUsers = [...new Set(conns.filter((c) => c.user !== undefined).map((c) => c.user))];
      const sorted = (a) => [...a].sort();
      await waitFor(
        async () => {
          assert.equal(await presence.clientsCount(), conns.length);
          assert.equal(await presence.socketsCount(), conns.length);
          assert.equal(await presence.usersCount(), expectedUsers.length);
          assert.deepEqual(sorted(await presence.usersList()), sorted(expectedUsers));
        },
        { what: "hostile ids counted", timeout: 10000 },
      );
      for (const u of expectedUsers) {
        assert.equal(await presence.userSocketsCount(u), conns.filter((c) => c.user === u).length, JSON.stringify(u));
      }
      assert.equal(await presence.userSocketsCount("ann"), 2);
      assert.equal(await presence.isUserConnected("bob"), true);
      assert.equal(await presence.isUserConnected("u"), false);
      assert.ok(warnings.some((w) => /userId\(\) threw/.test(w)), "a warning for the throwing userId()");
      assert.ok(warnings.some((w) => /not a string/.test(w)), "a warning for a non-string id");
      assert.ok(warnings.some((w) => /longer than 256 bytes/.test(w)), "a warning for a long id");
      // No key outside the schema: every key is the prefix', all known kinds.
      const all = lines(await redisCli(redis.port, "--scan"));
      assert.ok(all.every((k) => k.startsWith("{f11}:")), `keys outside the prefix: ${all}`);
      await checkKeyspace(redis.port, "f11", [presence.nodeId]);

      // Bad read arguments: thrown synchronously, clear types, nothing changes.
      const reads = [
        [() => presence.userSocketsCount(null), TypeError, /userId/],
        [() => presence.userSocketsCount(""), TypeError, /userId/],
        [() => presence.isUserConnected({}), TypeError, /userId/],
        [() => presence.isUserConnected("z".repeat(257)), RangeError, /userId/],
        [() => presence.usersCount({ room: 5 }), TypeError, /room/],
        [() => presence.socketsCount({ namespace: "" }), TypeError, /namespace/],
        [() => presence.usersList({ namespace: "/", room: "r", extra: 1 }), TypeError, /extra/],
        [() => presence.usersCount(7), TypeError, /usersCount/],
      ];
      for (const [fn, Err, re] of reads) {
        assert.throws(fn, (e) => e instanceof Err && re.test(e.message), String(fn));
      }
      // A 256-byte id and ids with separators read fine.
      assert.equal(await presence.userSocketsCount("{f11}:count"), 1);
      assert.equal(await presence.isUserConnected("a:b"), true);
      assert.equal(await presence.isUserConnected("a"), false);
      // Others' counts unchanged after everything; a socket leaves normally.
      conns[1].socket.close();
      conns[1].live = false;
      await waitFor(async () => assert.equal(await presence.isUserConnected("bob"), false), { what: "bob offline" });
      assert.equal(await presence.userSocketsCount("ann"), 2);
      assert.equal(await presence.socketsCount(), conns.filter((c) => c.live).length);
    } finally {
      process.off("warning", onWarning);
    }
    for (const c of state.conns) c.socket.close();
    await presence.close();
    presence = undefined;
    assert.deepEqual(await nodeKeys(redis.port, "f11"), [], "nothing of the server after close");
    const left = await outliving(redis.port, "f11");
    assert.equal(await client.sendCommand(["DBSIZE"]), left.length, "nothing else after close");
  });
});
