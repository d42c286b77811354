"use strict";
// presence.watch(): the cluster's change feed as an async iterable. The
// feed is a Redis stream the scripts append to (the core says how to read
// it and parses what comes back); a watcher reads it on a connection of its
// own, made with the app's client's duplicate(), so its blocking reads never
// hold up the app's commands. Without Redis it reads the embedded store.

const wasm = require("../rollcall_wasm.js");
const { storeOf, replyText } = require("./store.js");
const { message, timed } = require("./util.js");

/** Changes read per round trip. */
const BATCH = 100;
/** The longest one blocking read waits before it asks again (ms). */
const BLOCK_MS = 1000;
/** The pause after a failed read (ms). */
const RETRY_MS = 1000;

/**
 * A change as the core encodes it.
 * @typedef {{ id: string, kind: "online" | "offline" | "joined" | "left" | "updated", user: string,
 *   scope: { kind: string, namespace?: string, room?: string }, reason: "disconnect" | "reaped" | "shutdown" | null,
 *   node: string, at: number, change_id: string, data: string | null }} CoreChange
 */

/**
 * A change as the app sees it (index.d.ts: Change).
 * @param {CoreChange} c
 */
function changeOf(c) {
  return {
    id: c.id,
    type: c.kind,
    userId: c.user,
    namespace: c.scope.kind === "global" ? undefined : c.scope.namespace,
    room: c.scope.kind === "room" ? c.scope.room : undefined,
    reason: c.reason === null ? undefined : c.reason,
    // "updated": the user's data after it, one object per socket with data.
    data: c.data === null || c.data === undefined ? undefined : /** @type {Array<{ [key: string]: unknown }>} */ (JSON.parse(c.data)),
    nodeId: c.node,
    at: c.at,
    changeId: c.change_id,
  };
}

/**
 * Where a watcher reads: `start` is the id it reads after (the newest
 * change when the watcher was made), `read` the changes after an id
 * (waiting a while for some), `stop` frees what it holds for good.
 * @typedef {{ start: Promise<string>, read: (after: string) => Promise<CoreChange[]>, stop: () => void, stopped: boolean }} Source
 */

/** @param {number} ms */
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * The embedded store's feed.
 * @param {{ after: (id: string, count: number) => CoreChange[], newest: () => string, changed: () => Promise<void> }} store
 * @returns {Source}
 */
function embeddedSource(store) {
  /** @type {Source} */
  const source = {
    start: Promise.resolve(store.newest()),
    stopped: false,
    async read(after) {
      while (!source.stopped) {
        // Asked for before looking: a change in between still wakes it.
        const changed = store.changed();
        const batch = store.after(after, BATCH);
        if (batch.length > 0) return batch;
        await Promise.race([changed, pause(BLOCK_MS)]);
      }
      return [];
    },
    stop() {
      source.stopped = true;
    },
  };
  return source;
}

/**
 * Redis' feed, read on a duplicate of the app's client. The start is asked
 * on the app's own client, in line with this node's writes: every change
 * this node makes after watch() is read.
 * A blocking read waits less than the client's own command timeout
 * (ioredis' commandTimeout), so a quiet feed is no error; a read that gets
 * no answer within its block time and `opTimeoutMs` more (a half-open
 * connection, a paused Redis) fails, and the connection is made again.
 * @param {any} client the app's node-redis or ioredis client
 * @param {import("./store.js").Send} send the app's client as a sender
 * @param {wasm.RawTracker} t
 * @param {number} opTimeoutMs
 * @returns {Source}
 */
