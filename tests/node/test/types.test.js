"use strict";
// The package's types, checked as installed from its tarball: its
// JavaScript (lib/*.js, index.js, the replay bin) with tsc --checkJs
// --strict, and index.d.ts against that implementation.

const { test } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { APP, requireRollcall } = require("./helpers");

const tsc = path.join(__dirname, "..", "node_modules", "typescript", "bin", "tsc");
const installed = path.join(APP, "node_modules", "rollcall");

const compilerOptions = {
  allowJs: true,
  checkJs: true,
  strict: true,
  noEmit: true,
  module: "nodenext",
  moduleResolution: "nodenext",
  target: "es2022",
  types: ["node"],
  skipLibCheck: false,
};

/** The package's own JavaScript, as shipped. */
function jsFiles(dir) {
  const lib = fs.readdirSync(path.join(dir, "lib")).filter((f) => f.endsWith(".js"));
  return ["index.js", path.join("bin", "rollcall-replay.js"), ...lib.map((f) => path.join("lib", f))].map((f) =>
    path.join(dir, f),
  );
}

/** Runs tsc over a project of `files`; returns its output, or throws with it. */
function check(name, files) {
  const dir = path.join(APP, name);
  fs.mkdirSync(dir, { recursive: true });
  const config = path.join(dir, "tsconfig.json");
  fs.writeFileSync(config, JSON.stringify({ compilerOptions, files }, null, 2));
  try {
    return execFileSync(process.execPath, [tsc, "-p", config], { encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    throw new Error(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
}

/**
 * A copy of the installed package outside node_modules (tsc does not check
 * JavaScript under node_modules), `edit` applied to its files.
 */
function copyPackage(name, edit = () => {}) {
  const dir = path.join(APP, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(installed, dir, { recursive: true });
  edit(dir);
  return dir;
}

test("the package's JavaScript type-checks (tsc --checkJs --strict)", () => {
  const dir = copyPackage("check-js");
  check("check-js", jsFiles(dir));
});

test("a type error in the package's JavaScript fails the check", () => {
  // An event emitted with an argument index.d.ts does not declare, and a
  // wrong argument to a core call.
  const dir = copyPackage("check-js-bad", (d) => {
    const file = path.join(d, "lib", "presence.js");
    const text = fs.readFileSync(file, "utf8");
    const bad = text.replace('this.#emit("user disconnected", e.user, e.reason, {', 'this.#emit("user disconnected", e.user, 42, {');
    assert.notEqual(bad, text, "the edit applies");
    fs.writeFileSync(file, bad);
  });
  assert.throws(() => check("check-js-bad", jsFiles(dir)), /presence\.js.*TS2345/s);
  const dir2 = copyPackage("check-js-bad2", (d) => {
    const file = path.join(d, "lib", "options.js");
    const text = fs.readFileSync(file, "utf8");
    const bad = text.replace("function checkId(value, what, numbers = false) {", "function checkId(value, what, numbers = false) {\n  tooLong(value);");
    assert.notEqual(bad, text, "the edit applies");
    fs.writeFileSync(file, bad);
  });
  assert.throws(() => check("check-js-bad2", jsFiles(dir2)), /options\.js.*TS2345/s);
});

// index.d.ts against the implementation (a copy of the installed package,
// whose JavaScript tsc reads): the declared Presence is what
// lib/presence.js gives (every method, its arguments and results, no
// method undeclared), and every event and option is used with its
// declared type.
const AGAINST = `import { Presence, Replayer, type PresenceEvents, type PresenceOptions, type OfflineReason, type ChangeInfo, type Where, type PresenceData, type Member, type SocketLike } from "rollcall";
import * as impl from "./check-impl/lib/presence.js";
import { Server } from "socket.io";

type Impl = impl.Presence;
type Public<T> = { [K in keyof T]: T[K] };

// The implementation is a declared Presence; attach() gives one.
const attach: (io: Server, options?: PresenceOptions) => Promise<Presence> = impl.Presence.attach;
const asDeclared = (p: Impl): Public<Presence> => p;
// Nothing public is undeclared, nothing declared is missing.
type Undeclared = Exclude<keyof Impl, keyof Presence>;
type Missing = Exclude<keyof Presence, keyof Impl>;
const none: [Undeclared, Missing] = [undefined as never, undefined as never];
const R: typeof Replayer = Replayer;

// Every event, with its declared arguments.
async function events(p: Presence): Promise<void> {
  p.on("user connected", (userId: string) => void userId);
  p.on("user disconnected", (userId: string, reason: OfflineReason) => void [userId, reason]);
  // The change id comes last: a repeat after a server died has the same.
  p.on("user connected", (userId: string, info: ChangeInfo) => void [userId, info.changeId]);
  p.on("user disconnected", (_u: string, _r: OfflineReason, { changeId }: ChangeInfo) => void changeId);
  p.on("user joined", (_u: string, where: Where, info: ChangeInfo) => void [where.room, info.changeId]);
  p.on("user left", (_u: string, _w: Where, _r: OfflineReason, info: ChangeInfo) => void info.changeId);
  p.on("user updated", (_u: string, data: PresenceData[], info: ChangeInfo) => void [data[0]?.status, info.changeId]);
  p.once("node reaped", (nodeId: string) => void nodeId);
  p.on("fenced", () => {});
  p.on("store error", (error: Error) => void error.message);
  p.on("warning", (message: string) => void message);
  p.on("user joined", (userId: string, where: Where) => void [userId, where.namespace, where.room]);
  p.on("user left", (userId: string, where: Where, reason: OfflineReason) => void [userId, where, reason]);
  const onUser = (userId: string) => void userId;
  p.off("user connected", onUser);
  p.prependListener("user disconnected", (_u, reason) => {
    const r: "disconnect" | "reaped" | "shutdown" = reason;
    void r;
  });
  const n: number = p.listenerCount("store error");
  const args: PresenceEvents["user disconnected"] = ["ann", "shutdown", { changeId: "n/1:7:0" }];
  void [n, args];
  // Every option, with its type.
  const registry = new (class { registerMetric(_metric: object): void {} })();
  const all: Required<PresenceOptions> = {
    redis: null, userId: (s) => s.id, rooms: (room) => room.length > 0, prefix: "p", ttlMs: 1, heartbeatMs: 1, reapMs: 1, graceMs: 1,
    reapSlice: 1, retryMs: 1, maxWriteFields: 1, changesMaxLen: 1, lastSeenMs: 1, maxDataBytes: 1, opTimeoutMs: 1, nodeId: "n",
    trace: "t", traceOutput: "o", metricsRegistry: registry,
  };
  const text: Promise<string> = p.metrics();
  void text;
  const seen: Promise<number | null> = p.lastSeen("ann");
  void seen;
  // Data: an object of the app's own interface type, or null to remove it.
  interface Status { status: string; device?: string }
  const status: Status = { status: "away" };
  const socket = {} as SocketLike;
  const set: Promise<void> = p.setData(socket, status);
  const unset: Promise<void> = p.setData(socket, null);
  const page = await p.members({ room: "lobby" });
  const member: Member = page.members[0];
  const memberData: PresenceData[] = member.data;
  void [set, unset, memberData];
  const watchAll = async () => {
    for await (const c of p.watch({ from: "0-0" })) {
      const kind: "online" | "offline" | "joined" | "left" | "updated" = c.type;
      const changed: PresenceData[] | undefined = c.data;
      const where: [string | undefined, string | undefined] = [c.namespace, c.room];
      const why: OfflineReason | undefined = c.reason;
      const ids: [string, string, string, number] = [c.id, c.changeId, c.nodeId, c.at];
      void [kind, changed, where, why, ids, c.userId];
      break;
    }
  };
  void watchAll;
  void all;
}
void [attach, asDeclared, none, R, events];
`;

test("index.d.ts matches the implementation, every event and option typed", () => {
  copyPackage("check-impl");
  fs.writeFileSync(path.join(APP, "against.ts"), AGAINST);
  check("check-dts", [path.join(APP, "against.ts")]);
});

test("every option index.d.ts declares is one the implementation knows, and no other", () => {
  const { Presence } = requireRollcall();
  const { Server } = require(require.resolve("socket.io", { paths: [path.join(__dirname, "..")] }));
  let known;
  try {
    Presence.attach(new Server(), { "not an option": 1 });
  } catch (e) {
    known = /\(known: (.*)\)$/.exec(e.message)[1].split(", ");
  }
  assert.ok(known, "attach() throws for an unknown option");
  const declared = /const all: Required<PresenceOptions> = \{([^}]*)\}/
    .exec(AGAINST)[1]
    .split(",")
    .map((f) => f.trim().split(":")[0])
    .filter(Boolean);
  assert.deepEqual([...declared].sort(), [...known].sort());
  // The declared interface has exactly these keys: the check above compiles
  // \`Required<PresenceOptions>\` with them, and an extra one fails it.
  copyPackage("check-impl");
  const extra = AGAINST.replace("traceOutput: \"o\",", "traceOutput: \"o\", bogus: 1,");
  fs.writeFileSync(path.join(APP, "against.ts"), extra);
  assert.throws(() => check("check-dts", [path.join(APP, "against.ts")]), /TS2353|TS2322/);
  fs.writeFileSync(path.join(APP, "against.ts"), AGAINST);
});

test("a wrongly typed listener fails the check", () => {
  const file = path.join(APP, "against-bad.ts");
  fs.writeFileSync(
    file,
    `import { Presence } from "rollcall";\n` +
      `declare const p: Presence;\n` +
      `p.on("user disconnected", (userId: string, reason: number) => void [userId, reason]);\n`,
  );
  assert.throws(() => check("check-dts-bad", [file]), /TS2345|TS2769/);
  fs.writeFileSync(file, `import { Presence } from "rollcall";\ndeclare const p: Presence;\np.on("user conected", () => {});\n`);
  assert.throws(() => check("check-dts-bad", [file]), /TS2345|TS2769/);
});
