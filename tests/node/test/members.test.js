"use strict";
// members() in pages and userRooms(), with real socket.io-client clients:
// two Node servers on one real redis-server (one with node-redis, one with
// ioredis), and a single server on the embedded store. Pages come in
// user-id order, hold each member exactly once with its sockets over both
// servers and its since, stop with cursor null; userRooms follows joins and
// leaves on either server; bad pages are clear errors.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { requireRollcall, waitFor, startRedis, startNode, startRustNode, startServer, connect, room } =
  require("./helpers");

const USERS = 23;
const name = (i) => `user-${String(i).padStart(2, "0")}`;

/** Every page of `scope` with `limit` from `server`, checked page by page. */
async function allPages(server, scope, limit) {
  const members = [];
  let cursor = null;
  let pages = 0;
  do {
    const page = await server.members(scope, { limit, cursor });
    assert.ok(page.members.length <= limit, `a page holds at most ${limit}`);
    pages++;
    members.push(...page.members);
    cursor = page.cursor;
    assert.ok(cursor === null || typeof cursor === "string", "cursor: a string or null");
  } while (cursor !== null);
  return { members, pages };
}

/**
 * The story on two servers `[a, b]` (each `{ url, members, userRooms }`):
 * USERS users on a, every third also on b, the odd ones in room "lobby".
 */
async function story(servers, sockets) {
  const [a, b] = servers;
  const before = Date.now();
  const open = async (server, userId) => {
    const s = await connect(server.url, { userId });
    sockets.push(s);
    return s;
  };
  const held = new Map();
  for (let i = 0; i < USERS; i++) {
    const s = await open(a, name(i));
    held.set(name(i), s);
    if (i % 3 === 0) held.set(`${name(i)}@b`, await open(b, name(i)));
    if (i % 2 === 1) await room(s, "lobby");
  }
  const everyone = Array.from({ length: USERS }, (_, i) => name(i));
  await waitFor(async () => (await b.members(undefined, { limit: 1000 })).members.length === USERS, {
    what: "every user counted",
  });

  for (const server of servers) {
    const { members, pages } = await allPages(server, undefined, 5);
    assert.equal(pages, Math.ceil(USERS / 5));
    assert.deepEqual(
      members.map((m) => m.userId),
      everyone,
      "every member once, in id order",
    );
    for (const [i, m] of members.entries()) {
      assert.equal(m.sockets, i % 3 === 0 ? 2 : 1, `${m.userId}'s sockets over both servers`);
      assert.ok(m.since >= before - 2000 && m.since <= Date.now() + 2000, `${m.userId}: since ${m.since}`);
    }
  }
  const defaults = await a.members();
  assert.equal(defaults.members.length, USERS, "limit defaults to 100");
  assert.equal(defaults.cursor, null);
  const exact = await a.members(undefined, { limit: USERS });
  assert.equal(exact.cursor, null, "a page the size of the scope is the last");

  const lobby = await allPages(b, { room: "lobby" }, 4);
  assert.deepEqual(
    lobby.members.map((m) => m.userId),
    everyone.filter((_, i) => i % 2 === 1),
  );
  const root = await a.members({ namespace: "/" }, { limit: 1000 });
  assert.equal(root.members.length, USERS);

  // user-03: a socket on each server, the one on a in the lobby.
  await room(held.get(`${name(3)}@b`), "vip");
  assert.deepEqual(
    (await a.userRooms(name(3))).map(({ namespace, room }) => [namespace, room ?? null]),
    [
      ["/", null],
      ["/", "lobby"],
      ["/", "vip"],
    ],
  );
  await room(held.get(name(3)), "lobby", "leave");
  await waitFor(async () => (await b.userRooms(name(3))).length === 2, { what: "user-03 left the lobby" });
  assert.deepEqual(
    (await b.userRooms(name(3))).map((r) => r.room ?? null),
    [null, "vip"],
  );
  const since = (await b.userRooms(name(3)))[1].since;
  assert.ok(since >= before - 2000, "a room has its since too");
  assert.deepEqual(await a.userRooms("nobody"), []);

  // Pages under change: a user there from the first page to the last is
  // in exactly one page, whoever comes and goes in between.
  const seen = [];
  let cursor = null;
  let k = 0;
  do {
    const page = await a.members(undefined, { limit: 4, cursor });
    seen.push(...page.members.map((m) => m.userId));
    cursor = page.cursor;
    k++;
    await open(b, `${name(k)}x`);
    held.get(name(USERS - k)).close();
  } while (cursor !== null);
  assert.equal(new Set(seen).size, seen.length, `no member twice: ${seen}`);
  for (let i = 0; i < USERS; i++) {
    const stayed = i < USERS - k || i % 3 === 0;
    if (stayed) assert.ok(seen.includes(name(i)), `${name(i)} stayed throughout and is missing`);
  }
}

