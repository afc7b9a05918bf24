# Starts Debian's PgBouncer (package `pgbouncer`) in transaction pooling
# mode in front of the PostgreSQL that scripts/lib/postgres.sh started, and
# exports ZHIFU_TEST_POOLER_URL: ZHIFU_TEST_DATABASE_URL pointed at PgBouncer,
# with `pooler=transaction` so that Zhifu runs in its pooler-safe mode.
# Source it, then call start_pgbouncer (after start_postgres) and
# stop_pgbouncer.
#
# The configuration is deliberately bare: `pool_mode = transaction` plus
# the lines PgBouncer cannot start without (where to listen, how to
# authenticate, which server). No `ignore_startup_parameters`, no
# `max_prepared_statements`: what a managed pooler gives by default is what
# Zhifu must work with. The pool is small, so that a test's connections
# really take turns on the same server connections.

start_pgbouncer() {
  local upstream=${ZHIFU_TEST_DATABASE_URL:?start_postgres first}
  # host, port, user, password (may be empty) of the upstream URL.
  local parts
  parts=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(p.hostname or "127.0.0.1", p.port or 5432, u.unquote(p.username or "postgres"), u.unquote(p.password or ""))' "$upstream")
  local pg_host pg_port user password
  read -r pg_host pg_port user password <<<"$parts"
  PGBOUNCER_DIR=$(mktemp -d /tmp/zhifu-pgbouncer.XXXXXX)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$PGBOUNCER_DIR/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=$pg_port

[pgbouncer]
pool_mode = transaction
default_pool_size = ${ZHIFU_PGBOUNCER_POOL_SIZE:-3}
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $PGBOUNCER_DIR/users.txt
logfile = $PGBOUNCER_DIR/pgbouncer.log
pidfile = $PGBOUNCER_DIR/pgbouncer.pid
INI
  # With trust, PgBouncer does not check the client's password, but logs
  # in to PostgreSQL with the one listed here.
  echo "\"$user\" \"$password\"" >"$PGBOUNCER_DIR/users.txt"
  # PgBouncer refuses to run as root.
  local as=()
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$PGBOUNCER_DIR"
    as=(su postgres -s /bin/sh -c)
  else
    as=(sh -c)
  fi
  "${as[@]}" "/usr/sbin/pgbouncer -d $PGBOUNCER_DIR/pgbouncer.ini"
  local i up=""
  for i in $(seq 50); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
      up=1
      break
    fi
    sleep 0.1
  done
  if [ -z "$up" ]; then
    echo "pgbouncer did not start:" >&2
    cat "$PGBOUNCER_DIR/pgbouncer.log" >&2 || true
    return 1
  fi
  # The upstream URL with PgBouncer's address and `pooler=transaction` added.
  ZHIFU_TEST_POOLER_URL=$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
cred = p.netloc.rsplit("@", 1)[0] + "@" if "@" in p.netloc else ""
query = "&".join(q for q in (p.query, "pooler=transaction") if q)
print(u.urlunsplit((p.scheme, cred + "127.0.0.1:" + sys.argv[2], p.path, query, "")))' "$upstream" "$port")
  export ZHIFU_TEST_POOLER_URL
}

stop_pgbouncer() {
  if [ -n "${PGBOUNCER_DIR:-}" ]; then
    if [ -f "$PGBOUNCER_DIR/pgbouncer.pid" ]; then
      local pid i
      pid=$(cat "$PGBOUNCER_DIR/pgbouncer.pid")
      kill "$pid" 2>/dev/null || true
      for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
    rm -rf "$PGBOUNCER_DIR"
    unset PGBOUNCER_DIR ZHIFU_TEST_POOLER_URL
  fi
}
