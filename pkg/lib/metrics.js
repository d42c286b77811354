"use strict";
// Metrics of one Presence in the Prometheus text format (version 0.0.4),
// and the same metrics registered in an app's prom-client Registry. The
// counts come from the core (`counterSamples()`: the same numbers the Rust host
// exports); only the write latency is timed here.

const wasm = require("../rollcall_wasm.js");

/**
 * The core's catalogue (rollcall_core::METRICS): every metric's name, help
 * and kind, the same in the Rust host.
 * @type {{ metrics: { name: string, help: string, kind: "gauge" | "counter" | "histogram" }[],
 *   write_seconds_buckets_us: number[] }}
 */
const CATALOGUE = JSON.parse(wasm.metricCatalogue());

/** Upper bounds (seconds) of the write latency histogram. */
const WRITE_BUCKETS = CATALOGUE.write_seconds_buckets_us.map((us) => us / 1e6);

/**
 * The core's counter samples by metric name (`counterSamples()`:
 * `[type label or null, value]` each, from Stats::counter_samples).
 * @typedef {{ [name: string]: [string | null, number][] }} Counters
 * @typedef {{ value: number, labels?: { [name: string]: string | number }, metricName?: string }} Sample
 * @typedef {{ name: string, help: string, type: "gauge" | "counter" | "histogram", values: Sample[] }} Family
 * @typedef {{ counters: Counters, localSockets: number, localUsers: number,
 *   clusterSockets: number | null, clusterUsers: number | null }} Snapshot
 */

/** Round-trip times of the write calls this node sent to Redis. */
class WriteLatency {
  counts = WRITE_BUCKETS.map(() => 0);
  sum = 0;
  count = 0;

  /** @param {number} seconds */
  observe(seconds) {
    for (let i = 0; i < WRITE_BUCKETS.length; i++) if (seconds <= WRITE_BUCKETS[i]) this.counts[i]++;
    this.sum += seconds;
    this.count++;
  }

  /** @returns {Sample[]} */
  samples() {
    const name = "rollcall_write_seconds";
    /** @type {Sample[]} */
    const out = WRITE_BUCKETS.map((le, i) => ({ metricName: `${name}_bucket`, labels: { le }, value: this.counts[i] }));
    out.push({ metricName: `${name}_bucket`, labels: { le: "+Inf" }, value: this.count });
    out.push({ metricName: `${name}_sum`, value: this.sum });
    out.push({ metricName: `${name}_count`, value: this.count });
    return out;
  }
}

/**
 * The samples of one metric of the catalogue.
 * @param {string} name
 * @param {Snapshot} s
 * @param {WriteLatency} latency
 * @returns {Sample[]}
 */
function samplesOf(name, s, latency) {
  /** @param {number | null} v @returns {Sample[]} */
  const one = (v) => (v === null ? [] : [{ value: v }]);
  switch (name) {
    case "rollcall_local_sockets": return one(s.localSockets);
    case "rollcall_local_users": return one(s.localUsers);
    case "rollcall_cluster_sockets": return one(s.clusterSockets);
    case "rollcall_cluster_users": return one(s.clusterUsers);
    case "rollcall_write_seconds": return latency.samples();
  }
  const counter = s.counters[name];
  if (!counter) throw new Error(`rollcall: the core names a metric this package does not know: ${name}`);
  return counter.map(([type, value]) => (type === null ? { value } : { labels: { type }, value }));
}

/**
 * Every family, in the catalogue's order. A cluster gauge whose read
 * failed has no sample (Prometheus then shows it as absent, not as 0).
 * @param {Snapshot} s
 * @param {WriteLatency} latency
 * @returns {Family[]}
 */
function families(s, latency) {
  return CATALOGUE.metrics.map(({ name, help, kind }) => ({ name, help, type: kind, values: samplesOf(name, s, latency) }));
}

/** @param {string} v */
function escapeLabel(v) {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** @param {number} v */
function number(v) {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

/**
 * The Prometheus text exposition of `fams`.
 * @param {Family[]} fams
 * @returns {string}
 */
function render(fams) {
  const lines = [];
  for (const f of fams) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const v of f.values) {
      const labels = Object.entries(v.labels || {}).map(([k, x]) => `${k}="${escapeLabel(String(x))}"`);
      lines.push(`${v.metricName || f.name}${labels.length ? `{${labels.join(",")}}` : ""} ${number(v.value)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Registers every family in a prom-client Registry (anything with
 * `registerMetric`), as metrics that collect when the registry is scraped.
 * One scrape collects once, however many families it reads.
 * @param {{ registerMetric: (metric: object) => void }} registry
 * @param {() => Promise<Family[]>} collect
 */
function register(registry, collect) {
  /** @type {Promise<Family[]> | null} */
  let pending = null;
  const shared = () => {
    if (!pending) {
      pending = collect();
      // Every family a registry reads in one scrape gets the same numbers.
      pending.finally(() => setImmediate(() => (pending = null))).catch(() => {});
    }
    return pending;
  };
  for (const { name, help, kind: type } of CATALOGUE.metrics) {
    registry.registerMetric({
      name,
      help,
      type,
      aggregator: "sum",
      get: async () => {
        const f = (await shared()).find((x) => x.name === name);
        return { name, help, type, aggregator: "sum", values: f ? f.values : [] };
      },
      reset() {},
    });
  }
}

/**
 * Checks the `metricsRegistry` option.
 * @param {unknown} value
 * @returns {{ registerMetric: (metric: object) => void } | null}
 */
function registryOf(value) {
  if (value === undefined || value === null) return null;
  const r = /** @type {{ registerMetric?: unknown }} */ (value);
  if (typeof r !== "object" || typeof r.registerMetric !== "function") {
    throw new TypeError("rollcall: metricsRegistry must be a prom-client Registry (an object with registerMetric)");
  }
  return /** @type {{ registerMetric: (metric: object) => void }} */ (value);
}

/** Every metric's name, in the catalogue's order. */
const NAMES = CATALOGUE.metrics.map((m) => m.name);

module.exports = { WriteLatency, families, render, register, registryOf, WRITE_BUCKETS, NAMES };
