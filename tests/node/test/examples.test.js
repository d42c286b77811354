"use strict";
// The examples/ folder as a user takes it: the TypeScript server compiles
// under its own tsconfig (strict) against the package installed from its
// tarball, runs against a real redis-server with a real client (events,
// room counts, /metrics), stops cleanly on SIGTERM; a type error in it
// fails the build.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { execFileSync, spawn } = require("node:child_process");
const { APP, waitFor, freePort, startRedis, connect, track } = require("./helpers");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const EXAMPLE = path.join(ROOT, "examples", "typescript");
const tsc = path.join(__dirname, "..", "node_modules", "typescript", "bin", "tsc");

/** A copy of the example inside the app that installed the tarball, `edit` applied to server.ts. */
function copyExample(name, edit = (code) => code) {
  const dir = path.join(APP, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  for (const f of ["tsconfig.json", "server.ts"]) fs.copyFileSync(path.join(EXAMPLE, f), path.join(dir, f));
  const file = path.join(dir, "server.ts");
  fs.writeFileSync(file, edit(fs.readFileSync(file, "utf8")));
  // CommonJS output, as `npm start` runs it.
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ private: true, type: "commonjs" }));
  return dir;
}

/** `tsc -p dir`: its output, or an Error with it. */
function build(dir) {
  try {
    return execFileSync(process.execPath, [tsc, "-p", dir], { encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    throw new Error(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
}

let redis;
let child;
after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  if (redis) await redis.stop();
});

test("examples/typescript is strict TypeScript", () => {
  const config = JSON.parse(fs.readFileSync(path.join(EXAMPLE, "tsconfig.json"), "utf8"));
  assert.equal(config.compilerOptions.strict, true);
  assert.notEqual(config.compilerOptions.skipLibCheck, true, "rollcall's own types are checked too");
});

test("a type error in the example fails its build", () => {
  const dir = copyExample("example-ts-bad", (code) => {
    const bad = code.replace('presence.on("user disconnected", (userId, reason) => {', 'presence.on("user disconnected", (userId, reason: number) => {');
    assert.notEqual(bad, code, "the edit applies");
    return bad;
  });
  assert.throws(() => build(dir), /server\.ts.*TS2345|TS2769/s);
});

test("examples/typescript builds, counts a real client on a real Redis, serves /metrics, stops on SIGTERM", async () => {
  const dir = copyExample("example-ts");
  build(dir);
  redis = await startRedis();
  const port = await freePort();
  child = track(
    spawn(process.execPath, [path.join("dist", "server.js")], {
      cwd: dir,
      env: { ...process.env, PORT: String(port), REDIS_URL: redis.url },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  await waitFor(() => assert.match(out, /listening on/), { timeout: 30000, what: `the example listens; it printed: ${out}` });

  const url = `http://127.0.0.1:${port}`;
  const alice = await connect(url, { userId: "alice" });
  const heard = new Promise((resolve) => alice.on("online", (user) => user === "bob" && resolve(user)));
  const bob = await connect(url, { userId: "bob" });
  assert.equal(await heard, "bob", "clients hear who came online");
  assert.equal(await alice.timeout(5000).emitWithAck("join", "lobby"), 1);
  assert.equal(await bob.timeout(5000).emitWithAck("join", "lobby"), 2);
  assert.deepEqual(await bob.timeout(5000).emitWithAck("who", "lobby"), ["alice", "bob"]);
  assert.equal(await bob.timeout(5000).emitWithAck("leave", "lobby"), 1);

  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /^rollcall_cluster_users 2$/m);
  assert.match(metrics, /^rollcall_local_sockets 2$/m);
  assert.equal((await fetch(`${url}/nothing`)).status, 404);

  bob.close();
  await waitFor(() => assert.match(out, /offline bob disconnect/), { timeout: 15000, what: "bob goes offline" });
  alice.close();
  child.kill("SIGTERM");
  const { code, signal } = await Promise.race([
    exited,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`the example did not exit on SIGTERM: ${out}`)), 20000)),
  ]);
  assert.equal(signal, null, out);
  assert.equal(code, 0, `exit status; it printed: ${out}`);
  assert.doesNotMatch(out, /Error/, "nothing went wrong on the way");
});
