#!/usr/bin/env bash
# Everything a fresh Debian machine needs before the service can run:
# Debian packages, npm dependencies (the native addon builds here), the
# Prisma client, the TypeScript build, the vcsim harness, then project-local
# Postgres and Redis started and migrated. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Debian packages"
bash scripts/deps.sh

step "npm dependencies"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  echo "setup: node_modules up to date"
fi

step "build (Prisma client, TypeScript)"
npm run --silent build

step "vcsim harness"
bash scripts/build-vcsim.sh

step "Postgres and Redis (project-local)"
bash scripts/services.sh start
set -a; . .run/env; set +a
node --no-warnings --experimental-wasm-modules scripts/migrate.mjs deploy
