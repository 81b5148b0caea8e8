#!/usr/bin/env bash
# Sanitizer run: builds the addon and the simulator with
# -fsanitize=address,undefined into build-asan/ and runs test/asan-driver.js
# (file copies, a checksum stop, a cancel, vddk copies) under node with
# libasan preloaded. Exit 77 = tool unavailable (skip); any report fails.
set -euo pipefail
cd "$(dirname "$0")/.."
LIBASAN="$(g++ -print-file-name=libasan.so 2>/dev/null || true)"
if [ ! -e "$LIBASAN" ] || [ "$LIBASAN" = "libasan.so" ]; then
  echo "SKIP: libasan.so not found (install g++ with AddressSanitizer support)"
  exit 77
fi
OUT=build-asan
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
mkdir -p "$OUT"
NAPI_INC="$(node -p "require('node-addon-api').include_dir")"
NODE_INC="$(node -p "process.config.variables.node_prefix || '/usr'")/include/node"
[ -d "$NODE_INC" ] || NODE_INC=/usr/include/node
g++ -std=c++17 -O1 -g $SAN -Wall -fPIC -shared -fexceptions \
  -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED -I"$NODE_INC" -I"$NAPI_INC" \
  src/addon.cc src/copy_job.cc src/hash_blocks.cc src/descriptor.cc src/file_sink.cc src/rate_limiter.cc src/sha256.cc src/vddk_library.cc src/vddk_sink.cc \
  -o "$OUT/vddk.node" -ldl -lpthread
make -s -B -C sim OUT="../$OUT/sim" CXXFLAGS="-O1 -g $SAN"
# The facade, compiled apart from dist/ so the normal build is untouched.
node ../node_modules/typescript/bin/tsc -p tsconfig.json --composite false --incremental false --declaration false \
  --declarationMap false --sourceMap false --outDir "$OUT/js"
export VMRESTORE_VDDK_ADDON="$PWD/$OUT/vddk.node"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
REPORT="$OUT/report.txt"
set +e
LD_PRELOAD="$LIBASAN" node test/asan-driver.js "$PWD/$OUT/js/index.js" "$PWD/$OUT/sim" >"$OUT/stdout.txt" 2>"$REPORT"
status=$?
set -e
cat "$OUT/stdout.txt"
node test/asan-filter.js "$REPORT"
grep -q "asan-driver: ok" "$OUT/stdout.txt" || { echo "asan: driver failed (exit $status)"; cat "$REPORT" >&2; exit 1; }
echo "asan: clean"
