"use strict";
// "user joined" / "user left" per namespace and room, cluster-wide, exactly
// once: a mixed cluster (two Node servers, one with node-redis and one with
// ioredis, and the socketioxide example) on one real redis-server, with
// real socket.io-client clients. A user's first socket entering a
// namespace or a room fires one "user joined" in the whole cluster,
// whichever server holds it; a user's last socket leaving fires one
// "user left" (reason "disconnect"), and nothing fires while another
// socket of the user, on any server, is still there. A server killed with
// SIGKILL: each room and namespace it was the last holder of fires one
// "user left" with reason "reaped", on a survivor. Every event carries a
// change id; the survivor that reaps the killed server reports that
// server's last write again (at least once across a death), with the same
// change id: events are counted once per change id, and repeats must
// agree.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { requireRollcall, waitFor, startRedis, startNode, startRustNode, startServer, connect, room, redisCli } =
  require("./helpers");

const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500 };
const RUST = 2;

describe("user joined / user left across Node and Rust servers", () => {
  let redis;
  let nodes = [];
  const sockets = [];
  /** The sockets of the first test, for the next ones. */
  const state = {};

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all([
      startNode(0, { redisUrl: redis.url, clientKind: "node-redis", timings: TIMINGS }),
      startNode(1, { redisUrl: redis.url, clientKind: "ioredis", timings: TIMINGS }),
      startRustNode(RUST, { redisUrl: redis.url, ttlMs: TIMINGS.ttlMs }),
    ]);
  });

  after(async () => {
    for (const s of sockets) s.close();
    for (const n of nodes) {
      if (n.alive) n.child.kill("SIGKILL");
    }
    if (redis) await redis.stop();
  });

  /** A socket of `userId` on server `i`, namespace `ns`. */
  async function open(i, userId, ns = "/") {
    const s = await connect(nodes[i].url, { userId, ns });
    sockets.push(s);
    return s;
  }

  /**
   * The room events since `mark`, as "kind user ns room [reason]" lines,
   * sorted, one per change id (a repeat must say the same).
   */
  function roomEvents(mark, from = nodes) {
    const byChange = new Map();
    for (const n of nodes) {
      for (const e of n.events) {
        if (e.event !== "joined" && e.event !== "left") continue;
        assert.equal(typeof e.changeId, "string", "every room event has a change id");
        const line = [e.event, e.user, e.namespace, e.room ?? "-", e.reason ?? ""].join(" ").trim();
        const seen = byChange.get(e.changeId);
        if (seen) assert.equal(line, seen.line, `repeats of ${e.changeId} agree`);
        // The earliest report is the first, whichever server made it.
        if (!seen || e.at < seen.e.at) byChange.set(e.changeId, { line, e, n });
      }
    }
    // A change is counted in the window of its first report.
    return [...byChange.values()]
      .filter(({ e, n }) => e.at >= mark && from.includes(n))
      .map(({ line }) => line)
      .sort();
  }

  /**
   * Every write of these servers is in Redis and its events have arrived: a
   * read waits for the server's own writes (read-your-writes), and a server
   * sends its events before it answers.
   */
  async function settle(from) {
    await Promise.all(from.filter((n) => n.alive).map((n) => n.counts([])));
  }

  /** Waits until the room events since `mark` are at least `want`, settles, then compares exactly. */
  async function expectRoomEvents(mark, want, what, from = nodes) {
    await waitFor(() => roomEvents(mark, from).length >= want.length, { timeout: 15000, what });
    await settle(from);
    assert.deepEqual(roomEvents(mark, from), [...want].sort(), what);
  }

  test("a user's first socket in a namespace or room is one 'user joined', cluster-wide", async () => {
    const mark = Date.now();
    const annA = await open(0, "ann");
    const annB = await open(1, "ann");
    const annR = await open(RUST, "ann");
    for (const s of [annA, annB, annR]) await room(s, "news");
    const bob = await open(1, "bob", "/chat");
    await room(bob, "news");
    await expectRoomEvents(
      mark,
      ["joined ann / -", "joined ann / news", "joined bob /chat -", "joined bob /chat news"],
      "one joined per (user, namespace or room)",
    );
    Object.assign(state, { annA, annB, annR, bob });
  });

  test("leaving fires nothing while another server holds the user there, then one 'user left'", async () => {
    const { annA, annB, annR } = state;
    let mark = Date.now();
    await room(annA, "news", "leave");
    await room(annR, "news", "leave");
    await expectRoomEvents(mark, [], "ann is still in news on server 1");
    mark = Date.now();
    await room(annB, "news", "leave");
    await expectRoomEvents(mark, ["left ann / news disconnect"], "one left when the last socket leaves");
  });

  test("kill -9 a server: the rooms it alone held fire one 'user left' (reaped) on a survivor", async () => {
    const mark = Date.now();
    nodes[1].child.kill("SIGKILL");
    const survivors = [nodes[0], nodes[RUST]];
    // ann still has sockets on servers 0 and 2: only bob's namespace and room go.
    await expectRoomEvents(
      mark,
      ["left bob /chat - reaped", "left bob /chat news reaped"],
      "bob's namespace and room, reaped once",
      survivors,
    );
  });
});

describe("the rooms option: only the rooms an app cares about", () => {
  const { Presence } = requireRollcall();
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    if (redis) await redis.stop();
  });

  /** Keys of `prefix` whose name holds `text`. */
  async function keysWith(prefix, text) {
    return (await redisCli(redis.port, "--raw", "KEYS", `{${prefix}}*${text}*`)).split("\n").filter(Boolean);
  }

  for (const filtered of [true, false]) {
    test(`${filtered ? "with" : "without"} a filter: private rooms ${filtered ? "cost no key" : "are counted"}`, async () => {
      const { createClient } = require("redis");
      const client = createClient({ url: redis.url });
      client.on("error", () => {});
      await client.connect();
      const server = await startServer();
      const prefix = filtered ? "filtered" : "every";
      const seen = [];
      const rooms = (name, namespace) => {
        seen.push(`${namespace} ${name}`);
        return !name.startsWith("user:");
      };
      const presence = await Presence.attach(server.io, {
        ...TIMINGS,
        redis: client,
        prefix,
        ...(filtered ? { rooms } : {}),
      });
      const sockets = [];
      try {
        for (const user of ["ann", "bob", "cid"]) {
          const s = await connect(server.url, { userId: user });
          sockets.push(s);
          await room(s, "news");
          await room(s, `user:${user}`);
        }
        await room(sockets[0], "user:ann", "leave");
        assert.equal(await presence.usersCount({ room: "news" }), 3);
        assert.equal(await presence.socketsCount({ room: "user:bob" }), filtered ? 0 : 1);
        assert.ok((await keysWith(prefix, "news")).length > 0, "the shared room has its key");
        assert.deepEqual((await keysWith(prefix, "user:")).length > 0, !filtered, "private rooms' keys");
        if (filtered) {
          assert.ok(seen.includes("/ news") && seen.includes("/ user:ann"), seen.join(", "));
        }
      } finally {
        for (const s of sockets) s.close();
        await presence.close();
        await server.close();
        await client.quit().catch(() => {});
      }
    });
  }

  test("rooms must be a function", async () => {
    const server = await startServer();
    try {
      await assert.rejects(
        (async () => Presence.attach(server.io, { rooms: ["news"] }))(),
        (e) => e instanceof TypeError && /rooms must be a function/.test(e.message),
      );
    } finally {
      await server.close();
    }
  });
});
