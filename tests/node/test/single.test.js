"use strict";
// Single-server mode (no Redis): real Socket.IO server, real clients.

const { test, describe, after, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const { requireRollcall, waitFor, startServer, connect, room, recordEvents, trustClientUserId } = require("./helpers");

const { Presence } = requireRollcall();
const FAST = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500 };

/** Counts as one object, for one assertion with a readable diff. */
async function snapshot(p, { rooms = [], users = [] } = {}) {
  const s = {
    clients: await p.clientsCount(),
    sockets: await p.socketsCount(),
    socketsChat: await p.socketsCount({ namespace: "/chat" }),
    users: await p.usersCount(),
    usersRoot: await p.usersCount({ namespace: "/" }),
    usersChat: await p.usersCount({ namespace: "/chat" }),
    list: await p.usersList(),
  };
  for (const r of rooms) {
    s[`room:${r}`] = [await p.socketsCount({ room: r }), await p.usersCount({ room: r })];
  }
  for (const u of users) s[`user:${u}`] = await p.userSocketsCount(u);
  return s;
}

describe("single server (no Redis)", () => {
  let server;
  let presence;
  let events;
  const sockets = [];

  async function open(userId, opts = {}) {
    const s = await connect(server.url, { userId, ...opts });
    sockets.push(s);
    return s;
  }

  beforeEach(async () => {
    server = await startServer();
    presence = await Presence.attach(server.io, FAST);
    events = recordEvents(presence);
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    await presence.close();
    await server.close();
  });

  test("multi-tab users are counted once; events fire on the first and last tab", async () => {
    const ann = [await open("ann"), await open("ann"), await open("ann")];
    await open("bob");
    await open(undefined);
    await open(null);
    await waitFor(
      async () =>
        assert.deepEqual(await snapshot(presence, { users: ["ann", "bob", "eve"] }), {
          clients: 6,
          sockets: 6,
          socketsChat: 0,
          users: 2,
          usersRoot: 2,
          usersChat: 0,
          list: ["ann", "bob"],
          "user:ann": 3,
          "user:bob": 1,
          "user:eve": 0,
        }),
      { what: "counts after connecting" },
    );
    assert.equal(await presence.isUserConnected("ann"), true);
    assert.equal(await presence.isUserConnected("eve"), false);
    assert.deepEqual(
      events.map((e) => [e.type, e.user]).sort(),
      [
        ["connected", "ann"],
        ["connected", "bob"],
      ],
    );

    ann[0].close();
    ann[1].close();
    await waitFor(async () => assert.equal(await presence.userSocketsCount("ann"), 1), { what: "two tabs closed" });
    assert.equal(events.filter((e) => e.type === "disconnected").length, 0);
    ann[2].close();
    await waitFor(() => assert.deepEqual(events.filter((e) => e.type === "disconnected").map((e) => [e.user, e.reason]), [["ann", "disconnect"]]), {
      what: "ann offline",
    });
    assert.equal(await presence.usersCount(), 1);
    assert.equal(await presence.socketsCount(), 3);
  });

  test("namespaces: per-namespace and global counts; multiplexed sockets share one client", async () => {
    const { Manager } = require("socket.io-client");
    const manager = new Manager(server.url, { transports: ["websocket"], reconnection: false });
    const root = await connect(server.url, { manager, ns: "/", userId: "ann" });
    const chat = await connect(server.url, { manager, ns: "/chat", userId: "ann" });
    sockets.push(root, chat);
    await open("bob", { ns: "/chat" });
    // A namespace created after attach, through a parent namespace.
    const dyn = server.io.of(/^\/dyn-\w+$/);
    trustClientUserId(server.io, [dyn]); // a parent's middleware covers its children
    await open("cy", { ns: "/dyn-1" });
    await waitFor(
      async () => {
        assert.deepEqual(await snapshot(presence), {
          clients: 3,
          sockets: 1,
          socketsChat: 2,
          users: 3,
          usersRoot: 1,
          usersChat: 2,
          list: ["ann", "bob", "cy"],
        });
        assert.equal(await presence.socketsCount({ namespace: "/dyn-1" }), 1);
        assert.equal(await presence.usersCount({ namespace: "dyn-1" }), 1, "a name without '/' means the same namespace");
      },
      { what: "namespace counts" },
    );
    assert.equal(await presence.userSocketsCount("ann"), 2);
    chat.close(); // leaves /chat only: the engine connection stays
    await waitFor(
      async () => {
        assert.equal(await presence.usersCount({ namespace: "/chat" }), 1);
        assert.equal(await presence.clientsCount(), 3);
        assert.equal(await presence.userSocketsCount("ann"), 1);
      },
      { what: "ann left /chat" },
    );
    assert.equal(events.filter((e) => e.type === "disconnected").length, 0, "ann is still online in /");
    manager.engine.close();
  });

  test("rooms follow join and leave, and disconnects", async () => {
    const a1 = await open("ann");
    const a2 = await open("ann");
    const b = await open("bob");
    const anon = await open(undefined);
    const c = await open("cy", { ns: "/chat" });
    await room(a1, "news");
    await room(a2, "news");
    await room(b, "news");
    await room(anon, "news");
    await room(c, "news"); // the room "news" of /chat: another scope
    await room(b, "sports");
    await waitFor(
      async () => {
        assert.deepEqual([await presence.socketsCount({ room: "news" }), await presence.usersCount({ room: "news" })], [4, 2]);
        assert.deepEqual(await presence.usersList({ room: "news" }), ["ann", "bob"]);
        assert.deepEqual(await presence.usersList({ namespace: "/chat", room: "news" }), ["cy"]);
        assert.equal(await presence.usersCount({ room: "sports" }), 1);
      },
      { what: "room counts" },
    );
    // The private room named by each socket id is not a presence room.
    assert.equal(await presence.socketsCount({ room: a1.id }), 0);
    await room(a1, "news", "leave");
    await room(b, "news", "leave");
    await waitFor(
      async () => assert.deepEqual([await presence.socketsCount({ room: "news" }), await presence.usersCount({ room: "news" })], [2, 1]),
      { what: "after leave" },
    );
    a2.close();
    b.close();
    await waitFor(
      async () => {
        assert.deepEqual([await presence.socketsCount({ room: "news" }), await presence.usersCount({ room: "news" })], [1, 0]);
        assert.equal(await presence.usersCount({ room: "sports" }), 0);
      },
      { what: "after disconnects" },
    );
  });

  test("anonymous sockets count as sockets and clients, never as users", async () => {
    for (let i = 0; i < 5; i++) await open(undefined);
    await open("");
    await waitFor(async () => {
      assert.equal(await presence.socketsCount(), 6);
      assert.equal(await presence.clientsCount(), 6);
      assert.equal(await presence.usersCount(), 0);
      assert.deepEqual(await presence.usersList(), []);
    });
    assert.equal(events.length, 0);
  });

  test("a socket recovered by connection state recovery is not counted twice", async () => {
    await presence.close();
    await server.close();
    server = await startServer({ connectionStateRecovery: { maxDisconnectionDuration: 10000 } });
    presence = await Presence.attach(server.io, FAST);
    events = recordEvents(presence);
    const s = await open("ann", { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 50 });
    await room(s, "news");
    // Recovery needs a packet with an offset: one broadcast.
    const hello = new Promise((r) => s.once("hello", r));
    server.io.emit("hello");
    await hello;
    const id = s.id;
    await waitFor(async () => assert.equal(await presence.usersCount({ room: "news" }), 1));
    const recovered = new Promise((r) => s.once("connect", r));
    s.io.engine.close(); // transport lost: the client reconnects and recovers
    await recovered;
    assert.equal(s.recovered, true, "the session was recovered");
    assert.equal(s.id, id);
    await waitFor(async () => {
      assert.equal(await presence.socketsCount(), 1);
      assert.equal(await presence.userSocketsCount("ann"), 1);
      assert.equal(await presence.socketsCount({ room: "news" }), 1, "the recovered socket is back in its room");
      assert.equal(await presence.usersCount(), 1);
    });
    // A duplicate "connection" for a live socket changes nothing; the hooks
    // know the socket, so the core is not even asked (no warning noise).
    const warnings = [];
    presence.on("warning", (w) => warnings.push(w));
    const live = server.io.of("/").sockets.get(id);
    server.io.of("/").emitReserved("connection", live);
    assert.equal(await presence.socketsCount(), 1);
    assert.equal(await presence.userSocketsCount("ann"), 1);
    assert.deepEqual(warnings, []);
  });

  test("sockets connected before attach are counted", async () => {
    await presence.close();
    await open("ann");
    await open("bob", { ns: "/chat" });
    presence = await Presence.attach(server.io, FAST);
    events = recordEvents(presence);
    assert.deepEqual(await presence.usersList(), ["ann", "bob"]);
    assert.equal(await presence.clientsCount(), 2);
  });

  test("close() is safe twice; users go offline with reason shutdown", async () => {
    await open("ann");
    await open("bob");
    const first = presence.close();
    const second = presence.close();
    assert.equal(first, second);
    await first;
    assert.deepEqual(
      events.filter((e) => e.type === "disconnected").map((e) => [e.user, e.reason]).sort(),
      [
        ["ann", "shutdown"],
        ["bob", "shutdown"],
      ],
    );
    assert.equal(await presence.usersCount(), 0);
    // Sockets that come and go after close are ignored: not counted while
    // connected (the server has it: its connect is done), nothing counted
    // or emitted once the server has handled its disconnect too.
    const seen = events.length;
    const late = await open("cy");
    assert.ok(server.io.of("/").sockets.has(late.id), "the server holds the late socket");
    assert.equal(await presence.usersCount(), 0, "a socket connected after close is not counted");
    assert.equal(await presence.socketsCount(), 0);
    assert.equal(await presence.userSocketsCount("cy"), 0);
    late.close();
    await waitFor(() => assert.ok(!server.io.of("/").sockets.has(late.id)), { what: "the server handled the disconnect" });
    assert.equal(await presence.usersCount(), 0);
    assert.equal(await presence.socketsCount(), 0);
    assert.deepEqual(events.slice(seen), [], "no event after close");
  });
});

