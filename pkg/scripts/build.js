#!/usr/bin/env node
// Builds the WASM half of the package into this folder:
//   cargo build --target wasm32-unknown-unknown -p rollcall-wasm -p rollcall-tools-wasm
//   wasm-bindgen --target nodejs for each (same version as the crate's pin)
// Two modules: rollcall_wasm (the hot path, loaded by every server) and
// rollcall_tools (replay and the key schema, loaded only when asked for).
// `--check` only verifies that a build is present (run by `npm pack`).
"use strict";

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const here = path.resolve(__dirname, "..");
const root = path.resolve(here, "..");
const MODULES = ["rollcall_wasm", "rollcall_tools"];
const generated = MODULES.flatMap((m) => [`${m}.js`, `${m}.d.ts`, `${m}_bg.wasm`, `${m}_bg.wasm.d.ts`]);

if (process.argv.includes("--check")) {
  const missing = generated.filter((f) => !fs.existsSync(path.join(here, f)));
  if (missing.length) {
    console.error(`rollcall: missing ${missing.join(", ")}: run \`npm run build\` first`);
    process.exit(1);
  }
  process.exit(0);
}

function run(cmd, args, opts = {}) {
  console.error(`> ${cmd} ${args.join(" ")}`);
  execFileSync(cmd, args, { stdio: "inherit", cwd: root, ...opts });
}

function have(cmd) {
  try {
    execFileSync(cmd, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// The pinned crate version (root Cargo.toml) must equal the CLI's.
const cargoToml = fs.readFileSync(path.join(root, "Cargo.toml"), "utf8");
const pin = /^wasm-bindgen\s*=\s*"=([^"]+)"/m.exec(cargoToml);
if (!pin) throw new Error("rollcall: no exact wasm-bindgen pin in Cargo.toml");
const home = process.env.CARGO_HOME || path.join(require("node:os").homedir(), ".cargo");
const bindgen = [path.join(home, "bin", "wasm-bindgen"), "wasm-bindgen"].find(
  (c) => (c.includes(path.sep) ? fs.existsSync(c) : have(c)),
);
let cliVersion = "";
try {
  cliVersion = execFileSync(bindgen || "wasm-bindgen", ["--version"], { encoding: "utf8" }).trim();
} catch {
  // reported below
}
if (!cliVersion.endsWith(` ${pin[1]}`)) {
  console.error(
    `rollcall: wasm-bindgen CLI ${pin[1]} is needed (found: ${cliVersion || "none"}).\n` +
      `  cargo install wasm-bindgen-cli --version ${pin[1]}`,
  );
  process.exit(1);
}

// A profile of its own, so the workspace's release builds keep their
// settings and their cache. opt-level 3, not "s"/"z": the hot path (one call
// per socket event) runs 2-3x faster for ~40 KB more .wasm.
const profile = [
  "--config", 'profile.wasm.inherits="release"',
  "--config", "profile.wasm.opt-level=3",
  "--config", "profile.wasm.lto=true",
  "--config", "profile.wasm.codegen-units=1",
  "--config", 'profile.wasm.panic="abort"',
  "--config", "profile.wasm.strip=true",
  "--config", "profile.wasm.package.rollcall-wasm.opt-level=3",
  // Replay is not on any server's path: small over fast.
  "--config", 'profile.wasm.package.rollcall-tools-wasm.opt-level="s"',
];
run("cargo", [
  "build", "--profile", "wasm", "--target", "wasm32-unknown-unknown",
  "-p", "rollcall-wasm", "-p", "rollcall-tools-wasm",
  ...profile,
]);
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(root, process.env.CARGO_TARGET_DIR)
  : path.join(root, "target");
for (const f of generated) fs.rmSync(path.join(here, f), { force: true });
for (const m of MODULES) {
  run(bindgen, [
    "--target", "nodejs",
    "--remove-name-section",
    "--remove-producers-section",
    "--out-dir", here,
    path.join(targetDir, "wasm32-unknown-unknown", "wasm", `${m}.wasm`),
  ]);
}

// No wasm-opt: binaryen 108 (Debian's) breaks the externref table that
// wasm-bindgen emits, and saves under 10% when it works.
for (const m of MODULES) {
  const wasm = path.join(here, `${m}_bg.wasm`);
  console.error(`rollcall: ${path.relative(root, wasm)} is ${fs.statSync(wasm).size} bytes`);
}
