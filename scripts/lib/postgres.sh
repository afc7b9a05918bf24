# Starts a throwaway PostgreSQL cluster (Debian packages) on a free loopback
# port and exports ZHIFU_TEST_DATABASE_URL. Source it, then call
# start_postgres / stop_postgres.

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
  "${as[@]}" "$bin/pg_ctl -D $PGTEST_DIR/data -o '-p $port -k $PGTEST_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off' -l $PGTEST_DIR/log -w start >/dev/null"
  PGTEST_STOP=("${as[@]}" "$bin/pg_ctl -D $PGTEST_DIR/data -m fast stop >/dev/null")
  export ZHIFU_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

stop_postgres() {
  if [ -n "${PGTEST_DIR:-}" ]; then
    "${PGTEST_STOP[@]}" || true
    rm -rf "$PGTEST_DIR"
  fi
}
