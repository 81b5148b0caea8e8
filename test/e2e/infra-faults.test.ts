import { chmodSync, mkdtempSync, openSync, closeSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackupRepository, vsphere, type FixtureChain } from '@vmrestore/core';
import { watchedCopy } from '../../apps/worker/src/watchdog';
import { apiCalls } from '../support/api';
import { waitFor } from '../support/env';
import { startPrivateServices, type PrivateServices } from '../support/private-services';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';
import { startVcsim } from '../support/vcsim';

// Infrastructure failing under a running restore, with the real processes
// (API, production worker), a vcsim harness and a Postgres and Redis of this
// file's own (other test files use the shared pair meanwhile): Redis and
// Postgres SIGKILLed and restarted, the disk target failing its writes, the
// repository turning unreadable, a write that stalls, the harness itself
// restarted. Each job must end (no hang), with the expected state and code,
// its cleanup done: no temporary snapshot, no VM lock left.

let svc: PrivateServices;
let renv: RestoreEnv;
let api: Proc & { url: string };
let worker: Proc | undefined;
const vms: Record<string, vsphere.MoRef> = {};
const chains: Record<string, FixtureChain> = {};

const { http, ended } = apiCalls(() => api.url, () => renv.headers);

// The worker gets short deadlines so a stall is seen within the test; the
// BullMQ lock outlives a short Redis restart.
const WORKER_ENV = {
  VMRESTORE_WORKER_CONCURRENCY: '1',
  VMRESTORE_LOCK_DURATION_MS: '10000',
  VMRESTORE_STALLED_INTERVAL_MS: '2000',
  VMRESTORE_REQUEUE_INTERVAL_MS: '1000',
  VMRESTORE_STALL_TIMEOUT_MS: '4000',
  VMRESTORE_STEP_ABORT_GRACE_MS: '2000',
  VMRESTORE_DB_WAIT_MS: '60000',
  VMRESTORE_JOB_ATTEMPTS: '3',
  VMRESTORE_WRITE_BATCH_EXTENTS: '2',
};

beforeAll(async () => {
  svc = await startPrivateServices();
  renv = await startRestoreEnv([], WORKER_ENV, svc);
  api = await startApi(renv.env);
  const c = await renv.client();
  for (const name of ['DC0_H0_VM0', 'DC0_H0_VM1', 'DC0_C0_RP0_VM0']) vms[name] = await vsphere.findVm(c, { inventoryPath: `DC0/vm/${name}` });
  await c.close();
  for (const [name, ref] of Object.entries(vms)) chains[name] = await renv.backupFor(ref.value, `if-${name}`, { incrementals: 2, seed: name.length * 7 });
}, 180_000);
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  await renv?.close();
  await svc?.close();
});

async function submit(vm: string, transport: 'file' | 'nbdssl' = 'nbdssl'): Promise<string> {
  const created = await http('POST', '/v1/restores', '/v1/restores', {
    kind: 'in_place',
    vcenter: renv.vcenterName,
    source: { vm: `if-${vm}`, point: 'p2' },
    target: { vm: vms[vm]!.value },
    options: { transports: [transport] },
  });
  expect(created.status).toBe(202);
  return created.body.id as string;
}

const checkpointed = (id: string) =>
  waitFor('a write checkpoint', async () => (await renv.db.diskCheckpoint.count({ where: { jobId: id, nextExtent: { gt: 0 } } })) > 0, 90_000, 50);

/** The VM's disks hold exactly the point's images. */
async function expectDisksOf(vm: string, pointId: string): Promise<void> {
  const c = await renv.client();
  const info = await vsphere.getVmInfo(c, vms[vm]!);
  await c.close();
  const point = chains[vm]!.points.find((p) => p.pointId === pointId)!;
  for (const d of info.disks) {
    const flat = readFileSync(renv.sim.flatPath(d.fileName));
    const expected = point.images.get(d.key)!;
    expect(flat.subarray(0, expected.length).equals(expected)).toBe(true);
  }
}

/** Nothing left behind: no temporary snapshot on the VM, no VM lock of the job. */
async function expectNoLeftovers(vm: string, jobId: string): Promise<void> {
  const c = await renv.client();
  const snaps = await vsphere.listSnapshots(c, vms[vm]!);
  await c.close();
  expect(snaps.all.filter((s) => s.name.startsWith('vmrestore-'))).toEqual([]);
  expect(await renv.db.vmLock.count({ where: { jobId } })).toBe(0);
}