/** The bad pages, each a clear error, on `server`. */
async function badPages(server) {
  for (const [options, pattern] of [
    [{ limit: 0 }, /limit must be between 1 and 1000/],
    [{ limit: 1001 }, /limit must be between 1 and 1000/],
    [{ limit: 2.5 }, /limit must be a whole number/],
    [{ limit: 5, size: 1 }, /unknown option "size"/],
    [{ cursor: "" }, /cursor must be a non-empty string/],
    ["page 2", /members\(\) takes its page as an object/],
  ]) {
    await assert.rejects(server.members(undefined, options), pattern, JSON.stringify(options));
  }
  await assert.rejects(server.members({ floor: 1 }), /unknown scope field "floor"/);
  await assert.rejects(server.userRooms(""), /userId must be a non-empty string/);
}

describe("members() and userRooms() on two servers, one Redis", () => {
  let redis;
  let nodes = [];
  const sockets = [];

  before(async () => {
    redis = await startRedis();
    const timings = { ttlMs: 3000, heartbeatMs: 500, reapMs: 500, graceMs: 0 };
    nodes = await Promise.all([
      startNode(0, { redisUrl: redis.url, clientKind: "node-redis", timings }),
      startNode(1, { redisUrl: redis.url, clientKind: "ioredis", timings }),
    ]);
  });

  after(async () => {
    for (const s of sockets) s.close();
    for (const n of nodes) if (n.alive) n.child.kill("SIGKILL");
    if (redis) await redis.stop();
  });

  /** A forked server as the story drives it. */
  const remote = (n) => ({
    url: n.url,
    members: async (scope, options) => (await n.ask("members", { scope, options })).page,
    userRooms: async (user) => (await n.ask("userRooms", { user })).rooms,
  });

  test("pages hold every member once; userRooms follows both servers", async () => {
    await story(nodes.map(remote), sockets);
  });

  test("bad pages are clear errors", async () => {
    for (const n of nodes) await badPages(remote(n));
  });
});

describe("members() and userRooms() on the embedded store", () => {
  const { Presence } = requireRollcall();
  let server;
  let presence;
  const sockets = [];

  before(async () => {
    server = await startServer();
    presence = await Presence.attach(server.io, { graceMs: 0 });
  });

  after(async () => {
    for (const s of sockets) s.close();
    if (presence) await presence.close();
    if (server) await server.close();
  });

  test("pages hold every member once; userRooms follows the rooms", async () => {
    // One server plays both: its sockets are all the cluster has.
    const local = {
      url: server.url,
      members: (scope, options) => presence.members(scope, options),
      userRooms: (user) => presence.userRooms(user),
    };
    await story([local, local], sockets);
  });

  test("bad pages are clear errors", async () => {
    const local = {
      members: async (scope, options) => presence.members(scope, options),
      userRooms: async (user) => presence.userRooms(user),
    };
    await badPages(local);
  });
});

describe("members() and userRooms() across a Node and a Rust server", () => {
  let redis;
  let nodes = [];
  const sockets = [];

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all([
      startNode(0, { redisUrl: redis.url, clientKind: "node-redis", timings: { ttlMs: 3000, heartbeatMs: 500 } }),
      startRustNode(1, { redisUrl: redis.url, ttlMs: 3000 }),
    ]);
  });

  after(async () => {
    for (const s of sockets) s.close();
    for (const n of nodes) if (n.alive) n.child.kill("SIGKILL");
    if (redis) await redis.stop();
  });

  test("each host pages the users of the other; userRooms answers alike", async () => {
    const [js, rust] = nodes;
    const open = async (n, userId) => {
      const s = await connect(n.url, { userId });
      sockets.push(s);
      return s;
    };
    // ann on both, bob on Node in the lobby, cy on Rust in the lobby.
    await open(js, "ann");
    await open(rust, "ann");
    await room(await open(js, "bob"), "lobby");
    await room(await open(rust, "cy"), "lobby");
    const want = [
      ["ann", 2],
      ["bob", 1],
      ["cy", 1],
    ];
    await waitFor(async () => {
      const page = (await js.ask("members", { scope: { namespace: "/" } })).page;
      assert.deepEqual(page.members.map((m) => [m.userId, m.sockets]), want);
      assert.deepEqual((await rust.members()).map((m) => [m.userId, m.sockets]), want);
    }, { what: "both hosts list every user of the namespace" });
    const lobby = (await js.ask("members", { scope: { room: "lobby" } })).page.members.map((m) => m.userId);
    assert.deepEqual(lobby, ["bob", "cy"]);
    assert.deepEqual((await rust.members({ namespace: "/", room: "lobby" })).map((m) => m.userId), ["bob", "cy"]);
    for (const user of ["bob", "cy"]) {
      const fromJs = (await js.ask("userRooms", { user })).rooms.map((r) => [r.namespace, r.room ?? null]);
      assert.deepEqual(fromJs, [
        ["/", null],
        ["/", "lobby"],
      ]);
      assert.deepEqual(await rust.userRooms(user), fromJs, `${user}: the Rust host agrees`);
    }
  });
});
