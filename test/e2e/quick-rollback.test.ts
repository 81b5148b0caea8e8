import { readFileSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { FileBackupRepository, alignAreas, generateFixtureChain, vsphere, type FixtureChain } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// Issue #12 end to end: a VM restored fully, then changed in a few areas,
// then rolled back quickly: CBT (the harness answers QueryChangedDiskAreas
// from the areas the test declares) says what changed since the point's
// changeId, and only those areas are written, through the file target (the
// VM powered off, no snapshot) and through VDDK (nbdssl: against the
// temporary snapshot). Each fallback to a full restore is taken and says why.

let renv: RestoreEnv;
let api: Proc & { url: string };
let worker: Proc | undefined;
const vms: Record<string, string> = {};
const { http, ended } = apiCalls(() => api.url, () => renv.headers);

const restore = (vm: string, source: { vm: string; point: string }, options: Record<string, unknown>) =>
  http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source, target: { vm }, options });

async function disksOf(moref: string) {
  const c = await renv.client();
  try {
    return (await vsphere.getVmInfo(c, { type: 'VirtualMachine', value: moref })).disks;
  } finally {
    await c.close();
  }
}


async function expectAtPoint(moref: string, chain: FixtureChain, pointId: string) {
  const point = chain.points.find((p) => p.pointId === pointId)!;
  for (const d of await disksOf(moref)) {
    const expected = point.images.get(d.key)!;
    const flat = readFileSync(renv.sim.flatPath(d.fileName));
    expect(flat.subarray(0, expected.length).equals(expected)).toBe(true);
  }
}

/** The point's changeId per disk, as the backup recorded it. */
async function changeIds(vmId: string, pointId: string): Promise<Map<number, string>> {
  const p = await new FileBackupRepository([renv.root]).getPoint(vmId, pointId);
  return new Map(p.disks.map((d) => [d.key, d.changeId!]));
}

/** A guest writing garbage at byte offsets (not aligned), declared to CBT. */
async function changeDisk(moref: string, key: number, areas: Array<{ start: number; length: number }>) {
  const d = (await disksOf(moref)).find((x) => x.key === key)!;
  const fd = openSync(renv.sim.flatPath(d.fileName), 'r+');
  try {
    for (const a of areas) writeSync(fd, Buffer.alloc(a.length, 0xa5), 0, a.length, a.start);
  } finally {
    closeSync(fd);
  }
  await renv.sim.cbt.changed(moref, key, areas);
}

const step = (job: any, name: string) => job.steps.find((s: any) => s.name === name)?.result;