describe("grace period", () => {
  let server;
  let presence;
  after(async () => {
    if (presence) await presence.close();
    if (server) await server.close();
  });

  test("a reconnect within graceMs is silent; staying away fires one event after graceMs", async () => {
    server = await startServer();
    // Long enough that the reconnect below, and the reads after the last
    // disconnect, always happen within it, even on a loaded machine: the
    // "still online" check always runs (asserted below, not skipped).
    const graceMs = 3000;
    presence = await Presence.attach(server.io, { ...FAST, graceMs });
    const events = recordEvents(presence);
    const a = await connect(server.url, { userId: "ann" });
    await room(a, "news");
    await waitFor(() => assert.deepEqual(events.map((e) => e.type), ["connected"]));

    // Reload: disconnect and reconnect at once.
    const reload = Date.now();
    a.close();
    const b = await connect(server.url, { userId: "ann" });
    await room(b, "news");
    assert.equal(await presence.usersCount(), 1);
    assert.equal(await presence.usersCount({ room: "news" }), 1);
    assert.ok(Date.now() - reload < graceMs, `reconnected ${Date.now() - reload} ms after the disconnect, within graceMs`);

    // Leave for good: online until the grace period is over, then one event.
    const gone = Date.now();
    b.close();
    // The disconnect is in: the server dropped the socket and rollcall saw
    // its client close. (Not "socketsCount() is 0": the last socket lingers
    // whole, socket count included, until the grace period ends, so that
    // wait used to end only after it and the check below never ran.)
    await waitFor(
      async () => {
        assert.ok(!server.io.of("/").sockets.has(b.id), "the server still holds the socket");
        assert.equal(await presence.clientsCount(), 0);
      },
      { what: "the disconnect handled" },
    );
    assert.equal(await presence.usersCount(), 1, "still online during the grace period");
    assert.equal(await presence.socketsCount(), 1, "its socket lingers");
    assert.equal(await presence.usersCount({ room: "news" }), 1, "its rooms linger too");
    assert.deepEqual(events.map((e) => e.type), ["connected"], "no offline event during the grace period");
    // The reads above were made within the grace period (else they prove nothing).
    const read = Date.now() - gone;
    assert.ok(read < graceMs, `read ${read} ms after the disconnect, within graceMs ${graceMs}`);
    await waitFor(() => assert.equal(events.length, 2), { what: "the offline event" });
    assert.deepEqual(
      events.map((e) => [e.type, e.user]),
      [
        ["connected", "ann"],
        ["disconnected", "ann"],
      ],
    );
    assert.equal(events[1].reason, "disconnect");
    assert.ok(events[1].at - gone >= graceMs - 5, `fired ${events[1].at - gone} ms after the disconnect`);
    assert.equal(await presence.usersCount(), 0);
    assert.equal(await presence.usersCount({ room: "news" }), 0);
  });
});

