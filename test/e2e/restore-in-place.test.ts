import { closeSync, constants as fsConstants, existsSync, openSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { vsphere, type FixtureChain } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { waitFor } from '../support/env';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// MISSION R1 end to end: POST /v1/restores → queue → the production worker →
// vcsim (power, snapshots) and the disk files (file target, or VDDK through
// our simulator library) → disks byte-identical to the restore point.

let renv: RestoreEnv;
let api: Proc & { url: string };
let worker: Proc | undefined;
let c0vm0: FixtureChain;
const vms: Record<string, { moref: string; name: string }> = {};

const { http, ended } = apiCalls(() => api.url, () => renv.headers);
const restore = (vm: string, source: { vm: string; point: string }, options: Record<string, unknown>) =>
  http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source, target: { vm }, options });

async function vmState(moref: string) {
  const c = await renv.client();
  try {
    const info = await vsphere.getVmInfo(c, { type: 'VirtualMachine', value: moref });
    const snaps = await vsphere.listSnapshots(c, { type: 'VirtualMachine', value: moref });
    return { info, snaps: snaps.all };
  } finally {
    await c.close();
  }
}


/** Whether O_DIRECT opens work for `file` (not on every file system). */
function directIoAt(file: string): boolean {
  try {
    closeSync(openSync(file, fsConstants.O_RDONLY | fsConstants.O_DIRECT));
    return true;
  } catch {
    return false;
  }
}

function expectDiskEquals(dsPath: string, chain: FixtureChain, pointId: string, key: number) {
  const flat = readFileSync(renv.sim.flatPath(dsPath));
  const point = chain.points.find((p) => p.pointId === pointId)!;
  const expected = point.images.get(key)!;
  expect(flat.length).toBeGreaterThanOrEqual(expected.length);
  expect(flat.subarray(0, expected.length).equals(expected)).toBe(true);
  const raw = point.imagePaths?.get(key);
  if (raw && existsSync('/usr/bin/qemu-img')) {
    const r = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', renv.sim.flatPath(dsPath), raw], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/Images are identical/);
  }
}

beforeAll(async () => {
  renv = await startRestoreEnv([], { VMRESTORE_WEBHOOK_ALLOW_PRIVATE: 'true' });
  const c = await renv.client();
  try {
    for (const name of ['DC0_H0_VM0', 'DC0_H0_VM1', 'DC0_C0_RP0_VM0', 'DC0_C0_RP0_VM1']) {
      const ref = await vsphere.findVm(c, { inventoryPath: name.startsWith('DC0_H0') ? `DC0/vm/${name}` : `DC0/vm/${name}` });
      vms[name] = { moref: ref.value, name };
    }
  } finally {
    await c.close();
  }
  api = await startApi(renv.env);
  worker = await startWorkerProcess(renv.env);
});
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  await renv?.close();
});

it('restores a full point in place through the file target: bytes, power state, no snapshot left', async () => {
  const vm = vms.DC0_H0_VM0!;
  const chain = await renv.backupFor(vm.moref, 'h0vm0', { incrementals: 2, seed: 3 });
  const before = await vmState(vm.moref);
  expect(before.info.powerState).toBe('poweredOn');
  const r = await restore(vm.moref, { vm: 'h0vm0', point: 'p0' }, { transports: ['file'] });
  expect(r.status).toBe(202);
  const job = await ended(r.body.id);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  expect(job.steps.filter((s: any) => s.phase === 'main').map((s: any) => `${s.name}:${s.state}`)).toEqual([
    'preflight:succeeded',
    'verify_backup:succeeded',
    'power_off:succeeded',
    'remove_existing_snapshots:succeeded',
    'temp_snapshot:succeeded',
    'resolve_disks:succeeded',
    'write_disks:succeeded',
    'remove_temp_snapshot:succeeded',
    'power_on:succeeded',
    'restore_report:succeeded',
  ]);
  const write = job.steps.find((s: any) => s.name === 'write_disks').result;
  expect(write.transport).toBe('file');
  // VMRESTORE_FILE_DIRECT_IO=auto: O_DIRECT when one copy runs at a time (where the file system has it), the page cache when several do.
  const direct = write.parallelDisks === 1 && directIoAt(renv.sim.flatPath(job.steps.find((s: any) => s.name === 'resolve_disks').result.disks[0].fileName));
  for (const d of write.disks) expect(d.directBytes > 0).toBe(direct);
  // Each vCenter task is in the timeline with the step that started it.
  const events = await http('GET', `/v1/restores/${job.id}/events?limit=1000`, '/v1/restores/{id}/events');
  const tasks = events.body.items.filter((e: any) => e.type === 'vcenter.task').map((e: any) => `${e.step}:${e.data.method}`);
  expect(tasks).toEqual(['power_off:PowerOffVM_Task', 'power_on:PowerOnVM_Task']);
  expect(events.body.items.find((e: any) => e.type === 'vcenter.task').data.task).toMatch(/^task-/);
  const after = await vmState(vm.moref);
  expect(after.info.powerState).toBe('poweredOn');
  expect(after.snaps).toEqual([]);
  for (const d of after.info.disks) expectDiskEquals(d.fileName, chain, 'p0', d.key);
});

