#!/usr/bin/env node
// The Node suite as users get the package: build pkg/ (unless
// ROLLCALL_SKIP_BUILD is set), `npm pack` it, install the tarball into a
// fresh project (.app/), and run `node --test` against that install.
"use strict";

const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const here = __dirname;
const root = path.resolve(here, "..", "..");
const pkg = path.join(root, "pkg");
const app = path.join(here, ".app");
const npmFlags = ["--no-audit", "--no-fund", "--loglevel=error"];

function sh(cmd, args, cwd) {
  console.error(`> (${path.relative(root, cwd) || "."}) ${cmd} ${args.join(" ")}`);
  execFileSync(cmd, args, { cwd, stdio: ["ignore", "inherit", "inherit"] });
}

if (!process.env.ROLLCALL_SKIP_BUILD) sh("npm", ["run", "build"], pkg);

// The suite's own dependencies (socket.io, clients, redis clients, typescript).
sh("npm", [fs.existsSync(path.join(here, "package-lock.json")) ? "ci" : "install", ...npmFlags], here);

// npm pack: exactly the files users get.
const packDir = fs.mkdtempSync(path.join(os.tmpdir(), "rollcall-pack-"));
try {
  const out = execFileSync("npm", ["pack", "--json", "--pack-destination", packDir, ...npmFlags], {
    cwd: pkg,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [info] = JSON.parse(out);
  const tarball = path.join(packDir, info.filename);
  const wasm = info.files.find((f) => f.path.endsWith(".wasm"));
  console.error(
    `rollcall: packed ${info.filename}: ${info.files.length} files, ${info.size} bytes; ` +
      `${wasm ? `${wasm.path} ${wasm.size} bytes` : "NO .wasm"}`,
  );

  // A fresh project that installs the tarball.
  fs.rmSync(app, { recursive: true, force: true });
  fs.mkdirSync(app);
  fs.writeFileSync(
    path.join(app, "package.json"),
    JSON.stringify({ name: "rollcall-test-app", version: "0.0.0", private: true }, null, 2),
  );
  sh("npm", ["install", ...npmFlags, tarball], app);
  for (const f of fs.readdirSync(path.join(here, "fixtures"))) {
    fs.copyFileSync(path.join(here, "fixtures", f), path.join(app, f));
  }
} finally {
  fs.rmSync(packDir, { recursive: true, force: true });
}

const files = fs
  .readdirSync(path.join(here, "test"))
  .filter((f) => f.endsWith(".test.js"))
  .filter((f) => !process.env.ROLLCALL_TESTS || process.env.ROLLCALL_TESTS.split(",").some((t) => f.includes(t)))
  .map((f) => path.join("test", f));
const result = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=1", "--test-reporter=spec", ...files],
  { cwd: here, stdio: "inherit", env: { ...process.env, ROLLCALL_APP: app } },
);
process.exit(result.status === null ? 1 : result.status);
