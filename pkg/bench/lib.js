"use strict";
// Shared helpers of the benchmarks: a private redis-server on a free port,
// statistics, the fake sockets that drive a real Socket.IO Server the way
// socket.io itself emits its events, and the naive recipe of the Socket.IO
// "How to count the number of connected users" article.

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { EventEmitter } = require("node:events");

const results = path.join(__dirname, "results");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `redis-server` on a free port (never 6379); returns {port, url, stop}. */
async function startRedis(extra = []) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    if (port === 6379) continue;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollcall-bench-redis-"));
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", dir, "--maxclients", "20000", ...extra],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let log = "";
    child.stdout.on("data", (d) => { log += d; });
    child.stderr.on("data", (d) => { log += d; });
    const ok = await new Promise((resolve) => {
      const deadline = Date.now() + 5000;
      const probe = () => {
        if (child.exitCode !== null) return resolve(false);
        const c = net.connect(port, "127.0.0.1");
        c.once("connect", () => {
          c.end();
          resolve(true);
        });
        c.once("error", () => {
          if (Date.now() > deadline) resolve(false);
          else setTimeout(probe, 50);
        });
      };
      probe();
    });
    if (!ok) {
      child.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
      continue;
    }
    const stop = () => {
      if (child.exitCode === null) child.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    };
    process.on("exit", stop);
    return { port, url: `redis://127.0.0.1:${port}`, pid: child.pid, stop, log: () => log };
  }
  throw new Error("could not start redis-server");
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function ms() {
  return performance.now();
}

function sleep(t) {
  return new Promise((r) => setTimeout(r, t));
}

function tick() {
  return new Promise((r) => setImmediate(r));
}

/** `INFO stats` of a node-redis client as numbers. */
async function infoStats(client) {
  const text = await client.info("stats");
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^(\w+):(\d+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

function save(name, data) {
  fs.mkdirSync(results, { recursive: true });
  fs.writeFileSync(path.join(results, `${name}.json`), JSON.stringify(data, null, 2));
}

function load(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(results, `${name}.json`), "utf8"));
  } catch {
    return null;
  }
}

function log(...args) {
  console.error(...args);
}

// ----- fake sockets: a real Server's namespace emits them as socket.io does -----

/**
 * What a Socket.IO socket shows to a "connection" handler: id, nsp, handshake,
 * rooms, and its events ("disconnecting" then "disconnect").
 */
class FakeSocket extends EventEmitter {
  constructor(id, nsp, userId) {
    super();
    this.id = id;
    this.nsp = nsp;
    this.handshake = { auth: userId === undefined ? {} : { userId } };
    // As an app's auth middleware sets it (rollcall's default userId).
    this.data = userId === undefined ? {} : { userId };
    this.rooms = new Set([id]);
    this.connected = true;
  }
}

/** An engine.io client as engine.io emits it ("connection", then "close"). */
class FakeClient extends EventEmitter {
  constructor(id) {
    super();
    this.id = id;
  }
}

/** Connects a fake socket to namespace `nsp` of a real Server `io`. */
function fakeConnect(io, nsp, id, userId) {
  const client = new FakeClient(`c${id}`);
  io.engine.emit("connection", client);
  const socket = new FakeSocket(id, nsp, userId);
  socket.client = client;
  nsp.emitReserved("connection", socket);
  return socket;
}

function fakeJoin(socket, room) {
  socket.rooms.add(room);
  socket.nsp.adapter.emit("join-room", room, socket.id);
}

function fakeLeave(socket, room) {
  socket.rooms.delete(room);
  socket.nsp.adapter.emit("leave-room", room, socket.id);
}

function fakeDisconnect(socket) {
  socket.emit("disconnecting", "transport close");
  socket.rooms.clear();
  socket.connected = false;
  socket.emit("disconnect", "transport close");
  socket.client.emit("close", "transport close");
}

// ----- the naive recipe of the users article (node-redis v4, as written) -----

const HDECR = `
  local count = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)

  if count == 0 then
    redis.call('HDEL', KEYS[1], ARGV[1])
  end

  return count
`;

/** createClient() options of the article (its `hDecr` script). */
function naiveClientOptions(redis, url) {
  return {
    url,
    scripts: {
      hDecr: redis.defineScript({
        NUMBER_OF_KEYS: 1,
        SCRIPT: HDECR,
        transformArguments(key, userId) {
          return [key, userId];
        },
        transformReply(reply) {
          return reply;
        },
      }),
    },
  };
}

