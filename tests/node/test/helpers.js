"use strict";
// Shared parts of the Node suite: the installed package, real Socket.IO
// servers and clients, a real redis-server on a free port, polling.

const { fork, spawn } = require("node:child_process");
const { createRequire } = require("node:module");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

const APP = process.env.ROLLCALL_APP || path.join(__dirname, "..", ".app");
if (!fs.existsSync(path.join(APP, "node_modules", "rollcall"))) {
  throw new Error(`rollcall is not installed in ${APP}: run the suite with \`npm test\``);
}

/** `require("rollcall")` from the project that installed the tarball. */
function requireRollcall() {
  return createRequire(path.join(APP, "package.json"))("rollcall");
}

/** `import("rollcall")` from a module of that project. */
async function importRollcall() {
  const probe = path.join(APP, "esm-probe.mjs");
  fs.writeFileSync(probe, 'export * from "rollcall";\nexport { default } from "rollcall";\n');
  return import(pathToFileURL(probe).href);
}

/**
 * Polls `fn` until it returns without throwing (or returns something other
 * than false); the last failure is thrown at the deadline.
 */
async function waitFor(fn, { timeout = 15000, interval = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v !== false) return v;
      last = new Error(`${what}: still false`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      last.message = `timed out after ${timeout} ms waiting for ${what}: ${last.message}`;
      throw last;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** A free TCP port on 127.0.0.1 (closed again at once). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** One PING over a raw socket; resolves true on +PONG. */
function ping(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    let buf = "";
    const done = (ok) => {
      c.destroy();
      resolve(ok);
    };
    c.setTimeout(1000, () => done(false));
    c.on("error", () => done(false));
    c.on("connect", () => c.write("PING\r\n"));
    c.on("data", (d) => {
      buf += d;
      if (buf.includes("\r\n")) done(buf.startsWith("+PONG"));
    });
  });
}

/** Every child process started by this file, killed by `killAll`. */
const children = new Set();

function track(child) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

function killAll() {
  for (const child of children) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}
process.on("exit", killAll);

/** A real redis-server on a free port, without persistence; `args`: more options. */
async function startRedis(port, { args = [] } = {}) {
  port = port || (await freePort());
  const child = track(
    spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...args],
      { stdio: "ignore" },
    ),
  );
  let failed = null;
  child.on("error", (e) => {
    failed = new Error(`cannot start redis-server (is it installed? apt-get install redis-server): ${e.message}`);
  });
  await waitFor(
    () => {
      if (failed) throw failed;
      return ping(port);
    },
    { what: `redis-server on port ${port}` },
  );
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Runs `redis-cli -p port ...args`; resolves its stdout. */
function redisCli(port, ...args) {
  const { execFile } = require("node:child_process");
  return new Promise((resolve, reject) => {
    execFile("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli -p ${port} ${args.join(" ")}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

let arrivals = 0;

/** One forked server process and its IPC conversation. */
class Node {
  constructor(index, child) {
    this.index = index;
    this.child = child;
    this.events = [];
    /** What its watcher read (the "watch" command), in order. */
    this.changes = [];
    this.pending = new Map();
    this.next = 1;
    this.stopped = false;
    child.on("message", (m) => {
      // seq: the order of arrival over every server of the test process.
      if (m.event) this.events.push({ ...m, server: index, at: Date.now(), seq: ++arrivals });
      if (m.change) this.changes.push(m.change);
      if (m.id !== undefined && this.pending.has(m.id)) {
        this.pending.get(m.id)(m);
        this.pending.delete(m.id);
      }
    });
  }

  get alive() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** A request over IPC, bounded (a stopped server does not answer). */
  ask(cmd, extra = {}, timeout = 3000) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`server ${this.index} did not answer ${cmd} in ${timeout} ms`));
      }, timeout);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        if (m.error) {
          const e = new Error(`server ${this.index}: ${m.error}`);
          e.errorType = m.errorType; // the class of the server's error (fixtures/server.js)
          reject(e);
        }
        else resolve(m);
      });
      this.child.send({ id, cmd, ...extra });
    });
  }

  async counts(users) {
    return (await this.ask("counts", { users })).counts;
  }
}

/**
 * Forks fixtures/server.js (one Socket.IO server with rollcall, installed
 * from the tarball); resolves once it listens. `env`: more environment
 * (TRACE, TRACE_OUTPUT: record to these paths).
 */
