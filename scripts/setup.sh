#!/usr/bin/env bash
# One command for a fresh machine: system packages, npm packages, the Wasm core, the TypeScript,
# the native helper and the test programs, then the demo (dump a bundled program and inspect it).
# Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
command -v make >/dev/null || need_apt+=(make)
# The browser tests drive Debian's Chromium through playwright-core (no browser download).
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install: ${need_apt[*]} (needs root)" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
if [ "${CRYO_SKIP_DEMO:-}" != 1 ]; then
  npm run --silent demo
fi
