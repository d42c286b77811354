"use strict";
// Presence: the host of one tracker. It feeds the core every socket event
// (from the hooks) with the time, runs the script calls the core asks for
// on the app's Redis client (or, without one, inside the WASM on an
// in-memory store), keeps the timer, and turns the core's events into
// "user connected" / "user disconnected".

const { EventEmitter } = require("node:events");
const crypto = require("node:crypto");
const os = require("node:os");
const wasm = require("../rollcall_wasm.js");
const { MAX_ID_BYTES, now, tooLong, message, warn, timed } = require("./util.js");
const { MAX_PAGE, configOf, jsMessage, checkId, scopeOf, pageOf } = require("./options.js");
const metrics = require("./metrics.js");
const { storeOf, exec, replyText } = require("./store.js");
const { traceTargetOf, TraceSink, sameTarget } = require("./trace.js");
const { Hooks } = require("./hooks.js");
const { embeddedSource, redisSource, changes, fromOf } = require("./watch.js");

/** The tracker's methods, called by #feed. */
const T = wasm.RawTracker.prototype;

/** @typedef {import("./store.js").Send} Send */
/** @typedef {import("./store.js").Op} Op */
/** @typedef {import("./store.js").Reply} Reply */
/** The events and their arguments, as index.d.ts declares them. @typedef {import("../index.js").PresenceEvents} PresenceEvents */

/**
 * One output of the core.
 * @typedef {{ ops?: Op[], events?: CoreEvent[], tick?: number, flush?: true, trace?: true, ready?: true, failed?: string, warnings?: string[] }} Output
 */
/**
 * An event of the core.
 * @typedef {{ kind: "global" } | { kind: "namespace", namespace: string } | { kind: "room", namespace: string, room: string }} CoreScope
 * @typedef {{ type: "user_online", scope: CoreScope, user: string, change_id: string }
 *   | { type: "user_offline", scope: CoreScope, user: string, reason: "disconnect" | "reaped" | "shutdown", change_id: string }
 *   | { type: "user_updated", user: string, data: string[], change_id: string }
 *   | { type: "node_reaped", node: string }
 *   | { type: "fenced" }
 *   | { type: "store_error", message: string }
 *   | { type: "closed" }} CoreEvent
 */
/** A read held for read-your-writes. @typedef {{ mark: number, go: () => void, timer: NodeJS.Timeout | null }} Waiting */

/**
 * Where a "user joined" / "user left" happened: `room` is undefined for a
 * namespace.
 * @param {CoreScope} scope
 * @returns {import("../index.js").Where}
 */
function whereOf(scope) {
  return scope.kind === "room"
    ? { namespace: scope.namespace, room: scope.room }
    : { namespace: scope.kind === "namespace" ? scope.namespace : "/", room: undefined };
}

/**
 * The default `userId`: what the app's auth middleware decided
 * (`socket.data.userId`), never what the client sent.
 * @param {any} socket
 */
function defaultUserId(socket) {
  return socket.data ? socket.data.userId : undefined;
}

