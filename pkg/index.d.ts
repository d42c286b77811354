// Type definitions for rollcall. Written by hand; the package's tests check
// them against the implementation (lib/*.js, checked with tsc --checkJs).

import type { EventEmitter } from "node:events";
import type { URL } from "node:url";

/** A node-redis v4/v5/v6 client (`sendCommand`) or an ioredis client (`call`). */
export type RedisClient =
  | { sendCommand(args: string[], ...rest: unknown[]): Promise<unknown> }
  | { call(command: string, ...args: (string | number)[]): Promise<unknown> };

/** Anything with the parts of a Socket.IO v4 `Server` that rollcall uses. */
export interface SocketIOServer {
  of(name: string): unknown;
  _nsps: Map<string, unknown>;
  sockets: EventEmitter;
  engine?: unknown;
}

/** The parts of a Socket.IO server-side socket that `userId` may read. */
export interface SocketLike {
  id: string;
  handshake: { auth: { [key: string]: any }; [key: string]: any };
  data: any;
  [key: string]: unknown;
}

export interface PresenceOptions {
  /**
   * A connected node-redis (v4, v5 or v6) or ioredis client. Omitted: a
   * single server, counted in process.
   */
  redis?: RedisClient | null;
  /**
   * The user of a socket, called on "connection". `null`, `undefined` or ""
   * means anonymous (counted as a socket, not a user).
   * Default: `(socket) => socket.data.userId`, set by the app's auth middleware
   * (never the client's own `handshake.auth`, which any client can forge).
   */
  userId?: (socket: SocketLike) => string | number | null | undefined;
  /**
   * Which rooms presence follows (default: every room). Apps that put each
   * socket in private rooms (`socket.join("user:" + id)`) skip them here and
   * pay no Redis write or hash for them. Must answer alike every time for
   * one room (a room it follows on join is followed on leave).
   */
  rooms?: (room: string, namespace: string) => boolean;
  /** Key prefix (the Redis Cluster hash tag); no `{` or `}`. Default "rollcall". */
  prefix?: string;
  /** A server that stops renewing its lease for this long is reaped. Default 10000; at least 3 * heartbeatMs (a heartbeat of margin after a Redis stall). */
  ttlMs?: number;
  /** Lease renewal interval. Default 3000. */
  heartbeatMs?: number;
  /** How often each server looks for dead servers to reap. Default 5000. */
  reapMs?: number;
  /** How long a user's last socket lingers after it disconnects; a reconnect within it is silent. Default 0. */
  graceMs?: number;
  /** Most fields one reap call removes. Default 1000. */
  reapSlice?: number;
  /** Wait before retrying a failed Redis call. Default 1000. */
  retryMs?: number;
  /** Most counters one write call carries (bounds how long it holds Redis); a larger re-assert moves to a new incarnation in bounded writes. Default 2000. */
  maxWriteFields?: number;
  /** About how many changes the cluster's change feed keeps for a watcher that resumes (`watch({ from })`); 0 keeps none. Default 100000. */
  changesMaxLen?: number;
  /** How long a user's last seen (`lastSeen`) is kept after they went offline, in ms. Default 604800000 (7 days). */
  lastSeenMs?: number;
  /** The longest data of one socket (`setData`), in bytes of its JSON text (UTF-8). Default 1024; 2 to 1048576. */
  maxDataBytes?: number;
  /**
   * Longest wait for one Redis call, in ms. A call that takes longer (a
   * half-open connection, a paused Redis) counts as failed and is retried;
   * its late reply is ignored. A read waits at most this long for this
   * server's earlier writes, then at most this long for its own reply, and
   * rejects with an Error otherwise. Default: half of ttlMs, at most 5000.
   * A whole number from 1.
   */
  opTimeoutMs?: number;
  /** This server's id; unique among live servers. Default: host:pid:random. */
  nodeId?: string;
  /**
   * Records every input this server's tracker is fed (socket events, ticks,
   * the replies of Redis or of the in-process store) as a trace, JSON Lines,
   * for `rollcall-replay` or `rollcall replay`. A file path (created or
   * truncated now; a bad path throws) or a writable stream. Lines are written
   * once each burst of inputs is in; `close()` writes the last ones and ends
   * a file it opened (never a stream you passed).
   */
  trace?: TraceTarget;
  /**
   * With `trace`: also records the output of every step, what a replay of
   * the trace must reproduce (`rollcall-replay TRACE --expect OUTPUT`).
   */
  traceOutput?: TraceTarget;
  /**
   * A prom-client `Registry`: this server's metrics (as `metrics()` gives
   * them) are registered there and collected when it is scraped; they
   * leave it on `close()`.
   */
  metricsRegistry?: MetricsRegistry;
}

