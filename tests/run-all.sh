#!/usr/bin/env bash
# Every test of rollcall: installs what is missing, then the Rust workspace
# (core, host against real redis-server processes, wasm replay) and the Node
# package (built, packed, installed from its tarball, real Socket.IO servers).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup.sh

# The Rust suite replays traces with the package's own .wasm: build it first.
echo "==> npm --prefix pkg run build"
npm --prefix pkg run build

echo "==> cargo test --workspace"
cargo test --workspace

if [ -f tests/node/package.json ]; then
  echo "==> node tests (npm --prefix tests/node test)"
  ROLLCALL_SKIP_BUILD=1 npm --prefix tests/node test
fi
