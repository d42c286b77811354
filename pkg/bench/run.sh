#!/usr/bin/env bash
# Every rollcall benchmark, one after the other (about 10 minutes), from a
# clean clone after `bash tests/setup.sh`. Builds the WASM package, installs
# this folder's npm packages, starts its own redis-server processes on free
# ports and stops them. Raw results: pkg/bench/results/*.json; the table:
# pkg/bench/results/summary.md. Timings only: never run by CI.
# ONLY="wasm writes" runs a subset (criterion wasm writes storm reads reap rooms feed leave members data rss boundary).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"
mkdir -p results
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

echo "==> build the package (cargo + wasm-bindgen)"
npm --prefix "$root/pkg" run build
echo "==> npm packages of pkg/bench"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi

if want criterion; then
  echo "==> 1. core, native: cargo bench -p rollcall-core --bench tracker"
  (cd "$root" && cargo bench -p rollcall-core --bench tracker) 2>&1 | tee results/criterion.txt
  cp "$root/target/criterion/inputs/rollcall_tracker/new/estimates.json" results/criterion-rollcall.json
  cp "$root/target/criterion/inputs/naive_map_baseline/new/estimates.json" results/criterion-naive.json
fi
want wasm && { echo "==> 2. core through WASM in Node: node wasm.js"; node wasm.js; }
want writes && { echo "==> 3+5. writes and redis-benchmark: node writes.js"; node writes.js; }
want storm && { echo "==> 3. storm with real clients: node storm.js"; node storm.js; }
want reads && { echo "==> 4. reads: node reads.js"; node reads.js; }
want reap && { echo "==> 6. reap: node reap.js"; node reap.js; }
want rooms && { echo "==> 7. the rooms option: node rooms.js"; node rooms.js; }
want feed && { echo "==> 10. the change feed: node feed.js"; node feed.js; }
want leave && { echo "==> 10. a leave at the feed's cap: node leave.js"; node leave.js; }
want members && { echo "==> 11. member pages of a big room: node members.js"; node members.js; }
want data && { echo "==> 12. per-socket data: node data.js"; node data.js; }
want rss && { echo "==> 13. memory per socket: node rss.js"; node rss.js; }
want boundary && { echo "==> 14. the JS/WASM boundary both ways: node boundary.js"; node boundary.js; }
node summary.js | tee results/summary.md
