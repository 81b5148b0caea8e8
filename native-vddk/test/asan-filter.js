// Reads a sanitizer report (argv[2]) and fails on any memory error, any
// undefined behaviour, and any leak allocated by the addon or the simulator.
// A leak belongs to the first frame outside the allocator and the C/C++
// runtime: Node and V8 leak a little at exit (also when our callback is
// further down the stack because it called into JS); those are counted and
// ignored.
//
// With --thread: a ThreadSanitizer report instead. Node and V8 are not built
// with TSan, yet their allocations and locks pass its interceptors, so their
// own teardown shows up as races (V8's platform workers at exit); a report
// counts when one of its stacks passes through the addon or the simulator.
'use strict';
const text = require('node:fs').readFileSync(process.argv[2], 'utf8');
const runtime = /libsanitizer|asan_|ubsan_|\b(operator new|malloc|calloc|realloc|strdup|aligned_alloc)\b|libstdc\+\+|libc\.so|<unknown module>/;
const ours = /vddk\.node|libvixDiskLib|node-addon-api\/napi-inl\.h|native-vddk\/(src|sim)\/|[^_]src\/\w+\.cc|sim\/vddk_sim\.cc/;
if (process.argv[3] === '--thread') {
  const reports = text.split(/\n(?==+\nWARNING: ThreadSanitizer)/).filter((b) => b.includes('WARNING: ThreadSanitizer'));
  const ourRaces = reports.filter((b) => b.split('\n').some((l) => /^\s*#\d+ /.test(l) && ours.test(l)));
  for (const b of ourRaces) console.error(b);
  console.log(`tsan: ${ourRaces.length} report(s) in addon/simulator, ${reports.length - ourRaces.length} in node itself ignored`);
  process.exit(ourRaces.length ? 1 : 0);
}
const errors = text.split('\n').filter((l) => /ERROR: AddressSanitizer|runtime error:/.test(l));
const leaks = text.split(/\n(?=(?:Direct|Indirect) leak)/).filter((b) => /^(Direct|Indirect) leak/.test(b));
function owner(block) {
  const frames = block.split('\n').filter((l) => /^\s*#\d+ /.test(l));
  return frames.find((f) => !runtime.test(f)) ?? '';
}
const ourLeaks = leaks.filter((b) => ours.test(owner(b)));
for (const b of [...errors, ...ourLeaks]) console.error(b);
console.log(
  `asan: ${errors.length} error(s), ${ourLeaks.length} leak(s) in addon/simulator, ` +
    `${leaks.length - ourLeaks.length} leak(s) elsewhere (node) ignored`,
);
process.exit(errors.length + ourLeaks.length ? 1 : 0);
