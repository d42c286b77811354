"use strict";
// rollcall: cluster-wide presence for Socket.IO servers.
//
// The logic lives in rollcall-core (Rust, compiled to rollcall_wasm_bg.wasm):
// a state machine that is told every socket event with the time, and answers
// with Redis script calls to run, events to deliver and when to tick. This
// file is the host: it hooks Socket.IO, runs the calls on the app's Redis
// client (or, without one, inside the WASM on an in-memory store), keeps the
// timer, and turns the core's events into "user connected" / "user
// disconnected".

const { EventEmitter } = require("node:events");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const { finished } = require("node:stream");
const wasm = require("./rollcall_wasm.js");

const SCRIPTS = new Map(JSON.parse(wasm.scripts()).map((s) => [s.name, s]));

// Core option name -> the JS option the user wrote.
const JS_NAME = {
  prefix: "prefix",
  ttl_ms: "ttlMs",
  heartbeat_ms: "heartbeatMs",
  reap_ms: "reapMs",
  grace_ms: "graceMs",
  reap_slice: "reapSlice",
  retry_ms: "retryMs",
  max_write_fields: "maxWriteFields",
  node: "nodeId",
  options: "options",
};
const NUMERIC = ["ttlMs", "heartbeatMs", "reapMs", "graceMs", "reapSlice", "retryMs", "maxWriteFields"];
const KNOWN = new Set(["redis", "userId", "prefix", "nodeId", ...NUMERIC, "opTimeoutMs", "trace", "traceOutput"]);
/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_ID_BYTES = 256;

/** Milliseconds on a clock that never goes back (timers only; leases use Redis' clock). */
function now() {
  return Math.floor(performance.timeOrigin + performance.now());
}

function defaultUserId(socket) {
  const auth = socket.handshake && socket.handshake.auth;
  return auth ? auth.userId : undefined;
}

function tooLong(s) {
  return s.length > MAX_ID_BYTES / 3 && Buffer.byteLength(s) > MAX_ID_BYTES;
}

function message(err) {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Replaces the core's option names in a message with the JS ones. */
function jsMessage(text) {
  return text.replace(/\b(ttl_ms|heartbeat_ms|reap_ms|grace_ms|reap_slice|retry_ms|max_write_fields)\b/g, (m) => JS_NAME[m]);
}

/** Checks the options; returns the core's config (JSON) or throws TypeError / RangeError. */
function configOf(options) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== "object") {
    throw new TypeError("rollcall: options must be an object");
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new TypeError(
        `rollcall: unknown option ${JSON.stringify(key)} (known: ${[...KNOWN].join(", ")})`,
      );
    }
  }
  const config = {};
  if (options.prefix !== undefined) {
    if (typeof options.prefix !== "string") {
      throw new TypeError(`rollcall: prefix must be a string, got ${typeof options.prefix}`);
    }
    config.prefix = options.prefix;
  }
  for (const name of NUMERIC) {
    const value = options[name];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw new TypeError(
        `rollcall: ${name} must be a whole number, got ${String(value)}`,
      );
    }
    if (value < 0) throw new RangeError(`rollcall: ${name} must not be negative, got ${value}`);
    const core = Object.keys(JS_NAME).find((k) => JS_NAME[k] === name);
    config[core] = value;
  }
  // The host's own option: the longest wait for one store call.
  let opTimeoutMs;
  if (options.opTimeoutMs !== undefined) {
    const value = options.opTimeoutMs;
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw new TypeError(`rollcall: opTimeoutMs must be a whole number, got ${String(value)}`);
    }
    if (value < 1 || value > MAX_TIMER_MS) {
      throw new RangeError(`rollcall: opTimeoutMs must be between 1 and ${MAX_TIMER_MS} ms, got ${value}`);
    }
    opTimeoutMs = value;
  }
  const json = JSON.stringify(config);
  const bad = wasm.validateConfig(json);
  if (bad !== undefined) {
    const e = JSON.parse(bad);
    const name = JS_NAME[e.option] || e.option;
    const Err = e.out_of_range ? RangeError : TypeError;
    throw new Err(`rollcall: ${name} ${jsMessage(e.message)}`);
  }
  const full = { ttl_ms: 10000, ...config };
  // Default: half the TTL, at most 5 s (as the Rust host's op_timeout).
  if (opTimeoutMs === undefined) opTimeoutMs = Math.min(Math.max(Math.floor(full.ttl_ms / 2), 100), 5000);
  return { json, config: full, opTimeoutMs };
}

