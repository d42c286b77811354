#!/usr/bin/env node
// The Node server of the live "who is online" page: a Socket.IO server with
// rollcall presence that serves the page (public/), the Socket.IO browser
// client (/socket.io/socket.io.js, served by socket.io itself) and the
// metrics (/metrics). `start.js` starts one (the embedded store) or a
// cluster of three on one Redis; alone:
//
//   node server.js [--port 3000] [--redis redis://127.0.0.1:6379] [--label node-1]
//                  [--ttl-ms MS] [--heartbeat-ms MS] [--reap-ms MS] [--grace-ms MS]
//                  [--servers URL,URL,...]
//
// The page connects with the query ?user=NAME&status=STATUS. Socket events
// (the Rust server, host/examples/who_is_online.rs, answers the same):
//   join / leave (room, ack)        the socket joins or leaves the room
//   status (status, ack)            the socket's data becomes { name, status }
//   state ({ rooms, room }, ack)    { server, counts: { room: users }, room,
//                                     members: [{ userId, sockets, since, data }] }
// and every change of the cluster (presence.watch()) is emitted to every
// page as "presence"; the page then asks for "state".
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { Server } = require("socket.io");
const { Presence } = require("rollcall");

const STATUSES = ["online", "away", "busy"];
const ROOM = /^[A-Za-z0-9_-]{1,32}$/;
const PUBLIC = path.join(__dirname, "public");
const FILES = {
  "/": ["index.html", "text/html"],
  "/index.html": ["index.html", "text/html"],
  "/app.js": ["app.js", "text/javascript"],
  "/style.css": ["style.css", "text/css"],
};

function options(argv) {
  const o = { port: 3000, redis: null, label: "node", ttlMs: 10000, graceMs: 5000, servers: [] };
  const numbers = { "--ttl-ms": "ttlMs", "--heartbeat-ms": "heartbeatMs", "--reap-ms": "reapMs", "--grace-ms": "graceMs" };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--help" || flag === "-h") {
      console.log("usage: node server.js [--port N] [--redis URL] [--label NAME] [--ttl-ms MS] [--heartbeat-ms MS] [--reap-ms MS] [--grace-ms MS] [--servers URL,...]");
      process.exit(0);
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--port") o.port = Number(value);
    else if (flag === "--redis") o.redis = value;
    else if (flag === "--label") o.label = value;
    else if (flag === "--servers") o.servers = value.split(",").filter(Boolean);
    else if (numbers[flag]) o[numbers[flag]] = Number(value);
    else throw new Error(`unknown flag ${flag} (try --help)`);
  }
  return o;
}

/** A Redis client for rollcall: node-redis from the app's dependencies. */
async function redisClient(url) {
  const { createClient } = require("redis");
  const client = createClient({ url });
  client.on("error", (e) => console.error("redis:", e.message));
  await client.connect();
  return client;
}

/** The user the page says it is. A real app decides it from a session cookie or a signed token. */
function userOf(socket) {
  const user = String(socket.handshake.query.user || "").trim();
  return user && [...user].length <= 64 ? user : null;
}

