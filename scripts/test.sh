#!/usr/bin/env bash
# The whole test suite from a fresh machine: set up everything, run every
# jest project (unit, native, integration, e2e), stop the services we
# started. Extra arguments go to jest (e.g. --selectProjects unit).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
started_here=1
cleanup() { [ -n "${started_here:-}" ] && [ -z "${KEEP_SERVICES:-}" ] && bash scripts/services.sh stop || true; }
trap cleanup EXIT
set -a; . .run/env; set +a

printf '\n\033[1m== type check of the tests\033[0m\n'
# ts-jest compiles each test file alone (isolatedModules) and does not type-check.
npx tsc -p tsconfig.test.json --noEmit

printf '\n\033[1m== tests\033[0m\n'
# On 2 cores jest runs the test files in band, in its own process: a client
# library's leftover timer (ioredis' sentinel reconnects) must not keep the
# run from ending once every test has.
npx jest --ci --forceExit "$@"