/** What rollcall needs of a prom-client Registry. */
export interface MetricsRegistry {
  registerMetric(metric: object): void;
  removeSingleMetric?(name: string): void;
}

/** A file path, or a writable stream that takes strings. */
export type TraceTarget = string | URL | NodeJS.WritableStream;

/**
 * Replays a trace one line at a time, with the core compiled in (what the
 * `rollcall-replay` command runs).
 */
export declare class Replayer {
  /** Throws `trace line 1: ...` for a bad header. */
  constructor(header: string);
  /** The output line (no newline) of the step; throws `trace line N: ...` for a malformed line. */
  step(line: string): string;
  /** Frees the WASM memory now (else it is freed when garbage-collected). */
  free(): void;
}

/** A scope: a namespace (with a leading "/"), or a room of one. */
export interface Scope {
  namespace?: string;
  /** A room; its namespace defaults to "/". */
  room?: string;
}

export type OfflineReason = "disconnect" | "reaped" | "shutdown";

/** Where a user joined or left: a namespace (`room` undefined) or a room of it. */
export interface Where {
  namespace: string;
  room: string | undefined;
}

/**
 * What identifies one user transition. `changeId` is the same however many
 * times, and by whichever server, the transition is reported: a server that
 * dies before it hears of a transition it made has it reported by the
 * server that reaps it (at least once), so a repeat can be dropped by it.
 */
export interface ChangeInfo {
  changeId: string;
}

/** A socket's data, as `setData()` took it: a plain object, parsed back from its JSON. */
export type PresenceData = { [key: string]: any };

/**
 * One change of the cluster, as `watch()` yields it: a user came online or
 * went offline, or their data was updated (`namespace` and `room`
 * undefined), or joined or left a namespace (`room` undefined) or a room.
 */
export interface Change {
  /** The feed's id of this change: resume after it (`watch({ from })`), drop a repeat by it. */
  id: string;
  type: "online" | "offline" | "joined" | "left" | "updated";
  userId: string;
  namespace: string | undefined;
  room: string | undefined;
  /** Why the user went offline or left; undefined for "online", "joined" and "updated". */
  reason: OfflineReason | undefined;
  /**
   * For "updated": the user's data after the change, one object per socket
   * with data, over every server (empty: none left); undefined otherwise.
   */
  data: PresenceData[] | undefined;
  /** The server whose call made it (for a reap, the reaping server). */
  nodeId: string;
  /** When, on the Redis clock (ms since the epoch). */
  at: number;
  /** The change id the events carry (ChangeInfo). */
  changeId: string;
}

/** A user present in a scope, as `members()` gives it. */
export interface Member {
  userId: string;
  /** The user's sockets in the scope, over every server. */
  sockets: number;
  /**
   * The user's data: one object per socket with data (`setData`), over every
   * server and namespace, in a stable order.
   */
  data: PresenceData[];
  /** When the user came online in the scope (ms, Redis clock). */
  since: number;
}

/** One page of `members()`. */
export interface MemberPage {
  /** In the order of their user ids (UTF-8 bytes). */
  members: Member[];
  /** Pass it back for the next page; null: this page is the last. */
  cursor: string | null;
}

/** A namespace (`room` undefined) or room a user is in, as `userRooms()` gives it. */
export interface UserRoom {
  namespace: string;
  room: string | undefined;
  /** When the user came online there (ms, Redis clock). */
  since: number;
}