it('two jobs writing at once on one worker: the first, alone, writes direct; the second, started meanwhile, through the page cache', async () => {
  const a = vms.DC0_H0_VM0!;
  const b = vms.DC0_H0_VM1!;
  const chainB = await renv.backupFor(b.moref, 'io-b', { incrementals: 0, seed: 41 });
  // A at 4 MiB/s: its disk write lasts seconds; B is submitted once A's write is under way.
  const ra = await restore(a.moref, { vm: 'h0vm0', point: 'p0' }, { transports: ['file'], maxMBps: 4, verifyBackup: false });
  expect(ra.status).toBe(202);
  await waitFor('A writing its disk', async () => {
    const j = (await http('GET', `/v1/restores/${ra.body.id}`, '/v1/restores/{id}')).body;
    return j.currentStep === 'write_disks' && j.progress.bytesDone > 0 && j.progress.percent < 50;
  }, 60_000, 50);
  const rb = await restore(b.moref, { vm: 'io-b', point: 'p0' }, { transports: ['file'], verifyBackup: false });
  const jobB = await ended(rb.body.id);
  const jobA = await ended(ra.body.id);
  expect([jobA.state, jobB.state]).toEqual(['succeeded', 'succeeded']);
  const written = (job: any) => job.steps.find((s: any) => s.name === 'write_disks').result;
  expect([written(jobA).parallelDisks, written(jobB).parallelDisks]).toEqual([1, 1]);
  const fileOf = (job: any) => renv.sim.flatPath(job.steps.find((s: any) => s.name === 'resolve_disks').result.disks[0].fileName);
  // VMRESTORE_FILE_DIRECT_IO=auto counts every job's file copies in the worker process.
  expect(written(jobA).disks.every((d: any) => d.directBytes > 0)).toBe(directIoAt(fileOf(jobA)));
  expect(written(jobB).disks.map((d: any) => d.directBytes)).toEqual(written(jobB).disks.map(() => 0));
  expectDiskEquals(written(jobB).disks[0].file, chainB, 'p0', written(jobB).disks[0].key);
}, 120_000);

it('chooses the transport per disk: SAN only for thick disks (or an override), never mixed, and says why', async () => {
  const vm = vms.DC0_H0_VM1!;
  await renv.backupFor(vm.moref, 'h0vm1-tr', { incrementals: 0, seed: 2 });
  const dry = (options: Record<string, unknown>) =>
    http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source: { vm: 'h0vm1-tr', point: 'p0' }, target: { vm: vm.moref }, options, dryRun: true });
  const thin = await dry({ transports: ['san', 'nbdssl'] });
  expect(thin.body.disks.map((d: any) => [d.transports, d.transportReason])).toEqual(thin.body.disks.map(() => [['nbdssl'], expect.stringContaining('thin disk')]));
  expect(thin.body.needsSnapshot).toBe(true);
  const key = thin.body.disks[0].key;
  const only = await dry({ transports: ['san'] });
  expect([only.status, only.body.code, only.body.detail]).toEqual([422, 'DRY_RUN_REFUSED', expect.stringContaining('TRANSPORT_UNAVAILABLE')]);
  const forced = await dry({ transports: ['san'], diskTransports: { [key]: ['san'] } });
  expect(forced.body.disks[0]).toMatchObject({ transports: ['san'], transportReason: 'options.diskTransports' });
});

