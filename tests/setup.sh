#!/usr/bin/env bash
# Installs what the tests need and is missing; safe to run again.
# Used by tests/run-all.sh (the README's test command) and so by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130 # must equal the wasm-bindgen crate pinned in wasm/Cargo.toml

say() { printf '==> %s\n' "$*"; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v cargo >/dev/null || { echo "cargo is required (rustup)" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  # No --locked: the registry lacks one of its locked dependency versions.
  say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
# The browser of tests/node/test/who-is-online.test.js (driven by playwright-core
# through its executable path: no browser download).
[ -x /usr/bin/chromium ] || apt_install chromium

if [ -f tests/node/package.json ]; then
  say "npm packages of tests/node"
  if [ -f tests/node/package-lock.json ]; then
    npm --prefix tests/node ci --no-audit --no-fund --loglevel=error
  else
    npm --prefix tests/node install --no-audit --no-fund --loglevel=error
  fi
fi