/** The events of a Presence: each event's listener arguments. */
export interface PresenceEvents {
  /**
   * A user's first socket in the cluster. Fires on one server: exactly once
   * while that server lives, at least once across its death (see
   * {@link ChangeInfo}).
   */
  "user connected": [userId: string, info: ChangeInfo];
  /** A user's last socket in the cluster is gone. Fires as "user connected" does. */
  "user disconnected": [userId: string, reason: OfflineReason, info: ChangeInfo];
  /**
   * A user's first socket entered a namespace (`room` undefined) or a room,
   * cluster-wide. Fires as "user connected" does.
   */
  "user joined": [userId: string, where: Where, info: ChangeInfo];
  /**
   * A user's last socket left a namespace (`room` undefined) or a room,
   * cluster-wide: "disconnect" when it left the room or disconnected,
   * "reaped" when its server died, "shutdown" when its server closed.
   * Fires as "user connected" does.
   */
  "user left": [userId: string, where: Where, reason: OfflineReason, info: ChangeInfo];
  /**
   * A user's data changed (a socket set, replaced or removed its data, or a
   * socket with data left while the user stays online): `data` is the
   * user's data after it, one object per socket with data, over every
   * server (empty: none left). Not fired when the same change took the
   * user offline ("user disconnected" tells it). Fires as "user connected"
   * does, on the server whose call made it.
   */
  "user updated": [userId: string, data: PresenceData[], info: ChangeInfo];
  /** This server finished reaping a crashed one. */
  "node reaped": [nodeId: string];
  /** This server had been reaped while alive; it registers again and re-asserts its sockets. */
  fenced: [];
  /** A Redis call failed; rollcall retries and heals by itself. */
  "store error": [error: Error];
  /**
   * An input the core ignored because nothing needed to change: a socket
   * connected twice (connection state recovery), an event for a socket that
   * is already gone, an input after close(). The counts stay right.
   */
  warning: [message: string];
  /** EventEmitter's own: a listener is about to be added. */
  newListener: [event: string | symbol, listener: (...args: any[]) => void];
  /** EventEmitter's own: a listener was removed. */
  removeListener: [event: string | symbol, listener: (...args: any[]) => void];
}

/** A listener of one event of a Presence. */
export type PresenceListener<E extends keyof PresenceEvents> = (...args: PresenceEvents[E]) => void;

export declare class Presence extends EventEmitter {
  private constructor();

  /**
   * Follows every namespace, room and connection of `io`. Handlers are
   * registered before it returns; the promise resolves once this server is
   * registered in Redis (at once without Redis). Throws TypeError or
   * RangeError for bad options.
   */
  static attach(io: SocketIOServer, options?: PresenceOptions): Promise<Presence>;

  /** This server's id in the cluster. */
  readonly nodeId: string;

