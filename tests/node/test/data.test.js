"use strict";
// Presence data (presence.setData) as an app sees it, with real
// socket.io-client clients: two server processes on one real
// redis-server (with node-redis, then with ioredis), and a single server
// on the embedded store in this process. A socket's data is shown
// cluster-wide with the data of the user's other sockets (members(), the
// "user updated" event on the server that made the change, watch() on the
// other); it goes with its socket, moves with identify(), lingers during a
// grace period; too long or not an object is refused and changes nothing.

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { requireRollcall, waitFor, startRedis, startNode, startServer, connect } = require("./helpers");

const { Presence } = requireRollcall();
const FAST = { ttlMs: 3000, heartbeatMs: 500, reapMs: 500 };
/** The embedded server's grace period. */
const GRACE_MS = 2000;

/** Data objects in an order of their own (the core's order is stable, not ours to assume). */
const sorted = (data) => [...data].map((d) => JSON.stringify(d)).sort();

/** The members of a page as `{ user: sorted data }`. */
const dataOf = (page) => Object.fromEntries(page.members.map((m) => [m.userId, sorted(m.data)]));

/** A JSON object text of exactly `bytes` UTF-8 bytes, of two-byte characters where it can. */
function ofBytes(bytes) {
  // {"x":"..."}: 8 bytes around the string.
  const room = bytes - 8;
  return { x: "é".repeat(Math.floor(room / 2)) + "y".repeat(room % 2) };
}

