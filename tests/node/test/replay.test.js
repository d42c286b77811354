"use strict";
// Record and replay through the installed package:
// - `npx rollcall-replay` (the tarball's bin) replays every golden trace of
//   tests/traces/ to its committed output, byte for byte, and fails on the
//   malformed ones with the core's message (`trace line N: ...`);
// - traces recorded live (`trace` + `traceOutput` options) by a server of a
//   real cluster on a real redis-server (clients coming and going, rooms, a
//   kill -9 of the other server, which this one reaps, a clean close) and by
//   a single server (the in-process store's replies are inputs too) replay to
//   exactly the output recorded live.
// With ROLLCALL_TRACE_DIR set, the live traces are also copied there (for
// the Rust suite to replay with its engines).

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { PassThrough } = require("node:stream");
const {
  APP,
  requireRollcall,
  waitFor,
  startRedis,
  startNode,
  startServer,
  connect,
  room,
} = require("./helpers");

const { Presence, Replayer } = requireRollcall();
const TRACES = path.join(__dirname, "..", "..", "traces");
const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500 };

/** `npx rollcall-replay ...args` in the project that installed the tarball. */
function cli(args) {
  const r = spawnSync("npx", ["--no", "--loglevel=error", "rollcall-replay", ...args], {
    cwd: APP,
    encoding: "utf8",
    timeout: 60000,
    killSignal: "SIGKILL",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return r;
}

function tmpDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollcall-replay-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Keeps a live trace for the Rust suite when ROLLCALL_TRACE_DIR is set. */
function keep(name, trace, output) {
  const dir = process.env.ROLLCALL_TRACE_DIR;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(trace, path.join(dir, `${name}.trace.jsonl`));
  fs.writeFileSync(path.join(dir, `${name}.out.jsonl`), fs.readFileSync(output));
}

/** The inputs of a trace by type, and the events of its output by type. */
function census(trace, output) {
  const inputs = {};
  for (const line of trace.split("\n").slice(1, -1)) {
    const type = JSON.parse(line).input.type;
    inputs[type] = (inputs[type] || 0) + 1;
  }
  const events = {};
  for (const line of output.split("\n").slice(0, -1)) {
    for (const e of JSON.parse(line).events || []) events[e.type] = (events[e.type] || 0) + 1;
  }
  return { inputs, events };
}

/**
 * The recorded trace replays with `npx rollcall-replay` to exactly the live
 * output; the trace is well formed (a header, one line per step).
 */
function assertReplaysToLive(tracePath, outputPath) {
  const trace = fs.readFileSync(tracePath, "utf8");
  const live = fs.readFileSync(outputPath, "utf8");
  assert.ok(trace.endsWith("\n") && live.endsWith("\n"));
  const header = JSON.parse(trace.slice(0, trace.indexOf("\n")));
  assert.equal(header.rollcall_trace, 1);
  assert.equal(trace.split("\n").length - 2, live.split("\n").length - 1, "one output line per input line");
  const r = cli([tracePath, "--expect", outputPath]);
  assert.equal(r.stderr, "");
  assert.equal(r.status, 0);
  assert.ok(r.stdout === live, "the replay printed exactly the live output");
  return census(trace, live);
}

describe("rollcall-replay (the installed bin) and the golden traces", () => {
  test("every golden trace replays to its committed output, byte for byte", (t) => {
    const names = fs.readdirSync(TRACES).filter((f) => f.endsWith(".trace.jsonl"));
    assert.ok(names.length >= 7, `${names.length} golden traces`);
    const dir = tmpDir(t);
    for (const name of names) {
      const trace = path.join(TRACES, name);
      const expected = path.join(TRACES, name.replace(".trace.", ".out."));
      const r = cli([trace]);
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
      assert.ok(r.stdout === fs.readFileSync(expected, "utf8"), `${name}: the output differs from the golden one`);
      if (name !== names[0]) continue;
      // --out writes the same bytes; --expect agrees.
      const out = path.join(dir, name);
      const w = cli([trace, "--out", out, "--expect", expected]);
      assert.equal(w.status, 0, `${name}: ${w.stderr}`);
      assert.equal(w.stdout, "");
      assert.ok(fs.readFileSync(out).equals(fs.readFileSync(expected)), `${name}: --out`);
    }
  });

  test("malformed traces exit 1 with the core's message naming the line", () => {
    const dir = path.join(TRACES, "malformed");
    const names = fs.readdirSync(dir).filter((f) => f.endsWith(".jsonl"));
    assert.ok(names.length >= 5);
    for (const name of names) {
      const file = path.join(dir, name);
      const want = fs.readFileSync(path.join(dir, name.replace(/\.jsonl$/, ".err")), "utf8").trim();
      assert.match(want, /^trace line \d+: /);
      const r = cli([file]);
      assert.equal(r.status, 1, name);
      assert.equal(r.stdout, "", name);
      assert.equal(r.stderr, `rollcall-replay: ${file}: ${want}\n`, name);
    }
  });

  test("lines split as the core splits them; differences and usage errors", (t) => {
    const dir = tmpDir(t);
    const golden = fs.readFileSync(path.join(TRACES, "quiet_day.trace.jsonl"), "utf8");
    const expected = path.join(TRACES, "quiet_day.out.jsonl");
    const write = (name, text) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, text);
      return file;
    };
    // CRLF line ends, and no newline after the last line: the same output.
    for (const variant of [golden.replace(/\n/g, "\r\n"), golden.replace(/\n$/, "")]) {
      const r = cli([write("variant.jsonl", variant), "--expect", expected]);
      assert.equal(r.status, 0, r.stderr);
    }
    // An empty line is a line: it is reported with its number.
    const lines = golden.split("\n");
    const blank = write("blank.jsonl", [...lines.slice(0, 3), "", ...lines.slice(3)].join("\n"));
    let r = cli([blank]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^rollcall-replay: .*blank\.jsonl: trace line 4: EOF while parsing/);
    r = cli([write("empty.jsonl", "")]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /: trace line 1: the trace is empty\n$/);

    // A different expected output: exit 1, naming the first differing line.
    const want = fs.readFileSync(expected, "utf8").split("\n");
    want[4] = want[4].replace("next_tick", "next_tock");
    r = cli([path.join(TRACES, "quiet_day.trace.jsonl"), "--expect", write("want.jsonl", want.join("\n"))]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /output differs from .*want\.jsonl at output line 5\n$/);
    r = cli([path.join(TRACES, "quiet_day.trace.jsonl"), "--expect", write("short.jsonl", want.slice(0, 3).join("\n"))]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /at output line 4\n$/); // as the native CLI counts: the line after the shorter ends

    // Usage errors exit 2.
    for (const args of [[], ["a", "b"], ["--bogus", "x"], [blank, "--out"], ["/no/such/trace.jsonl"]]) {
      r = cli(args);
      assert.equal(r.status, 2, `${JSON.stringify(args)}: ${r.stderr}`);
      assert.match(r.stderr, /^rollcall-replay: /);
    }
    r = cli(["--help"]);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^usage: rollcall-replay TRACE/);
  });

  test("the Replayer class steps a trace line by line", () => {
    const trace = fs.readFileSync(path.join(TRACES, "crash_and_reap.trace.jsonl"), "utf8").split("\n");
    const expected = fs.readFileSync(path.join(TRACES, "crash_and_reap.out.jsonl"), "utf8").split("\n");
    const r = new Replayer(trace[0]);
    for (let i = 1; i < trace.length - 1; i++) assert.equal(r.step(trace[i]), expected[i - 1]);
    assert.throws(() => r.step("{}"), (e) => e.message === `trace line ${trace.length}: missing field \`at\` at line 1 column 2`);
    assert.throws(() => new Replayer("{"), /^Error: trace line 1: bad header: /);
  });
});

