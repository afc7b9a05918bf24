#!/usr/bin/env bash
# The capacity model's measurements (docs/capacity.md), in one sitting, on
# SQLite, PostgreSQL direct, PostgreSQL through PgBouncer (transaction
# pooling, `?pooler=transaction`) and MariaDB (durable commits):
#   (1) cost per operation — statements by kind, transactions, rows and
#       bytes written — for COUNT payments driven as a shop and a buyer
#       drive them: create the order, ask for its QR parameters (a gateway
#       call to the sandbox), the buyer pays at the sandbox, which signs and
#       delivers the notification, and Zhifu delivers `order.paid` to a
#       local webhook receiver (bench/capacity/receiver.js); then REFUNDS
#       full refunds, each with its `order.refunded` webhook and the
#       notification the sandbox sends for it.
#       PostgreSQL: pg_stat_statements (every statement, BEGIN/COMMIT
#       included) and pg_current_wal_lsn() around each phase.
#       MariaDB: SHOW GLOBAL STATUS (Com_*, Handler_*, redo bytes).
#       SQLite: sqlx's statement log (RUST_LOG=sqlx::query=debug; sqlx does
#       not log BEGIN/COMMIT there) and the WAL's growth (checkpointed and
#       truncated before each phase).
#   (2) throughput — payments applied and `order.paid` webhooks delivered
#       per second by 1 instance (SQLite) and by 1, 2, 4 `zhifu serve`
#       instances on one database (PostgreSQL direct and through PgBouncer,
#       MariaDB), with each process's CPU time per payment, each
#       run SECS seconds (≤ 20): notifications for fresh orders, signed
#       beforehand with the sandbox's Alipay key (bench/notify/sign-fresh.js),
#       posted once each (wrk, bench/notify/bodies.lua), split evenly over
#       the instances. The orders they are for are created without
#       payment parameters (the sandbox would only compete for the cores);
#       the shop's side is timed apart: QR_ORDERS orders created with their
#       QR parameters (bench/notify/create-orders.js) through one instance.
# PostgreSQL 15 from Debian with fsync on (scripts/lib/postgres.sh) plus
# pg_stat_statements (restarted with shared_preload_libraries), PgBouncer
# from scripts/lib/pgbouncer.sh with a pool of PGBOUNCER_POOL server
# connections. Release build; sandbox and receiver are separate processes
# on the same machine (they compete for its cores: report ratios).
#   [ZHIFU_BIN=…] COUNT=100 REFUNDS=20 SECS=8 ORDERS=5000 QR_ORDERS=500 \
#     INSTANCES="1 2 4" BACKENDS="sqlite pg pgbouncer mariadb" bench/capacity.sh
# (KEEP=1 keeps the work directory: logs, wrk output.)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-100}
refunds=${REFUNDS:-20}
secs=${SECS:-8}
orders=${ORDERS:-5000}
backends=${BACKENDS:-sqlite pg pgbouncer mariadb}
instances=${INSTANCES:-1 2 4}
[ "$secs" -le 20 ] || { echo "SECS must be at most 20 (the machine is shared)" >&2; exit 2; }
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }; }
# ZHIFU_BIN: measure a binary built earlier instead (no build).
if [ -n "${ZHIFU_BIN:-}" ]; then
  bin=$ZHIFU_BIN
else
  cargo build --release --locked -q -p zhifu
  bin=${CARGO_TARGET_DIR:-target}/release/zhifu
fi
work=$(mktemp -d)
pids=()
pg_started=
bouncer_started=
my_started=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$bouncer_started" ]; then stop_pgbouncer; fi
  if [ -n "$pg_started" ]; then stop_postgres; fi
  if [ -n "$my_started" ]; then stop_mariadb; fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 200); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.05; done; echo "no answer from $1" >&2; return 1; }
now() { date +%s.%N; }

# ---- the sandbox (Alipay), the app key, the webhook receiver -------------
"$bin" keygen --out "$work/keys" >/dev/null
app_id=2021000000000001
sport=$(free_port)
sandbox="http://127.0.0.1:$sport"
RUST_LOG=warn "$bin" sandbox --port "$sport" --state "$work/sandbox" \
  --app-public-key "$work/keys/app_public_key.pem" --app-id "$app_id" >"$work/sandbox.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "$sandbox/sandbox/api/info" >/dev/null && break; sleep 0.1; done
