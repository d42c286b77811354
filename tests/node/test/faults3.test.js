"use strict";
// Faults of issue 6 with Node.js Socket.IO servers, third part
// (RELIABILITY.md, Node.js cells of faults 2, 15, 12, 4): real redis-server
// processes on free loopback ports, forked Socket.IO servers with rollcall
// installed from the tarball (fixtures/server.js), real socket.io-client
// clients (in this process, or thousands in forked client processes:
// fixtures/clients.js). The same checks as faults2.test.js after each fault:
// the counts from every live server equal the truth the test keeps, and the
// prefix' keyspace holds nothing of a server (or incarnation) that is gone,
// no unknown key, no field <= 0.
// Timings: TTL 2 s, heartbeat 500 ms, reap interval 500 ms.
// Figures are printed as `ROLLCALL-FIGURE node-fault-<n> <name>=<value>`.

const { describe, test, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { createRequire } = require("node:module");
const { APP, waitFor, startRedis, startNode, connect, redisCli, startClients } = require("./helpers");

const { keySchema, TIMINGS, SLACK_MS, figure, lines, truth, converge, openSockets, checkKeyspace, startNodes, teardown, eventsSince, wentOffline, liveUsers } = require("./fault-checks");

/** The incarnations of `nodeId` holding a lease in `prefix`. */
async function incarnations(port, prefix, nodeId) {
  return lines(await redisCli(port, "ZRANGE", keySchema(prefix).keys.live, "0", "-1")).filter((i) => i.startsWith(`${nodeId}/`));
}

describe("fault 2: a Node.js server SIGSTOPped past its TTL, then SIGCONT", () => {
  const state = { conns: [], nodes: [], redises: [], clients: [] };
  after(() => teardown(state));

  test("reaped while stopped; fenced on its next write, re-registers, re-asserts; counts right within one heartbeat", async () => {
    const redis = await startRedis();
    state.redises.push(redis);
    state.nodes = await startNodes(3, redis.url, { ...TIMINGS, prefix: "f2" });
    const [a, b, paused] = state.nodes;
    // 300 sockets on the paused server from a client process (users p-*, some
    // also on the others: s-*), a few in this process on every server.
    const pausedUsers = Array.from({ length: 300 }, (_, i) => (i % 5 === 4 ? null : i % 10 === 3 ? `s-${i % 20}` : `p-${i % 100}`));
    state.clients.push(await startClients());
    await state.clients[0].open(paused.url, pausedUsers);
    for (const u of pausedUsers) state.conns.push({ user: u === null ? undefined : u, server: paused.index, live: true });
    await openSockets(state.conns, a, ["s-3", "w-0", undefined]);
    await openSockets(state.conns, b, ["s-13", "w-1", "w-1"]);
    await openSockets(state.conns, paused, ["p-0", "w-0", undefined]);
    const probes = ["p-0", "p-99", "s-3", "s-13", "w-0", "w-1", "nobody"];
    await converge(state.nodes, state.conns, probes, "before the pause", 30000);
    const [oldInc] = await incarnations(redis.port, "f2", paused.nodeId);
    assert.ok(oldInc, "the paused server holds a lease");

    const before = liveUsers(state.conns);
    const mark = Date.now();
    paused.child.kill("SIGSTOP");
    let resumed;
    try {
      // While stopped its sockets are still open (the clients do not know),
      // but its lease runs out: the others reap it and stop counting them.
      const onPaused = state.conns.filter((c) => c.server === paused.index);
      for (const c of onPaused) c.live = false;
      const reaped = await converge([a, b], state.conns, probes, "the others reaped the stopped server");
      figure(2, "reaped-after-sigstop-ms", Date.now() - mark);
      assert.ok(reaped <= TIMINGS.ttlMs + TIMINGS.reapMs + SLACK_MS, `reaped ${reaped} ms after SIGSTOP`);
      await waitFor(() => eventsSince([a, b], mark, "reaped").some((e) => e.node === paused.nodeId), {
        what: "a 'node reaped' event for the stopped server",
      });
      const gone = wentOffline(state.conns, before);
      await waitFor(() => eventsSince([a, b], mark, "disconnected").length >= gone.length, { what: `${gone.length} offline events` });
      const offline = eventsSince([a, b], mark, "disconnected");
      assert.deepEqual(offline.map((e) => e.user).sort(), gone, "one offline event per user only on the stopped server");
      assert.deepEqual([...new Set(offline.map((e) => e.reason))], ["reaped"]);
      figure(2, "offline-events", offline.length);
      await waitFor(() => checkKeyspace(redis.port, "f2", [a.nodeId, b.nodeId]), { what: "nothing of the stopped server while stopped" });
      for (const c of onPaused) c.live = true;
    } finally {
      paused.child.kill("SIGCONT");
      resumed = Date.now();
    }
    // Its sockets are counted again once it has been fenced and re-asserted.
    const took = await converge(state.nodes, state.conns, probes, "after SIGCONT");
    figure(2, "counts-right-after-sigcont-ms", took);
    assert.ok(took <= TIMINGS.heartbeatMs + SLACK_MS, `counts right ${took} ms after SIGCONT`);
    await waitFor(() => eventsSince([paused], resumed, "fenced").length > 0, { what: "the resumed server was fenced" });
    figure(2, "fenced-events", eventsSince([paused], resumed, "fenced").length);
    assert.ok(paused.alive, "the resumed server is alive");
    await paused.ask("ping");
    const incs = await incarnations(redis.port, "f2", paused.nodeId);
    assert.equal(incs.length, 1, `one incarnation of the resumed server: ${incs}`);
    assert.notEqual(incs[0], oldInc, "it registered a new incarnation");
    await checkKeyspace(redis.port, "f2", state.nodes.map((n) => n.nodeId));
    assert.equal((await redisCli(redis.port, "EXISTS", `{f2}:i:${oldInc}`)).trim(), "0", "the old incarnation's share is gone");
    // Still exact through more heartbeats (the re-assert is not undone).
    const watchUntil = Date.now() + 2 * TIMINGS.heartbeatMs;
    while (Date.now() < watchUntil) {
      for (const n of state.nodes) assert.deepEqual(await n.counts(probes), truth(state.conns, probes), `server ${n.index} later`);
    }
  });
});

/**
 * A small TCP proxy on a free loopback port (the stable address of a managed
 * Redis endpoint): `switchTo(port)` sends new connections elsewhere, `cut()`
 * closes every open one, `freeze(true)` holds the data it reads (both ways)
 * until `freeze(false)`; held data is dropped by a cut (a lagging link).
 */
async function startProxy(target) {
  const pairs = new Set();
  const state = { target, frozen: false };
  const server = net.createServer((client) => {
    const upstream = net.connect(state.target, "127.0.0.1");
    const pair = { client, upstream, held: [] };
    pairs.add(pair);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const forward = (to) => (data) => {
      if (state.frozen) pair.held.push([to, data]);
      else to.write(data);
    };
    client.on("data", forward(upstream));
    upstream.on("data", forward(client));
    const end = () => {
      pairs.delete(pair);
      pair.held = [];
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on("error", end);
      s.on("close", end);
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    switchTo(p) {
      state.target = p;
    },
    cut() {
      for (const pair of [...pairs]) {
        pair.held = [];
        pair.client.destroy();
        pair.upstream.destroy();
        pairs.delete(pair);
      }
    },
    freeze(on) {
      state.frozen = on;
      if (!on) {
        for (const pair of pairs) {
          for (const [to, data] of pair.held.splice(0)) to.write(data);
        }
      }
    },
    close() {
      this.cut();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

function infoField(info, name) {
  const m = info.match(new RegExp(`^${name}:(.*)$`, "m"));
  return m ? m[1].trim() : undefined;
}

describe("fault 15: failover that loses acknowledged writes (primary killed, lagging replica promoted)", () => {
  const state = { conns: [], nodes: [], redises: [], clients: [] };
  const proxies = [];
  // The replica stores the RDB of its full sync in its working directory.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollcall-f15-"));
  after(async () => {
    for (const p of proxies) await p.close();
    await teardown(state);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("every server reconnects, detects the drift and re-asserts; no field <= 0 at any poll; counts right; none fenced, no store error", async () => {
    const primary = await startRedis(0, { args: ["--dir", dir] });
    const replica = await startRedis(0, { args: ["--dir", dir] });
    state.redises.push(primary, replica);
    // The replica replicates through a proxy the test can freeze: a lagging replica.
    const replLink = await startProxy(primary.port);
    proxies.push(replLink);
    await redisCli(replica.port, "REPLICAOF", "127.0.0.1", String(replLink.port));
    await waitFor(async () => infoField(await redisCli(replica.port, "INFO", "replication"), "master_link_status") === "up", {
      what: "the replica in sync",
    });
    // The servers reach Redis through one stable address.
    const endpoint = await startProxy(primary.port);
    proxies.push(endpoint);
    state.nodes = await startNodes(3, endpoint.url, { ...TIMINGS, prefix: "f15" });
    const probes = ["u-0", "u-1", "u-5", "late-0", "nobody"];
    for (const n of state.nodes) await openSockets(state.conns, n, ["u-0", "u-1", `u-${n.index + 2}`, undefined]);
    await converge(state.nodes, state.conns, probes, "before the failover");
    // The replica has everything so far.
    await waitFor(
      async () =>
        infoField(await redisCli(replica.port, "INFO", "replication"), "master_repl_offset") ===
        infoField(await redisCli(primary.port, "INFO", "replication"), "master_repl_offset"),
      { what: "the replica caught up" },
    );

    // The replica lags: writes acknowledged by the primary never reach it.
    replLink.freeze(true);
    for (const n of state.nodes) await openSockets(state.conns, n, [`late-${n.index}`, "late-0", "u-5", undefined]);
    await converge(state.nodes, state.conns, probes, "the late sockets counted on the primary");
    // A socket of the old ones leaves too (a decrement the replica misses).
    const leaver = state.conns.find((c) => c.user === "u-1" && c.server === 0);
    leaver.socket.close();
    leaver.live = false;
    await converge(state.nodes, state.conns, probes, "the leaver gone on the primary");
    const primaryOffset = Number(infoField(await redisCli(primary.port, "INFO", "replication"), "master_repl_offset"));
    const replicaOffset = Number(infoField(await redisCli(replica.port, "INFO", "replication"), "master_repl_offset"));
    figure(15, "replication-lost-bytes", primaryOffset - replicaOffset);
    assert.ok(replicaOffset < primaryOffset, `the replica missed acknowledged writes (${replicaOffset} < ${primaryOffset})`);

    // Failover: the primary dies, the replica is promoted, the address switches.
    await primary.stop();
    replLink.cut();
    await redisCli(replica.port, "REPLICAOF", "NO", "ONE");
    endpoint.switchTo(replica.port);
    endpoint.cut();
    const switched = Date.now();
    // A socket whose connect was lost with the primary disconnects at once.
    const lost = state.conns.find((c) => c.user === "late-1");
    lost.socket.close();
    lost.live = false;

    // No field <= 0 at any poll, until the counts are right on every server.
    // (A field <= 0 fails at once; only wrong counts are polled again.)
    let polls = 0;
    let negative = null;
    const { kindOf } = keySchema("f15");
    const noFieldAtOrBelowZero = async () => {
      for (const key of lines(await redisCli(replica.port, "--scan", "--pattern", "{f15}:*"))) {
        const kind = kindOf(key)?.kind;
        if (kind !== "users" && kind !== "counts") continue;
        for (const v of lines(await redisCli(replica.port, "HVALS", key))) {
          if (!(Number(v) > 0)) negative = negative || new Error(`${key} has a field ${v} (poll ${polls})`);
        }
      }
      if (negative) throw negative;
    };
    const expected = truth(state.conns, probes);
    await waitFor(
      async () => {
        polls++;
        await noFieldAtOrBelowZero().catch((e) => {
          if (e === negative) return;
          throw e;
        });
        if (negative) return true;
        for (const n of state.nodes) assert.deepEqual(await n.counts(probes), expected, `server ${n.index}`);
      },
      { timeout: 20000, interval: 50, what: "counts right on the promoted replica" },
    );
    if (negative) throw negative;
    const took = Date.now() - switched;
    figure(15, "counts-right-after-switch-ms", took);
    // One heartbeat, plus a reconnect through the proxy: twice the slack (as in the Rust test).
    assert.ok(took <= TIMINGS.heartbeatMs + 2 * SLACK_MS, `counts right ${took} ms after the switch`);
    // Still exact, and no field <= 0, through two more heartbeats.
    const watchUntil = Date.now() + 2 * TIMINGS.heartbeatMs;
    while (Date.now() < watchUntil) {
      polls++;
      await noFieldAtOrBelowZero();
      for (const n of state.nodes) assert.deepEqual(await n.counts(probes), expected, `server ${n.index} later`);
    }
    figure(15, "polls", polls);
    for (const n of state.nodes) assert.ok(n.alive, `server ${n.index} alive`);
    await checkKeyspace(replica.port, "f15", state.nodes.map((n) => n.nodeId));
    const fenced = eventsSince(state.nodes, switched, "fenced");
    const storeErrors = eventsSince(state.nodes, switched, "store_error");
    figure(15, "fenced", fenced.length);
    figure(15, "store-errors", storeErrors.length);
    // The servers re-assert on the promoted replica as themselves: nobody is
    // fenced (no lease ran out), and no call failed (the cut connections
    // were re-established before any call was lost).
    assert.deepEqual(fenced, [], "no server fenced by the failover");
    assert.deepEqual(storeErrors, [], "no store error after the switch");
  });
});

describe("fault 12: storms of connects and disconnects across 3 servers; one killed, one paused past its TTL", () => {
  const state = { conns: [], nodes: [], redises: [], clients: [] };
  after(() => teardown(state));

  test("invariants hold at the end: counts exactly the sockets the survivors hold, nothing of the killed server", async () => {
    const secs = Number(process.env.ROLLCALL_LOAD_SECS || 25);
    const processes = 4;
    const target = Number(process.env.ROLLCALL_LOAD_SOCKETS || 8000) / processes;
    // A storm lasts `secs`, and longer (up to three times) until it has
    // opened this many: a loaded machine makes it slower, not smaller.
    const minOpened = Math.round(target * processes * 0.75);
    const redis = await startRedis();
    state.redises.push(redis);
    state.nodes = await startNodes(3, redis.url, { ...TIMINGS, prefix: "f12" });
    const [, paused, killed] = state.nodes;
    for (let i = 0; i < processes; i++) state.clients.push(await startClients());
    const urls = state.nodes.map((n) => n.url);
    const began = Date.now();
    const storms = Promise.all(
      state.clients.map((c, i) => c.storm({ urls, secs, minOpened: minOpened / processes, target, users: 3000, burst: 80, seed: 12000 + i })),
    );
    // The faults, at 1/3 and 1/2 of the storms (their own timing).
    let killedAt;
    let pausedAt;
    let resumedAt;
    const faults = (async () => {
      await new Promise((r) => setTimeout(r, (secs * 1000) / 3));
      killed.child.kill("SIGKILL");
      killedAt = Date.now() - began;
      await new Promise((r) => setTimeout(r, (secs * 1000) / 2 - killedAt));
      paused.child.kill("SIGSTOP");
      pausedAt = Date.now() - began;
      try {
        // Past the TTL: until a survivor has reaped it (not a fixed time,
        // which a loaded machine can make too short).
        await waitFor(() => assert.ok(eventsSince([state.nodes[0]], began, "reaped").some((e) => e.node === paused.nodeId)), {
          timeout: 60000,
          what: "a survivor reaped the paused server",
        });
      } finally {
        paused.child.kill("SIGCONT");
        resumedAt = Date.now() - began;
      }
    })();
    const [results] = await Promise.all([storms, faults]);
    const stormEnd = Date.now();
    figure(12, "storm-secs", ((stormEnd - began) / 1000).toFixed(1));
    figure(12, "killed-at-ms", killedAt);
    figure(12, "paused-ms", `${pausedAt}-${resumedAt}`);
    const sum = (k) => results.reduce((a, r) => a + r[k], 0);
    for (const k of ["opened", "closed", "failed", "dropped", "bursts", "peak"]) figure(12, k, sum(k));
    figure(12, "open-failures", JSON.stringify(results.map((r) => r.reasons)));
    const survivors = state.nodes.filter((n) => n !== killed);
    const index = new Map(state.nodes.map((n) => [n.url, n.index]));
    for (const r of results) {
      for (const [url, user] of r.held) {
        assert.notEqual(url, killed.url, "no socket held on the killed server");
        state.conns.push({ user: user === null ? undefined : user, server: index.get(url), live: true });
      }
    }
    figure(12, "sockets-held-at-end", state.conns.length);
    figure(12, "target-held", target * processes);
    assert.ok(sum("opened") >= minOpened, `storms opened ${sum("opened")} sockets, at least ${minOpened}`);
    const counts = (u) => state.conns.filter((c) => c.user === u).length;
    const users = [...liveUsers(state.conns)].sort((x, y) => counts(y) - counts(x));
    const probes = [users[0], users[1], users[users.length - 1], "u-2999", "nobody"].filter(Boolean);
    const took = await converge(survivors, state.conns, probes, "counts right after the storms", 60000);
    figure(12, "counts-right-after-storms-ms", took);
    assert.ok(paused.alive, "the paused server is alive");
    assert.ok(eventsSince([paused], began, "fenced").length > 0, "the paused server was fenced");
    assert.ok(eventsSince(survivors, began, "reaped").some((e) => e.node === killed.nodeId), "the killed server was reaped");
    await waitFor(() => checkKeyspace(redis.port, "f12", survivors.map((n) => n.nodeId)), { what: "nothing of the killed server" });
    figure(12, "total-ms", Date.now() - began);
  });
});

describe("fault 4: a dead Node.js server with 10,000 users, reaped in slices of 200", () => {
  const state = { conns: [], nodes: [], redises: [], clients: [] };
  let client;
  after(async () => {
    if (client) await client.quit().catch(() => {});
    await teardown(state);
  });

  test("reaped in bounded slices: the reap script's calls (SLOWLOG by its SHA), the longest against what a slice costs", async () => {
    const users = Number(process.env.ROLLCALL_REAP_USERS || 10000);
    const slice = 200;
    // The reap script as the package sends it (EVALSHA of its SHA).
    const reapSha = JSON.parse(createRequire(path.join(APP, "package.json"))("rollcall/wasm").scripts()).find((s) => s.name === "reap").sha;
    assert.match(reapSha, /^[0-9a-f]{40}$/);
    const redis = await startRedis(0, { args: ["--slowlog-log-slower-than", "1000", "--slowlog-max-len", "1000000"] });
    state.redises.push(redis);
    const { createClient } = require("redis");
    client = createClient({ url: redis.url });
    client.on("error", () => {});
    await client.connect();
    state.nodes = await startNodes(2, redis.url, { ...TIMINGS, prefix: "f4", reapSlice: slice });
    const [survivor, victim] = state.nodes;
    // One socket per user on the victim (v-0..), from 4 client processes.
    const victimUsers = Array.from({ length: users }, (_, i) => `v-${i}`);
    for (let i = 0; i < 4; i++) state.clients.push(await startClients());
    const began = Date.now();
    const quarter = Math.ceil(users / 4);
    await Promise.all(state.clients.map((c, i) => c.open(victim.url, victimUsers.slice(i * quarter, (i + 1) * quarter), 25)));
    for (const u of victimUsers) state.conns.push({ user: u, server: victim.index, live: true });
    await openSockets(state.conns, survivor, ["v-0", "w-0", undefined]);
    const probes = ["v-0", "v-1", `v-${users - 1}`, "w-0", "nobody"];
    await converge(state.nodes, state.conns, probes, `${users} sockets counted`, 60000);
    figure(4, "users-on-victim", users);
    figure(4, "connected-and-counted-ms", Date.now() - began);
    const [victimInc] = await incarnations(redis.port, "f4", victim.nodeId);
    const fields = Number((await redisCli(redis.port, "ZCARD", `{f4}:i:${victimInc}`)).trim());
    figure(4, "victim-fields", fields);
    assert.ok(fields >= users, `the victim holds ${fields} fields`);

    // Every call from now on is logged (each command a script runs too:
    // about 4 per field here, well within the log's length).
    await client.sendCommand(["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    await client.sendCommand(["SLOWLOG", "RESET"]);
    const before = liveUsers(state.conns);
    const mark = Date.now();
    victim.child.kill("SIGKILL");
    for (const c of state.conns) if (c.server === victim.index) c.live = false;
    const reaped = await converge([survivor], state.conns, probes, "the survivor reaped the dead server", 60000);
    const gone = wentOffline(state.conns, before);
    await waitFor(() => eventsSince([survivor], mark, "disconnected").length >= gone.length, { what: `${gone.length} offline events` });
    const offlineDone = Date.now() - mark;
    await waitFor(() => eventsSince([survivor], mark, "reaped").some((e) => e.node === victim.nodeId), { what: "'node reaped'" });
    await client.sendCommand(["CONFIG", "SET", "slowlog-log-slower-than", "1000"]);
    const log = await client.sendCommand(["SLOWLOG", "GET", "-1"]);
    // Only the reap script's calls: [id, time, µs, [EVALSHA, sha, ...], ...].
    const reapCalls = log.filter((e) => /^EVALSHA$/i.test(String(e[3][0])) && String(e[3][1]) === reapSha).map((e) => Number(e[2]));
    const calls = reapCalls.length;
    const longestUs = Math.max(0, ...reapCalls);
    const totalUs = reapCalls.reduce((a, us) => a + us, 0);
    // What one slice costs on this run: the reap's Redis time spread over
    // the slices a reap of these fields needs.
    const slices = Math.ceil(fields / slice);
    const sliceUs = totalUs / slices;
    figure(4, "reaped-after-kill-ms", reaped);
    figure(4, "reaped-after-lease-end-ms", reaped - TIMINGS.ttlMs);
    figure(4, "all-offline-events-after-kill-ms", offlineDone);
    figure(4, "offline-events", eventsSince([survivor], mark, "disconnected").length);
    figure(4, "slowlog-entries", log.length);
    figure(4, "reap-calls", calls);
    figure(4, "slices-needed", slices);
    figure(4, "longest-reap-call-ms", (longestUs / 1000).toFixed(1));
    figure(4, "reap-calls-total-ms", (totalUs / 1000).toFixed(1));
    figure(4, "reap-time-per-slice-ms", (sliceUs / 1000).toFixed(2));
    assert.ok(log.length < 1000000, "the SLOWLOG held every call");
    assert.equal(gone.length, users - 1, "every user only on the victim went offline (v-0 is also on the survivor)");
    const offline = eventsSince([survivor], mark, "disconnected");
    assert.deepEqual(offline.map((e) => e.user).sort(), gone, "one offline event per user");
    // Bounded slices: a call per 200 fields at least, and no call much longer
    // than a slice costs: 20 slices' worth plus 100 ms (the scheduling of a
    // loaded 2-core machine can stall Redis mid-call), and in any case under
    // half of the whole reap's Redis time, which an unsliced reap (one call
    // holding all of it) can never be.
    assert.ok(calls >= slices, `${calls} reap calls for ${fields} fields in slices of ${slice} (${slices} needed)`);
    const boundUs = Math.min(20 * sliceUs + 100000, totalUs / 2);
    figure(4, "longest-reap-call-bound-ms", (boundUs / 1000).toFixed(1));
    assert.ok(
      longestUs <= boundUs,
      `longest reap call ${longestUs} µs, bound ${Math.round(boundUs)} µs (a slice costs ${Math.round(sliceUs)} µs, the reap ${totalUs} µs)`,
    );
    await waitFor(() => checkKeyspace(redis.port, "f4", [survivor.nodeId]), { what: "nothing of the dead server" });
  });
});
