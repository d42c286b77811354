"use strict";
// Who the user is, decided by the server: by default rollcall reads
// socket.data.userId (set by the app's auth middleware), never the
// client's own handshake.auth; identify() sets or changes the user of a
// connected socket, moving its namespace and rooms with the events that
// implies, on two servers of one real redis-server and on the embedded
// store, with real socket.io-client clients.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const http = require("node:http");
const { requireRollcall, waitFor, startRedis, startNode, startServer, connect, room } = require("./helpers");

const { Presence } = requireRollcall();
const FAST = { ttlMs: 3000, heartbeatMs: 500, reapMs: 500, graceMs: 0 };

/** A Socket.IO server of this process, its auth middleware `auth` (if any) before rollcall. */
async function ownServer(auth) {
  const { Server } = require("socket.io");
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  if (auth) io.use(auth);
  const presence = await Presence.attach(io, FAST);
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  return {
    io,
    presence,
    url: `http://127.0.0.1:${httpServer.address().port}`,
    close: async () => {
      await presence.close();
      await new Promise((r) => io.close(() => r()));
    },
  };
}

describe("the default user is socket.data.userId", () => {
  test("a client's own handshake.auth.userId is not believed", async () => {
    const server = await ownServer(null);
    const s = await connect(server.url, { userId: "mallory" });
    try {
      await waitFor(async () => assert.equal(await server.presence.socketsCount(), 1));
      assert.equal(await server.presence.usersCount(), 0, "an anonymous socket");
      assert.deepEqual(await server.presence.usersList(), []);
    } finally {
      s.close();
      await server.close();
    }
  });

  test("the app's auth middleware decides, also asynchronously; a refused socket is never counted", async () => {
    const sessions = new Map([["t-alice", "alice"]]);
    const server = await ownServer(async (socket, next) => {
      await new Promise((r) => setTimeout(r, 5)); // a session store lookup
      const user = sessions.get(socket.handshake.auth.token);
      if (!user) return next(new Error("not signed in"));
      socket.data.userId = user;
      next();
    });
    const sockets = [];
    try {
      sockets.push(await connect(server.url, { auth: { token: "t-alice", userId: "mallory" } }));
      await assert.rejects(connect(server.url, { auth: { token: "forged" } }), /not signed in/);
      await waitFor(async () => assert.deepEqual(await server.presence.usersList(), ["alice"]));
      assert.equal(await server.presence.socketsCount(), 1, "the refused socket is not counted");
    } finally {
      for (const s of sockets) s.close();
      await server.close();
    }
  });
});

/**
 * The identify story on servers `[a, b]`: `identify(i, socket, user)`
 * runs presence.identify on server i; `events()` are the presence events
 * so far as {event, user, room?, reason?}; `read(i, what, ...args)`.
 */
async function story({ urls, identify, events, read }) {
  const c1 = await connect(urls[0], {}); // anonymous at first
  const c2 = await connect(urls[1], { userId: "ann" });
  try {
    await room(c1, "lobby");
    await waitFor(async () => assert.equal(await read(1, "socketsCount"), 2));
    await waitFor(() => assert.ok(events().some((e) => e.event === "joined" && e.user === "ann")));
    const mark = events().length;
    const since = () =>
      events()
        .slice(mark)
        .map((e) => {
          const where = e.event === "joined" || e.event === "left" ? [e.room ?? "-"] : [];
          return [e.event, e.user, ...where, e.reason ?? ""].join(" ").trim();
        })
        .sort();

    // c1 becomes ann's second socket: she joins the lobby; she was online already.
    await identify(0, c1, "ann");
    assert.equal(await read(0, "userSocketsCount", "ann"), 2);
    await waitFor(() => assert.deepEqual(since(), ["joined ann lobby"]));
    assert.deepEqual((await read(1, "members", { room: "lobby" })).members.map((m) => m.userId), ["ann"]);

    // Then bob's: bob comes online in /, the lobby; ann leaves the lobby, stays online (c2).
    await identify(0, c1, "bob");
    assert.deepEqual(await read(0, "usersList"), ["ann", "bob"]);
    await waitFor(() =>
      assert.deepEqual(since(), [
        "connected bob",
        "joined ann lobby",
        "joined bob -",
        "joined bob lobby",
        "left ann lobby disconnect",
      ]),
    );
    assert.deepEqual(
      (await read(0, "userRooms", "bob")).map((r) => r.room ?? "-"),
      ["-", "lobby"],
    );
    assert.equal(await read(0, "userSocketsCount", "ann"), 1);

    // Anonymous again: bob goes at once (no grace: the socket stayed).
    await identify(0, c1, null);
    assert.deepEqual(await read(0, "usersList"), ["ann"]);
    assert.equal(await read(0, "socketsCount"), 2, "the socket still counts");
    await waitFor(() =>
      assert.deepEqual(since().filter((l) => l.includes("bob")), [
        "connected bob",
        "disconnected bob disconnect",
        "joined bob -",
        "joined bob lobby",
        "left bob - disconnect",
        "left bob lobby disconnect",
      ]),
    );
    // The same user again changes nothing.
    await identify(1, c2, "ann");
    assert.equal(await read(1, "userSocketsCount", "ann"), 1);
  } finally {
    c1.close();
    c2.close();
  }
}

