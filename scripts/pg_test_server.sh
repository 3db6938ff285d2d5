#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the history tests (and the two-replica load test).
#
#   scripts/pg_test_server.sh start   # init (once) and start; prints the SQLAlchemy URL
#   scripts/pg_test_server.sh url     # print the URL only
#   scripts/pg_test_server.sh stop    # stop the server and delete the cluster
#
# Idempotent: `start` on a running cluster only prints the URL, `stop` on none does nothing.
# Listens on a Unix socket only (no TCP), trusts local connections, runs as the `postgres`
# user when started by root. Installs Debian's `postgresql` only when no server binaries are
# found. Settings: SCRATCHDET_PG_ROOT (default /tmp/scratchdet-pg: the data folder and the
# socket), SCRATCHDET_PG_PORT (55432), SCRATCHDET_PG_DB (scratchdet).
set -euo pipefail

ROOT="${SCRATCHDET_PG_ROOT:-/tmp/scratchdet-pg}"
PORT="${SCRATCHDET_PG_PORT:-55432}"
DB="${SCRATCHDET_PG_DB:-scratchdet}"
DATA="$ROOT/data"
LOG="$ROOT/server.log"

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ] || [ ! -x "$found/pg_ctl" ]; then
    echo "pg_test_server: installing postgresql (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >/dev/null
    found=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$found"
}

# Run a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

url() {
  echo "postgresql+psycopg://postgres@/$DB?host=$ROOT&port=$PORT"
}

start() {
  local bin
  bin=$(pg_bin)
  mkdir -p "$ROOT"
  [ "$(id -u)" = 0 ] && chown postgres: "$ROOT"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
  fi
  if ! as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    # Throw-away data: no fsync; room for many test engines and two service replicas.
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o \
      "-k $ROOT -p $PORT -c listen_addresses='' -c fsync=off -c synchronous_commit=off \
       -c full_page_writes=off -c max_connections=300" >/dev/null
  fi
  if ! as_owner "$bin/psql" -h "$ROOT" -p "$PORT" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    as_owner "$bin/createdb" -h "$ROOT" -p "$PORT" -U postgres "$DB"
  fi
  url
}

stop() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$bin" ] && [ -f "$DATA/PG_VERSION" ]; then
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$ROOT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