it('restores a point deep in an incremental chain through VDDK (nbdssl): temporary snapshot made and removed', async () => {
  const vm = vms.DC0_H0_VM1!;
  const chain = await renv.backupFor(vm.moref, 'h0vm1', { incrementals: 4, seed: 5 });
  await renv.sim.clearCalls();
  const r = await restore(vm.moref, { vm: 'h0vm1', point: 'p4' }, { transports: ['nbdssl', 'nbd'], powerOn: false });
  const job = await ended(r.body.id);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  const snap = job.steps.find((s: any) => s.name === 'temp_snapshot').result;
  expect(snap).toMatchObject({ name: `vmrestore-${job.id}`, adopted: false });
  const resolved = job.steps.find((s: any) => s.name === 'resolve_disks').result;
  expect(resolved.disks[0].fileName).toMatch(/-000001\.vmdk$/); // written through the delta (R1.4)
  expect(job.steps.find((s: any) => s.name === 'write_disks').result.transport).toBe('nbdssl');
  expect(await renv.sim.calls('CreateSnapshot_Task')).toHaveLength(1);
  expect(await renv.sim.calls('RemoveSnapshot_Task')).toHaveLength(1);
  const after = await vmState(vm.moref);
  expect(after.snaps).toEqual([]);
  expect(after.info.powerState).toBe('poweredOff'); // powerOn: false
  for (const d of after.info.disks) expectDiskEquals(d.fileName, chain, 'p4', d.key);
});

it('restores a VM that already has a snapshot, by its delta file name, and keeps that snapshot', async () => {
  const vm = vms.DC0_C0_RP0_VM0!;
  const chain = await renv.backupFor(vm.moref, 'c0vm0', { incrementals: 3, seed: 9 });
  c0vm0 = chain;
  const c = await renv.client();
  try {
    await vsphere.createSnapshot(c, { type: 'VirtualMachine', value: vm.moref }, { name: 'before-patch' });
  } finally {
    await c.close();
  }
  const r = await restore(vm.moref, { vm: 'c0vm0', point: 'p2' }, { transports: ['hotadd', 'nbdssl'], incrementalOrder: 'forward' });
  const job = await ended(r.body.id);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  const resolved = job.steps.find((s: any) => s.name === 'resolve_disks').result;
  expect(resolved.disks[0].fileName).toMatch(/-000002\.vmdk$/); // user's delta, then ours
  const after = await vmState(vm.moref);
  expect(after.snaps.map((s) => s.name)).toEqual(['before-patch']);
  for (const d of after.info.disks) {
    expect(d.fileName).toMatch(/-000001\.vmdk$/);
    expectDiskEquals(d.fileName, chain, 'p2', d.key);
  }
});

it('refuses a SAN restore of a VM with snapshots before touching it, unless allowed', async () => {
  const vm = vms.DC0_C0_RP0_VM0!; // still has "before-patch"
  // SAN writes thick disks only (vcsim's are thin): this VM's disks are thick from here on.
  await renv.sim.setProvisioning(vm.moref, 'thick-eager');
  await renv.sim.clearCalls();
  const r = await restore(vm.moref, { vm: 'c0vm0', point: 'p1' }, { transports: ['san'] });
  const job = await ended(r.body.id);
  expect(job.state).toBe('failed');
  expect(job.error.code).toBe('SAN_SNAPSHOTS_PRESENT');
  expect(await renv.sim.calls('PowerOffVM_Task')).toHaveLength(0);
  expect((await vmState(vm.moref)).info.powerState).toBe('poweredOn');
});

