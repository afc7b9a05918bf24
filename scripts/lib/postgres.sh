# Starts a throwaway PostgreSQL cluster (Debian packages) on a free loopback
# port and exports ZHIFU_TEST_DATABASE_URL (and ZHIFU_TEST_PG_RESTART, a
# command that restarts it). Source it, then call
# start_postgres / stop_postgres. Tests run it with fsync off (speed);
# benchmarks set ZHIFU_PG_FSYNC=on to measure durable commits.

start_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PGTEST_DIR=$(mktemp -d /tmp/zhifu-pg.XXXXXX)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local as=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$PGTEST_DIR"
    as=(su postgres -s /bin/sh -c)
  else
    as=(sh -c)
  fi
  "${as[@]}" "$bin/initdb -D $PGTEST_DIR/data -A trust -U postgres -E UTF8 >$PGTEST_DIR/initdb.log 2>&1"
  "${as[@]}" "$bin/pg_ctl -D $PGTEST_DIR/data -o '-p $port -k $PGTEST_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${ZHIFU_PG_FSYNC:-off}' -l $PGTEST_DIR/log -w start >/dev/null"
  PGTEST_STOP=("${as[@]}" "$bin/pg_ctl -D $PGTEST_DIR/data -m fast stop >/dev/null")
  # A script that restarts this server (fast shutdown, then start with the
  # same options), keeping it down ZHIFU_TEST_PG_DOWN_SECS seconds (default
  # 0) in between: what the crash tests use to restart PostgreSQL under load.
  {
    echo '#!/usr/bin/env bash'
    echo 'set -eu'
    printf '%q ' "${as[@]}" "$bin/pg_ctl -D $PGTEST_DIR/data -m fast -w stop >/dev/null"
    echo
    echo 'sleep "${ZHIFU_TEST_PG_DOWN_SECS:-0}"'
    printf '%q ' "${as[@]}" "$bin/pg_ctl -D $PGTEST_DIR/data -o '-p $port -k $PGTEST_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${ZHIFU_PG_FSYNC:-off}' -l $PGTEST_DIR/log -w start >/dev/null"
    echo
  } >"$PGTEST_DIR/restart.sh"
  chmod +x "$PGTEST_DIR/restart.sh"
  export ZHIFU_TEST_PG_RESTART="$PGTEST_DIR/restart.sh"
  export ZHIFU_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

stop_postgres() {
  if [ -n "${PGTEST_DIR:-}" ]; then
    "${PGTEST_STOP[@]}" || true
    rm -rf "$PGTEST_DIR"
    unset ZHIFU_TEST_PG_RESTART
  fi
}
