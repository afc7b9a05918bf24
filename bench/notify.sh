#!/usr/bin/env bash
# The public notification endpoint under load, side by side with a Node
# endpoint on the official alipay-sdk (bench/notify/node-endpoint.js: same
# Alipay key, same body), measured in one sitting on this machine, on
# SQLite and on PostgreSQL. Reports ratios (the machine is shared and noisy):
#   (a)  replay of one genuine notification: req/s, p50/p99 at 16
#        connections — answered from the instance's memory of settled
#        notifications (after verification), and (a') with that memory off
#        (ZHIFU_SETTLED_NOTIFICATIONS=0: verification + one indexed read);
#   (b)  first-time notifications end to end (SQLite, `zhifu dev`): fresh
#        orders paid at the sandbox, which signs and delivers; payments
#        applied per second;
#   (b2) Zhifu's write path alone: notifications for fresh orders signed
#        beforehand, each posted once: payments applied per second;
#   (c)  abuse: 1,500 forged 60 KB notifications + 3,000 replays → storage
#        growth, and every replay still `success`.
# SQLite runs `zhifu dev` (release build, its sandbox pays the order and
# signs the notification); PostgreSQL runs `zhifu serve` on a throwaway
# server with fsync on (scripts/lib/postgres.sh), the same app key and
# Alipay key, notifications signed like (b2). Needs wrk (installed from
# Debian if missing) and Node with the interop suite's node_modules.
#   DURATION=10 CONNECTIONS=16 PG=1 bench/notify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10}
conns=${CONNECTIONS:-16}
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }; }
[ -d crates/alipay/interop/node_modules/alipay-sdk ] || (cd crates/alipay/interop && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --locked -q -p zhifu
bin=${CARGO_TARGET_DIR:-target}/release/zhifu
work=$(mktemp -d)
pids=()
pg_started=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$pg_started" ]; then stop_postgres; fi
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 200); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }
post_form() { curl -s -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$1" "$2"; }
# wrk's summary: req/s, p50 and p99 in ms, non-2xx count.
summary() {
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ {rps=$2}
    $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
    /Non-2xx/ {bad=$5}
    END {printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad+0}' "$1"
}
run_wrk() {
  BODY_FILE="$1" wrk -t2 -c"$conns" -d"${duration}s" --latency -s bench/notify/post.lua "$2" >"$work/wrk.out"
  summary "$work/wrk.out"
}
paid_now() { curl -sf "$1/metrics" | awk '/^zhifu_orders\{status="paid"\}/ {print $2}'; }
# $4 fresh orders at $1 (API key $2): "id out_trade_no" lines into $3.
create_orders() { node bench/notify/create-orders.js "$1" "$2" "$4" >"$3"; }
# The out_trade_no column of create_orders' output.
trade_nos() { cut -d' ' -f2 "$1"; }
# (b2) at $1: post every body of $2 once (wrk), count orders paid.
write_path() {
  local before after
  before=$(paid_now "$1")
  BODIES_FILE="$2" wrk -t2 -c"$conns" -d"${FRESH_SECS:-2}s" --latency -s bench/notify/bodies.lua "$1/alipay/notify" >"$work/wrk-fresh.out"
  sleep 0.5
  after=$(paid_now "$1")
  echo "$(( (after - before) / ${FRESH_SECS:-2} )) $(summary "$work/wrk-fresh.out")"
}
# (c) at $1 with genuine body $2: storage before/after via $3 (a command).
abuse() {
  local before after ok
  before=$($3)
  seq 1500 | xargs -P 16 -I{} curl -s -o /dev/null -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$work/forged.form" "$1/alipay/notify"
  seq 3000 | xargs -P 16 -I{} curl -s -o /dev/null -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$2" -w '%{http_code}\n' "$1/alipay/notify" >"$work/codes.txt" || true
  ok=$(grep -c '^200$' "$work/codes.txt" || true)
  sleep 1
  after=$($3)
  echo "$((after - before)) $ok"
}

# ---- SQLite: zhifu dev ----------------------------------------------------
port=$(free_port)
start_dev() {
  env "$@" RUST_LOG=warn "$bin" dev --port "$port" --data "$work/dev" >>"$work/dev.log" 2>&1 &
  dev_pid=$!
  pids+=("$dev_pid")
  wait_up "$base"
}
base="http://127.0.0.1:$port"
start_dev
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
alipay_key=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT value FROM meta WHERE key = ?", ("alipay_private_key",)).fetchone()[0])' "$work/dev/sandbox/sandbox.sqlite3")
python3 - "$work/genuine.form" "$work/forged.form" <<'PY'
import sys, urllib.parse
f = dict(urllib.parse.parse_qsl(open(sys.argv[1]).read()))
f["body"] = "x" * 60 * 1024
f["sign"] = "Zm9yZ2Vk" + f["sign"][8:]
open(sys.argv[2], "w").write(urllib.parse.urlencode(f))
PY

nport=$(free_port)
node bench/notify/node-endpoint.js "$nport" "$alipay_pub" "$work/dev/app_private_key.pem" "$app_id" &
pids+=($!)
node_url="http://127.0.0.1:$nport/"
for _ in $(seq 100); do curl -s -o /dev/null "$node_url" -d x && break; sleep 0.1; done
[ "$(post_form "$work/genuine.form" "$node_url")" = success ] || { echo "the Node endpoint refuses the genuine body" >&2; exit 1; }
[ "$(post_form "$work/genuine.form" "$base/alipay/notify")" = success ]

sqlite_bytes() { du -cb "$work/dev"/*.db* 2>/dev/null | tail -1 | cut -f1; }
before=$(sqlite_bytes)
read -r n_rps n_p50 n_p99 n_bad < <(run_wrk "$work/genuine.form" "$node_url")
read -r z_rps z_p50 z_p99 z_bad < <(run_wrk "$work/genuine.form" "$base/alipay/notify")
after_replay=$(sqlite_bytes)

# (b) end to end through the sandbox: fresh QR orders paid by wrk, one per
# request; the sandbox signs (RSA, in this process) and delivers each.
n=${ORDERS:-3000}
node bench/notify/create-orders.js "$base" "$key" "$n" qr | cut -d' ' -f2 >"$work/orders.txt"
paid_before=$(paid_now "$base")
t0=$(date +%s.%N)
ORDERS_FILE="$work/orders.txt" wrk -t2 -c"$conns" -d"${FIRST_SECS:-5}s" -s bench/notify/pay.lua "$base" >"$work/wrk-pay.out"
last=-1
for _ in $(seq 200); do
  cur=$(paid_now "$base")
  [ "$cur" = "$last" ] && break
  last=$cur
  sleep 0.25
done
t1=$(date +%s.%N)
applied=$(( $(paid_now "$base") - paid_before ))
first_rate=$(awk -v n="$applied" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n/(b-a-0.25)}')

# (b2) the write path alone.
m=${FRESH:-8000}
create_orders "$base" "$key" "$work/fresh.txt" "$m"
node bench/notify/sign-fresh.js "$work/genuine.form" "$alipay_key" <(trade_nos "$work/fresh.txt") >"$work/bodies.txt"
[ "$(head -1 "$work/bodies.txt" | tr -d '\n' | curl -s -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @- "$base/alipay/notify")" = success ] || { echo "a fresh signed notification was refused" >&2; exit 1; }
read -r f_paid f_rps f_p50 f_p99 f_bad < <(write_path "$base" "$work/bodies.txt")

# (c) abuse.
read -r s_growth s_ok < <(abuse "$base" "$work/genuine.form" sqlite_bytes)

# (a') the replay without the memory: same data, restarted with it off.
kill "$dev_pid"; wait "$dev_pid" 2>/dev/null || true
start_dev ZHIFU_SETTLED_NOTIFICATIONS=0
[ "$(post_form "$work/genuine.form" "$base/alipay/notify")" = success ]
read -r r_rps r_p50 r_p99 r_bad < <(run_wrk "$work/genuine.form" "$base/alipay/notify")
read -r n2_rps n2_p50 n2_p99 n2_bad < <(run_wrk "$work/genuine.form" "$node_url")
kill "$dev_pid"; wait "$dev_pid" 2>/dev/null || true

# ---- PostgreSQL: zhifu serve ---------------------------------------------
if [ "${PG:-1}" != 0 ]; then
  source scripts/lib/postgres.sh
  ZHIFU_PG_FSYNC=on start_postgres
  pg_started=1
  pg_url=$ZHIFU_TEST_DATABASE_URL
  pport=$(free_port)
  pbase="http://127.0.0.1:$pport"
  start_serve() {
    env "$@" RUST_LOG=warn ZHIFU_METRICS_PUBLIC=true ZHIFU_DATABASE_URL="$pg_url" ZHIFU_DB_MAX_CONNECTIONS=16 \
      ALIPAY_APP_ID="$app_id" ALIPAY_APP_PRIVATE_KEY_FILE="$work/dev/app_private_key.pem" \
      ALIPAY_PUBLIC_KEY="$alipay_pub" ZHIFU_PUBLIC_URL="$pbase" ZHIFU_API_KEY=bench-key-0123456789abcdef \
      PORT="$pport" "$bin" serve --host 127.0.0.1 >>"$work/serve.log" 2>&1 &
    serve_pid=$!
    pids+=("$serve_pid")
    wait_up "$pbase"
  }
  "$bin" migrate --database-url "$pg_url" >/dev/null
  start_serve
  pkey=bench-key-0123456789abcdef
  create_orders "$pbase" "$pkey" "$work/pg-first.txt" 1
  node bench/notify/sign-fresh.js "$work/genuine.form" "$alipay_key" <(trade_nos "$work/pg-first.txt") | head -1 | tr -d '\n' >"$work/pg-genuine.form"
  [ "$(post_form "$work/pg-genuine.form" "$pbase/alipay/notify")" = success ] || { echo "PostgreSQL: the genuine body is refused" >&2; exit 1; }
  pg_bytes() { psql -qtA "$pg_url" -c 'SELECT pg_database_size(current_database())'; }
  psql -qtA "$pg_url" -c CHECKPOINT >/dev/null
  pbefore=$(pg_bytes)
  read -r pz_rps pz_p50 pz_p99 pz_bad < <(run_wrk "$work/pg-genuine.form" "$pbase/alipay/notify")
  pafter=$(pg_bytes)
  create_orders "$pbase" "$pkey" "$work/pg-fresh.txt" "$m"
  node bench/notify/sign-fresh.js "$work/genuine.form" "$alipay_key" <(trade_nos "$work/pg-fresh.txt") >"$work/pg-bodies.txt"
  read -r pf_paid pf_rps pf_p50 pf_p99 pf_bad < <(write_path "$pbase" "$work/pg-bodies.txt")
  read -r p_growth p_ok < <(abuse "$pbase" "$work/pg-genuine.form" pg_bytes)
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
  start_serve ZHIFU_SETTLED_NOTIFICATIONS=0
  read -r pr_rps pr_p50 pr_p99 pr_bad < <(run_wrk "$work/pg-genuine.form" "$pbase/alipay/notify")
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1fx", a/b}'; }
echo "machine: $(nproc) cores, $(uname -sr); wrk -t2 -c$conns -d${duration}s"
printf '%-52s %9s %8s %8s %8s %9s\n' "(a) replay of a genuine notification" "req/s" "p50 ms" "p99 ms" "non-2xx" "vs Node"
printf '%-52s %9s %8s %8s %8s\n' "Node alipay-sdk checkNotifySignV2 (run 1)" "$n_rps" "$n_p50" "$n_p99" "$n_bad"
printf '%-52s %9s %8s %8s %8s %9s\n' "Zhifu, SQLite, settled-notification memory" "$z_rps" "$z_p50" "$z_p99" "$z_bad" "$(ratio "$z_rps" "$n_rps")"
printf '%-52s %9s %8s %8s %8s\n' "Node alipay-sdk checkNotifySignV2 (run 2)" "$n2_rps" "$n2_p50" "$n2_p99" "$n2_bad"
printf '%-52s %9s %8s %8s %8s %9s\n' "Zhifu, SQLite, memory off (verify + 1 read)" "$r_rps" "$r_p50" "$r_p99" "$r_bad" "$(ratio "$r_rps" "$n2_rps")"
if [ -n "$pg_started" ]; then
  printf '%-52s %9s %8s %8s %8s %9s\n' "Zhifu, PostgreSQL, settled-notification memory" "$pz_rps" "$pz_p50" "$pz_p99" "$pz_bad" "$(ratio "$pz_rps" "$n_rps")"
  printf '%-52s %9s %8s %8s %8s %9s\n' "Zhifu, PostgreSQL, memory off (verify + 1 read)" "$pr_rps" "$pr_p50" "$pr_p99" "$pr_bad" "$(ratio "$pr_rps" "$n2_rps")"
fi
echo "storage growth during the replays: SQLite $((after_replay - before)) bytes${pg_started:+, PostgreSQL $((pafter - pbefore)) bytes}"
echo "(b) first-time, end to end (SQLite; the sandbox signs and delivers, same process): $applied orders paid at $first_rate payments/s"
echo "(b2) first-time, Zhifu's write path alone (pre-signed, each posted once, ${FRESH_SECS:-2}s; $m bodies available, so at most $((m / ${FRESH_SECS:-2}))/s measurable):"
echo "     SQLite:     $f_paid payments/s applied; p50 $f_p50 ms, p99 $f_p99 ms, non-2xx $f_bad"
if [ -n "$pg_started" ]; then
  echo "     PostgreSQL: $pf_paid payments/s applied; p50 $pf_p50 ms, p99 $pf_p99 ms, non-2xx $pf_bad (fsync on, pool 16)"
fi
echo "(c) 1500 forged 60 KB + 3000 replays: SQLite grew $s_growth bytes, replays answered success $s_ok/3000${pg_started:+; PostgreSQL grew $p_growth bytes, success $p_ok/3000}"
