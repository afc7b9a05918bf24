#!/usr/bin/env bash
# Browser journeys of the checkout (issue 6) and of the sandbox console and
# admin at 390/1280 px (issue 15, sandbox.test.js): headless Chromium (Debian
# `chromium`, driven by npm playwright-core) against `zhifu dev` on a free
# port with a throwaway data directory. Builds nothing: it uses the zhifu
# binary that `cargo test --workspace` / `cargo build` already produced
# ($ZHIFU_BIN, else $CARGO_TARGET_DIR/debug/zhifu, else target/debug/zhifu).
# Needs: node + npm, chromium (CHROMIUM_PATH overrides /usr/bin/chromium).
# Screenshots of each journey's final screen land in tests-browser/screenshots/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${ZHIFU_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/zhifu}
if [ ! -x "$bin" ]; then
  echo "tests-browser: no zhifu binary at $bin (run cargo build -p zhifu first)" >&2
  exit 1
fi
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "tests-browser: no Chromium at $chromium (apt-get install chromium)" >&2
  exit 1
fi

cd "$here"
npm ci --no-audit --no-fund --loglevel=error

data=$(mktemp -d)
log="$data/zhifu-dev.log"
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port=$(free_port)
merchant_port=$(free_port)
ZHIFU_API_KEY="zk_browser_$(node -e 'console.log(require("crypto").randomBytes(16).toString("hex"))')"
export ZHIFU_API_KEY
export ZHIFU_URL="http://127.0.0.1:$port"
# The journey that embeds zhifu.js on a merchant's page serves that page
# on another port (another origin); the checkout API must allow it (CORS).
export ZHIFU_MERCHANT_PORT="$merchant_port"
export ZHIFU_CHECKOUT_CORS_ORIGINS="http://127.0.0.1:$merchant_port"

"$bin" dev --port "$port" --data "$data/state" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

# Ready when /healthz answers 200 (at most 60 s; fail at once if it died).
ready=""
for _ in $(seq 1 300); do
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$ZHIFU_URL/healthz"; then
    ready=1
    break
  fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "tests-browser: zhifu dev did not become healthy at $ZHIFU_URL; its log:" >&2
  cat "$log" >&2
  exit 1
fi

status=0
CHROMIUM_PATH="$chromium" node --test --test-concurrency=1 types.test.js journeys.test.js sandbox.test.js || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- zhifu dev log (last 80 lines)" >&2
  tail -n 80 "$log" >&2
fi
exit "$status"
