#!/usr/bin/env bash
# Project-local Postgres and Redis: own data dirs under .run/, free loopback
# ports, never the system's servers. Writes .run/env (DATABASE_URL, REDIS_URL)
# for the other scripts and the tests to source.
#   scripts/services.sh start   start both (reuses them if already running)
#   scripts/services.sh stop    stop both
#   scripts/services.sh status
#   scripts/services.sh start-pg | start-redis | stop-pg | stop-redis   one of them
# VMRESTORE_RUN_DIR=/tmp/x scripts/services.sh start: a private pair with its
# own data, ports and env file (the fault tests kill and restart theirs).
# A restart reuses the ports recorded in the run directory when they are free,
# so clients reconnect to the same URL.
# Postgres runs with fsync=off (speed: no test survives an OS crash anyway).
# synchronous_commit is off for the shared pair; a private pair
# (VMRESTORE_RUN_DIR) keeps it on: the fault tests SIGKILL Postgres, and the
# service relies on what Postgres acknowledged surviving a crash of it, as in
# production (the default). Override with VMRESTORE_PG_SYNC_COMMIT=on|off.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
RUN="${VMRESTORE_RUN_DIR:-$ROOT/.run}"
mkdir -p "$RUN"
PG_SYNC_COMMIT="${VMRESTORE_PG_SYNC_COMMIT:-$([ -n "${VMRESTORE_RUN_DIR:-}" ] && echo on || echo off)}"

free_port() {
  # The port used before, if recorded and free: a restarted server keeps its URL.
  if [ -n "${1:-}" ] && [ -s "$1" ] && node -e "const s=require('net').createServer();s.once('error',()=>process.exit(1));s.listen(+process.argv[1],'127.0.0.1',()=>s.close())" "$(cat "$1")" 2>/dev/null; then
    cat "$1"; return
  fi
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}
pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] || { echo "services: PostgreSQL is not installed (run scripts/deps.sh)" >&2; exit 1; }
  echo "$d"
}
# initdb and postgres refuse to run as root: run them as the postgres user.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A killed server whose parent does not reap it stays a zombie: kill -0 (and
# pg_ctl status) still find it, so a zombie counts as stopped.
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [[ "$st" != Z* ]]; }
pg_running() { [ -f "$RUN/pg/data/postmaster.pid" ] && alive "$(head -1 "$RUN/pg/data/postmaster.pid")" && as_pg "$(pg_bin)/pg_ctl" -D "$RUN/pg/data" status >/dev/null 2>&1; }
redis_running() { [ -f "$RUN/redis/redis.pid" ] && alive "$(cat "$RUN/redis/redis.pid")"; }

start_pg() {
  local bin; bin=$(pg_bin)
  if pg_running; then echo "services: postgres already running on port $(cat "$RUN/pg/port")"; return; fi
  mkdir -p "$RUN/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres "$RUN/pg"
  if [ ! -f "$RUN/pg/data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$RUN/pg/data" -U vmrestore --auth=trust -E UTF8 --no-instructions >"$RUN/pg/initdb.log" 2>&1 \
      || { cat "$RUN/pg/initdb.log" >&2; exit 1; }
  fi
  local port; port=$(free_port "$RUN/pg/port")
  echo "$port" >"$RUN/pg/port"
  # After a SIGKILL the old backends may still hold shared memory for a moment: retry.
  local ok=0
  for _ in 1 2 3 4 5; do
    if as_pg "$bin/pg_ctl" -D "$RUN/pg/data" -l "$RUN/pg/postgres.log" -w -t 60 \
      -o "-p $port -k $RUN/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=$PG_SYNC_COMMIT -c max_connections=200" start >/dev/null; then
      ok=1; break
    fi
    sleep 0.5
  done
  [ "$ok" = 1 ] || { tail -20 "$RUN/pg/postgres.log" >&2; exit 1; }
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U vmrestore vmrestore 2>/dev/null || true
  echo "services: postgres on 127.0.0.1:$port"
}
stop_pg() {
  if pg_running; then as_pg "$(pg_bin)/pg_ctl" -D "$RUN/pg/data" -m fast -w stop >/dev/null; echo "services: postgres stopped"; fi
}

start_redis() {
  command -v redis-server >/dev/null || { echo "services: redis-server is not installed (run scripts/deps.sh)" >&2; exit 1; }
  if redis_running; then echo "services: redis already running on port $(cat "$RUN/redis/port")"; return; fi
  mkdir -p "$RUN/redis"
  local port; port=$(free_port "$RUN/redis/port")
  echo "$port" >"$RUN/redis/port"
  # appendonly: a restarted Redis keeps its queues; noeviction: BullMQ must never lose keys.
  redis-server --bind 127.0.0.1 --port "$port" --dir "$RUN/redis" --daemonize yes \
    --pidfile "$RUN/redis/redis.pid" --logfile "$RUN/redis/redis.log" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --save ""
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" ping >/dev/null || { tail -20 "$RUN/redis/redis.log" >&2; exit 1; }
  echo "services: redis on 127.0.0.1:$port"
}
stop_redis() {
  if redis_running; then redis-cli -p "$(cat "$RUN/redis/port")" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$RUN/redis/redis.pid")"; echo "services: redis stopped"; fi
}

write_env() {
  # A local key for secrets at rest (vCenter passwords, webhook secrets),
  # made once per checkout and kept with the local database it protects.
  if [ ! -s "$RUN/secret-keys" ]; then
    (umask 077; echo "local1:$(node -e "process.stdout.write(require('crypto').randomBytes(32).toString('base64'))")" >"$RUN/secret-keys")
  fi
  cat >"$RUN/env" <<ENV
DATABASE_URL=postgresql://vmrestore@127.0.0.1:$(cat "$RUN/pg/port")/vmrestore
REDIS_URL=redis://127.0.0.1:$(cat "$RUN/redis/port")
VMRESTORE_SECRET_KEYS=$(cat "$RUN/secret-keys")
ENV
}

case "${1:-}" in
  start) start_pg; start_redis; write_env; echo "services: environment in $RUN/env" ;;
  stop) stop_redis; stop_pg ;;
  start-pg) start_pg ;;
  start-redis) start_redis ;;
  stop-pg) stop_pg ;;
  stop-redis) stop_redis ;;
  status) pg_running && echo "postgres: running" || echo "postgres: stopped"; redis_running && echo "redis: running" || echo "redis: stopped" ;;
  *) echo "usage: $0 start|stop|status|start-pg|start-redis|stop-pg|stop-redis" >&2; exit 2 ;;
esac
