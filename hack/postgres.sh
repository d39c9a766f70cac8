#!/usr/bin/env bash
# postgres.sh runs a throwaway PostgreSQL for the tests and benchmarks of the
# retention sweeper (internal/retention).
#
#   hack/postgres.sh start    start it (idempotent), wait until it is ready and
#                             create the database dossierguard_test
#   hack/postgres.sh stop     stop it cleanly (fast shutdown); no process is left
#   hack/postgres.sh status   exit 0 when running, 3 when not
#   hack/postgres.sh dsn      print the DSN to give the tests in
#                             DOSSIERGUARD_TEST_PG_DSN
#
# The server listens only on 127.0.0.1 (no TCP on other addresses), at port
# 55432 or $PGPORT, with trust authentication on loopback: it holds nothing
# but random test data. Its data directory is bin/postgres/data (bin/ is
# git-ignored). PostgreSQL refuses to run as root, so as root the server runs
# as the `postgres` OS user of the Debian package; as any other user it runs
# as that user. The binaries come from /usr/lib/postgresql/<version>/bin (the
# Debian package `postgresql`, installed with apt-get when missing and root),
# or from $PG_BINDIR.
# Progress goes to stderr; only `dsn` writes to stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${PGPORT:-55432}
DB=dossierguard_test
PGBASE="$ROOT/bin/postgres"
DATA="$PGBASE/data"
LOG="$PGBASE/postgres.log"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# find_bindir prints the newest /usr/lib/postgresql/<version>/bin, or $PG_BINDIR.
find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then
    [ -x "$PG_BINDIR/pg_ctl" ] || die "PG_BINDIR=$PG_BINDIR has no pg_ctl"
    echo "$PG_BINDIR"
    return
  fi
  local d
  d=$(for d in /usr/lib/postgresql/*/bin; do if [ -d "$d" ]; then echo "$d"; fi; done | sort -V | tail -n 1)
  if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; fi
}

BINDIR=$(find_bindir)
ensure_installed() {
  [ -n "$BINDIR" ] && return
  if [ "$(id -u)" -ne 0 ]; then
    die "PostgreSQL is not installed: run 'apt-get install -y postgresql' as root (or set PG_BINDIR)"
  fi
  log "installing the Debian package postgresql"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  BINDIR=$(find_bindir)
  [ -n "$BINDIR" ] || die "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/pg_ctl was found"
}

# As root, the server and its tools run as the postgres OS user.
if [ "$(id -u)" -eq 0 ]; then
  PGUSER_OS=postgres
  as_pg() { (cd "$PGBASE" && runuser -u "$PGUSER_OS" -- "$@"); }
else
  PGUSER_OS=$(id -un)
  as_pg() { (cd "$PGBASE" && "$@"); }
fi

prepare_dirs() {
  mkdir -p "$PGBASE"
  if [ "$(id -u)" -eq 0 ]; then
    id "$PGUSER_OS" >/dev/null 2>&1 || die "there is no OS user $PGUSER_OS (the Debian package postgresql creates it)"
    chown "$PGUSER_OS": "$PGBASE"
    if [ -d "$DATA" ]; then chown -R "$PGUSER_OS": "$DATA"; fi
    chmod 0700 "$PGBASE"
    # The postgres user must be able to reach bin/postgres.
    if ! runuser -u "$PGUSER_OS" -- test -x "$PGBASE"; then
      die "the OS user $PGUSER_OS cannot reach $PGBASE: give the parent directories o+x (or run as a non-root user)"
    fi
  fi
}

running() {
  [ -n "$BINDIR" ] && [ -f "$DATA/PG_VERSION" ] || return 1
  as_pg "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

psql_() {
  "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"
}

wait_ready() {
  for _ in $(seq 1 120); do
    if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres; then return 0; fi
    sleep 0.5
  done
  tail -n 30 "$LOG" >&2 || true
  die "PostgreSQL did not become ready on 127.0.0.1:$PORT within 60s (log: $LOG)"
}

ensure_db() {
  if [ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    log "creating database $DB"
    psql_ -d postgres -c "CREATE DATABASE $DB"
  fi
}

cmd_start() {
  ensure_installed
  prepare_dirs
  if running; then
    local port
    port=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)
    if [ -n "$port" ] && [ "$port" != "$PORT" ]; then
      die "already running on port $port, not $PORT: run 'PGPORT=$port $0 ...' or stop it first"
    fi
    log "already running (data $DATA)"
    wait_ready
    ensure_db
    return
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initdb $DATA ($("$BINDIR/postgres" --version))"
    rm -rf "$DATA"
    if ! as_pg "$BINDIR/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=trust --no-instructions >"$PGBASE/initdb.log" 2>&1; then
      cat "$PGBASE/initdb.log" >&2
      die "initdb failed"
    fi
    # TCP on loopback only, no Unix socket; trust is limited to loopback.
    cat >>"$DATA/postgresql.conf" <<EOF

# hack/postgres.sh: throwaway test server, loopback only
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 50
EOF
    cat >"$DATA/pg_hba.conf" <<EOF
# hack/postgres.sh: throwaway test server, loopback only
host all all 127.0.0.1/32 trust
EOF
    if [ "$(id -u)" -eq 0 ]; then chown "$PGUSER_OS": "$DATA/postgresql.conf" "$DATA/pg_hba.conf"; fi
  fi
  log "starting on 127.0.0.1:$PORT"
  : >"$LOG"
  if [ "$(id -u)" -eq 0 ]; then chown "$PGUSER_OS": "$LOG"; fi
  if ! as_pg "$BINDIR/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 -o "-p $PORT" >/dev/null; then
    tail -n 30 "$LOG" >&2 || true
    die "pg_ctl start failed (log: $LOG); is port $PORT in use? Set PGPORT to use another"
  fi
  wait_ready
  ensure_db
  log "ready: $(cmd_dsn)"
}

cmd_stop() {
  if ! running; then
    log "not running"
    return
  fi
  local pid state
  pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)
  log "stopping (fast shutdown: open sessions are rolled back)"
  as_pg "$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null
  if [ -f "$DATA/postmaster.pid" ]; then
    die "PostgreSQL did not stop (postmaster.pid remains in $DATA)"
  fi
  # pg_ctl returns once postmaster.pid is gone; wait for the process to exit
  # too (a zombie waiting for init to reap it counts as exited).
  if [ -n "$pid" ]; then
    for _ in $(seq 1 100); do
      state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1 || true)
      case "$state" in "" | Z*) break ;; esac
      sleep 0.1
    done
    case "$state" in "" | Z*) ;; *) die "postmaster (pid $pid) is still running after stop" ;; esac
  fi
  log "stopped"
}

cmd_status() {
  if running; then
    log "running on 127.0.0.1:$PORT (data $DATA)"
    return 0
  fi
  log "not running"
  return 3
}

cmd_dsn() {
  echo "postgres://postgres@127.0.0.1:$PORT/$DB?sslmode=disable"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  dsn) cmd_dsn ;;
  *) usage ;;
esac