/** Duck-types the app's Redis client into `send(args, firstKey) -> Promise`. */
function storeOf(client) {
  if (typeof client !== "object" && typeof client !== "function") {
    throw new TypeError("rollcall: redis must be a node-redis or ioredis client");
  }
  if (typeof client.call === "function") {
    // ioredis (Redis or Cluster). It has a sendCommand too, of another kind:
    // test for call first.
    return (args) => client.call(...args);
  }
  if (typeof client.sendCommand === "function") {
    // node-redis. Its cluster client takes (firstKey, isReadonly, args).
    const cluster = client.masters !== undefined && typeof client.getSlotRandomNode === "function";
    return cluster
      ? (args, key) => client.sendCommand(key, false, args)
      : (args) => client.sendCommand(args);
  }
  throw new TypeError(
    "rollcall: redis must be a node-redis client (with sendCommand) or an ioredis client (with call)",
  );
}

/**
 * A reply of node-redis or ioredis, RESP2 or RESP3, in the core's form:
 * null | integer | string | array | {error}.
 */
function normalise(v) {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "number":
      return Number.isInteger(v) ? v : Math.trunc(v);
    case "bigint":
      return Number(v);
    case "string":
      return v;
    case "boolean":
      return v ? 1 : null;
    default:
      break;
  }
  if (Array.isArray(v)) return v.map(normalise);
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("utf8");
  if (v instanceof Error) return { error: v.message };
  if (v instanceof Set) return [...v].map(normalise);
  if (v instanceof Map) {
    const flat = [];
    for (const [k, x] of v) flat.push(normalise(k), normalise(x));
    return flat;
  }
  if (typeof v === "object") {
    if (typeof v.toString === "function" && v.toString !== Object.prototype.toString) {
      return String(v); // a verbatim string or a big number wrapper
    }
    const flat = [];
    for (const k of Object.keys(v)) flat.push(k, normalise(v[k]));
    return flat;
  }
  return String(v);
}

/**
 * Checks `trace` / `traceOutput`: a file path (string or file: URL) or a
 * writable stream. Returns null when not given.
 */
function traceTargetOf(value, option) {
  if (value === undefined || value === null) return null;
  if ((typeof value === "string" && value.length > 0) || value instanceof URL) return { path: value };
  if (typeof value === "object" && typeof value.write === "function" && typeof value.on === "function") {
    if (value.writableEnded === true || value.destroyed === true) {
      throw new TypeError(`rollcall: ${option} is a stream that has already ended`);
    }
    return { stream: value };
  }
  throw new TypeError(
    `rollcall: ${option} must be a file path or a writable stream, got ${
      typeof value === "string" ? "an empty string" : typeof value
    }`,
  );
}

/** Where a recording goes: a stream, opened here from a path (and then ended on close) or the user's. */
class TraceSink {
  constructor(target, option) {
    this.option = option;
    this.failed = false;
    if (target.stream) {
      this.stream = target.stream;
      this.owned = false;
    } else {
      // Opened now, so a bad path fails attach() at once.
      let fd;
      try {
        fd = fs.openSync(target.path, "w");
      } catch (e) {
        throw new Error(`rollcall: cannot record ${option} to ${String(target.path)}: ${message(e)}`);
      }
      this.stream = fs.createWriteStream(target.path, { fd });
      this.owned = true;
    }
    this.onError = (err) => {
      if (this.failed) return;
      this.failed = true;
      process.emitWarning(
        `rollcall: recording ${this.option} failed, the trace is incomplete: ${message(err)}`,
        "RollcallWarning",
      );
    };
    this.stream.on("error", this.onError);
  }

