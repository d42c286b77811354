"use strict";
// Memory per connected socket of a Node Socket.IO server with rollcall
// attached, minus the same server without it: one child process per case
// (so each starts from an empty heap), N fake sockets (default 10,000 and
// 100,000; one user per two sockets, half of them in one room), rollcall
// on its own redis-server (the server's memory, not Redis'). Each child
// collects garbage, then reports RSS and the V8 heap, external and
// ArrayBuffer memory (where the WASM memory is). Per socket: (with -
// without) / N, and the marginal cost between the two sizes, which leaves
// out what rollcall costs once (the compiled module, its first pages).
//   node --expose-gc pkg/bench/rss.js        (SIZES=10000,100000)

const http = require("node:http");
const { fork } = require("node:child_process");
const L = require("./lib.js");

const SIZES = (process.env.SIZES || "10000,100000").split(",").map(Number);

async function child(n, attach, url) {
  const { Server } = require("socket.io");
  const io = new Server(http.createServer());
  const nsp = io.of("/");
  let presence = null;
  let client = null;
  if (attach) {
    const { Presence } = require(process.env.ROLLCALL || "..");
    const { createClient } = require("redis");
    client = createClient({ url });
    client.on("error", () => {});
    await client.connect();
    presence = await Presence.attach(io, { redis: client, prefix: "rss" });
  }
  const sockets = [];
  for (let i = 0; i < n; i++) {
    const s = L.fakeConnect(io, nsp, `s${i}`, `u${Math.floor(i / 2)}`);
    if (i % 2 === 0) L.fakeJoin(s, "lobby");
    sockets.push(s);
    if (i % 500 === 499) await L.tick();
  }
  if (presence) {
    const t0 = L.ms();
    while ((await presence.socketsCount()) !== n) {
      if (L.ms() - t0 > 300000) throw new Error("not every socket counted");
      await L.sleep(50);
    }
  }
  for (let k = 0; k < 5; k++) {
    global.gc();
    await L.sleep(50);
  }
  const m = process.memoryUsage();
  process.send({ rss: m.rss, heap: m.heapUsed, external: m.external, buffers: m.arrayBuffers, kept: sockets.length });
  // Hold everything until the parent has read the numbers.
  await new Promise((r) => process.once("message", r));
  if (presence) await presence.close().catch(() => {});
  if (client) await client.quit().catch(() => {});
  process.exit(0);
}

function measure(n, attach, url) {
  return new Promise((resolve, reject) => {
    const p = fork(__filename, ["--child", String(n), attach ? "1" : "0", url], {
      execArgv: ["--expose-gc"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    p.once("message", (m) => {
      p.send("done");
      resolve(m);
    });
    p.once("exit", (code) => code && reject(new Error(`child exited ${code}`)));
  });
}

async function main() {
  const redis = await L.startRedis();
  try {
    const out = { sizes: {} };
    const cases = {};
    for (const n of SIZES) {
      // Best of two of each: a process' RSS moves by a few hundred KB.
      const best = async (attach) => {
        const a = await measure(n, attach, redis.url);
        const b = await measure(n, attach, redis.url);
        return a.rss <= b.rss ? a : b;
      };
      const without = await best(false);
      const withIt = await best(true);
      cases[n] = { without, with: withIt };
      const per = (k) => Math.round((withIt[k] - without[k]) / n);
      out.sizes[n] = {
        rss_without_mb: Math.round(without.rss / 1e5) / 10,
        rss_with_mb: Math.round(withIt.rss / 1e5) / 10,
        rss_bytes_per_socket: per("rss"),
        heap_bytes_per_socket: per("heap"),
        array_buffer_bytes_per_socket: per("buffers"),
      };
      L.log(`rss: ${n} sockets: ${JSON.stringify(out.sizes[n])}`);
    }
    if (SIZES.length >= 2) {
      const [a, b] = [SIZES[0], SIZES[SIZES.length - 1]];
      const grow = (c) => c.with.rss - c.without.rss;
      out.marginal_rss_bytes_per_socket = Math.round((grow(cases[b]) - grow(cases[a])) / (b - a));
      out.marginal_between = [a, b];
    }
    L.save("rss", out);
    console.log(JSON.stringify(out, null, 2));
  } finally {
    redis.stop();
  }
}

if (process.argv[2] === "--child") {
  child(Number(process.argv[3]), process.argv[4] === "1", process.argv[5]).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
