#!/usr/bin/env bash
# Starts the vcsim harness in the background (building it first if needed).
#
#   scripts/start-vcsim.sh <json-file> [harness flags...]
#
# Writes the harness's JSON start line to <json-file>, its pid to
# <json-file>.pid and its log (stderr) to <json-file>.log, waits (up to 60 s)
# until the line is there, and prints it. Stop it with:
#   kill "$(cat <json-file>.pid)"        (SIGTERM: clean exit 0)
# Example:
#   scripts/start-vcsim.sh .run/vcsim.json -dir .run/vcsim-ds -username u -password p
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 <json-file> [harness flags...]" >&2
  exit 2
fi
OUT="$1"
shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/test/vcsim/bin/vcsim-harness"

"$ROOT/scripts/build-vcsim.sh" >&2

mkdir -p "$(dirname "$OUT")"
rm -f "$OUT" "$OUT.pid"
nohup "$BIN" "$@" >"$OUT" 2>"$OUT.log" </dev/null &
PID=$!
echo "$PID" >"$OUT.pid"

for _ in $(seq 1 600); do
  if [ -s "$OUT" ] && grep -q '}' "$OUT"; then
    echo "start-vcsim: harness pid $PID" >&2
    cat "$OUT"
    exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "start-vcsim: harness exited; log:" >&2
    cat "$OUT.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "start-vcsim: no start line after 60 s; stopping pid $PID" >&2
kill "$PID" 2>/dev/null || true
exit 1