  /*
   * Reads are cluster-wide and see this server's own inputs: a read started
   * after a connect, join, leave or disconnect reflects it (it waits for this
   * server's write of it to reach Redis; see opTimeoutMs).
   */
  /** Low-level (engine.io) connections, cluster-wide. */
  clientsCount(): Promise<number>;
  /** Sockets in a namespace (default "/") or a room of it, cluster-wide. */
  socketsCount(scope?: Scope): Promise<number>;
  /** Distinct users; no scope: over all namespaces. */
  usersCount(scope?: Scope): Promise<number>;
  /**
   * The users' ids, sorted (by UTF-8 bytes); no scope: over all namespaces.
   * Read in pages of 1,000, so a big scope never blocks Redis.
   */
  usersList(scope?: Scope): Promise<string[]>;
  /**
   * One page of a scope's members (no scope: over all namespaces), in the
   * order of their ids. `limit` defaults to 100, at most 1,000 (else a
   * RangeError); pass the page's `cursor` back for the next. With no change
   * in between the pages hold every member exactly once; each page is one
   * bounded call to Redis.
   */
  members(scope?: Scope, options?: { limit?: number; cursor?: string | null }): Promise<MemberPage>;
  /** The namespaces and rooms the user is in, over every server, sorted. */
  userRooms(userId: string | number): Promise<UserRoom[]>;
  /**
   * Sets or changes the user of a connected socket (`null`: anonymous), for
   * apps that learn who the user is after it connected: its namespace and
   * rooms move to the new user, with the events that implies (the old user
   * gets no grace period). Resolves once Redis holds it.
   */
  identify(socket: SocketLike, userId: string | number | null | undefined): Promise<void>;
  /**
   * Sets a socket's data (`null` or `undefined`: removes it), replacing its
   * previous data: a plain JSON-serialisable object, at most `maxDataBytes`
   * once serialised (else a RangeError; not an object: a TypeError; either
   * changes nothing). Shown cluster-wide while the socket has a user, with
   * the data of the user's other sockets ("user updated", `members()`,
   * `watch()`); it moves with `identify()`. Resolves once Redis holds it.
   */
  setData(socket: SocketLike, data: object | null | undefined): Promise<void>;
  /** Whether the user has a socket on any server. */
  isUserConnected(userId: string | number): Promise<boolean>;
  /** The user's sockets, over all namespaces and servers. */
  userSocketsCount(userId: string | number): Promise<number>;
  /**
   * When the user's last socket left (ms, Redis clock) for a user offline
   * now; null when online, unknown, or gone longer than `lastSeenMs`.
   */
  lastSeen(userId: string | number): Promise<number | null>;
  /**
   * Every change of the cluster, made by any server, in the order Redis
   * made them (so in order for each user): from now on, or after the
   * change `from` while the feed still holds it (`changesMaxLen`). Reads
   * on a connection of its own (the client's `duplicate()`); leaving the
   * `for await` loop stops it, and so does `close()`. A failed read is a
   * "store error" event and the watcher goes on.
   */
  watch(options?: { from?: string }): AsyncGenerator<Change, void, undefined>;
  /**
   * This server's metrics in the Prometheus text format (version 0.0.4):
   * rollcall_local_sockets, rollcall_local_users, rollcall_cluster_sockets,
   * rollcall_cluster_users (gauges), rollcall_writes_total,
   * rollcall_write_seconds (histogram), rollcall_reasserts_total,
   * rollcall_reap_calls_total, rollcall_fenced_total,
   * rollcall_reaped_nodes_total, rollcall_store_errors_total and
   * rollcall_events_total{type}.
   */
  metrics(): Promise<string>;
  /**
   * Leaves the cluster cleanly: this server's share is removed and its users
   * go offline with reason "shutdown". Safe to call twice. It goes on as long
   * as Redis answers (a server of 100,000 users leaves in hundreds of bounded
   * calls) and rejects once Redis has not answered for max(ttlMs, 5000) ms:
   * the other servers then reap this one.
   */
  close(): Promise<void>;

  /* A typed EventEmitter: the events and their arguments are PresenceEvents. */
  on<E extends keyof PresenceEvents>(event: E, listener: PresenceListener<E>): this;
  once<E extends keyof PresenceEvents>(event: E, listener: PresenceListener<E>): this;
  off<E extends keyof PresenceEvents>(event: E, listener: PresenceListener<E>): this;
  addListener<E extends keyof PresenceEvents>(event: E, listener: PresenceListener<E>): this;
  removeListener<E extends keyof PresenceEvents>(event: E, listener: PresenceListener<E>): this;
  prependListener<E extends keyof PresenceEvents>(event: E, listener: PresenceListener<E>): this;
  prependOnceListener<E extends keyof PresenceEvents>(event: E, listener: PresenceListener<E>): this;
  emit<E extends keyof PresenceEvents>(event: E, ...args: PresenceEvents[E]): boolean;
  listenerCount<E extends keyof PresenceEvents>(event: E, listener?: PresenceListener<E>): number;
}

declare const rollcall: { Presence: typeof Presence; Replayer: typeof Replayer };
export default rollcall;
