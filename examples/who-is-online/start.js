#!/usr/bin/env node
// Starts the live "who is online" page:
//
//   node examples/who-is-online/start.js
//       one Node server on the embedded store (presence in the process)
//   node examples/who-is-online/start.js --redis redis://127.0.0.1:6379
//       a cluster of three on that Redis: two Node servers (processes of
//       their own) and one Rust server (host/examples/who_is_online.rs,
//       built with cargo)
//
// Options: --port N (the first server's; the others take the next ones,
// default 3000), --ttl-ms MS (default 10000), --heartbeat-ms MS and
// --reap-ms MS (default TTL / 4), --grace-ms MS (a reload within it is no
// offline; default 5000), --rust-bin PATH (a built who_is_online example:
// no cargo build).
//
// It prints each server's URL; Ctrl-C stops them all. Missing packages
// (socket.io, redis, rollcall from ../../pkg) are installed first.
"use strict";

const { execFileSync, spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");

const here = __dirname;
const root = path.resolve(here, "..", "..");

function usage() {
  console.log(
    "usage: node start.js [--redis URL] [--port N] [--ttl-ms MS] [--heartbeat-ms MS] [--reap-ms MS] [--grace-ms MS] [--rust-bin PATH]",
  );
}

function options(argv) {
  const o = { redis: null, port: 3000, ttlMs: 10000, heartbeatMs: null, reapMs: null, graceMs: 5000, rustBin: null };
  const numbers = { "--port": "port", "--ttl-ms": "ttlMs", "--heartbeat-ms": "heartbeatMs", "--reap-ms": "reapMs", "--grace-ms": "graceMs" };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--help" || flag === "-h") {
      usage();
      process.exit(0);
    }
    const value = argv[++i];
    if (value === undefined) fatal(`${flag} needs a value`);
    if (flag === "--redis") o.redis = value;
    else if (flag === "--rust-bin") o.rustBin = path.resolve(value);
    else if (numbers[flag] && /^\d+$/.test(value)) o[numbers[flag]] = Number(value);
    else fatal(`bad option ${flag} ${value} (try --help)`);
  }
  o.heartbeatMs ??= Math.floor(o.ttlMs / 4);
  o.reapMs ??= Math.floor(o.ttlMs / 4);
  return o;
}

function fatal(message) {
  console.error(`start: ${message}`);
  process.exit(2);
}

function run(cmd, args, cwd) {
  console.log(`start: (${path.relative(process.cwd(), cwd) || "."}) ${cmd} ${args.join(" ")}`);
  execFileSync(cmd, args, { cwd, stdio: ["ignore", "inherit", "inherit"] });
}

function resolves(name) {
  try {
    return require.resolve(name, { paths: [here] });
  } catch {
    return null;
  }
}

/** socket.io, redis and rollcall for server.js: installed from package.json when missing. */
function ensurePackages() {
  const pkg = path.join(root, "pkg");
  const wasmBuilt = () => fs.existsSync(path.join(pkg, "rollcall_wasm_bg.wasm"));
  const missing = ["socket.io", "redis", "rollcall"].filter((m) => !resolves(m));
  if (missing.length) {
    if (!fs.existsSync(path.join(here, "package.json"))) fatal(`cannot find ${missing.join(", ")}`);
    if (!wasmBuilt() && fs.existsSync(path.join(pkg, "package.json"))) run("npm", ["run", "build"], pkg);
    run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], here);
  }
  // rollcall from the repository's pkg/ (a link) needs its WASM built.
  const rollcall = fs.realpathSync(path.dirname(resolves("rollcall")));
  if (!fs.existsSync(path.join(rollcall, "rollcall_wasm_bg.wasm"))) run("npm", ["run", "build"], rollcall);
}

/** The Rust server's binary: --rust-bin, or built with cargo. */
function rustBinary(o) {
  if (o.rustBin) return o.rustBin;
  if (!fs.existsSync(path.join(root, "Cargo.toml"))) fatal("no Cargo.toml two folders up: pass --rust-bin PATH");
  run("cargo", ["build", "-p", "rollcall-host", "--example", "who_is_online"], root);
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, "target");
  return path.join(target, "debug", "examples", "who_is_online");
}

