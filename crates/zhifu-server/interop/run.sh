#!/usr/bin/env bash
# Interop suite of zhifu-server, run by scripts/test after `cargo test`:
#   webhooks.test.js  a receiver on the Standard Webhooks npm library
#                     (`standardwebhooks`, unchanged) verifies the webhooks
#                     of a real `zhifu dev --webhook-url`.
# Needs the debug `zhifu` binary (ZHIFU_BIN, else $CARGO_TARGET_DIR or
# <repo>/target/debug/zhifu) and node + npm; installs its npm packages from
# the lock file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
export ZHIFU_BIN=${ZHIFU_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/zhifu}
if [ ! -x "$ZHIFU_BIN" ]; then
  echo "zhifu-server interop: $ZHIFU_BIN is missing (cargo build -p zhifu)" >&2
  exit 1
fi
echo "zhifu-server interop: node (standardwebhooks)"
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
node --test webhooks.test.js
