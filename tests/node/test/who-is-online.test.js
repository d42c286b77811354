"use strict";
// The live "who is online" page (examples/who-is-online) in a real browser:
// headless Chromium (Debian's /usr/bin/chromium, installed by
// tests/setup.sh) driven by playwright-core through its executable path.
// start.js starts the cluster as a user would (`--redis URL`): two Node
// servers (the package from its tarball) and the Rust server
// (host/examples/who_is_online.rs) on a real redis-server. Pages of
// different users on different servers join and leave rooms, change their
// status, close a tab, reload within the grace period (the member never
// leaves the other pages: sampled while it happens) and lose their server
// to kill -9 (its users leave every page within TTL + reap interval).
// Assertions read the DOM; screenshots for a person go to
// tests/node/screenshots/who-is-online/ (ignored by git).

const { describe, test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");
const readline = require("node:readline");
const { execFileSync, spawn } = require("node:child_process");
const { APP, waitFor, startRedis, track } = require("./helpers");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ROOT = path.resolve(__dirname, "..", "..", "..");
const EXAMPLE = path.join(ROOT, "examples", "who-is-online");
const SHOTS = path.join(__dirname, "..", "screenshots", "who-is-online");
const TIMINGS = { ttlMs: 2000, heartbeatMs: 500, reapMs: 500, graceMs: 3000 };
const SLOW = { timeout: 20000, interval: 50 };

const skip = fs.existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM} (bash tests/setup.sh installs Debian's chromium; CHROMIUM=path for another)`;
if (skip) console.error(`who-is-online: skipped: ${skip}`);

/** A copy of the example in the app that installed the tarball, so it requires that rollcall. */
function copyExample() {
  const dir = path.join(APP, "who-is-online");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(EXAMPLE, dir, {
    recursive: true,
    filter: (src) => !/node_modules|package-lock\.json/.test(path.relative(EXAMPLE, src)),
  });
  // No package.json: its packages come from the test app and tests/node.
  fs.rmSync(path.join(dir, "package.json"), { force: true });
  return dir;
}

/** The Rust server, built with cargo (a no-op after `cargo test --workspace`). */
function rustServer() {
  execFileSync("cargo", ["build", "--quiet", "-p", "rollcall-host", "--example", "who_is_online"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target");
  return path.join(target, "debug", "examples", "who_is_online");
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A first port with the next two free as well (start.js takes three in a row). */
async function threeFreePorts() {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    if ((await portFree(base)) && (await portFree(base + 1)) && (await portFree(base + 2))) return base;
  }
  throw new Error("no three free ports in a row");
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Bounded: a promise or an error after `ms`. */
function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no end after ${ms} ms`)), ms))),
  ]);
}

/** Opens `user`'s page at `url` in a context of its own; resolves once it shows the presence. */
async function openPage(browser, user, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 640 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[page ${user}] ${e.message}`));
  await page.goto(url);
  await waitFor(
    async () => {
      const v = await page.evaluate(() => ({
        connection: document.body.dataset.connection,
        refreshes: Number(document.body.dataset.refreshes),
        error: document.getElementById("error").hidden ? null : document.getElementById("error").textContent,
      }));
      if (v.connection !== "connected" || v.refreshes === 0) throw new Error(`it shows ${JSON.stringify(v)}`);
    },
    { ...SLOW, what: `${user}'s page connects and shows the presence` },
  );
  return page;
}

describe("the who-is-online page in a real browser: 2 Node + 1 Rust server on one Redis", { skip }, () => {
  let redis;
  let starter; // start.js
  let starterExit;
  let output = "";
  const servers = {}; // index -> { kind, url, pid }
  let browser;
  const pages = {}; // user -> page

  before(async () => {
    const { chromium } = require("playwright-core");
    const dir = copyExample();
    const bin = rustServer();
    redis = await startRedis();
    const port = await threeFreePorts();
    const args = [
      path.join(dir, "start.js"),
      "--redis", redis.url,
      "--port", String(port),
      "--ttl-ms", String(TIMINGS.ttlMs),
      "--heartbeat-ms", String(TIMINGS.heartbeatMs),
      "--reap-ms", String(TIMINGS.reapMs),
      "--grace-ms", String(TIMINGS.graceMs),
      "--rust-bin", bin,
    ];
    // Its own process group: the after hook can end it and its servers at once.
    starter = track(spawn(process.execPath, args, { cwd: dir, detached: true, stdio: ["ignore", "pipe", "pipe"] }));
    starterExit = new Promise((resolve) => starter.once("exit", (code, signal) => resolve({ code, signal })));
    starter.stderr.on("data", (d) => (output += d));
    const ready = new Promise((resolve, reject) => {
      starter.once("exit", (code, signal) => reject(new Error(`start.js exited (${signal || code}):\n${output}`)));
      readline.createInterface({ input: starter.stdout }).on("line", (line) => {
        output += `${line}\n`;
        const m = /^server (\d) (node|rust) (http:\/\/\S+) pid (\d+)/.exec(line);
        if (m) servers[m[1]] = { kind: m[2], url: m[3], pid: Number(m[4]) };
        if (line === "Ctrl-C stops all.") resolve();
      });
    });
    await within(60000, ready, `start.js printing its servers; it printed:\n${output}`);
    assert.deepEqual(
      Object.values(servers).map((s) => s.kind),
      ["node", "node", "rust"],
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    fs.mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    if (browser) await within(10000, browser.close(), "closing the browser").catch((e) => console.error(e.message));
    // Whatever is still running of the cluster, by the ids it printed.
    for (const s of Object.values(servers)) if (alive(s.pid)) process.kill(s.pid, "SIGKILL");
    if (starter && starter.exitCode === null && starter.signalCode === null) {
      try {
        process.kill(-starter.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    if (redis) await redis.stop();
  });

  // --- reading the pages -------------------------------------------------

  async function open(user, url) {
    pages[user] = await openPage(browser, user, url);
    return pages[user];
  }

  /** What a page shows: its server, rooms with counts, the current room's members with their statuses. */
  function view(page) {
    return page.evaluate(() => ({
      server: document.getElementById("server-label").textContent,
      room: document.body.dataset.room,
      connection: document.body.dataset.connection,
      counts: Object.fromEntries(
        [...document.querySelectorAll("#room-list li")].map((li) => [li.dataset.room, Number(li.dataset.count)]),
      ),
      members: Object.fromEntries(
        [...document.querySelectorAll("#members .member")].map((li) => [li.dataset.user, li.dataset.status]),
      ),
      log: [...document.querySelectorAll("#log li")].map((li) => ({ type: li.dataset.type, user: li.dataset.user, reason: li.dataset.reason })),
    }));
  }

  /** Waits until `check(view)` holds on every page of `users` (it throws or returns false until then). */
  async function until(users, check, what, opts = SLOW) {
    return waitFor(
      async () => {
        for (const user of users) {
          const v = await view(pages[user]);
          try {
            if (check(v, user) === false) throw new Error("not yet");
          } catch (e) {
            e.message = `${user}'s page: ${e.message}; it shows ${JSON.stringify({ ...v, log: undefined })}`;
            throw e;
          }
        }
        return true;
      },
      { ...opts, what },
    );
  }

  async function enter(user, room) {
    await pages[user].click(`#room-list li[data-room="${room}"] button`);
    await waitFor(() => pages[user].evaluate((r) => document.body.dataset.room === r, room), { ...SLOW, what: `${user} in #${room}` });
  }

  async function shoot(name) {
    await Promise.all(
      Object.entries(pages)
        .filter(([, page]) => !page.isClosed())
        .map(([user, page]) => page.screenshot({ path: path.join(SHOTS, `${name}-${user}.png`) })),
    );
  }

  const lobbyOf = (users, status = {}) => Object.fromEntries(users.map((u) => [u, status[u] || "online"]));

  // --- the tests ---------------------------------------------------------

  test("pages on the three servers (picked by ?server=N) show each other, their data and the counts", { timeout: 60000 }, async () => {
    const [one, two, three] = [servers[1].url, servers[2].url, servers[3].url];
    await open("alice", `${one}/?user=alice`);
    await open("bob", `${one}/?user=bob&server=2`); // sent on to server 2
    await open("carol", `${one}/?user=carol&server=3`); // to the Rust server
    await open("dave", `${three}/?user=dave`);
    await open("erin", `${two}/?user=erin`);
    assert.equal(new URL(pages.bob.url()).origin, two, "?server=2 took bob's page to server 2");
    assert.equal(new URL(pages.carol.url()).origin, three, "?server=3 took carol's page to the Rust server");
    assert.equal((await view(pages.alice)).server, "node-1 (node)");
    assert.equal((await view(pages.bob)).server, "node-2 (node)");
    assert.equal((await view(pages.carol)).server, "rust-3 (rust)");

    const everyone = ["alice", "bob", "carol", "dave", "erin"];
    for (const user of everyone) await enter(user, "lobby");
    await until(
      everyone,
      (v) => {
        assert.deepEqual(v.members, lobbyOf(everyone));
        assert.deepEqual(v.counts, { lobby: 5, design: 0, ops: 0, random: 0 });
      },
      "the five in the lobby on every page",
    );
    // The members' names come from their data ({ name, status }).
    const names = await pages.carol.$$eval("#members .member .name", (els) => els.map((e) => e.textContent));
    assert.deepEqual(names, everyone);

    const metrics = await (await fetch(`${one}/metrics`)).text();
    assert.match(metrics, /^rollcall_cluster_users 5$/m, "server 1's /metrics counts the cluster");
    await shoot("1-lobby");
  });

  test("joining and leaving rooms shows on the other pages", { timeout: 60000 }, async () => {
    await pages.bob.click("#leave");
    await until(
      ["alice", "carol", "erin"],
      (v) => {
        assert.deepEqual(v.members, lobbyOf(["alice", "carol", "dave", "erin"]));
        assert.equal(v.counts.lobby, 4);
      },
      "bob left the lobby",
    );
    await until(["bob"], (v) => assert.equal(v.room, ""), "bob's page is in no room");

    await enter("bob", "design");
    await enter("dave", "design"); // dave (Rust) leaves the lobby for design
    await until(["bob", "dave"], (v) => assert.deepEqual(v.members, lobbyOf(["bob", "dave"])), "bob and dave in #design");
    await until(
      ["alice", "carol", "erin"],
      (v) => {
        assert.deepEqual(v.members, lobbyOf(["alice", "carol", "erin"]));
        assert.deepEqual(v.counts, { lobby: 3, design: 2, ops: 0, random: 0 });
      },
      "the lobby without bob and dave, #design with two",
    );
    await shoot("2-design");

    await enter("bob", "lobby");
    await enter("dave", "lobby");
    await until(
      ["alice", "bob", "carol", "dave", "erin"],
      (v) => {
        assert.deepEqual(v.members, lobbyOf(["alice", "bob", "carol", "dave", "erin"]));
        assert.deepEqual(v.counts, { lobby: 5, design: 0, ops: 0, random: 0 });
      },
      "everyone back in the lobby",
    );
  });

  test("a status changed on one page shows on the pages of every server", { timeout: 60000 }, async () => {
    await pages.alice.selectOption("#status", "away"); // on a Node server
    await pages.carol.selectOption("#status", "busy"); // on the Rust server
    await until(
      ["alice", "bob", "carol", "dave", "erin"],
      (v) => assert.deepEqual(v.members, lobbyOf(["alice", "bob", "carol", "dave", "erin"], { alice: "away", carol: "busy" })),
      "alice away and carol busy everywhere",
    );
    await pages.alice.selectOption("#status", "online");
    await until(["bob", "dave"], (v) => assert.equal(v.members.alice, "online"), "alice online again");
    await shoot("3-status");
  });

  /**
   * Reloads `user`'s page while the pages of `observers` sample, every few
   * ms and on every change of their member list, whether `user` is there,
   * until the grace period of the old socket is over.
   */
  async function reloadWithoutFlicker(user, observers, status) {
    const leavesBefore = {};
    for (const o of observers) {
      leavesBefore[o] = (await view(pages[o])).log.filter((e) => e.user === user && (e.type === "left" || e.type === "offline")).length;
      await pages[o].evaluate((watched) => {
        const list = document.getElementById("members");
        const s = { samples: 0, missing: 0, first: null, start: Date.now(), statuses: new Set() };
        const check = () => {
          s.samples++;
          const member = list.querySelector(`.member[data-user="${CSS.escape(watched)}"]`);
          if (!member) {
            s.missing++;
            s.first ??= Date.now() - s.start;
          } else s.statuses.add(member.dataset.status);
        };
        s.timer = setInterval(check, 2);
        s.observer = new MutationObserver(check);
        s.observer.observe(list, { childList: true, subtree: true, attributes: true });
        window.__sampler = s;
      }, user);
    }
    const started = Date.now();
    await pages[user].reload();
    await waitFor(
      () =>
        pages[user].evaluate(
          () => document.body.dataset.connection === "connected" && document.body.dataset.room === "lobby" && Number(document.body.dataset.refreshes) > 0,
        ),
      { ...SLOW, what: `${user}'s page is back in the lobby` },
    );
    const reloadMs = Date.now() - started;
    assert.ok(reloadMs < TIMINGS.graceMs, `the reload took ${reloadMs} ms, within the grace period`);
    // Sampled on until the old socket's grace period is over and a second more.
    await waitFor(() => Date.now() - started > TIMINGS.graceMs + 1000, { ...SLOW, what: "the grace period to end" });
    for (const o of observers) {
      const s = await pages[o].evaluate(() => {
        const s = window.__sampler;
        clearInterval(s.timer);
        s.observer.disconnect();
        return { samples: s.samples, missing: s.missing, first: s.first, ms: Date.now() - s.start, statuses: [...s.statuses] };
      });
      assert.equal(s.missing, 0, `${o}'s page lost ${user} in ${s.missing} of ${s.samples} samples (first after ${s.first} ms)`);
      assert.deepEqual(s.statuses, [status], `the statuses of ${user} that ${o}'s page showed meanwhile`);
      assert.ok(s.samples >= 100, `${o}'s page sampled ${s.samples} times in ${s.ms} ms`);
      const v = await view(pages[o]);
      assert.equal(v.members[user], status, `${user}'s status on ${o}'s page after the reload`);
      const leaves = v.log.filter((e) => e.user === user && (e.type === "left" || e.type === "offline")).length;
      assert.equal(leaves, leavesBefore[o], `no 'left' or 'offline' of ${user} reached ${o}'s page`);
    }
  }

  test("a reload within the grace period: the member never leaves the other pages (a Node server's page)", { timeout: 60000 }, async () => {
    await reloadWithoutFlicker("bob", ["alice", "carol"], "online");
  });

  test("a reload within the grace period on the Rust server: no flicker, the status kept", { timeout: 60000 }, async () => {
    await reloadWithoutFlicker("carol", ["alice", "bob"], "busy");
    await shoot("4-reloaded");
  });

  test("closing a tab: the user leaves the other pages once the grace period is over", { timeout: 60000 }, async () => {
    const closed = Date.now();
    await pages.erin.close();
    await until(
      ["alice", "bob", "carol"],
      (v) => {
        assert.deepEqual(v.members, lobbyOf(["alice", "bob", "carol", "dave"], { carol: "busy" }));
        assert.equal(v.counts.lobby, 4);
        assert.ok(v.log.some((e) => e.type === "offline" && e.user === "erin" && e.reason === "disconnect"), "the log says erin went offline");
      },
      "erin gone from every page",
    );
    const took = Date.now() - closed;
    assert.ok(took >= TIMINGS.graceMs - 500, `erin left after ${took} ms: not before her grace period`);
    delete pages.erin;
  });

  test("kill -9 the Rust server: its users leave every page within TTL + reap interval", { timeout: 60000 }, async () => {
    const rust = servers[3];
    const killed = Date.now();
    process.kill(rust.pid, "SIGKILL");
    const took = await until(
      ["alice", "bob"],
      (v) => {
        assert.deepEqual(v.members, lobbyOf(["alice", "bob"]));
        assert.equal(v.counts.lobby, 2);
        for (const user of ["carol", "dave"]) {
          assert.ok(v.log.some((e) => e.type === "offline" && e.user === user && e.reason === "reaped"), `the log says ${user} was reaped`);
        }
      },
      "carol and dave (the Rust server's users) gone from the Node servers' pages",
    ).then(() => Date.now() - killed);
    const bound = TIMINGS.ttlMs + TIMINGS.reapMs + 3000; // + slack for a loaded machine and the page's round trip
    assert.ok(took <= bound, `gone after ${took} ms (bound ${bound})`);
    await until(["carol", "dave"], (v) => assert.equal(v.connection, "disconnected"), "the Rust server's pages see it gone");
    await shoot("5-rust-killed");
    await waitFor(() => output.includes("rust-3 exited (SIGKILL); the others go on"), { ...SLOW, what: `start.js reports the kill; it printed:\n${output}` });
  });

  test("Ctrl-C on start.js stops the servers cleanly", { timeout: 60000 }, async () => {
    const others = [servers[1], servers[2]];
    const left = Date.now();
    starter.kill("SIGINT");
    // The Node servers leave cleanly: the pages lose them, start.js exits 0.
    const { code, signal } = await within(30000, starterExit, `start.js after SIGINT; it printed:\n${output}`);
    assert.equal(signal, null, output);
    assert.equal(code, 0, `start.js's exit status; it printed:\n${output}`);
    for (const s of others) assert.equal(alive(s.pid), false, `server ${s.url} is gone`);
    assert.match(output, /stopping the servers/);
    assert.ok(Date.now() - left < 30000);
  });
});

describe("the who-is-online page on one server (start.js without --redis: the embedded store)", { skip }, () => {
  let starter;
  let browser;
  let output = "";
  let pid = null;

  after(async () => {
    if (browser) await within(10000, browser.close(), "closing the browser").catch((e) => console.error(e.message));
    if (pid && alive(pid)) process.kill(pid, "SIGKILL");
    if (starter && starter.exitCode === null && starter.signalCode === null) {
      try {
        process.kill(-starter.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  });

  test("two users see each other in a room, /metrics counts them, Ctrl-C stops it", { timeout: 60000 }, async () => {
    const { chromium } = require("playwright-core");
    const dir = copyExample();
    const port = await threeFreePorts();
    starter = track(
      spawn(process.execPath, [path.join(dir, "start.js"), "--port", String(port)], { cwd: dir, detached: true, stdio: ["ignore", "pipe", "pipe"] }),
    );
    const exited = new Promise((resolve) => starter.once("exit", (code, signal) => resolve({ code, signal })));
    starter.stderr.on("data", (d) => (output += d));
    let url = null;
    await within(
      30000,
      new Promise((resolve, reject) => {
        starter.once("exit", (code) => reject(new Error(`start.js exited (${code}):\n${output}`)));
        readline.createInterface({ input: starter.stdout }).on("line", (line) => {
          output += `${line}\n`;
          const m = /^server 1 node (http:\/\/\S+) pid (\d+)/.exec(line);
          if (m) [url, pid] = [m[1], Number(m[2])];
          if (line === "Ctrl-C stops all.") resolve();
        });
      }),
      `start.js printing its server; it printed:\n${output}`,
    );
    assert.match(output, /one server, presence in its process/);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    const pages = [];
    for (const user of ["ann", "ben"]) {
      const page = await openPage(browser, user, `${url}/?user=${user}`);
      await page.click('#room-list li[data-room="ops"] button');
      pages.push(page);
    }
    const members = () =>
      Promise.all(pages.map((p) => p.$$eval("#members .member", (els) => els.map((e) => `${e.dataset.user}:${e.dataset.status}`))));
    await waitFor(async () => assert.deepEqual(await members(), [["ann:online", "ben:online"], ["ann:online", "ben:online"]]), {
      ...SLOW,
      what: "ann and ben in #ops on both pages",
    });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^rollcall_local_users 2$/m);
    assert.match(metrics, /^rollcall_local_sockets 2$/m);
    fs.mkdirSync(SHOTS, { recursive: true });
    await pages[0].screenshot({ path: path.join(SHOTS, "single-ann.png") });

    starter.kill("SIGINT");
    const { code } = await within(30000, exited, `start.js after SIGINT; it printed:\n${output}`);
    assert.equal(code, 0, output);
    assert.equal(alive(pid), false, "its server is gone");
  });
});
