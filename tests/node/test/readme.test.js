"use strict";
// Every JavaScript block of README.md and pkg/README.md is a complete
// program: each is written to the file its first line names, run with
// node against the installed tarball and a real redis-server, visited by a
// real socket.io-client client, and stopped with SIGTERM. A README that
// stops working fails here.

const { test, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { spawn } = require("node:child_process");
const { APP, waitFor, freePort, startRedis, connect, track } = require("./helpers");

const ROOT = path.resolve(__dirname, "..", "..", "..");

/** The ```js blocks of a Markdown file, with the file name each names. */
function jsBlocks(file) {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8");
  return [...text.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => {
    const name = /^\/\/ (\S+\.m?js)\b/.exec(m[1]);
    assert.ok(name, `${file}: a js block names its file on its first line: ${m[1].split("\n")[0]}`);
    return { file, name: name[1], code: m[1] };
  });
}

const blocks = [...jsBlocks("README.md"), ...jsBlocks("pkg/README.md")];

let redis;
const children = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  if (redis) await redis.stop();
});

test("the READMEs have their examples (a block removed is noticed)", () => {
  assert.deepEqual(
    blocks.map((b) => `${b.file}:${b.name}`),
    ["README.md:server.js", "pkg/README.md:server.mjs", "pkg/README.md:record.mjs"],
  );
});

for (const block of blocks) {
  test(`${block.file} ${block.name} runs as written: a client comes online, SIGTERM stops it cleanly`, async () => {
    if (!redis) redis = await startRedis();
    const dir = fs.mkdtempSync(path.join(APP, "readme-"));
    fs.writeFileSync(path.join(dir, block.name), block.code);
    const port = await freePort();
    const child = track(
      spawn(process.execPath, [block.name], {
        cwd: dir,
        env: { ...process.env, PORT: String(port), REDIS_URL: redis.url },
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    children.push(child);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    let socket;
    await waitFor(
      async () => {
        assert.equal(child.exitCode, null, `the program is still running; it printed: ${out}`);
        socket = await connect(`http://127.0.0.1:${port}`, { userId: "alice" });
      },
      { timeout: 30000, interval: 100, what: `${block.name} accepts a client` },
    );
    await waitFor(() => assert.match(out, /online alice/), { timeout: 15000, what: `${block.name} prints "online alice"` });
    socket.close();
    child.kill("SIGTERM");
    const { code, signal } = await Promise.race([
      exited,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${block.name} did not exit on SIGTERM: ${out}`)), 20000)),
    ]);
    assert.equal(signal, null, out);
    assert.equal(code, 0, `exit status; it printed: ${out}`);
    assert.doesNotMatch(out, /Error|warn/i, "nothing went wrong on the way");
    if (block.name === "record.mjs") {
      const trace = fs.readFileSync(path.join(dir, "rollcall.trace.jsonl"), "utf8");
      assert.match(trace.split("\n")[0], /"rollcall_trace":1/, "the trace starts with its header");
      assert.match(trace, /"user":"alice"/, "and holds alice's connect");
      assert.ok(fs.statSync(path.join(dir, "rollcall.out.jsonl")).size > 0, "the output is recorded too");
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
}
