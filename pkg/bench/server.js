"use strict";
// One real Socket.IO server of a benchmark (forked by storm.js and reads.js).
// Environment: REDIS_URL; MODE rollcall | naive; ADAPTER=1 for
// @socket.io/redis-adapter; EXPECT=n to time a storm of n connections.
// IPC: -> {ready, port}; {storm: {...}} once EXPECT sockets are counted;
//      <- {id, cmd: "query", kind, reps} answered with {id, ms: [...], value}.

const http = require("node:http");
const { Server } = require("socket.io");
const redis = require("redis");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Presence } = require("..");
const L = require("./lib.js");

async function main() {
  const url = process.env.REDIS_URL;
  const mode = process.env.MODE || "rollcall";
  const client = redis.createClient(L.naiveClientOptions(redis, url));
  client.on("error", () => {});
  await client.connect();
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  if (process.env.ADAPTER === "1") {
    const pub = redis.createClient({ url });
    const sub = pub.duplicate();
    pub.on("error", () => {});
    sub.on("error", () => {});
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  const userId = (socket) => socket.handshake.auth.userId;
  let presence = null;
  let wrapped = null;
  const pending = [];
  if (mode === "rollcall") {
    wrapped = L.counting(client);
    presence = await Presence.attach(io, { redis: wrapped, userId });
  } else {
    await L.naiveAttach(io, client, `proc${process.pid}`, userId, pending);
  }
  // serverSideEmitWithAck, as the clients article writes it.
  const localCount = () => io.of("/").sockets.size;
  io.on("totalCount", (cb) => cb(localCount()));

  const send = (m) => process.connected && process.send(m);

  const expect = Number(process.env.EXPECT || 0);
  if (expect > 0) {
    let seen = 0;
    let first = 0;
    let last = 0;
    io.on("connection", (socket) => {
      const t = L.ms();
      if (seen === 0) first = t;
      last = t;
      if (++seen !== expect) return;
      (async () => {
        // Counted: every write acknowledged and the count reads right.
        let value;
        if (mode === "rollcall") {
          for (;;) {
            await wrapped.drained();
            value = await presence.socketsCount();
            if (value >= expect) break;
          }
        } else {
          while (pending.length) await Promise.all(pending.splice(0));
          const h = await client.hGetAll("users");
          value = Object.values(h).reduce((a, b) => a + Number(b), 0);
        }
        const counted = L.ms();
        send({ storm: { first_to_last_ms: last - first, after_last_ms: counted - last, total_ms: counted - first, value } });
      })();
    });
  }

  process.on("disconnect", () => process.exit(0));
  process.on("message", async (m) => {
    if (m.cmd !== "query") return;
    const times = [];
    let value;
    let error;
    for (let i = 0; i < m.reps; i++) {
      const t0 = L.ms();
      try {
        if (m.kind === "rollcall") value = await presence.socketsCount();
        else if (m.kind === "rollcall_users") value = await presence.usersCount();
        else if (m.kind === "fetchSockets") value = (await io.fetchSockets()).length;
        else if (m.kind === "serverSideEmitWithAck") {
          const remote = await io.serverSideEmitWithAck("totalCount");
          value = remote.reduce((a, b) => a + b, localCount());
        }
      } catch (e) {
        error = String((e && e.message) || e);
      }
      times.push(L.ms() - t0);
    }
    send({ id: m.id, ms: times, value, error });
  });

  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  send({ ready: true, port: httpServer.address().port });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