for (const clientKind of ["node-redis", "ioredis"]) {
  describe(`presence data on two servers, one Redis (${clientKind})`, () => {
    let redis;
    let nodes = [];
    const sockets = [];
    const open = async (i, userId) => {
      const s = await connect(nodes[i].url, { userId });
      sockets.push(s);
      return s;
    };
    const setData = (i, socket, data) => nodes[i].ask("setData", { sid: socket.id, data });
    const members = async (i, scope) => (await nodes[i].ask("members", { scope, options: { limit: 1000 } })).page;
    /** "user updated" events of every server after `mark` (an index into all of them in arrival order). */
    const all = () => nodes.flatMap((n) => n.events).sort((x, y) => x.seq - y.seq);
    const updatesSince = (mark) => all().slice(mark).filter((e) => e.event === "updated");
    /** Every server has handled (and sent) all it was given before. */
    const settle = () => Promise.all(nodes.map((n) => n.ask("ping")));

    before(async () => {
      redis = await startRedis();
      nodes = await Promise.all([
        startNode(0, { redisUrl: redis.url, clientKind, timings: FAST }),
        startNode(1, { redisUrl: redis.url, clientKind, timings: FAST }),
      ]);
      await nodes[1].ask("watch");
    });

    after(async () => {
      for (const s of sockets) s.close();
      for (const n of nodes) if (n.alive) n.child.kill("SIGKILL");
      if (redis) await redis.stop();
    });

    test("data set on one server is every server's, with the user's other sockets'; 'user updated' once, where it was made", async () => {
      const a1 = await open(0, "ann");
      const a2 = await open(1, "ann");
      await open(0, "bob");
      await waitFor(async () => assert.deepEqual(Object.keys(dataOf(await members(1))), ["ann", "bob"]));
      assert.deepEqual(dataOf(await members(1)), { ann: [], bob: [] }, "no data yet");

      let mark = all().length;
      await setData(0, a1, { status: "away" });
      // Resolved once Redis holds it: the other server reads it at once.
      assert.deepEqual(dataOf(await members(1)), { ann: ['{"status":"away"}'], bob: [] });
      await settle();
      let updates = updatesSince(mark);
      assert.equal(updates.length, 1, `exactly one "user updated": ${JSON.stringify(updates)}`);
      assert.equal(updates[0].server, 0, "on the server that made the change");
      assert.equal(updates[0].user, "ann");
      assert.deepEqual(updates[0].data, [{ status: "away" }]);
      assert.equal(typeof updates[0].changeId, "string");

      // Her socket on the other server: the event has both, from there.
      mark = all().length;
      await setData(1, a2, { status: "busy", device: "phone", tags: ["a", 1, null], "ü": { nested: true } });
      await settle();
      updates = updatesSince(mark);
      assert.equal(updates.length, 1, `exactly one "user updated": ${JSON.stringify(updates)}`);
      assert.equal(updates[0].server, 1);
      const both = sorted([{ status: "away" }, { status: "busy", device: "phone", tags: ["a", 1, null], "ü": { nested: true } }]);
      assert.deepEqual(sorted(updates[0].data), both);
      for (const i of [0, 1]) {
        const page = await members(i);
        assert.deepEqual(dataOf(page), { ann: both, bob: [] }, `server ${i}'s members`);
        assert.equal(page.members[0].sockets, 2);
        const inRoot = await members(i, { namespace: "/" });
        assert.deepEqual(dataOf(inRoot).ann, both, "data is the user's, in every scope");
      }
      // The data's order is the same on every server and in the event.
      assert.deepEqual((await members(0)).members[0].data, (await members(1)).members[0].data);
      assert.deepEqual(updates[0].data, (await members(0)).members[0].data);

      // Replaced, not merged.
      mark = all().length;
      await setData(0, a1, { status: "back" });
      await settle();
      updates = updatesSince(mark);
      assert.equal(updates.length, 1);
      assert.deepEqual(
        sorted(updates[0].data),
        sorted([{ status: "back" }, { status: "busy", device: "phone", tags: ["a", 1, null], "ü": { nested: true } }]),
      );

      // The other server's watcher sees every update, with the data.
      await waitFor(
        () => {
          const seen = nodes[1].changes.filter((c) => c.type === "updated" && c.userId === "ann");
          assert.equal(seen.length, 3, JSON.stringify(seen));
          assert.deepEqual(seen[0].data, [{ status: "away" }]);
          assert.deepEqual(sorted(seen[1].data), both);
          assert.deepEqual(sorted(seen[2].data), sorted(updates[0].data));
          for (const c of seen) {
            assert.equal(c.namespace, undefined);
            assert.equal(c.room, undefined);
            assert.equal(c.reason, undefined);
          }
          assert.equal(seen[0].nodeId, nodes[0].nodeId);
          assert.equal(seen[1].nodeId, nodes[1].nodeId);
          assert.equal(seen[2].changeId, updates[0].changeId, "the event's change id");
        },
        { what: "server 1's watcher saw ann's updates" },
      );
      const others = nodes[1].changes.filter((c) => c.type !== "updated");
      assert.ok(others.length > 0 && others.every((c) => c.data === undefined), "only updates carry data");
    });

    test("a socket with data leaving while its user stays online: 'user updated' with the rest; her last: offline only", async () => {
      const [a1, a2] = sockets;
      let mark = all().length;
      a1.close();
      await waitFor(
        () => {
          const updates = updatesSince(mark);
          assert.equal(updates.length, 1, JSON.stringify(updates));
          assert.equal(updates[0].server, 0, "the server the socket left");
          assert.deepEqual(updates[0].data, [{ status: "busy", device: "phone", tags: ["a", 1, null], "ü": { nested: true } }]);
        },
        { what: "ann's update when a1 left" },
      );
      await waitFor(async () => assert.equal((await members(1)).members.find((m) => m.userId === "ann").sockets, 1));
      assert.deepEqual(dataOf(await members(1)).ann, [
        JSON.stringify({ status: "busy", device: "phone", tags: ["a", 1, null], "ü": { nested: true } }),
      ]);
      assert.ok(!all().slice(mark).some((e) => e.event === "disconnected" && e.user === "ann"), "ann stays online");

      // Her last socket: she goes offline, and that tells it (no "user updated").
      mark = all().length;
      a2.close();
      await waitFor(() => assert.ok(all().slice(mark).some((e) => e.event === "disconnected" && e.user === "ann")), {
        what: "ann offline",
      });
      await settle();
      assert.deepEqual(updatesSince(mark), [], "no update in the call that took her offline");
      assert.deepEqual(dataOf(await members(0)), { bob: [] });
    });

    test("too long (default maxDataBytes 1024, in UTF-8 bytes) or not an object: RangeError / TypeError, nothing changes", async () => {
      const b2 = await open(1, "bob");
      await setData(1, b2, ofBytes(1024)); // exactly the limit
      assert.deepEqual(dataOf(await members(0)).bob, [JSON.stringify(ofBytes(1024))]);
      assert.equal(Buffer.byteLength(JSON.stringify(ofBytes(1024))), 1024);
      await settle();
      const mark = all().length;
      const watched = nodes[1].changes.length;
      const refusals = [
        [ofBytes(1025), "RangeError", /1025 bytes of JSON, more than maxDataBytes \(1024\)/],
        [{ x: "y".repeat(5000) }, "RangeError", /maxDataBytes/],
        [[1, 2], "TypeError", /plain object/],
        ["away", "TypeError", /plain object/],
        [42, "TypeError", /plain object/],
      ];
      for (const [data, type, text] of refusals) {
        const e = await setData(1, b2, data).then(
          () => null,
          (err) => err,
        );
        assert.ok(e, `${JSON.stringify(data).slice(0, 40)} is refused`);
        assert.equal(e.errorType, type, e.message);
        assert.match(e.message, text);
      }
      // ofBytes(1025) is 513 characters: the limit is on bytes, not characters.
      assert.ok(JSON.stringify(ofBytes(1025)).length < 1024);
      await settle();
      assert.deepEqual(dataOf(await members(0)).bob, [JSON.stringify(ofBytes(1024))], "bob's data as it was");
      assert.deepEqual(updatesSince(mark), []);
      assert.equal(nodes[1].changes.length, watched, "nothing in the feed");

      // Removed (no data: null or undefined over the wire both remove).
      await setData(1, b2, null);
      assert.deepEqual(dataOf(await members(0)).bob, []);
      await waitFor(() => assert.deepEqual(updatesSince(mark).map((e) => [e.user, e.data]), [["bob", []]]));
    });

    test("identify() moves a socket's data to its new user", async () => {
      const c = await open(0, "carl");
      await setData(0, c, { role: "editor" });
      await open(1, "dora");
      await waitFor(async () => assert.ok("dora" in dataOf(await members(0))));
      const mark = all().length;
      await nodes[0].ask("identify", { sid: c.id, user: "dora" });
      const page = dataOf(await members(1));
      assert.equal(page.carl, undefined, "carl is gone");
      assert.deepEqual(page.dora, ['{"role":"editor"}']);
      await settle();
      assert.deepEqual(
        updatesSince(mark).map((e) => [e.server, e.user, e.data]),
        [[0, "dora", [{ role: "editor" }]]],
        "dora's update; carl's offline tells his",
      );
      assert.ok(all().slice(mark).some((e) => e.event === "disconnected" && e.user === "carl"));
      // Anonymous: the socket keeps its data, shown by no user.
      await nodes[0].ask("identify", { sid: c.id, user: null });
      assert.deepEqual(dataOf(await members(1)).dora, []);
    });
  });
}

