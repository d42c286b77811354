"use strict";
// What a cluster test checks, shared by the all-Node and the mixed
// Node + Rust cluster: the truth from the sockets a test holds open, every
// server converging on it, and the events since a moment.

const assert = require("node:assert/strict");
const { waitFor, connect, room } = require("./helpers");

/**
 * Who connects where: user i has 1 to 3 tabs on different servers (of
 * `servers`); every fourth is in the lobby room; a third tab is in /chat.
 * Plus `anonymous` sockets.
 */
function plan(users, anonymous, servers = 3) {
  const out = [];
  for (let i = 0; i < users; i++) {
    const user = `user-${String(i).padStart(3, "0")}`;
    const tabs = 1 + (Math.floor(i / 3) % 3);
    for (let k = 0; k < tabs; k++) {
      out.push({ user, server: (i + k) % servers, ns: k === 2 ? "/chat" : "/", lobby: i % 4 === 0 && k === 0 });
    }
  }
  for (let j = 0; j < anonymous; j++) out.push({ user: undefined, server: j % servers, ns: "/", lobby: j % 2 === 0 });
  return out;
}

/** Connects a real client for each entry of `planned` (joining the lobby where it says), adding it to `conns`. */
async function connectAll(nodes, planned, conns) {
  await Promise.all(
    planned.map(async (p) => {
      const socket = await connect(nodes[p.server].url, { ns: p.ns, userId: p.user });
      conns.push({ ...p, socket, live: true });
      if (p.lobby) await room(socket, "lobby");
    }),
  );
}

/** Asserts that each of `users` users came online exactly once in `events` (cluster-wide). */
function onlineOncePerUser(events, users) {
  const online = events.filter((e) => e.event === "connected");
  const byUser = new Map();
  for (const e of online) byUser.set(e.user, (byUser.get(e.user) || 0) + 1);
  assert.equal(byUser.size, users);
  assert.deepEqual([...new Set(byUser.values())], [1], "one 'user connected' per user, cluster-wide");
  return online;
}

/**
 * What every server should report, from the sockets the test holds open
 * (`{ user, ns, lobby, live }` each; one engine connection per socket).
 */
function truth(conns, probeUsers) {
  const live = conns.filter((c) => c.live);
  const users = (pred) => new Set(live.filter((c) => c.user && pred(c)).map((c) => c.user));
  const probes = {};
  for (const u of probeUsers) probes[u] = live.filter((c) => c.user === u).length;
  return {
    clients: live.length,
    sockets: live.filter((c) => c.ns === "/").length,
    socketsChat: live.filter((c) => c.ns === "/chat").length,
    users: users(() => true).size,
    usersChat: users((c) => c.ns === "/chat").size,
    usersLobby: users((c) => c.ns === "/" && c.lobby).size,
    socketsLobby: live.filter((c) => c.ns === "/" && c.lobby).length,
    list: [...users(() => true)].sort(),
    probes,
  };
}

/** Waits until each of `nodes` reports exactly `expected`; returns how long it took (ms). */
async function converge(nodes, expected, what, timeout = 20000) {
  const started = Date.now();
  await waitFor(
    async () => {
      for (const n of nodes) {
        assert.deepEqual(await n.counts(Object.keys(expected.probes)), expected, `server ${n.index}`);
      }
    },
    { timeout, interval: 50, what },
  );
  return Date.now() - started;
}

/** Every event since `mark` on the given servers, in arrival order. */
function eventsSince(nodes, mark) {
  return nodes.flatMap((n) => n.events.filter((e) => e.at >= mark)).sort((a, b) => a.at - b.at);
}

/**
 * A reaper reports the reaped server's last write again (at least once
 * across a death or a pause past the TTL), under that server's change ids.
 * Each event of `events` whose change id `earlier` (the reaped server's own
 * events) already holds must say the same; the rest, the new events, are
 * returned.
 */
function withoutRepeats(events, earlier) {
  const seen = new Map(earlier.filter((e) => e.changeId).map((e) => [e.changeId, e]));
  for (const e of events.filter((e) => seen.has(e.changeId))) {
    const was = seen.get(e.changeId);
    assert.deepEqual([e.event, e.user, e.reason], [was.event, was.user, was.reason], `repeat of ${e.changeId}`);
  }
  return events.filter((e) => !seen.has(e.changeId));
}

module.exports = { plan, connectAll, onlineOncePerUser, truth, converge, eventsSince, withoutRepeats };
