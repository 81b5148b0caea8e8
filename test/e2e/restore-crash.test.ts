import { readFileSync } from 'node:fs';
import { vsphere } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { waitFor } from '../support/env';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// The crash matrix of an in-place restore: the worker is SIGKILLed while
// each step is at work with vCenter (the call may finish after the kill, its
// result unrecorded) and in the middle of the disk write; each time a new
// worker takes the job over. It must end correctly, with the disk exact, at
// most one temporary snapshot ever made, and the write resumed from its last
// checkpoint rather than from zero.

let renv: RestoreEnv;
let api: Proc & { url: string };
let worker: Proc | undefined;

const { http, ended } = apiCalls(() => api.url, () => renv.headers);

beforeAll(async () => {
  // Small write batches, so the disk write has several checkpoints to resume from.
  renv = await startRestoreEnv([], { VMRESTORE_WRITE_BATCH_EXTENTS: '2' });
  api = await startApi(renv.env);
});
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  await renv?.close();
});

it('survives a SIGKILL of its worker during every vCenter step and mid-write', async () => {
  const c = await renv.client();
  const ref = await vsphere.findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
  await c.close();
  const chain = await renv.backupFor(ref.value, 'crash-vm', { incrementals: 3, seed: 21 });
  // Each of these calls is held for 1.5 s once: the worker is killed while it waits.
  const held = ['PowerOffVM_Task', 'CreateSnapshot_Task', 'RemoveSnapshot_Task', 'PowerOnVM_Task'];
  for (const method of held) await renv.sim.injectFault({ method, delayMs: 1500, count: 1 });
  renv.setVddk({ writeDelayMs: 40 });

  worker = await startWorkerProcess(renv.env);
  const created = await http('POST', '/v1/restores', '/v1/restores', {
    kind: 'in_place',
    vcenter: renv.vcenterName,
    source: { vm: 'crash-vm', point: 'p3' },
    target: { vm: ref.value },
    options: { transports: ['nbdssl'] },
  });
  const id = created.body.id;
  const kills: string[] = [];
  const killAndReplace = async (why: string) => {
    await stop(worker, 'SIGKILL');
    kills.push(why);
    worker = await startWorkerProcess(renv.env);
  };

  for (const method of held.slice(0, 2)) {
    await waitFor(`${method} to be called`, async () => (await renv.sim.calls(method)).length > 0, 60_000);
    await killAndReplace(method);
  }
  // Mid-write: after at least one checkpoint of the first disk.
  await waitFor('a write checkpoint', async () => (await renv.db.diskCheckpoint.count({ where: { jobId: id, nextExtent: { gt: 0 } } })) > 0, 60_000, 50);
  await killAndReplace('write_disks');
  renv.setVddk({ writeDelayMs: 0 });
  for (const method of held.slice(2)) {
    await waitFor(`${method} to be called`, async () => (await renv.sim.calls(method)).length > 0, 60_000);
    await killAndReplace(method);
  }

  const done = await ended(id, 90_000);
  expect(kills).toEqual(['PowerOffVM_Task', 'CreateSnapshot_Task', 'write_disks', 'RemoveSnapshot_Task', 'PowerOnVM_Task']);
  expect([done.state, done.error]).toEqual(['succeeded', null]);
  expect(done.attempt).toBeGreaterThanOrEqual(5);
  // One temporary snapshot at most, ever: a resumed job adopts it by name.
  expect(await renv.sim.calls('CreateSnapshot_Task')).toHaveLength(1);
  const snap = done.steps.find((s: any) => s.name === 'temp_snapshot');
  expect(snap.result.adopted).toBe(true);
  // The write resumed from a checkpoint, not from zero.
  const write = done.steps.find((s: any) => s.name === 'write_disks');
  expect(write.attempt).toBeGreaterThanOrEqual(2);
  expect(write.result.disks.some((d: any) => d.resumedFrom > 0)).toBe(true);

  const c2 = await renv.client();
  const info = await vsphere.getVmInfo(c2, ref);
  const snaps = await vsphere.listSnapshots(c2, ref);
  await c2.close();
  expect(snaps.all).toEqual([]);
  expect(info.powerState).toBe('poweredOn');
  const point = chain.points.find((p) => p.pointId === 'p3')!;
  for (const d of info.disks) {
    const flat = readFileSync(renv.sim.flatPath(d.fileName));
    const expected = point.images.get(d.key)!;
    expect(flat.subarray(0, expected.length).equals(expected)).toBe(true);
  }
}, 240_000);
