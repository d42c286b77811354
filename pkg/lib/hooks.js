"use strict";
// Socket.IO hooking: every namespace, room, socket and engine.io client of
// a server, told to the host as they come and go.

/**
 * What the hooks tell. `connect` and `clientOpen` return whether the socket
 * or client is followed; they call `accepted(socket or client)` (which adds
 * the hooks' own listener: one function for all) before they act on it.
 * @typedef {object} Inputs
 * @property {(socket: any, accepted: (socket: any) => void) => boolean} connect
 * @property {(sid: string) => void} disconnect
 * @property {(sid: string, room: unknown, namespace: string) => void} join
 * @property {(sid: string, room: unknown, namespace: string) => void} leave
 * @property {(client: any, accepted: (client: any) => void) => void} clientOpen
 * @property {(cid: string) => void} clientClose
 */

/** @typedef {{ on(event: string, fn: (...args: any[]) => void): unknown, off(event: string, fn: (...args: any[]) => void): unknown }} Emitter */

class Hooks {
  /** @type {any} */
  #io;
  /** @type {Inputs} */
  #inputs;
  /** @type {() => boolean} */
  #closing;
  /** @type {[Emitter, string, (...args: any[]) => void][]} */
  #hooks = [];
  /** @type {[any, string, boolean, unknown][]} */
  #patches = [];
  #namespaces = new WeakSet();
  /** namespace -> [adapter, join listener, leave listener] @type {WeakMap<object, [Emitter, (...args: any[]) => void, (...args: any[]) => void]>} */
  #adapters = new WeakMap();
  #sockets = new WeakSet();
  /** engine clients with our "close" listener @type {Set<any>} */
  #clients = new Set();
  /** [engine, its "connection" listener] of the engine followed now @type {[Emitter, (client: any) => void] | null} */
  #engine = null;
  /** @type {(this: { id: string }) => void} */
  #onDisconnecting;
  /** @type {(this: { id: string }) => void} */
  #onClientClose;
  /** @type {(socket: any) => void} */
  #followSocket;
  /** @type {(client: any) => void} */
  #followClient;

