"use strict";
// What a cluster test checks, shared by the all-Node and the mixed
// Node + Rust cluster: the truth from the sockets a test holds open, every
// server converging on it, and the events since a moment.

const assert = require("node:assert/strict");
const { waitFor } = require("./helpers");

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

module.exports = { truth, converge, eventsSince };
