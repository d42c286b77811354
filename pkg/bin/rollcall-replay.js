#!/usr/bin/env node
// rollcall-replay: replays a recorded trace through this package (its
// Replayer, over the shipped .wasm) and prints what the core did at each
// step, one JSON line per input line: byte for byte what
// `rollcall replay TRACE` gives natively.
//
//   rollcall-replay TRACE [--out FILE] [--expect FILE]
//
// Exit status: 0 done (and equal to --expect), 1 a malformed trace or an
// output that differs from --expect, 2 a usage or I/O error.
"use strict";

const fs = require("node:fs");
const { Replayer } = require("../index.js");

const USAGE = `usage: rollcall-replay TRACE [--out FILE] [--expect FILE]

Replays TRACE (a trace recorded with the \`trace\` option of Presence.attach,
or by the Rust host) and prints the output line of every step.

  --out FILE     write the output to FILE instead of standard output
  --expect FILE  compare the output with FILE; exit 1 if they differ
`;

class UsageError extends Error {}

/**
 * @param {string[]} argv
 * @returns {{ trace: string | undefined, out: string | undefined, expect: string | undefined, help: boolean }}
 */
function parseArgs(argv) {
  /** @type {{ trace: string | undefined, out: string | undefined, expect: string | undefined, help: boolean }} */
  const args = { trace: undefined, out: undefined, expect: undefined, help: false };
  let positional = false; // after "--"
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!positional) {
      if (arg === "--") {
        positional = true;
        continue;
      }
      if (arg === "-h" || arg === "--help") {
        args.help = true;
        continue;
      }
      const option = /^--(out|expect)(?:=(.*))?$/s.exec(arg);
      if (option) {
        const name = /** @type {"out" | "expect"} */ (option[1]);
        const inline = option[2];
        let value = inline;
        if (value === undefined) {
          if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a file`);
          value = argv[++i];
        }
        if (value === "") throw new UsageError(`--${name} needs a file`);
        if (args[name] !== undefined) throw new UsageError(`--${name} given twice`);
        args[name] = value;
        continue;
      }
      if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
    }
    if (args.trace !== undefined) throw new UsageError(`one trace file only (got ${args.trace} and ${arg})`);
    args.trace = arg;
  }
  if (!args.help && args.trace === undefined) throw new UsageError("no trace file given");
  return args;
}

/**
 * A file as UTF-8 text, byte for byte (a BOM is kept, bad UTF-8 is an error), as Rust reads it.
 * @param {string} path
 */
function readText(path) {
  const bytes = fs.readFileSync(path);
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
}

/**
 * The lines of a text as Rust's `str::lines` gives them: split at "\n", a
 * "\r" before it dropped, no empty line after a final "\n".
 * @param {string} text
 * @returns {Generator<string, void, void>}
 */
function* lines(text) {
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    if (nl === -1) {
      yield text.slice(start);
      return;
    }
    const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    yield text.slice(start, end);
    start = nl + 1;
  }
}

/**
 * The output, each line ending in "\n"; throws the core's `trace line N: ...` error.
 * @param {string} text
 */
function replay(text) {
  const it = lines(text);
  const first = it.next();
  if (first.done) throw new Error("trace line 1: the trace is empty");
  const replayer = new Replayer(first.value);
  const out = [];
  try {
    for (const line of it) out.push(replayer.step(line), "\n");
  } finally {
    replayer.free();
  }
  return out.join("");
}

/**
 * The first output line (from 1) where two outputs differ, as the native CLI counts it.
 * @param {string} expected
 * @param {string} actual
 */
function firstDifference(expected, actual) {
  const a = [...lines(expected)];
  const b = [...lines(actual)];
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i + 1;
  return n + 1;
}

/**
 * @param {string[]} argv
 * @returns {number} the exit status
 */
function main(argv) {
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`rollcall-replay: ${e.message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  /**
   * @template T
   * @param {string} what
   * @param {string} path
   * @param {() => T} fn
   * @returns {T}
   */
  const io = (what, path, fn) => {
    try {
      return fn();
    } catch (e) {
      throw Object.assign(new Error(`cannot ${what} ${path}: ${/** @type {Error} */ (e).message}`), { io: true });
    }
  };
  try {
    const trace = /** @type {string} */ (args.trace);
    const text = io("read", trace, () => readText(trace));
    let output;
    try {
      output = replay(text);
    } catch (e) {
      // A bad trace line: the message names the line and the field.
      process.stderr.write(`rollcall-replay: ${trace}: ${/** @type {Error} */ (e).message}\n`);
      return 1;
    }
    const out = args.out;
    if (out !== undefined) io("write", out, () => fs.writeFileSync(out, output));
    else process.stdout.write(output);
    const expect = args.expect;
    if (expect !== undefined) {
      const expected = io("read", expect, () => readText(expect));
      if (expected !== output) {
        process.stderr.write(
          `rollcall-replay: output differs from ${args.expect} at output line ${firstDifference(expected, output)}\n`,
        );
        return 1;
      }
    }
    return 0;
  } catch (e) {
    if (!(e instanceof Error) || !(/** @type {Error & { io?: boolean }} */ (e).io)) throw e;
    process.stderr.write(`rollcall-replay: ${e.message}\n`);
    return 2;
  }
}

// Not process.exit(): standard output may be a pipe still being written.
process.exitCode = main(process.argv.slice(2));