alipay_pub=$(curl -sf "$sandbox/sandbox/api/info" | jq -r .alipay_public_key)
alipay_key=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT value FROM meta WHERE key = ?", ("alipay_private_key",)).fetchone()[0])' "$work/sandbox/sandbox.sqlite3")
rport=$(free_port)
receiver="http://127.0.0.1:$rport"
node bench/capacity/receiver.js "$rport" &
pids+=($!)
for _ in $(seq 100); do curl -sf "$receiver/" >/dev/null && break; sleep 0.1; done
hooks() { curl -sf "$receiver/" | jq -r --arg t "$1" '.[$t] // 0'; }
# Waits until the receiver has $2 webhooks of type $1, or 30 s.
await_hooks() { for _ in $(seq 300); do [ "$(hooks "$1")" -ge "$2" ] && return 0; sleep 0.1; done; echo "only $(hooks "$1") of $2 $1 webhooks" >&2; return 1; }

api_key=bench-key-0123456789abcdef
serve_pids=()
# start_serve PORT DATABASE_URL LOG [ENV…]: one `zhifu serve` instance.
start_serve() {
  local port=$1 url=$2 log=$3
  shift 3
  env RUST_LOG=warn "$@" ZHIFU_DATABASE_URL="$url" ZHIFU_DB_MAX_CONNECTIONS="${DB_CONNECTIONS:-8}" \
    ZHIFU_RECONCILE_EVERY_SECS=0 \
    ALIPAY_APP_ID="$app_id" ALIPAY_APP_PRIVATE_KEY_FILE="$work/keys/app_private_key.pem" \
    ALIPAY_PUBLIC_KEY="$alipay_pub" ALIPAY_GATEWAY="$sandbox/gateway.do" \
    ZHIFU_PUBLIC_URL="http://127.0.0.1:$port" ZHIFU_API_KEY="$api_key" \
    ZHIFU_WEBHOOK_URL="$receiver/hook" ZHIFU_WEBHOOK_SECRET=whsec-bench-0123456789abcdef \
    PORT="$port" "$bin" serve --host 127.0.0.1 >>"$log" 2>&1 &
  serve_pids+=($!)
  pids+=($!)
  wait_up "http://127.0.0.1:$port" || { tail -n 20 "$log" >&2; exit 1; }
}
stop_serves() {
  local p
  for p in "${serve_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  serve_pids=()
}

# ---- counters ------------------------------------------------------------
# Each backend's `snap NAME` records what its phase counter needs; `delta
# PHASE N` prints one result line: phase, n, then per operation:
# statements, BEGIN, COMMIT, SELECT, INSERT, UPDATE, other, rows written,
# bytes written.
results="$work/results.txt"
: >"$results"

# SQLite: the statement log since the mark, and the WAL's size.
sqlite_db=
sqlite_log=
sqlite_mark() {
  python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()' "$sqlite_db"
  sqlite_from=$(wc -l <"$sqlite_log")
}
sqlite_delta() {
  local wal
  wal=$(stat -c %s "$sqlite_db-wal" 2>/dev/null || echo 0)
  # Connection setup (PRAGMAs of a newly opened pooled connection) is not
  # per operation: counted apart.
  tail -n +"$((sqlite_from + 1))" "$sqlite_log" | grep -o 'sqlx::query: summary="[A-Za-z]*' | awk -F'"' '{print toupper($2)}' |
    awk -v phase="$1" -v n="$2" -v wal="$wal" -v backend="$backend" '
      {k=$1; if (k=="PRAGMA") {pragma++; next} total++; c[k]++}
      END {
        other = total - c["SELECT"] - c["INSERT"] - c["UPDATE"] - c["BEGIN"] - c["COMMIT"]
        printf "%s %s %d %.2f %.2f %.2f %.2f %.2f %.2f %.2f - %.0f pragmas=%d\n", backend, phase, n, total/n, c["BEGIN"]/n, c["COMMIT"]/n,
          c["SELECT"]/n, c["INSERT"]/n, c["UPDATE"]/n, other/n, wal/n, pragma+0
      }' >>"$results"
}

