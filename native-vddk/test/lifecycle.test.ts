// The addon is safe in worker_threads and at exit: a worker terminated, or a
// process exiting, in the middle of a copy neither crashes nor hangs (the
// cleanup hook cancels the job and joins its threads).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { tmpDir } from './helpers';

const addon = path.join(__dirname, '..', 'build', 'Release', 'vddk.node');

// Plain JS run in a child node: starts a 256 MiB copy (raw native API, as the
// facade would call it) and then ends the worker or the process mid-copy.
const script = `
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
function start(dir) {
  const native = require(${JSON.stringify(addon)});
  const job = { sources: [dir + '/src'], target: { kind: 'file', path: dir + '/dst', fresh: false },
    extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 256 * 1048576 }],
    progressIntervalMs: 0, bufferBytes: 65536, bufferCount: 4, metadata: [] };
  return native.copy(job, (p) => { if (p.bytesDone > 1048576 && parentPort) parentPort.postMessage('busy'); });
}
if (isMainThread) {
  const [mode, dir] = process.argv.slice(2);
  if (mode === 'worker') {
    const w = new Worker(__filename, { workerData: dir });
    w.once('message', async () => { await w.terminate(); console.log('worker terminated'); });
  } else {
    start(dir).promise.catch(() => {});
    setTimeout(() => { console.log('exiting'); process.exit(0); }, 100);
  }
} else {
  start(workerData);
}
`;

describe('lifecycle', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'script.js'), script);
    for (const f of ['src', 'dst']) {
      fs.writeFileSync(path.join(dir, f), '');
      fs.truncateSync(path.join(dir, f), 256 * 1024 * 1024);
    }
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['worker', 'worker terminated'],
    ['exit', 'exiting'],
  ])('survives %s in the middle of a copy', (mode, line) => {
    const r = spawnSync(process.execPath, [path.join(dir, 'script.js'), mode, dir], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(line);
    expect([r.status, r.signal]).toEqual([0, null]);
  });
});