/**
 * The article's node code: register the process, then one MULTI per
 * connect (HINCRBY x2) and per disconnect (hDecr x2). One change, which the
 * clients article itself asks for ("always run async methods after
 * registering event handlers"): the disconnect handler is registered before
 * the first await, else a socket that leaves before its connect write is
 * acknowledged is never decremented. `pending` collects every write's
 * promise so the benchmark knows when Redis has them all. The article's
 * `io.emit("user has connected", userId)` broadcasts to every socket (N^2
 * packets in a storm: 2,000 sockets took 15-21 s to connect instead of
 * 1.6 s); rollcall only emits to the app, so the naive recipe emits on
 * `events` (an EventEmitter) too, and both are measured on presence alone.
 */
async function naiveAttach(io, redisClient, processId, computeUserId, pending, events = new EventEmitter()) {
  await redisClient.multi().sAdd("processes", processId).set(`${processId}:is-up`, "1", { EX: 10 }).exec();

  async function handleConnection(userId) {
    const [res] = await redisClient
      .multi()
      .hIncrBy("users", userId, 1)
      .hIncrBy(`${processId}:users`, userId, 1)
      .exec();
    return res === 1;
  }

  async function handleDisconnection(userId) {
    const [res] = await redisClient
      .multi()
      .hDecr("users", userId)
      .hDecr(`${processId}:users`, userId)
      .exec();
    return res === 0;
  }

  const handler = async (socket) => {
    const userId = computeUserId(socket);
    socket.on("disconnect", () => {
      const p = handleDisconnection(userId).then((hasDisconnected) => {
        if (hasDisconnected) events.emit("user has disconnected", userId);
      });
      if (pending) pending.push(p);
    });
    const p = handleConnection(userId);
    if (pending) pending.push(p);
    const hasConnected = await p;
    if (hasConnected) events.emit("user has connected", userId);
  };
  io.on("connection", handler);
  return handler;
}

/** A node-redis-like client that counts the commands in flight (rollcall's calls). */
function counting(client) {
  const wrapped = {
    inflight: 0,
    calls: 0,
    idle: [],
    sendCommand(args) {
      wrapped.inflight++;
      wrapped.calls++;
      const done = () => {
        wrapped.inflight--;
        if (wrapped.inflight === 0) {
          const waiters = wrapped.idle;
          wrapped.idle = [];
          for (const w of waiters) w();
        }
      };
      const p = client.sendCommand(args);
      p.then(done, done);
      return p;
    },
    on(ev, fn) {
      client.on(ev, fn);
      return wrapped;
    },
    off(ev, fn) {
      client.off(ev, fn);
      return wrapped;
    },
    /** Resolves once no command is in flight (after the current tick). */
    async drained() {
      for (;;) {
        await tick();
        if (wrapped.inflight === 0) return;
        await new Promise((r) => wrapped.idle.push(r));
      }
    },
  };
  return wrapped;
}

/** CPU seconds of the redis-server process (INFO cpu: user + sys). */
async function redisCpu(client) {
  const text = await client.info("cpu");
  const get = (k) => Number((new RegExp(`^${k}:([\\d.]+)`, "m").exec(text) || [0, 0])[1]);
  return get("used_cpu_user") + get("used_cpu_sys");
}

module.exports = {
  redisCpu,
  startRedis, freePort, median, pct, ms, sleep, tick, infoStats, save, load, log,
  FakeSocket, FakeClient, fakeConnect, fakeJoin, fakeLeave, fakeDisconnect,
  naiveClientOptions, naiveAttach, counting, HDECR,
};

// ----- forked processes (servers and clients) -----

const { fork } = require("node:child_process");

/** Forks `file` with `env`; resolves with {child, first message matching pred, ask}. */
function forkProc(file, env, pred = (m) => m.ready) {
  const child = fork(path.join(__dirname, file), [], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiters = new Map();
  let nextId = 1;
  const listeners = [];
  child.on("message", (m) => {
    if (m.id !== undefined && waiters.has(m.id)) {
      waiters.get(m.id)(m);
      waiters.delete(m.id);
    }
    for (const l of listeners) l(m);
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill("SIGCONT");
      } catch {}
      child.kill("SIGKILL");
    }
  };
  process.setMaxListeners(0);
  process.on("exit", kill);
  const proc = {
    child,
    kill,
    on: (fn) => listeners.push(fn),
    wait: (p) =>
      new Promise((resolve, reject) => {
        listeners.push((m) => {
          if (m.error && !m.id) reject(new Error(`${file}: ${m.error}`));
          else if (p(m)) resolve(m);
        });
        child.once("exit", (code) => reject(new Error(`${file} exited (${code})`)));
      }),
    ask: (msg) =>
      new Promise((resolve) => {
        const id = nextId++;
        waiters.set(id, resolve);
        child.send({ ...msg, id });
      }),
  };
  proc.ready = proc.wait(pred);
  return proc;
}

module.exports.forkProc = forkProc;