  /**
   * @param {any} io
   * @param {Inputs} inputs
   * @param {() => boolean} closing whether the host is closing (nothing new is followed)
   */
  constructor(io, inputs, closing) {
    this.#io = io;
    this.#inputs = inputs;
    this.#closing = closing;
    const self = this;
    // Shared listeners: `this` is the emitting socket, so no closure per socket.
    this.#onDisconnecting = function onDisconnecting() {
      self.#inputs.disconnect(this.id);
    };
    this.#onClientClose = function onClientClose() {
      self.#clients.delete(this);
      self.#inputs.clientClose(this.id);
    };
    this.#followSocket = (socket) => socket.on("disconnecting", this.#onDisconnecting);
    this.#followClient = (client) => {
      client.on("close", this.#onClientClose);
      this.#clients.add(client);
    };
  }

  /**
   * Adds a listener until unhook().
   * @param {Emitter} emitter
   * @param {string} event
   * @param {(...args: any[]) => void} fn
   */
  hook(emitter, event, fn) {
    emitter.on(event, fn);
    this.#hooks.push([emitter, event, fn]);
  }

  /** Removes every listener and patch. */
  unhook() {
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

  /**
   * Replaces a method of `obj` until unhook().
   * @param {any} obj
   * @param {string} name
   * @param {(...args: any[]) => unknown} fn
   */
  #patch(obj, name, fn) {
    const own = Object.prototype.hasOwnProperty.call(obj, name);
    this.#patches.push([obj, name, own, obj[name]]);
    obj[name] = fn;
  }

  /**
   * Whether the socket was seen (its "connection" reached rollcall).
   * @param {object} socket
   */
  follows(socket) {
    return this.#sockets.has(socket);
  }

  /** Follows the server: its namespaces, adapters and engines, now and later. */
  hookServer() {
    const self = this;
    const io = this.#io;
    // io.on proxies to the main namespace, where "new_namespace" is emitted.
    this.hook(io.sockets, "new_namespace", (nsp) => this.#hookNamespace(nsp));
    for (const nsp of io._nsps.values()) this.#hookNamespace(nsp);
    // io.adapter(X) gives every namespace a new adapter: follow it.
    const adapter = io.adapter;
    this.#patch(
      io,
      "adapter",
      /** @this {any} @param {...any} args */
      function rollcallAdapter(...args) {
        const result = adapter.apply(this, args);
        if (args.length > 0 && !self.#closing()) {
          for (const nsp of io._nsps.values()) self.#hookAdapter(nsp);
        }
        return result;
      },
    );
    if (io.engine) this.#hookEngine(io.engine);
    // Every later engine too: not bound to an HTTP server yet, or
    // io.close() then io.listen() / attach() (a new engine each time).
    const bind = io.bind;
    this.#patch(
      io,
      "bind",
      /** @this {any} @param {unknown} engine */
      function rollcallBind(engine) {
        const result = bind.call(this, engine);
        if (!self.#closing()) self.#hookEngine(this.engine);
        return result;
      },
    );
  }

  /** @param {any} nsp */
  #hookNamespace(nsp) {
    if (this.#namespaces.has(nsp)) return;
    this.#namespaces.add(nsp);
    this.hook(nsp, "connection", (socket) => this.#connect(socket));
    this.#hookAdapter(nsp);
    for (const socket of nsp.sockets.values()) this.#connect(socket);
  }

  /**
   * Rooms: the adapter's join-room / leave-room, but for the private room named by the socket id.
   * @param {any} nsp
   */
  #hookAdapter(nsp) {
    const adapter = nsp.adapter;
    const hooked = this.#adapters.get(nsp);
    if (!adapter || (hooked && hooked[0] === adapter)) return;
    if (hooked) {
      hooked[0].off("join-room", hooked[1]);
      hooked[0].off("leave-room", hooked[2]);
    }
    /** @type {(room: unknown, sid: string) => void} */
    const join = (room, sid) => {
      if (room !== sid) this.#inputs.join(sid, room, nsp.name);
    };
    /** @type {(room: unknown, sid: string) => void} */
    const leave = (room, sid) => {
      if (room !== sid) this.#inputs.leave(sid, room, nsp.name);
    };
    this.hook(adapter, "join-room", join);
    this.hook(adapter, "leave-room", leave);
    this.#adapters.set(nsp, [adapter, join, leave]);
  }

  /**
   * Follows `engine`'s new clients instead of the previous engine's. The
   * previous engine's clients still open stay counted until they close.
   * @param {any} engine
   */
  #hookEngine(engine) {
    if (!engine || typeof engine.on !== "function") return;
    if (this.#engine && this.#engine[0] === engine) return;
    if (this.#engine) this.#engine[0].off("connection", this.#engine[1]);
    /** @param {any} client */
    const onConnection = (client) => this.#clientOpen(client);
    engine.on("connection", onConnection);
    this.#engine = [engine, onConnection];
    for (const client of Object.values(engine.clients || {})) this.#clientOpen(client);
  }

  /** @param {any} socket */
  #connect(socket) {
    if (this.#closing() || this.#sockets.has(socket)) return;
    // Disconnected by a listener that ran before ours ("connect", io.of(ns,
    // fn), an earlier "connection", a parent namespace's): its
    // "disconnecting" has fired already, so Socket.IO never counts it.
    if (socket.connected === false) return;
    this.#sockets.add(socket);
    const sid = socket.id;
    if (!this.#inputs.connect(socket, this.#followSocket)) return;
    // Rooms joined before "connection" (middleware, connection state recovery).
    for (const room of socket.rooms) {
      if (room !== sid) this.#inputs.join(sid, room, socket.nsp.name);
    }
  }

  /** @param {any} client */
  #clientOpen(client) {
    if (this.#closing() || this.#clients.has(client)) return;
    // Closed before we saw it.
    if (client.readyState === "closed" || client.readyState === "closing") return;
    this.#inputs.clientOpen(client, this.#followClient);
  }
}

module.exports = { Hooks };
