// bench/rollback: a quick rollback with 1% of a disk changed against a full
// in-place restore of the same disk, from one run, end to end: API submit
// to job done, through the real api and worker processes into the vcsim
// harness (file target). Prints `name: value` lines and the ratio.
// Needs the build (npm run build), the harness (scripts/build-vcsim.sh) and
// the services (scripts/services.sh start).
//   node bench/rollback/run.mjs        BENCH_DISK_MB=2048 BENCH_CHANGED_PERCENT=1 BENCH_AREAS=200
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const core = require(join(ROOT, 'apps/core/dist'));
const { vsphere } = core;

const diskMb = Number(process.env.BENCH_DISK_MB ?? 2048);
const percent = Number(process.env.BENCH_CHANGED_PERCENT ?? 1);
const areaCount = Number(process.env.BENCH_AREAS ?? 200);
const MiB = 1024 * 1024;

const env = { ...process.env };
for (const line of readFileSync(join(ROOT, '.run', 'env'), 'utf8').split('\n')) {
  const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
  if (m && !env[m[1]]) env[m[1]] = m[2];
}
const work = mkdtempSync(join(tmpdir(), 'bench-rollback-'));
const children = [];
const cleanup = () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);

function start(args, extraEnv, ready) {
  const child = spawn(args[0], args.slice(1), { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d) => {
      out += d.toString();
      const v = ready(out);
      if (v) resolve(v);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}:\n${out.slice(-2000)}`)));
  });
}

// The simulator, with one VM whose disk is BENCH_DISK_MB.
const simLine = await new Promise((resolve, reject) => {
  const child = spawn(join(ROOT, 'test/vcsim/bin/vcsim-harness'), ['-dir', join(work, 'ds'), '-disk-mb', String(diskMb), '-vms', '1', '-clusters', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  createInterface({ input: child.stdout }).once('line', (l) => resolve(JSON.parse(l)));
  child.once('exit', (code) => reject(new Error(`harness exited ${code}`)));
});
const datastores = Object.entries(simLine.datastores).map(([k, v]) => `${k}=${v}`).join(';');
const cbt = async (path, body) => {
  const r = await fetch(new URL(path, simLine.control), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
};
const client = await vsphere.VSphereClient.connect({ url: simLine.url, username: simLine.username, password: simLine.password, thumbprint: simLine.thumbprintSha256, keepAliveMs: 0 });
const vmRef = await vsphere.findVm(client, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
const disk = (await vsphere.getVmInfo(client, vmRef)).disks[0];
const flatOf = (dsPath) => {
  const m = /^\[([^\]]+)\]\s*(.+)$/.exec(dsPath);
  const descriptor = join(simLine.datastores[m[1]], m[2]);
  return join(dirname(descriptor), /FLAT "([^"]+)"/.exec(readFileSync(descriptor, 'utf8'))[1]);
};

// A chain of backups of that disk.
const backups = join(work, 'backups');
const chain = await core.generateFixtureChain({ root: backups, vmId: 'bench', disks: [{ key: disk.key, capacityBytes: disk.capacityInBytes }], incrementals: 3, seed: 7, areasPerPoint: 24, maxAreaBytes: 8 * MiB });
const point = chain.points.at(-1);
const expected = point.images.get(disk.key);
const changeId = (await new core.FileBackupRepository([backups]).getPoint('bench', point.pointId)).disks[0].changeId;

// The api and a worker, a tenant with a key, the vCenter.
const appEnv = {
  VMRESTORE_PORT: '0',
  VMRESTORE_QUEUE_PREFIX: `bench${Date.now()}`,
  VMRESTORE_BACKUP_ROOTS: backups,
  VMRESTORE_DATASTORE_PATHS: datastores,
  VMRESTORE_WORK_DIR: join(work, 'work'),
  VMRESTORE_REQUEUE_INTERVAL_MS: '0',
  VMRESTORE_SWEEP_INTERVAL_MS: '0',
  LOG_LEVEL: 'info',
};
const apiUrl = await start([process.execPath, join(ROOT, 'apps/api/dist/server.js')], appEnv, (o) => /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(o)?.[1]);
await start([process.execPath, join(ROOT, 'apps/worker/dist/main.js')], appEnv, (o) => (o.includes('worker ready') ? true : null));
const db = core.createDb(env.DATABASE_URL);
const tenant = await core.createTenant(db, `bench-${Date.now()}`);
const { key } = await core.createApiKey(db, tenant.id, { name: 'bench', scopes: [...core.SCOPES] });
await db.$disconnect();
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
const call = async (method, path, body) => {
  const r = await fetch(apiUrl + path, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
  const json = await r.json();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
};
await call('POST', '/v1/vcenters', { name: 'sim', url: simLine.url, username: simLine.username, password: simLine.password, thumbprint: simLine.thumbprintSha256 });

/** Submit to done, in seconds, with the write_disks result. */
async function restore(mode) {
  const t0 = performance.now();
  let job = await call('POST', '/v1/restores', { kind: 'in_place', vcenter: 'sim', source: { vm: 'bench', point: point.pointId }, target: { vm: vmRef.value }, options: { transports: ['file'], mode } });
  while (!['succeeded', 'failed', 'cancelled', 'cleanup_pending'].includes(job.state)) {
    await new Promise((r) => setTimeout(r, 50));
    job = await call('GET', `/v1/restores/${job.id}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (job.state !== 'succeeded') throw new Error(`${mode} restore ${job.state}: ${JSON.stringify(job.error)}`);
  return { seconds, write: job.steps.find((s) => s.name === 'write_disks').result, quick: job.steps.find((s) => s.name === 'changed_areas')?.result };
}

function checkDisk(label) {
  const info = vsphere.getVmInfo(client, vmRef);
  return info.then((i) => {
    const fd = openSync(flatOf(i.disks[0].fileName), 'r');
    const buf = Buffer.alloc(64 * MiB);
    try {
      for (let off = 0; off < expected.length; off += buf.length) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, expected.length - off), off);
        if (!buf.subarray(0, n).equals(expected.subarray(off, off + n))) throw new Error(`${label}: the disk differs from the point near offset ${off}`);
      }
    } finally {
      closeSync(fd);
    }
  });
}