describe("presence data on the embedded store (one server)", () => {
  let server;
  let presence;
  const log = [];
  const changes = [];
  const clients = [];
  const early = new Map(); // client id -> setData's promise from an app listener that ran before rollcall's
  let watching;

  before(async () => {
    server = await startServer();
    // An app's "connection" listener registered before attach runs before rollcall's.
    server.io.on("connection", (socket) => {
      if (socket.handshake.auth.early) early.set(socket.id, presence.setData(socket, { early: true }));
    });
    presence = await Presence.attach(server.io, { ...FAST, maxDataBytes: 64, graceMs: GRACE_MS });
    presence.on("user updated", (user, data, { changeId }) => log.push({ event: "updated", user, data, changeId }));
    presence.on("user connected", (user) => log.push({ event: "connected", user }));
    presence.on("user disconnected", (user, reason) => log.push({ event: "disconnected", user, reason }));
    presence.on("warning", (w) => log.push({ event: "warning", w }));
    watching = (async () => {
      for await (const c of presence.watch()) changes.push(c);
    })();
  });

  after(async () => {
    for (const c of clients) c.close();
    if (presence) await presence.close();
    await watching;
    if (server) await server.close();
  });

  const open = async (userId, extra = {}) => {
    const c = await connect(server.url, { userId, ...extra });
    clients.push(c);
    return c;
  };
  const socketOf = (client) => server.io.of("/").sockets.get(client.id);
  const dataNow = async () => dataOf(await presence.members());

  test("set, shown, replaced, refused past maxDataBytes, removed; the events and the feed", async () => {
    const e1 = await open("eve");
    const e2 = await open("eve");
    let mark = log.length;
    await presence.setData(socketOf(e1), { s: 1 });
    assert.deepEqual(await dataNow(), { eve: ['{"s":1}'] });
    assert.deepEqual(log.slice(mark).map((e) => [e.event, e.user, e.data]), [["updated", "eve", [{ s: 1 }]]]);
    await presence.setData(socketOf(e2), { s: 2 });
    assert.deepEqual(sorted(log.at(-1).data), ['{"s":1}', '{"s":2}']);

    // maxDataBytes: 64 here. Thrown at once, nothing changes.
    mark = log.length;
    assert.throws(() => presence.setData(socketOf(e1), ofBytes(65)), RangeError);
    assert.throws(() => presence.setData(socketOf(e1), { big: "x".repeat(100) }), /more than maxDataBytes \(64\)/);
    assert.throws(() => presence.setData(socketOf(e1), [1]), TypeError);
    assert.throws(() => presence.setData(socketOf(e1), "text"), TypeError);
    assert.throws(() => presence.setData(socketOf(e1), new Date()), /serialise to a JSON object/);
    const cyclic = {};
    cyclic.self = cyclic;
    assert.throws(() => presence.setData(socketOf(e1), cyclic), /JSON-serialisable/);
    assert.throws(() => presence.setData({}, { s: 1 }), /setData\(\) takes a server-side Socket.IO socket/);
    await presence.setData(socketOf(e1), ofBytes(64));
    assert.deepEqual(sorted((await presence.members()).members[0].data), sorted([ofBytes(64), { s: 2 }]));
    assert.deepEqual(log.slice(mark).filter((e) => e.event === "updated").length, 1, "only the accepted one");

    // undefined removes it as null does.
    await presence.setData(socketOf(e1), undefined);
    assert.deepEqual(await dataNow(), { eve: ['{"s":2}'] });
    await presence.setData(socketOf(e2), null);
    assert.deepEqual(await dataNow(), { eve: [] });
    assert.deepEqual(log.at(-1).data, []);

    await waitFor(() => {
      const updates = changes.filter((c) => c.type === "updated");
      assert.deepEqual(
        updates.map((c) => sorted(c.data)),
        [['{"s":1}'], ['{"s":1}', '{"s":2}'], sorted([ofBytes(64), { s: 2 }]), ['{"s":2}'], []],
      );
      assert.deepEqual(
        updates.map((c) => c.changeId),
        log.filter((e) => e.event === "updated").map((e) => e.changeId),
        "the feed holds each event's change",
      );
    }, { what: "the watcher saw every update" });
    e1.close();
    e2.close();
    await waitFor(() => assert.ok(log.some((e) => e.event === "disconnected" && e.user === "eve")), { what: "eve offline" });
  });

  test("data set in an app's 'connection' listener that runs before rollcall's is not lost", async () => {
    const c = await open("finn", { auth: { userId: "finn", early: true } });
    try {
      const pending = early.get(c.id);
      assert.ok(pending, "the app's listener called setData");
      await pending;
      assert.deepEqual((await dataNow()).finn, ['{"early":true}']);
      assert.ok(!log.some((e) => e.event === "warning"), JSON.stringify(log.filter((e) => e.event === "warning")));
    } finally {
      c.close();
    }
  });

  test("a socket with data leaving: 'user updated' with the rest; the last one's data lingers through the grace period", async () => {
    const g1 = await open("gus");
    const g2 = await open("gus");
    await presence.setData(socketOf(g1), { d: 1 });
    await presence.setData(socketOf(g2), { d: 2 });
    let mark = log.length;
    g1.close();
    await waitFor(() => assert.deepEqual(log.slice(mark).filter((e) => e.event === "updated").map((e) => e.data), [[{ d: 2 }]]), {
      what: "gus updated without g1",
    });
    mark = log.length;
    const closed = Date.now();
    const g2id = g2.id;
    g2.close();
    // Within the grace period gus is still online, with his data (rollcall
    // is told of a disconnect before Socket.IO forgets the socket).
    await waitFor(() => !server.io.of("/").sockets.has(g2id), { what: "g2 gone from the server" });
    const during = await dataNow();
    const offline = log.slice(mark).some((e) => e.event === "disconnected");
    assert.ok(!offline || Date.now() - closed >= GRACE_MS, "not offline before the grace period ends");
    if (Date.now() - closed < GRACE_MS - 200) assert.deepEqual(during.gus, ['{"d":2}'], "his data lingers");
    await waitFor(() => assert.ok(log.slice(mark).some((e) => e.event === "disconnected" && e.user === "gus")), {
      what: "gus offline after the grace period",
    });
    assert.equal((await dataNow()).gus, undefined);
    assert.deepEqual(log.slice(mark).filter((e) => e.event === "updated"), [], "the offline tells it");
  });

  test("identify() moves the data to the new user", async () => {
    const h = await open("hal");
    await presence.setData(socketOf(h), { role: "x" });
    const mark = log.length;
    await presence.identify(socketOf(h), "ida");
    const now = await dataNow();
    assert.equal(now.hal, undefined);
    assert.deepEqual(now.ida, ['{"role":"x"}']);
    assert.deepEqual(log.slice(mark).filter((e) => e.event === "updated").map((e) => [e.user, e.data]), [["ida", [{ role: "x" }]]]);
  });
});
