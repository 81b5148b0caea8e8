import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '@vmrestore/api';
import { generateFixtureChain, type FixtureChain } from '@vmrestore/core';
import { startWorker, productionPlans, type RunningWorker } from '@vmrestore/worker';
import { testConfig, waitFor, ROOT } from '../support/env';
import { checkContract } from '../support/contract';
import { createTenantWithKey, testSecurity, type TestTenant } from '../support/auth';

// The backup repository through the API, and verification as a job run by a
// real worker, on a fixture chain written to disk.

const root = mkdtempSync(join(tmpdir(), 'vmrestore-backups-'));
const outside = mkdtempSync(join(tmpdir(), 'vmrestore-outside-'));
const config = testConfig({ VMRESTORE_BACKUP_ROOTS: root });
let app: FastifyInstance;
let worker: RunningWorker;
let chain: FixtureChain;
let tenant: TestTenant;

async function call(method: 'GET' | 'POST', url: string, template: string, body?: unknown) {
  const res = await app.inject({ method, url, headers: { ...tenant.headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
  return { status: res.statusCode, body: checkContract(method, template, res) as Record<string, any> };
}
const ended = (id: string) =>
  waitFor(`job ${id}`, async () => {
    const r = await call('GET', `/v1/restores/${id}`, '/v1/restores/{id}');
    return ['succeeded', 'failed', 'cancelled'].includes(r.body.state) ? r.body : null;
  });

beforeAll(async () => {
  chain = await generateFixtureChain({ root, vmId: 'db01', incrementals: 3, seed: 7 });
  await generateFixtureChain({ root: outside, vmId: 'secret-vm', incrementals: 0, seed: 1 });
  symlinkSync(join(outside, 'secret-vm'), join(root, 'escape-vm'));
  app = await buildApp({ config, logLevel: 'silent', security: testSecurity() });
  tenant = await createTenantWithKey(app.db, ['backups:read', 'restores:read', 'restores:write']);
  worker = await startWorker({ config, plans: productionPlans(config), log: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await worker.close();
  await app.restoreQueue.obliterate({ force: true }).catch(() => undefined);
  await app.close();
});

it('lists VMs (never one whose directory leads outside the root) and their points', async () => {
  const vms = await call('GET', '/v1/backups', '/v1/backups');
  expect(vms.body.items.map((i: { vm: string }) => i.vm)).toEqual(['db01']);
  const points = await call('GET', '/v1/backups/db01/points', '/v1/backups/{vm}/points');
  expect(points.body.items.map((p: { point: string; kind: string }) => `${p.point}:${p.kind}`)).toEqual(['p0:full', 'p1:incremental', 'p2:incremental', 'p3:incremental']);
});

it('describes a point: disks, chain and config summary', async () => {
  const { body } = await call('GET', '/v1/backups/db01/points/p3', '/v1/backups/{vm}/points/{point}');
  expect(body.chain).toEqual(['p0', 'p1', 'p2', 'p3']);
  expect(body.parent).toBe('p2');
  const manifest = chain.points[3]!.manifest;
  expect(body.disks.map((d: { key: number; capacityBytes: number }) => [d.key, d.capacityBytes])).toEqual(manifest.disks.map((d) => [d.key, d.capacityBytes]));
  expect(body.disks[0].metadata['ddb.adapterType']).toEqual(expect.any(String));
  expect(body.config.deviceCount).toBeGreaterThan(0);
});

it.each([
  ['/v1/backups/nope/points', '/v1/backups/{vm}/points', 404, 'BACKUP_NOT_FOUND'],
  ['/v1/backups/db01/points/p9', '/v1/backups/{vm}/points/{point}', 404, 'BACKUP_NOT_FOUND'],
  ['/v1/backups/escape-vm/points', '/v1/backups/{vm}/points', 400, 'BACKUP_PATH_ESCAPE'],
  ['/v1/backups/..%2Fetc/points', '/v1/backups/{vm}/points', 400, 'VALIDATION_FAILED'],
  ['/v1/backups/db01/points/.hidden', '/v1/backups/{vm}/points/{point}', 400, 'VALIDATION_FAILED'],
])('GET %s → %s %s', async (url, template, status, code) => {
  const r = await call('GET', url, template);
  expect([r.status, r.body.code]).toEqual([status, code]);
});

it('verifies a whole chain as a job, with progress', async () => {
  const r = await call('POST', '/v1/backups/db01/points/p3/verify', '/v1/backups/{vm}/points/{point}/verify');
  expect(r.status).toBe(202);
  expect(r.body.kind).toBe('verify');
  const job = await ended(r.body.id);
  expect(job.state).toBe('succeeded');
  expect(job.progress.percent).toBe(100);
  expect(job.steps[0].result).toMatchObject({ ok: true, chain: ['p0', 'p1', 'p2', 'p3'] });
});

it('fails verification of a corrupted block, naming the point and block, and reports every problem', async () => {
  const victim = chain.points[1]!.manifest;
  const disk = victim.disks[0]!;
  const dat = join(root, 'db01', 'p1', disk.dataFile);
  const before = readFileSync(dat);
  const fd = openSync(dat, 'r+');
  writeSync(fd, Buffer.from([before[0]! ^ 0xff]), 0, 1, 0);
  closeSync(fd);
  try {
    const r = await call('POST', '/v1/backups/db01/points/p3/verify', '/v1/backups/{vm}/points/{point}/verify', { checksums: true });
    const job = await ended(r.body.id);
    expect(job.state).toBe('failed');
    expect(job.error.code).toBe('BACKUP_CHECKSUM_MISMATCH');
    expect(job.error.message).toMatch(/point p1 disk \d+ block 0/);
    const ev = await call('GET', `/v1/restores/${r.body.id}/events`, '/v1/restores/{id}/events');
    const report = ev.body.items.find((e: { type: string }) => e.type === 'verify.report');
    expect(report.data.ok).toBe(false);
    // Structure-only verification does not read data, so it passes.
    const quick = await call('POST', '/v1/backups/db01/points/p3/verify', '/v1/backups/{vm}/points/{point}/verify', { checksums: false });
    expect((await ended(quick.body.id)).state).toBe('succeeded');
  } finally {
    writeFileSync(dat, before);
  }
});

it('refuses to verify a point that does not exist, creating no job', async () => {
  const r = await call('POST', '/v1/backups/db01/points/zz/verify', '/v1/backups/{vm}/points/{point}/verify');
  expect([r.status, r.body.code]).toEqual([404, 'BACKUP_NOT_FOUND']);
});

it('says 503 BACKUP_REPOSITORY_NOT_CONFIGURED without roots', async () => {
  const bare = await buildApp({ config: testConfig(), logLevel: 'silent', security: testSecurity() });
  const res = await bare.inject({ method: 'GET', url: '/v1/backups', headers: tenant.headers });
  checkContract('GET', '/v1/backups', res);
  expect(res.statusCode).toBe(503);
  expect(JSON.parse(res.body).code).toBe('BACKUP_REPOSITORY_NOT_CONFIGURED');
  await bare.close();
});

describe('vmrestore import (CLI, local files)', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'apps/cli/dist/main.js'), ...args], { encoding: 'utf8' });

  it('imports a full and an incremental from raw images, which the API then lists and verifies', async () => {
    const work = mkdtempSync(join(tmpdir(), 'vmrestore-import-'));
    const size = 4 * 1024 * 1024;
    const base = Buffer.alloc(size);
    base.fill(0xab, 0, 65536);
    base.fill(0x11, 1024 * 1024, 1024 * 1024 + 4096);
    writeFileSync(join(work, 'full.raw'), base);
    const next = Buffer.from(base);
    next.fill(0x77, 2 * 1024 * 1024, 2 * 1024 * 1024 + 8192);
    writeFileSync(join(work, 'incr.raw'), next);
    writeFileSync(join(work, 'areas.json'), JSON.stringify([{ start: 2 * 1024 * 1024, length: 8192 }]));
    writeFileSync(join(work, 'config.json'), JSON.stringify({ name: 'imported', hardware: { numCPU: 2, memoryMB: 1024, device: [{ _type: 'VirtualDisk', key: 2000, capacityInBytes: size }] } }));
    writeFileSync(join(work, 'meta.json'), JSON.stringify({ 'ddb.adapterType': 'lsilogic' }));
    const full = cli('import', 'full', '--root', root, '--vm', 'imported', '--point', 'f1', '--config', join(work, 'config.json'), '--disk', `2000=${join(work, 'full.raw')}`, '--metadata', `2000=${join(work, 'meta.json')}`, '--json');
    expect(full.stderr).toBe('');
    expect(JSON.parse(full.stdout)).toMatchObject({ kind: 'full', disks: [{ key: 2000, dataBytes: 65536 + 4096 }] });
    const incr = cli('import', 'incremental', '--root', root, '--vm', 'imported', '--point', 'i1', '--parent', 'f1', '--config', join(work, 'config.json'), '--disk', `2000=${join(work, 'incr.raw')}`, '--areas', `2000=${join(work, 'areas.json')}`);
    expect(incr.status).toBe(0);
    expect(incr.stdout).toMatch(/imported incremental imported@i1/);
    const { body } = await call('GET', '/v1/backups/imported/points/i1', '/v1/backups/{vm}/points/{point}');
    expect(body.chain).toEqual(['f1', 'i1']);
    const v = await call('POST', '/v1/backups/imported/points/i1/verify', '/v1/backups/{vm}/points/{point}/verify');
    expect((await ended(v.body.id)).state).toBe('succeeded');
  });

  it('refuses bad usage with exit 2 and a bad import with exit 3, leaving nothing behind', () => {
    expect(cli('import', 'full', '--root', root).status).toBe(2);
    expect(cli('import', 'sideways').status).toBe(2);
    const work = mkdtempSync(join(tmpdir(), 'vmrestore-import-bad-'));
    mkdirSync(join(work, 'x'));
    writeFileSync(join(work, 'config.json'), '{}');
    const r = cli('import', 'incremental', '--root', root, '--vm', 'imported', '--point', 'i9', '--parent', 'missing', '--config', join(work, 'config.json'), '--disk', `2000=${join(work, 'nope.raw')}`, '--areas', `2000=${join(work, 'nope.json')}`);
    expect(r.status).toBe(3);
  });
});
