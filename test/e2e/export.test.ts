import { mkdtempSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, generateFixtureChain, type Db, type FixtureChain } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { envFor, serviceEnv, testConfig, waitFor } from '../support/env';
import { startApi, stop, type Proc } from '../support/processes';
import { startWorkerProcess } from '../support/restore-env';
import { createTenantWithKey } from '../support/auth';

// Export: a restore point written as standalone VMDK files (issue #7), read
// back by qemu-img and compared byte for byte with the point.

const root = mkdtempSync(join(tmpdir(), 'vmrestore-exp-repo-'));
const exportRoot = mkdtempSync(join(tmpdir(), 'vmrestore-exports-'));
const expected = mkdtempSync(join(tmpdir(), 'vmrestore-exp-expected-'));
const config = testConfig();
const env = envFor(config, { VMRESTORE_SECRET_KEYS: serviceEnv().VMRESTORE_SECRET_KEYS!, VMRESTORE_BACKUP_ROOTS: root, VMRESTORE_EXPORT_ROOT: exportRoot, VMRESTORE_WORK_DIR: mkdtempSync(join(tmpdir(), 'vmrestore-exp-work-')) });
let api: Proc & { url: string };
let worker: Proc;
let db: Db;
let headers: { authorization: string };
let chain: FixtureChain;

const { http, ended } = apiCalls(() => api.url, () => headers);

beforeAll(async () => {
  db = createDb(config.databaseUrl);
  headers = (await createTenantWithKey(db)).headers;
  chain = await generateFixtureChain({ root, vmId: 'exp-src', incrementals: 3, seed: 23, expectedImagesDir: expected });
  api = await startApi(env);
  worker = await startWorkerProcess(env);
});
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  await db.$disconnect();
});

it.each([
  ['backward', 'p3'],
  ['forward', 'p2'],
])('exports a point (%s) as VMDKs that qemu-img reads as identical to the point', async (order, pointId) => {
  const dir = `exp-${order}`;
  const r = await http('POST', '/v1/exports', '/v1/exports', { source: { vm: 'exp-src', point: pointId }, target: { directory: dir }, options: { incrementalOrder: order } });
  expect(r.status).toBe(202);
  expect(r.body.kind).toBe('export');
  const job = await ended(r.body.id);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  const out = join(exportRoot, dir);
  const point = chain.points.find((p) => p.pointId === pointId)!;
  expect(readdirSync(exportRoot).filter((n) => n.startsWith('.partial'))).toEqual([]);
  for (const d of point.manifest.disks) {
    const descriptor = join(out, `exp-src-disk${d.key}.vmdk`);
    expect(readFileSync(descriptor, 'utf8')).toContain(`ddb.adapterType = "${d.metadata['ddb.adapterType']}"`);
    const flat = readFileSync(join(out, `exp-src-disk${d.key}-flat.vmdk`));
    expect(flat.subarray(0, d.capacityBytes).equals(point.images.get(d.key)!)).toBe(true);
    const info = spawnSync('qemu-img', ['info', '--output=json', descriptor], { encoding: 'utf8' });
    expect(JSON.parse(info.stdout).format).toBe('vmdk');
    const cmp = spawnSync('qemu-img', ['compare', '-F', 'raw', descriptor, join(expected, pointId, `disk-${d.key}.raw`)], { encoding: 'utf8' });
    expect(cmp.stdout).toMatch(/Images are identical/);
  }
  expect(JSON.parse(readFileSync(join(out, 'point.json'), 'utf8')).point).toBe(pointId);
});

it('refuses an export into a directory that exists, and leaves it alone', async () => {
  const r = await http('POST', '/v1/exports', '/v1/exports', { source: { vm: 'exp-src', point: 'p0' }, target: { directory: 'exp-backward' } });
  const job = await ended(r.body.id);
  expect([job.state, job.error.code]).toEqual(['failed', 'EXPORT_DIRECTORY_EXISTS']);
  expect(existsSync(join(exportRoot, 'exp-backward', 'point.json'))).toBe(true);
});

it('refuses a path as the directory, and an unknown point, before making a job', async () => {
  const bad = await http('POST', '/v1/exports', '/v1/exports', { source: { vm: 'exp-src', point: 'p0' }, target: { directory: '../etc' } });
  expect([bad.status, bad.body.errors[0].field]).toEqual([400, 'target.directory']);
  const missing = await http('POST', '/v1/exports', '/v1/exports', { source: { vm: 'exp-src', point: 'nope' }, target: { directory: 'x1' } });
  expect([missing.status, missing.body.code]).toEqual([404, 'BACKUP_NOT_FOUND']);
});