async function startNode(index, { redisUrl, clientKind = "node-redis", timings = {}, env = {} }) {
  const child = track(
    fork(path.join(APP, "server.js"), [], {
      cwd: APP,
      env: { ...process.env, REDIS_URL: redisUrl, REDIS_CLIENT: clientKind, TIMINGS: JSON.stringify(timings), ...env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    }),
  );
  const ready = await new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`server ${index} exited (${code}) before it was ready`)));
    child.on("message", (m) => m.ready && resolve(m));
  });
  const node = new Node(index, child);
  node.port = ready.port;
  node.nodeId = ready.nodeId;
  node.url = `http://127.0.0.1:${ready.port}`;
  return node;
}

/** The repository (the Rust example is built there). */
const ROOT = path.resolve(__dirname, "..", "..", "..");

/**
 * The socketioxide example (host/examples/socketio.rs), built with cargo
 * (a no-op when `cargo test` built it already).
 */
function rustExample() {
  const { execFileSync } = require("node:child_process");
  execFileSync("cargo", ["build", "--quiet", "-p", "rollcall-host", "--example", "socketio"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, "target");
  return path.join(target, "debug", "examples", "socketio");
}

/**
 * A Rust server of the cluster: the socketioxide example as a process, with
 * the interface of a Node server (`events`, `counts`, `ask("ping")`). Its
 * events come from its stdout (`event {json}` lines, global ones only);
 * counts come through one anonymous control socket of its own, which the
 * truth must hold (`control`).
 */
class RustNode {
  constructor(index, child) {
    this.index = index;
    this.child = child;
    this.events = [];
    this.stopped = false;
    this.control = null;
  }

  get alive() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** One stdout line of the example. */
  line(text) {
    if (!text.startsWith("event ")) return;
    const e = JSON.parse(text.slice("event ".length));
    const at = Date.now();
    const global = e.scope && e.scope.kind === "global";
    const changeId = e.change_id;
    if (e.type === "user_online" && global) {
      this.events.push({ event: "connected", user: e.user, server: this.index, at, changeId });
    }
    if (e.type === "user_offline" && global) {
      this.events.push({ event: "disconnected", user: e.user, reason: e.reason, server: this.index, at, changeId });
    }
    if (e.scope && !global) {
      const where = { namespace: e.scope.namespace, room: e.scope.room, server: this.index, at, changeId };
      if (e.type === "user_online") this.events.push({ event: "joined", user: e.user, ...where });
      if (e.type === "user_offline") this.events.push({ event: "left", user: e.user, reason: e.reason, ...where });
    }
    if (e.type === "node_reaped") this.events.push({ event: "reaped", node: e.node, server: this.index, at });
    if (e.type === "fenced") this.events.push({ event: "fenced", server: this.index, at });
  }

  /** `presence` over the control socket, bounded (a stopped server does not answer). */
  async report(users, timeout = 3000) {
    const scopes = [{ namespace: "/" }, { namespace: "/chat" }, { namespace: "/", room: "lobby" }];
    const r = await this.control.timeout(timeout).emitWithAck("presence", { scopes, users });
    if (r.error) throw new Error(`rust server ${this.index}: ${r.error}`);
    return r;
  }

  /** The first page of a scope's members, `{ userId, sockets }` each, as the Rust host reads it. */
  async members(scope = { namespace: "/" }, timeout = 3000) {
    const r = await this.control.timeout(timeout).emitWithAck("presence", { scopes: [scope], users: [] });
    if (r.error) throw new Error(`rust server ${this.index}: ${r.error}`);
    return r.scopes[0].members.map(([userId, sockets]) => ({ userId, sockets }));
  }

  /** A user's `[namespace, room | null]` pairs, as the Rust host reads them. */
  async userRooms(user) {
    return (await this.report([user])).userRooms[user];
  }

  /** Answered once the server has handled everything sent before. */
  async ask(cmd) {
    if (cmd !== "ping") throw new Error(`rust server: no command ${cmd}`);
    await this.report([]);
    return {};
  }

  /** The counts in the shape fixtures/server.js reports them. */
  async counts(users) {
    const r = await this.report(users);
    const [ns, chat, lobby] = r.scopes;
    return {
      clients: r.clients,
      sockets: ns.sockets,
      socketsChat: chat.sockets,
      users: r.users,
      usersChat: chat.users,
      usersLobby: lobby.users,
      socketsLobby: lobby.sockets,
      list: r.list,
      probes: r.userSockets,
    };
  }
}

/**
 * Starts the Rust example on a free port against `redisUrl` (TTL `ttlMs`;
 * heartbeat and reap every TTL / 4) and connects its control socket.
 */
async function startRustNode(index, { redisUrl, ttlMs }) {
  const bin = rustExample();
  const child = track(
    spawn(bin, ["--port", "0", "--redis", redisUrl, "--ttl-ms", String(ttlMs)], {
      stdio: ["ignore", "pipe", "inherit"],
    }),
  );
  const node = new RustNode(index, child);
  const ready = await new Promise((resolve, reject) => {
    const seen = {};
    child.once("exit", (code, signal) => reject(new Error(`rust server ${index} exited (${code ?? signal}) before it was ready`)));
    require("node:readline")
      .createInterface({ input: child.stdout })
      .on("line", (text) => {
        const listening = /^listening on (http:\/\/\S+)$/.exec(text);
        if (listening) seen.url = listening[1];
        const nodeLine = /^node (\S+)$/.exec(text);
        if (nodeLine) seen.nodeId = nodeLine[1];
        node.line(text);
        if (seen.url && seen.nodeId) resolve(seen);
      });
  });
  node.url = ready.url;
  node.port = Number(new URL(ready.url).port);
  node.nodeId = ready.nodeId;
  node.control = await connect(node.url);
  return node;
}

/**
 * The tests' auth middleware: it sets socket.data.userId (what rollcall
 * reads by default) to the id the client sends, as an app would after it
 * checked a token. A middleware belongs to one namespace (io.use is "/"'s):
 * each of `namespaces` gets it.
 */
function trustClientUserId(io, namespaces = ["/"]) {
  for (const ns of namespaces) {
    const nsp = typeof ns === "string" || ns instanceof RegExp ? io.of(ns) : ns;
    nsp.use((socket, next) => {
      socket.data.userId = socket.handshake.auth.userId;
      next();
    });
  }
}

/** A Socket.IO server on a free port, in this process. */
async function startServer(ioOptions = {}) {
  const { Server } = require("socket.io");
  const httpServer = http.createServer();
  const io = new Server(httpServer, ioOptions);
  trustClientUserId(io, ["/", "/chat"]);
  // Clients ask to join and leave rooms; the ack says it is done.
  const roomControl = (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (ack) ack();
    });
    socket.on("leave", (room, ack) => {
      socket.leave(room);
      if (ack) ack();
    });
  };
  io.on("connection", roomControl);
  io.of("/chat").on("connection", roomControl);
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  const port = httpServer.address().port;
  return {
    io,
    port,
    url: `http://127.0.0.1:${port}`,
    roomControl,
    close: () => new Promise((r) => io.close(() => r())),
  };
}

