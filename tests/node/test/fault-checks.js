// Shared by the fault tests with Node.js servers (faults2, faults3): the
// ground truth a test keeps, convergence of every live server to it, and the
// keyspace checks after a fault (nothing left of a gone server, no unknown
// key, no field <= 0).

"use strict";

const assert = require("node:assert/strict");
const { createRequire } = require("node:module");
const path = require("node:path");
const { APP, waitFor, startNode, connect, redisCli } = require("./helpers");

// The Rust suite's timings (tests/src/fault.rs), retry included.
const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500, retryMs: 100 };
// Scheduling slack of a loaded 2-core machine on top of a bound (TTL + one
// reap interval, or one heartbeat): 1 s, as in the Rust suite. Every Node.js
// figure in RELIABILITY.md is under its bound even without slack (at a load
// average of about 8); 2 s would let a regression of a whole lease (2 s)
// pass unseen.
const SLACK_MS = 1000;

function figure(fault, name, value) {
  console.log(`ROLLCALL-FIGURE node-fault-${fault} ${name}=${value}`);
}

function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

/**
 * What every server should report. `conns`: {user (the id rollcall counts,
 * undefined: anonymous), live}; all sockets in "/".
 */
function truth(conns, probes) {
  const live = conns.filter((c) => c.live);
  const users = [...new Set(live.filter((c) => c.user !== undefined).map((c) => c.user))].sort();
  const p = {};
  for (const u of probes) p[u] = live.filter((c) => c.user === u).length;
  return {
    clients: live.length,
    sockets: live.length,
    socketsChat: 0,
    users: users.length,
    usersChat: 0,
    usersLobby: 0,
    socketsLobby: 0,
    list: users,
    probes: p,
  };
}

/** Waits until each of `nodes` reports exactly the truth; returns how long it took. */
async function converge(nodes, conns, probes, what, timeout = 20000) {
  const started = Date.now();
  const expected = truth(conns, probes);
  await waitFor(
    async () => {
      for (const n of nodes) assert.deepEqual(await n.counts(probes), expected, `server ${n.index}`);
    },
    { timeout, interval: 50, what },
  );
  return Date.now() - started;
}

/** Opens sockets in this process, one per entry of `users`, to `node`. */
async function openSockets(conns, node, users) {
  await Promise.all(
    users.map(async (user) => {
      const socket = await connect(node.url, { userId: user });
      conns.push({ user, server: node.index, socket, live: true });
    }),
  );
}

/**
 * The key schema of `prefix`, from the installed package's core (its raw
 * module `rollcall/tools`), so no test spells a key suffix: `keys`, the keys
 * that are one per prefix (`live`, `dead`, `versions`, `nodes`, `clock`,
 * `counts`), and `kindOf(key)`, the kind of any key (`{kind: "own",
 * incarnation}`, `{kind: "kept_reply", lane, incarnation}`, `{kind:
 * "users", scope_id}`, `{kind: "live"}`, ...), `undefined` for a key that is
 * no key of the schema.
 */
function keySchema(prefix) {
  const raw = createRequire(path.join(APP, "package.json"))("rollcall/tools");
  const kindOf = (key) => {
    const kind = raw.parseKey(prefix, key);
    return kind === undefined ? undefined : JSON.parse(kind);
  };
  return { keys: JSON.parse(raw.schemaKeys(prefix)), kindOf };
}

/**
 * Checks the keys of one prefix found in Redis (`port`): nothing of a node
 * that is gone, only schema keys, no field <= 0.
 */
async function checkKeys(port, prefix, keys, liveNodeIds) {
  const { keys: schema, kindOf } = keySchema(prefix);
  const nodeOf = (inc) => inc.slice(0, inc.lastIndexOf("/"));
  const live = new Set(liveNodeIds);
  const incs = lines(await redisCli(port, "ZRANGE", schema.live, "0", "-1"));
  for (const inc of incs) assert.ok(live.has(nodeOf(inc)), `lease of gone node ${inc}`);
  assert.equal((await redisCli(port, "ZCARD", schema.dead)).trim(), "0", "nodes still being reaped");
  for (const n of lines(await redisCli(port, "HKEYS", schema.nodes))) assert.ok(live.has(n), `node entry of gone node ${n}`);
  for (const inc of lines(await redisCli(port, "HKEYS", schema.versions))) assert.ok(incs.includes(inc), `version of gone incarnation ${inc}`);
  for (const key of keys) {
    const kind = kindOf(key);
    assert.ok(kind !== undefined, `unknown key ${key}`);
    if (kind.kind === "own") {
      assert.ok(incs.includes(kind.incarnation), `own share of gone incarnation: ${key}`);
    } else if (kind.kind === "kept_reply") {
      // The kept reply of an incarnation's last write or reap call.
      assert.ok(incs.includes(kind.incarnation), `kept reply of gone incarnation: ${key}`);
    } else if (kind.kind === "seen") {
      // Last seen only of users offline now.
      const online = new Set(lines(await redisCli(port, "HKEYS", `{${prefix}}:u:g`)));
      for (const u of lines(await redisCli(port, "ZRANGE", key, "0", "-1"))) {
        assert.ok(!online.has(u), `${u} is online but has a last seen`);
      }
    } else if (kind.kind === "users") {
      for (const v of lines(await redisCli(port, "HVALS", key))) assert.ok(Number(v) > 0, `${key} has a field ${v}`);
    }
  }
  for (const v of lines(await redisCli(port, "HVALS", schema.counts))) assert.ok(Number(v) > 0, `count field ${v}`);
}

