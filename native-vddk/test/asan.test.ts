// Runs test/asan.sh: the addon and simulator built with AddressSanitizer and
// UBSan, exercised by test/asan-driver.js. Skipped only when libasan is absent.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

const script = path.join(__dirname, 'asan.sh');
const libasan = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout?.trim() ?? '';
const available = libasan.startsWith('/');

if (!available) {
  // eslint-disable-next-line no-console
  console.warn('asan.test.ts skipped: g++ has no libasan.so, so the sanitizer run cannot be built');
}

(available ? it : it.skip)(
  'copies cleanly under AddressSanitizer and UBSan',
  () => {
    const out = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toContain('asan-driver: ok');
    expect(out).toContain('asan: clean');
  },
  300_000,
);
