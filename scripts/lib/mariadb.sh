# Starts a throwaway MariaDB server (Debian's mariadb-server) on a free
# loopback port, data under /tmp, and exports ZHIFU_TEST_MYSQL_URL (the
# server's `mysql` database; tests create their own next to it). Source it,
# then call start_mariadb / stop_mariadb. Runs as root with --user=root, the
# way CI containers run; binary logs off and InnoDB flushing relaxed, for
# speed (tests do not measure durability).

start_mariadb() {
  MARIADB_DIR=$(mktemp -d /tmp/zhifu-mariadb.XXXXXX)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local user mariadbd
  user=$(id -un)
  # /usr/sbin is not on every user's PATH.
  mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  mariadb-install-db --no-defaults --user="$user" --datadir="$MARIADB_DIR/data" \
    --auth-root-authentication-method=normal --skip-test-db \
    >"$MARIADB_DIR/install.log" 2>&1
  "$mariadbd" --no-defaults --user="$user" --datadir="$MARIADB_DIR/data" \
    --socket="$MARIADB_DIR/mysqld.sock" --pid-file="$MARIADB_DIR/mysqld.pid" \
    --bind-address=127.0.0.1 --port="$port" --skip-name-resolve \
    --max-connections=500 --innodb-flush-log-at-trx-commit=2 \
    --innodb-buffer-pool-size=128M --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_bin --log-error="$MARIADB_DIR/error.log" &
  MARIADB_PID=$!
  local i
  for i in $(seq 1 100); do
    if mariadb-admin --no-defaults --socket="$MARIADB_DIR/mysqld.sock" -uroot ping >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "$MARIADB_PID" 2>/dev/null; then
      cat "$MARIADB_DIR/error.log" >&2
      return 1
    fi
    sleep 0.2
  done
  # root over TCP with no password: a throwaway server on loopback only.
  export ZHIFU_TEST_MYSQL_URL="mysql://root@127.0.0.1:$port/mysql"
}

stop_mariadb() {
  if [ -n "${MARIADB_DIR:-}" ]; then
    kill "$MARIADB_PID" 2>/dev/null || true
    wait "$MARIADB_PID" 2>/dev/null || true
    rm -rf "$MARIADB_DIR"
    unset ZHIFU_TEST_MYSQL_URL MARIADB_DIR MARIADB_PID
  fi
}