/**
 * The keyspace of `prefix`: nothing of a node that is gone, only schema
 * keys, no field <= 0. Returns the keys.
 */
async function checkKeyspace(port, prefix, liveNodeIds) {
  const base = `{${prefix}}:`;
  // `{p}:*` would also match `{p:x}:...`? No: the brace closes the tag. Still filter exactly.
  const keys = lines(await redisCli(port, "--scan", "--pattern", `${base}*`)).filter((k) => k.startsWith(base));
  if (keys.length === 0) return keys;
  await checkKeys(port, prefix, keys, liveNodeIds);
  return keys;
}

/**
 * The keys of `prefix` in Redis (`port`) that belong to nodes: all but the
 * change feed and last seen, which outlive the nodes (and expire).
 */
async function nodeKeys(port, prefix) {
  const base = `{${prefix}}:`;
  const { keys: schema } = keySchema(prefix);
  return lines(await redisCli(port, "--scan", "--pattern", `${base}*`))
    .filter((k) => k.startsWith(base))
    .filter((k) => k !== schema.feed && k !== schema.seen);
}

/**
 * What a prefix leaves once every node is gone: its change feed and last
 * seen (the keys that exist of them), each with a TTL of at most `maxMs`.
 */
async function outliving(port, prefix, maxMs = 7 * 86_400_000) {
  const { keys: schema } = keySchema(prefix);
  const left = [];
  for (const key of [schema.feed, schema.seen]) {
    if ((await redisCli(port, "EXISTS", key)).trim() !== "1") continue;
    const ttl = Number((await redisCli(port, "PTTL", key)).trim());
    assert.ok(ttl > 0 && ttl <= maxMs, `${key} expires: PTTL ${ttl}`);
    left.push(key);
  }
  return left;
}

/** Lease expiry (score in the live key) per node id. */
async function leases(port, prefix) {
  const l = lines(await redisCli(port, "ZRANGE", keySchema(prefix).keys.live, "0", "-1", "WITHSCORES"));
  const out = new Map();
  for (let i = 0; i + 1 < l.length; i += 2) out.set(l[i].slice(0, l[i].lastIndexOf("/")), Number(l[i + 1]));
  return out;
}

/**
 * Waits until each of `nodes` has renewed its lease `times` times from now
 * on (heartbeats executed by Redis). A node's calls go out and come back in
 * order, so once its second heartbeat after now has run, every call it had
 * in flight now has been answered and handled: a window "until every
 * pending reply is in" has passed, without a fixed sleep.
 */
async function heartbeatsSeen(port, prefix, nodes, times = 2, timeout = 20000) {
  const last = await leases(port, prefix);
  const seen = new Map(nodes.map((n) => [n.nodeId, 0]));
  await waitFor(
    async () => {
      const now = await leases(port, prefix);
      for (const n of nodes) {
        const s = now.get(n.nodeId);
        if (s !== undefined && !(s <= last.get(n.nodeId))) {
          seen.set(n.nodeId, seen.get(n.nodeId) + 1);
          last.set(n.nodeId, s);
        }
      }
      if (!nodes.every((n) => seen.get(n.nodeId) >= times)) throw new Error(`lease renewals seen: ${JSON.stringify([...seen])}`);
    },
    { timeout, interval: 20, what: `${times} heartbeats of ${nodes.map((n) => n.nodeId).join(", ")}` },
  );
}

function startNodes(count, redisUrl, timings, env = {}, clientKind = "node-redis") {
  return Promise.all(Array.from({ length: count }, (_, i) => startNode(i, { redisUrl, timings, env, clientKind })));
}

/** Kills every child, closes every client; for after() / finally, also after a failure. */
async function teardown(state) {
  for (const c of state.conns || []) if (c.socket) c.socket.close();
  for (const p of state.clients || []) p.kill();
  for (const n of state.nodes || []) {
    if (n.alive) {
      n.child.kill("SIGCONT");
      n.child.kill("SIGKILL");
    }
  }
  for (const r of state.redises || []) {
    r.child.kill("SIGCONT");
    await r.stop();
  }
}

/** Events of `kind` on `nodes` since `mark`. */
function eventsSince(nodes, mark, kind) {
  return nodes.flatMap((n) => n.events.filter((e) => e.at >= mark && (!kind || e.event === kind)));
}

/** Users that had a live socket in `before` and have none in `conns` now. */
function wentOffline(conns, beforeUsers) {
  const now = new Set(conns.filter((c) => c.live && c.user !== undefined).map((c) => c.user));
  return [...beforeUsers].filter((u) => !now.has(u)).sort();
}

function liveUsers(conns) {
  return new Set(conns.filter((c) => c.live && c.user !== undefined).map((c) => c.user));
}

module.exports = {
  keySchema,
  checkKeys,
  TIMINGS,
  SLACK_MS,
  figure,
  lines,
  truth,
  converge,
  openSockets,
  checkKeyspace,
  nodeKeys,
  outliving,
  startNodes,
  teardown,
  eventsSince,
  wentOffline,
  liveUsers,
  leases,
  heartbeatsSeen,
};