it('restores through SAN when allowed to remove the snapshots: revert before delete (no CID mismatch)', async () => {
  const vm = vms.DC0_C0_RP0_VM0!;
  await renv.sim.clearCalls();
  const r = await restore(vm.moref, { vm: 'c0vm0', point: 'p3' }, { transports: ['san'], removeExistingSnapshots: true });
  const job = await ended(r.body.id);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  expect(job.steps.find((s: any) => s.name === 'remove_existing_snapshots').result).toEqual({ removed: 1 });
  expect(job.steps.find((s: any) => s.name === 'remove_temp_snapshot').result).toMatchObject({ removed: 1, reverted: true });
  expect(await renv.sim.calls('RevertToSnapshot_Task')).toHaveLength(1);
  const after = await vmState(vm.moref);
  expect(after.snaps).toEqual([]);
  for (const d of after.info.disks) expectDiskEquals(d.fileName, c0vm0, 'p3', d.key);
});

it('refuses a second restore of the same VM while one is active (409)', async () => {
  const vm = vms.DC0_C0_RP0_VM1!;
  await renv.backupFor(vm.moref, 'c0vm1', { incrementals: 1, seed: 2 });
  await renv.sim.injectFault({ method: 'PowerOffVM_Task', moref: vm.moref, delayMs: 3000 });
  const first = await restore(vm.moref, { vm: 'c0vm1', point: 'p1' }, { transports: ['file'] });
  expect(first.status).toBe(202);
  const second = await restore(vm.moref, { vm: 'c0vm1', point: 'p0' }, { transports: ['file'] });
  expect(second.status).toBe(409);
  expect(second.body.code).toBe('RESTORE_CONFLICT');
  expect((await ended(first.body.id)).state).toBe('succeeded');
  await renv.sim.clearFaults();
});

it('retries a transient vCenter fault; when the snapshot cannot be removed, ends cleanup_pending with the VM off', async () => {
  const vm = vms.DC0_C0_RP0_VM1!;
  const chain = await renv.backupFor(vm.moref, 'c0vm1b', { incrementals: 2, seed: 4 });
  await renv.sim.injectFault({ method: 'CreateSnapshot_Task', moref: vm.moref, fault: 'TaskInProgress', count: 1 });
  const ok = await ended((await restore(vm.moref, { vm: 'c0vm1b', point: 'p2' }, { transports: ['nbdssl'] })).body.id);
  expect([ok.state, ok.attempt]).toEqual(['succeeded', 2]);
  const d0 = (await vmState(vm.moref)).info.disks[0]!;
  expectDiskEquals(d0.fileName, chain, 'p2', d0.key);

  // RemoveSnapshot_Task runs on the snapshot object: fault it whatever the moref.
  await renv.sim.injectFault({ method: 'RemoveSnapshot_Task', fault: 'NoPermission', count: -1 });
  const bad = await ended((await restore(vm.moref, { vm: 'c0vm1b', point: 'p1' }, { transports: ['nbdssl'] })).body.id, 90_000);
  await renv.sim.clearFaults();
  expect(bad.state).toBe('cleanup_pending');
  const after = await vmState(vm.moref);
  expect(after.info.powerState).toBe('poweredOff'); // the documented safe state
  expect(after.snaps.map((s) => s.name)).toEqual([`vmrestore-${bad.id}`]); // recorded, for the sweeper
  expect(await renv.db.vmLock.count({ where: { jobId: bad.id } })).toBe(1); // the VM stays locked meanwhile
});