describe("options and arguments", () => {
  let server;
  after(async () => {
    if (server) await server.close();
  });

  test("bad options throw TypeError or RangeError naming the option", async () => {
    server = await startServer();
    const io = server.io;
    const cases = [
      [{ ttlMs: "10s" }, TypeError, /ttlMs/],
      [{ ttlMs: 1.5 }, TypeError, /ttlMs/],
      [{ ttlMs: 1000, heartbeatMs: 600 }, RangeError, /ttlMs.*heartbeatMs/],
      [{ heartbeatMs: 0 }, RangeError, /heartbeatMs/],
      [{ graceMs: -1 }, RangeError, /graceMs/],
      [{ reapMs: 10 ** 12 }, RangeError, /reapMs/],
      [{ prefix: "a{b" }, TypeError, /prefix/],
      [{ prefix: "" }, RangeError, /prefix/],
      [{ prefix: 7 }, TypeError, /prefix/],
      [{ ttl: 1000 }, TypeError, /unknown option "ttl"/],
      [{ redis: {} }, TypeError, /redis/],
      [{ redis: 42 }, TypeError, /redis/],
      [{ userId: "id" }, TypeError, /userId/],
      ["fast", TypeError, /options/],
    ];
    for (const [options, Err, pattern] of cases) {
      assert.throws(() => Presence.attach(io, options), (e) => e instanceof Err && pattern.test(e.message), JSON.stringify(options));
    }
    assert.throws(() => Presence.attach({}, {}), TypeError);
    assert.throws(() => new Presence(io, {}), TypeError);
  });

  test("bad read arguments throw TypeError or RangeError naming the argument", async () => {
    const presence = await Presence.attach(server.io, FAST);
    try {
      assert.throws(() => presence.usersCount({ namespace: 5 }), (e) => e instanceof TypeError && /namespace/.test(e.message));
      assert.throws(() => presence.usersCount({ room: "" }), (e) => e instanceof TypeError && /room/.test(e.message));
      assert.throws(() => presence.usersCount({ nsp: "/" }), (e) => e instanceof TypeError && /nsp/.test(e.message));
      assert.throws(() => presence.usersCount("/"), TypeError);
      assert.throws(() => presence.isUserConnected(""), (e) => e instanceof TypeError && /userId/.test(e.message));
      assert.throws(() => presence.userSocketsCount({}), TypeError);
      assert.throws(() => presence.isUserConnected("x".repeat(300)), RangeError);
      assert.equal(await presence.userSocketsCount(42), 0, "numeric ids are strings");
      assert.equal(typeof presence.nodeId, "string");
    } finally {
      await presence.close();
    }
  });
});

