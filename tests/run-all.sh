#!/usr/bin/env bash
# Every test of rollcall: installs what is missing, then the Rust workspace
# (core, host against real redis-server processes, wasm replay) and the Node
# package (built, packed, installed from its tarball, real Socket.IO servers).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup.sh

echo "==> cargo test --workspace"
cargo test --workspace

if [ -f tests/node/package.json ]; then
  echo "==> node tests (npm --prefix tests/node test)"
  npm --prefix tests/node test
fi