/** The Socket.IO browser client, the very file a Node server serves at /socket.io/socket.io.js. */
function clientScript() {
  return path.join(path.dirname(resolves("socket.io")), "..", "client-dist", "socket.io.js");
}

const children = [];
let stopping = false;

/** Starts one server; resolves once it printed its URL. */
function startServer(index, kind, cmd, args) {
  const label = `${kind}-${index}`;
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  const server = { index, kind, label, child, url: null };
  children.push(server);
  return new Promise((resolve, reject) => {
    const lines = (stream, out) =>
      readline.createInterface({ input: stream }).on("line", (line) => {
        out.write(`[${label}] ${line}\n`);
        const m = /^listening on (http:\/\/\S+)$/.exec(line);
        if (m && !server.url) {
          server.url = m[1];
          resolve(server);
        }
      });
    lines(child.stdout, process.stdout);
    lines(child.stderr, process.stderr);
    child.on("error", (e) => reject(new Error(`${label}: ${e.message}`)));
    child.on("exit", (code, signal) => {
      server.exited = true;
      if (!server.url) reject(new Error(`${label} exited (${signal || code}) before it listened`));
      else if (!stopping) console.log(`start: ${label} exited (${signal || `status ${code}`}); the others go on`);
      if (!stopping && children.every((c) => c.exited)) process.exit(1);
    });
  });
}

/** Stops every server (SIGTERM: they leave cleanly), SIGKILL after 15 s. */
async function stopAll(status) {
  if (stopping) return;
  stopping = true;
  console.log("start: stopping the servers");
  await Promise.all(
    children.map(
      (s) =>
        new Promise((resolve) => {
          if (s.exited) return resolve();
          const timer = setTimeout(() => s.child.kill("SIGKILL"), 15000);
          s.child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          s.child.kill("SIGTERM");
        }),
    ),
  );
  process.exit(status);
}

async function main() {
  const o = options(process.argv.slice(2));
  process.on("SIGINT", () => stopAll(0));
  process.on("SIGTERM", () => stopAll(0));
  ensurePackages();

  const count = o.redis ? 3 : 1;
  const urls = Array.from({ length: count }, (_, i) => `http://127.0.0.1:${o.port + i}`);
  const timings = ["--ttl-ms", o.ttlMs, "--heartbeat-ms", o.heartbeatMs, "--reap-ms", o.reapMs, "--grace-ms", o.graceMs].map(String);
  const common = [...timings, "--servers", urls.join(","), ...(o.redis ? ["--redis", o.redis] : [])];
  const server = path.join(here, "server.js");
  const node = (i) =>
    startServer(i + 1, "node", process.execPath, [server, "--port", String(o.port + i), "--label", `node-${i + 1}`, ...common]);

  const started = [node(0)];
  if (o.redis) {
    started.push(node(1));
    const bin = rustBinary(o);
    const client = clientScript();
    started.push(
      startServer(3, "rust", bin, [
        "--port", String(o.port + 2), "--label", "rust-3", "--public", path.join(here, "public"), "--client-js", client, ...common,
      ]),
    );
  }
  let servers;
  try {
    servers = await Promise.all(started);
  } catch (e) {
    console.error(`start: ${e.message}`);
    return stopAll(1);
  }

  const names = ["alice", "bob", "carol"];
  console.log("");
  console.log(o.redis ? `Who is online: three servers on ${o.redis}` : "Who is online: one server, presence in its process");
  for (const s of servers) {
    console.log(`server ${s.index} ${s.kind} ${s.url} pid ${s.child.pid}   open ${s.url}/?user=${names[s.index - 1]}`);
  }
  if (o.redis) console.log(`Any of them sends a page to server N with ?server=N, e.g. ${servers[0].url}/?user=dave&server=3`);
  console.log(`Metrics: ${servers[0].url}/metrics`);
  console.log("Ctrl-C stops all.");
}

main().catch((e) => {
  console.error(`start: ${e.stack || e.message}`);
  stopAll(1);
});