async function restartWorker(opts: Parameters<typeof startWorkerProcess>[1] = {}) {
  await stop(worker, 'SIGKILL');
  worker = await startWorkerProcess(renv.env, opts);
}

it('Redis SIGKILLed and restarted mid-job: no job is lost, both end succeeded', async () => {
  await restartWorker();
  renv.setVddk({ writeDelayMs: 30 });
  const running = await submit('DC0_H0_VM0');
  const waiting = await submit('DC0_H0_VM1'); // concurrency 1: it waits in the queue
  await checkpointed(running);
  await svc.killRedis();
  await new Promise((r) => setTimeout(r, 1500));
  await svc.startRedis();
  renv.setVddk({ writeDelayMs: 0 });
  const [a, b] = [await ended(running, 120_000), await ended(waiting, 120_000)];
  expect([a.state, a.error, b.state, b.error]).toEqual(['succeeded', null, 'succeeded', null]);
  await expectDisksOf('DC0_H0_VM0', 'p2');
  await expectDisksOf('DC0_H0_VM1', 'p2');
  await expectNoLeftovers('DC0_H0_VM0', running);
  await expectNoLeftovers('DC0_H0_VM1', waiting);
}, 240_000);

it('Postgres SIGKILLed and restarted mid-job: the worker waits, records, resumes; the job succeeds', async () => {
  await restartWorker();
  renv.setVddk({ writeDelayMs: 30 });
  const creates = (await renv.sim.calls('CreateSnapshot_Task')).length;
  const id = await submit('DC0_H0_VM0');
  await checkpointed(id);
  await svc.killPostgres();
  await new Promise((r) => setTimeout(r, 3000));
  await svc.startPostgres();
  renv.setVddk({ writeDelayMs: 0 });
  const done = await ended(id, 120_000);
  expect([done.state, done.error]).toEqual(['succeeded', null]);
  // It waited rather than failed: no step failure recorded, one temporary snapshot ever.
  expect(worker!.output()).toContain('postgres unavailable');
  expect(done.steps.filter((s: any) => s.state !== 'succeeded')).toEqual([]);
  expect((await renv.sim.calls('CreateSnapshot_Task')).length).toBe(creates + 1);
  await expectDisksOf('DC0_H0_VM0', 'p2');
  await expectNoLeftovers('DC0_H0_VM0', id);
}, 240_000);

it('the disk target failing its writes (VDDK simulator): failed with the VIX code, cleanup done', async () => {
  await restartWorker();
  // Every write of the next 400 fails: each attempt fails at its first write.
  renv.setVddk({ fail: Array.from({ length: 400 }, (_, i) => `Write:${i + 1}:VIX_E_FILE_ERROR`).join(',') });
  try {
    const id = await submit('DC0_H0_VM1');
    const done = await ended(id, 120_000);
    expect([done.state, done.error?.code]).toEqual(['failed', 'VIX_E_FILE_ERROR']);
    expect(done.error.message).toMatch(/gave up after 3 attempts/);
    expect(done.steps.filter((s: any) => s.phase === 'cleanup').map((s: any) => s.state)).toEqual(['succeeded', 'succeeded']);
    await expectNoLeftovers('DC0_H0_VM1', id);
  } finally {
    renv.setVddk({ fail: '' });
  }
}, 180_000);

