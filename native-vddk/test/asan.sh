#!/usr/bin/env bash
# Sanitizer runs: builds the addon and the simulator with a sanitizer into
# build-<mode>/ and runs test/asan-driver.js (file copies, read-back while
# writing, a checksum stop, cancels, vddk copies) under node with the
# sanitizer's runtime preloaded. Any report fails.
#   bash test/asan.sh           AddressSanitizer + UBSan (memory errors, UB, our leaks)
#   bash test/asan.sh thread    ThreadSanitizer (data races between the copy's threads)
# Exit 77 = the sanitizer's runtime is unavailable (skip).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-address}"
case "$MODE" in
  address) LIB=libasan.so; SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" ;;
  thread) LIB=libtsan.so; SAN="-fsanitize=thread" ;;
  *) echo "usage: $0 [address|thread]" >&2; exit 2 ;;
esac
RUNTIME="$(g++ -print-file-name=$LIB 2>/dev/null || true)"
if [ ! -e "$RUNTIME" ] || [ "$RUNTIME" = "$LIB" ]; then
  echo "SKIP: $LIB not found (install g++ with its sanitizers)"
  exit 77
fi
OUT=build-$MODE
[ "$MODE" = address ] && OUT=build-asan
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
export TSAN_OPTIONS="halt_on_error=0:report_signal_unsafe=0"
REPORT="$OUT/report.txt"
set +e
LD_PRELOAD="$RUNTIME" node test/asan-driver.js "$PWD/$OUT/js/index.js" "$PWD/$OUT/sim" >"$OUT/stdout.txt" 2>"$REPORT"
status=$?
set -e
cat "$OUT/stdout.txt"
if [ "$MODE" = address ]; then
  node test/asan-filter.js "$REPORT"
else
  node test/asan-filter.js "$REPORT" --thread
fi
grep -q "asan-driver: ok" "$OUT/stdout.txt" || { echo "$MODE: driver failed (exit $status)"; cat "$REPORT" >&2; exit 1; }
echo "$MODE sanitizer: clean"