# PostgreSQL: pg_stat_statements (reset at the mark) and the WAL position.
# Our own psql calls are left out by their text.
pg_admin=
pg_mark() {
  psql -qtA "$pg_admin" -c 'SELECT pg_stat_statements_reset()' >/dev/null
  pg_lsn=$(psql -qtA "$pg_admin" -c 'SELECT pg_current_wal_lsn()')
}
pg_delta() {
  local lsn
  lsn=$(psql -qtA "$pg_admin" -c 'SELECT pg_current_wal_lsn()')
  psql -qtA -F' ' "$pg_admin" -v lsn="$lsn" -v from="$pg_lsn" -v phase="$1" -v n="$2" -v backend="$backend" <<'SQL' >>"$results"
WITH s AS (
  SELECT upper(substring(query FROM '^\s*(?:--[^\n]*\n\s*)*([A-Za-z]+)')) AS kind,
         calls, rows, wal_bytes
  FROM pg_stat_statements
  WHERE query NOT ILIKE '%pg_stat_statements%' AND query NOT ILIKE '%pg_current_wal_lsn%'
)
SELECT :'backend', :'phase', :n,
  round(sum(calls)::numeric / :n, 2),
  round(coalesce(sum(calls) FILTER (WHERE kind IN ('BEGIN', 'START')), 0)::numeric / :n, 2),
  round(coalesce(sum(calls) FILTER (WHERE kind IN ('COMMIT', 'END')), 0)::numeric / :n, 2),
  round(coalesce(sum(calls) FILTER (WHERE kind = 'SELECT'), 0)::numeric / :n, 2),
  round(coalesce(sum(calls) FILTER (WHERE kind = 'INSERT'), 0)::numeric / :n, 2),
  round(coalesce(sum(calls) FILTER (WHERE kind = 'UPDATE'), 0)::numeric / :n, 2),
  round(coalesce(sum(calls) FILTER (WHERE kind NOT IN ('BEGIN', 'START', 'COMMIT', 'END', 'SELECT', 'INSERT', 'UPDATE')), 0)::numeric / :n, 2),
  round(coalesce(sum(rows) FILTER (WHERE kind IN ('INSERT', 'UPDATE', 'DELETE')), 0)::numeric / :n, 2),
  round(pg_wal_lsn_diff(:'lsn', :'from') / :n),
  'stmt_wal=' || round(sum(wal_bytes) / :n)
FROM s;
SQL
  # What the "other" statements were.
  psql -qtA -F' ' "$pg_admin" -v phase="$1" -v backend="$backend" >>"$work/other.txt" <<'SQL'
SELECT :'backend', :'phase', calls, left(regexp_replace(query, '\s+', ' ', 'g'), 60) FROM pg_stat_statements
WHERE upper(substring(query FROM '^\s*(?:--[^\n]*\n\s*)*([A-Za-z]+)')) NOT IN ('BEGIN', 'START', 'COMMIT', 'END', 'SELECT', 'INSERT', 'UPDATE')
  AND query NOT ILIKE '%pg_stat_statements%' AND query NOT ILIKE '%pg_current_wal_lsn%';
SQL
}

# MariaDB: the server's global status counters (Com_* count statements
# however they are sent; Handler_write/update/delete the rows written;
# Innodb_os_log_written the redo log written).
my_client=()
my_status() {
  "${my_client[@]}" -N -B -e "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_begin', 'Com_commit',
    'Com_select', 'Com_insert', 'Com_update', 'Com_delete', 'Com_rollback', 'Handler_write',
    'Handler_update', 'Handler_delete', 'Innodb_os_log_written')" | sort
}
my_mark() { my_status >"$work/my-before.txt"; }
my_delta() {
  my_status >"$work/my-after.txt"
  join "$work/my-before.txt" "$work/my-after.txt" | awk -v phase="$1" -v n="$2" -v backend="$backend" '
    {d[$1] = $3 - $2}
    END {
      st = d["Com_begin"] + d["Com_commit"] + d["Com_rollback"] + d["Com_select"] + d["Com_insert"] + d["Com_update"] + d["Com_delete"]
      # Each SHOW GLOBAL STATUS of ours is one question and one Com_show_status.
      printf "%s %s %d %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.0f questions=%.2f\n", backend, phase, n, st/n, d["Com_begin"]/n, d["Com_commit"]/n,
        d["Com_select"]/n, d["Com_insert"]/n, d["Com_update"]/n, (d["Com_delete"] + d["Com_rollback"])/n,
        (d["Handler_write"] + d["Handler_update"] + d["Handler_delete"])/n, d["Innodb_os_log_written"]/n, (d["Questions"] - 1)/n
    }' >>"$results"
}

