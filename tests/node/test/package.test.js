"use strict";
// The package as installed from its `npm pack` tarball: CommonJS, ESM,
// TypeScript types, the files it ships.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { APP, requireRollcall, importRollcall } = require("./helpers");

const installed = path.join(APP, "node_modules", "rollcall");

test("require() and import give the same Presence", async () => {
  const cjs = requireRollcall();
  const esm = await importRollcall();
  assert.equal(typeof cjs.Presence, "function");
  assert.equal(typeof cjs.Presence.attach, "function");
  assert.equal(esm.Presence, cjs.Presence);
  assert.equal(esm.default.Presence, cjs.Presence);
  assert.equal(typeof cjs.Replayer, "function");
  assert.equal(esm.Replayer, cjs.Replayer);
});

test("the tarball ships the wasm, the glue, the types and the replay bin, and nothing else", () => {
  const files = fs.readdirSync(installed).sort();
  assert.deepEqual(files, [
    "README.md",
    "bin",
    "index.d.ts",
    "index.js",
    "index.mjs",
    "lib",
    "package.json",
    "rollcall_wasm.d.ts",
    "rollcall_wasm.js",
    "rollcall_wasm_bg.wasm",
    "rollcall_wasm_bg.wasm.d.ts",
  ]);
  assert.deepEqual(fs.readdirSync(path.join(installed, "bin")), ["rollcall-replay.js"]);
  assert.deepEqual(fs.readdirSync(path.join(installed, "lib")).sort(), [
    "hooks.js",
    "metrics.js",
    "options.js",
    "presence.js",
    "store.js",
    "trace.js",
    "util.js",
    "watch.js",
  ]);
  // npm links it into node_modules/.bin, runnable as `npx rollcall-replay`.
  const bin = path.join(APP, "node_modules", ".bin", "rollcall-replay");
  assert.equal(fs.realpathSync(bin), fs.realpathSync(path.join(installed, "bin", "rollcall-replay.js")));
  fs.accessSync(bin, fs.constants.X_OK);
  const size = fs.statSync(path.join(installed, "rollcall_wasm_bg.wasm")).size;
  console.log(`# shipped rollcall_wasm_bg.wasm: ${size} bytes`);
  // A guard against regressions, not the aim (issue 13: 200 KB, by
  // splitting out the replay). Raised from 512 KiB when call ids, kept
  // replies and the nonce grew the core by ~25 KB (540,073 bytes); then to
  // 624 KiB when the typed protocol (+14 KB), the host session and its
  // replay (+8 KB) and the reaper's adoption of a dead node's kept replies
  // with change ids (+42 KB) made it 611,016 bytes; then to 680 KiB when
  // the change feed and last seen (the scripts' model of them, the entry
  // codec and the watcher's binding: +57 KB) made it 666,475 bytes; then
  // to 720 KiB when member pages and a user's scopes (their model, the
  // page and place answers, a sort of places: +34 KB) made it 705,175;
  // then to 840 KiB when per-socket data (the core's data bookkeeping, its
  // model and Lua, JSON object checks with serde_json::Value: +120 KB,
  // 712,978 -> 832,866 bytes measured at 1a3ff0e and cd07f70 with one
  // toolchain; the binding's setData +0.8 KB) made it 833,670.
  assert.ok(size < 840 * 1024, `the .wasm is ${size} bytes`);
});

test("the TypeScript types check against a typical server", () => {
  const tsc = path.join(__dirname, "..", "node_modules", "typescript", "bin", "tsc");
  const file = path.join(APP, "typed.ts");
  fs.writeFileSync(
    file,
    `import { Presence, Replayer, type OfflineReason } from "rollcall";
import { Server } from "socket.io";
import { createClient } from "redis";
import Redis from "ioredis";

async function main(): Promise<void> {
  const io = new Server();
  const redis = createClient();
  await redis.connect();
  const presence = await Presence.attach(io, {
    redis,
    userId: (socket) => socket.handshake.auth.userId,
    prefix: "rollcall", ttlMs: 15000, heartbeatMs: 5000, reapMs: 5000, graceMs: 0,
  });
  await Presence.attach(io, { redis: new Redis(), userId: (socket) => socket.data.user?.id });
  await Presence.attach(io);
  await Presence.attach(io, { trace: "rollcall.trace.jsonl", traceOutput: process.stderr });
  await Presence.attach(io, { trace: new URL("file:///tmp/t.jsonl") });
  const id: string = presence.nodeId;
  const n: number = await presence.clientsCount();
  const s: number = await presence.socketsCount({ namespace: "/chat", room: "news" });
  const u: number = await presence.usersCount();
  const list: string[] = await presence.usersList({ room: "news" });
  const on: boolean = await presence.isUserConnected("ann");
  const tabs: number = await presence.userSocketsCount("ann");
  presence.on("user connected", (user: string) => void user);
  presence.on("user disconnected", (user: string, reason: OfflineReason) => void [user, reason]);
  await presence.close();
  const replayer = new Replayer('{"rollcall_trace":1}');
  const line: string = replayer.step('{"at":1,"input":{"type":"tick"}}');
  replayer.free();
  void [id, n, s, u, list, on, tabs, line];
}
void main;
`,
  );
  fs.writeFileSync(
    path.join(APP, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        esModuleInterop: true,
        skipLibCheck: true,
        types: ["node"],
      },
      files: ["typed.ts"],
    }),
  );
  try {
    execFileSync(process.execPath, [tsc, "-p", APP], { encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
  // And a mistake is caught: the types are not \`any\`.
  fs.writeFileSync(file, `import { Presence } from "rollcall";\nconst n: string = Presence.attach;\nvoid n;\n`);
  assert.throws(() => execFileSync(process.execPath, [tsc, "-p", APP], { stdio: "pipe" }));
});
