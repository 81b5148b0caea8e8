import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { JOB_MARKER, vsphere, type Db } from '@vmrestore/core';
import pino from 'pino';
import { acquireLease, DEFAULT_SWEEP_OPTIONS, leaseScope, releaseLease, renewLease, sweepOrphans } from '../../apps/worker/src/orphans';
import { apiCalls } from '../support/api';
import { ROOT, waitFor } from '../support/env';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// The orphan sweeper (docs/orphans.md) with real worker processes, Postgres
// and the vcsim harness. Orphans are made the way crashed jobs leave them:
// job rows in their end states, temporary snapshots named after them, VMs
// with their marker, vm_locks rows nobody released. Two workers start
// together; one sweeps (the lease). The report is read through the API
// (contract-checked) and the CLI.

let renv: RestoreEnv;
let api: Proc & { url: string };
const workers: Proc[] = [];
const { http } = apiCalls(() => api.url, () => renv.headers);
const CLI = join(ROOT, 'apps/cli/dist/main.js');

beforeAll(async () => {
  renv = await startRestoreEnv();
  api = await startApi(renv.env);
}, 120_000);
afterAll(async () => {
  for (const w of workers) await stop(w);
  await stop(api);
  await renv?.close();
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, VMRESTORE_API_URL: api.url, VMRESTORE_API_KEY: renv.headers.authorization.replace(/^Bearer /, '') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += String(d)));
  child.stderr!.on('data', (d) => (stderr += String(d)));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function job(db: Db, tenantId: string, vcenter: string, state: 'running' | 'succeeded' | 'failed' | 'cancelled', vm: string | null, kind: 'in_place' | 'new_vm' = 'in_place') {
  const j = await db.restoreJob.create({
    data: { tenantId, kind, state, vcenter, targetVm: vm, sourceVm: 'orphan-src', sourcePoint: 'p1', request: { vcenter, kind, source: { vm: 'orphan-src', point: 'p1' } } },
  });
  return j.id;
}

const vmNamed = (c: vsphere.VSphereClient, name: string) => vsphere.findVm(c, { inventoryPath: `DC0/vm/${name}` });
const snapshotNames = async (c: vsphere.VSphereClient, vm: vsphere.MoRef) => (await vsphere.listSnapshots(c, vm)).all.map((s) => s.name);

/** A VM as a new-VM restore makes it: our marker in extraConfig. */
async function markedVm(c: vsphere.VSphereClient, name: string, jobId: string): Promise<vsphere.MoRef> {
  const folder = (await vsphere.findByInventoryPath(c, 'DC0/vm'))!;
  const pool = (await vsphere.findByInventoryPath(c, 'DC0/host/DC0_H0/Resources'))!;
  return vsphere.createVm(c, {
    folder,
    pool,
    config: {
      name,
      guestId: 'otherGuest',
      numCPUs: 1,
      memoryMB: 64,
      files: { vmPathName: '[LocalDS_0]' },
      extraConfig: [{ _type: 'OptionValue', key: JOB_MARKER, value: jobId }],
    } as unknown as vsphere.VirtualMachineConfigSpec,
  });
}

