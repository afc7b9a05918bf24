#!/usr/bin/env bash
# The public notification endpoint under load, side by side with a Node
# endpoint on the official alipay-sdk (bench/notify/node-endpoint.js: same
# Alipay key, same body), measured in one sitting on this machine. Reports
# ratios (the machine is shared and noisy):
#   (a) replay of one genuine notification: req/s, p50/p99 at 16 connections;
#   (c) abuse: 1,500 forged 60 KB notifications + 3,000 replays → storage
#       growth of the SQLite database, and every replay still `success`.
# Runs `zhifu dev` (release build, SQLite, its sandbox pays the order and
# signs the notification). Needs wrk (installed from Debian if missing) and
# Node with the interop suite's node_modules (npm ci there if missing).
#   DURATION=10 CONNECTIONS=16 bench/notify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
duration=${DURATION:-10}
conns=${CONNECTIONS:-16}
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }; }
[ -d crates/alipay/interop/node_modules/alipay-sdk ] || (cd crates/alipay/interop && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --locked -q -p zhifu
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
RUST_LOG=warn target/release/zhifu dev --port "$port" --data "$work/dev" >"$work/dev.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
key=$(cat "$work/dev/api_key")
api() { curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' "$@"; }
order=$(api -X POST "$base/v1/orders" -d '{"subject":"Bench mug","total_amount":"88.88"}')
id=$(jq -r .id <<<"$order"); no=$(jq -r .out_trade_no <<<"$order")
api -X POST "$base/v1/orders/$id/pay" -d '{"channel":"qr"}' >/dev/null
curl -sf -X POST -H 'Content-Type: application/json' "$base/sandbox/api/trades/pay" -d "{\"out_trade_no\":\"$no\"}" >/dev/null
for _ in $(seq 100); do [ "$(api "$base/v1/orders/$id" | jq -r .status)" = paid ] && break; sleep 0.1; done
curl -sf "$base/sandbox/api/notifications?out_trade_no=$no" | jq -j '.[0].body // .notifications[0].body' >"$work/genuine.form"
[ -s "$work/genuine.form" ] || { echo "no notification body captured" >&2; exit 1; }
alipay_pub=$(curl -sf "$base/sandbox/api/info" | jq -r .alipay_public_key)
app_id=$(cat "$work/dev/app_id")

nport=$(free_port)
node bench/notify/node-endpoint.js "$nport" "$alipay_pub" "$work/dev/app_private_key.pem" "$app_id" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$nport/" -d x && break; sleep 0.1; done
[ "$(curl -s -X POST --data-binary @"$work/genuine.form" "http://127.0.0.1:$nport/")" = success ] || { echo "the Node endpoint refuses the genuine body" >&2; exit 1; }
[ "$(curl -s -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$work/genuine.form" "$base/alipay/notify")" = success ]

db_bytes() { du -cb "$work/dev"/*.db* 2>/dev/null | tail -1 | cut -f1; }
# wrk's summary: req/s, p50 and p99 in ms, non-2xx count.
run_wrk() {
  BODY_FILE="$1" wrk -t2 -c"$conns" -d"${duration}s" --latency -s bench/notify/post.lua "$2" >"$work/wrk.out"
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ {rps=$2}
    $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
    /Non-2xx/ {bad=$5}
    END {printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad+0}' "$work/wrk.out"
}
before=$(db_bytes)
read -r z_rps z_p50 z_p99 z_bad < <(run_wrk "$work/genuine.form" "$base/alipay/notify")
read -r n_rps n_p50 n_p99 n_bad < <(run_wrk "$work/genuine.form" "http://127.0.0.1:$nport/")
after_replay=$(db_bytes)

# (b) first-time notifications, end to end: fresh orders (created
# beforehand) paid at the sandbox by wrk (one order per request); the
# sandbox, in the same process, signs each notification (RSA, ~1 ms) and
# delivers it; Zhifu verifies and applies it. Payments applied per second.
n=${ORDERS:-3000}
seq "$n" | xargs -P 8 -I{} sh -c "curl -sf -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' -X POST '$base/v1/orders' -d '{\"subject\":\"Bench tea\",\"total_amount\":\"1.00\"}' | jq -r '.id + \" \" + .out_trade_no'" >"$work/created.txt"
cut -d' ' -f1 "$work/created.txt" | xargs -P 8 -I{} curl -sf -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -X POST "$base/v1/orders/{}/pay" -d '{"channel":"qr"}'
cut -d' ' -f2 "$work/created.txt" >"$work/orders.txt"
paid_now() { curl -sf "$base/metrics" | awk '/^zhifu_orders\{status="paid"\}/ {print $2}'; }
paid_before=$(paid_now)
t0=$(date +%s.%N)
ORDERS_FILE="$work/orders.txt" wrk -t2 -c"$conns" -d"${FIRST_SECS:-5}s" -s bench/notify/pay.lua "$base" >"$work/wrk-pay.out"
last=-1
for _ in $(seq 200); do
  cur=$(paid_now)
  [ "$cur" = "$last" ] && break
  last=$cur
  sleep 0.25
done
t1=$(date +%s.%N)
applied=$(( $(paid_now) - paid_before ))
first_rate=$(awk -v n="$applied" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n/(b-a-0.25)}')

# (b2) Zhifu's write path alone: M more fresh orders, and for each a
# notification signed beforehand with the sandbox's Alipay key
# (bench/notify/sign-fresh.js); wrk posts each once to /alipay/notify
# (each verified, matched and committed: one write transaction).
m=${FRESH:-6000}
seq "$m" | xargs -P 8 -I{} sh -c "curl -sf -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' -X POST '$base/v1/orders' -d '{\"subject\":\"Bench tea\",\"total_amount\":\"1.00\"}' | jq -r .out_trade_no" >"$work/fresh.txt"
alipay_key=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT value FROM meta WHERE key = ?", ("alipay_private_key",)).fetchone()[0])' "$work/dev/sandbox/sandbox.sqlite3")
node bench/notify/sign-fresh.js "$work/genuine.form" "$alipay_key" "$work/fresh.txt" >"$work/bodies.txt"
[ "$(head -1 "$work/bodies.txt" | tr -d '\n' | curl -s -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @- "$base/alipay/notify")" = success ] || { echo "a fresh signed notification was refused" >&2; exit 1; }
paid_before=$(paid_now)
BODIES_FILE="$work/bodies.txt" wrk -t2 -c"$conns" -d"${FRESH_SECS:-2}s" --latency -s bench/notify/bodies.lua "$base/alipay/notify" >"$work/wrk-fresh.out"
fresh_applied=$(( $(paid_now) - paid_before ))
read -r f_rps f_p50 f_p99 f_bad < <(awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ {rps=$2}
    $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
    /Non-2xx/ {bad=$5}
    END {printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad+0}' "$work/wrk-fresh.out")
fresh_secs=${FRESH_SECS:-2}

# (c) 1,500 forged 60 KB notifications (bad signature, naming the real
# order) and 3,000 replays, 16 at a time.
python3 - "$work/genuine.form" "$work/forged.form" <<'PY'
import sys, urllib.parse
f = dict(urllib.parse.parse_qsl(open(sys.argv[1]).read()))
f["body"] = "x" * 60 * 1024
f["sign"] = "Zm9yZ2Vk" + f["sign"][8:]
open(sys.argv[2], "w").write(urllib.parse.urlencode(f))
PY
before_abuse=$(db_bytes)
seq 1500 | xargs -P 16 -I{} curl -s -o /dev/null -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$work/forged.form" "$base/alipay/notify"
seq 3000 | xargs -P 16 -I{} curl -s -o /dev/null -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$work/genuine.form" -w '%{http_code}\n' "$base/alipay/notify" >"$work/codes.txt" || true
ok=$(grep -c '^200$' "$work/codes.txt" || true)
codes=$(sort "$work/codes.txt" | uniq -c | tr -s ' ' | tr '\n' ';')
sleep 1
after_abuse=$(db_bytes)

echo "machine: $(nproc) cores, $(uname -sr); wrk -t2 -c$conns -d${duration}s; zhifu dev (release, SQLite)"
printf '%-44s %10s %10s %10s %8s\n' "(a) replay of a genuine notification" "req/s" "p50 ms" "p99 ms" "non-2xx"
printf '%-44s %10s %10s %10s %8s\n' "Zhifu /alipay/notify" "$z_rps" "$z_p50" "$z_p99" "$z_bad"
printf '%-44s %10s %10s %10s %8s\n' "Node alipay-sdk checkNotifySignV2" "$n_rps" "$n_p50" "$n_p99" "$n_bad"
awk -v z="$z_rps" -v n="$n_rps" -v zp="$z_p99" -v np="$n_p99" 'BEGIN {printf "Zhifu / Node: %.1fx the req/s, p99 %.2fx\n", z/n, zp/np}'
echo "storage growth during the replays: $((after_replay - before)) bytes"
echo "(b) first-time notifications, end to end: $applied fresh orders paid at the sandbox and applied, $first_rate payments/s (the sandbox's signing and delivery included, same process)"
echo "(b2) first-time notifications, Zhifu alone (pre-signed, each once): $f_rps req/s, p50 $f_p50 ms, p99 $f_p99 ms, non-2xx $f_bad; orders paid in the ${fresh_secs}s run: $fresh_applied ($(( fresh_applied / fresh_secs ))/s; $m bodies available)"
echo "(c) 1500 forged 60 KB + 3000 replays: storage grew $((after_abuse - before_abuse)) bytes; replays answered success: $ok/3000 (HTTP codes: $codes)"