describe("Socket.IO setups", () => {
  test("attach before the server is bound to a port: low-level clients are still counted", async () => {
    const { Server } = require("socket.io");
    const io = new Server();
    trustClientUserId(io);
    const presence = await Presence.attach(io, FAST);
    const { freePort } = require("./helpers");
    const port = await freePort();
    io.listen(port);
    const url = `http://127.0.0.1:${port}`;
    const sockets = [await connect(url, { userId: "ann" }), await connect(url, {})];
    try {
      await waitFor(async () => {
        assert.equal(await presence.clientsCount(), 2);
        assert.equal(await presence.socketsCount(), 2);
      });
      sockets[0].close();
      await waitFor(async () => assert.equal(await presence.clientsCount(), 1));
    } finally {
      for (const s of sockets) s.close();
      await presence.close();
      await new Promise((r) => io.close(() => r()));
    }
  });

  test("an adapter set after attach is followed (rooms still counted)", async () => {
    const server = await startServer();
    const presence = await Presence.attach(server.io, FAST);
    const { Adapter } = require("socket.io-adapter");
    class Custom extends Adapter {}
    server.io.adapter(Custom);
    assert.ok(server.io.of("/").adapter instanceof Custom);
    const s = await connect(server.url, { userId: "ann" });
    try {
      await room(s, "news");
      await waitFor(async () => assert.equal(await presence.usersCount({ room: "news" }), 1));
      await room(s, "news", "leave");
      await waitFor(async () => assert.equal(await presence.usersCount({ room: "news" }), 0));
    } finally {
      s.close();
      await presence.close();
      await server.close();
    }
    // close() put the Server's own methods back.
    assert.equal(Object.prototype.hasOwnProperty.call(server.io, "adapter"), false);
  });
});