it('the repository turning unreadable mid-job: failed with a BACKUP_* code, cleanup done', async () => {
  // As root, mode 000 stops nobody: this worker runs without the capabilities that bypass file modes.
  await restartWorker({ wrapper: ['setpriv', '--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search'] });
  renv.setVddk({ writeDelayMs: 30 });
  const id = await submit('DC0_C0_RP0_VM0');
  const dataFiles = execFileSync('find', [join(renv.root, 'if-DC0_C0_RP0_VM0'), '-name', '*.dat', '-o', '-name', '*.data'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  expect(dataFiles.length).toBeGreaterThan(0);
  try {
    await checkpointed(id);
    for (const f of dataFiles) chmodSync(f, 0o000);
    // The running copy holds its source files open (still readable to it);
    // a write fault sends the job to its retry, which reads the repository again.
    renv.setVddk({ writeDelayMs: 0, fail: 'Write:1:VIX_E_FILE_ERROR' });
    const done = await ended(id, 120_000);
    expect(done.state).toBe('failed');
    expect(done.error.code).toMatch(/^BACKUP_/);
    expect(done.error.message).not.toMatch(/password/i);
    await expectNoLeftovers('DC0_C0_RP0_VM0', id);
  } finally {
    renv.setVddk({ fail: '' });
    for (const f of dataFiles) chmodSync(f, 0o644);
  }
}, 180_000);

it('a write whose progress stops: STEP_TIMEOUT after the stall timeout, cleanup done', async () => {
  await restartWorker();
  renv.setVddk({ writeDelayMs: 30 });
  const id = await submit('DC0_H0_VM1');
  await checkpointed(id);
  renv.setVddk({ writeDelayMs: 12_000 }); // storage that stops answering
  try {
    const done = await ended(id, 120_000);
    expect([done.state, done.error?.code]).toEqual(['failed', 'STEP_TIMEOUT']);
    expect(done.error.message).toMatch(/write_disks: no progress for 4000 ms/);
  } finally {
    renv.setVddk({ writeDelayMs: 0 });
  }
  await expectNoLeftovers('DC0_H0_VM1', id);
}, 180_000);

it('repository reads and disk copies that hang end with BACKUP_READ_TIMEOUT and VDDK_STALLED', async () => {
  // A FIFO without a writer: open() blocks in the kernel, as on a hung mount.
  const dir = mkdtempSync(join(tmpdir(), 'vmrestore-hang-'));
  const point = join(dir, 'vm1', 'p1');
  execFileSync('mkdir', ['-p', point]);
  execFileSync('mkfifo', [join(point, 'point.json')]);
  execFileSync('mkfifo', [join(dir, 'source.fifo')]);
  const release = (fifo: string) => closeSync(openSync(fifo, 'w')); // a writer lets the blocked open() return
  try {
    const repo = new FileBackupRepository([dir], { readTimeoutMs: 300 });
    await expect(repo.getPoint('vm1', 'p1')).rejects.toMatchObject({ code: 'BACKUP_READ_TIMEOUT', message: expect.stringMatching(/point\.json did not answer within 300 ms/) });
    release(join(point, 'point.json'));

    writeFileSync(join(dir, 'target.img'), Buffer.alloc(1 << 20));
    const copy = watchedCopy(
      { sources: [join(dir, 'source.fifo')], extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 1 << 20 }], target: { kind: 'file', path: join(dir, 'target.img') } },
      { stallMs: 300, graceMs: 300, label: 'disk 2000' },
    );
    await expect(copy).rejects.toMatchObject({ code: 'VDDK_STALLED', permanent: false, message: expect.stringMatching(/^disk 2000: disk copy made no progress for 300 ms/) });
    release(join(dir, 'source.fifo'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('the vCenter (harness) restarted mid-job: the job ends with a clear code, nothing hangs', async () => {
  await restartWorker();
  renv.setVddk({ writeDelayMs: 30 });
  const id = await submit('DC0_H0_VM0');
  await checkpointed(id);
  // The harness dies and a new one answers on the same port: new sessions,
  // a new certificate, new VMs (a real vCenter keeps its inventory; the
  // harness cannot). The pinned thumbprint no longer matches.
  const port = new URL(renv.sim.url).port;
  process.kill(renv.sim.pid, 'SIGKILL');
  const fresh = await startVcsim(['-port', port]);
  renv.setVddk({ writeDelayMs: 0 });
  try {
    const done = await ended(id, 150_000);
    expect(['failed', 'cleanup_pending']).toContain(done.state);
    expect(['VSPHERE_TLS_UNTRUSTED', 'VCENTER_CHANGED', 'VM_CHANGED', 'VSPHERE_NETWORK']).toContain(done.error.code);
    // The lock stays while the snapshot's removal is unproven (cleanup_pending); else it is released.
    const locks = await renv.db.vmLock.count({ where: { jobId: id } });
    expect(locks).toBe(done.state === 'cleanup_pending' ? 1 : 0);
  } finally {
    await fresh.stop();
  }
}, 200_000);