/** A guest writing `percent` of the disk in scattered areas, declared to CBT. */
let seed = 99;
const rnd = (n) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
async function changeDisk() {
  const per = Math.floor((disk.capacityInBytes * percent) / 100 / areaCount);
  const areas = Array.from({ length: areaCount }, (_, i) => ({ start: Math.floor((disk.capacityInBytes / areaCount) * i) + rnd(Math.max(1, Math.floor(disk.capacityInBytes / areaCount) - per)), length: per }));
  const info = await vsphere.getVmInfo(client, vmRef);
  const fd = openSync(flatOf(info.disks[0].fileName), 'r+');
  const junk = Buffer.alloc(per, 0x5a);
  for (const a of areas) writeSync(fd, junk, 0, a.length, a.start);
  closeSync(fd);
  await cbt('/cbt/changes', { vm: vmRef.value, disk: disk.key, areas });
  return areas.reduce((s, a) => s + a.length, 0);
}

const first = await restore('full'); // the VM becomes the point
await checkDisk('first full restore');
await cbt('/cbt', { vm: vmRef.value, disk: disk.key, changeId });
const changedQuick = await changeDisk();
const quick = await restore('quick_rollback');
await checkDisk('quick rollback');
if (quick.write.mode !== 'quick_rollback') throw new Error(`quick rollback fell back: ${JSON.stringify(quick.quick?.fallback)}`);
await changeDisk();
const full = await restore('full');
await checkDisk('full restore');

console.log(`disk_mib: ${diskMb}`);
console.log(`changed_percent: ${percent}`);
console.log(`changed_areas: ${areaCount}`);
console.log(`changed_bytes: ${changedQuick}`);
console.log(`quick_rollback_bytes_written: ${quick.write.bytes}`);
console.log(`full_restore_bytes_written: ${full.write.bytes}`);
console.log(`first_full_restore_s: ${first.seconds.toFixed(2)}`);
console.log(`full_restore_s: ${full.seconds.toFixed(2)}`);
console.log(`quick_rollback_s: ${quick.seconds.toFixed(2)}`);
console.log(`quick_vs_full_time_ratio: ${(quick.seconds / full.seconds).toFixed(3)}`);
console.log(`quick_vs_full_bytes_ratio: ${(quick.write.bytes / full.write.bytes).toFixed(4)}`);
await client.close();
process.exit(0);