  write(text) {
    if (!this.failed) this.stream.write(text);
  }

  /** Ends a stream opened here (resolves once it is written); leaves the user's open. */
  end() {
    const stream = this.stream;
    if (!this.owned) {
      stream.off("error", this.onError);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      finished(stream, () => resolve());
      stream.end();
    });
  }

  /** attach() failed after the files were opened. */
  discard() {
    if (this.owned) this.stream.destroy();
    else this.stream.off("error", this.onError);
  }
}

function checkId(value, what, numbers = false) {
  if (numbers && typeof value === "number" && Number.isFinite(value)) value = String(value);
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(`rollcall: ${what} must be a non-empty string`);
  }
  if (tooLong(value)) {
    throw new RangeError(`rollcall: ${what} is longer than ${MAX_ID_BYTES} bytes`);
  }
  return value;
}

function namespaceName(ns) {
  return ns.startsWith("/") ? ns : `/${ns}`;
}

/** `{ namespace, room }` -> [namespace | undefined, room | undefined]. */
function scopeOf(scope, method, defaultNamespace) {
  if (scope === undefined || scope === null) return [defaultNamespace, undefined];
  if (typeof scope !== "object") {
    throw new TypeError(`rollcall: ${method}() takes an object { namespace, room }`);
  }
  for (const key of Object.keys(scope)) {
    if (key !== "namespace" && key !== "room") {
      throw new TypeError(`rollcall: ${method}(): unknown scope field ${JSON.stringify(key)}`);
    }
  }
  let { namespace, room } = scope;
  if (namespace !== undefined && namespace !== null) {
    namespace = namespaceName(checkId(namespace, "namespace"));
  } else {
    namespace = undefined;
  }
  if (room !== undefined && room !== null) {
    room = checkId(room, "room");
    namespace = namespace || "/";
  } else {
    room = undefined;
  }
  return [namespace === undefined ? defaultNamespace : namespace, room];
}

