// Reads a sanitizer report (argv[2]) and fails on any memory error, any
// undefined behaviour, and any leak allocated by the addon or the simulator.
// A leak belongs to the first frame outside the allocator and the C/C++
// runtime: Node and V8 leak a little at exit (also when our callback is
// further down the stack because it called into JS); those are counted and
// ignored.
'use strict';
const text = require('node:fs').readFileSync(process.argv[2], 'utf8');
const runtime = /libsanitizer|asan_|ubsan_|\b(operator new|malloc|calloc|realloc|strdup|aligned_alloc)\b|libstdc\+\+|libc\.so|<unknown module>/;
const ours = /vddk\.node|libvixDiskLib|node-addon-api\/napi-inl\.h|native-vddk\/(src|sim)\/|[^_]src\/\w+\.cc|sim\/vddk_sim\.cc/;
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
