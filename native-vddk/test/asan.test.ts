// Runs test/asan.sh: the addon and simulator built with AddressSanitizer and
// UBSan, then with ThreadSanitizer, exercised by test/asan-driver.js. Each is
// skipped only when g++ lacks that sanitizer's runtime.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

const script = path.join(__dirname, 'asan.sh');
const has = (lib: string) => (spawnSync('g++', [`-print-file-name=${lib}`], { encoding: 'utf8' }).stdout?.trim() ?? '').startsWith('/');

for (const [mode, lib, what] of [
  ['address', 'libasan.so', 'AddressSanitizer and UBSan'],
  ['thread', 'libtsan.so', 'ThreadSanitizer'],
] as const) {
  if (!has(lib)) {
    // eslint-disable-next-line no-console
    console.warn(`asan.test.ts: ${what} skipped: g++ has no ${lib}, so the sanitizer run cannot be built`);
  }
  (has(lib) ? it : it.skip)(
    `copies cleanly under ${what}`,
    () => {
      const out = execFileSync('bash', [script, mode], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).toContain('asan-driver: ok');
      expect(out).toContain(`${mode} sanitizer: clean`);
    },
    300_000,
  );
}