/** A connected socket.io-client socket; its own engine connection unless `manager` is given. */
function connect(url, { ns = "/", userId, manager, ...opts } = {}) {
  const { io, Manager } = require("socket.io-client");
  const auth = userId === undefined ? {} : { userId };
  const socket = manager
    ? manager.socket(ns, { auth })
    : io(url + (ns === "/" ? "" : ns), {
        forceNew: true,
        transports: ["websocket"],
        reconnection: false,
        auth,
        ...opts,
      });
  void Manager;
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (e) => {
      socket.close();
      reject(e);
    });
  });
}

/** Asks the server to join (or leave) a room and waits until it has. */
function room(socket, name, action = "join") {
  return socket.timeout(5000).emitWithAck(action, name);
}

/** Collects presence events: `events.of("user disconnected")`. */
function recordEvents(presence) {
  const log = [];
  presence.on("user connected", (user) => log.push({ type: "connected", user, at: Date.now() }));
  presence.on("user disconnected", (user, reason) =>
    log.push({ type: "disconnected", user, reason, at: Date.now() }),
  );
  return log;
}

/** A forked process of socket.io-client clients (fixtures/clients.js). */
async function startClients() {
  const child = track(
    fork(path.join(__dirname, "..", "fixtures", "clients.js"), [], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    }),
  );
  await new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`client process exited (${code}) before it was ready`)));
    child.on("message", (m) => m.ready && resolve());
  });
  const proc = new Node("clients", child);
  return {
    child,
    /** Opens one socket per entry of `users` (null: anonymous) to `url`. */
    open: (url, users, concurrency = 50) => proc.ask("open", { url, users, concurrency }, 120000),
    close: () => proc.ask("close"),
    /** Storms of connects/disconnects (fixtures/clients.js "storm"); resolves the sockets held after. */
    storm: (opts) => proc.ask("storm", opts, (3 * opts.secs + 90) * 1000),
    kill: () => child.kill("SIGKILL"),
  };
}

module.exports = {
  APP,
  trustClientUserId,
  requireRollcall,
  importRollcall,
  waitFor,
  freePort,
  startRedis,
  startServer,
  Node,
  startNode,
  startRustNode,
  connect,
  room,
  recordEvents,
  track,
  killAll,
  redisCli,
  startClients,
};
