#!/usr/bin/env bash
# The service end to end on local defaults: sets up everything (Debian
# packages, npm, build, project-local Postgres and Redis), starts the API
# and a worker, submits a restore with the CLI and watches it with a
# progress bar. Stops what it started on exit.
#
# Today the restore steps themselves (vSphere client, disk writer, backup
# repository) are still being built (issues #3-#7): the job runs through the
# queue and the worker and then fails at its first step with NOT_IMPLEMENTED,
# saying which issue builds it. Nothing is faked.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
set -a; . .run/env; set +a
DEMO="$PWD/.run/demo"
mkdir -p "$DEMO"
PORT=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
export VMRESTORE_PORT="$PORT" VMRESTORE_QUEUE_PREFIX="demo" LOG_LEVEL=info

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

printf '\n\033[1m== starting the API on 127.0.0.1:%s and one worker (logs in %s)\033[0m\n' "$PORT" "$DEMO"
node apps/api/dist/server.js >"$DEMO/api.log" 2>&1 & pids+=($!)
node apps/worker/dist/main.js >"$DEMO/worker.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$PORT/readyz"; echo
echo "API docs: http://127.0.0.1:$PORT/docs"

printf '\n\033[1m== submitting an in-place restore and watching it\033[0m\n'
set +e
node apps/cli/dist/main.js --api "http://127.0.0.1:$PORT" submit \
  --kind in_place --vcenter demo-vcenter --source-vm demo-vm --point full-0001 --target-vm vm-1 \
  --label "demo restore" --watch
code=$?
set -e
if [ "$code" -ne 0 ]; then
  printf '\nThe job ran through the API, the queue and the worker, and stopped at its first step:\n'
  printf 'the restore steps are not built yet (see the error above and the README roadmap).\n'
fi
exit "$code"