class Presence extends EventEmitter {
  /**
   * Starts following `io`. Handlers are registered before this returns; the
   * promise resolves once this node is registered in Redis (at once without
   * Redis) and rejects if that first call fails.
   */
  static attach(io, options) {
    const presence = new Presence(io, options, Presence.#token);
    return presence.#start();
  }

  static #token = Symbol("rollcall.Presence");

  #t;
  #send = null;
  #redis = null;
  #io;
  #userId;
  #ttlMs;
  #opTimeoutMs;
  #timer = null;
  #engine = null; // [engine, its "connection" listener] of the engine followed now
  #clients = new Set(); // engine clients with our "close" listener
  #waiting = []; // reads held for read-your-writes: {mark, go, timer}
  #hooks = [];
  #namespaces = new WeakSet();
  #adapters = new WeakMap(); // namespace -> [adapter, join listener, leave listener]
  #patches = [];
  #sockets = new WeakSet();
  #closing = null;
  #closed = null; // resolve of close()'s promise
  #closeFailed = null;
  #ready = null; // [resolve, reject] until the first registration
  #lastError = null;
  #dead = false; // the first registration failed: attach() rejected
  #onDisconnecting;
  #onClientClose;
  #onRedisError;
  #trace = null; // [trace sink, output sink | null] while recording

  constructor(io, options, token) {
    super();
    if (token !== Presence.#token) {
      throw new TypeError("rollcall: use `await Presence.attach(io, options)`");
    }
    if (!io || typeof io.of !== "function" || !(io._nsps instanceof Map)) {
      throw new TypeError("rollcall: io must be a Socket.IO v4 Server");
    }
    const opts = options === undefined || options === null ? {} : options;
    const { json, config, opTimeoutMs } = configOf(opts);
    this.#ttlMs = config.ttl_ms;
    this.#opTimeoutMs = opTimeoutMs;
    if (opts.userId !== undefined && typeof opts.userId !== "function") {
      throw new TypeError("rollcall: userId must be a function (socket) => user id");
    }
    this.#userId = opts.userId || defaultUserId;
    if (opts.redis !== undefined && opts.redis !== null) {
      this.#send = storeOf(opts.redis);
      this.#redis = opts.redis;
    }
    let nodeId = opts.nodeId;
    if (nodeId === undefined) {
      nodeId = `${os.hostname()}:${process.pid}:${crypto.randomBytes(6).toString("base64url")}`;
    } else {
      nodeId = checkId(nodeId, "nodeId", true);
    }
    const traceTarget = traceTargetOf(opts.trace, "trace");
    const outputTarget = traceTargetOf(opts.traceOutput, "traceOutput");
    if (outputTarget && !traceTarget) {
      throw new TypeError("rollcall: traceOutput needs trace (it records the output of that trace's steps)");
    }
    if (
      outputTarget &&
      (outputTarget.stream ? outputTarget.stream === traceTarget.stream : String(outputTarget.path) === String(traceTarget.path))
    ) {
      throw new TypeError("rollcall: traceOutput must not be the same as trace");
    }
    try {
      this.#t = new wasm.RawTracker(json, nodeId, this.#send === null);
    } catch (e) {
      throw new TypeError(`rollcall: ${jsMessage(message(e))}`);
    }
    if (traceTarget) {
      // Before the first input (hooking the server below feeds the sockets
      // already connected): a trace replays from the start.
      const sinks = [];
      try {
        sinks.push(new TraceSink(traceTarget, "trace"));
        sinks.push(outputTarget ? new TraceSink(outputTarget, "traceOutput") : null);
      } catch (e) {
        for (const sink of sinks) sink.discard();
        this.#t.free();
        throw e;
      }
      this.#t.record(outputTarget !== null);
      this.#trace = sinks;
    }
    this.#io = io;

    const self = this;
    // Shared listeners: `this` is the emitting socket, so no closure per socket.
    this.#onDisconnecting = function onDisconnecting() {
      self.#disconnect(this.id);
    };
    this.#onClientClose = function onClientClose() {
      self.#clients.delete(this);
      self.#clientClose(this.id);
    };
    this.#onRedisError = (err) => {
      this.#lastError = message(err);
    };
    // Everything is hooked synchronously, before any await.
    if (this.#redis && typeof this.#redis.on === "function") {
      this.#hook(this.#redis, "error", this.#onRedisError);
    }
    this.#hookServer(io);
  }

  /** This server's id in the cluster. */
  get nodeId() {
    return this.#t.nodeId;
  }

  // ----- start and stop -----

  #start() {
    const ready =
      this.#send === null
        ? Promise.resolve(this)
        : new Promise((resolve, reject) => {
            this.#ready = [() => resolve(this), reject];
          });
    this.#input(this.#t.tick(now()));
    return ready;
  }

  /** Leaves the cluster: this node's share is removed at once, its users go offline ("shutdown"). */
  close() {
    if (this.#closing) return this.#closing;
    this.#unhook();
    this.#closing = new Promise((resolve, reject) => {
      this.#closed = resolve;
      this.#closeFailed = reject;
    });
    let out;
    try {
      out = this.#t.shutdown(now());
    } catch (e) {
      this.#finish(e);
      return this.#closing;
    }
    if (!this.#t.closed) {
      // Bounded: with Redis gone, this node is reaped by the others instead.
      const limit = Math.max(this.#ttlMs, 5000);
      const guard = setTimeout(() => {
        this.#finish(
          new Error(
            `rollcall: could not leave the cluster within ${limit} ms` +
              (this.#lastError ? ` (last error: ${this.#lastError})` : "") +
              "; the other servers will reap this one",
          ),
        );
      }, limit);
      this.#closing.finally(() => clearTimeout(guard)).catch(() => {});
    }
    this.#input(out);
    return this.#closing;
  }

  #finish(error) {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    // Nothing more of this node will reach the store: held reads run now.
    this.#releaseReads(true);
    // Gave up: nothing of this node runs any more (the others reap it).
    if (error) this.#dead = true;
    if (this.#ready) {
      const [, reject] = this.#ready;
      this.#ready = null;
      reject(error || new Error("rollcall: closed before the first registration"));
    }
    const [resolve, reject] = [this.#closed, this.#closeFailed];
    this.#closed = this.#closeFailed = null;
    // close() settles once the recording is written out.
    this.#endTrace().then(() => {
      if (error && reject) reject(error);
      else if (resolve) resolve();
    });
  }

  /** Writes out the lines recorded since the last time, in order. */
  #drainTrace = () => {
    if (this.#trace === null) return;
    const [trace, output] = this.#trace;
    const lines = this.#t.takeTrace();
    const outLines = this.#t.takeTraceOutput();
    if (lines !== undefined) trace.write(lines);
    if (outLines !== undefined && output) output.write(outLines);
  };

  /** The last lines, then the end of the streams opened here. Recording stops. */
  #endTrace() {
    if (this.#trace === null) return Promise.resolve();
    this.#drainTrace();
    const sinks = this.#trace.filter((s) => s !== null);
    this.#trace = null;
    return Promise.all(sinks.map((s) => s.end()));
  }

  // ----- Socket.IO hooks -----

  #hook(emitter, event, fn) {
    emitter.on(event, fn);
    this.#hooks.push([emitter, event, fn]);
  }

  #unhook() {
    for (const [emitter, event, fn] of this.#hooks) emitter.off(event, fn);
    this.#hooks = [];
    for (const [obj, name, own, original] of this.#patches.reverse()) {
      if (own) obj[name] = original;
      else delete obj[name];
    }
    this.#patches = [];
    for (const nsp of this.#io._nsps.values()) {
      for (const socket of nsp.sockets.values()) socket.off("disconnecting", this.#onDisconnecting);
    }
    if (this.#engine) this.#engine[0].off("connection", this.#engine[1]);
    this.#engine = null;
    for (const client of this.#clients) client.off("close", this.#onClientClose);
    this.#clients.clear();
  }

  /** Replaces a method of `obj` until close. */
  #patch(obj, name, fn) {
    const own = Object.prototype.hasOwnProperty.call(obj, name);
    this.#patches.push([obj, name, own, obj[name]]);
    obj[name] = fn;
  }

  #hookServer(io) {
    const self = this;
    // io.on proxies to the main namespace, where "new_namespace" is emitted.
    this.#hook(io.sockets, "new_namespace", (nsp) => this.#hookNamespace(nsp));
    for (const nsp of io._nsps.values()) this.#hookNamespace(nsp);
    // io.adapter(X) gives every namespace a new adapter: follow it.
    const adapter = io.adapter;
    this.#patch(io, "adapter", function rollcallAdapter(...args) {
      const result = adapter.apply(this, args);
      if (args.length > 0 && !self.#closing) {
        for (const nsp of io._nsps.values()) self.#hookAdapter(nsp);
      }
      return result;
    });
    if (io.engine) this.#hookEngine(io.engine);
    // Every later engine too: not bound to an HTTP server yet, or
    // io.close() then io.listen() / attach() (a new engine each time).
    const bind = io.bind;
    this.#patch(io, "bind", function rollcallBind(engine) {
      const result = bind.call(this, engine);
      if (!self.#closing) self.#hookEngine(this.engine);
      return result;
    });
  }

  #hookNamespace(nsp) {
    if (this.#namespaces.has(nsp)) return;
    this.#namespaces.add(nsp);
    this.#hook(nsp, "connection", (socket) => this.#connect(socket));
    this.#hookAdapter(nsp);
    for (const socket of nsp.sockets.values()) this.#connect(socket);
  }

  /** Rooms: the adapter's join-room / leave-room, but for the private room named by the socket id. */
  #hookAdapter(nsp) {
    const adapter = nsp.adapter;
    const hooked = this.#adapters.get(nsp);
    if (!adapter || (hooked && hooked[0] === adapter)) return;
    if (hooked) {
      hooked[0].off("join-room", hooked[1]);
      hooked[0].off("leave-room", hooked[2]);
    }
    const join = (room, sid) => {
      if (room !== sid) this.#join(sid, room);
    };
    const leave = (room, sid) => {
      if (room !== sid) this.#leave(sid, room);
    };
    this.#hook(adapter, "join-room", join);
    this.#hook(adapter, "leave-room", leave);
    this.#adapters.set(nsp, [adapter, join, leave]);
  }

  /**
   * Follows `engine`'s new clients instead of the previous engine's. The
   * previous engine's clients still open stay counted until they close.
   */
  #hookEngine(engine) {
    if (!engine || typeof engine.on !== "function") return;
    if (this.#engine && this.#engine[0] === engine) return;
    if (this.#engine) this.#engine[0].off("connection", this.#engine[1]);
    const onConnection = (client) => this.#clientOpen(client);
    engine.on("connection", onConnection);
    this.#engine = [engine, onConnection];
    for (const client of Object.values(engine.clients || {})) this.#clientOpen(client);
  }

  // ----- inputs (the hot path: no JSON unless the core has something to say) -----

  #userOf(socket) {
    let user;
    try {
      user = this.#userId(socket);
    } catch (e) {
      this.#warn(`userId() threw (${message(e)}); the socket counts as anonymous`);
      return undefined;
    }
    if (user === undefined || user === null || user === "") return undefined;
    if (typeof user === "number" || typeof user === "bigint") user = String(user);
    if (typeof user !== "string") {
      this.#warn(`userId() returned a ${typeof user}, not a string; the socket counts as anonymous`);
      return undefined;
    }
    if (tooLong(user)) {
      this.#warn(`a user id is longer than ${MAX_ID_BYTES} bytes; the socket counts as anonymous`);
      return undefined;
    }
    return user;
  }

  #connect(socket) {
    if (this.#closing || this.#sockets.has(socket)) return;
    // Disconnected by a listener that ran before ours ("connect", io.of(ns,
    // fn), an earlier "connection", a parent namespace's): its
    // "disconnecting" has fired already, so Socket.IO never counts it.
    if (socket.connected === false) return;
    this.#sockets.add(socket);
    const sid = socket.id;
    const namespace = socket.nsp.name;
    if (tooLong(namespace)) {
      this.#warn(`namespace ${namespace.slice(0, 40)}... is longer than ${MAX_ID_BYTES} bytes: not counted`);
      return;
    }
    const user = this.#userOf(socket);
    let out;
    try {
      out = this.#t.connect(now(), sid, user, namespace);
    } catch (e) {
      this.#warn(message(e));
      return;
    }
    socket.on("disconnecting", this.#onDisconnecting);
    if (out !== undefined) this.#input(out);
    // Rooms joined before "connection" (middleware, connection state recovery).
    for (const room of socket.rooms) {
      if (room !== sid) this.#join(sid, room);
    }
  }

  #disconnect(sid) {
    let out;
    try {
      out = this.#t.disconnect(now(), sid);
    } catch (e) {
      this.#warn(message(e));
      return;
    }
    if (out !== undefined) this.#input(out);
  }

  #join(sid, room) {
    if (typeof room !== "string") room = String(room);
    if (room.length === 0 || tooLong(room)) return;
    let out;
    try {
      out = this.#t.join(now(), sid, room);
    } catch (e) {
      this.#warn(message(e));
      return;
    }
    if (out !== undefined) this.#input(out);
  }

  #leave(sid, room) {
    if (typeof room !== "string") room = String(room);
    if (room.length === 0 || tooLong(room)) return;
    let out;
    try {
      out = this.#t.leave(now(), sid, room);
    } catch (e) {
      this.#warn(message(e));
      return;
    }
    if (out !== undefined) this.#input(out);
  }

  #clientOpen(client) {
    if (this.#closing || this.#clients.has(client)) return;
    // Closed before we saw it.
    if (client.readyState === "closed" || client.readyState === "closing") return;
    let out;
    try {
      out = this.#t.clientOpen(now(), client.id);
    } catch (e) {
      this.#warn(message(e));
      return;
    }
    client.on("close", this.#onClientClose);
    this.#clients.add(client);
    if (out !== undefined) this.#input(out);
  }

  #clientClose(cid) {
    let out;
    try {
      out = this.#t.clientClose(now(), cid);
    } catch (e) {
      this.#warn(message(e));
      return;
    }
    if (out !== undefined) this.#input(out);
  }

  #tick = () => {
    this.#timer = null;
    let out;
    try {
      out = this.#t.tick(now());
    } catch (e) {
      this.#warn(message(e));
      return;
    }
    this.#input(out);
  };

  // ----- what the core asks for -----

  /** Single-server mode: runs the held writes of the last burst of inputs. */
  #flush = () => {
    let out;
    try {
      out = this.#t.flush(now());
    } catch (e) {
      this.#warn(message(e));
      return;
    }
    this.#input(out);
  };

  /** Acts on one output of the core: `{ops?, events?, tick?, error?, flush?}`. */
  #input(out) {
    if (out === undefined || this.#dead) return;
    const o = JSON.parse(out);
    // Recording: the lines of this burst are written once it is in.
    if (o.trace === true) setImmediate(this.#drainTrace);
    // Single-server mode: the writes of this burst run once its I/O is in.
    if (o.flush === true) setImmediate(this.#flush);
    if (o.tick !== undefined) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = setTimeout(this.#tick, Math.max(0, o.tick - now()));
      this.#timer.unref();
    }
    if (o.ops !== undefined) for (const op of o.ops) this.#run(op);
    if (o.error !== undefined) this.#storeError(o.error);
    if (o.events !== undefined) for (const e of o.events) this.#event(e);
  }

  /**
   * Runs one script call; its reply (or error) always goes back to the core,
   * once: a call that takes longer than opTimeoutMs is answered as failed
   * and its late reply ignored.
   */
  #run(op) {
    let answered = false;
    const answer = (reply) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      this.#reply(op, reply);
    };
    const timer = setTimeout(() => {
      const text = `rollcall: the store did not answer within ${this.#opTimeoutMs} ms`;
      this.#lastError = text;
      answer({ error: text });
    }, this.#opTimeoutMs);
    timer.unref();
    this.#exec(op).then(answer, (err) => {
      if (answered) return;
      this.#lastError = message(err);
      answer({ error: message(err) });
    });
  }

  #reply(op, reply) {
    if (this.#dead) return;
    if (this.#ready && op.script === "register") {
      const [resolve, reject] = this.#ready;
      this.#ready = null;
      if (reply !== null && typeof reply === "object" && !Array.isArray(reply)) {
        // Give up entirely: no hooks, no timer, no more calls. Registered or
        // not, nothing of this node's sockets is in Redis.
        this.#dead = true;
        this.#unhook();
        this.#closing = Promise.resolve();
        this.#finish();
        reject(new Error(`rollcall: could not register with Redis: ${reply.error}`));
        return;
      }
      resolve();
    }
    let out;
    try {
      out = this.#t.reply(now(), op.token, JSON.stringify(reply));
    } catch (e) {
      this.#warn(message(e));
      return;
    }
    this.#input(out);
    if (this.#waiting.length > 0) this.#releaseReads(false);
  }

  /** Runs the held reads the store now answers right (all with `all`). */
  #releaseReads(all) {
    if (this.#waiting.length === 0) return;
    const ready = [];
    const still = [];
    for (const w of this.#waiting) {
      if (all || this.#dead || this.#t.isVisible(w.mark)) ready.push(w);
      else still.push(w);
    }
    this.#waiting = still;
    for (const w of ready) {
      clearTimeout(w.timer);
      w.go();
    }
  }

  /** `promise`, or a rejection with `text` after opTimeoutMs. */
  #timed(promise, text) {
    let timer;
    const limit = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(text)), this.#opTimeoutMs);
      timer.unref();
    });
    return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
  }

  /** EVALSHA, with EVAL when Redis does not know the script (yet, or any more). */
  async #exec(op) {
    const script = SCRIPTS.get(op.script);
    const tail = [String(op.keys.length), ...op.keys, ...op.args];
    const key = op.keys[0];
    try {
      return normalise(await this.#send(["EVALSHA", script.sha, ...tail], key));
    } catch (e) {
      if (!message(e).includes("NOSCRIPT")) throw e;
    }
    return normalise(await this.#send(["EVAL", script.source, ...tail], key));
  }

  #event(e) {
    switch (e.type) {
      case "user_online":
        if (e.scope.kind === "global") this.#emit("user connected", e.user);
        break;
      case "user_offline":
        if (e.scope.kind === "global") this.#emit("user disconnected", e.user, e.reason);
        break;
      case "node_reaped":
        this.#emit("node reaped", e.node);
        break;
      case "fenced":
        this.#emit("fenced");
        break;
      case "store_error":
        this.#storeError(e.message);
        break;
      case "closed":
        this.#finish();
        break;
      default:
        break;
    }
  }

  #storeError(text) {
    this.#lastError = text;
    if (this.listenerCount("store error") > 0) {
      this.#emit("store error", new Error(text.startsWith("rollcall:") ? text : `rollcall: ${text}`));
    }
  }

  /** A listener that throws must not break the bookkeeping: rethrow it outside. */
  #emit(...args) {
    try {
      this.emit(...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  #warn(text) {
    process.emitWarning(`rollcall: ${text}`, "RollcallWarning");
  }

  // ----- reads -----

  #read(what, namespace, room, user) {
    try {
      if (this.#send === null) {
        this.#flush();
        return Promise.resolve(JSON.parse(this.#t.readEmbedded(now(), what, namespace, room, user)));
      }
      const op = JSON.parse(this.#t.readOp(what, namespace, room, user));
      const run = () =>
        this.#timed(this.#exec(op), `rollcall: the store did not answer a read within ${this.#opTimeoutMs} ms`).then(
          (reply) => JSON.parse(wasm.parseAnswer(what, namespace, room, user, JSON.stringify(reply))),
        );
      // Read-your-writes: the read runs once the store holds every input
      // this node was given before it (the writes still coalesce).
      if (this.#dead || this.#closing) return run();
      const mark = this.#t.readBarrier();
      if (this.#t.isVisible(mark)) return run();
      return new Promise((resolve, reject) => {
        const w = { mark, go: () => run().then(resolve, reject), timer: null };
        w.timer = setTimeout(() => {
          this.#waiting = this.#waiting.filter((x) => x !== w);
          reject(
            new Error(
              `rollcall: a read waited ${this.#opTimeoutMs} ms for this node's writes to reach the store` +
                (this.#lastError ? ` (last error: ${this.#lastError})` : ""),
            ),
          );
        }, this.#opTimeoutMs);
        w.timer.unref();
        this.#waiting.push(w);
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Low-level (engine.io) connections, cluster-wide. */
  clientsCount() {
    return this.#read("clients");
  }

  /** Sockets in a namespace (default "/") or in a room of it. */
  socketsCount(scope) {
    const [namespace, room] = scopeOf(scope, "socketsCount", "/");
    return this.#read("sockets", namespace, room);
  }

  /** Distinct users; no scope: all namespaces. */
  usersCount(scope) {
    const [namespace, room] = scopeOf(scope, "usersCount", undefined);
    return this.#read("users", namespace, room);
  }

  /** The users, sorted; no scope: all namespaces. */
  usersList(scope) {
    const [namespace, room] = scopeOf(scope, "usersList", undefined);
    return this.#read("list", namespace, room);
  }

  /** Whether the user has a socket anywhere in the cluster. */
  isUserConnected(userId) {
    const user = checkId(userId, "userId", true);
    return this.#read("user", undefined, undefined, user).then((n) => n > 0);
  }

  /** How many sockets the user has, over all namespaces and servers. */
  userSocketsCount(userId) {
    const user = checkId(userId, "userId", true);
    return this.#read("user", undefined, undefined, user);
  }
}

/**
 * Replays a trace one line at a time: `new Replayer(headerLine)`, then
 * `step(line)` per line, which returns the output line of that step. Throws
 * `trace line N: ...` for a malformed line. The CLI: `rollcall-replay`.
 */
const { Replayer } = wasm;

module.exports = { Presence, Replayer, normalise };
module.exports.default = module.exports;