it('cleans what crashed jobs left, escalates to consolidation, reports the rest; one worker sweeps', async () => {
  const { db, tenantId, vcenterName: vc } = renv;
  const conn = (await db.vCenterConnection.findFirst({ where: { tenantId, name: vc } }))!;
  const c = await renv.client();
  const [vmA, vmB, vmC, vmD] = await Promise.all(['DC0_H0_VM0', 'DC0_H0_VM1', 'DC0_C0_RP0_VM0', 'DC0_C0_RP0_VM1'].map((n) => vmNamed(c, n)));

  // A: a failed SAN job's temporary snapshot (revert first), under an operator's own snapshot; its lock.
  const jA = await job(db, tenantId, vc, 'failed', vmA!.value);
  await db.diskCheckpoint.create({ data: { jobId: jA, diskKey: 204, state: { transport: 'san' } } });
  await vsphere.createSnapshot(c, vmA!, { name: 'nightly' });
  const snapA = await vsphere.createSnapshot(c, vmA!, { name: `vmrestore-${jA}` });
  await db.vmLock.create({ data: { vcenter: conn.id, vmRef: vmA!.value, jobId: jA } });
  // B: a running job's snapshot and lock: its own.
  const jB = await job(db, tenantId, vc, 'running', vmB!.value);
  await vsphere.createSnapshot(c, vmB!, { name: `vmrestore-${jB}` });
  await db.vmLock.create({ data: { vcenter: conn.id, vmRef: vmB!.value, jobId: jB } });
  // C: a cancelled job's snapshot whose removal dies half-way, leaving its delta disks.
  const jC = await job(db, tenantId, vc, 'cancelled', vmC!.value);
  const snapC = await vsphere.createSnapshot(c, vmC!, { name: `vmrestore-${jC}` });
  await renv.sim.failRemovalLeavingDeltas(snapC.value, 1);
  // D: a failed job's snapshot that cannot be removed at all (for now), and the job's lock.
  const jD = await job(db, tenantId, vc, 'failed', vmD!.value);
  const snapD = await vsphere.createSnapshot(c, vmD!, { name: `vmrestore-${jD}` });
  await renv.sim.injectFault({ method: 'RemoveSnapshot_Task', moref: snapD.value, fault: 'GenericVmConfigFault', message: 'the disk is locked', count: -1 });
  await db.vmLock.create({ data: { vcenter: conn.id, vmRef: vmD!.value, jobId: jD } });
  // New VMs: a failed job's, a succeeded job's (the restore's result), one whose job row is gone.
  const jE = await job(db, tenantId, vc, 'failed', null, 'new_vm');
  const jF = await job(db, tenantId, vc, 'succeeded', null, 'new_vm');
  const jG = randomUUID();
  const vmE = await markedVm(c, 'orphan-failed', jE);
  const vmF = await markedVm(c, 'restored-ok', jF);
  const vmG = await markedVm(c, 'orphan-no-job', jG);
  // A stale lock of a succeeded job whose cleanup never ran.
  const jH = await job(db, tenantId, vc, 'succeeded', 'vm-4242');
  await db.vmLock.create({ data: { vcenter: conn.id, vmRef: 'vm-4242', jobId: jH } });
  await renv.sim.clearCalls();

  const env = { ...renv.env, VMRESTORE_ORPHAN_SWEEP_INTERVAL_MS: '3600000', VMRESTORE_ORPHAN_SWEEP_TENANT: tenantId, VMRESTORE_ORPHAN_REQUEST_POLL_MS: '300' };
  workers.push(...(await Promise.all([startWorkerProcess(env), startWorkerProcess(env)])));
  const sweep = await waitFor(
    'the start sweep',
    () => db.orphanSweep.findFirst({ where: { scopeTenantId: tenantId, status: { in: ['done', 'failed'] } }, include: { items: true } }),
    90_000,
    200,
  );
  // Both workers tried; one swept, the other found the lease held (or the scope just swept).
  await waitFor('both workers to try a sweep', async () => workers.every((w) => /orphan sweep (started|skipped)/.test(w.output())), 30_000, 100);
  expect(workers.filter((w) => w.output().includes('"msg":"orphan sweep started"'))).toHaveLength(1);
  expect(await db.orphanSweep.count({ where: { scopeTenantId: tenantId } })).toBe(1);
  expect([sweep.trigger, sweep.status, sweep.errorCode]).toEqual(['start', 'done', null]);

  // vCenter after the sweep.
  expect(await snapshotNames(c, vmA!)).toEqual(['nightly']);
  expect(await snapshotNames(c, vmB!)).toEqual([`vmrestore-${jB}`]);
  expect(await snapshotNames(c, vmC!)).toEqual([]);
  expect(await vsphere.getProperty(c, vmC!, 'runtime.consolidationNeeded')).toBe(false);
  for (const d of (await vsphere.getVmInfo(c, vmC!)).disks) expect(d.chain).toHaveLength(1); // the delta was merged
  expect(await snapshotNames(c, vmD!)).toEqual([`vmrestore-${jD}`]);
  const names = (await vsphere.findAll(c, 'VirtualMachine', ['name'])).map((oc) => vsphere.propValue<string>(oc, 'name'));
  expect(names).toContain('restored-ok');
  expect(names).not.toContain('orphan-failed');
  expect(names).not.toContain('orphan-no-job');
  expect(await vsphere.getProperty(c, vmF, 'name')).toBe('restored-ok');
  // The SAN job's snapshot was reverted to before its removal; C and D escalated to consolidation.
  expect((await renv.sim.calls('RevertToSnapshot_Task')).map((x) => x.moref)).toEqual([snapA.value]);
  expect((await renv.sim.calls('ConsolidateVMDisks_Task')).map((x) => x.moref).sort()).toEqual([vmC!.value, vmD!.value].sort());
  expect((await renv.sim.calls('RemoveSnapshot_Task')).filter((x) => x.moref === snapD.value).length).toBeGreaterThanOrEqual(4); // 3 tries, 1 after consolidating
  // Locks: the ended jobs' gone, except the one whose snapshot is still there; the running job's kept.
  expect((await db.vmLock.findMany({ where: { jobId: { in: [jA, jB, jD, jH] } } })).map((l) => l.jobId).sort()).toEqual([jB, jD].sort());

  // The report, through the API.
  const report = (await http('GET', '/v1/orphans', '/v1/orphans')).body;
  expect(report.sweep).toMatchObject({ id: sweep.id, trigger: 'start', status: 'done', found: 8, cleaned: 6, left: 2, kept: 1, error: null });
  expect(report.pending).toBeNull();
  const row = (i: any) => [i.kind, i.jobId, i.action, i.outcome, i.error?.code ?? null];
  expect(report.items.map(row).sort()).toEqual(
    [
      ['vm', jE, 'destroyed', 'cleaned', null],
      ['vm', jG, 'destroyed', 'cleaned', null],
      ['snapshot', jA, 'reverted_removed', 'cleaned', null],
      ['snapshot', jB, 'none', 'kept', null],
      ['snapshot', jC, 'consolidated', 'cleaned', null],
      ['snapshot', jD, 'none', 'left', 'VSPHERE_VM_CONFIG_FAULT'],
      ['lock', jA, 'deleted', 'cleaned', null],
      ['lock', jH, 'deleted', 'cleaned', null],
      ['lock', jD, 'none', 'left', 'TEMP_SNAPSHOT_LEFT'],
    ].sort(),
  );
  const left = report.items.find((i: any) => i.kind === 'snapshot' && i.jobId === jD);
  expect(left).toMatchObject({ vcenter: vc, vm: vmD!.value, snapshot: snapD.value, snapshotName: `vmrestore-${jD}`, jobState: 'failed' });
  expect(left.error.message).toContain('the disk is locked');
  expect(report.items.find((i: any) => i.jobId === jG).jobState).toBeNull();
  expect(JSON.stringify(report)).not.toContain(renv.sim.password);

  // The same through the CLI.
  const shown = await cli(['orphans', '--json']);
  expect(shown.code).toBe(0);
  expect(JSON.parse(shown.stdout)).toEqual(report);
  const human = await cli(['orphans']);
  expect(human.stdout).toMatch(new RegExp(`left +snapshot +none .*vmrestore-${jD}.*VSPHERE_VM_CONFIG_FAULT`));

  // What was left goes at a later sweep, once it can: asked for from the CLI.
  await renv.sim.clearFaults();
  const again = await cli(['orphans', 'sweep', '--watch', '--json', '--interval', '200', '--timeout', '60s']);
  expect([again.code, again.stderr]).toEqual([0, '']);
  const second = JSON.parse(again.stdout);
  expect(second.sweep).toMatchObject({ trigger: 'request', status: 'done', found: 2, cleaned: 2, left: 0, kept: 1 });
  expect(second.items.map(row).sort()).toEqual(
    [
      ['snapshot', jB, 'none', 'kept', null],
      ['snapshot', jD, 'removed', 'cleaned', null],
      ['lock', jD, 'deleted', 'cleaned', null],
    ].sort(),
  );
  expect(await snapshotNames(c, vmD!)).toEqual([]);
  // No temporary snapshot remains but the running job's.
  const temps = (await vsphere.findAll(c, 'VirtualMachine', ['snapshot'])).flatMap((oc) => {
    const walk = (t: vsphere.VirtualMachineSnapshotTree): string[] => [t.name, ...(t.childSnapshotList ?? []).flatMap(walk)];
    return (vsphere.propValue<vsphere.VirtualMachineSnapshotInfo>(oc, 'snapshot')?.rootSnapshotList ?? []).flatMap(walk).filter((n) => n.startsWith('vmrestore-'));
  });
  expect(temps).toEqual([`vmrestore-${jB}`]);
  await c.close();
}, 240_000);