# ---- (1) cost per operation ----------------------------------------------
# count_phases BASE MARK DELTA: the four phases at one instance.
count_phases() {
  local base=$1 mark=$2 delta=$3
  # Orders only.
  $mark
  node bench/notify/create-orders.js "$base" "$api_key" "$count" >"$work/plain.txt"
  $delta create "$count"
  # Orders with their QR parameters: the pay step is this minus the above.
  $mark
  node bench/notify/create-orders.js "$base" "$api_key" "$count" qr >"$work/qr.txt"
  $delta create+pay_params "$count"
  # The buyer pays; the sandbox notifies; Zhifu delivers `order.paid`.
  local paid0
  paid0=$(hooks order.paid)
  $mark
  cut -d' ' -f2 "$work/qr.txt" | xargs -P 4 -I{} curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    "$sandbox/sandbox/api/trades/pay" -d '{"out_trade_no":"{}"}'
  await_hooks order.paid "$((paid0 + count))"
  sleep 0.5
  $delta notification+webhook "$count"
  # Full refunds, one after the other, each with its webhook and the
  # notification Alipay (the sandbox) sends for it.
  local ref0
  ref0=$(hooks order.refunded)
  $mark
  head -n "$refunds" "$work/qr.txt" | cut -d' ' -f1 | while read -r id; do
    curl -sf -o /dev/null -X POST -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \
      "$base/v1/orders/$id/refunds" -d '{"amount":"1.00"}'
  done
  await_hooks order.refunded "$((ref0 + refunds))"
  sleep 2
  $delta refund+webhook+notification "$refunds"
}

