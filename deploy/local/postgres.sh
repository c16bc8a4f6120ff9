#!/usr/bin/env bash
# Local PostgreSQL for development and CI: Debian's `postgresql` package, our own cluster
# on 127.0.0.1:${OUTAGEDESK_PG_PORT:-55432}, run as the `postgres` user.
#   postgres.sh start   install if missing, init once, start, wait until it answers
#   postgres.sh stop    stop the cluster this script started (and nothing else)
#   postgres.sh env     print the connection settings
# Idempotent: starting a running cluster or stopping a stopped one is harmless.
set -euo pipefail

PORT="${OUTAGEDESK_PG_PORT:-55432}"
STATE_DIR="${OUTAGEDESK_LOCAL_DIR:-/var/tmp/outagedesk-local}"
DATA="$STATE_DIR/pgdata"
LOG="$STATE_DIR/postgres.log"
DB_USER=outagedesk
DB_PASS=outagedesk
DB_NAME=outagedesk
URL="postgresql+asyncpg://$DB_USER:$DB_PASS@127.0.0.1:$PORT/$DB_NAME"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

install_pg() {
  if [ -z "$(pg_bin)" ]; then
    echo "postgres: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
}

start() {
  install_pg
  local bin; bin=$(pg_bin)
  mkdir -p "$STATE_DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$STATE_DIR"
  if [ ! -s "$DATA/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$STATE_DIR'
max_connections = 300
shared_buffers = 512MB
fsync = on
synchronous_commit = on
max_prepared_transactions = 0
CONF
  fi
  if ! as_pg "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null || {
      echo "postgres: failed to start; log tail:" >&2; tail -n 30 "$LOG" >&2; exit 1; }
  fi
  for _ in $(seq 1 60); do
    "$bin/pg_isready" -h 127.0.0.1 -p "$PORT" -q && break
    sleep 1
  done
  "$bin/pg_isready" -h 127.0.0.1 -p "$PORT" -q || { echo "postgres: not answering" >&2; tail -n 30 "$LOG" >&2; exit 1; }
  local psql=("$bin/psql" -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ -z "$("${psql[@]}" -c "select 1 from pg_roles where rolname='$DB_USER'")" ]; then
    "${psql[@]}" -c "create role $DB_USER login superuser password '$DB_PASS'"
  fi
  if [ -z "$("${psql[@]}" -c "select 1 from pg_database where datname='$DB_NAME'")" ]; then
    "${psql[@]}" -c "create database $DB_NAME owner $DB_USER"
  fi
  # Answers a real query as the application user, not just a socket check.
  PGPASSWORD=$DB_PASS "$bin/psql" -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d "$DB_NAME" -qtA -c "select 1" >/dev/null
  echo "postgres: ready on 127.0.0.1:$PORT" >&2
  env_out
}

stop() {
  local bin; bin=$(pg_bin) || true
  if [ -n "$bin" ] && [ -s "$DATA/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null
    echo "postgres: stopped" >&2
  fi
}

env_out() {
  echo "OUTAGEDESK_TEST_DATABASE_URL=$URL"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  env) env_out ;;
  *) echo "usage: $0 start|stop|restart|env" >&2; exit 2 ;;
esac