describe("a trace recorded by a live server of a cluster (real redis-server)", () => {
  let redis;
  const nodes = [];
  const sockets = [];
  let dir;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollcall-live-"));
    redis = await startRedis();
  });

  after(async () => {
    for (const s of sockets) s.close();
    for (const n of nodes) if (n.alive) n.child.kill("SIGKILL");
    if (redis) await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("replays to exactly the operations and events it produced live", async () => {
    const trace = path.join(dir, "node-cluster.trace.jsonl");
    const output = path.join(dir, "node-cluster.out.jsonl");
    const recorder = await startNode(0, {
      redisUrl: redis.url,
      timings: TIMINGS,
      env: { TRACE: trace, TRACE_OUTPUT: output },
    });
    nodes.push(recorder);
    const victim = await startNode(1, { redisUrl: redis.url, timings: TIMINGS });
    nodes.push(victim);

    const open = async (node, userId, ns = "/") => {
      const s = await connect(node.url, { userId, ns });
      sockets.push(s);
      return s;
    };
    // Users on the recorder (tabs, namespaces, rooms, anonymous), on the
    // victim only, and on both.
    const ann = [await open(recorder, "ann"), await open(recorder, "ann", "/chat")];
    const bob = await open(recorder, "bob");
    await open(recorder, undefined);
    await room(ann[0], "lobby");
    await room(bob, "lobby");
    await room(bob, "news");
    await open(victim, "vic");
    await open(victim, "val");
    await open(victim, "ann");
    await room(await open(victim, "cat"), "lobby");
    await room(bob, "news", "leave");
    ann[1].close();
    const users = ["ann", "bob", "cat", "val", "vic"];
    await waitFor(async () => assert.deepEqual((await recorder.counts([])).list, users), {
      what: "the recorder sees every user",
    });

    // kill -9 the other server: the recorder reaps it.
    victim.child.kill("SIGKILL");
    await waitFor(() => recorder.events.some((e) => e.event === "reaped" && e.node === victim.nodeId), {
      what: "the recorder reaps the killed server",
    });
    await waitFor(async () => assert.deepEqual((await recorder.counts([])).list, ["ann", "bob"]), {
      what: "counts after the reap",
    });
    // More life after the reap, then a clean close.
    await open(recorder, "dan");
    bob.close();
    await waitFor(async () => assert.deepEqual((await recorder.counts([])).list, ["ann", "dan"]), {
      what: "counts after the reap",
    });
    await recorder.ask("close", {}, 10000);
    await waitFor(() => !recorder.alive, { what: "the recorder exits" });

    keep("node-cluster", trace, output);
    const { inputs, events } = assertReplaysToLive(trace, output);
    for (const type of ["tick", "reply", "connect", "disconnect", "join", "leave", "client_open", "client_close", "shutdown"]) {
      assert.ok(inputs[type] > 0, `the trace has ${type} inputs: ${JSON.stringify(inputs)}`);
    }
    assert.equal(events.node_reaped, 1, JSON.stringify(events));
    assert.ok(events.user_offline > 0 && events.user_online > 0 && events.closed === 1, JSON.stringify(events));
    const live = fs.readFileSync(output, "utf8");
    for (const user of ["vic", "val", "cat"]) {
      assert.ok(live.includes(`"scope":{"kind":"global"},"user":"${user}","reason":"reaped"`), user);
    }

    // The replies are what make it reproducible: a trace missing one does
    // not replay to the live output.
    const lines = fs.readFileSync(trace, "utf8").split("\n");
    const reply = lines.findIndex((l, i) => i > 0 && l.includes('"type":"reply"'));
    const cut = path.join(dir, "cut.jsonl");
    fs.writeFileSync(cut, lines.filter((_, i) => i !== reply).join("\n"));
    const r = cli([cut, "--expect", output]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /output differs/);
  });
});

