"use strict";
// Prints the table of pkg/bench/results/*.json (written by run.sh) as Markdown.

const fs = require("node:fs");
const path = require("node:path");
const L = require("./lib.js");

const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : "n/a");
const M = (x) => (Number.isFinite(x) ? `${(x / 1e6).toFixed(2)} M/s` : "n/a");
const lines = [];
const p = (s = "") => lines.push(s);

// 1. criterion
let native = NaN;
{
  const r = L.load("criterion-rollcall");
  const n = L.load("criterion-naive");
  let mem = "n/a";
  try {
    const t = fs.readFileSync(path.join(__dirname, "results", "criterion.txt"), "utf8");
    const m = /(\d+) bytes per tracked socket/.exec(t);
    if (m) mem = m[1];
  } catch {}
  p("## 1. Core, native (criterion, 40,000 inputs per iteration)");
  p();
  p("| | median time / iteration | inputs/s |");
  p("|---|---|---|");
  if (r) {
    native = 40_000 / (r.median.point_estimate / 1e9);
    p(`| rollcall Tracker (write in flight) | ${f2(r.median.point_estimate / 1e6)} ms | ${M(native)} |`);
  }
  if (n) p(`| users article's Map (baseline) | ${f2(n.median.point_estimate / 1e6)} ms | ${M(40_000 / (n.median.point_estimate / 1e9))} |`);
  p(`| memory | ${mem} bytes per tracked socket | |`);
  p();
}

// 2. wasm
{
  const w = L.load("wasm");
  if (w) {
    p(`## 2. Core through WASM in Node (40,000 inputs, median of ${w.reps})`);
    p();
    p("| path | median ms | inputs/s | native / this |");
    p("|---|---|---|---|");
    for (const [k, v] of Object.entries(w.inputs_per_s)) {
      p(`| ${k} | ${f1(L.median(w.ms[k]))} | ${M(v)} | ${f1(native / v)}x |`);
    }
    const net = (k) => w.inputs / ((L.median(w.ms[k]) - L.median(w.ms.harness_only)) / 1000);
    p(`| presence_redis net of the fake-socket harness | | ${M(net("presence_redis"))} | ${f1(native / net("presence_redis"))}x |`);
    p(`| presence_single net of the harness | | ${M(net("presence_single"))} | ${f1(native / net("presence_single"))}x |`);
    p();
  }
}

// 3. writes
{
  const w = L.load("writes");
  if (w) {
    p(`## 3. Writes to Redis, one Node server, node-redis v4 (median of ${w.reps}, ratio = median of per-rep ratios)`);
    p();
    p("| load | rollcall events/s | naive events/s | ratio | harness alone | rollcall script calls | redis-server CPU ms rollcall / naive |");
    p("|---|---|---|---|---|---|---|");
    for (const [b, c] of Object.entries(w.churn)) {
      p(`| churn, ${b} event(s) per tick, ${w.churn_events} events | ${f0(c.median.rollcall)} | ${f0(c.median.naive)} | ${f1(c.median.ratio)}x | ${f0(c.median.harness_only)} | ${f0(c.median.rollcall_calls)} | ${f0(c.median.rollcall_redis_busy_ms)} / ${f0(c.median.naive_redis_busy_ms)} |`);
    }
    const s = w.storm.median;
    p();
    p(`Storm of ${w.storm_sockets} connects in one tick (fake sockets): rollcall ${f1(s.rollcall_ms)} ms (${f1(s.rollcall_after_last_ms)} ms after the last), naive ${f1(s.naive_ms)} ms (${f1(s.naive_after_last_ms)} ms after the last): ${f1(s.ratio)}x; harness alone ${f1(s.harness_only_ms)} ms; redis-server CPU ${f0(s.rollcall_redis_busy_ms)} / ${f0(s.naive_redis_busy_ms)} ms.`);
    p();
  }
  const st = L.load("storm");
  if (st) {
    const m = st.median;
    p(`Storm with real socket.io-client sockets (${st.sockets}, websocket, 2 client processes; median of ${st.reps}): ` +
      `handshakes took ${f0(m.rollcall_first_to_last_ms)} ms (rollcall) / ${f0(m.naive_first_to_last_ms)} ms (naive); ` +
      `counted ${f1(m.rollcall_after_last_ms)} ms / ${f1(m.naive_after_last_ms)} ms after the last handshake (${f1(m.ratio_after_last)}x).`);
    p();
  }
}

// 4. reads
{
  const r = L.load("reads");
  if (r) {
    p("## 4. Reads from server 0 (latency ms median / p99; bytes through redis-server per query)");
    p();
    p("| servers x sockets | state | query | median ms | p99 ms | bytes/query | answer | vs rollcall (median) |");
    p("|---|---|---|---|---|---|---|---|");
    for (const size of r) {
      for (const state of ["alive", "one_dead"]) {
        const base = size[state].rollcall.median_ms;
        for (const [k, v] of Object.entries(size[state])) {
          p(`| ${size.servers} x ${size.sockets} | ${state} | ${k} | ${f3(v.median_ms)} | ${f3(v.p99_ms)} | ${f0(v.bytes_per_query)} | ${v.error ? `error: ${v.error}` : v.value} | ${f0(v.median_ms / base)}x |`);
        }
      }
    }
    p();
  }
}

// 5. redis-benchmark
{
  const w = L.load("writes");
  if (w && w.redis_benchmark) {
    p("## 5. redis-benchmark on the same redis-server");
    p();
    p("| command | -P | requests/s | rollcall churn b=16 events/s as a fraction |");
    p("|---|---|---|---|");
    const rc = w.churn[16] ? w.churn[16].median.rollcall : NaN;
    for (const x of w.redis_benchmark) p(`| ${x.name} | ${x.pipeline} | ${f0(x.rps)} | ${f2(rc / x.rps)} |`);
    p();
    p(w.redis_benchmark.map((x) => `    ${x.command}`).join("\n"));
    p();
  }
}

// 6. reap
{
  const r = L.load("reap");
  if (r) {
    const m = r.median;
    p(`## 6. Reap of a dead node with ${f0(m.users)} users (median of ${r.runs.length})`);
    p();
    p(`${f0(m.reap_calls)} reap calls; total ${f0(m.total_ms)} ms (first reap call to the last, on the reaper); longest call ${f1(m.longest_call_ms)} ms round trip, ${f1(m.redis_longest_exec_ms)} ms inside Redis (SLOWLOG); median call ${f1(m.median_call_ms)} ms; Redis busy in reap calls ${f0(m.redis_exec_total_ms)} ms; kill to "node reaped" ${f0(m.kill_to_reaped_ms)} ms (ttl ${r.timings.ttlMs} ms); ${f0(m.offline_events)} "user disconnected" (reaped) events; users left ${m.users_left}.`);
    p();
  }
}

console.log(lines.join("\n"));