function redisSource(client, send, t, opTimeoutMs) {
  const commandTimeout = Number((client.options && client.options.commandTimeout) || 0);
  const blockMs = commandTimeout > 0 ? Math.max(1, Math.min(BLOCK_MS, Math.floor(commandTimeout / 2))) : BLOCK_MS;
  /** @type {string[]} */
  const newestArgs = JSON.parse(t.feedNewestArgs());
  const key = newestArgs[0];
  /** @param {import("./store.js").Send} via */
  const newest = async (via) =>
    wasm.parseFeedNewest(replyText(await via(["XREVRANGE", ...newestArgs], key)));
  const start = newest(send);
  start.catch(() => {}); // read() reports it
  /** @type {any} */
  let dup = null;
  /** @type {Promise<import("./store.js").Send> | null} */
  let connecting = null;
  const open = () => {
    if (source.stopped) return Promise.reject(new Error("rollcall: this watcher is stopped"));
    if (!connecting) {
      connecting = (async () => {
        dup = typeof client.duplicate === "function" ? client.duplicate() : null;
        if (!dup) throw new TypeError("rollcall: watch() needs a Redis client with duplicate()");
        // Its failures reach the watcher through its reads.
        if (typeof dup.on === "function") dup.on("error", () => {});
        // node-redis connects when asked; ioredis by itself.
        if (typeof dup.connect === "function" && dup.isOpen === false) await dup.connect();
        return storeOf(dup);
      })();
      connecting.catch(() => {
        connecting = null; // the next read tries again
      });
    }
    return connecting;
  };
  const close = () => {
    const d = dup;
    dup = null;
    connecting = null;
    if (!d) return;
    try {
      const done = typeof d.disconnect === "function" ? d.disconnect() : d.quit();
      if (done && typeof done.catch === "function") done.catch(() => {});
    } catch {
      // already closed
    }
  };
  /** @type {Source} */
  const source = {
    start,
    stopped: false,
    async read(after) {
      const via = await open();
      try {
        /** @type {string[]} */
        const args = JSON.parse(t.feedReadArgs(after, BATCH, blockMs));
        const reply = await timed(
          via(["XREAD", ...args], key),
          blockMs + opTimeoutMs,
          `rollcall: the watcher's read got no answer within ${blockMs + opTimeoutMs} ms`,
        );
        if (source.stopped) return [];
        return JSON.parse(wasm.parseFeed(replyText(reply)));
      } catch (e) {
        // A connection of its own that failed is made again.
        if (!source.stopped) close();
        throw e;
      }
    },
    stop() {
      source.stopped = true;
      close();
    },
  };
  open().catch(() => {});
  return source;
}

/**
 * The changes after `from` (or after the source's start), in the feed's
 * order, until the loop that reads them ends or `stop` is called.
 * @param {Source} source
 * @param {string | undefined} from
 * @param {(error: Error) => void} onError a failed read (the watcher goes on)
 * @param {() => void} onEnd
 */
async function* changes(source, from, onError, onEnd) {
  try {
    /** @type {string | undefined} */
    let after = from;
    while (!source.stopped) {
      try {
        if (after === undefined) after = await source.start;
        const batch = await source.read(after);
        for (const c of batch) {
          after = c.id;
          yield changeOf(c);
        }
      } catch (e) {
        if (source.stopped) return;
        onError(e instanceof Error ? e : new Error(message(e)));
        await pause(RETRY_MS);
      }
    }
  } finally {
    source.stop();
    onEnd();
  }
}

/**
 * `from` of watch({ from }): a change's id, or undefined.
 * @param {unknown} options
 * @returns {string | undefined}
 */
function fromOf(options) {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== "object") throw new TypeError("rollcall: watch() takes an object { from }");
  for (const key of Object.keys(options)) {
    if (key !== "from") throw new TypeError(`rollcall: watch(): unknown option ${JSON.stringify(key)}`);
  }
  const from = /** @type {{ from?: unknown }} */ (options).from;
  if (from === undefined || from === null) return undefined;
  if (typeof from !== "string" || !wasm.isChangeId(from)) {
    throw new TypeError(`rollcall: watch(): from must be a change's id (as change.id gives it), got ${String(from)}`);
  }
  return from;
}

module.exports = { embeddedSource, redisSource, changes, fromOf };