beforeAll(async () => {
  renv = await startRestoreEnv(['-disk-mb', '64']);
  const c = await renv.client();
  try {
    for (const name of ['DC0_H0_VM0', 'DC0_H0_VM1', 'DC0_C0_RP0_VM0']) vms[name] = (await vsphere.findVm(c, { inventoryPath: `DC0/vm/${name}` })).value;
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

const MiB = 1024 * 1024;

for (const [label, vmName, transports] of [
  ['the file target (VM off, no snapshot)', 'DC0_H0_VM0', ['file']],
  ['VDDK nbdssl (against the temporary snapshot)', 'DC0_H0_VM1', ['nbdssl']],
] as const) {
  it(`quick rollback through ${label}: writes exactly the changed areas and gives the point back`, async () => {
    const vm = vms[vmName]!;
    const vmId = `qr-${vmName}`;
    const chain = await renv.backupFor(vm, vmId, { incrementals: 3, seed: 21 });
    const full = await ended((await restore(vm, { vm: vmId, point: 'p3' }, { transports: [...transports] })).body.id);
    expect([full.state, full.error]).toEqual(['succeeded', null]);
    await expectAtPoint(vm, chain, 'p3');

    // The backup of p3 saw the disk at its changeId; since then the guest wrote a few areas.
    const key = (await disksOf(vm))[0]!.key;
    await renv.sim.cbt.baseline(vm, key, (await changeIds(vmId, 'p3')).get(key)!);
    await renv.sim.cbt.page(16 * MiB); // several QueryChangedDiskAreas pages
    const changed = [
      { start: 3 * MiB + 100, length: 70_000 },
      { start: 20 * MiB - 512, length: 5_000 },
      { start: 40 * MiB, length: MiB + 3 },
      { start: 63 * MiB, length: 513 },
    ];
    await changeDisk(vm, key, changed.slice(0, 2));
    await changeDisk(vm, key, changed.slice(2));

    const r = await restore(vm, { vm: vmId, point: 'p3' }, { transports: [...transports], mode: 'quick_rollback' });
    const job = await ended(r.body.id);
    expect([job.state, job.error]).toEqual(['succeeded', null]);
    expect(job.steps.filter((s: any) => s.phase === 'main').map((s: any) => s.name)).toEqual([
      'preflight',
      'power_off',
      'remove_existing_snapshots',
      'temp_snapshot',
      'changed_areas',
      'resolve_disks',
      'write_disks',
      'remove_temp_snapshot',
      'power_on',
      'restore_report',
    ]);
    const decision = step(job, 'changed_areas');
    const aligned = alignAreas(changed, 64 * MiB);
    const alignedBytes = aligned.reduce((s, a) => s + a.length, 0);
    expect(decision).toMatchObject({ mode: 'quick_rollback', disks: [{ key, areas: aligned.length, bytes: alignedBytes, calls: 4 }] });
    expect(decision.changedAreas).toBeUndefined(); // the area lists stay in the worker's record, not in the API
    const write = step(job, 'write_disks');
    expect(write.mode).toBe('quick_rollback');
    expect(write.bytes).toBe(alignedBytes);
    const changedBytes = changed.reduce((s, a) => s + a.length, 0);
    const fullBytes = step(full, 'write_disks').bytes;
    console.log(`quick rollback (${transports.join(',')}): ${changed.length} changed areas, ${changedBytes} bytes changed, ${write.bytes} bytes written (KiB-aligned), full restore wrote ${fullBytes}`);
    await expectAtPoint(vm, chain, 'p3');
    if (transports[0] === 'nbdssl') {
      expect(step(job, 'temp_snapshot')).toMatchObject({ adopted: false });
      const calls = await renv.sim.calls('QueryChangedDiskAreas');
      expect(calls.length).toBeGreaterThanOrEqual(4);
    }
  });
}

describe('fallbacks to a full restore, each with its reason in the job', () => {
  let vm: string;
  let key: number;
  let chain: FixtureChain;
  const vmId = 'qr-fallbacks';
  beforeAll(async () => {
    vm = vms.DC0_C0_RP0_VM0!;
    chain = await renv.backupFor(vm, vmId, { incrementals: 2, seed: 8 });
    key = (await disksOf(vm))[0]!.key;
  });

  async function expectFallback(reason: string, point = 'p2', source = vmId, expected = chain) {
    const job = await ended((await restore(vm, { vm: source, point }, { transports: ['file'], mode: 'quick_rollback' })).body.id);
    expect([job.state, job.error]).toEqual(['succeeded', null]);
    expect(step(job, 'changed_areas')).toMatchObject({ mode: 'full', fallback: { code: reason } });
    expect(step(job, 'write_disks')).toMatchObject({ mode: 'full', bytes: 64 * MiB });
    const events = await http('GET', `/v1/restores/${job.id}/events?limit=1000`, '/v1/restores/{id}/events');
    const warning = events.body.items.find((e: any) => e.type === 'restore.warning');
    expect(warning.data).toMatchObject({ code: 'QUICK_ROLLBACK_FALLBACK', reason });
    await expectAtPoint(vm, expected, point);
    return job;
  }

  it('CBT off on the VM', async () => {
    await renv.sim.cbt.disable(vm);
    await expectFallback('CBT_DISABLED');
  });

  it("the point's changeId is stale (CBT reset: the VM moved)", async () => {
    await renv.sim.cbt.reset(vm, key);
    await expectFallback('CHANGE_ID_INVALID');
  });

  it('vCenter refuses QueryChangedDiskAreas', async () => {
    await renv.sim.cbt.baseline(vm, key, (await changeIds(vmId, 'p2')).get(key)!);
    await renv.sim.injectFault({ method: 'QueryChangedDiskAreas', fault: 'NotSupported', count: 1 });
    await expectFallback('CBT_QUERY_REFUSED');
  });

  it('the point has no changeId for the disk', async () => {
    const noChange = await renv.backupFor(vm, 'qr-nochange', { incrementals: 0, seed: 4 });
    const file = join(renv.root, 'qr-nochange', 'p0', 'point.json');
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    for (const d of manifest.disks) d.changeId = null;
    writeFileSync(file, JSON.stringify(manifest));
    await renv.sim.cbt.baseline(vm, key, (await changeIds(vmId, 'p2')).get(key)!);
    await expectFallback('CHANGE_ID_UNKNOWN', 'p0', 'qr-nochange', noChange);
  });

  it('a disk resized since the point', async () => {
    // A backup of a 32 MiB disk restored into the VM's 64 MiB one: the disk grew since.
    const small = await generateFixtureChain({ root: renv.root, vmId: 'qr-resized', disks: [{ key, capacityBytes: 32 * MiB }], incrementals: 1, seed: 6 });
    const job = await ended((await restore(vm, { vm: 'qr-resized', point: 'p1' }, { transports: ['file'], mode: 'quick_rollback' })).body.id);
    expect([job.state, job.error]).toEqual(['succeeded', null]);
    expect(step(job, 'changed_areas')).toMatchObject({ mode: 'full', fallback: { code: 'DISK_RESIZED' } });
    const d = (await disksOf(vm))[0]!;
    const flat = readFileSync(renv.sim.flatPath(d.fileName));
    expect(flat.subarray(0, 32 * MiB).equals(small.points[1]!.images.get(key)!)).toBe(true);
  });

  it('the dry run reports what a quick rollback would write against a full restore', async () => {
    await renv.sim.cbt.baseline(vm, key, (await changeIds(vmId, 'p2')).get(key)!);
    // Make the VM the point again (full restore), then change one area.
    expect((await ended((await restore(vm, { vm: vmId, point: 'p2' }, { transports: ['file'], powerOn: false })).body.id)).state).toBe('succeeded');
    await changeDisk(vm, key, [{ start: 5 * MiB, length: 3 * MiB }]);
    const body = { kind: 'in_place', vcenter: renv.vcenterName, source: { vm: vmId, point: 'p2' }, target: { vm }, options: { transports: ['file'], mode: 'quick_rollback' }, dryRun: true };
    const dry = await http('POST', '/v1/restores', '/v1/restores', body);
    expect(dry.status).toBe(200);
    expect(dry.body.quickRollback).toEqual({ mode: 'quick_rollback', bytes: 3 * MiB, fullBytes: 64 * MiB, disks: [{ key, changeId: expect.any(String), areas: 1, bytes: 3 * MiB, calls: expect.any(Number) }] });
    // A powered-on VM cannot be compared without a snapshot: the dry run says so.
    const c = await renv.client();
    try {
      await vsphere.powerOn(c, { type: 'VirtualMachine', value: vm });
    } finally {
      await c.close();
    }
    const on = await http('POST', '/v1/restores', '/v1/restores', body);
    expect(on.body.quickRollback).toMatchObject({ mode: 'unknown', fallback: { code: 'VM_POWERED_ON' }, bytes: 64 * MiB, fullBytes: 64 * MiB });
    // A quick rollback of a new VM is refused, naming the field.
    const bad = await http('POST', '/v1/restores', '/v1/restores', { kind: 'new_vm', vcenter: renv.vcenterName, source: { vm: vmId, point: 'p2' }, options: { mode: 'quick_rollback' } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('options.mode');
  });
});
