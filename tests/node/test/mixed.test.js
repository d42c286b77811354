"use strict";
// A mixed cluster: two Node servers (the package from its tarball) and one
// Rust server (the socketioxide example through rollcall-host) on one real
// redis-server and one keyspace, with real socket.io-client clients. The
// checks are those of the all-Node cluster test: every server reports the
// truth (engine-level clients of the Rust server included); a server of
// either kind paused past its TTL is reaped and heals when resumed; a
// server of either kind killed with SIGKILL is reaped within TTL + one reap
// interval; each user a dead server took offline gets exactly one
// "user disconnected" (reason "reaped") in the whole cluster, none twice.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { waitFor, startRedis, startNode, startRustNode } = require("./helpers");
const { plan, connectAll, onlineOncePerUser, truth, converge, eventsSince, withoutRepeats } = require("./cluster-checks");

const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500 };
const USERS = 30;
const ANONYMOUS = 9;
const RUST = 2;

describe("mixed cluster: two Node servers and one Rust server", () => {
  let redis;
  let nodes = [];
  const conns = [];
  const probeUsers = ["user-000", "user-001", "user-004", "nobody"];

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all([
      startNode(0, { redisUrl: redis.url, timings: TIMINGS }),
      startNode(1, { redisUrl: redis.url, timings: TIMINGS }),
      startRustNode(RUST, { redisUrl: redis.url, ttlMs: TIMINGS.ttlMs }),
    ]);
    // The Rust server's control socket is a client like any other.
    conns.push({ user: undefined, server: RUST, ns: "/", lobby: false, live: true, socket: nodes[RUST].control });
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

  /** Users who would go offline if `server` went away. */
  function onlyOn(server) {
    const elsewhere = new Set(conns.filter((c) => c.live && c.server !== server && c.user).map((c) => c.user));
    return [...new Set(conns.filter((c) => c.live && c.server === server && c.user).map((c) => c.user))]
      .filter((u) => !elsewhere.has(u))
      .sort();
  }

  const globalEvents = (ns, mark) =>
    eventsSince(ns, mark).filter((e) => e.event === "connected" || e.event === "disconnected");

  test("counts from every server, Node and Rust, equal the truth", async () => {
    const planned = plan(USERS, ANONYMOUS);
    assert.ok(planned.filter((p) => p.server === RUST).length >= 15);

    const mark = Date.now();
    await connectAll(nodes, planned, conns);
    const expected = truth(conns, probeUsers);
    assert.equal(expected.users, USERS);
    await converge(nodes, expected, "all three servers agree with the truth");

    await Promise.all(nodes.map((n) => n.ask("ping")));
    const online = onlineOncePerUser(globalEvents(nodes, mark), USERS);
    assert.ok(online.some((e) => e.server === RUST), "the Rust server emitted some of them");
  });

  for (const [kind, paused, watcher] of [
    ["the Rust server", RUST, 0],
    ["a Node server", 1, RUST],
  ]) {
    test(`SIGSTOP ${kind} past its TTL: the others reap it; SIGCONT: it re-asserts`, async () => {
      const p = nodes[paused];
      const others = nodes.filter((_, i) => i !== paused);
      const only = onlyOn(paused);
      assert.ok(only.length > 0);
      const mark = Date.now();
      const earlier = [...p.events];
      p.child.kill("SIGSTOP");
      p.stopped = true;
      try {
        const without = conns.map((c) => ({ ...c, live: c.live && c.server !== paused }));
        await converge([nodes[watcher]], truth(without, probeUsers), `${kind} is reaped`);
      } finally {
        p.child.kill("SIGCONT");
        p.stopped = false;
      }
      await converge(nodes, truth(conns, probeUsers), `${kind} re-asserted`);
      await Promise.all(nodes.map((n) => n.ask("ping")));

      const events = withoutRepeats(globalEvents(nodes, mark), earlier);
      for (const user of only) {
        const mine = events.filter((e) => e.user === user).map((e) => `${e.event}${e.reason ? `:${e.reason}` : ""}`);
        assert.deepEqual(mine, ["disconnected:reaped", "connected"], user);
      }
      assert.deepEqual(events.filter((e) => !only.includes(e.user)), [], "no events for users online elsewhere");
      assert.ok(
        eventsSince(others, mark).some((e) => e.event === "reaped" && e.node === p.nodeId),
        "another server reported it reaped",
      );
    });
  }

  for (const [kind, victim, survivorsOf] of [
    ["a Node server", 1, [0, RUST]],
    ["the Rust server", RUST, [0]],
  ]) {
    test(`kill -9 ${kind}: reaped within TTL + reap interval, one 'reaped' per user it took offline`, async () => {
      const v = nodes[victim];
      const survivors = survivorsOf.map((i) => nodes[i]);
      const wentOffline = onlyOn(victim);
      assert.ok(wentOffline.length >= 3, `${wentOffline.length} users only on ${kind}`);
      const mark = Date.now();
      v.child.kill("SIGKILL");
      for (const c of conns) if (c.server === victim) c.live = false;

      const took = await converge(survivors, truth(conns, probeUsers), `survivors agree after the kill of ${kind}`);
      const bound = TIMINGS.ttlMs + TIMINGS.reapMs + 2000; // + slack for a loaded machine
      assert.ok(took <= bound, `counts were right after ${took} ms (bound ${bound})`);

      await waitFor(
        () => eventsSince(survivors, mark).some((e) => e.event === "reaped" && e.node === v.nodeId),
        { what: "a 'node reaped' event" },
      );
      await Promise.all(survivors.map((n) => n.ask("ping")));
      // The reaper reports the killed server's last write again (at least
      // once across a death), with that server's change ids: a repeat of
      // what the killed server reported says the same; the rest is new.
      const events = withoutRepeats(globalEvents(survivors, mark), v.events);
      const offline = events.filter((e) => e.event === "disconnected");
      assert.deepEqual(offline.map((e) => e.user).sort(), wentOffline, "exactly one 'user disconnected' per user");
      assert.deepEqual([...new Set(offline.map((e) => e.reason))], ["reaped"]);
      assert.deepEqual(events.filter((e) => e.event === "connected"), []);
    });
  }
});