# ---- (2) throughput ------------------------------------------------------
# CPU time used so far, in clock ticks, by the `zhifu serve` instances, by
# PostgreSQL (the postmaster with the children it reaped, and its live
# children) and by PgBouncer: "zhifu pg bouncer".
stat_ticks() {
  local v
  v=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v all="$2" '{print $12 + $13 + (all ? $14 + $15 : 0)}') || true
  echo "${v:-0}"
}
# cpu_ms BEFORE AFTER N: the CPU milliseconds per operation, three fields.
cpu_ms() {
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    for (i = 1; i <= 3; i++) printf "%s%.2f", (i > 1 ? " " : ""), (y[i] - x[i]) * 1000 / hz / n }'
}
cpu_now() {
  local z=0 pg=0 pb=0 p pm
  for p in "${serve_pids[@]}"; do z=$((z + $(stat_ticks "$p" 0))); done
  if [ -n "$pg_started" ]; then
    pm=$(head -1 "$PGTEST_DIR/data/postmaster.pid")
    pg=$(stat_ticks "$pm" 1)
    for p in $(pgrep -P "$pm"); do pg=$((pg + $(stat_ticks "$p" 0))); done
  fi
  if [ -n "$my_started" ]; then
    pg=$(stat_ticks "$MARIADB_PID" 0)
  fi
  if [ -n "$bouncer_started" ] && [ -f "$PGBOUNCER_DIR/pgbouncer.pid" ]; then
    pb=$(stat_ticks "$(cat "$PGBOUNCER_DIR/pgbouncer.pid")" 0)
  fi
  echo "$z $pg $pb"
}
throughput="$work/throughput.txt"
: >"$throughput"
template=
# run_throughput LABEL K URL: K instances on URL, SECS seconds.
run_throughput() {
  local label=$1 k=$2 url=$3 i bases=() t0 t1 n_per
  for i in $(seq "$k"); do
    local port
    port=$(free_port)
    start_serve "$port" "$url" "$work/serve-$label-$k.log"
    bases+=("http://127.0.0.1:$port")
  done
  # The shop's side, with one instance: orders created with their QR
  # parameters (a gateway call each), 16 in flight, timed.
  local create_rate=- create_cpu="- - -" c0 c1
  if [ "$k" = 1 ]; then
    c0=$(cpu_now)
    t0=$(now)
    node bench/notify/create-orders.js "${bases[0]}" "$api_key" "${QR_ORDERS:-500}" qr >/dev/null
    t1=$(now)
    c1=$(cpu_now)
    create_rate=$(awk -v n="${QR_ORDERS:-500}" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n/(b-a)}')
    create_cpu=$(cpu_ms "$c0" "$c1" "${QR_ORDERS:-500}")
  fi
  # The orders the notifications are for (no gateway call: the sandbox
  # would only compete for the cores).
  node bench/notify/create-orders.js "${bases[0]}" "$api_key" "$orders" >"$work/tp-orders.txt"
  if [ -z "$template" ]; then
    # A genuine notification from the sandbox, as the template of the
    # signed bodies.
    local no
    no=$(node bench/notify/create-orders.js "${bases[0]}" "$api_key" 1 qr | cut -d' ' -f2)
    curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' "$sandbox/sandbox/api/trades/pay" -d "{\"out_trade_no\":\"$no\"}"
    for _ in $(seq 100); do
      curl -sf "$sandbox/sandbox/api/notifications?out_trade_no=$no" | jq -j '.[0].body // .notifications[0].body // empty' >"$work/template.form"
      [ -s "$work/template.form" ] && break
      sleep 0.1
    done
    template="$work/template.form"
    sleep 1
  fi
  cut -d' ' -f2 "$work/tp-orders.txt" >"$work/tp-nos.txt"
  node bench/notify/sign-fresh.js "$template" "$alipay_key" "$work/tp-nos.txt" >"$work/tp-bodies.txt"
  n_per=$(( ($(wc -l <"$work/tp-bodies.txt") + k - 1) / k ))
  split -l "$n_per" -d "$work/tp-bodies.txt" "$work/tp-part."
  local paid0 wrk_pids=() c cpu0
  c=$(( 16 / k ))
  paid0=$(hooks order.paid)
  cpu0=$(cpu_now)
  t0=$(now)
  i=0
  for part in "$work"/tp-part.*; do
    BODIES_FILE="$part" wrk -t2 -c"$c" -d"${secs}s" -s bench/notify/bodies.lua "${bases[$i]}/alipay/notify" >"$work/wrk-$i.out" &
    wrk_pids+=($!)
    i=$((i + 1))
  done
  for p in "${wrk_pids[@]}"; do wait "$p"; done
  # Until the last webhook: deliveries run after the answer.
  local last=-1 cur
  for _ in $(seq 200); do
    cur=$(hooks order.paid)
    [ "$cur" = "$last" ] && break
    last=$cur
    t1=$(now)
    sleep 0.25
  done
  local paid=$((last - paid0)) cpu1
  cpu1=$(cpu_now)
  local rate
  rate=$(awk -v n="$paid" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n/(b-a)}')
  local note=""
  [ "$paid" -lt "$orders" ] || note=" (every prepared order paid: the rate is a lower bound, raise ORDERS)"
  echo "$label $k $rate $paid $(cpu_ms "$cpu0" "$cpu1" "$paid") $create_rate $create_cpu$note" >>"$throughput"
  rm -f "$work"/tp-part.*
  stop_serves
}