async function main() {
  const o = options(process.argv.slice(2));
  const httpServer = http.createServer();
  const io = new Server(httpServer); // also serves /socket.io/socket.io.js

  // Who a socket is, decided before "connection": rollcall reads socket.data.userId.
  io.use((socket, next) => {
    const user = userOf(socket);
    if (!user) return next(new Error("a user name is needed (?user=...)"));
    socket.data.userId = user;
    const status = String(socket.handshake.query.status || "");
    socket.data.status = STATUSES.includes(status) ? status : "online";
    next();
  });

  const redis = o.redis ? await redisClient(o.redis) : null;
  const timings = { ttlMs: o.ttlMs, graceMs: o.graceMs };
  if (o.heartbeatMs) timings.heartbeatMs = o.heartbeatMs;
  if (o.reapMs) timings.reapMs = o.reapMs;
  const presence = await Presence.attach(io, { ...(redis ? { redis } : {}), ...timings });
  presence.on("store error", (e) => console.error("rollcall:", e.message));
  const server = { label: o.label, kind: "node", nodeId: presence.nodeId };
  let self = ""; // this server's URL, once it listens

  const fail = (what) => (e) => console.error(`${what}: ${e.message}`);
  io.on("connection", (socket) => {
    const name = socket.data.userId;
    // Before any await: the data rides in the connect's write.
    presence.setData(socket, { name, status: socket.data.status }).catch(fail("setData"));

    socket.on("join", async (room, ack) => {
      if (typeof ack !== "function") return;
      if (typeof room !== "string" || !ROOM.test(room)) return ack({ ok: false });
      await socket.join(room);
      ack({ ok: true });
    });
    socket.on("leave", async (room, ack) => {
      if (typeof ack !== "function") return;
      if (typeof room !== "string" || !ROOM.test(room)) return ack({ ok: false });
      await socket.leave(room);
      ack({ ok: true });
    });
    socket.on("status", async (status, ack) => {
      if (typeof ack !== "function") return;
      if (!STATUSES.includes(status)) return ack({ ok: false });
      socket.data.status = status;
      try {
        await presence.setData(socket, { name, status });
        ack({ ok: true });
      } catch (e) {
        fail("setData")(e);
        ack({ ok: false });
      }
    });
    socket.on("state", async (ask, ack) => {
      if (typeof ack !== "function") return;
      try {
        ack(await state(ask || {}));
      } catch (e) {
        ack({ error: e.message });
      }
    });
  });

  /** The users of each asked room (at most 50), and the first 200 members of `room` with their data. */
  async function state({ rooms, room }) {
    const asked = (Array.isArray(rooms) ? rooms : []).filter((r) => typeof r === "string" && ROOM.test(r)).slice(0, 50);
    const counts = {};
    await Promise.all(asked.map(async (r) => (counts[r] = await presence.usersCount({ room: r }))));
    const current = typeof room === "string" && ROOM.test(room) ? room : null;
    const members = current ? (await presence.members({ room: current }, { limit: 200 })).members : [];
    return {
      server,
      counts,
      room: current,
      members: members.map((m) => ({ userId: m.userId, sockets: m.sockets, since: m.since, data: m.data || [] })),
    };
  }

  // Every change of the cluster, by any server, to every page.
  const feed = (async () => {
    for await (const c of presence.watch()) {
      io.emit("presence", {
        id: c.id,
        type: c.type,
        userId: c.userId,
        namespace: c.namespace ?? null,
        room: c.room ?? null,
        reason: c.reason ?? null,
        data: c.data ?? null,
        nodeId: c.nodeId,
        at: c.at,
      });
    }
  })();
  feed.catch(fail("watch"));

  httpServer.on("request", async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (url.pathname.startsWith("/socket.io/")) return; // socket.io's
    if (url.pathname === "/metrics") {
      try {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(await presence.metrics());
      } catch (e) {
        res.writeHead(503).end(`${e.message}\n`);
      }
      return;
    }
    if (url.pathname === "/config.json") {
      const body = JSON.stringify({ label: o.label, kind: "node", servers: o.servers.length ? o.servers : [self] });
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache" }).end(body);
      return;
    }
    const file = FILES[url.pathname];
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    fs.readFile(path.join(PUBLIC, file[0]), (err, bytes) => {
      if (err) res.writeHead(500).end(`${err.message}\n`);
      else res.writeHead(200, { "content-type": `${file[1]}; charset=utf-8`, "cache-control": "no-cache" }).end(bytes);
    });
  });

  await new Promise((resolve) => httpServer.listen(o.port, "127.0.0.1", resolve));
  self = `http://127.0.0.1:${httpServer.address().port}`;
  console.log(`listening on ${self}`);
  console.log(`node ${presence.nodeId}`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await presence.close(); // leaves cleanly: the others see "offline" with reason "shutdown"
    } catch (e) {
      fail("close")(e);
    }
    io.close();
    if (redis) await redis.quit().catch(() => {});
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