describe('injected vCenter faults', () => {
  let vm: { moref: string; name: string };
  let chain: FixtureChain;
  beforeAll(async () => {
    vm = vms.DC0_H0_VM0!;
    chain = await renv.backupFor(vm.moref, 'faults-vm', { incrementals: 1, seed: 31 });
    const c = await renv.client();
    try {
      await vsphere.powerOn(c, { type: 'VirtualMachine', value: vm.moref });
    } finally {
      await c.close();
    }
  });
  afterEach(() => renv.sim.clearFaults());

  it('a permanent fault on power off fails the job with the VM untouched', async () => {
    await renv.sim.injectFault({ method: 'PowerOffVM_Task', moref: vm.moref, fault: 'NoPermission', count: -1 });
    const job = await ended((await restore(vm.moref, { vm: 'faults-vm', point: 'p1' }, { transports: ['nbdssl'] })).body.id);
    expect([job.state, job.error.code, job.attempt]).toEqual(['failed', 'VSPHERE_NO_PERMISSION', 1]);
    const after = await vmState(vm.moref);
    expect(after.info.powerState).toBe('poweredOn');
    expect(after.snaps).toEqual([]);
  });

  it('transient faults on power off and on the SAN revert are retried, and the restore completes', async () => {
    await renv.sim.setProvisioning(vm.moref, 'thick-lazy');
    await renv.sim.injectFault({ method: 'PowerOffVM_Task', moref: vm.moref, fault: 'TaskInProgress', count: 1 });
    await renv.sim.injectFault({ method: 'RevertToSnapshot_Task', fault: 'TaskInProgress', count: 1 });
    const job = await ended((await restore(vm.moref, { vm: 'faults-vm', point: 'p1' }, { transports: ['san'] })).body.id);
    expect([job.state, job.error, job.attempt]).toEqual(['succeeded', null, 3]);
    expect(job.steps.find((s: any) => s.name === 'remove_temp_snapshot').result).toMatchObject({ removed: 1, reverted: true });
    const after = await vmState(vm.moref);
    expect(after.snaps).toEqual([]);
    expect(after.info.powerState).toBe('poweredOn');
    for (const d of after.info.disks) expectDiskEquals(d.fileName, chain, 'p1', d.key);
  });
});

it('tells a subscribed webhook about the restore: signed job.started, step changes, progress, job.succeeded', async () => {
  const { createServer } = await import('node:http');
  const { verifyWebhook } = await import('@vmrestore/core');
  const received: Array<{ type: string; id: string; ok: boolean }> = [];
  let secret = '';
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      let ok = true;
      try {
        verifyWebhook(secret, req.headers as Record<string, string>, body);
      } catch {
        ok = false;
      }
      const event = JSON.parse(body);
      received.push({ type: event.type, id: event.id, ok });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as { port: number }).port;
    const hook = await http('POST', '/v1/webhooks', '/v1/webhooks', { url: `http://127.0.0.1:${port}/hook`, events: ['*'] });
    expect(hook.status).toBe(201);
    secret = hook.body.secret;
    const vm = vms.DC0_H0_VM1!;
    await renv.backupFor(vm.moref, 'hooked', { incrementals: 1, seed: 41 });
    const job = await ended((await restore(vm.moref, { vm: 'hooked', point: 'p1' }, { transports: ['file'] })).body.id);
    expect(job.state).toBe('succeeded');
    await waitFor('job.succeeded delivered', async () => received.some((e) => e.type === 'job.succeeded'), 30_000, 100);
    const types = received.map((e) => e.type);
    expect(types[0]).toBe('job.started');
    expect(types).toContain('job.step_changed');
    expect(types).toContain('job.progress');
    expect(received.every((e) => e.ok)).toBe(true);
    expect(new Set(received.map((e) => e.id)).size).toBe(received.length);
  } finally {
    server.close();
  }
});

it('a dry run of an in-place restore reports the VM, the transport and the bytes, and touches nothing', async () => {
  const vm = vms.DC0_H0_VM1!;
  await renv.backupFor(vm.moref, 'dry', { incrementals: 2, seed: 51 });
  await renv.sim.clearCalls();
  const r = await http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source: { vm: 'dry', point: 'p2' }, target: { vm: vm.moref }, options: { transports: ['nbdssl'] }, dryRun: true });
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ dryRun: true, kind: 'in_place', target: 'vddk', transports: ['nbdssl'], needsSnapshot: true, vm: { moref: vm.moref } });
  const d = r.body.disks[0];
  expect(d.writeBytes).toBe(d.dataBytes + d.zeroBytes);
  expect(d.writeBytes).toBeGreaterThanOrEqual(d.capacityBytes - 1024); // in place: the whole disk, data or zeros
  for (const m of ['PowerOffVM_Task', 'CreateSnapshot_Task']) expect(await renv.sim.calls(m)).toHaveLength(0);
  const refused = await http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source: { vm: 'dry', point: 'nope' }, target: { vm: vm.moref }, dryRun: true });
  expect([refused.status, refused.body.code]).toEqual([422, 'DRY_RUN_REFUSED']);
  expect(refused.body.detail).toMatch(/^BACKUP_POINT_NOT_FOUND/);
});
