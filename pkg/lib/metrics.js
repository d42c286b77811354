"use strict";
// Metrics of one Presence in the Prometheus text format (version 0.0.4),
// and the same metrics registered in an app's prom-client Registry. The
// counts come from the core (`stats()`: the same numbers the Rust host
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
 * The core's Stats (core/src/stats.rs).
 * @typedef {{ writes: number, reasserts: number, reaps: number, users_online: number,
 *   users_offline: number, scope_transitions: number, reaped_nodes: number, fenced: number,
 *   store_errors: number }} Stats
 * @typedef {{ value: number, labels?: { [name: string]: string | number }, metricName?: string }} Sample
 * @typedef {{ name: string, help: string, type: "gauge" | "counter" | "histogram", values: Sample[] }} Family
 * @typedef {{ stats: Stats, localSockets: number, localUsers: number,
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
  const st = s.stats;
  switch (name) {
    case "rollcall_local_sockets": return one(s.localSockets);
    case "rollcall_local_users": return one(s.localUsers);
    case "rollcall_cluster_sockets": return one(s.clusterSockets);
    case "rollcall_cluster_users": return one(s.clusterUsers);
    case "rollcall_writes_total": return one(st.writes);
    case "rollcall_write_seconds": return latency.samples();
    case "rollcall_reasserts_total": return one(st.reasserts);
    case "rollcall_reap_calls_total": return one(st.reaps);
    case "rollcall_fenced_total": return one(st.fenced);
    case "rollcall_reaped_nodes_total": return one(st.reaped_nodes);
    case "rollcall_store_errors_total": return one(st.store_errors);
    case "rollcall_events_total":
      return [
        { labels: { type: "user_online" }, value: st.users_online },
        { labels: { type: "user_offline" }, value: st.users_offline },
        { labels: { type: "scope_transition" }, value: st.scope_transitions },
        { labels: { type: "node_reaped" }, value: st.reaped_nodes },
        { labels: { type: "fenced" }, value: st.fenced },
        { labels: { type: "store_error" }, value: st.store_errors },
      ];
    default:
      throw new Error(`rollcall: the core names a metric this package does not know: ${name}`);
  }
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
  const empty = families(
    {
      stats: { writes: 0, reasserts: 0, reaps: 0, users_online: 0, users_offline: 0, scope_transitions: 0, reaped_nodes: 0, fenced: 0, store_errors: 0 },
      localSockets: 0,
      localUsers: 0,
      clusterSockets: 0,
      clusterUsers: 0,
    },
    new WriteLatency(),
  );
  for (const { name, help, type } of empty) {
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

module.exports = { WriteLatency, families, render, register, registryOf, WRITE_BUCKETS };