describe("a trace recorded by a single server (the in-process store)", () => {
  test("replays to exactly the live output; streams passed in stay open", async (t) => {
    const dir = tmpDir(t);
    const server = await startServer();
    const sockets = [];
    t.after(async () => {
      for (const s of sockets) s.close();
      await server.close();
    });
    const open = async (userId, ns = "/") => {
      const s = await connect(server.url, { userId, ns });
      sockets.push(s);
      return s;
    };
    // Sockets connected before attach are inputs too.
    const early = await open("ann");
    await room(early, "lobby");

    const trace = path.join(dir, "node-single.trace.jsonl");
    const output = path.join(dir, "node-single.out.jsonl");
    const stream = new PassThrough();
    let live = "";
    stream.setEncoding("utf8");
    stream.on("data", (d) => {
      live += d;
    });
    const presence = await Presence.attach(server.io, { ...TIMINGS, graceMs: 100, trace, traceOutput: stream });
    const online = [];
    presence.on("user connected", (u) => online.push(u));
    presence.on("user disconnected", (u) => online.push(`-${u}`));

    const bob = [await open("bob"), await open("bob", "/chat")];
    await room(bob[0], "news");
    await open(undefined);
    await room(bob[0], "news", "leave");
    bob[1].close();
    early.close();
    await waitFor(async () => assert.deepEqual(await presence.usersList(), ["bob"]), { what: "ann goes" });
    // A burst of connects coalesces into one write of the store.
    await Promise.all(["c1", "c2", "c3"].map((u) => open(u)));
    await waitFor(async () => assert.equal(await presence.usersCount(), 4), { what: "the burst is in" });
    // Past a heartbeat: ticks and the lease renewal are recorded.
    await waitFor(() => live.split("\n").length > 40 && online.includes("-ann"), {
      what: "a few ticks",
      timeout: 10000,
    });
    await presence.close();

    assert.equal(stream.writableEnded, false, "a stream passed in is not ended");
    const out = path.join(dir, "live.out.jsonl");
    fs.writeFileSync(out, live);
    keep("node-single", trace, out);
    const { inputs, events } = assertReplaysToLive(trace, out);
    for (const type of ["tick", "reply", "connect", "disconnect", "join", "leave", "client_open", "shutdown"]) {
      assert.ok(inputs[type] > 0, `the trace has ${type} inputs: ${JSON.stringify(inputs)}`);
    }
    assert.equal(events.closed, 1);
    assert.ok(!fs.existsSync(output));

    // Nothing is written after close.
    const size = fs.statSync(trace).size;
    await open("late");
    assert.equal(fs.statSync(trace).size, size);
  });

  test("a recording that fails to write warns once and never stops the server", async (t) => {
    const server = await startServer();
    const sockets = [];
    t.after(async () => {
      for (const s of sockets) s.close();
      await server.close();
    });
    const warnings = [];
    const onWarning = (w) => {
      if (w.name === "RollcallWarning") warnings.push(w.message);
    };
    process.on("warning", onWarning);
    t.after(() => process.off("warning", onWarning));
    const { Writable } = require("node:stream");
    const broken = new Writable({
      write(chunk, encoding, callback) {
        callback(new Error("disk full"));
      },
    });
    const presence = await Presence.attach(server.io, { ...TIMINGS, trace: broken });
    for (const u of ["ann", "bob"]) sockets.push(await connect(server.url, { userId: u }));
    await waitFor(async () => assert.deepEqual(await presence.usersList(), ["ann", "bob"]), { what: "counts" });
    await waitFor(() => assert.equal(warnings.length, 1), { what: "one warning" });
    assert.match(warnings[0], /^rollcall: recording trace failed, the trace is incomplete: disk full$/);
    await presence.close();
    assert.equal(warnings.length, 1);
  });

  test("trace options are checked: TypeError naming the option, a bad path throws", async (t) => {
    const dir = tmpDir(t);
    const server = await startServer();
    t.after(() => server.close());
    const io = server.io;
    const ended = new PassThrough();
    ended.end();
    const cases = [
      [{ trace: 42 }, /^rollcall: trace must be a file path or a writable stream/],
      [{ trace: "" }, /^rollcall: trace must be a file path or a writable stream, got an empty string/],
      [{ trace: {} }, /^rollcall: trace must be/],
      [{ trace: path.join(dir, "t"), traceOutput: true }, /^rollcall: traceOutput must be/],
      [{ traceOutput: path.join(dir, "o") }, /^rollcall: traceOutput needs trace/],
      [{ trace: path.join(dir, "t"), traceOutput: path.join(dir, "t") }, /^rollcall: traceOutput must not be the same as trace/],
      [{ trace: ended }, /^rollcall: trace is a stream that has already ended/],
    ];
    for (const [options, pattern] of cases) {
      assert.throws(
        () => Presence.attach(io, options),
        (e) => e instanceof TypeError && pattern.test(e.message),
        JSON.stringify(options),
      );
    }
    const missing = path.join(dir, "no", "such", "dir", "t.jsonl");
    assert.throws(
      () => Presence.attach(io, { trace: missing }),
      (e) => !(e instanceof TypeError) && e.message.startsWith(`rollcall: cannot record trace to ${missing}: ENOENT`),
    );
    // A failed attach leaves nothing behind: a good one works after it.
    const okTrace = path.join(dir, "ok.jsonl");
    const p = await Presence.attach(io, { trace: okTrace, traceOutput: path.join(dir, "ok.out.jsonl") });
    await p.close();
    assert.equal(cli([okTrace, "--expect", path.join(dir, "ok.out.jsonl")]).status, 0);
    assert.equal(io.sockets.listenerCount("new_namespace"), 0);
  });
});
