#!/usr/bin/env bash
# Interop suites of zhifu-sandbox, run by scripts/test after `cargo test`:
#   node/sdk.test.js      the official npm alipay-sdk (unchanged) against `zhifu sandbox`
#   node/cert_mode.test.js the same SDK in certificate mode against `zhifu sandbox --cert-mode`
#   node/agreement.test.js the same SDK signs a recurring agreement and deducts from it
#   node/browser.test.js  headless Chromium (playwright-core) through the cashier
#   python/test_sandbox.py the official PyPI python-alipay-sdk (unchanged)
# Needs the debug `zhifu` binary (ZHIFU_BIN, else $CARGO_TARGET_DIR or
# <repo>/target/debug/zhifu), node + npm, python3 with venv, and Debian's
# chromium at /usr/bin/chromium (or CHROMIUM_PATH). Installs its own npm and
# pip packages from the lock files; installs no system packages.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
export ZHIFU_BIN=${ZHIFU_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/zhifu}
if [ ! -x "$ZHIFU_BIN" ]; then
  echo "zhifu-sandbox interop: $ZHIFU_BIN is missing (cargo build -p zhifu)" >&2
  exit 1
fi
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "zhifu-sandbox interop: chromium is missing (apt-get install -y chromium)" >&2
  exit 1
fi

echo "zhifu-sandbox interop: node (alipay-sdk, chromium)"
cd "$here/node"
npm ci --no-audit --no-fund --loglevel=error
node --test sdk.test.js cert_mode.test.js agreement.test.js browser.test.js

echo "zhifu-sandbox interop: python (python-alipay-sdk)"
cd "$here/python"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python -m unittest -v test_sandbox