describe("identify() from an app's 'connection' listener that runs before rollcall's", () => {
  test("the socket is counted as that user when rollcall sees it, with no warning", async () => {
    const { Server } = require("socket.io");
    const httpServer = http.createServer();
    const io = new Server(httpServer);
    let presence;
    let identified;
    // Registered before attach: it runs before rollcall's own listener.
    io.on("connection", (socket) => {
      identified = presence.identify(socket, "zed");
    });
    presence = await Presence.attach(io, FAST);
    const warnings = [];
    presence.on("warning", (w) => warnings.push(w));
    await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
    const s = await connect(`http://127.0.0.1:${httpServer.address().port}`, {});
    try {
      await waitFor(() => assert.ok(identified, "the app's listener ran"));
      await identified;
      assert.deepEqual(await presence.usersList(), ["zed"]);
      assert.equal(await presence.userSocketsCount("zed"), 1);
      assert.deepEqual(warnings, []);
    } finally {
      s.close();
      await presence.close();
      await new Promise((r) => io.close(() => r()));
    }
  });
});

describe("identify() on two servers, one Redis", () => {
  let redis;
  let nodes = [];

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all([
      startNode(0, { redisUrl: redis.url, clientKind: "node-redis", timings: FAST }),
      startNode(1, { redisUrl: redis.url, clientKind: "ioredis", timings: FAST }),
    ]);
  });

  after(async () => {
    for (const n of nodes) if (n.alive) n.child.kill("SIGKILL");
    if (redis) await redis.stop();
  });

  test("counts, rooms and events move with the socket", async () => {
    const counts = async (i) => nodes[i].counts();
    await story({
      urls: nodes.map((n) => n.url),
      identify: (i, socket, user) => nodes[i].ask("identify", { sid: socket.id, user }),
      events: () => nodes.flatMap((n) => n.events).sort((x, y) => x.seq - y.seq),
      read: async (i, what, arg) => {
        if (what === "socketsCount") return (await counts(i)).sockets;
        if (what === "usersList") return (await counts(i)).list;
        if (what === "userSocketsCount") return (await nodes[i].counts([arg])).probes[arg];
        if (what === "members") return (await nodes[i].ask("members", { scope: arg })).page;
        if (what === "userRooms") return (await nodes[i].ask("userRooms", { user: arg })).rooms;
        throw new Error(what);
      },
    });
  });
});

describe("identify() on the embedded store", () => {
  let server;
  let presence;
  const log = [];

  before(async () => {
    server = await startServer();
    presence = await Presence.attach(server.io, FAST);
    presence.on("user connected", (user) => log.push({ event: "connected", user }));
    presence.on("user disconnected", (user, reason) => log.push({ event: "disconnected", user, reason }));
    presence.on("user joined", (user, where) => log.push({ event: "joined", user, room: where.room }));
    presence.on("user left", (user, where, reason) => log.push({ event: "left", user, room: where.room, reason }));
  });

  after(async () => {
    if (presence) await presence.close();
    if (server) await server.close();
  });

  test("counts, rooms and events move with the socket", async () => {
    const serverSocket = (client) => server.io.of("/").sockets.get(client.id);
    await story({
      urls: [server.url, server.url],
      identify: (_, socket, user) => presence.identify(serverSocket(socket), user),
      events: () => log,
      read: (_, what, arg) => {
        if (what === "socketsCount") return presence.socketsCount();
        if (what === "usersList") return presence.usersList();
        if (what === "userSocketsCount") return presence.userSocketsCount(arg);
        if (what === "members") return presence.members(arg);
        if (what === "userRooms") return presence.userRooms(arg);
        throw new Error(what);
      },
    });
  });

  test("bad arguments are clear errors", async () => {
    assert.throws(() => presence.identify({}, "ann"), /identify\(\) takes a server-side Socket.IO socket/);
    assert.throws(() => presence.identify(undefined, "ann"), TypeError);
    const s = await connect(server.url, {});
    try {
      const socket = server.io.of("/").sockets.get(s.id);
      assert.throws(() => presence.identify(socket, ""), /userId must be a non-empty string/);
      assert.throws(() => presence.identify(socket, "x".repeat(5000)), RangeError);
    } finally {
      s.close();
    }
  });
});
