"use strict";
// The golden traces of tests/traces/, replayed by the shipped .wasm (the
// replay module `rollcall/tools` of the installed package): byte for byte the
// output that `cargo test` holds the native core to, through the tracker
// and through the host session.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { createRequire } = require("node:module");
const fs = require("node:fs");
const path = require("node:path");
const { APP } = require("./helpers");

const tools = createRequire(path.join(APP, "package.json"))("rollcall/tools");
const dir = path.join(__dirname, "..", "..", "traces");

test("golden traces replay to their committed output", () => {
  const traces = fs.readdirSync(dir).filter((f) => f.endsWith(".trace.jsonl"));
  assert.ok(traces.length >= 3, `${traces.length} traces in ${dir}`);
  for (const name of traces) {
    const trace = fs.readFileSync(path.join(dir, name), "utf8");
    const expected = fs.readFileSync(path.join(dir, name.replace(".trace.", ".out.")), "utf8");
    assert.ok(tools.replay(trace) === expected, `${name}: the npm package's replay differs from the golden output`);
  }
});

test("golden traces replay through the host session to their committed output", () => {
  const traces = fs.readdirSync(dir).filter((f) => f.endsWith(".trace.jsonl"));
  for (const name of traces) {
    const trace = fs.readFileSync(path.join(dir, name), "utf8");
    const expected = fs.readFileSync(path.join(dir, name.replace(".trace.", ".session.")), "utf8");
    assert.ok(tools.replaySession(trace) === expected, `${name}: the npm package's session replay differs`);
  }
});

test("malformed traces fail with the same line and message", () => {
  const bad = path.join(dir, "malformed");
  const files = fs.readdirSync(bad).filter((f) => f.endsWith(".jsonl"));
  assert.ok(files.length >= 3);
  for (const name of files) {
    const trace = fs.readFileSync(path.join(bad, name), "utf8");
    const want = fs.readFileSync(path.join(bad, name.replace(/\.jsonl$/, ".err")), "utf8").trim();
    assert.throws(() => tools.replay(trace), (e) => e.message.trim() === want, name);
  }
});