it('the sweep lease: one holder at a time, taken over once it expires unrenewed', async () => {
  const scope = `test:${randomUUID()}`;
  const db = renv.db;
  expect(await acquireLease(db, scope, 'worker-a', 60_000)).toBe(true);
  expect(await acquireLease(db, scope, 'worker-b', 60_000)).toBe(false);
  expect(await renewLease(db, scope, 'worker-a', 300)).toBe(true);
  expect(await renewLease(db, scope, 'worker-b', 300)).toBe(false);
  // worker-a "crashes": it stops renewing; its lease runs out.
  await waitFor('the lease to be taken over', () => acquireLease(db, scope, 'worker-b', 60_000), 10_000, 100);
  expect(await renewLease(db, scope, 'worker-a', 60_000)).toBe(false); // a's sweep learns it lost the lease
  await releaseLease(db, scope, 'worker-a'); // not a's to release
  expect(await acquireLease(db, scope, 'worker-c', 60_000)).toBe(false);
  await releaseLease(db, scope, 'worker-b');
  expect(await acquireLease(db, scope, 'worker-c', 60_000)).toBe(true);
  await releaseLease(db, scope, 'worker-c');
});

it("closes a sweep whose worker died; a pending request becomes the next sweep; a held lease skips", async () => {
  const db = renv.db;
  const tenant = randomUUID(); // a scope of its own: no vCenter, no lock
  const deps = { db, log: pino({ level: 'silent' }), keyring: null, tenantId: tenant, holder: 'test-sweeper', options: DEFAULT_SWEEP_OPTIONS, minGapMs: 0 };
  const dead = await db.orphanSweep.create({ data: { trigger: 'interval', status: 'running', scopeTenantId: tenant, worker: 'crashed-worker', startedAt: new Date() } });
  const asked = await db.orphanSweep.create({ data: { trigger: 'request', status: 'requested', requestedBy: tenant } });
  expect(await acquireLease(db, leaseScope(tenant), 'other-worker', 60_000)).toBe(true);
  expect(await sweepOrphans(deps, 'request')).toEqual({ ran: false, reason: 'lease_held' });
  await releaseLease(db, leaseScope(tenant), 'other-worker');
  const r = await sweepOrphans(deps, 'request');
  expect(r).toMatchObject({ ran: true, sweepId: asked.id, status: 'done', items: [] });
  expect(await db.orphanSweep.findUnique({ where: { id: dead.id } })).toMatchObject({ status: 'failed', errorCode: 'WORKER_LOST' });
  expect(await db.orphanSweep.findUnique({ where: { id: asked.id } })).toMatchObject({ status: 'done', scopeTenantId: tenant, worker: 'test-sweeper', found: 0 });
  expect(await sweepOrphans(deps, 'request')).toEqual({ ran: false, reason: 'nothing_requested' });
  // A scheduled sweep right after one is skipped when a gap is asked for.
  expect(await sweepOrphans({ ...deps, minGapMs: 3_600_000 }, 'interval')).toEqual({ ran: false, reason: 'recent' });
});