class Presence extends EventEmitter {
  /**
   * Starts following `io`. Handlers are registered before this returns; the
   * promise resolves once this node is registered in Redis (at once without
   * Redis) and rejects if that first call fails.
   * @param {any} io
   * @param {unknown} [options]
   * @returns {Promise<Presence>}
   */
  static attach(io, options) {
    const presence = new Presence(io, options, Presence.#token);
    return presence.#start();
  }

  static #token = Symbol("rollcall.Presence");

  /** @type {wasm.RawTracker} */
  #t;
  /** @type {Send | null} */
  #send = null;
  /** @type {any} */
  #redis = null;
  /** @type {any} */
  #io;
  /** @type {(socket: any) => unknown} */
  #userId;
  /** Answers of the store so far, failures aside (close() waits while they come). */
  #replies = 0;
  /** Users set by identify(), by socket. @type {WeakMap<object, string | null>} */
  #identities = new WeakMap();
  /**
   * Data set by setData() for sockets rollcall has not seen yet (JSON text;
   * null: none), fed when they are. @type {WeakMap<object, string | null>}
   */
  #pendingData = new WeakMap();
  /** The longest data of a socket, in bytes of its JSON text (maxDataBytes). */
  #maxDataBytes = 0;
  /** The `rooms` option: which rooms presence follows (null: every one). @type {((room: string, namespace: string) => boolean) | null} */
  #rooms;
  /** @type {number} */
  #ttlMs;
  /** @type {number} */
  #opTimeoutMs;
  /** @type {NodeJS.Timeout | null} */
  #timer = null;
  /** @type {Waiting[]} */
  #waiting = [];
  /** @type {Hooks} */
  #hooks;
  /** @type {Promise<void> | null} */
  #closing = null;
  /** resolve of close()'s promise @type {(() => void) | null} */
  #closed = null;
  /** @type {((error: Error) => void) | null} */
  #closeFailed = null;
  /** [resolve, reject] until the first registration @type {[() => void, (error: Error) => void] | null} */
  #ready = null;
  /** @type {string | null} */
  #lastError = null;
  #dead = false; // the first registration failed: attach() rejected
  /** [trace sink, output sink | null] while recording @type {[TraceSink, TraceSink | null] | null} */
  #trace = null;
  #latency = new metrics.WriteLatency();
  /** The app's prom-client registry, while our metrics are in it. @type {any} */
  #registry = null;
  /** The running watchers (watch()), stopped by close(). @type {Set<import("./watch.js").Source>} */
  #watchers = new Set();
  /** Embedded mode: resolves at the next user change. @type {{ promise: Promise<void>, resolve: () => void } | null} */
  #feedChanged = null;

  /**
   * @param {any} io
   * @param {unknown} options
   * @param {symbol} token
   */
  constructor(io, options, token) {
    super();
    if (token !== Presence.#token) {
      throw new TypeError("rollcall: use `await Presence.attach(io, options)`");
    }
    if (!io || typeof io.of !== "function" || !(io._nsps instanceof Map)) {
      throw new TypeError("rollcall: io must be a Socket.IO v4 Server");
    }
    const { json, config, opTimeoutMs } = configOf(options);
    const opts = /** @type {{ [key: string]: any }} */ (options === undefined || options === null ? {} : options);
    this.#ttlMs = config.ttl_ms;
    this.#opTimeoutMs = opTimeoutMs;
    if (opts.userId !== undefined && typeof opts.userId !== "function") {
      throw new TypeError("rollcall: userId must be a function (socket) => user id");
    }
    this.#userId = opts.userId || defaultUserId;
    if (opts.rooms !== undefined && typeof opts.rooms !== "function") {
      throw new TypeError("rollcall: rooms must be a function (room, namespace) => boolean");
    }
    this.#rooms = opts.rooms || null;
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
    const registry = metrics.registryOf(opts.metricsRegistry);
    const traceTarget = traceTargetOf(opts.trace, "trace");
    const outputTarget = traceTargetOf(opts.traceOutput, "traceOutput");
    if (outputTarget && !traceTarget) {
      throw new TypeError("rollcall: traceOutput needs trace (it records the output of that trace's steps)");
    }
    if (outputTarget && traceTarget && sameTarget(outputTarget, traceTarget)) {
      throw new TypeError("rollcall: traceOutput must not be the same as trace");
    }
    try {
      // A nonce per process (below 2^40): incarnation ids of this node id
      // never repeat, so a paused predecessor that resumes is fenced.
      const nonce = crypto.randomInt(2 ** 40 - 1);
      this.#t = new wasm.RawTracker(json, nodeId, this.#send === null, nonce);
      this.#maxDataBytes = this.#t.maxDataBytes;
    } catch (e) {
      throw new TypeError(`rollcall: ${jsMessage(message(e))}`);
    }
    if (traceTarget) {
      // Before the first input (hooking the server below feeds the sockets
      // already connected): a trace replays from the start.
      /** @type {TraceSink[]} */
      const sinks = [];
      /** @type {TraceSink | null} */
      let output = null;
      try {
        sinks.push(new TraceSink(traceTarget, "trace"));
        if (outputTarget) sinks.push((output = new TraceSink(outputTarget, "traceOutput")));
      } catch (e) {
        for (const sink of sinks) sink.discard();
        this.#t.free();
        throw e;
      }
      this.#t.record(outputTarget !== null);
      this.#trace = [sinks[0], output];
    }
    if (registry) {
      try {
        metrics.register(registry, () => this.#collect());
      } catch (e) {
        this.#t.free();
        throw e;
      }
      this.#registry = registry;
    }
    this.#io = io;
    this.#hooks = new Hooks(
      io,
      {
        connect: (socket, accepted) => this.#connect(socket, accepted),
        disconnect: (sid) => this.#feed(T.disconnect, sid),
        join: (sid, room, namespace) => this.#join(sid, room, namespace),
        leave: (sid, room, namespace) => this.#leave(sid, room, namespace),
        clientOpen: (client, accepted) => this.#feed(T.clientOpen, client.id, undefined, undefined, accepted, client),
        clientClose: (cid) => this.#feed(T.clientClose, cid),
      },
      () => this.#closing !== null,
    );
    // Everything is hooked synchronously, before any await.
    if (this.#redis && typeof this.#redis.on === "function") {
      this.#hooks.hook(this.#redis, "error", (err) => {
        this.#lastError = message(err);
      });
    }
    this.#hooks.hookServer();
  }

  /** This server's id in the cluster. */
  get nodeId() {
    return this.#t.nodeId;
  }

  // ----- start and stop -----

  /** @returns {Promise<Presence>} */
  #start() {
    // The core's session says when the first registration is done (at
    // once on the embedded store, after its first flush) or failed.
    /** @type {Promise<Presence>} */
    const ready = new Promise((resolve, reject) => {
      this.#ready = [() => resolve(this), reject];
    });
    this.#input(this.#t.tick(now()));
    return ready;
  }

  /**
   * The first registration failed: give up entirely (no hooks, no timer, no
   * more calls). Nothing of this node's sockets is in Redis.
   * @param {string} error
   */
  #registrationFailed(error) {
    const pending = this.#ready;
    this.#ready = null;
    this.#dead = true;
    this.#hooks.unhook();
    this.#closing = Promise.resolve();
    this.#finish();
    if (pending) pending[1](new Error(`rollcall: could not register with Redis: ${error}`));
  }

  /**
   * Leaves the cluster: this node's share is removed at once, its users go offline ("shutdown").
   * @returns {Promise<void>}
   */
  close() {
    if (this.#closing) return this.#closing;
    for (const source of this.#watchers) source.stop();
    this.#watchers.clear();
    this.#hooks.unhook();
    this.#unregisterMetrics();
    const closing = new Promise((resolve, reject) => {
      this.#closed = /** @type {() => void} */ (resolve);
      this.#closeFailed = reject;
    });
    this.#closing = closing;
    /** @type {string | undefined} */
    let out;
    try {
      out = this.#t.shutdown(now());
    } catch (e) {
      this.#finish(/** @type {Error} */ (e));
      return closing;
    }
    if (!this.#t.closed) {
      // Bounded: with Redis gone, this node is reaped by the others instead.
      // The bound is on a lack of progress, not on the whole: a node of
      // 100,000 users leaves in hundreds of slices, each answered in ms.
      const limit = Math.max(this.#ttlMs, 5000);
      let seen = this.#replies;
      /** @type {ReturnType<typeof setTimeout>} */
      let guard;
      const check = () => {
        if (this.#replies !== seen) {
          seen = this.#replies;
          guard = setTimeout(check, limit);
          return;
        }
        this.#finish(
          new Error(
            `rollcall: could not leave the cluster: no reply for ${limit} ms` +
              (this.#lastError ? ` (last error: ${this.#lastError})` : "") +
              "; the other servers will reap this one",
          ),
        );
      };
      guard = setTimeout(check, limit);
      closing.finally(() => clearTimeout(guard)).catch(() => {});
    }
    this.#input(out);
    return closing;
  }

  /** @param {Error} [error] */
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

  /**
   * The last lines, then the end of the streams opened here. Recording stops.
   * @returns {Promise<unknown>}
   */
  #endTrace() {
    if (this.#trace === null) return Promise.resolve();
    this.#drainTrace();
    const sinks = this.#trace.filter((s) => s !== null);
    this.#trace = null;
    return Promise.all(sinks.map((s) => s.end()));
  }

  // ----- inputs (the hot path: no JSON unless the core has something to say) -----

  /**
   * Feeds the core one input: `input` is the tracker's method (of `T`),
   * called with the time and `a`, `b`, `c`, so no event allocates a
   * closure. A call that throws is a warning (the input is dropped); else
   * `accepted(subject)` runs, then the output is acted on.
   * @param {Function} input
   * @param {unknown} [a]
   * @param {unknown} [b]
   * @param {unknown} [c]
   * @param {(subject: any) => void} [accepted]
   * @param {unknown} [subject]
   * @returns {boolean} whether the core took the input
   */
  #feed(input, a, b, c, accepted, subject) {
    /** @type {string | undefined} */
    let out;
    try {
      out = input.call(this.#t, now(), a, b, c);
    } catch (e) {
      warn(message(e));
      return false;
    }
    if (accepted) accepted(subject);
    this.#input(out);
    return true;
  }

  /**
   * @param {any} socket
   * @returns {string | undefined}
   */
  #userOf(socket) {
    let user;
    if (this.#identities.has(socket)) return this.#identities.get(socket) ?? undefined;
    try {
      user = this.#userId(socket);
    } catch (e) {
      warn(`userId() threw (${message(e)}); the socket counts as anonymous`);
      return undefined;
    }
    if (user === undefined || user === null || user === "") return undefined;
    if (typeof user === "number" || typeof user === "bigint") user = String(user);
    if (typeof user !== "string") {
      warn(`userId() returned a ${typeof user}, not a string; the socket counts as anonymous`);
      return undefined;
    }
    if (tooLong(user)) {
      warn(`a user id is longer than ${MAX_ID_BYTES} bytes; the socket counts as anonymous`);
      return undefined;
    }
    return user;
  }

  /**
   * @param {any} socket
   * @param {(socket: any) => void} accepted
   */
  #connect(socket, accepted) {
    const namespace = socket.nsp.name;
    if (tooLong(namespace)) {
      warn(`namespace ${namespace.slice(0, 40)}... is longer than ${MAX_ID_BYTES} bytes: not counted`);
      return false;
    }
    const user = this.#userOf(socket);
    if (!this.#feed(T.connect, socket.id, user, namespace, accepted, socket)) return false;
    // Data set before rollcall saw the socket (an app's "connection"
    // listener that ran before rollcall's).
    const data = this.#pendingData.get(socket);
    if (data !== undefined) {
      this.#pendingData.delete(socket);
      if (data !== null) this.#feed(T.setData, socket.id, data);
    }
    return true;
  }

  /**
   * @param {string} sid
   * @param {unknown} room
   * @param {string} namespace
   */
  #join(sid, room, namespace) {
    const name = this.#followed(room, namespace);
    if (name !== null) this.#feed(T.join, sid, name);
  }

  /**
   * @param {string} sid
   * @param {unknown} room
   * @param {string} namespace
   */
  #leave(sid, room, namespace) {
    const name = this.#followed(room, namespace);
    if (name !== null) this.#feed(T.leave, sid, name);
  }

  /**
   * The room's name if presence follows it (the `rooms` option), else null.
   * The filter must answer alike for every call with one room: a join it
   * follows needs the leave followed too.
   * @param {unknown} room
   * @param {string} namespace
   * @returns {string | null}
   */
  #followed(room, namespace) {
    const name = typeof room === "string" ? room : String(room);
    if (name.length === 0 || tooLong(name)) return null;
    if (this.#rooms === null) return name;
    try {
      return this.#rooms(name, namespace) ? name : null;
    } catch (e) {
      warn(`rooms() threw (${message(e)}); room ${JSON.stringify(name.slice(0, 40))} is not counted`);
      return null;
    }
  }

  #tick = () => {
    this.#timer = null;
    this.#feed(T.tick);
  };

  // ----- what the core asks for -----

  /** Single-server mode: runs the held writes of the last burst of inputs. */
  #flush = () => {
    this.#feed(T.flush);
  };

  /**
   * Acts on one output of the core: `{ops?, events?, tick?, error?, flush?}`.
   * @param {string | undefined} out
   */
  #input(out) {
    if (out === undefined || this.#dead) return;
    /** @type {Output} */
    const o = JSON.parse(out);
    if (o.failed !== undefined) return this.#registrationFailed(o.failed);
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
    if (o.events !== undefined) for (const e of o.events) this.#event(e);
    if (o.warnings !== undefined) for (const w of o.warnings) this.#emit("warning", w);
    if (o.ready === true && this.#ready) {
      const [resolve] = this.#ready;
      this.#ready = null;
      resolve();
    }
  }

  /**
   * Runs one script call; its reply (or error) always goes back to the core,
   * once: a call that takes longer than opTimeoutMs is answered as failed
   * and its late reply ignored.
   * @param {Op} op
   */
  #run(op) {
    let answered = false;
    const sent = WRITES.has(op.script) ? performance.now() : -1;
    /** @param {unknown} reply the client's value, or an Error */
    const answer = (reply) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (sent >= 0) this.#latency.observe((performance.now() - sent) / 1000);
      this.#reply(op, reply);
    };
    const timer = setTimeout(() => {
      const text = `rollcall: the store did not answer within ${this.#opTimeoutMs} ms`;
      this.#lastError = text;
      answer(new Error(text));
    }, this.#opTimeoutMs);
    timer.unref();
    this.#exec(op).then(answer, (err) => {
      if (answered) return;
      this.#lastError = message(err);
      answer(new Error(message(err)));
    });
  }

  /**
   * @param {Op} op
   * @param {unknown} reply the client's value, or an Error
   */
  #reply(op, reply) {
    if (this.#dead) return;
    // Progress for close(): an answer of the store, not a failure.
    if (!(reply instanceof Error)) this.#replies++;
    if (!this.#feed(T.reply, op.token, replyText(reply))) return;
    if (this.#waiting.length > 0) this.#releaseReads(false);
  }

  /**
   * Runs the held reads the store now answers right (all with `all`).
   * @param {boolean} all
   */
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
      if (w.timer) clearTimeout(w.timer);
      w.go();
    }
  }

  /**
   * `promise`, or a rejection with `text` after opTimeoutMs.
   * @template T
   * @param {Promise<T>} promise
   * @param {string} text
   * @returns {Promise<T>}
   */
  #timed(promise, text) {
    return timed(promise, this.#opTimeoutMs, text);
  }

  /**
   * @param {Op} op
   * @returns {Promise<unknown>}
   */
  #exec(op) {
    return exec(/** @type {Send} */ (this.#send), op);
  }

  /**
   * Dispatches one event of the core: the only place events are emitted.
   * @param {CoreEvent} e
   */
  #event(e) {
    if ((e.type === "user_online" || e.type === "user_offline" || e.type === "user_updated") && this.#feedChanged) {
      this.#feedChanged.resolve();
      this.#feedChanged = null;
    }
    switch (e.type) {
      // The change id comes last, so listeners of the earlier arguments
      // keep working; a repeat (after a server died) has the same one.
      case "user_online":
        if (e.scope.kind === "global") this.#emit("user connected", e.user, { changeId: e.change_id });
        else this.#emit("user joined", e.user, whereOf(e.scope), { changeId: e.change_id });
        break;
      case "user_offline":
        if (e.scope.kind === "global") {
          this.#emit("user disconnected", e.user, e.reason, { changeId: e.change_id });
        } else this.#emit("user left", e.user, whereOf(e.scope), e.reason, { changeId: e.change_id });
        break;
      case "user_updated":
        this.#emit("user updated", e.user, e.data.map(parseData), { changeId: e.change_id });
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

  /** @param {string} text */
  #storeError(text) {
    this.#lastError = text;
    if (this.listenerCount("store error") > 0) {
      this.#emit("store error", new Error(text.startsWith("rollcall:") ? text : `rollcall: ${text}`));
    }
  }

  /**
   * Emits one event (with the arguments index.d.ts declares). A listener
   * that throws must not break the bookkeeping: rethrow it outside.
   * @type {<E extends keyof PresenceEvents>(event: E, ...args: PresenceEvents[E]) => void}
   */
  #emit = (event, ...args) => {
    try {
      this.emit(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  };

  // ----- reads -----

  /**
   * @param {string} what
   * @param {string} [namespace]
   * @param {string} [room]
   * @param {string} [user]
   * @param {string} [after] `members`: the cursor
   * @param {number} [limit] `members`: the page size
   * @returns {Promise<any>}
   */
  #read(what, namespace, room, user, after, limit) {
    try {
      if (this.#send === null) {
        this.#flush();
        return Promise.resolve(
          JSON.parse(this.#t.readEmbedded(now(), what, namespace, room, user, after, limit)),
        );
      }
      /** @type {Op} */
      const op = JSON.parse(this.#t.readOp(what, namespace, room, user, after, limit));
      const run = () =>
        this.#timed(this.#exec(op), `rollcall: the store did not answer a read within ${this.#opTimeoutMs} ms`).then(
          (reply) => JSON.parse(wasm.parseAnswer(what, namespace, room, user, after, limit, replyText(reply))),
        );
      // Read-your-writes: the read runs once the store holds every input
      // this node was given before it (the writes still coalesce).
      return this.#whenVisible("a read").then(run);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Resolves once the store holds every input this node was given so far
   * (at once without Redis, or when nothing more will be written); rejects
   * after opTimeoutMs.
   * @param {string} what who waits, for the error
   * @returns {Promise<void>}
   */
  #whenVisible(what) {
    if (this.#send === null) {
      this.#flush();
      return Promise.resolve();
    }
    if (this.#dead || this.#closing) return Promise.resolve();
    const mark = this.#t.readBarrier();
    if (this.#t.isVisible(mark)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      /** @type {Waiting} */
      const w = { mark, go: () => resolve(), timer: null };
      w.timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((x) => x !== w);
        reject(
          new Error(
            `rollcall: ${what} waited ${this.#opTimeoutMs} ms for this node's writes to reach the store` +
              (this.#lastError ? ` (last error: ${this.#lastError})` : ""),
          ),
        );
      }, this.#opTimeoutMs);
      w.timer.unref();
      this.#waiting.push(w);
    });
  }

  /**
   * Sets or changes the user of a connected socket (`null` or `undefined`:
   * anonymous), for apps that learn who the user is after the socket
   * connected. Its namespace and rooms move to the new user at once, with
   * the events that implies (no grace period for the old user: the socket
   * did not go). Resolves once Redis holds it.
   * @param {unknown} socket a server-side Socket.IO socket
   * @param {unknown} userId
   * @returns {Promise<void>}
   */
  identify(socket, userId) {
    const s = serverSocket(socket, "identify()");
    const user = userId === null || userId === undefined ? undefined : checkId(userId, "userId", true);
    if (this.#closing) return Promise.reject(new Error("rollcall: this presence is closed"));
    // A socket rollcall has not seen yet (an app's "connection" listener
    // that runs before rollcall's) is counted as this user when it is.
    this.#identities.set(s, user === undefined ? null : user);
    if (!s.connected) return Promise.resolve();
    // Not followed yet: its connect will carry the user (no input now,
    // which the core would refuse as an unknown socket).
    if (!this.#hooks.follows(s)) return Promise.resolve().then(() => this.#whenVisible("identify()"));
    this.#feed(T.identify, s.id, user);
    return this.#whenVisible("identify()");
  }

  /**
   * Sets this socket's data (a plain JSON-serialisable object, at most
   * maxDataBytes once serialised; `null` or `undefined` removes it). It
   * replaces the socket's previous data and is shown, with the data of the
   * user's other sockets, cluster-wide while the socket has a user
   * ("user updated", members()). Throws TypeError for data that is not an
   * object and RangeError for data that is too long, changing nothing.
   * Resolves once Redis holds it.
   * @param {unknown} socket a server-side Socket.IO socket
   * @param {unknown} data
   * @returns {Promise<void>}
   */
  setData(socket, data) {
    const s = serverSocket(socket, "setData()");
    const json = data === null || data === undefined ? undefined : this.#dataJson(data);
    if (this.#closing) return Promise.reject(new Error("rollcall: this presence is closed"));
    if (!this.#hooks.follows(s)) {
      // Not seen yet (an app's "connection" listener that runs before
      // rollcall's): fed once it is, right after its connect.
      this.#pendingData.set(s, json === undefined ? null : json);
      if (!s.connected) return Promise.resolve();
      return Promise.resolve().then(() => this.#whenVisible("setData()"));
    }
    if (!s.connected) return Promise.resolve();
    /** @type {string | undefined} */
    let out;
    try {
      out = this.#t.setData(now(), s.id, json);
    } catch (e) {
      // The core's own check (the one above should have caught it).
      throw new TypeError(`rollcall: setData(): ${jsMessage(message(e))}`);
    }
    this.#input(out);
    return this.#whenVisible("setData()");
  }

  /**
   * The JSON text of a socket's data, checked.
   * @param {unknown} data
   * @returns {string}
   */
  #dataJson(data) {
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw new TypeError(
        `rollcall: setData(): data must be a plain object (null removes it), got ${Array.isArray(data) ? "an array" : typeof data}`,
      );
    }
    /** @type {unknown} */
    let json;
    try {
      json = JSON.stringify(data);
    } catch (e) {
      throw new TypeError(`rollcall: setData(): data must be JSON-serialisable: ${message(e)}`);
    }
    if (typeof json !== "string" || !json.startsWith("{")) {
      throw new TypeError("rollcall: setData(): data must serialise to a JSON object");
    }
    const bytes = Buffer.byteLength(json, "utf8");
    if (bytes > this.#maxDataBytes) {
      throw new RangeError(
        `rollcall: setData(): data is ${bytes} bytes of JSON, more than maxDataBytes (${this.#maxDataBytes})`,
      );
    }
    return json;
  }

  /**
   * This server's metrics in the Prometheus text format (version 0.0.4):
   * local and cluster-wide gauges, counters of writes, re-asserts, reaps,
   * fences, store errors and events, and the write latency histogram.
   * A cluster gauge whose read fails is left out, not reported as 0.
   * @returns {Promise<string>}
   */
  async metrics() {
    return metrics.render(await this.#collect());
  }

  /** @returns {Promise<import("./metrics.js").Family[]>} */
  async #collect() {
    if (this.#dead) throw new Error("rollcall: this server never joined the cluster");
    /** @param {Promise<number>} p */
    const orNull = (p) => p.catch(() => null);
    const [clusterSockets, clusterUsers] = await Promise.all([
      orNull(this.#read("sockets")),
      orNull(this.#read("users")),
    ]);
    return metrics.families(
      {
        counters: JSON.parse(this.#t.counterSamples()),
        localSockets: this.#t.localSockets,
        localUsers: this.#t.localUsers(),
        clusterSockets,
        clusterUsers,
      },
      this.#latency,
    );
  }

  /** A closed server's metrics leave the app's registry. */
  #unregisterMetrics() {
    const registry = this.#registry;
    this.#registry = null;
    if (!registry || typeof registry.removeSingleMetric !== "function") return;
    for (const name of metrics.NAMES) registry.removeSingleMetric(name);
  }

  /**
   * Low-level (engine.io) connections, cluster-wide.
   * @returns {Promise<number>}
   */
  clientsCount() {
    return this.#read("clients");
  }

  /**
   * Sockets in a namespace (default "/") or in a room of it.
   * @param {unknown} [scope]
   * @returns {Promise<number>}
   */
  socketsCount(scope) {
    const [namespace, room] = scopeOf(scope, "socketsCount", "/");
    return this.#read("sockets", namespace, room);
  }

  /**
   * Distinct users; no scope: all namespaces.
   * @param {unknown} [scope]
   * @returns {Promise<number>}
   */
  usersCount(scope) {
    const [namespace, room] = scopeOf(scope, "usersCount", undefined);
    return this.#read("users", namespace, room);
  }

  /**
   * The users, sorted; no scope: all namespaces. Read in pages of 1,000,
   * each its own bounded call, so a scope of a million users never blocks
   * Redis.
   * @param {unknown} [scope]
   * @returns {Promise<string[]>}
   */
  usersList(scope) {
    const [namespace, room] = scopeOf(scope, "usersList", undefined);
    return this.#allUsers(namespace, room);
  }

  /**
   * @param {string | undefined} namespace
   * @param {string | undefined} room
   */
  async #allUsers(namespace, room) {
    /** @type {string[]} */
    const users = [];
    /** @type {string | undefined} */
    let cursor;
    do {
      /** @type {{ members: Array<{ user: string }>, cursor: string | null }} */
      const page = await this.#read("members", namespace, room, undefined, cursor, MAX_PAGE);
      for (const m of page.members) users.push(m.user);
      cursor = page.cursor === null ? undefined : page.cursor;
    } while (cursor !== undefined);
    return users;
  }

  /**
   * One page of the members of a scope (no scope: all namespaces), in the
   * order of their user ids: `{ userId, sockets, data, since }` each
   * (`sockets` there, over every server; `data`: the data objects of the
   * user's sockets, over every server; `since`: when they came online
   * there, ms on the Redis clock), and the `cursor` of the next page (null:
   * the last).
   * With no change in between the pages hold every member exactly once;
   * each page is one bounded call.
   * @param {unknown} [scope]
   * @param {unknown} [options] `{ limit = 100 (at most 1,000), cursor }`
   * @returns {Promise<{ members: import("../index.js").Member[], cursor: string | null }>}
   */
  members(scope, options) {
    const [namespace, room] = scopeOf(scope, "members", undefined);
    const [limit, after] = pageOf(options);
    return this.#read("members", namespace, room, undefined, after, limit).then(
      /** @param {{ members: Array<{ user: string, sockets: number, since: number, data: string[] }>, cursor: string | null }} page */
      (page) => ({
        members: page.members.map((m) => ({
          userId: m.user,
          sockets: m.sockets,
          data: m.data.map(parseData),
          since: m.since,
        })),
        cursor: page.cursor,
      }),
    );
  }

  /**
   * The namespaces (`room` undefined) and rooms the user is in, over every
   * server, sorted, each with `since` (when the user came online there).
   * @param {unknown} userId
   * @returns {Promise<Array<{ namespace: string, room: string | undefined, since: number }>>}
   */
  userRooms(userId) {
    const user = checkId(userId, "userId", true);
    return this.#read("scopes", undefined, undefined, user).then(
      /** @param {Array<{ scope: any, since: number }>} places */
      (places) => places.map((p) => ({ ...whereOf(p.scope), since: p.since })),
    );
  }

  /**
   * When the user's last socket left (ms, on the Redis clock) for a user
   * offline now; null when online, unknown, or gone longer than lastSeenMs.
   * @param {unknown} userId
   * @returns {Promise<number | null>}
   */
  lastSeen(userId) {
    const user = checkId(userId, "userId", true);
    return this.#read("seen", undefined, undefined, user);
  }

  /**
   * Every change of the cluster (users online, offline, joined, left, their
   * data updated), made
   * by any server, in the order Redis made them: from now on, or after the
   * change whose id is `from` while the feed still holds it
   * (changesMaxLen). It reads on a connection of its own (the client's
   * duplicate()); leaving the `for await` loop stops it, and so does
   * close().
   * @param {unknown} [options] `{ from }`
   * @returns {AsyncGenerator<import("../index.js").Change, void, undefined>}
   */
  watch(options) {
    const from = fromOf(options);
    if (this.#closing) throw new Error("rollcall: this presence is closed");
    const source =
      this.#send === null
        ? embeddedSource({
            after: (id, count) => {
              this.#flush();
              return JSON.parse(this.#t.feedAfter(id, count));
            },
            newest: () => {
              this.#flush();
              return this.#t.feedNewest();
            },
            changed: () => {
              if (!this.#feedChanged) {
                /** @type {() => void} */
                let resolve = () => {};
                const promise = new Promise((r) => (resolve = /** @type {() => void} */ (r)));
                this.#feedChanged = { promise, resolve };
              }
              return this.#feedChanged.promise;
            },
          })
        : redisSource(this.#redis, /** @type {Send} */ (this.#send), this.#t, this.#opTimeoutMs);
    this.#watchers.add(source);
    return changes(
      source,
      from,
      (e) => this.#storeError(`watch: ${message(e)}`),
      () => this.#watchers.delete(source),
    );
  }

  /**
   * Whether the user has a socket anywhere in the cluster.
   * @param {unknown} userId
   * @returns {Promise<boolean>}
   */
  isUserConnected(userId) {
    const user = checkId(userId, "userId", true);
    return this.#read("user", undefined, undefined, user).then((n) => n > 0);
  }

  /**
   * How many sockets the user has, over all namespaces and servers.
   * @param {unknown} userId
   * @returns {Promise<number>}
   */
  userSocketsCount(userId) {
    const user = checkId(userId, "userId", true);
    return this.#read("user", undefined, undefined, user);
  }
}

/**
 * The server-side Socket.IO socket a method was given, or a TypeError.
 * @param {unknown} socket
 * @param {string} method
 * @returns {any}
 */
function serverSocket(socket, method) {
  const s = /** @type {any} */ (socket);
  if (!s || typeof s !== "object" || typeof s.id !== "string" || !s.nsp) {
    throw new TypeError(`rollcall: ${method} takes a server-side Socket.IO socket`);
  }
  return s;
}

/**
 * One socket's data, from the JSON text the core holds.
 * @param {string} json
 * @returns {{ [key: string]: unknown }}
 */
function parseData(json) {
  return JSON.parse(json);
}

/** The scripts of the write lane (timed for rollcall_write_seconds). */
const WRITES = new Set(["register", "apply", "reassert", "heartbeat", "retire"]);

module.exports = { Presence };