# ---- the backends --------------------------------------------------------
for backend in $backends; do
  case $backend in
    sqlite)
      sqlite_db="$work/zhifu.db"
      url="sqlite://$sqlite_db?mode=rwc"
      "$bin" migrate --database-url "$url" >/dev/null
      sqlite_log="$work/serve-sqlite-count.log"
      port=$(free_port)
      start_serve "$port" "$url" "$sqlite_log" RUST_LOG=warn,sqlx::query=debug
      count_phases "http://127.0.0.1:$port" sqlite_mark sqlite_delta
      stop_serves
      run_throughput sqlite 1 "$url"
      ;;
    pg | pgbouncer)
      if [ -z "$pg_started" ]; then
        source scripts/lib/postgres.sh
        ZHIFU_PG_FSYNC=on start_postgres
        pg_started=1
        pg_admin=$ZHIFU_TEST_DATABASE_URL
        psql -qtA "$pg_admin" -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null
        "$ZHIFU_TEST_PG_RESTART"
        psql -qtA "$pg_admin" -c 'CREATE EXTENSION pg_stat_statements' >/dev/null
        "$bin" migrate --database-url "$pg_admin" >/dev/null
      fi
      url=$pg_admin
      if [ "$backend" = pgbouncer ]; then
        source scripts/lib/pgbouncer.sh
        ZHIFU_PGBOUNCER_POOL_SIZE=${PGBOUNCER_POOL:-8} start_pgbouncer
        bouncer_started=1
        url=$ZHIFU_TEST_POOLER_URL
      fi
      port=$(free_port)
      start_serve "$port" "$url" "$work/serve-$backend-count.log"
      count_phases "http://127.0.0.1:$port" pg_mark pg_delta
      stop_serves
      for k in $instances; do run_throughput "$backend" "$k" "$url"; done
      if [ "$backend" = pgbouncer ]; then stop_pgbouncer; bouncer_started=; fi
      ;;
    mariadb)
      # Durable commits, like PostgreSQL's fsync on: scripts/lib/mariadb.sh
      # relaxes InnoDB flushing for the tests.
      source scripts/lib/mariadb.sh
      start_mariadb
      my_started=1
      my_client=(mariadb --no-defaults --socket="$MARIADB_DIR/mysqld.sock" -uroot)
      "${my_client[@]}" -e 'SET GLOBAL innodb_flush_log_at_trx_commit = 1; CREATE DATABASE zhifu_bench'
      url="${ZHIFU_TEST_MYSQL_URL%/*}/zhifu_bench"
      "$bin" migrate --database-url "$url" >/dev/null
      port=$(free_port)
      start_serve "$port" "$url" "$work/serve-mariadb-count.log"
      count_phases "http://127.0.0.1:$port" my_mark my_delta
      stop_serves
      for k in $instances; do run_throughput mariadb "$k" "$url"; done
      stop_mariadb
      my_started=
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
done

echo "machine: $(nproc) cores, $(uname -sr); $(psql --version 2>/dev/null | head -1); $(/usr/sbin/pgbouncer --version 2>/dev/null | head -1)"
echo "(1) per operation (cumulative phases: create+pay_params includes create):"
printf '%-10s %-28s %5s %7s %6s %7s %7s %7s %7s %6s %8s %9s %s\n' backend phase n stmts BEGIN COMMIT SELECT INSERT UPDATE other rows_wr bytes_wr note
while read -r b p n st be co se ins up ot rw by note; do
  printf '%-10s %-28s %5s %7s %6s %7s %7s %7s %7s %6s %8s %9s %s\n' "$b" "$p" "$n" "$st" "$be" "$co" "$se" "$ins" "$up" "$ot" "$rw" "$by" "$note"
done <"$results"
[ ! -s "$work/other.txt" ] || { echo "    \"other\" statements on PostgreSQL (backend, phase, calls, text):"; sed 's/^/    /' "$work/other.txt"; }
echo "(2) throughput, ${secs}s runs, wrk with 16 connections split over the instances:"
echo "    notifications → payments applied → order.paid delivered, per second; CPU ms per payment of all zhifu"
echo "    instances / the database server (PostgreSQL or MariaDB) / PgBouncer (user+system time); then the"
echo "    shop's side on one instance: orders created with QR parameters per second, and their CPU ms each"
printf '%-10s %4s %10s %6s %7s %7s %7s | %9s %7s %7s %7s\n' backend inst payments/s paid zhifu db pgb "orders/s" zhifu db pgb
while read -r b k rate paid cz cp cb cr qz qp qb note; do
  printf '%-10s %4s %10s %6s %7s %7s %7s | %9s %7s %7s %7s %s\n' "$b" "$k" "$rate" "$paid" "$cz" "$cp" "$cb" "$cr" "$qz" "$qp" "$qb" "$note"
done <"$throughput"
