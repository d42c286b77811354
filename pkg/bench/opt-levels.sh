#!/usr/bin/env bash
# Size and speed of the hot module (rollcall_wasm_bg.wasm) at each
# opt-level (BENCHMARKS.md 14): builds it at 3 (what ships), "s" and "z"
# into copies of the package under $TMPDIR, prints each size, then runs
# wasm.js and boundary.js on each copy, alternating ROUNDS times. Needs a
# built package (npm --prefix pkg run build) and pkg/bench's node_modules.
#   ROUNDS=n (default 3), REPS=n (default 5), LEVELS="3 s z"
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
levels="${LEVELS:-3 s z}"
for level in $levels; do
  profile="optbench$level"
  q=$([ "$level" = 3 ] && echo 3 || echo "\"$level\"")
  (cd "$root" && cargo build -q --profile "$profile" --target wasm32-unknown-unknown -p rollcall-wasm \
    --config "profile.$profile.inherits=\"release\"" --config "profile.$profile.opt-level=$q" \
    --config "profile.$profile.package.rollcall-wasm.opt-level=$q" --config "profile.$profile.lto=true" \
    --config "profile.$profile.codegen-units=1" --config "profile.$profile.panic=\"abort\"" \
    --config "profile.$profile.strip=true")
  copy="$work/pkg-$level"
  mkdir -p "$copy/bench"
  cp -r "$root/pkg/index.js" "$root/pkg/package.json" "$root/pkg/lib" "$root/pkg"/rollcall_tools* "$copy/"
  wasm-bindgen --target nodejs --remove-name-section --remove-producers-section --out-dir "$copy" \
    "${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/$profile/rollcall_wasm.wasm"
  cp "$here"/*.js "$copy/bench/"
  ln -s "$here/node_modules" "$copy/bench/node_modules"
  mkdir -p "$copy/bench/results"
  echo "opt-level $level: rollcall_wasm_bg.wasm $(stat -c %s "$copy/rollcall_wasm_bg.wasm") bytes"
done
for round in $(seq "${ROUNDS:-3}"); do
  for level in $levels; do
    echo "== round $round, opt-level $level"
    (cd "$work/pkg-$level/bench" && REPS="${REPS:-5}" node wasm.js 2>&1 | grep -E "raw_|presence_" && REPS="${REPS:-5}" node boundary.js 2>&1 | grep -E "in_json_out")
  done
done
